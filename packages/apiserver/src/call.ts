// One JSON request to a Kubernetes API server (this one or another), for the tests and
// the lab that write objects as a kubelet or controller would. HTTPS when the URL says
// so, trusting `ca`; a bearer token when given.
import http from 'node:http';
import https from 'node:https';

export interface CallOptions {
  /** PEM of the CA that signed the server's certificate (HTTPS) */
  ca?: string;
  token?: string;
  contentType?: string;
}

/** The reply's JSON body ({} when empty); a status of 300 or more rejects, naming it. */
export function apiCall(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  opts: CallOptions = {},
): Promise<unknown> {
  const text = body === undefined ? '' : JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': opts.contentType ?? 'application/json',
    // a length: node sends a DELETE body neither chunked nor sized otherwise
    'content-length': Buffer.byteLength(text),
  };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const request = url.startsWith('https:') ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers, ca: opts.ca }, (res) => {
      let out = '';
      res.on('data', (d) => (out += String(d)));
      res.on('end', () => {
        if ((res.statusCode ?? 500) >= 300) {
          reject(new Error(`${method} ${path}: ${res.statusCode} ${out}`));
          return;
        }
        try {
          resolve(out ? JSON.parse(out) : {});
        } catch {
          reject(new Error(`${method} ${path}: ${res.statusCode} with a body that is not JSON`));
        }
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}
