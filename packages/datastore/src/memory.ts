// In-process datastore for tests and a single-process lab: one revision counter, an
// event log watches replay from, and compaction to exercise the syncer's recovery.
import { KINDS, type Kind, type Resource } from '@tortie/api';
import {
  DatastoreError,
  keyOf,
  keyText,
  type Datastore,
  type ListOptions,
  type ListResult,
  type ResourceKey,
  type Watch,
  type WatchEvent,
} from './datastore';

type Stored = { resource: Resource; revision: number };
type LoggedEvent = { type: 'added' | 'modified' | 'deleted'; resource: Resource; revision: number };

function storageKey(k: ResourceKey): string {
  return `${k.kind}/${KINDS[k.kind].namespaced ? (k.namespace ?? 'default') : ''}/${k.name}`;
}

const clone = <T>(x: T): T => structuredClone(x);

export class MemoryDatastore implements Datastore {
  private revision = 0;
  private compactedAt = 0;
  private readonly data = new Map<string, Stored>();
  private readonly log: LoggedEvent[] = [];
  private readonly watchers = new Set<{
    kind: Kind;
    from: number;
    onEvent: (e: WatchEvent) => void;
  }>();

  async get(key: ResourceKey): Promise<Resource | undefined> {
    const s = this.data.get(storageKey(key));
    return s ? clone(s.resource) : undefined;
  }

  async list(opts: ListOptions): Promise<ListResult> {
    const items = [...this.data.values()]
      .map((s) => s.resource)
      .filter(
        (r) =>
          r.kind === opts.kind &&
          (opts.namespace === undefined || r.metadata.namespace === opts.namespace) &&
          (opts.namePrefix === undefined || r.metadata.name.startsWith(opts.namePrefix)),
      )
      .sort((a, b) => storageKey(keyOf(a)).localeCompare(storageKey(keyOf(b))))
      .map(clone);
    return { items, revision: String(this.revision) };
  }

  async create(r: Resource): Promise<Resource> {
    const k = storageKey(keyOf(r));
    if (this.data.has(k))
      throw new DatastoreError('AlreadyExists', `${keyText(keyOf(r))} already exists`);
    return this.write(k, r, 'added');
  }

  async update(r: Resource): Promise<Resource> {
    const k = storageKey(keyOf(r));
    const cur = this.data.get(k);
    if (!cur) throw new DatastoreError('NotFound', `${keyText(keyOf(r))} not found`);
    this.checkVersion(cur, r.metadata.resourceVersion, keyOf(r));
    return this.write(k, r, 'modified', cur.resource);
  }

  async delete(key: ResourceKey, opts: { resourceVersion?: string } = {}): Promise<Resource> {
    const k = storageKey(key);
    const cur = this.data.get(k);
    if (!cur) throw new DatastoreError('NotFound', `${keyText(key)} not found`);
    this.checkVersion(cur, opts.resourceVersion, key);
    this.data.delete(k);
    this.emit({ type: 'deleted', resource: cur.resource, revision: ++this.revision });
    return clone(cur.resource);
  }

  watch(kind: Kind, revision: string, onEvent: (e: WatchEvent) => void): Watch {
    const from = Number(revision);
    const w = { kind, from, onEvent };
    queueMicrotask(() => {
      if (from < this.compactedAt) {
        onEvent({
          type: 'error',
          error: new DatastoreError(
            'Compacted',
            `revision ${from} has been compacted (oldest ${this.compactedAt})`,
          ),
        });
        return;
      }
      for (const e of this.log) if (e.revision > from && e.resource.kind === kind) deliver(w, e);
      this.watchers.add(w);
    });
    return { stop: () => this.watchers.delete(w) };
  }

  /** Forgets history up to `revision` (like etcd compaction); older watches then fail. */
  compact(revision = this.revision): void {
    this.compactedAt = revision;
    while (this.log.length && this.log[0].revision <= revision) this.log.shift();
  }

  /** Ends every watch with an error, as a lost connection would. */
  disconnectWatches(): void {
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      w.onEvent({
        type: 'error',
        error: new DatastoreError('Unavailable', 'watch connection lost'),
      });
    }
  }

  /** Everything stored, for persisting (FileDatastore). History is not kept. */
  snapshot(): { revision: number; resources: Resource[] } {
    return {
      revision: this.revision,
      resources: [...this.data.values()].map((s) => clone(s.resource)),
    };
  }

  /** A datastore holding a snapshot, at its revision (history starts there). */
  static fromSnapshot(snap: { revision: number; resources: Resource[] }): MemoryDatastore {
    const ds = new MemoryDatastore();
    ds.revision = snap.revision;
    ds.compactedAt = snap.revision;
    for (const r of snap.resources) {
      ds.data.set(storageKey(keyOf(r)), {
        resource: clone(r),
        revision: Number(r.metadata.resourceVersion ?? snap.revision),
      });
    }
    return ds;
  }

  get currentRevision(): number {
    return this.revision;
  }

  async close(): Promise<void> {
    this.watchers.clear();
  }

  private checkVersion(cur: Stored, expected: string | undefined, key: ResourceKey): void {
    if (expected !== undefined && expected !== String(cur.revision)) {
      throw new DatastoreError(
        'Conflict',
        `${keyText(key)} was modified (resourceVersion ${cur.revision}, expected ${expected})`,
      );
    }
  }

  private write(k: string, r: Resource, type: 'added' | 'modified', previous?: Resource): Resource {
    const revision = ++this.revision;
    const stored: Resource = clone(r);
    stored.metadata.resourceVersion = String(revision);
    stored.metadata.uid = previous?.metadata.uid ?? stored.metadata.uid ?? `uid-${revision}`;
    stored.metadata.creationTimestamp =
      previous?.metadata.creationTimestamp ?? new Date().toISOString();
    this.data.set(k, { resource: stored, revision });
    this.emit({ type, resource: stored, revision });
    return clone(stored);
  }

  private emit(e: LoggedEvent): void {
    this.log.push(e);
    for (const w of this.watchers) if (w.kind === e.resource.kind) deliver(w, e);
  }
}

function deliver(w: { onEvent: (e: WatchEvent) => void }, e: LoggedEvent): void {
  w.onEvent({ type: e.type, resource: clone(e.resource), revision: String(e.revision) });
}
