// BGP glue: makes the node's BGP speaker match the calculation graph's BgpConfig (peers,
// originated blocks, route-reflector role) and hands the routes it learns to the kernel.
// The diff is @tortie/bgp-topology's planBgp (shared with tortie-rr); the speaker is
// behind a small interface so the glue is tested with a recording fake and run with the
// real @tortie/bgp-speaker.
//
// Graceful restart (RFC 4724) is on, as in Calico's BIRD templates: when the agent
// stops, its sessions close without a NOTIFICATION and the kernel keeps its routes, so
// the other nodes keep the routes to our blocks (stale) and traffic flows until the
// restarted agent's speaker is back and has sent End-of-RIB; the other way round, our
// speaker keeps a restarting node's routes.
import fs from 'node:fs';
import path from 'node:path';
import {
  BgpSpeaker,
  createLogger,
  kernelMetric,
  peerKey,
  PRIORITY_BASE,
  type BestPathChange,
  type Logger,
  type PeerConfigInput,
  type SpeakerConfig,
} from '@tortie/bgp-speaker';
import {
  normalRoutePriority,
  planBgp,
  logMissingPasswords,
  resolvePasswords,
  speakerConfig,
  type BgpConfig,
  type SecretReader,
} from '@tortie/bgp-topology';

/** What the glue needs of a speaker. */
export interface SpeakerLike {
  start(): Promise<void>;
  /** `graceful`: close the sessions without NOTIFICATION (peers keep our routes). */
  stop(opts?: { graceful?: boolean }): Promise<void>;
  addPeer(p: PeerConfigInput): void;
  setPeerBfd(key: string, bfd: PeerConfigInput['bfd']): void;
  /** `key`: peerKey(address, port) of @tortie/bgp-speaker. */
  removePeer(key: string): void;
  /** Originates (or re-originates, replacing) `prefix` with these attributes. */
  originate(prefix: string, opts?: { localPref?: number }): void;
  /** BGPConfiguration prefixAdvertisements: communities added after each export filter. */
  setExportCommunities(rules: SpeakerConfig['exportCommunities']): void;
  withdraw(prefix: string): void;
  /** Serves the speaker's control socket (peers, routes: `tortiectl node status`). */
  serveControl?(path: string): Promise<void>;
  on(event: 'bestPath', fn: (changes: BestPathChange[]) => void): unknown;
  on(event: 'endOfRib', fn: (key: string) => void): unknown;
}

/** Where learned routes go: the kernel route table for BGP routes. */
export interface LearnedRouteSink {
  /** `metric`: the kernel route's metric (the route's priority, from its LOCAL_PREF). */
  set(dst: string, nextHop: string, metric?: number): void;
  remove(dst: string): void;
  /**
   * Called once after the speaker started, when every peer has sent End-of-RIB (or
   * `endOfRibWaitMs` ran out): BGP's view is complete. Learned routes the kernel still
   * has from before an agent restart and that were not set by then can go; until then
   * a sink should keep them (RFC 4724 §4.1: our forwarding state survives the restart).
   */
  complete?(): void;
}

export class BgpGlue {
  private speaker?: SpeakerLike;
  private current?: BgpConfig;
  /** Learned best routes we installed: prefix -> next hop and kernel metric. */
  private readonly installed = new Map<string, { nextHop: string; metric: number }>();

  constructor(
    private readonly opts: {
      learned: LearnedRouteSink;
      logger: Logger;
      makeSpeaker?: (cfg: SpeakerConfig, logger: Logger) => SpeakerLike;
      /** How long to wait for every peer's End-of-RIB before calling learned.complete(). */
      endOfRibWaitMs?: number;
      /** Where the running speaker answers `tortiectl node status`. */
      controlSocket?: string;
      /** The speaker's own logger (default: component "bgp", JSON on stderr). */
      speakerLogger?: Logger;
      /** Reads BGP passwords (Secret keys); without one, peers with a password get none. */
      readSecret?: SecretReader;
      /** How often passwords are read again while some peer has one (default 10 s). */
      secretRefreshMs?: number;
    },
  ) {
    this.speakerLog = opts.speakerLogger ?? createLogger('bgp');
  }

  /** Its level follows BGPConfiguration logSeverityScreen, as BIRD's debug setting does. */
  private readonly speakerLog: Logger;

  /** Peers (peerKeys) whose End-of-RIB we wait for since the speaker started. */
  private awaitingEndOfRib = new Set<string>();
  private completeTimer?: NodeJS.Timeout;

  /** The last configuration given, before its passwords were read. */
  private wanted?: BgpConfig;
  /** Applies run one at a time (the agent's, and password refreshes). */
  private queue: Promise<void> = Promise.resolve();
  private refreshTimer?: NodeJS.Timeout;
  private missingReported = '';

  apply(next: BgpConfig): Promise<void> {
    this.wanted = next;
    const run = this.queue.then(() => this.applyWithPasswords(next));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** A Secret may change after the peers did: read the passwords again now and then. */
  private scheduleRefresh(cfg: BgpConfig): void {
    clearTimeout(this.refreshTimer);
    if (!this.opts.readSecret || !cfg.peers.some((p) => p.password)) return;
    this.refreshTimer = setTimeout(() => {
      if (this.wanted === cfg) void this.apply(cfg).catch(() => undefined);
    }, this.opts.secretRefreshMs ?? 10_000);
    this.refreshTimer.unref();
  }

  private async applyWithPasswords(next: BgpConfig): Promise<void> {
    const read = this.opts.readSecret ?? (async () => undefined);
    const { config, missing } = await resolvePasswords(next, read);
    const report = JSON.stringify(missing);
    if (report !== this.missingReported) logMissingPasswords(this.opts.logger, missing);
    this.missingReported = report;
    this.scheduleRefresh(next);
    await this.applyResolved(config);
  }

  private async applyResolved(next: BgpConfig): Promise<void> {
    const plan = planBgp(this.current, next);
    if (plan.restart) {
      await this.stopSpeaker();
      this.current = next;
      // no BGP: nothing will be relearned, so routes kept from before a restart can go
      if (!next.enabled || !next.routerId) return this.complete('BGP is off');
      const make =
        this.opts.makeSpeaker ??
        ((c: SpeakerConfig, l: Logger): SpeakerLike => new BgpSpeaker(c, { logger: l }));
      const cfg = speakerConfig(next);
      this.speakerLog.level = cfg.logLevel;
      const s: SpeakerLike = make(cfg, this.speakerLog);
      s.on('bestPath', (changes) => this.onBestPath(changes));
      s.on('endOfRib', (key) => this.onEndOfRib(s, key));
      this.speaker = s;
      await s.start();
      if (this.opts.controlSocket && s.serveControl) {
        const socket = this.opts.controlSocket;
        // status only: a socket we cannot serve must not stop BGP
        try {
          fs.mkdirSync(path.dirname(socket), { recursive: true });
          await s.serveControl(socket);
        } catch (e) {
          this.opts.logger.error('cannot serve the BGP control socket', {
            socket,
            error: (e as Error).message,
          });
        }
      }
      this.waitForEndOfRib(next);
      this.opts.logger.info('BGP speaker started', {
        asn: next.asNumber,
        routerId: next.routerId,
        clusterId: next.routeReflectorClusterId,
      });
    }
    this.current = next;
    const s = this.speaker;
    if (!s) return;
    if (plan.logLevel) {
      this.speakerLog.level = plan.logLevel;
      this.opts.logger.info('BGP log level changed', { level: plan.logLevel });
    }
    for (const a of plan.removePeers) s.removePeer(a);
    for (const p of plan.addPeers) s.addPeer(p);
    for (const b of plan.setBfd) s.setPeerBfd(b.key, b.bfd);
    for (const p of plan.withdraw) s.withdraw(p);
    for (const p of plan.originate)
      s.originate(p, { localPref: PRIORITY_BASE - normalRoutePriority(next, p) });
    if (plan.originate.length || plan.withdraw.length) {
      this.opts.logger.info('BGP originated prefixes changed', {
        originate: plan.originate,
        withdraw: plan.withdraw,
      });
    }
    if (plan.exportCommunities) {
      s.setExportCommunities(plan.exportCommunities);
      this.opts.logger.info('BGP prefixAdvertisements communities changed', {
        rules: plan.exportCommunities.map((r) => `${r.cidr} ${r.communities.join(' ')}`),
      });
    }
    if (plan.addPeers.length || plan.removePeers.length) {
      this.opts.logger.info('BGP peers changed', {
        added: plan.addPeers.map((p) => p.address),
        removed: plan.removePeers,
      });
    }
  }

  /**
   * The agent stops: sessions close without NOTIFICATION and learned routes stay in the
   * kernel, so forwarding goes on both ways until the next agent's speaker takes over.
   */
  async stop(): Promise<void> {
    clearTimeout(this.refreshTimer);
    this.wanted = undefined;
    const s = this.speaker;
    this.speaker = undefined;
    clearTimeout(this.completeTimer);
    if (s) await s.stop({ graceful: true });
    this.installed.clear();
  }

  /** Learned routes currently handed to the kernel (prefix -> next hop and metric). */
  learnedRoutes(): ReadonlyMap<string, { nextHop: string; metric: number }> {
    return this.installed;
  }

  /** Waits for End-of-RIB from the configured peers, at most endOfRibWaitMs. */
  private waitForEndOfRib(cfg: BgpConfig): void {
    this.awaitingEndOfRib = new Set(cfg.peers.map((p) => peerKey(p.address, p.port)));
    clearTimeout(this.completeTimer);
    if (this.awaitingEndOfRib.size === 0) return this.complete('no peers');
    this.completeTimer = setTimeout(
      () => this.complete('End-of-RIB wait ran out'),
      this.opts.endOfRibWaitMs ?? 30_000,
    );
    this.completeTimer.unref();
  }

  private onEndOfRib(s: SpeakerLike, key: string): void {
    if (s !== this.speaker || !this.awaitingEndOfRib.delete(key)) return;
    if (this.awaitingEndOfRib.size === 0) this.complete('End-of-RIB from every peer');
  }

  private complete(why: string): void {
    clearTimeout(this.completeTimer);
    this.completeTimer = undefined;
    this.awaitingEndOfRib.clear();
    this.opts.logger.info('BGP routes complete', { why, learned: this.installed.size });
    this.opts.learned.complete?.();
  }

  private async stopSpeaker(): Promise<void> {
    const s = this.speaker;
    this.speaker = undefined;
    clearTimeout(this.completeTimer);
    if (s) await s.stop();
    for (const dst of this.installed.keys()) this.opts.learned.remove(dst);
    this.installed.clear();
  }

  /**
   * Best paths from peers go to the kernel, at the metric confd's kernel protocol gives
   * them (2^31-1 - LOCAL_PREF: a BGPFilter's setPriority reaches the kernel); our own
   * originated ones do not.
   */
  private onBestPath(changes: BestPathChange[]): void {
    for (const c of changes) {
      const nextHop = c.best?.peer ? c.best.attrs.nextHop : undefined;
      if (nextHop) {
        const metric = kernelMetric(c.best!.attrs);
        const had = this.installed.get(c.prefix);
        if (had?.nextHop !== nextHop || had.metric !== metric) {
          this.installed.set(c.prefix, { nextHop, metric });
          this.opts.learned.set(c.prefix, nextHop, metric);
        }
      } else if (this.installed.delete(c.prefix)) {
        this.opts.learned.remove(c.prefix);
      }
    }
  }
}
