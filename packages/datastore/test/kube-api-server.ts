// A local test server for the Kubernetes backend (no kube-apiserver is installable
// here): the real custom-resource REST paths, resourceVersion semantics (409 on a stale
// version, preconditions on delete), watch streams of JSON events, bookmarks, and 410
// Gone for a compacted resourceVersion, backed by the memory datastore.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { API_GROUP, KINDS, type Kind, type Resource } from '@tortie/api';
import { DatastoreError, MemoryDatastore } from '../src';

const REASON: Record<string, [number, string]> = {
  NotFound: [404, 'NotFound'],
  AlreadyExists: [409, 'AlreadyExists'],
  Conflict: [409, 'Conflict'],
  Compacted: [410, 'Expired'],
};

function status(res: http.ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    }),
  );
}

function kindOfPlural(plural: string): Kind | undefined {
  return (Object.keys(KINDS) as Kind[]).find((k) => KINDS[k].plural === plural);
}

/** Core resources the server also serves (read-only through the API; tests put them). */
export type CoreResource = 'pods' | 'namespaces' | 'serviceaccounts' | 'networkpolicies' | 'nodes';
type CoreObject = { metadata: { name: string; namespace?: string; resourceVersion?: string } };
type CoreEvent = {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: CoreResource;
  object: CoreObject;
  rv: number;
};

export class KubeApiTestServer {
  readonly ds = new MemoryDatastore();
  private server?: http.Server;
  private readonly open = new Set<http.ServerResponse>();
  private coreRevision = 0;
  private readonly core = new Map<string, { resource: CoreResource; object: CoreObject }>();
  private readonly coreLog: CoreEvent[] = [];
  private readonly coreWatchers = new Set<(e: CoreEvent) => void>();

  /** Creates or replaces a core object (as the rest of Kubernetes would). */
  putCore(resource: CoreResource, object: CoreObject): void {
    const key = `${resource}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    const type = this.core.has(key) ? 'MODIFIED' : 'ADDED';
    const stored = structuredClone(object);
    stored.metadata.resourceVersion = String(++this.coreRevision);
    this.core.set(key, { resource, object: stored });
    this.coreEmit({ type, resource, object: stored, rv: this.coreRevision });
  }

  deleteCore(resource: CoreResource, name: string, namespace?: string): void {
    const key = `${resource}/${namespace ?? ''}/${name}`;
    const cur = this.core.get(key);
    if (!cur) return;
    this.core.delete(key);
    this.coreEmit({ type: 'DELETED', resource, object: cur.object, rv: ++this.coreRevision });
  }

  private coreEmit(e: CoreEvent): void {
    this.coreLog.push(e);
    for (const w of this.coreWatchers) w(e);
  }

  private handleCore(resource: CoreResource, url: URL, res: http.ServerResponse): void {
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    if (!watch) {
      const items = [...this.core.values()]
        .filter((c) => c.resource === resource)
        .map((c) => c.object);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          metadata: { resourceVersion: String(this.coreRevision) },
          items,
        }),
      );
      return;
    }
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    this.open.add(res);
    const send = (e: CoreEvent) => {
      if (e.resource === resource && e.rv > from)
        res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
    };
    this.coreLog.forEach(send);
    this.coreWatchers.add(send);
    res.on('close', () => {
      this.coreWatchers.delete(send);
      this.open.delete(res);
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
  }

  /** Ends every open watch stream, as an API server restart would. */
  dropWatches(): void {
    for (const res of this.open) res.destroy();
    this.open.clear();
  }

  async stop(): Promise<void> {
    this.dropWatches();
    await new Promise((r) => this.server?.close(r));
  }

  private async body(req: http.IncomingMessage): Promise<unknown> {
    let text = '';
    for await (const chunk of req) text += chunk;
    return text ? JSON.parse(text) : undefined;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const core =
      /^\/api\/v1\/(pods|namespaces|serviceaccounts|nodes)$|^\/apis\/networking\.k8s\.io\/v1\/(networkpolicies)$/.exec(
        url.pathname,
      );
    const onePod = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(url.pathname);
    if (onePod && req.method === 'GET') {
      const [, namespace, name] = onePod;
      const pod = [...this.core.values()].find(
        (c) =>
          c.resource === 'pods' &&
          c.object.metadata.name === name &&
          c.object.metadata.namespace === namespace,
      );
      if (!pod) return status(res, 404, 'NotFound', `pods "${name}" not found`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', ...pod.object }));
      return;
    }
    if (core) {
      if (req.method !== 'GET')
        return status(res, 405, 'MethodNotAllowed', 'core objects are read-only here');
      return this.handleCore((core[1] ?? core[2]) as CoreResource, url, res);
    }
    const m = new RegExp(
      `^/apis/${API_GROUP.replace('.', '\\.')}/v1/(?:namespaces/([^/]+)/)?([^/]+)(?:/([^/]+))?$`,
    ).exec(url.pathname);
    const kind = m && kindOfPlural(m[2]);
    if (!m || !kind)
      return status(
        res,
        404,
        'NotFound',
        `the server could not find the requested resource (${url.pathname})`,
      );
    const [, namespace, , name] = m;
    const key = {
      kind,
      name: name ?? '',
      namespace: KINDS[kind].namespaced ? namespace : undefined,
    };
    try {
      if (
        req.method === 'GET' &&
        !name &&
        (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1')
      ) {
        return this.watch(kind, namespace, url.searchParams.get('resourceVersion') ?? '0', res);
      }
      let out: unknown;
      let code = 200;
      if (req.method === 'GET' && !name) {
        const list = await this.ds.list({ kind, namespace });
        out = {
          apiVersion: `${API_GROUP}/v1`,
          kind: `${kind}List`,
          metadata: { resourceVersion: list.revision },
          items: list.items,
        };
      } else if (req.method === 'GET') {
        out = await this.ds.get(key);
        if (!out) return status(res, 404, 'NotFound', `${m[2]}.${API_GROUP} "${name}" not found`);
      } else if (req.method === 'POST' && !name) {
        const r = (await this.body(req)) as Resource;
        out = await this.ds.create({ ...r, metadata: { ...r.metadata, namespace: key.namespace } });
        code = 201;
      } else if (req.method === 'PUT' && name) {
        const r = (await this.body(req)) as Resource;
        if (!r.metadata.resourceVersion)
          return status(
            res,
            422,
            'Invalid',
            'metadata.resourceVersion: must be specified for an update',
          );
        out = await this.ds.update({ ...r, metadata: { ...r.metadata, namespace: key.namespace } });
      } else if (req.method === 'DELETE' && name) {
        const opts = (await this.body(req)) as
          { preconditions?: { resourceVersion?: string } } | undefined;
        out = await this.ds.delete(key, { resourceVersion: opts?.preconditions?.resourceVersion });
      } else {
        return status(res, 405, 'MethodNotAllowed', `${req.method} is not supported here`);
      }
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
    } catch (err) {
      if (!(err instanceof DatastoreError)) throw err;
      const [c, reason] = REASON[err.code] ?? [500, 'InternalError'];
      status(res, c, reason, err.message);
    }
  }

  private watch(
    kind: Kind,
    namespace: string | undefined,
    rv: string,
    res: http.ServerResponse,
  ): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    this.open.add(res);
    const send = (type: string, object: unknown) =>
      res.write(JSON.stringify({ type, object }) + '\n');
    const w = this.ds.watch(kind, rv, (e) => {
      if (e.type === 'error') {
        const gone = e.error.code === 'Compacted';
        send('ERROR', {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          code: gone ? 410 : 500,
          reason: gone ? 'Expired' : 'InternalError',
          message: e.error.message,
        });
        res.end();
        return;
      }
      if (e.type === 'bookmark') return;
      if (namespace && e.resource.metadata.namespace !== namespace) return;
      send(e.type.toUpperCase(), e.resource);
    });
    res.on('close', () => {
      w.stop();
      this.open.delete(res);
    });
  }
}
