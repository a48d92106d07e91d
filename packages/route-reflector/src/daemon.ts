// tortie-rr configured from the datastore: the Syncer's list+watch of Nodes, BGPPeers
// and BGPConfigurations -> validated resources -> the reflector's BgpConfig
// (@tortie/bgp-topology, as a node agent computes its own) -> the speaker, changing only
// the sessions whose peers changed.
// Nothing is applied before the first complete list. A datastore that does not answer,
// a bad resource or a Node that cannot be a reflector is logged as an error naming it,
// and the reflector keeps running with its last good configuration.
import type { Logger } from '@tortie/bgp-speaker';
import { Syncer, type Datastore, type SyncStatus, type SyncUpdate } from '@tortie/datastore';
import type { BgpConfig } from '@tortie/bgp-topology';
import { REFLECTOR_KINDS, ReflectorResources } from './resources';
import { Reflector } from './reflector';
import { reflectorTopology, TopologyError } from './topology';

export interface DatastoreReflectorOptions {
  /** The reflector's Node name. */
  node: string;
  logger: Logger;
  reflector: Reflector;
  /** For messages: "etcdv3 at http://...". */
  where: string;
  /** CALICO_ROUTER_ID. */
  routerId?: string;
  /** Changes arriving within this many ms are applied together (default 50). */
  settleMs?: number;
  /** Syncer retry delays (tests shorten them). */
  retryMs?: number;
  maxRetryMs?: number;
}

export interface ReflectorStatus {
  syncStatus: SyncStatus;
  /** The configuration the speaker runs with (undefined before the first good one). */
  config?: BgpConfig;
  /** Why the datastore's current content is not applied, or undefined. */
  error?: string;
}

export class DatastoreReflector {
  private readonly resources = new ReflectorResources();
  private readonly syncer: Syncer;
  private syncStatus: SyncStatus = 'wait-for-datastore';
  private synced = false;
  private error?: string;
  private datastoreError?: string;
  private timer?: NodeJS.Timeout;
  /** Applies run one after another. */
  private applying: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    ds: Datastore,
    private readonly opts: DatastoreReflectorOptions,
  ) {
    this.syncer = new Syncer(
      this.observed(ds),
      [...REFLECTOR_KINDS],
      (u) => this.onUpdates(u),
      (s) => this.onStatus(s),
      { retryMs: opts.retryMs, maxRetryMs: opts.maxRetryMs },
    );
  }

  start(): void {
    this.syncer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.syncer.stop();
    await this.applying;
    await this.opts.reflector.stop();
  }

  status(): ReflectorStatus {
    return {
      syncStatus: this.syncStatus,
      config: this.opts.reflector.config,
      error: this.datastoreError ?? this.error,
    };
  }

  /** Resolves once the changes seen so far are applied (tests). */
  async settled(): Promise<void> {
    while (this.timer) await new Promise((r) => setTimeout(r, 5));
    await this.applying;
  }

  /** The datastore, with failed reads reported once per outage. */
  private observed(ds: Datastore): Datastore {
    const log = this.opts.logger;
    const failed = (err: Error) => {
      if (this.datastoreError === undefined) {
        log.error(
          `cannot read the datastore (${this.opts.where}): ${err.message}; keeping the last good configuration and retrying`,
        );
      }
      this.datastoreError = `datastore ${this.opts.where}: ${err.message}`;
    };
    return {
      get: (k) => ds.get(k),
      create: (r) => ds.create(r),
      update: (r) => ds.update(r),
      delete: (k, o) => ds.delete(k, o),
      close: () => ds.close(),
      list: async (o) => {
        try {
          const r = await ds.list(o);
          if (this.datastoreError !== undefined) log.info('datastore answers again');
          this.datastoreError = undefined;
          return r;
        } catch (err) {
          failed(err as Error);
          throw err;
        }
      },
      watch: (kind, rev, onEvent) =>
        ds.watch(kind, rev, (e) => {
          if (e.type === 'error' && e.error.code !== 'Compacted') failed(e.error);
          onEvent(e);
        }),
    };
  }

  private onUpdates(updates: SyncUpdate[]): void {
    for (const p of this.resources.apply(updates)) this.opts.logger.error(p);
    this.schedule();
  }

  private onStatus(s: SyncStatus): void {
    this.syncStatus = s;
    if (s === 'in-sync') {
      this.synced = true;
      this.schedule();
    }
  }

  private schedule(): void {
    if (!this.synced || this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.applying = this.applying.then(() => this.recompute());
    }, this.opts.settleMs ?? 50);
  }

  private async recompute(): Promise<void> {
    if (this.stopped) return;
    let next: BgpConfig;
    try {
      next = reflectorTopology({
        ...this.resources.world(this.opts.node),
        routerId: this.opts.routerId,
      });
    } catch (err) {
      if (!(err instanceof TopologyError)) throw err;
      const kept = this.opts.reflector.config ? 'keeping the last good configuration' : 'waiting';
      if (this.error !== err.message) this.opts.logger.error(`${err.message}; ${kept}`);
      this.error = err.message;
      return;
    }
    if (this.error !== undefined) this.opts.logger.info('configuration usable again');
    this.error = undefined;
    try {
      await this.opts.reflector.apply(next);
    } catch (err) {
      // e.g. the listen port is taken: say so, try again with the next change
      this.error = `cannot apply the configuration: ${(err as Error).message}`;
      this.opts.logger.error(this.error);
    }
  }
}
