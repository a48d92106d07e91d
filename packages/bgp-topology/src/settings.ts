// Cluster-wide and per-node BGP settings from the BGPConfigurations, merged as confd
// merges them (confd/pkg/backends/calico/client.go updateBGPConfigCache,
// bgp_processor.go getNodeOrGlobalValue): "default" holds the cluster's AS number, the
// mesh switch and its restart time, and the service IPs; "node.<name>" may set that
// node's listenPort and logSeverityScreen, which win over the default's. Absent settings
// get confd's defaults (AS 64512, mesh on, log level info, port 179).
import { createHash } from 'node:crypto';
import { goDurationSeconds, type Resource } from '@tortie/api';
import { canonicalIp } from './address';
import type { BfdTiming, SecretRef } from './types';

export const DEFAULT_ASN = 64512;
export const BGP_PORT = 179;
/** BIRD's graceful restart time when Calico sets none. */
export const DEFAULT_RESTART_S = 120;

/** BFD timers when a bfd block leaves them out: 300 ms x 3, as FRR's bfdd. */
export const DEFAULT_BFD: BfdTiming = { minTxMs: 300, minRxMs: 300, multiplier: 3 };

/** The spec.bfd block of a BGPConfiguration or BGPPeer. */
export type BfdSpec = NonNullable<Config['spec']['bfd']>;

/**
 * BFD for a session: `over` (a BGPPeer's block) field by field over `base` (the default
 * BGPConfiguration's). A block turns BFD on unless it says enabled: false.
 */
export function bfdTiming(base?: BfdSpec, over?: BfdSpec): BfdTiming | undefined {
  if (!base && !over) return undefined;
  const b = { ...base, ...over };
  if (b.enabled === false) return undefined;
  const ms = (d: string | undefined, dflt: number) =>
    d === undefined ? dflt : Math.max(1, Math.round(goDurationSeconds(d)! * 1000));
  return {
    minTxMs: ms(b.minTxInterval, DEFAULT_BFD.minTxMs),
    minRxMs: ms(b.minRxInterval, DEFAULT_BFD.minRxMs),
    multiplier: b.multiplier ?? DEFAULT_BFD.multiplier,
  };
}

/** The speaker's log level for BGPConfiguration logSeverityScreen (confd: debug, info, none). */
export type BgpLogLevel = 'debug' | 'info' | 'warn';

export interface BgpSettings {
  asNumber: number;
  meshEnabled: boolean;
  /** nodeMeshMaxRestartTime in seconds, when set. */
  meshRestartS?: number;
  /** Service cluster/external/LoadBalancer CIDRs to originate (empty entries skipped). */
  services: string[];
  /** The listen port BGPConfiguration sets for a node (its own, else the default's). */
  configuredPort(node: string): number | undefined;
  /** The port a node listens on, and that its peers dial. */
  listenPort(node: string): number;
  logLevel(node: string): BgpLogLevel;
  /** The default BGPConfiguration's bfd block (every session's, under its BGPPeer's). */
  bfd?: BfdSpec;
  /** nodeMeshPassword: the mesh sessions' TCP-MD5 key. */
  meshPassword?: SecretRef;
  /** The node's address local workloads peer with (BGPConfiguration default). */
  localWorkloadPeeringIPv4?: string;
  localWorkloadPeeringIPv6?: string;
  /** ipv4NormalRoutePriority / ipv6NormalRoutePriority of the default configuration, when set. */
  normalRoutePriority?: { ipv4?: number; ipv6?: number };
}

/** confd's route priority of a node's own routes when BGPConfiguration sets none. */
export const DEFAULT_NORMAL_ROUTE_PRIORITY = 1024;

type Config = Resource<'BGPConfiguration'>;

export function bgpSettings(configs: Iterable<Config>): BgpSettings {
  const byName = new Map<string, Config>();
  for (const c of configs) byName.set(c.metadata.name, c);
  const global = byName.get('default')?.spec;
  const own = (node: string) => byName.get(`node.${node}`)?.spec;
  const configuredPort = (node: string) => own(node)?.listenPort ?? global?.listenPort;
  const severity = (node: string) => own(node)?.logSeverityScreen ?? global?.logSeverityScreen;
  const meshRestart = global?.nodeMeshMaxRestartTime;
  return {
    asNumber: global?.asNumber ?? DEFAULT_ASN,
    meshEnabled: global?.nodeToNodeMeshEnabled !== false,
    ...(meshRestart !== undefined ? { meshRestartS: restartSeconds(meshRestart) } : {}),
    services: [
      ...(global?.serviceClusterIPs ?? []),
      ...(global?.serviceExternalIPs ?? []),
      ...(global?.serviceLoadBalancerIPs ?? []),
    ].flatMap((s) => (s.cidr ? [hostRouteOf(s.cidr)] : [])),
    configuredPort,
    listenPort: (node) => configuredPort(node) ?? BGP_PORT,
    logLevel: (node) => logLevelOf(severity(node)),
    ...(global?.bfd ? { bfd: global.bfd } : {}),
    ...(global?.nodeMeshPassword ? { meshPassword: global.nodeMeshPassword.secretKeyRef } : {}),
    // felix reads these from the default configuration only (event_sequencer.go)
    ...(global?.localWorkloadPeeringIPV4
      ? { localWorkloadPeeringIPv4: canonicalIp(global.localWorkloadPeeringIPV4) }
      : {}),
    ...(global?.localWorkloadPeeringIPV6
      ? { localWorkloadPeeringIPv6: canonicalIp(global.localWorkloadPeeringIPV6) }
      : {}),
    // confd reads them from the default configuration only (getNormalRoutePriority)
    ...(global?.ipv4NormalRoutePriority !== undefined ||
    global?.ipv6NormalRoutePriority !== undefined
      ? {
          normalRoutePriority: {
            ...(global.ipv4NormalRoutePriority !== undefined
              ? { ipv4: global.ipv4NormalRoutePriority }
              : {}),
            ...(global.ipv6NormalRoutePriority !== undefined
              ? { ipv6: global.ipv6NormalRoutePriority }
              : {}),
          },
        }
      : {}),
  };
}

/** confd (getLogSeverityKVPair): BIRD logs debug or info; any other severity is "none". */
function logLevelOf(severity: string | undefined): BgpLogLevel {
  const s = (severity ?? 'info').toLowerCase();
  return s === 'debug' ? 'debug' : s === 'info' ? 'info' : 'warn';
}

/**
 * A Go duration (maxRestartTime, nodeMeshMaxRestartTime) as the graceful restart time
 * confd writes (`int(math.Round(d.Seconds()))`), kept within 1..4095 s (the
 * capability carries 12 bits; our speaker wants at least a second).
 */
export function restartSeconds(duration: string): number {
  const s = Math.round(goDurationSeconds(duration) ?? DEFAULT_RESTART_S);
  return Math.min(Math.max(s, 1), 4095);
}

/** A BGPPeer's keepaliveTime in whole seconds, as confd rounds it (1..65535). */
export function keepaliveSeconds(duration: string): number {
  const s = Math.round(goDurationSeconds(duration) ?? 0);
  return Math.min(Math.max(s, 1), 65535);
}

/**
 * The router id as calico-node picks it (bgp_processor.go populateNodeConfig):
 * CALICO_ROUTER_ID when set, "hash" for one derived from the node name (for nodes
 * without IPv4), else the node's IPv4 address.
 */
export function routerIdFor(
  setting: string | undefined,
  node: string,
  ipv4: string | undefined,
): string | undefined {
  if (setting === 'hash') return hashRouterId(node);
  return setting || ipv4;
}

/**
 * confd's HashToIPv4 (confd/pkg/resource/template/util.go): the first four bytes of
 * SHA-256 of the node name, with a first octet above 223 lowered by 32 (router ids may
 * not be multicast or reserved).
 */
export function hashRouterId(node: string): string {
  const b = createHash('sha256').update(node).digest();
  return [b[0] > 223 ? b[0] - 32 : b[0], b[1], b[2], b[3]].join('.');
}

/** Calico takes an address alone for a service range: the host route. */
function hostRouteOf(net: string): string {
  if (net.includes('/')) return net;
  return net.includes(':') ? `${net}/128` : `${net}/32`;
}
