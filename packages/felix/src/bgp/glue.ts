// BGP glue: makes the node's BGP speaker match the calculation graph's BgpConfig (peers,
// originated blocks, route-reflector role) and hands the routes it learns to the kernel.
// The diff is a pure function; the speaker is behind a small interface so the glue is
// tested with a recording fake and run with the real @tortie/bgp-speaker.
import {
  BgpSpeaker,
  parseSpeakerConfig,
  type BestPathChange,
  type Logger,
  type PeerConfigInput,
  type SpeakerConfig,
} from '@tortie/bgp-speaker';
import type { BgpConfig, BgpPeer } from '../types';

/** What the glue needs of a speaker. */
export interface SpeakerLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  addPeer(p: PeerConfigInput): void;
  removePeer(address: string): void;
  originate(prefix: string): void;
  withdraw(prefix: string): void;
  on(event: 'bestPath', fn: (changes: BestPathChange[]) => void): unknown;
}

/** Where learned routes go: the kernel route table for BGP routes. */
export interface LearnedRouteSink {
  set(dst: string, nextHop: string): void;
  remove(dst: string): void;
}

/** The speaker's per-peer configuration for one computed peer. */
export function peerConfig(p: BgpPeer, me: BgpConfig): PeerConfigInput {
  return {
    address: p.address,
    asn: p.asNumber,
    port: p.port ?? 179,
    description: p.name,
    passive: p.passive ?? false,
    routeReflectorClient: p.rrClient ?? false,
    // eBGP peers (ToR) get our address as next hop, or another node's when it shares
    // the ToR's subnet (third party); iBGP mesh keeps the node's own
    nextHopSelf: p.asNumber !== me.asNumber && !p.keepOriginalNextHop,
    ...(p.asNumber !== me.asNumber && me.localSubnet ? { sharedSubnet: me.localSubnet } : {}),
    ttlSecurity: p.ttlSecurity,
    holdTime: 90,
    connectRetryTime: 2,
  };
}

/** The speaker-wide settings: a change to these needs a new speaker. */
export function speakerConfig(c: BgpConfig): SpeakerConfig {
  return parseSpeakerConfig({
    asn: c.asNumber,
    routerId: c.routerId,
    clusterId: c.routeReflectorClusterId,
    listen: { address: '::', port: c.listenPort },
    nextHop: c.routerId ? { ipv4: c.routerId } : {},
  });
}

export interface BgpPlan {
  restart: boolean;
  removePeers: string[];
  addPeers: PeerConfigInput[];
  withdraw: string[];
  originate: string[];
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** What to change to go from `prev` to `next` (everything, when the speaker restarts). */
export function planBgp(prev: BgpConfig | undefined, next: BgpConfig): BgpPlan {
  const restart =
    !prev || !next.enabled || !prev.enabled || !sameJson(speakerConfig(prev), speakerConfig(next));
  const before = new Map(restart ? [] : prev!.peers.map((p) => [p.address, peerConfig(p, prev!)]));
  const after = new Map(next.peers.map((p) => [p.address, peerConfig(p, next)]));
  const removePeers = [...before.keys()].filter(
    (a) => !after.has(a) || !sameJson(before.get(a), after.get(a)),
  );
  const addPeers = [...after.entries()]
    .filter(([a, cfg]) => !before.has(a) || !sameJson(before.get(a), cfg))
    .map(([, cfg]) => cfg);
  const had = new Set(restart ? [] : prev!.originate);
  const want = new Set(next.originate);
  return {
    restart,
    removePeers,
    addPeers,
    withdraw: [...had].filter((p) => !want.has(p)),
    originate: [...want].filter((p) => !had.has(p)),
  };
}

export class BgpGlue {
  private speaker?: SpeakerLike;
  private current?: BgpConfig;
  /** Learned best routes we installed: prefix -> next hop. */
  private readonly installed = new Map<string, string>();

  constructor(
    private readonly opts: {
      learned: LearnedRouteSink;
      logger: Logger;
      makeSpeaker?: (cfg: SpeakerConfig, logger: Logger) => SpeakerLike;
    },
  ) {}

  async apply(next: BgpConfig): Promise<void> {
    const plan = planBgp(this.current, next);
    if (plan.restart) {
      await this.stopSpeaker();
      this.current = next;
      if (!next.enabled || !next.routerId) return;
      const make =
        this.opts.makeSpeaker ??
        ((c: SpeakerConfig, l: Logger): SpeakerLike => new BgpSpeaker(c, { logger: l }));
      const s: SpeakerLike = make(speakerConfig(next), this.opts.logger);
      s.on('bestPath', (changes) => this.onBestPath(changes));
      this.speaker = s;
      await s.start();
      this.opts.logger.info('BGP speaker started', {
        asn: next.asNumber,
        routerId: next.routerId,
        clusterId: next.routeReflectorClusterId,
      });
    }
    this.current = next;
    const s = this.speaker;
    if (!s) return;
    for (const a of plan.removePeers) s.removePeer(a);
    for (const p of plan.addPeers) s.addPeer(p);
    for (const p of plan.withdraw) s.withdraw(p);
    for (const p of plan.originate) s.originate(p);
    if (plan.originate.length || plan.withdraw.length) {
      this.opts.logger.info('BGP originated prefixes changed', {
        originate: plan.originate,
        withdraw: plan.withdraw,
      });
    }
    if (plan.addPeers.length || plan.removePeers.length) {
      this.opts.logger.info('BGP peers changed', {
        added: plan.addPeers.map((p) => p.address),
        removed: plan.removePeers,
      });
    }
  }

  async stop(): Promise<void> {
    await this.stopSpeaker();
  }

  /** Learned routes currently handed to the kernel (prefix -> next hop). */
  learnedRoutes(): ReadonlyMap<string, string> {
    return this.installed;
  }

  private async stopSpeaker(): Promise<void> {
    const s = this.speaker;
    this.speaker = undefined;
    if (s) await s.stop();
    for (const dst of this.installed.keys()) this.opts.learned.remove(dst);
    this.installed.clear();
  }

  /** Best paths from peers go to the kernel; our own originated ones do not. */
  private onBestPath(changes: BestPathChange[]): void {
    for (const c of changes) {
      const nextHop = c.best?.peer ? c.best.attrs.nextHop : undefined;
      if (nextHop) {
        if (this.installed.get(c.prefix) !== nextHop) {
          this.installed.set(c.prefix, nextHop);
          this.opts.learned.set(c.prefix, nextHop);
        }
      } else if (this.installed.delete(c.prefix)) {
        this.opts.learned.remove(c.prefix);
      }
    }
  }
}
