// The Syncer: list, then watch, every kind a consumer asks for; report "in-sync" once
// all are listed. When a watch breaks (compaction, a lost connection) it re-lists and
// emits only what changed meanwhile: a consumer never sees everything deleted and
// re-added, and keeps its last state while the datastore is away.
import type { Kind, Resource } from '@tortie/api';
import type { Logger } from 'winston';
import {
  keyOf,
  keyText,
  type Datastore,
  type ResourceKey,
  type Watch,
  type WatchEvent,
} from './datastore';

export type SyncStatus = 'wait-for-datastore' | 'resyncing' | 'in-sync';

export type SyncUpdate =
  { type: 'set'; resource: Resource } | { type: 'deleted'; key: ResourceKey; resource: Resource };

export interface SyncerOptions {
  /** First retry delay after a failed list; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  logger?: Logger;
}

const idOf = (r: Resource) => `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;

export class Syncer {
  private readonly cache = new Map<Kind, Map<string, Resource>>();
  private readonly watches = new Map<Kind, Watch>();
  private readonly synced = new Set<Kind>();
  private status: SyncStatus = 'wait-for-datastore';
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly ds: Datastore,
    private readonly kinds: Kind[],
    private readonly onUpdates: (updates: SyncUpdate[]) => void,
    private readonly onStatus: (s: SyncStatus) => void = () => undefined,
    private readonly opts: SyncerOptions = {},
  ) {}

  start(): void {
    this.onStatus(this.status);
    for (const k of this.kinds) void this.resync(k, this.opts.retryMs ?? 200);
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watches.values()) w.stop();
    for (const t of this.timers) clearTimeout(t);
  }

  /** The consumer's current view of a kind. */
  snapshot(kind: Kind): Resource[] {
    return [...(this.cache.get(kind)?.values() ?? [])];
  }

  private setStatus(s: SyncStatus): void {
    if (s === this.status) return;
    this.status = s;
    this.onStatus(s);
  }

  private async resync(kind: Kind, delay: number): Promise<void> {
    if (this.stopped) return;
    let list;
    try {
      list = await this.ds.list({ kind });
    } catch (err) {
      this.opts.logger?.warn('list failed; keeping the last known state', {
        kind,
        error: (err as Error).message,
        retryMs: delay,
      });
      const t = setTimeout(() => {
        this.timers.delete(t);
        void this.resync(kind, Math.min(delay * 2, this.opts.maxRetryMs ?? 5000));
      }, delay);
      this.timers.add(t);
      return;
    }
    if (this.stopped) return;
    const cache = this.cache.get(kind) ?? new Map<string, Resource>();
    this.cache.set(kind, cache);
    const seen = new Set<string>();
    const updates: SyncUpdate[] = [];
    for (const r of list.items) {
      const id = idOf(r);
      seen.add(id);
      if (cache.get(id)?.metadata.resourceVersion !== r.metadata.resourceVersion) {
        cache.set(id, r);
        updates.push({ type: 'set', resource: r });
      }
    }
    for (const [id, r] of cache) {
      if (seen.has(id)) continue;
      cache.delete(id);
      updates.push({ type: 'deleted', key: keyOf(r), resource: r });
    }
    if (updates.length) this.onUpdates(updates);
    this.synced.add(kind);
    if (this.synced.size === this.kinds.length) this.setStatus('in-sync');
    this.watches.get(kind)?.stop();
    this.watches.set(
      kind,
      this.ds.watch(kind, list.revision, (e) => this.onEvent(kind, e)),
    );
  }

  private onEvent(kind: Kind, e: WatchEvent): void {
    if (this.stopped) return;
    if (e.type === 'bookmark') return;
    if (e.type === 'error') {
      this.opts.logger?.warn('watch failed; re-listing', {
        kind,
        code: e.error.code,
        error: e.error.message,
      });
      this.watches.get(kind)?.stop();
      this.watches.delete(kind);
      this.synced.delete(kind);
      this.setStatus('resyncing');
      void this.resync(kind, this.opts.retryMs ?? 200);
      return;
    }
    const cache = this.cache.get(kind)!;
    const id = idOf(e.resource);
    if (e.type === 'deleted') {
      if (!cache.delete(id)) return;
      this.onUpdates([{ type: 'deleted', key: keyOf(e.resource), resource: e.resource }]);
    } else {
      if (cache.get(id)?.metadata.resourceVersion === e.resource.metadata.resourceVersion) return;
      cache.set(id, e.resource);
      this.onUpdates([{ type: 'set', resource: e.resource }]);
    }
  }
}

export { keyText };
