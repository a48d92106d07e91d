// From a computed BgpConfig to what a tortie BGP speaker is told: the speaker-wide
// settings, each peer's settings, and the smallest change from one config to the next.
// The node agent's glue and tortie-rr both apply these plans to their speakers.
import {
  parseSpeakerConfig,
  peerKey,
  type PeerConfigInput,
  type SpeakerConfig,
} from '@tortie/bgp-speaker';
import { DEFAULT_NORMAL_ROUTE_PRIORITY } from './settings';
import type { BgpConfig, BgpPeer } from './types';

/**
 * Graceful restart as Calico's BIRD does it (`graceful restart;`, 120 s unless a peer's
 * restart time says otherwise): peers keep our routes while we restart, with the F bit
 * (the kernel keeps forwarding) and the R bit on the first session after start (we
 * cannot tell a first start from a restart; on a first start the peer has nothing of
 * ours to keep, so the bits cost nothing).
 */
export const GRACEFUL_RESTART = {
  enabled: true,
  restartTimeS: 120,
  restarting: true,
  forwardingPreserved: true,
} as const;

const familyKey = (address: string) => (address.includes(':') ? 'ipv6' : 'ipv4');

/** The speaker's per-peer configuration for one computed peer. */
export function peerConfig(p: BgpPeer, me: BgpConfig): PeerConfigInput {
  // eBGP or iBGP as the AS we are on this session says
  const ebgp = p.asNumber !== (p.localAsNumber ?? me.asNumber);
  return {
    address: p.address,
    asn: p.asNumber,
    port: p.port,
    description: p.name,
    ...(p.sourceAddress ? { localAddress: p.sourceAddress } : {}),
    passive: p.passive ?? false,
    routeReflectorClient: p.rrClient ?? false,
    // eBGP peers (ToR) get our address as next hop, or another node's when it shares
    // the ToR's subnet (third party); iBGP mesh keeps the node's own
    nextHopSelf: p.nextHopSelf || (ebgp && !p.keepOriginalNextHop),
    // BIRD's `next hop keep`: the original next hop, to eBGP peers too
    ...(p.keepOriginalNextHop ? { nextHopKeep: true } : {}),
    ...(ebgp && me.localSubnet ? { sharedSubnet: me.localSubnet } : {}),
    ...(p.localAsNumber !== undefined ? { localAsn: p.localAsNumber } : {}),
    ttlSecurity: p.ttlSecurity,
    ...(p.allowOwnAs ? { allowOwnAs: p.allowOwnAs } : {}),
    // the session carries the family of its address: its rules meet that family's routes
    ...(p.importFilter ? { importFilter: { [familyKey(p.address)]: p.importFilter } } : {}),
    ...(p.exportFilter ? { exportFilter: { [familyKey(p.address)]: p.exportFilter } } : {}),
    ...(p.md5Key !== undefined ? { password: p.md5Key } : {}),
    // bird.cfg's per-peer `graceful restart time` (maxRestartTime, nodeMeshMaxRestartTime)
    gracefulRestart: { restartTimeS: p.restartTimeS },
    ...(p.bfd ? { bfd: p.bfd } : {}),
    holdTime: 90,
    ...(p.keepaliveS ? { keepaliveTime: p.keepaliveS } : {}),
    connectRetryTime: 2,
    // nodes of a cluster start together: a connect refused because the other agent is
    // not listening yet is retried after 0.5 s (doubling to 30 s), not after 5 s
    errorWaitTime: [0.5, 30],
  };
}

/**
 * The speaker-wide settings: a change to these needs a new speaker (but the log level
 * and the export communities: planBgp reports them, to be set on the running speaker).
 * `logLevel` overrides the configuration's.
 */
export function speakerConfig(c: BgpConfig, logLevel?: string): SpeakerConfig {
  return parseSpeakerConfig({
    logLevel: logLevel ?? c.logLevel ?? 'info',
    asn: c.asNumber,
    routerId: c.routerId,
    clusterId: c.routeReflectorClusterId,
    listen: { address: '::', port: c.listenPort },
    // our next hop per family is the node's address (not the router id, which
    // CALICO_ROUTER_ID may set to anything)
    nextHop: {
      ...(c.ipv4Address ? { ipv4: c.ipv4Address } : {}),
      ...(c.ipv6Address ? { ipv6: c.ipv6Address } : {}),
    },
    gracefulRestart: GRACEFUL_RESTART,
    // prefixAdvertisements: added per session after its export filter, as BIRD does
    exportCommunities: c.communities ?? [],
  });
}

/** The speaker's export communities of a configuration (its prefixAdvertisements). */
export const exportCommunities = (c: BgpConfig): SpeakerConfig['exportCommunities'] =>
  speakerConfig(c).exportCommunities;

/** A speaker's peers by peerKey (address, and port unless 179). */
const byKey = (c: BgpConfig) =>
  new Map(c.peers.map((p) => [peerKey(p.address, p.port), peerConfig(p, c)]));

export interface BgpPlan {
  restart: boolean;
  /** The new log level, when only it changed among the speaker-wide settings. */
  logLevel?: string;
  /** peerKeys. */
  removePeers: string[];
  addPeers: PeerConfigInput[];
  /** Peers whose only change is BFD: re-timed (or BFD added/removed) under a live session. */
  setBfd: Array<{ key: string; bfd?: PeerConfigInput['bfd'] }>;
  withdraw: string[];
  /** New prefixes and those whose normal route priority changed. */
  originate: string[];
  /**
   * The speaker's new export communities (prefixAdvertisements), when they changed and
   * the speaker keeps running: set them on it (sessions stay, routes are re-sent).
   */
  exportCommunities?: SpeakerConfig['exportCommunities'];
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The priority of the node's own route to `prefix` (its family's normal route priority). */
export function normalRoutePriority(c: BgpConfig, prefix: string): number {
  const p = prefix.includes(':') ? c.normalRoutePriority?.ipv6 : c.normalRoutePriority?.ipv4;
  return p ?? DEFAULT_NORMAL_ROUTE_PRIORITY;
}

/** What to change to go from `prev` to `next` (everything, when the speaker restarts). */
export function planBgp(prev: BgpConfig | undefined, next: BgpConfig): BgpPlan {
  const level = (c: BgpConfig) => speakerConfig(c).logLevel;
  // what needs a new speaker: all but the log level and the export communities
  const fixed = (c: BgpConfig) => ({ ...speakerConfig(c, 'info'), exportCommunities: [] });
  const restart = !prev || !next.enabled || !prev.enabled || !sameJson(fixed(prev), fixed(next));
  const communities = exportCommunities(next);
  const before = restart ? new Map<string, PeerConfigInput>() : byKey(prev!);
  const after = byKey(next);
  const same = (a: string) => sameJson(before.get(a), after.get(a));
  // a peer that differs only in BFD keeps its session (as BIRD reconfigures `bfd`)
  const withoutBfd = ({ bfd: _b, ...rest }: PeerConfigInput) => rest;
  const bfdOnly = (a: string) =>
    before.has(a) &&
    after.has(a) &&
    !same(a) &&
    sameJson(withoutBfd(before.get(a)!), withoutBfd(after.get(a)!));
  const recreate = (a: string) => !same(a) && !bfdOnly(a);
  const removePeers = [...before.keys()].filter((a) => !after.has(a) || recreate(a));
  const addPeers = [...after.entries()]
    .filter(([a]) => !before.has(a) || recreate(a))
    .map(([, cfg]) => cfg);
  const setBfd = [...after.keys()]
    .filter(bfdOnly)
    .map((key) => ({ key, ...(after.get(key)!.bfd ? { bfd: after.get(key)!.bfd } : {}) }));
  const had = new Set(restart ? [] : prev!.originate);
  const want = new Set(next.originate);
  // a prefix whose priority changed is originated again (it replaces the old route)
  const priorityChanged = (p: string) =>
    had.has(p) && normalRoutePriority(prev!, p) !== normalRoutePriority(next, p);
  return {
    restart,
    ...(!restart && level(prev!) !== level(next) ? { logLevel: level(next) } : {}),
    removePeers,
    addPeers,
    setBfd,
    withdraw: [...had].filter((p) => !want.has(p)),
    originate: [...want].filter((p) => !had.has(p) || priorityChanged(p)),
    ...(!restart && !sameJson(exportCommunities(prev!), communities)
      ? { exportCommunities: communities }
      : {}),
  };
}
