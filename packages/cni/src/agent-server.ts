// The agent side of the CNI socket: one JSON request per connection ({env, input}, then
// EOF), answered with "<exit code>\n" and the bytes for stdout (simple enough for the C
// forwarder, native/cni-shim.c, to read without a JSON parser).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runCommand, type SharedDeps } from './run-command';

export async function serveCni(
  socket: string,
  shared: SharedDeps,
): Promise<{ close(): Promise<void> }> {
  fs.mkdirSync(path.dirname(socket), { recursive: true });
  fs.rmSync(socket, { force: true }); // a stale socket of an earlier agent
  // half-open: the request ends with the client's FIN, the answer goes back after it
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    let req = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (req += d));
    c.on('end', () => {
      void (async () => {
        let out;
        try {
          const { env, input } = JSON.parse(req) as { env: NodeJS.ProcessEnv; input: string };
          out = await runCommand(env, input, shared);
        } catch (e) {
          out = {
            code: 1,
            stdout:
              JSON.stringify({
                cniVersion: '1.0.0',
                code: 6,
                msg: 'bad request to the agent',
                details: (e as Error).message,
              }) + '\n',
          };
        }
        c.end(`${out.code}\n${out.stdout}`);
      })();
    });
    c.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, resolve);
  });
  // commands run as the agent (root): only root may send them
  fs.chmodSync(socket, 0o600);
  return { close: () => new Promise((r) => server.close(() => r())) };
}
