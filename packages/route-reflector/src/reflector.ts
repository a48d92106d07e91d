// Keeps one BGP speaker matching the reflector's computed BgpConfig. The diff is
// @tortie/bgp-topology's planBgp (the same per-peer settings a node agent uses): peers
// that did not change keep their sessions; a changed AS, router id, cluster id or listen
// port needs a new speaker. The speaker sits behind a small interface so this is unit-tested
// with a recording fake.
import {
  BgpSpeaker,
  type Logger,
  type PeerConfigInput,
  type SpeakerConfig,
} from '@tortie/bgp-speaker';
import {
  planBgp,
  logMissingPasswords,
  resolvePasswords,
  speakerConfig,
  type BgpConfig,
  type SecretReader,
} from '@tortie/bgp-topology';

/** What the reflector needs of a speaker. */
export interface ReflectorSpeakerLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  addPeer(p: PeerConfigInput): void;
  setPeerBfd(key: string, bfd: PeerConfigInput['bfd']): void;
  /** `key`: peerKey(address, port) of @tortie/bgp-speaker. */
  removePeer(key: string): void;
  /** BGPConfiguration prefixAdvertisements: communities added after each export filter. */
  setExportCommunities(rules: SpeakerConfig['exportCommunities']): void;
  serveControl(path: string): Promise<void>;
}

export type MakeSpeaker = (cfg: SpeakerConfig, logger: Logger) => ReflectorSpeakerLike;

/**
 * The speaker-wide settings of a reflector with this configuration: the node agent's
 * (graceful restart too, so clients' routes survive their agents' restarts).
 */
export function reflectorSpeakerSettings(c: BgpConfig, logLevel = 'info'): SpeakerConfig {
  return speakerConfig(c, logLevel);
}

export interface AppliedChange {
  restarted: boolean;
  added: string[];
  removed: string[];
}

export class Reflector {
  private speaker?: ReflectorSpeakerLike;
  private current?: BgpConfig;

  constructor(
    private readonly opts: {
      logger: Logger;
      controlSocket?: string;
      logLevel?: string;
      makeSpeaker?: MakeSpeaker;
      /** Reads BGP passwords (Secret keys); a peer whose key cannot be read gets no session. */
      readSecret?: SecretReader;
    },
  ) {}

  /** The configuration the speaker runs with now. */
  get config(): BgpConfig | undefined {
    return this.current;
  }

  async apply(wanted: BgpConfig): Promise<AppliedChange> {
    const { config: next, missing } = await resolvePasswords(
      wanted,
      this.opts.readSecret ?? (async () => undefined),
    );
    logMissingPasswords(this.opts.logger, missing);
    const plan = planBgp(this.current, next);
    if (plan.restart) {
      await this.stop();
      const make = this.opts.makeSpeaker ?? ((c, logger) => new BgpSpeaker(c, { logger }));
      const settings = reflectorSpeakerSettings(next, this.opts.logLevel);
      const s = make(settings, this.opts.logger);
      await s.start();
      if (this.opts.controlSocket) await s.serveControl(this.opts.controlSocket);
      this.speaker = s;
      this.opts.logger.info('reflector speaker started', {
        asn: settings.asn,
        routerId: settings.routerId,
        clusterId: settings.clusterId,
      });
    }
    this.current = next;
    const s = this.speaker!;
    for (const a of plan.removePeers) s.removePeer(a);
    for (const p of plan.addPeers) s.addPeer(p);
    for (const b of plan.setBfd) s.setPeerBfd(b.key, b.bfd);
    // as a calico-node reflector's BIRD: reflected routes get its prefixAdvertisements
    if (plan.exportCommunities) s.setExportCommunities(plan.exportCommunities);
    const change = {
      restarted: plan.restart,
      added: plan.addPeers.map((p) => p.address),
      removed: plan.removePeers,
    };
    if (change.added.length || change.removed.length) {
      this.opts.logger.info('reflector peers changed', {
        ...change,
        clients: next.peers.filter((p) => p.rrClient).length,
        peers: next.peers.length,
      });
    }
    return change;
  }

  async stop(): Promise<void> {
    const s = this.speaker;
    this.speaker = undefined;
    this.current = undefined;
    if (s) await s.stop();
  }
}
