// The health check node ports of `externalTrafficPolicy: Local` LoadBalancer Services, as
// kube-proxy serves them: an external load balancer asks each node on the Service's
// healthCheckNodePort and sends traffic only to nodes that answer 200, i.e. nodes with a
// ready local endpoint (503 otherwise). The body is kube-proxy's.
import http from 'node:http';
import type { Logger } from 'winston';
import { localReadyEndpoints, type EndpointSlice, type Service } from './model';

export interface HealthCheck {
  namespace: string;
  name: string;
  localEndpoints: number;
}

export class HealthCheckServers {
  private readonly servers = new Map<number, http.Server>();
  /** what each port answers now: counts change without reopening the port */
  private readonly current = new Map<number, HealthCheck>();

  constructor(
    private readonly log: Logger,
    private readonly address = '0.0.0.0',
  ) {}

  /** Serves exactly these ports; a port that cannot be opened is logged, not thrown. */
  async sync(wanted: Map<number, HealthCheck>): Promise<void> {
    for (const [port, server] of this.servers) {
      if (wanted.has(port)) continue;
      this.servers.delete(port);
      this.current.delete(port);
      await new Promise<void>((r) => server.close(() => r()));
    }
    for (const [port, check] of wanted) {
      this.current.set(port, check);
      if (this.servers.has(port)) continue;
      const server = http.createServer((_req, res) => this.answer(port, res));
      this.servers.set(port, server);
      await new Promise<void>((resolve) => {
        server.once('error', (e) => {
          this.log.warn('health check node port not served', {
            component: 'services',
            service: `${check.namespace}/${check.name}`,
            port,
            error: e.message,
          });
          this.servers.delete(port);
          resolve();
        });
        server.listen(port, this.address, () => resolve());
      });
    }
  }

  async close(): Promise<void> {
    await this.sync(new Map());
  }

  private answer(port: number, res: http.ServerResponse): void {
    const c = this.current.get(port);
    const body = JSON.stringify({
      service: { namespace: c?.namespace ?? '', name: c?.name ?? '' },
      localEndpoints: c?.localEndpoints ?? 0,
      serviceProxyHealthy: true,
    });
    res.writeHead(c && c.localEndpoints > 0 ? 200 : 503, {
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(body);
  }
}

/** Which ports to serve: Local LoadBalancer Services with a health check node port. */
export function healthChecks(
  services: Iterable<Service>,
  slices: Iterable<EndpointSlice>,
  nodeName: string,
): Map<number, HealthCheck> {
  const local = localReadyEndpoints(slices, nodeName);
  const out = new Map<number, HealthCheck>();
  for (const svc of services) {
    if (svc.type !== 'LoadBalancer' || svc.externalTrafficPolicy !== 'Local') continue;
    if (!svc.healthCheckNodePort) continue;
    out.set(svc.healthCheckNodePort, {
      namespace: svc.namespace,
      name: svc.name,
      localEndpoints: local.get(`${svc.namespace}/${svc.name}`)?.size ?? 0,
    });
  }
  return out;
}
