// The HTTP front: parses Kubernetes API paths, dispatches verbs to storage, and answers
// errors as metav1.Status.
import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { applyPatch } from './patch';
import { parseLabelSelector } from './selector';
import { apiVersions, groupList, resourceList } from './discovery';
import { apiVersionOf, findType, type ResourceType } from './resources';
import { Storage, type KubeObject } from './storage';
import { ApiError, badRequest, statusBody } from './status';
import { toTable, wantsTable } from './table';

const MAX_BODY = 3 * 1024 * 1024; // as kube-apiserver's default request size limit

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** /api/v1/... or /apis/<g>/<v>/..., then [namespaces/<ns>/]<plural>[/<name>[/<sub>]]. */
export function parsePath(
  path: string,
): { group: string; version: string; rest: string[] } | undefined {
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'api' && parts.length >= 2)
    return { group: '', version: parts[1], rest: parts.slice(2) };
  if (parts[0] === 'apis' && parts.length >= 3)
    return { group: parts[1], version: parts[2], rest: parts.slice(3) };
  return undefined;
}

function route(group: string, version: string, rest: string[]): Route | undefined {
  let namespace: string | undefined;
  let r = rest;
  // namespaces/<ns>/<plural>... (but namespaces/<ns> alone is the Namespace object)
  if (r[0] === 'namespaces' && r.length >= 3) {
    namespace = r[1];
    r = r.slice(2);
  }
  const type = findType(group, version, r[0]);
  if (!type) return undefined;
  return { type, namespace, name: r[1], subresource: r[2] };
}

async function readBody(req: http.IncomingMessage): Promise<KubeObject> {
  // JSON only; client-go retries in JSON after a 415 to its protobuf
  const ctype = (req.headers['content-type'] ?? 'application/json').split(';')[0].trim();
  if (
    !/^application\/(json|merge-patch\+json|json-patch\+json|strategic-merge-patch\+json)$/.test(
      ctype,
    )
  )
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json`,
    );
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY)
      throw new ApiError(413, 'RequestEntityTooLarge', `request body exceeds ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  let o: unknown;
  try {
    o = JSON.parse(Buffer.concat(chunks).toString());
  } catch (err) {
    throw badRequest(`the request body is not JSON: ${(err as Error).message}`);
  }
  if (!o || typeof o !== 'object' || Array.isArray(o))
    throw badRequest('the request body must be a JSON object');
  return o as KubeObject;
}

export class ApiServer {
  private server?: http.Server;
  readonly storage: Storage;

  constructor(etcdEndpoints: string[]) {
    this.storage = new Storage(etcdEndpoints);
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, host, resolve));
    return `http://${host}:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    this.storage.close();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const path = url.pathname.replace(/\/$/, '');
      if (path === '/api') return send(200, apiVersions());
      if (path === '/apis') return send(200, groupList());
      if (path === '/version')
        return send(200, {
          major: '1',
          minor: '32',
          gitVersion: 'v1.32.0-tortie',
          platform: `${process.platform}/${process.arch}`,
        });
      const p = parsePath(path);
      if (!p)
        throw new ApiError(
          404,
          'NotFound',
          `the server could not find the requested resource (${path})`,
        );
      if (!p.rest.length) {
        const list = resourceList(p.group, p.version);
        if (!list)
          throw new ApiError(
            404,
            'NotFound',
            `the server could not find the requested resource (${path})`,
          );
        return send(200, list);
      }
      const r = route(p.group, p.version, p.rest);
      if (!r)
        throw new ApiError(
          404,
          'NotFound',
          `the server could not find the requested resource (${path})`,
        );
      await this.dispatch(req, res, url, r, send);
    } catch (err) {
      const e =
        err instanceof ApiError ? err : new ApiError(500, 'InternalError', (err as Error).message);
      if (!res.headersSent) send(e.code, statusBody(e));
      else res.end();
    }
  }

  private async dispatch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    r: Route,
    send: (code: number, body: unknown) => void,
  ): Promise<void> {
    const t = r.type;
    const withType = (o: KubeObject): KubeObject => ({
      apiVersion: apiVersionOf(t),
      kind: t.kind,
      ...o,
    });
    switch (req.method) {
      case 'GET': {
        if (r.name) {
          const o = withType(await this.storage.get(t, r.name, r.namespace));
          return send(
            200,
            wantsTable(req.headers.accept) ? toTable([o], o.metadata.resourceVersion!) : o,
          );
        }
        if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1')
          return this.watch(res, url, r);
        const selected = parseLabelSelector(url.searchParams.get('labelSelector') ?? '');
        const listed = await this.storage.list(t, r.namespace);
        const revision = listed.revision;
        const items = listed.items.filter((o) =>
          selected(o.metadata.labels as Record<string, string> | undefined),
        );
        if (wantsTable(req.headers.accept)) return send(200, toTable(items, revision));
        return send(200, {
          kind: `${t.kind}List`,
          apiVersion: apiVersionOf(t),
          metadata: { resourceVersion: revision },
          items: items.map(withType),
        });
      }
      case 'POST': {
        if (r.name)
          throw new ApiError(405, 'MethodNotAllowed', 'POST is not supported on a named object');
        const o = this.checkBody(await readBody(req), r);
        return send(201, withType(await this.storage.create(t, o)));
      }
      case 'PUT': {
        if (!r.name) throw new ApiError(405, 'MethodNotAllowed', 'PUT needs an object name');
        const o = this.checkBody(await readBody(req), r);
        if (o.metadata.name !== r.name)
          throw badRequest(
            `the name of the object (${o.metadata.name}) does not match the name on the URL (${r.name})`,
          );
        if (r.subresource === 'status') {
          // status: only .status changes
          const current = await this.storage.get(t, r.name, r.namespace);
          o.spec = current.spec;
        } else if (r.subresource) {
          throw new ApiError(404, 'NotFound', `subresource ${r.subresource} is not served`);
        } else if (t.kind === 'Pod') {
          // the main resource does not change status
          const current = await this.storage.get(t, r.name, r.namespace);
          o.status = current.status;
        }
        return send(200, withType(await this.storage.update(t, o)));
      }
      case 'PATCH': {
        if (!r.name) throw new ApiError(405, 'MethodNotAllowed', 'PATCH needs an object name');
        if (r.subresource && r.subresource !== 'status')
          throw new ApiError(404, 'NotFound', `subresource ${r.subresource} is not served`);
        const ctype = (req.headers['content-type'] ?? '').split(';')[0].trim();
        if (ctype === 'application/json-patch+json')
          throw new ApiError(
            415,
            'UnsupportedMediaType',
            'JSON patch (RFC 6902) is not supported yet; use a merge patch',
          );
        const patch = await readBody(req);
        const current = await this.storage.get(t, r.name, r.namespace);
        const next = applyPatch(ctype, current, patch) as KubeObject;
        if (
          !next.metadata ||
          next.metadata.name !== r.name ||
          (t.namespaced && next.metadata.namespace !== current.metadata.namespace)
        )
          throw badRequest('a patch may not change metadata.name or metadata.namespace');
        // a resourceVersion in the patch is a precondition; otherwise the one read
        if (!(patch.metadata as { resourceVersion?: string } | undefined)?.resourceVersion)
          next.metadata.resourceVersion = current.metadata.resourceVersion;
        if (r.subresource === 'status') next.spec = current.spec;
        else if (t.kind === 'Pod') next.status = current.status;
        return send(200, withType(await this.storage.update(t, next)));
      }
      case 'DELETE': {
        if (!r.name)
          throw new ApiError(405, 'MethodNotAllowed', 'DELETE of a collection is not supported');
        let pre: { resourceVersion?: string; uid?: string } = {};
        if (Number(req.headers['content-length'] ?? 0) > 0) {
          const opts = (await readBody(req)) as unknown as {
            preconditions?: { resourceVersion?: string; uid?: string };
          };
          pre = opts.preconditions ?? {};
        }
        const gone = withType(await this.storage.delete(t, r.name, r.namespace, pre));
        return send(200, gone);
      }
      default:
        throw new ApiError(405, 'MethodNotAllowed', `method ${req.method} is not supported`);
    }
  }

  /** Checks kind/apiVersion/name/namespace of a request body against the URL. */
  private checkBody(o: KubeObject, r: Route): KubeObject {
    const t = r.type;
    if (o.kind !== undefined && o.kind !== t.kind)
      throw badRequest(`kind ${o.kind} does not match ${t.kind} at this URL`);
    if (o.apiVersion !== undefined && o.apiVersion !== apiVersionOf(t))
      throw badRequest(`apiVersion ${o.apiVersion} does not match ${apiVersionOf(t)} at this URL`);
    if (!o.metadata || typeof o.metadata.name !== 'string' || !o.metadata.name)
      throw new ApiError(
        422,
        'Invalid',
        `${t.kind} is invalid: metadata.name: Required value: name is required`,
        {
          kind: t.kind,
          causes: [
            {
              reason: 'FieldValueRequired',
              message: 'Required value: name is required',
              field: 'metadata.name',
            },
          ],
        },
      );
    if (t.namespaced) {
      const ns = r.namespace ?? 'default';
      if (o.metadata.namespace !== undefined && o.metadata.namespace !== ns)
        throw badRequest(
          `the namespace of the object (${o.metadata.namespace}) does not match the namespace on the request (${ns})`,
        );
      o.metadata.namespace = ns;
    } else delete o.metadata.namespace;
    return o;
  }

  /** A watch: one JSON event per line, from the given resourceVersion (or now). */
  private async watch(res: http.ServerResponse, url: URL, r: Route): Promise<void> {
    const t = r.type;
    let from = url.searchParams.get('resourceVersion');
    if (!from || from === '0') from = (await this.storage.list(t, r.namespace)).revision;
    const prefix = `/registry/${t.group || 'core'}/${t.plural}/${t.namespaced && r.namespace !== undefined ? `${r.namespace}/` : ''}`;
    const w = await this.storage.client
      .watch()
      .prefix(prefix)
      .withPreviousKV()
      .startRevision(String(Number(from) + 1))
      .create();
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    const typed = (v: Buffer, rev: string): KubeObject => {
      const o = JSON.parse(v.toString()) as KubeObject;
      o.metadata.resourceVersion = rev;
      return { apiVersion: apiVersionOf(t), kind: t.kind, ...o };
    };
    w.on('data', (d) => {
      for (const e of d.events) {
        const rev = String(e.kv.mod_revision);
        if (e.type === 'Delete') {
          if (e.prev_kv)
            res.write(
              `${JSON.stringify({ type: 'DELETED', object: typed(e.prev_kv.value, rev) })}\n`,
            );
        } else {
          const type = String(e.kv.create_revision) === rev ? 'ADDED' : 'MODIFIED';
          res.write(`${JSON.stringify({ type, object: typed(e.kv.value, rev) })}\n`);
        }
      }
    });
    w.on('error', (err: Error) => {
      const e = new ApiError(410, 'Expired', `watch from resourceVersion ${from}: ${err.message}`);
      res.end(`${JSON.stringify({ type: 'ERROR', object: statusBody(e) })}\n`);
    });
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 1800);
    const timer = setTimeout(() => res.end(), timeout * 1000);
    res.on('close', () => {
      clearTimeout(timer);
      void w.cancel();
    });
  }
}
