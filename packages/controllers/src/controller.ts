// The controllers' loop: a Syncer over Services and IP pools; each change queues the
// Services it concerns, and one worker reconciles them one at a time (a compare-and-swap
// conflict puts a Service back in the queue). After the first full view, addresses of
// Services that went away while nobody watched are released.
import type { Resource } from '@tortie/api';
import {
  DatastoreError,
  Syncer,
  type Datastore,
  type SyncStatus,
  type SyncUpdate,
} from '@tortie/datastore';
import type { Logger } from 'winston';
import { LoadBalancerIpam } from './lb-ipam';

export class Controllers {
  private readonly lb: LoadBalancerIpam;
  private readonly syncer: Syncer;
  private readonly known = new Set<string>();
  private readonly queue = new Set<string>();
  /** the IP pools as the watch has them: no read per Service */
  private readonly pools = new Map<string, Resource<'IPPool'>>();
  private inSync = false;
  private working?: Promise<void>;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    ds: Datastore,
    private readonly log: Logger,
  ) {
    this.lb = new LoadBalancerIpam(ds, log);
    this.syncer = new Syncer(ds, ['KubernetesService', 'IPPool'], this.onUpdates, this.onStatus, {
      logger: log,
    });
  }

  start(): void {
    this.syncer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.syncer.stop();
    await this.working;
  }

  /** Resolves once the queue is empty and nothing runs (tests). */
  idle(): Promise<void> {
    if (this.inSync && !this.working && this.queue.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private onUpdates = (updates: SyncUpdate[]): void => {
    for (const u of updates) {
      const r: Resource = u.resource;
      if (r.kind === 'IPPool') {
        if (u.type === 'set') this.pools.set(r.metadata.name, r as Resource<'IPPool'>);
        else this.pools.delete(r.metadata.name);
        for (const k of this.known) this.queue.add(k); // pools decide every address
        continue;
      }
      const k = `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;
      if (u.type === 'set') this.known.add(k);
      else this.known.delete(k);
      this.queue.add(k);
    }
    this.kick();
  };

  private onStatus = (s: SyncStatus): void => {
    if (s !== 'in-sync' || this.inSync) return;
    this.inSync = true;
    this.working = this.lb
      .collect()
      .then((released) => {
        if (released.length) this.log.info('released addresses of deleted services', { released });
      })
      .catch((e: Error) => {
        this.log.error('collecting load-balancer addresses failed', { error: e.message });
      })
      .finally(() => {
        this.working = undefined;
        this.kick();
      });
  };

  private kick(): void {
    if (!this.inSync || this.working || this.stopped) return;
    const next = this.queue.values().next();
    if (next.done) {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    const k = next.value;
    this.queue.delete(k);
    const [ns, ...rest] = k.split('/');
    this.working = this.lb
      .reconcile(ns, rest.join('/'), [...this.pools.values()])
      .catch((e: Error) => {
        // a conflict or an unreachable datastore: try this one again
        if (e instanceof DatastoreError && (e.code === 'Conflict' || e.code === 'Unavailable')) {
          this.queue.add(k);
        }
      })
      .finally(() => {
        this.working = undefined;
        setImmediate(() => this.kick());
      });
  }
}
