// The agent's HTTP endpoints: /liveness, /readiness (kubelet probes) and /metrics
// (Prometheus, through prom-client with a registry of the agent's own).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Health {
  /** The process is working (its loops turn). */
  live(): boolean;
  /** The dataplane has been programmed from an in-sync datastore at least once. */
  ready(): boolean;
}

export function agentMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tortie_' });
  return {
    registry,
    applyLatency: new Histogram({
      name: 'tortie_dataplane_apply_seconds',
      help: 'Time to apply one batch of dataplane changes',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    applyFailures: new Counter({
      name: 'tortie_dataplane_apply_failures_total',
      help: 'Dataplane apply attempts that failed (retried)',
      registers: [registry],
    }),
    iptablesRules: new Gauge({
      name: 'tortie_iptables_rules',
      help: 'iptables rules programmed by tortie, per table',
      labelNames: ['table'],
      registers: [registry],
    }),
    bgpSessions: new Gauge({
      name: 'tortie_bgp_sessions',
      help: 'BGP sessions by state',
      labelNames: ['state'],
      registers: [registry],
    }),
    routes: new Gauge({
      name: 'tortie_routes',
      help: 'Routes programmed by tortie, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    localEndpoints: new Gauge({
      name: 'tortie_local_endpoints',
      help: 'Workload endpoints on this node',
      registers: [registry],
    }),
  };
}

export type AgentMetrics = ReturnType<typeof agentMetrics>;

export async function serveOps(
  health: Health,
  registry: Registry,
  port: number,
  host = '127.0.0.1',
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const reply = (code: number, body: string, type = 'text/plain') => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    switch (req.url) {
      case '/liveness':
        return health.live() ? reply(200, 'live\n') : reply(503, 'not live\n');
      case '/readiness':
        return health.ready() ? reply(200, 'ready\n') : reply(503, 'not ready\n');
      case '/metrics':
        registry.metrics().then(
          (m) => reply(200, m, registry.contentType),
          (e: Error) => reply(500, e.message),
        );
        return;
      default:
        return reply(404, 'try /liveness, /readiness or /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
