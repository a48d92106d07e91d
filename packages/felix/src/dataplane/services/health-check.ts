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
  /** wanted ports not listening yet (new, or their port could not be opened) */
  private readonly unserved = new Set<number>();

  constructor(
    private readonly log: Logger,
    private readonly address = '0.0.0.0',
  ) {}

  /**
   * Serves the ports given with a check, closes those given undefined; other ports stay
   * as they are. A port that cannot be opened is logged, not thrown, and tried again at
   * the next update.
   */
  async update(changes: Map<number, HealthCheck | undefined>): Promise<void> {
    for (const [port, check] of changes) {
      if (check) {
        this.current.set(port, check);
        if (!this.servers.has(port)) this.unserved.add(port);
        continue;
      }
      this.current.delete(port);
      this.unserved.delete(port);
      const server = this.servers.get(port);
      this.servers.delete(port);
      if (server) await new Promise<void>((r) => server.close(() => r()));
    }
    for (const port of [...this.unserved]) {
      const check = this.current.get(port)!;
      this.unserved.delete(port);
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
          this.unserved.add(port);
          resolve();
        });
        server.listen(port, this.address, () => resolve());
      });
    }
  }

  async close(): Promise<void> {
    await this.update(new Map([...this.current.keys()].map((p) => [p, undefined])));
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

/**
 * The health check one Service wants: a Local LoadBalancer Service with a health check
 * node port, answering with its ready endpoints on this node (`slices`: its own).
 */
export function healthCheckOf(
  svc: Service | undefined,
  slices: Iterable<EndpointSlice>,
  nodeName: string,
): { port: number; check: HealthCheck } | undefined {
  if (!svc || svc.type !== 'LoadBalancer' || svc.externalTrafficPolicy !== 'Local') return;
  if (!svc.healthCheckNodePort) return;
  const local = localReadyEndpoints(slices, nodeName);
  return {
    port: svc.healthCheckNodePort,
    check: {
      namespace: svc.namespace,
      name: svc.name,
      localEndpoints: local.get(`${svc.namespace}/${svc.name}`)?.size ?? 0,
    },
  };
}
