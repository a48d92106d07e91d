// Objects in etcd under /registry/<group>/<plural>/[<namespace>/]<name>. An object's
// resourceVersion is its etcd mod revision; a list's is the etcd header revision.
import { randomUUID } from 'node:crypto';
import { Etcd3, type IKeyValue } from 'etcd3';
import { type ResourceType } from './resources';
import { alreadyExists, conflict, notFound } from './status';

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
};

function prefixOf(t: ResourceType, namespace?: string): string {
  const base = `/registry/${t.group || 'core'}/${t.plural}/`;
  return t.namespaced && namespace !== undefined ? `${base}${namespace}/` : base;
}

function keyOf(t: ResourceType, name: string, namespace?: string): string {
  return `${prefixOf(t, t.namespaced ? (namespace ?? 'default') : undefined)}${name}`;
}

function decode(kv: IKeyValue): KubeObject {
  const o = JSON.parse(kv.value.toString()) as KubeObject;
  o.metadata.resourceVersion = String(kv.mod_revision);
  return o;
}

function encode(o: KubeObject): string {
  const { resourceVersion: _rv, ...metadata } = o.metadata;
  return JSON.stringify({ ...o, metadata });
}

export class Storage {
  readonly client: Etcd3;
  constructor(endpoints: string[]) {
    this.client = new Etcd3({ hosts: endpoints, dialTimeout: 3000 });
  }

  async get(t: ResourceType, name: string, namespace?: string): Promise<KubeObject> {
    const res = await this.client.get(keyOf(t, name, namespace)).exec();
    if (!res.kvs.length) throw notFound(t.plural, name);
    return decode(res.kvs[0]);
  }

  async list(
    t: ResourceType,
    namespace?: string,
  ): Promise<{ items: KubeObject[]; revision: string }> {
    const res = await this.client.getAll().prefix(prefixOf(t, namespace)).exec();
    return { items: res.kvs.map(decode), revision: String(res.header.revision) };
  }

  async create(t: ResourceType, o: KubeObject): Promise<KubeObject> {
    o.metadata.uid = randomUUID();
    o.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const key = keyOf(t, o.metadata.name, o.metadata.namespace);
    const value = encode(o);
    const res = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(value))
      .commit();
    if (!res.succeeded) throw alreadyExists(t.plural, o.metadata.name);
    return { ...o, metadata: { ...o.metadata, resourceVersion: String(res.header.revision) } };
  }

  /** Replaces an object; a resourceVersion in it is a precondition (409 when stale). */
  async update(t: ResourceType, o: KubeObject): Promise<KubeObject> {
    const current = await this.get(t, o.metadata.name, o.metadata.namespace);
    const expected = o.metadata.resourceVersion || current.metadata.resourceVersion!;
    // identity fields are the server's, not the client's
    o.metadata.uid = current.metadata.uid;
    o.metadata.creationTimestamp = current.metadata.creationTimestamp;
    const key = keyOf(t, o.metadata.name, o.metadata.namespace);
    const value = encode(o);
    const res = await this.client
      .if(key, 'Mod', '==', expected)
      .then(this.client.put(key).value(value))
      .commit();
    if (!res.succeeded) throw conflict(t.plural, o.metadata.name);
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
    if (pre.uid && pre.uid !== current.metadata.uid) throw conflict(t.plural, name);
    const expected = pre.resourceVersion || current.metadata.resourceVersion!;
    const key = keyOf(t, name, namespace);
    const res = await this.client
      .if(key, 'Mod', '==', expected)
      .then(this.client.delete().key(key))
      .commit();
    if (!res.succeeded) throw conflict(t.plural, name);
    return current;
  }

  close(): void {
    this.client.close();
  }
}
