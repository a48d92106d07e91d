// The verbs on a resource path: get, list, watch, create, update, patch, delete and
// deletecollection, with status subresources, dryRun, fieldValidation, selectors and
// Table output. CRD writes change the set of types served.
import type http from 'node:http';
import { randomInt } from 'node:crypto';
import { admit, type FieldValidation } from './admission';
import { crdStatus, typesOfCrd } from './crd';
import { parseFieldSelector } from './fieldselector';
import { applyPatch } from './patch';
import { decodeContinue, limitOf } from './paging';
import { apiVersionOf, BUILTIN, type Registry, type ResourceType } from './resources';
import { type Route } from './router';
import { parseLabelSelector } from './selector';
import { now, revisionOf, type KubeObject, type Storage } from './storage';
import { ApiError, badRequest, conflict, invalid, notFound } from './status';
import { toTable, wantsTable } from './table';
import { managerOf, serverSideApply, trackUpdate, type View } from './ssa';
import { serveWatch } from './watch';
import YAML from 'yaml';

export interface RestOptions {
  maxBodyBytes: number;
  bookmarkMs: number;
  maxBufferBytes: number;
}

const CRD_TYPE = BUILTIN.find((t) => t.kind === 'CustomResourceDefinition')!;
const NAMESPACE_TYPE = BUILTIN.find((t) => t.kind === 'Namespace')!;
const NAME_LABEL = 'kubernetes.io/metadata.name';

const JSON_TYPES = ['application/json'];
const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
];

const unsupportedMedia = (ctype: string, accepted: string[]): ApiError =>
  new ApiError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format (${ctype || 'none'}) - accepted media types include: ${accepted.join(', ')}`,
  );

async function readBody(
  req: http.IncomingMessage,
  accepted: string[],
  maxBytes: number,
): Promise<{ body: unknown; contentType: string }> {
  const contentType = (req.headers['content-type'] ?? 'application/json').split(';')[0].trim();
  if (!accepted.includes(contentType)) {
    req.resume();
    throw unsupportedMedia(contentType, accepted);
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  const tooLarge = (): ApiError =>
    new ApiError(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${maxBytes}`);
  if (declared > maxBytes) {
    req.resume();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > maxBytes) {
      req.resume();
      throw tooLarge();
    }
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString();
  if (!text.trim()) return { body: undefined, contentType };
  try {
    // an apply configuration is YAML (JSON is YAML too)
    return {
      body: contentType.endsWith('yaml') ? YAML.parse(text) : JSON.parse(text),
      contentType,
    };
  } catch (err) {
    throw badRequest(
      `the request body is not valid ${contentType.endsWith('yaml') ? 'YAML' : 'JSON'}: ${(err as Error).message}`,
    );
  }
}

function asObject(body: unknown): KubeObject {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw badRequest('the request body must be a JSON object');
  const o = body as KubeObject;
  if (o.metadata === undefined) o.metadata = {} as KubeObject['metadata'];
  if (!o.metadata || typeof o.metadata !== 'object' || Array.isArray(o.metadata))
    throw badRequest('metadata must be an object');
  return o;
}

const GENERATE = 'bcdfghjklmnpqrstvwxz2456789';
const suffix = (): string =>
  Array.from({ length: 5 }, () => GENERATE[randomInt(GENERATE.length)]).join('');

/** The fields outside metadata and status: a change there bumps metadata.generation. */
function specOf(o: KubeObject): string {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = o;
  return JSON.stringify(rest);
}

/** Which fields a write through this endpoint owns (see View). */
function viewOf(t: ResourceType, subresource?: string): View {
  if (subresource === 'status') return t.crd ? 'status-only' : 'status';
  return (t.subresources ?? []).includes('status') ? 'main' : 'object';
}

function fieldValidation(url: URL): FieldValidation {
  const v = url.searchParams.get('fieldValidation') ?? 'Warn';
  if (v !== 'Strict' && v !== 'Warn' && v !== 'Ignore')
    throw badRequest(
      `fieldValidation must be one of Strict, Warn or Ignore, not ${JSON.stringify(v)}`,
    );
  return v;
}

function dryRun(url: URL): boolean {
  const v = url.searchParams.getAll('dryRun');
  for (const x of v)
    if (x !== 'All')
      throw badRequest(`unsupported dry run option ${JSON.stringify(x)}; only All is supported`);
  return v.length > 0;
}

export class Rest {
  constructor(
    private readonly storage: Storage,
    private readonly registry: Registry,
    private readonly opts: RestOptions,
  ) {}

  /** Serves the kinds of the CRDs stored in etcd. */
  async loadCrds(): Promise<void> {
    const crds = await this.storage.list(CRD_TYPE);
    this.registry.setCustom(crds.items.flatMap((c) => typesOfCrd(c)));
  }

  /** The namespaces every cluster has, as kube-apiserver creates them. */
  async bootstrap(): Promise<void> {
    for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      if (await this.storage.tryGet(NAMESPACE_TYPE, name)) continue;
      await this.storage
        .create(NAMESPACE_TYPE, {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name, labels: { [NAME_LABEL]: name } },
          status: { phase: 'Active' },
        })
        .catch((err: unknown) => {
          if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
        });
    }
  }

  close(): void {}

  private typed(t: ResourceType, o: KubeObject): KubeObject {
    const { apiVersion: _a, kind: _k, ...rest } = o;
    return { apiVersion: apiVersionOf(t), kind: t.kind, ...rest };
  }

  async serve(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    r: Route,
  ): Promise<void> {
    const t = r.type;
    const warnings: string[] = [];
    const send = (code: number, body: unknown): void => {
      const headers: Record<string, string | string[]> = { 'Content-Type': 'application/json' };
      if (warnings.length) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
      res.writeHead(code, headers);
      res.end(JSON.stringify(body));
    };
    const table = wantsTable(req.headers.accept);
    if (r.subresource && !(t.subresources ?? []).includes(r.subresource))
      throw new ApiError(
        404,
        'NotFound',
        `the server could not find the requested resource (${t.plural}/${r.subresource})`,
      );
    switch (req.method) {
      case 'GET':
        if (r.name) {
          const o = this.typed(t, await this.storage.get(t, r.name, r.namespace));
          return send(
            200,
            table ? toTable(t, [o], { resourceVersion: o.metadata.resourceVersion }) : o,
          );
        }
        return this.list(res, url, r, table, send);
      case 'POST': {
        if (r.name)
          throw new ApiError(
            405,
            'MethodNotAllowed',
            `the server does not allow this method on the requested resource`,
          );
        const { body } = await readBody(req, JSON_TYPES, this.opts.maxBodyBytes);
        const o = this.checkBody(asObject(body), r);
        if (!o.metadata.name && typeof o.metadata.generateName === 'string')
          o.metadata.name = `${o.metadata.generateName}${suffix()}`;
        await this.namespaceExists(t, o);
        this.prepareCreate(t, o);
        this.admitOrThrow(t, o, url, warnings);
        trackUpdate(undefined, o, t.schema, this.manager(req, url), apiVersionOf(t), viewOf(t));
        if (dryRun(url)) return send(201, this.typed(t, o));
        const created = await this.storage.create(t, o);
        if (t === CRD_TYPE) await this.loadCrds();
        return send(201, this.typed(t, created));
      }
      case 'PUT': {
        if (!r.name)
          throw new ApiError(
            405,
            'MethodNotAllowed',
            'the server does not allow this method on the requested resource',
          );
        const { body } = await readBody(req, JSON_TYPES, this.opts.maxBodyBytes);
        const o = this.checkBody(asObject(body), r);
        if (o.metadata.name !== r.name)
          throw badRequest(
            `the name of the object (${o.metadata.name}) does not match the name on the URL (${r.name})`,
          );
        const current = await this.storage.get(t, r.name, r.namespace);
        return send(200, await this.write(t, r, current, o, url, warnings, this.manager(req, url)));
      }
      case 'PATCH': {
        if (!r.name)
          throw new ApiError(
            405,
            'MethodNotAllowed',
            'the server does not allow this method on the requested resource',
          );
        const { body, contentType } = await readBody(req, PATCH_TYPES, this.opts.maxBodyBytes);
        if (body === undefined) throw badRequest('the patch is empty');
        if (contentType === 'application/apply-patch+yaml')
          return this.apply(r, url, body, warnings, send);
        const pinned =
          !!body &&
          typeof body === 'object' &&
          !Array.isArray(body) &&
          !!(body as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
        // a patch without a resourceVersion applies to whatever is current: retry on conflict
        for (let attempt = 0; ; attempt++) {
          const current = await this.storage.get(t, r.name, r.namespace);
          const next = applyPatch(
            contentType,
            structuredClone(current),
            body,
            t.schema,
            !t.crd,
          ) as KubeObject;
          if (!next || typeof next !== 'object' || !next.metadata)
            throw badRequest('the patched object has no metadata');
          if (
            next.metadata.name !== r.name ||
            (t.namespaced && next.metadata.namespace !== current.metadata.namespace)
          )
            throw badRequest('a patch may not change metadata.name or metadata.namespace');
          if (!pinned) next.metadata.resourceVersion = current.metadata.resourceVersion;
          try {
            return send(
              200,
              await this.write(t, r, current, next, url, warnings, this.manager(req, url)),
            );
          } catch (err) {
            if (pinned || attempt >= 5 || !(err instanceof ApiError) || err.reason !== 'Conflict')
              throw err;
          }
        }
      }
      case 'DELETE': {
        const { body } = await readBody(req, JSON_TYPES, this.opts.maxBodyBytes);
        const opts = (body ?? {}) as {
          preconditions?: { resourceVersion?: string; uid?: string };
          dryRun?: string[];
        };
        const dry = dryRun(url) || (opts.dryRun ?? []).includes('All');
        if (!r.name) return this.deleteCollection(url, r, dry, send);
        if (dry) return send(200, this.typed(t, await this.storage.get(t, r.name, r.namespace)));
        const gone = await this.storage.delete(t, r.name, r.namespace, opts.preconditions ?? {});
        await this.afterDelete(t, gone);
        return send(200, this.typed(t, gone));
      }
      default:
        throw new ApiError(405, 'MethodNotAllowed', `method ${req.method} is not supported`);
    }
  }

  private async list(
    res: http.ServerResponse,
    url: URL,
    r: Route,
    table: boolean,
    send: (code: number, body: unknown) => void,
  ): Promise<void> {
    const t = r.type;
    const labels = parseLabelSelector(url.searchParams.get('labelSelector') ?? '');
    const fields = parseFieldSelector(url.searchParams.get('fieldSelector') ?? '', t.kind);
    const matches = (o: KubeObject): boolean => labels(o.metadata.labels) && fields(o);
    const rv = url.searchParams.get('resourceVersion') ?? '';
    const watch = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
    if (watch) {
      const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 1800);
      return serveWatch(
        this.storage,
        {
          type: t,
          namespace: r.namespace,
          from: rv ? revisionOf(rv) : undefined,
          matches,
          bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true',
          timeoutSeconds: Number.isFinite(timeout) && timeout > 0 ? timeout : 1800,
          typed: (o) => {
            const typed = this.typed(t, o);
            return table
              ? (toTable(t, [typed], { resourceVersion: o.metadata.resourceVersion }) as never)
              : typed;
          },
        },
        res,
        { bookmarkMs: this.opts.bookmarkMs, maxBufferBytes: this.opts.maxBufferBytes },
      );
    }
    const match = url.searchParams.get('resourceVersionMatch') ?? '';
    const limit = limitOf(url.searchParams.get('limit'));
    const cont = url.searchParams.get('continue') ?? '';
    if (cont && match)
      throw invalidList('Forbidden', 'resourceVersionMatch is forbidden when continue is provided');
    if (cont && rv && rv !== '0')
      throw badRequest('specifying resource version is not allowed when using continue');
    if (match && !['Exact', 'NotOlderThan'].includes(match))
      throw invalidList(
        'NotSupported',
        `Unsupported value: "${match}": supported values: "Exact", "NotOlderThan"`,
      );
    if (match === 'Exact' && (!rv || rv === '0'))
      throw invalidList(
        'Forbidden',
        'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
      );
    // at an exact revision: resourceVersionMatch=Exact, or (as kube-apiserver, for the
    // first page of a paged list) a resourceVersion with a limit and no match
    const at =
      rv && rv !== '0' && (match === 'Exact' || (!match && limit !== undefined))
        ? revisionOf(rv)
        : undefined;
    const filtered = url.searchParams.has('labelSelector') || url.searchParams.has('fieldSelector');
    const listed =
      limit !== undefined || cont
        ? await this.storage.listPage(
            t,
            r.namespace,
            // a continue without a limit reads the rest
            limit ?? Number.MAX_SAFE_INTEGER,
            filtered ? matches : undefined,
            cont ? decodeContinue(cont) : { rv: at },
          )
        : {
            ...(await this.storage.list(t, r.namespace, at)),
            next: undefined,
            remaining: undefined,
          };
    const items = listed.items.filter(matches).map((o) => this.typed(t, o));
    const metadata = {
      resourceVersion: listed.revision,
      ...(listed.next ? { continue: listed.next } : {}),
      ...(listed.next && listed.remaining !== undefined
        ? { remainingItemCount: listed.remaining }
        : {}),
    };
    if (table) return send(200, toTable(t, items, metadata));
    return send(200, { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata, items });
  }

  /** Checks kind/apiVersion/namespace of a request body against the URL. */
  private checkBody(o: KubeObject, r: Route): KubeObject {
    const t = r.type;
    if (o.kind !== undefined && o.kind !== t.kind)
      throw badRequest(
        `the kind of the object (${String(o.kind)}) does not match the kind served at this URL (${t.kind})`,
      );
    if (o.apiVersion !== undefined && o.apiVersion !== apiVersionOf(t))
      throw badRequest(
        `the API version of the object (${String(o.apiVersion)}) does not match the one at this URL (${apiVersionOf(t)})`,
      );
    o.apiVersion = apiVersionOf(t);
    o.kind = t.kind;
    if (t.namespaced) {
      const ns = r.namespace ?? 'default';
      if (
        o.metadata.namespace !== undefined &&
        o.metadata.namespace !== '' &&
        o.metadata.namespace !== ns
      )
        throw badRequest(
          `the namespace of the provided object does not match the namespace sent on the request`,
        );
      o.metadata.namespace = ns;
    } else delete o.metadata.namespace;
    return o;
  }

  /** As kube-apiserver's NamespaceLifecycle admission: no object in a missing namespace. */
  private async namespaceExists(t: ResourceType, o: KubeObject): Promise<void> {
    if (!t.namespaced || !o.metadata.namespace) return;
    if (!(await this.storage.tryGet(NAMESPACE_TYPE, o.metadata.namespace)))
      throw notFound(NAMESPACE_TYPE, o.metadata.namespace);
  }

  private prepareCreate(t: ResourceType, o: KubeObject): void {
    delete o.metadata.resourceVersion;
    delete o.metadata.uid;
    if (t.kind === 'Pod' && !t.crd) o.status = { phase: 'Pending' };
    else if (t.kind === 'Namespace' && !t.crd) o.status = { phase: 'Active' };
    else if (t === CRD_TYPE) o.status = {};
    else if ((t.subresources ?? []).includes('status') && t.kind !== 'Node') delete o.status;
  }

  private admitOrThrow(t: ResourceType, o: KubeObject, url: URL, warnings: string[]): void {
    // as kube-apiserver's namespace strategy (1.21+): every namespace carries its name as
    // a label, so NetworkPolicy namespaceSelectors can pick namespaces by name
    if (t === NAMESPACE_TYPE && o.metadata.name)
      o.metadata.labels = { ...o.metadata.labels, [NAME_LABEL]: o.metadata.name };
    const mode = fieldValidation(url);
    const { causes, unknown } = admit(t, o);
    if (causes.length) throw invalid(t, o.metadata.name ?? '', causes);
    if (unknown.length && mode === 'Strict')
      throw badRequest(
        `strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`,
      );
    if (mode === 'Warn') warnings.push(...unknown.map((f) => `unknown field "${f}"`));
    if (t === CRD_TYPE) o.status = crdStatus(o, now());
  }

  private manager(req: http.IncomingMessage, url: URL): string {
    return managerOf(url.searchParams.get('fieldManager'), req.headers['user-agent']);
  }

  /** Server-side apply (PATCH application/apply-patch+yaml): creates or merges, 409 on conflicts. */
  private async apply(
    r: Route,
    url: URL,
    body: unknown,
    warnings: string[],
    send: (code: number, body: unknown) => void,
  ): Promise<void> {
    const t = r.type;
    const manager = url.searchParams.get('fieldManager');
    if (!manager) throw badRequest('PATCH with an apply configuration needs ?fieldManager=');
    const force = url.searchParams.get('force') === 'true';
    const applied = this.checkBody(asObject(body), r);
    if (applied.metadata.name !== r.name)
      throw badRequest(
        `the name of the object (${applied.metadata.name}) does not match the name on the URL (${r.name})`,
      );
    for (let attempt = 0; ; attempt++) {
      const current = await this.storage.tryGet(t, r.name!, r.namespace);
      // an apply to a subresource needs the object (kube-apiserver: 404, no create)
      if (!current && r.subresource) throw notFound(t, r.name!);
      const next = serverSideApply(
        current,
        structuredClone(applied),
        t.schema,
        manager,
        force,
        apiVersionOf(t),
        viewOf(t, r.subresource),
      );
      try {
        if (!current) {
          await this.namespaceExists(t, next);
          this.prepareCreate(t, next);
          this.admitOrThrow(t, next, url, warnings);
          if (dryRun(url)) return send(201, this.typed(t, next));
          const created = await this.storage.create(t, next);
          if (t === CRD_TYPE) await this.loadCrds();
          return send(201, this.typed(t, created));
        }
        next.metadata.resourceVersion = current.metadata.resourceVersion;
        return send(200, await this.write(t, r, current, next, url, warnings));
      } catch (err) {
        if (
          attempt >= 5 ||
          !(err instanceof ApiError) ||
          !['Conflict', 'AlreadyExists'].includes(err.reason) ||
          err.details?.causes
        )
          throw err;
      }
    }
  }

  /** An update (PUT or the result of a PATCH) of `current` to `o`; `manager` owns what changed. */
  private async write(
    t: ResourceType,
    r: Route,
    current: KubeObject,
    o: KubeObject,
    url: URL,
    warnings: string[],
    manager?: string,
  ): Promise<KubeObject> {
    const hasStatus = (t.subresources ?? []).includes('status');
    let next = o;
    if (r.subresource === 'status') {
      next = {
        ...structuredClone(current),
        status: o.status,
        metadata: {
          ...current.metadata,
          resourceVersion: o.metadata.resourceVersion || current.metadata.resourceVersion,
          // an apply (no manager here) brings the managedFields it computed
          ...(manager ? {} : { managedFields: o.metadata.managedFields }),
        },
      };
      if (!t.crd) {
        // kube-apiserver's built-in status strategies (pods/status, nodes/status...) reset
        // only the spec: labels and annotations change there too (Calico's CNI plugin
        // writes its pod's addresses so); a custom resource's status keeps its metadata
        for (const f of ['labels', 'annotations'] as const) {
          if (o.metadata[f] === undefined) delete next.metadata[f];
          else next.metadata[f] = o.metadata[f];
        }
        if (o.metadata.uid) next.metadata.uid = o.metadata.uid;
      }
    } else if (hasStatus && t !== CRD_TYPE) {
      if (current.status === undefined) delete next.status;
      else next.status = current.status;
    }
    this.admitOrThrow(t, next, url, warnings);
    if (manager) {
      if (next.metadata.managedFields === undefined && current.metadata.managedFields !== undefined)
        next.metadata.managedFields = current.metadata.managedFields;
      trackUpdate(current, next, t.schema, manager, apiVersionOf(t), viewOf(t, r.subresource));
    }
    next.metadata.generation =
      specOf(next) === specOf(current)
        ? current.metadata.generation
        : (current.metadata.generation ?? 0) + 1;
    if (next.metadata.uid && next.metadata.uid !== current.metadata.uid)
      throw conflict(
        t,
        current.metadata.name,
        `Precondition failed: UID in precondition: ${next.metadata.uid}, UID in object meta: ${current.metadata.uid}`,
      );
    if (dryRun(url))
      return this.typed(t, {
        ...next,
        metadata: { ...next.metadata, resourceVersion: current.metadata.resourceVersion },
      });
    const written = await this.storage.update(t, next, current);
    if (t === CRD_TYPE) await this.loadCrds();
    return this.typed(t, written);
  }

  private async afterDelete(t: ResourceType, gone: KubeObject): Promise<void> {
    if (t === NAMESPACE_TYPE) {
      // the namespace's objects go with it
      for (const x of this.registry.all().filter((x) => x.namespaced))
        await this.storage.deleteAllIn(x, gone.metadata.name);
    }
    if (t === CRD_TYPE) {
      for (const x of typesOfCrd(gone).slice(0, 1))
        await this.storage.deleteAllIn({ ...x, namespaced: false }, '');
      await this.loadCrds();
    }
  }

  private async deleteCollection(
    url: URL,
    r: Route,
    dry: boolean,
    send: (code: number, body: unknown) => void,
  ): Promise<void> {
    const t = r.type;
    const labels = parseLabelSelector(url.searchParams.get('labelSelector') ?? '');
    const fields = parseFieldSelector(url.searchParams.get('fieldSelector') ?? '', t.kind);
    const listed = await this.storage.list(t, r.namespace);
    const items: KubeObject[] = [];
    for (const o of listed.items.filter((x) => labels(x.metadata.labels) && fields(x))) {
      if (!dry) {
        try {
          await this.storage.delete(t, o.metadata.name, o.metadata.namespace);
          await this.afterDelete(t, o);
        } catch (err) {
          if (!(err instanceof ApiError && err.code === 404)) throw err;
        }
      }
      items.push(this.typed(t, o));
    }
    send(200, { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata: {}, items });
  }
}

/** 422 for bad list options, as kube-apiserver's ValidateListOptions words it. */
function invalidList(type: 'Forbidden' | 'NotSupported', message: string): ApiError {
  return invalid({ kind: 'ListOptions', group: 'meta.k8s.io', plural: 'listoptions' }, '', [
    {
      reason: type === 'Forbidden' ? 'FieldValueForbidden' : 'FieldValueNotSupported',
      field: 'resourceVersionMatch',
      message: type === 'Forbidden' ? `Forbidden: ${message}` : message,
    },
  ]);
}
