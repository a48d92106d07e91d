// The Kubernetes backend: tortie resources as custom resources (the CRDs in
// deploy/crds) through @kubernetes/client-node, as Calico's KDD mode does. The API
// server provides resourceVersion compare-and-swap and watches; a watch that starts
// from a revision the server no longer has ends with 410 Gone, reported as 'Compacted'.
import { CustomObjectsApi, KubeConfig, Watch as KubeWatch } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, KINDS, type Kind, type Resource } from '@tortie/api';
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

const VERSION = 'v1';

interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown> & {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
  };
  spec?: unknown;
}

/** The part of a Kubernetes object tortie keeps (no managedFields and the like). */
function fromKube(kind: Kind, o: KubeObject): Resource {
  const m = o.metadata ?? {};
  const metadata: Resource['metadata'] = { name: String(m.name) };
  for (const k of [
    'namespace',
    'labels',
    'annotations',
    'resourceVersion',
    'uid',
    'creationTimestamp',
    'generation',
  ] as const) {
    if (m[k] !== undefined) (metadata as Record<string, unknown>)[k] = m[k];
  }
  return { apiVersion: API_VERSION, kind, metadata, spec: o.spec } as Resource;
}

function toKube(r: Resource): KubeObject {
  return { apiVersion: API_VERSION, kind: r.kind, metadata: { ...r.metadata }, spec: r.spec };
}

/** HTTP status of a client error, if it has one. */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

export class KubernetesDatastore implements Datastore {
  private readonly api: CustomObjectsApi;
  private readonly server: string;

  constructor(private readonly kc: KubeConfig) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.server = kc.getCurrentCluster()?.server ?? '(no server)';
  }

  /** From a kubeconfig file, as `--kubeconfig` / KUBECONFIG give it. */
  static fromFile(path: string): KubernetesDatastore {
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new DatastoreError('Invalid', `kubeconfig ${path}: ${(err as Error).message}`);
    }
    return new KubernetesDatastore(kc);
  }

  private target(kind: Kind, namespace?: string) {
    const def = KINDS[kind];
    return {
      group: API_GROUP,
      version: VERSION,
      plural: def.plural,
      namespace: def.namespaced ? (namespace ?? 'default') : undefined,
    };
  }

  /** Maps the API server's answers to datastore errors that say what happened. */
  private fail(what: string, err: unknown, notFound?: string): never {
    const status = statusOf(err);
    if (status === 404) throw new DatastoreError('NotFound', notFound ?? `${what}: not found`);
    if (status === 409) {
      const reason = String((err as { body?: unknown }).body ?? '');
      throw new DatastoreError(
        /AlreadyExists/.test(reason) ? 'AlreadyExists' : 'Conflict',
        `${what}: ${/AlreadyExists/.test(reason) ? 'already exists' : 'the object was modified'}`,
      );
    }
    if (status === 410)
      throw new DatastoreError('Compacted', `${what}: resourceVersion too old (410 Gone)`);
    if (status !== undefined && status >= 400 && status < 500)
      throw new DatastoreError(
        'Invalid',
        `${what}: HTTP ${status} ${String((err as Error).message)}`,
      );
    throw new DatastoreError(
      'Unavailable',
      `Kubernetes API at ${this.server} did not answer ${what}: ${(err as Error).message}`,
    );
  }

  async get(key: ResourceKey): Promise<Resource | undefined> {
    const t = this.target(key.kind, key.namespace);
    try {
      const o = (
        t.namespace
          ? await this.api.getNamespacedCustomObject({
              ...t,
              namespace: t.namespace,
              name: key.name,
            })
          : await this.api.getClusterCustomObject({ ...t, name: key.name })
      ) as KubeObject;
      return fromKube(key.kind, o);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      this.fail(`get ${keyText(key)}`, err);
    }
  }

  async list(opts: ListOptions): Promise<ListResult> {
    const def = KINDS[opts.kind];
    const t = { group: API_GROUP, version: VERSION, plural: def.plural };
    try {
      const res = (
        def.namespaced && opts.namespace !== undefined
          ? await this.api.listNamespacedCustomObject({ ...t, namespace: opts.namespace })
          : await this.api.listClusterCustomObject(t)
      ) as { items: KubeObject[]; metadata?: { resourceVersion?: string } };
      const items = res.items
        .map((o) => fromKube(opts.kind, o))
        .filter(
          (r) => opts.namePrefix === undefined || r.metadata.name.startsWith(opts.namePrefix),
        );
      return { items, revision: res.metadata?.resourceVersion ?? '0' };
    } catch (err) {
      this.fail(`list ${opts.kind}`, err);
    }
  }

  async create(r: Resource): Promise<Resource> {
    const t = this.target(r.kind, r.metadata.namespace);
    const body = toKube(r);
    try {
      const o = (
        t.namespace
          ? await this.api.createNamespacedCustomObject({ ...t, namespace: t.namespace, body })
          : await this.api.createClusterCustomObject({ ...t, body })
      ) as KubeObject;
      return fromKube(r.kind, o);
    } catch (err) {
      this.fail(`create ${keyText(keyOf(r))}`, err);
    }
  }

  async update(r: Resource): Promise<Resource> {
    const k = keyOf(r);
    const t = this.target(r.kind, r.metadata.namespace);
    let body = toKube(r);
    if (r.metadata.resourceVersion === undefined) {
      // an unconditional write: take the current version (the server requires one)
      const cur = await this.get(k);
      if (!cur) throw new DatastoreError('NotFound', `${keyText(k)} not found`);
      body = toKube({
        ...r,
        metadata: { ...r.metadata, resourceVersion: cur.metadata.resourceVersion },
      });
    }
    try {
      const o = (
        t.namespace
          ? await this.api.replaceNamespacedCustomObject({
              ...t,
              namespace: t.namespace,
              name: r.metadata.name,
              body,
            })
          : await this.api.replaceClusterCustomObject({ ...t, name: r.metadata.name, body })
      ) as KubeObject;
      return fromKube(r.kind, o);
    } catch (err) {
      this.fail(`update ${keyText(k)}`, err, `${keyText(k)} not found`);
    }
  }

  async delete(key: ResourceKey, opts: { resourceVersion?: string } = {}): Promise<Resource> {
    const cur = await this.get(key);
    if (!cur) throw new DatastoreError('NotFound', `${keyText(key)} not found`);
    const t = this.target(key.kind, key.namespace);
    const body = {
      preconditions: { resourceVersion: opts.resourceVersion ?? cur.metadata.resourceVersion },
    };
    try {
      if (t.namespace)
        await this.api.deleteNamespacedCustomObject({
          ...t,
          namespace: t.namespace,
          name: key.name,
          body,
        });
      else await this.api.deleteClusterCustomObject({ ...t, name: key.name, body });
      return cur;
    } catch (err) {
      this.fail(`delete ${keyText(key)}`, err, `${keyText(key)} not found`);
    }
  }

  watch(kind: Kind, revision: string, onEvent: (e: WatchEvent) => void): Watch {
    const def = KINDS[kind];
    const path = `/apis/${API_GROUP}/${VERSION}/${def.plural}`;
    let stopped = false;
    let ended = false;
    const end = (error: DatastoreError) => {
      if (stopped || ended) return;
      ended = true;
      onEvent({ type: 'error', error });
    };
    const pending = new KubeWatch(this.kc).watch(
      path,
      { resourceVersion: revision, allowWatchBookmarks: true },
      (phase, obj: KubeObject & { code?: number; message?: string }) => {
        if (stopped || ended) return;
        const rv = String(obj?.metadata?.resourceVersion ?? '');
        switch (phase) {
          case 'ADDED':
            return onEvent({ type: 'added', resource: fromKube(kind, obj), revision: rv });
          case 'MODIFIED':
            return onEvent({ type: 'modified', resource: fromKube(kind, obj), revision: rv });
          case 'DELETED':
            return onEvent({ type: 'deleted', resource: fromKube(kind, obj), revision: rv });
          case 'BOOKMARK':
            return onEvent({ type: 'bookmark', revision: rv });
          case 'ERROR':
            return end(
              obj?.code === 410
                ? new DatastoreError(
                    'Compacted',
                    `watch of ${kind}: resourceVersion ${revision} is too old (410 Gone)`,
                  )
                : new DatastoreError(
                    'Unavailable',
                    `watch of ${kind}: ${obj?.message ?? 'error event'}`,
                  ),
            );
        }
      },
      (err: unknown) =>
        end(
          new DatastoreError(
            'Unavailable',
            `watch of ${kind} ended${err ? `: ${(err as Error).message}` : ''}`,
          ),
        ),
    );
    pending.catch((err: unknown) =>
      end(new DatastoreError('Unavailable', `watch of ${kind}: ${(err as Error).message}`)),
    );
    return {
      stop: () => {
        stopped = true;
        void pending.then((ac) => ac.abort()).catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    // nothing pooled to release: watches are stopped by their owners
  }
}
