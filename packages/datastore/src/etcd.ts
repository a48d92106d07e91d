// The etcd v3 backend (the etcd3 client). Keys: /tortie/v1/<plural>/[<namespace>/]<name>,
// values: the resource as JSON without its resourceVersion, which is the key's etcd mod
// revision. Writes are transactions comparing that revision (CAS); watches start at a
// revision and report etcd's compaction as 'Compacted'.
import type { Etcd3, IKeyValue, IOptions } from 'etcd3';
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

export const ETCD_PREFIX = '/tortie/v1/';

function kindPrefix(kind: Kind): string {
  return `${ETCD_PREFIX}${KINDS[kind].plural}/`;
}

function etcdKey(k: ResourceKey): string {
  return KINDS[k.kind].namespaced
    ? `${kindPrefix(k.kind)}${k.namespace ?? 'default'}/${k.name}`
    : `${kindPrefix(k.kind)}${k.name}`;
}

function decode(kv: IKeyValue): Resource {
  const r = JSON.parse(kv.value.toString('utf8')) as Resource;
  r.metadata.resourceVersion = String(kv.mod_revision);
  return r;
}

function encode(r: Resource, created?: Resource): string {
  const { resourceVersion: _rv, ...metadata } = r.metadata;
  metadata.uid = created?.metadata.uid ?? metadata.uid ?? globalThis.crypto.randomUUID();
  metadata.creationTimestamp =
    created?.metadata.creationTimestamp ?? metadata.creationTimestamp ?? new Date().toISOString();
  return JSON.stringify({ ...r, metadata });
}

/**
 * The etcd3 client (with gRPC and protobufjs) is loaded on first use: it takes ~0.25 s to
 * load, and programs that import this package for another backend, or that only print
 * their --help, must not pay for it.
 */
function etcd3(): typeof import('etcd3') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('etcd3') as typeof import('etcd3');
}

export class EtcdDatastore implements Datastore {
  private readonly client: Etcd3;

  constructor(
    private readonly endpoints: string[],
    options: Partial<IOptions> = {},
  ) {
    this.client = new (etcd3().Etcd3)({
      hosts: endpoints,
      dialTimeout: 3000,
      defaultCallOptions: () => ({ deadline: Date.now() + 5000 }),
      ...options,
    });
  }

  /** Runs an etcd call, turning transport failures into a clear 'Unavailable'. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DatastoreError) throw err;
      throw new DatastoreError(
        'Unavailable',
        `etcd at ${this.endpoints.join(',')} did not answer ${what}: ${(err as Error).message}`,
      );
    }
  }

  async get(key: ResourceKey): Promise<Resource | undefined> {
    const res = await this.call(`get ${keyText(key)}`, () => this.client.get(etcdKey(key)).exec());
    return res.kvs.length ? decode(res.kvs[0]) : undefined;
  }

  async list(opts: ListOptions): Promise<ListResult> {
    let prefix = kindPrefix(opts.kind);
    if (opts.namespace !== undefined && KINDS[opts.kind].namespaced) prefix += `${opts.namespace}/`;
    const res = await this.call(`list ${opts.kind}`, () =>
      this.client.getAll().prefix(prefix).exec(),
    );
    const items = res.kvs
      .map(decode)
      .filter((r) => opts.namePrefix === undefined || r.metadata.name.startsWith(opts.namePrefix));
    return { items, revision: String(res.header.revision) };
  }

  async create(r: Resource): Promise<Resource> {
    const key = etcdKey(keyOf(r));
    const value = encode(r);
    const res = await this.call(`create ${keyText(keyOf(r))}`, () =>
      this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(value)).commit(),
    );
    if (!res.succeeded)
      throw new DatastoreError('AlreadyExists', `${keyText(keyOf(r))} already exists`);
    const stored = JSON.parse(value) as Resource;
    stored.metadata.resourceVersion = String(res.header.revision);
    return stored;
  }

  async update(r: Resource): Promise<Resource> {
    const k = keyOf(r);
    const key = etcdKey(k);
    const { resourceVersion, uid, creationTimestamp } = r.metadata;
    if (resourceVersion !== undefined && uid !== undefined && creationTimestamp !== undefined)
      return this.updateAt(r, resourceVersion);
    const current = await this.get(k);
    if (!current) throw new DatastoreError('NotFound', `${keyText(k)} not found`);
    const expected = r.metadata.resourceVersion ?? current.metadata.resourceVersion!;
    const value = encode(r, current);
    const res = await this.call(`update ${keyText(k)}`, () =>
      this.client.if(key, 'Mod', '==', expected).then(this.client.put(key).value(value)).commit(),
    );
    if (!res.succeeded) {
      throw new DatastoreError(
        'Conflict',
        `${keyText(k)} was modified (expected resourceVersion ${expected})`,
      );
    }
    const stored = JSON.parse(value) as Resource;
    stored.metadata.resourceVersion = String(res.header.revision);
    return stored;
  }

  /**
   * A compare-and-swap on a resource read before (its resourceVersion, uid and creation
   * time in hand): one transaction, where a read first would cost a second round trip
   * (half an IPAM allocation's block write). On a mismatch the same transaction reads
   * the key, to tell NotFound from Conflict.
   */
  private async updateAt(r: Resource, expected: string): Promise<Resource> {
    const k = keyOf(r);
    const key = etcdKey(k);
    const value = encode(r);
    const res = await this.call(`update ${keyText(k)}`, () =>
      this.client
        .if(key, 'Mod', '==', expected)
        .then(this.client.put(key).value(value))
        .else(this.client.get(key))
        .commit(),
    );
    if (!res.succeeded) {
      if (!res.responses[0]?.response_range?.kvs.length)
        throw new DatastoreError('NotFound', `${keyText(k)} not found`);
      throw new DatastoreError(
        'Conflict',
        `${keyText(k)} was modified (expected resourceVersion ${expected})`,
      );
    }
    const stored = JSON.parse(value) as Resource;
    stored.metadata.resourceVersion = String(res.header.revision);
    return stored;
  }

  /**
   * One round trip (a DEL's endpoint and handle deletes are on the CNI path): a delete
   * that returns what it removed (prev_kv), or with a resourceVersion, a transaction that
   * deletes on the key's mod revision and otherwise reads the key to tell NotFound from
   * Conflict.
   */
  async delete(k: ResourceKey, opts: { resourceVersion?: string } = {}): Promise<Resource> {
    const key = etcdKey(k);
    const deleteOp = { request_delete_range: { key: Buffer.from(key), prev_kv: true } };
    if (opts.resourceVersion === undefined) {
      const prev = await this.call(`delete ${keyText(k)}`, () =>
        this.client.delete().key(key).getPrevious(),
      );
      if (!prev.length) throw new DatastoreError('NotFound', `${keyText(k)} not found`);
      return decode(prev[0]);
    }
    const expected = opts.resourceVersion;
    const res = await this.call(`delete ${keyText(k)}`, () =>
      this.client.if(key, 'Mod', '==', expected).then(deleteOp).else(this.client.get(key)).commit(),
    );
    if (!res.succeeded) {
      if (!res.responses[0]?.response_range?.kvs.length)
        throw new DatastoreError('NotFound', `${keyText(k)} not found`);
      throw new DatastoreError(
        'Conflict',
        `${keyText(k)} was modified (expected resourceVersion ${expected})`,
      );
    }
    const prev = res.responses[0]?.response_delete_range?.prev_kvs[0];
    // the compare held, so the key existed at that revision and the delete removed it
    if (!prev) throw new DatastoreError('NotFound', `${keyText(k)} not found`);
    return decode(prev);
  }

  watch(kind: Kind, revision: string, onEvent: (e: WatchEvent) => void): Watch {
    let stopped = false;
    const pending = this.client
      .watch()
      .prefix(kindPrefix(kind))
      .withPreviousKV()
      .startRevision(String(Number(revision) + 1))
      .create();
    pending
      .then((w) => {
        if (stopped) {
          void w.cancel();
          return;
        }
        // Events arrive in revision order in one response; keep it so.
        w.on('data', (res) => {
          for (const e of res.events) {
            const rev = String(e.kv.mod_revision);
            if (e.type === 'Delete') {
              if (e.prev_kv)
                onEvent({ type: 'deleted', resource: decode(e.prev_kv), revision: rev });
            } else {
              const added = String(e.kv.create_revision) === String(e.kv.mod_revision);
              onEvent({
                type: added ? 'added' : 'modified',
                resource: decode(e.kv),
                revision: rev,
              });
            }
          }
        });
        w.on('error', (err: Error) => {
          if (stopped) return;
          // etcd cancels a watch on a compacted revision; the client drops the reason,
          // so ask etcd whether that revision is still readable.
          void this.isCompacted(kind, revision).then((compacted) => {
            if (stopped) return;
            const why = compacted ? `revision ${revision} has been compacted` : err.message;
            onEvent({
              type: 'error',
              error: new DatastoreError(
                compacted ? 'Compacted' : 'Unavailable',
                `watch of ${kind}: ${why}`,
              ),
            });
          });
        });
        this.watchers.add(w);
      })
      .catch((err: Error) => {
        if (!stopped)
          onEvent({
            type: 'error',
            error: new DatastoreError('Unavailable', `watch of ${kind}: ${err.message}`),
          });
      });
    return {
      stop: () => {
        stopped = true;
        void pending
          .then((w) => {
            this.watchers.delete(w);
            return w.cancel();
          })
          .catch(() => undefined);
      },
    };
  }

  private readonly watchers = new Set<{ cancel(): Promise<void> }>();

  private async isCompacted(kind: Kind, revision: string): Promise<boolean> {
    try {
      await this.client
        .getAll()
        .prefix(kindPrefix(kind))
        .revision(Number(revision) + 1)
        .count();
      return false;
    } catch (err) {
      return /compacted/i.test((err as Error).message);
    }
  }

  /** Compacts etcd's history up to `revision` (tests and maintenance). */
  async compact(revision: string): Promise<void> {
    await this.call('compact', () => this.client.kv.compact({ revision, physical: true }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.watchers].map((w) => w.cancel().catch(() => undefined)));
    this.client.close();
  }
}
