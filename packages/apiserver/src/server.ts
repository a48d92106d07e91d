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
import { Rest } from './rest';
import { BUILTIN, Registry, type ResourceType } from './resources';
import { parsePath, route } from './router';
import { Storage } from './storage';
import { ApiError, statusBody } from './status';
import { authenticate, MASTERS, type TokenUser, type UserInfo } from './auth';
import { Authorizer, BOOTSTRAP_POLICY, requestAttributes, type RbacPolicy } from './rbac';

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
  private user(req: http.IncomingMessage): UserInfo | undefined {
    if (!this.users) return { name: 'system:anonymous', groups: ['system:unauthenticated'] };
    return authenticate(req.headers.authorization, this.users);
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
      const user = this.user(req);
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
        if (path === '/openapi/v2') {
          // kubectl asks for protobuf only; it does without v2 when refused
          if (!/json|\*\/\*/.test(req.headers.accept ?? '*/*'))
            throw new ApiError(
              406,
              'NotAcceptable',
              'only application/json is served for /openapi/v2',
            );
          return send(200, openApiV2(types));
        }
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
