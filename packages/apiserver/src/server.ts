// The HTTP(S) front: authentication, request bodies and their limits, discovery, OpenAPI
// and version documents; resource requests go to the handlers in rest.ts. Every error is
// answered as a metav1.Status and the server keeps serving.
import http from 'node:http';
import https from 'node:https';
import { type AddressInfo, type Socket } from 'node:net';
import winston from 'winston';
import {
  AGGREGATED,
  aggregated,
  apiVersions,
  group,
  groupList,
  resourceList,
  wantsAggregated,
} from './discovery';
import { openApiV2, openApiV3Index, openApiV3Group } from './openapi';
import { OPENAPI_V2_LEGACY_PATH, OpenApiV2Cache } from './openapi-v2-serve';
import { Rest } from './rest';
import { BUILTIN, Registry, type ResourceType } from './resources';
import { parsePath, route } from './router';
import { Storage } from './storage';
import { ApiError, statusBody } from './status';
import { authenticate, MASTERS, type TokenUser, type UserInfo } from './auth';
import { Authorizer, BOOTSTRAP_POLICY, requestAttributes, type RbacPolicy } from './rbac';
import { type Route } from './router';
import {
  claimsUser,
  looksLikeJwt,
  parseTokenRequest,
  signToken,
  tokenClaims,
  verifyToken,
  type BoundObject,
  type ServiceAccountIssuer,
} from './sa-token';
import { type Cause } from './schema';
import { invalid } from './status';

export interface ApiServerOptions {
  /** etcd client URLs */
  etcd: string[];
  /** key prefix in etcd (default /registry) */
  prefix?: string;
  /** PEM certificate and key: serve HTTPS */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * bearer tokens accepted, each a user (kube-apiserver's --token-auth-file); a bare
   * string is an administrator (group system:masters). When given, a request without a
   * valid token is refused (401).
   */
  tokens?: Array<string | TokenUser>;
  /**
   * AlwaysAllow (kube-apiserver's default): any authenticated request is allowed. RBAC:
   * the ClusterRoles, Roles and their bindings stored here decide, and a request they do
   * not allow gets 403 Forbidden; system:masters may do anything.
   */
  authorization?: 'AlwaysAllow' | 'RBAC';
  /**
   * Service-account tokens (--service-account-signing-key-file, --service-account-issuer,
   * --api-audiences): the TokenRequest API is served, and a bearer JWT it issued
   * authenticates as its service account while that account exists. When given, a
   * request without a valid token is refused (401), as with `tokens`.
   */
  serviceAccounts?: ServiceAccountIssuer;
  /** request body limit in bytes (default 3 MiB, as kube-apiserver) */
  maxBodyBytes?: number;
  /** interval of watch BOOKMARK events (default 15 s) */
  bookmarkMs?: number;
  /** bytes a watch client may leave unread before it is cut off (default 16 MiB) */
  maxWatchBufferBytes?: number;
  logger?: winston.Logger;
}

const rbacType = (kind: string): ResourceType =>
  BUILTIN.find((t) => t.kind === kind && t.group === 'rbac.authorization.k8s.io')!;
const coreType = (kind: string): ResourceType =>
  BUILTIN.find((t) => t.kind === kind && t.group === '')!;
/** How 422s name a TokenRequest. */
const TOKEN_REQUEST = {
  kind: 'TokenRequest',
  group: 'authentication.k8s.io',
  plural: 'tokenrequests',
};

const notFoundPath = (path: string): ApiError =>
  new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`, {});

export class ApiServer {
  private server?: http.Server;
  private readonly sockets = new Set<Socket>();
  readonly storage: Storage;
  readonly registry = new Registry();
  private readonly rest: Rest;
  private readonly log: winston.Logger;
  private readonly users?: TokenUser[];
  private readonly authorizer?: Authorizer;
  private readonly openApiV2 = new OpenApiV2Cache();

  constructor(private readonly opts: ApiServerOptions) {
    this.storage = new Storage(opts.etcd, opts.prefix);
    this.users = opts.tokens?.map((t) =>
      typeof t === 'string' ? { token: t, name: 'admin', groups: [MASTERS] } : t,
    );
    if (opts.authorization === 'RBAC') this.authorizer = new Authorizer(() => this.rbacPolicy());
    this.log =
      opts.logger ??
      winston.createLogger({
        level: 'warn',
        format: winston.format.json(),
        defaultMeta: { component: 'apiserver' },
        transports: [
          new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }),
        ],
      });
    this.rest = new Rest(this.storage, this.registry, {
      maxBodyBytes: opts.maxBodyBytes ?? 3 * 1024 * 1024,
      bookmarkMs: opts.bookmarkMs ?? 15000,
      maxBufferBytes: opts.maxWatchBufferBytes ?? 16 * 1024 * 1024,
    });
  }

  /** Listens (port 0: any free port) and returns the server's URL. */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await this.rest.loadCrds();
    await this.rest.bootstrap();
    if (this.authorizer) await this.bootstrapRbac();
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void =>
      void this.handle(req, res);
    this.server = this.opts.tls
      ? https.createServer({ cert: this.opts.tls.cert, key: this.opts.tls.key }, handler)
      : http.createServer(handler);
    // every socket, TLS handshakes included, so close() ends them all
    this.server.on('connection', (sock: Socket) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, resolve);
    });
    const scheme = this.opts.tls ? 'https' : 'http';
    const h = host.includes(':') ? `[${host}]` : host;
    return `${scheme}://${h}:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    this.server?.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
    this.rest.close();
    this.storage.close();
  }

  /** The request's user; undefined when a token is required and none is valid. */
  private async user(req: http.IncomingMessage): Promise<UserInfo | undefined> {
    const sa = this.opts.serviceAccounts;
    if (!this.users && !sa) return { name: 'system:anonymous', groups: ['system:unauthenticated'] };
    const fromFile = authenticate(req.headers.authorization, this.users ?? []);
    if (fromFile || !sa) return fromFile;
    const token = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1].trim() ?? '';
    if (!looksLikeJwt(token)) return undefined;
    const claims = verifyToken(sa, token, Math.floor(Date.now() / 1000));
    if (!claims) return undefined;
    // as kube's validator: the service account (and a bound object) must still exist, the
    // same one (uid): deleting it revokes its tokens
    const k = claims['kubernetes.io'];
    const same = async (t: ResourceType, name: string, uid: string, ns?: string) =>
      (await this.storage.tryGet(t, name, ns))?.metadata.uid === uid;
    if (
      !(await same(
        coreType('ServiceAccount'),
        k.serviceaccount.name,
        k.serviceaccount.uid,
        k.namespace,
      ))
    )
      return undefined;
    if (k.pod && !(await same(coreType('Pod'), k.pod.name, k.pod.uid, k.namespace)))
      return undefined;
    if (k.node && !(await same(coreType('Node'), k.node.name, k.node.uid))) return undefined;
    return claimsUser(claims);
  }

  /**
   * POST .../serviceaccounts/<name>/token: a token for the service account, as
   * kube-apiserver's TokenRequest (default one hour, at least ten minutes, audiences the
   * API's unless asked, optionally bound to a Pod or Node that must exist).
   */
  private async tokenRequest(
    req: http.IncomingMessage,
    r: Route,
    send: (code: number, body: unknown) => void,
  ): Promise<void> {
    const iss = this.opts.serviceAccounts;
    if (!iss || !r.name) throw notFoundPath(req.url ?? '');
    if (req.method !== 'POST')
      throw new ApiError(
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
    const max = this.opts.maxBodyBytes ?? 3 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > max)
        throw new ApiError(
          413,
          'RequestEntityTooLarge',
          `Request entity too large: limit is ${max}`,
        );
      chunks.push(c as Buffer);
    }
    const contentType = (req.headers['content-type'] ?? 'application/json').split(';')[0].trim();
    let spec;
    try {
      spec = parseTokenRequest(Buffer.concat(chunks), contentType);
    } catch (err) {
      if (/unsupported content type/.test((err as Error).message))
        throw new ApiError(
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format (${contentType}) - accepted media types include: application/json, application/vnd.kubernetes.protobuf`,
        );
      throw new ApiError(
        400,
        'BadRequest',
        `the request body is not a TokenRequest: ${(err as Error).message}`,
      );
    }
    const sa = await this.storage.get(coreType('ServiceAccount'), r.name, r.namespace);
    const namespace = sa.metadata.namespace ?? r.namespace ?? 'default';
    const causes: Cause[] = [];
    const exp = spec.expirationSeconds ?? 3600;
    if (!Number.isInteger(exp) || exp < 600)
      causes.push({
        reason: 'FieldValueInvalid',
        field: 'spec.expirationSeconds',
        message: `Invalid value: ${exp}: may not specify a duration less than 10 minutes`,
      });
    else if (exp > 2 ** 32)
      causes.push({
        reason: 'FieldValueInvalid',
        field: 'spec.expirationSeconds',
        message: `Invalid value: ${exp}: may not specify a duration larger than 2^32 seconds`,
      });
    let bound: BoundObject | undefined;
    const ref = spec.boundObjectRef;
    if (ref && (ref.kind || ref.name)) {
      if (ref.kind !== 'Pod' && ref.kind !== 'Node')
        causes.push({
          reason: 'FieldValueNotSupported',
          field: 'spec.boundObjectRef.kind',
          message: `Unsupported value: "${ref.kind ?? ''}": supported values: "Pod", "Node"`,
        });
      else if (!ref.name)
        causes.push({
          reason: 'FieldValueRequired',
          field: 'spec.boundObjectRef.name',
          message: 'Required value',
        });
      else {
        const o = await this.storage.get(
          coreType(ref.kind),
          ref.name,
          ref.kind === 'Pod' ? namespace : undefined,
        );
        if (ref.uid && ref.uid !== o.metadata.uid)
          throw new ApiError(
            409,
            'Conflict',
            `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
          );
        bound = { kind: ref.kind, name: ref.name, uid: o.metadata.uid! };
      }
    }
    if (causes.length) throw invalid(TOKEN_REQUEST, r.name, causes);
    const audiences = spec.audiences?.length ? spec.audiences : iss.audiences;
    const nowSeconds = Math.floor(Date.now() / 1000);
    const claims = tokenClaims(iss, {
      namespace,
      name: r.name,
      uid: sa.metadata.uid!,
      audiences,
      expirationSeconds: exp,
      nowSeconds,
      ...(bound ? { bound } : {}),
    });
    const stamp = (s: number) => new Date(s * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    send(201, {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name: r.name, namespace, creationTimestamp: stamp(nowSeconds) },
      spec: {
        audiences,
        expirationSeconds: exp,
        boundObjectRef: bound
          ? { kind: bound.kind, apiVersion: 'v1', name: bound.name, uid: bound.uid }
          : null,
      },
      status: { token: signToken(iss.signingKey, claims), expirationTimestamp: stamp(claims.exp) },
    });
  }

  /** The RBAC objects now (read for each decision, so every server on the etcd agrees). */
  private async rbacPolicy(): Promise<RbacPolicy> {
    const [clusterRoles, clusterRoleBindings, roles, roleBindings] = await Promise.all(
      ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].map(
        async (k) => (await this.storage.list(rbacType(k))).items as never[],
      ),
    );
    return { clusterRoles, clusterRoleBindings, roles, roleBindings };
  }

  /** The bootstrap roles and bindings kube-apiserver creates when they are missing. */
  private async bootstrapRbac(): Promise<void> {
    for (const o of [...BOOTSTRAP_POLICY.clusterRoles, ...BOOTSTRAP_POLICY.clusterRoleBindings]) {
      const type = rbacType(o.kind);
      if (await this.storage.tryGet(type, o.metadata.name)) continue;
      await this.storage.create(type, structuredClone(o) as never).catch((err: unknown) => {
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      });
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (code: number, body: unknown, contentType = 'application/json'): void => {
      res.writeHead(code, { 'Content-Type': contentType });
      res.end(JSON.stringify(body));
    };
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const path = url.pathname.replace(/\/$/, '') || '/';
      if (path === '/healthz' || path === '/livez' || path === '/readyz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        return void res.end('ok');
      }
      const user = await this.user(req);
      if (!user) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
      await this.authorizer?.authorize(user, requestAttributes(req.method ?? 'GET', url));
      const types = this.registry.all();
      if (req.method === 'GET') {
        if (path === '/version')
          return send(200, {
            major: '1',
            minor: '32',
            gitVersion: 'v1.32.0-tortie',
            gitCommit: '',
            gitTreeState: 'clean',
            buildDate: '2026-01-01T00:00:00Z',
            goVersion: 'none',
            compiler: 'tortie',
            platform: `${process.platform}/${process.arch}`,
          });
        if (path === '/api' || path === '/apis') {
          if (wantsAggregated(req.headers.accept))
            return send(200, aggregated(types, path === '/api'), AGGREGATED);
          return send(200, path === '/api' ? apiVersions() : groupList(types));
        }
        if (path === '/openapi/v2' || path === OPENAPI_V2_LEGACY_PATH)
          return this.openApiV2.serve(req, res, openApiV2(types), path !== '/openapi/v2');
        if (path === '/openapi/v3') return send(200, openApiV3Index(types));
        if (path.startsWith('/openapi/v3/')) {
          const doc = openApiV3Group(types, path.slice('/openapi/v3/'.length));
          if (!doc) throw notFoundPath(path);
          return send(200, doc);
        }
      }
      const groupPath = /^\/apis\/([^/]+)$/.exec(path);
      if (groupPath && req.method === 'GET') {
        const g = group(types, groupPath[1]);
        if (!g) throw notFoundPath(path);
        return send(200, g);
      }
      const p = parsePath(path);
      if (!p) throw notFoundPath(path);
      if (!p.rest.length) {
        if (req.method !== 'GET') throw notFoundPath(path);
        const list = resourceList(types, p.group, p.version);
        if (!list) throw notFoundPath(path);
        return send(200, list);
      }
      const r = route(this.registry, p.group, p.version, p.rest);
      if (!r) throw notFoundPath(path);
      if (r.type.kind === 'ServiceAccount' && !r.type.group && r.subresource === 'token')
        return await this.tokenRequest(req, r, send);
      await this.rest.serve(req, res, url, r);
    } catch (err) {
      const e =
        err instanceof ApiError ? err : new ApiError(500, 'InternalError', (err as Error).message);
      if (e.code >= 500)
        this.log.error('request failed', { method: req.method, url: req.url, error: e.message });
      if (!res.headersSent) send(e.code, statusBody(e));
      else res.end();
    }
  }
}
