// Objects in etcd under <prefix>/<group|core>/<plural>/[<namespace>/]<name>. An object's
// resourceVersion is its etcd mod revision; a list's is the revision it was read at. A
// read at a compacted revision is 410 Expired, as in Kubernetes.
import { randomUUID } from 'node:crypto';
import { Etcd3, Range, type IKeyValue } from 'etcd3';
import { CONTINUE_EXPIRED, encodeContinue, type ContinueToken } from './paging';
import { type ResourceType } from './resources';
import { alreadyExists, ApiError, badRequest, conflict, gone, notFound } from './status';

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
};

export function decode(kv: IKeyValue): KubeObject {
  const o = JSON.parse(kv.value.toString()) as KubeObject;
  o.metadata.resourceVersion = String(kv.mod_revision);
  return o;
}

function encode(o: KubeObject): string {
  const { resourceVersion: _rv, ...metadata } = o.metadata;
  return JSON.stringify({ ...o, metadata });
}

export const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/** A resourceVersion from a client: a decimal etcd revision. */
export function revisionOf(rv: string): number {
  if (!/^\d+$/.test(rv)) throw badRequest(`invalid resource version "${rv}"`);
  return Number(rv);
}

export class Storage {
  readonly client: Etcd3;
  constructor(
    endpoints: string[],
    readonly prefix = '/registry',
  ) {
    // an unpaged list can be larger than gRPC's default 4 MiB answer
    this.client = new Etcd3({
      hosts: endpoints,
      dialTimeout: 3000,
      grpcOptions: { 'grpc.max_receive_message_length': 512 * 1024 * 1024 },
    });
  }

  prefixOf(t: ResourceType, namespace?: string): string {
    const base = `${this.prefix}/${t.group || 'core'}/${t.plural}/`;
    return t.namespaced && namespace !== undefined ? `${base}${namespace}/` : base;
  }

  keyOf(t: ResourceType, name: string, namespace?: string): string {
    return `${this.prefixOf(t, t.namespaced ? (namespace ?? 'default') : undefined)}${name}`;
  }

  async get(t: ResourceType, name: string, namespace?: string): Promise<KubeObject> {
    const res = await this.client.get(this.keyOf(t, name, namespace)).exec();
    if (!res.kvs.length) throw notFound(t, name);
    return decode(res.kvs[0]);
  }

  async tryGet(t: ResourceType, name: string, namespace?: string): Promise<KubeObject | undefined> {
    const res = await this.client.get(this.keyOf(t, name, namespace)).exec();
    return res.kvs.length ? decode(res.kvs[0]) : undefined;
  }

  /** Lists now, or at an exact revision (410 once compacted). */
  async list(
    t: ResourceType,
    namespace?: string,
    revision?: number,
  ): Promise<{ items: KubeObject[]; revision: string }> {
    let q = this.client.getAll().prefix(this.prefixOf(t, namespace));
    if (revision) q = q.revision(revision);
    try {
      const res = await q.exec();
      return {
        items: res.kvs.map(decode),
        revision: String(revision ?? res.header.revision),
      };
    } catch (err) {
      if (/compacted/i.test((err as Error).message))
        throw gone(`The resourceVersion for the provided list is too old.`);
      if (/future revision/i.test((err as Error).message))
        throw new ApiError(504, 'Timeout', `Too large resource version: ${revision}`);
      throw err;
    }
  }

  /**
   * One page of a list (kube-apiserver's etcd3 GetList with a limit): up to `limit`
   * objects that `matches` keeps, from `from.start` on (relative to the list's prefix), at
   * `from.rv` (absent or -1: now; the first read fixes the revision for every page). Pages
   * are read from etcd until `limit` objects matched or the range ends; `next` is the
   * token for the rest, and `remaining` the keys after this page when nothing is filtered.
   * A compacted revision is 410 Expired, with a token that continues at the latest one.
   */
  async listPage(
    t: ResourceType,
    namespace: string | undefined,
    limit: number,
    matches: ((o: KubeObject) => boolean) | undefined,
    from: Partial<ContinueToken> = {},
  ): Promise<{ items: KubeObject[]; revision: string; next?: string; remaining?: number }> {
    const prefix = this.prefixOf(t, namespace);
    const end = Range.prefix(prefix).end;
    let start = Buffer.from(prefix + (from.start ?? ''));
    let revision = from.rv !== undefined && from.rv > 0 ? from.rv : undefined;
    const items: KubeObject[] = [];
    let lastKey: string | undefined;
    let hasMore = false;
    let remaining: number | undefined;
    let batch = limit;
    for (let first = true; ; first = false) {
      let q = this.client.getAll().inRange(new Range(start, end)).limit(batch);
      if (revision) q = q.revision(revision);
      let res;
      try {
        res = await q.exec();
      } catch (err) {
        if (/compacted/i.test((err as Error).message)) {
          if (from.start === undefined)
            throw gone('The resourceVersion for the provided list is too old.');
          throw new ApiError(410, 'Expired', CONTINUE_EXPIRED, undefined, {
            continue: encodeContinue({ rv: -1, start: from.start }),
          });
        }
        if (/future revision/i.test((err as Error).message))
          throw new ApiError(504, 'Timeout', `Too large resource version: ${revision}`);
        throw err;
      }
      revision ??= Number(res.header.revision);
      hasMore = res.more;
      if (first && !matches) remaining = Number(res.count) - limit;
      for (const kv of res.kvs) {
        if (items.length >= limit) {
          hasMore = true;
          break;
        }
        lastKey = kv.key.toString();
        const o = decode(kv);
        if (!matches || matches(o)) items.push(o);
      }
      if (!hasMore || items.length >= limit) break;
      // the filter kept too few: read on after the last key, in growing batches
      start = Buffer.from(`${lastKey}\0`);
      batch = Math.min(batch * 2, 10000);
    }
    if (!hasMore || lastKey === undefined) return { items, revision: String(revision) };
    return {
      items,
      revision: String(revision),
      next: encodeContinue({ rv: revision, start: `${lastKey.slice(prefix.length)}\0` }),
      ...(remaining !== undefined ? { remaining } : {}),
    };
  }

  /** True when etcd has compacted away the history after `revision`. */
  async compactedAfter(revision: number): Promise<boolean> {
    try {
      await this.client
        .get(`${this.prefix}/`)
        .revision(revision + 1)
        .exec();
      return false;
    } catch (err) {
      return /compacted/i.test((err as Error).message);
    }
  }

  async create(t: ResourceType, o: KubeObject): Promise<KubeObject> {
    o.metadata.uid = randomUUID();
    o.metadata.creationTimestamp = now();
    o.metadata.generation = 1;
    const key = this.keyOf(t, o.metadata.name, o.metadata.namespace);
    const res = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(encode(o)))
      .commit();
    if (!res.succeeded) throw alreadyExists(t, o.metadata.name);
    return { ...o, metadata: { ...o.metadata, resourceVersion: String(res.header.revision) } };
  }

  /**
   * Writes `o` over `current` (read before). A resourceVersion in `o` is a precondition;
   * otherwise the current one is (so a concurrent write still fails the compare).
   */
  async update(t: ResourceType, o: KubeObject, current: KubeObject): Promise<KubeObject> {
    const expected = o.metadata.resourceVersion || current.metadata.resourceVersion!;
    if (o.metadata.uid && o.metadata.uid !== current.metadata.uid)
      throw conflict(
        t,
        o.metadata.name,
        `Precondition failed: UID in precondition: ${o.metadata.uid}, UID in object meta: ${current.metadata.uid}`,
      );
    // identity fields are the server's, not the client's
    o.metadata.uid = current.metadata.uid;
    o.metadata.creationTimestamp = current.metadata.creationTimestamp;
    const key = this.keyOf(t, o.metadata.name, o.metadata.namespace);
    const res = await this.client
      .if(key, 'Mod', '==', expected)
      .then(this.client.put(key).value(encode(o)))
      .commit();
    if (!res.succeeded) throw conflict(t, o.metadata.name);
    return { ...o, metadata: { ...o.metadata, resourceVersion: String(res.header.revision) } };
  }

  /** Deletes an object; preconditions.resourceVersion / uid are checked (409 when stale). */
  async delete(
    t: ResourceType,
    name: string,
    namespace: string | undefined,
    pre: { resourceVersion?: string; uid?: string } = {},
  ): Promise<KubeObject> {
    const current = await this.get(t, name, namespace);
    if (pre.uid && pre.uid !== current.metadata.uid)
      throw conflict(
        t,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`,
      );
    if (pre.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion)
      throw conflict(
        t,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
      );
    const key = this.keyOf(t, name, namespace);
    const res = await this.client
      .if(key, 'Mod', '==', current.metadata.resourceVersion!)
      .then(this.client.delete().key(key))
      .commit();
    if (!res.succeeded) throw conflict(t, name);
    return current;
  }

  /** Deletes every object of a type in a namespace (a namespace being deleted). */
  async deleteAllIn(t: ResourceType, namespace: string): Promise<void> {
    await this.client.delete().prefix(this.prefixOf(t, namespace)).exec();
  }

  /** Compacts etcd's history up to `revision` (tests and maintenance). */
  async compact(revision: string): Promise<void> {
    await this.client.kv.compact({ revision, physical: true });
  }

  close(): void {
    this.client.close();
  }
}
