// Serving OpenAPI v2 as kube-apiserver does (kube-openapi pkg/handler): /openapi/v2 in
// JSON or gnostic protobuf, chosen by Accept (goautoneg's order: q, then specific before
// wildcard); the ETag is the SHA-512 of the JSON in upper-case hex, quoted, shared by
// both forms (hence Vary: Accept); If-None-Match and If-Modified-Since answered 304 as
// Go's http.ServeContent; gzip when asked for and worth it (gziphandler, 1400 bytes); no
// acceptable type gets a bare 406. /swagger-2.0.0.pb-v1 is the pre-1.14 path (client-go
// before 1.14 fell back to it): protobuf whatever the Accept, its own ETag.
import { createHash } from 'node:crypto';
import type http from 'node:http';
import zlib from 'node:zlib';
import { encodeOpenApiV2 } from './openapi-v2-proto';

export const OPENAPI_V2_JSON = 'application/json';
/** The type kube-openapi answers with for protobuf. */
export const OPENAPI_V2_PB = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';
/** What kubectl (client-go's discovery OpenAPISchema) asks for. */
export const OPENAPI_V2_PB_REQUEST = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';
/** The legacy path's type (mime extension .pb-v1 in kube-openapi before 2019). */
export const OPENAPI_V2_PB_LEGACY =
  'application/com.github.googleapis.gnostic.OpenAPIv2@68f4ded+protobuf';
export const OPENAPI_V2_LEGACY_PATH = '/swagger-2.0.0.pb-v1';

const GZIP_MIN = 1400;

interface Clause {
  type: string;
  subType: string;
  q: number;
}

/** Accept's media ranges in goautoneg's order; a malformed or q=0 range is skipped. */
export function parseAccept(header: string | undefined): Clause[] {
  const out: Clause[] = [];
  for (const part of (header || '*/*').split(',')) {
    const [range, ...params] = part.split(';').map((s) => s.trim());
    const m = /^([^/\s]+)\/([^/\s]+)$/.exec(range);
    if (!m) continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=').map((s) => s.trim());
      if (k === 'q') q = Number(v);
    }
    if (!(q > 0)) continue;
    out.push({ type: m[1].toLowerCase(), subType: m[2].toLowerCase(), q });
  }
  const rank = (c: Clause): number => (c.type === '*' ? 2 : c.subType === '*' ? 1 : 0);
  return out.sort((a, b) => b.q - a.q || rank(a) - rank(b));
}

const ACCEPTED: [subType: string, protobuf: boolean][] = [
  ['json', false],
  ['com.github.proto-openapi.spec.v2@v1.0+protobuf', true],
  ['com.github.proto-openapi.spec.v2.v1.0+protobuf', true],
];

/** Which form of /openapi/v2 an Accept header gets, or undefined (406). */
export function negotiateOpenApiV2(accept: string | undefined): 'json' | 'protobuf' | undefined {
  for (const c of parseAccept(accept))
    for (const [subType, pb] of ACCEPTED)
      if (
        (c.type === 'application' || c.type === '*') &&
        (c.subType === subType || c.subType === '*')
      )
        return pb ? 'protobuf' : 'json';
  return undefined;
}

const etagOf = (b: Buffer): string =>
  `"${createHash('sha512').update(b).digest('hex').toUpperCase()}"`;

interface Body {
  data: Buffer;
  gzip?: Buffer;
}

interface Spec {
  json: Body;
  etag: string;
  lastModified: Date;
  pb?: Body;
  legacyEtag?: string;
}

/** The served v2 document in its forms, re-encoded only when the JSON changes. */
export class OpenApiV2Cache {
  private spec?: Spec;

  private current(doc: unknown): Spec {
    const json = Buffer.from(JSON.stringify(doc));
    if (!this.spec || !this.spec.json.data.equals(json))
      this.spec = { json: { data: json }, etag: etagOf(json), lastModified: new Date() };
    return this.spec;
  }

  /** Answers a GET of /openapi/v2 (or, `legacy`, of /swagger-2.0.0.pb-v1). */
  serve(req: http.IncomingMessage, res: http.ServerResponse, doc: unknown, legacy = false): void {
    const form = legacy ? 'protobuf' : negotiateOpenApiV2(req.headers.accept);
    if (!legacy) res.setHeader('Vary', 'Accept');
    if (!form) {
      res.writeHead(406);
      return void res.end();
    }
    const spec = this.current(doc);
    if (form === 'protobuf') spec.pb ??= { data: encodeOpenApiV2(doc) };
    const body = form === 'json' ? spec.json : spec.pb!;
    if (legacy) spec.legacyEtag ??= etagOf(body.data);
    const etag = legacy ? spec.legacyEtag! : spec.etag;
    res.setHeader(
      'Content-Type',
      legacy ? OPENAPI_V2_PB_LEGACY : form === 'json' ? OPENAPI_V2_JSON : OPENAPI_V2_PB,
    );
    res.setHeader('Etag', etag);
    res.setHeader('Last-Modified', spec.lastModified.toUTCString());
    if (notModified(req, etag, spec.lastModified)) {
      // as http.ServeContent: no body headers, and no Last-Modified beside an ETag
      res.removeHeader('Content-Type');
      res.removeHeader('Last-Modified');
      res.writeHead(304);
      return void res.end();
    }
    res.appendHeader('Vary', 'Accept-Encoding');
    let data = body.data;
    if (data.length >= GZIP_MIN && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      body.gzip ??= zlib.gzipSync(data);
      data = body.gzip;
      res.setHeader('Content-Encoding', 'gzip');
    }
    res.setHeader('Content-Length', data.length);
    res.writeHead(200);
    res.end(data);
  }
}

/** http.ServeContent's conditional GET: If-None-Match first, else If-Modified-Since. */
function notModified(req: http.IncomingMessage, etag: string, lastModified: Date): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined)
    return inm
      .split(',')
      .map((t) => t.trim().replace(/^W\//, ''))
      .some((t) => t === '*' || t === etag);
  const ims = Date.parse(String(req.headers['if-modified-since'] ?? ''));
  return !Number.isNaN(ims) && Math.floor(lastModified.getTime() / 1000) * 1000 <= ims;
}
