// tortie-rr's kubelet probes: GET /liveness (the process answers) and GET /readiness
// (the speaker runs with a configuration: from the datastore, once its first full list
// gave a usable Node; from a file, once started). 200 or 503, text bodies.
import http from 'node:http';

/** Where tortie-rr serves its probes unless told otherwise (tortie-node's is 9099). */
export const RR_HEALTH = { host: '127.0.0.1', port: 9098 } as const;

export interface RrHealth {
  /** Why it is not ready, or undefined when it is. */
  notReady(): string | undefined;
}

/**
 * The port and host from TORTIE_RR_HEALTH_PORT / TORTIE_RR_HEALTH_HOST (port 0 turns the
 * server off); a bad port is an error naming the variable. Pure.
 */
export function rrHealthAddress(env: NodeJS.ProcessEnv): { host: string; port: number } {
  const raw = env.TORTIE_RR_HEALTH_PORT;
  const port = raw === undefined || raw === '' ? RR_HEALTH.port : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`TORTIE_RR_HEALTH_PORT must be a port number (0 for none), got "${raw}"`);
  return { host: env.TORTIE_RR_HEALTH_HOST || RR_HEALTH.host, port };
}

/** Serves the probes; resolves with the server once it listens. */
export async function serveRrHealth(
  where: { host: string; port: number },
  health: RrHealth,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const reply = (code: number, body: string) => {
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(`${body}\n`);
    };
    if (req.method !== 'GET') return reply(405, 'GET only');
    if (req.url === '/liveness') return reply(200, 'live');
    if (req.url === '/readiness') {
      const why = health.notReady();
      return why === undefined ? reply(200, 'ready') : reply(503, why);
    }
    reply(404, 'not found: /liveness or /readiness');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: Error) =>
      reject(new Error(`health server on ${where.host}:${where.port}: ${e.message}`)),
    );
    server.listen(where.port, where.host, () => resolve());
  });
  return server;
}
