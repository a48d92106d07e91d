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
import { Registry } from './resources';
import { parsePath, route } from './router';
import { Storage } from './storage';
import { ApiError, statusBody } from './status';

export interface ApiServerOptions {
  /** etcd client URLs */
  etcd: string[];
  /** key prefix in etcd (default /registry) */
  prefix?: string;
  /** PEM certificate and key: serve HTTPS */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** bearer tokens accepted; when given, a request without one is refused (401) */
  tokens?: string[];
  /** request body limit in bytes (default 3 MiB, as kube-apiserver) */
  maxBodyBytes?: number;
  /** interval of watch BOOKMARK events (default 15 s) */
  bookmarkMs?: number;
  /** bytes a watch client may leave unread before it is cut off (default 16 MiB) */
  maxWatchBufferBytes?: number;
  logger?: winston.Logger;
}

const notFoundPath = (path: string): ApiError =>
  new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`, {});

export class ApiServer {
  private server?: http.Server;
  private readonly sockets = new Set<Socket>();
  readonly storage: Storage;
  readonly registry = new Registry();
  private readonly rest: Rest;
  private readonly log: winston.Logger;

  constructor(private readonly opts: ApiServerOptions) {
    this.storage = new Storage(opts.etcd, opts.prefix);
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

  private authenticated(req: http.IncomingMessage): boolean {
    if (!this.opts.tokens) return true;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    return !!m && this.opts.tokens.includes(m[1].trim());
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
      if (!this.authenticated(req)) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
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
