// The daemon's control socket, like birdc's: newline-delimited JSON requests and
// replies over a Unix socket. A Unix socket is a file, so a client in any network
// namespace (tests, tortiectl) can reach a speaker running inside another one.
import fs from 'node:fs';
import net from 'node:net';

export interface ControlRequest {
  cmd: string;
  [arg: string]: unknown;
}

export type ControlReply = { ok: true; result: unknown } | { ok: false; error: string };

export type ControlHandler = (req: ControlRequest) => Promise<unknown> | unknown;

export function serveControl(path: string, handle: ControlHandler): net.Server {
  if (fs.existsSync(path)) fs.unlinkSync(path); // a stale socket from a previous run
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void answer(line).then((reply) => {
          if (!sock.destroyed) sock.write(JSON.stringify(reply) + '\n');
        });
      }
    });
    sock.on('error', () => sock.destroy());
  });
  async function answer(line: string): Promise<ControlReply> {
    let req: ControlRequest;
    try {
      req = JSON.parse(line) as ControlRequest;
      if (typeof req?.cmd !== 'string') throw new Error('missing "cmd"');
    } catch (err) {
      return { ok: false, error: `bad request: ${(err as Error).message}` };
    }
    try {
      return { ok: true, result: await handle(req) };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }
  // originate/withdraw change what we announce: only the owner (root) may connect
  server.once('listening', () => fs.chmodSync(path, 0o600));
  server.listen(path);
  return server;
}

/** Sends one request and resolves with its result; rejects with the daemon's error text. */
export function controlRequest(
  path: string,
  req: ControlRequest,
  timeoutMs = 10000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`control socket ${path}: no answer to "${req.cmd}" in ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      const reply = JSON.parse(buf.slice(0, nl)) as ControlReply;
      if (reply.ok) resolve(reply.result);
      else reject(new Error(reply.error));
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`control socket ${path}: ${err.message}`));
    });
  });
}
