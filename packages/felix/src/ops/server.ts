// The agent's HTTP endpoints: /liveness, /readiness (kubelet probes), /metrics
// (Prometheus, through prom-client with a registry of the agent's own) and /status (JSON
// for tortiectl: the dataplane and the policies failing closed). Served on TCP for the
// probes and scrapers, and on a unix socket (mode 0600) for tortiectl on the host.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PolicyFailure } from '../dataplane/acl';

export interface Health {
  /** The process is working (its loops turn). */
  live(): boolean;
  /** The dataplane has been programmed from an in-sync datastore at least once. */
  ready(): boolean;
}

export function agentMetrics(sources: { failClosed?: () => PolicyFailure[] } = {}) {
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
    applyRetries: new Counter({
      name: 'tortie_dataplane_apply_retries_total',
      help: 'Dataplane applies started again after a failed one',
      registers: [registry],
    }),
    cniAddPhases: new Histogram({
      name: 'tortie_cni_add_phase_seconds',
      help: "Where a CNI ADD served by the agent spends its time: ipam (pod lookup and IPAM), setup (the pod's interface), endpoint (the WorkloadEndpoint write), policy (until the agent has programmed it)",
      labelNames: ['phase'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    programmedLatency: new Histogram({
      name: 'tortie_dataplane_programmed_seconds',
      help: 'Time from a datastore change reaching the agent to the dataplane programmed with it',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    policyFailures: new Counter({
      name: 'tortie_policy_failures_total',
      help: 'Times a policy or profile could not be programmed and started failing closed',
      labelNames: ['kind', 'policy', 'direction'],
      registers: [registry],
    }),
    failClosed: new Gauge({
      name: 'tortie_policies_fail_closed',
      help: 'Policies and profiles failing closed now (1 per policy, direction and IP family)',
      labelNames: ['kind', 'policy', 'direction', 'family'],
      registers: [registry],
      collect() {
        if (!sources.failClosed) return;
        this.reset();
        for (const f of sources.failClosed())
          this.inc({ kind: f.kind, policy: f.id, direction: f.direction, family: f.family });
      },
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

export interface OpsOptions {
  /** The /status document. */
  status?: () => unknown;
  /** Also serve on this unix socket (mode 0600: the status names the node's policies). */
  socket?: string;
}

export async function serveOps(
  health: Health,
  registry: Registry,
  port: number,
  host = '127.0.0.1',
  opts: OpsOptions = {},
): Promise<{ port: number; close(): Promise<void> }> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
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
      case '/status':
        if (opts.status)
          return reply(200, JSON.stringify(opts.status(), null, 2) + '\n', 'application/json');
        break;
    }
    reply(404, `try /liveness, /readiness, /metrics${opts.status ? ' or /status' : ''}\n`);
  };
  const listen = (server: http.Server, ...where: [string] | [number, string]) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(...(where as [number, string]), () => resolve());
    });
  const tcp = http.createServer(handler);
  await listen(tcp, port, host);
  let unix: http.Server | undefined;
  if (opts.socket) {
    fs.mkdirSync(path.dirname(opts.socket), { recursive: true });
    fs.rmSync(opts.socket, { force: true }); // left by an earlier run
    unix = http.createServer(handler);
    await listen(unix, opts.socket).catch((e: Error) => {
      tcp.close();
      throw new Error(`cannot serve the status socket ${opts.socket}: ${e.message}`);
    });
    fs.chmodSync(opts.socket, 0o600);
  }
  const close = (s: http.Server) => new Promise<void>((r) => s.close(() => r()));
  return {
    port: (tcp.address() as AddressInfo).port,
    close: async () => {
      await Promise.all([close(tcp), ...(unix ? [close(unix)] : [])]);
      if (opts.socket) fs.rmSync(opts.socket, { force: true });
    },
  };
}
