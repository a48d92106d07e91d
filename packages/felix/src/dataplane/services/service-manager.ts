// The service dataplane as one of the agent's managers: keeps the Services and
// EndpointSlices the calculation graph passes through, the pod networks (IP pools) and
// whether the proxy is on (FelixConfiguration / FELIX_SERVICEPROXYENABLED), and programs
// them with a ServiceProxy on each apply.
import type { Logger } from 'winston';
import { isTrue } from '../../config';
import type { DataplaneUpdate } from '../../types';
import type { EndpointSlice, IpFamily, Service } from './model';
import { HealthCheckServers, healthChecks } from './health-check';
import { ServiceProxy, type NftExec } from './service-proxy';

export interface ServiceManagerOptions {
  nodeName: string;
  logger: Logger;
  exec?: NftExec;
  netns?: string;
  /** on before any FelixConfiguration says otherwise (the agent's resolved config) */
  enabled?: boolean;
  /** where health check node ports listen (default: every address) */
  healthCheckAddress?: string;
}

export class ServiceManager {
  readonly name = 'services';
  private readonly services = new Map<string, Service>();
  private readonly slices = new Map<string, EndpointSlice>();
  private readonly pools = new Set<string>();
  private enabled: boolean;
  private programmed = false;
  private dirty = true;
  private readonly proxy: ServiceProxy;

  private readonly health: HealthCheckServers;

  constructor(private readonly o: ServiceManagerOptions) {
    this.enabled = o.enabled ?? false;
    this.proxy = this.makeProxy();
    this.health = new HealthCheckServers(o.logger, o.healthCheckAddress);
  }

  send(u: DataplaneUpdate): void {
    switch (u.type) {
      // the proxy gets each change as it comes: an apply renders only the services touched
      case 'service-update': {
        const old = this.services.get(u.id);
        if (old && (old.namespace !== u.service.namespace || old.name !== u.service.name))
          this.proxy.deleteService(old.namespace, old.name);
        this.services.set(u.id, u.service);
        this.proxy.setService(u.service);
        break;
      }
      case 'service-remove': {
        const old = this.services.get(u.id);
        if (old) this.proxy.deleteService(old.namespace, old.name);
        this.services.delete(u.id);
        break;
      }
      case 'endpoint-slice-update':
        this.slices.set(u.id, u.slice);
        this.proxy.setEndpointSlice(u.id, u.slice);
        break;
      case 'endpoint-slice-remove':
        this.slices.delete(u.id);
        this.proxy.setEndpointSlice(u.id, undefined);
        break;
      case 'pool-update':
        if (this.pools.has(u.pool.cidr)) return;
        this.pools.add(u.pool.cidr);
        this.poolsChanged(); // masquerade rules name the pod networks
        break;
      case 'pool-remove':
        this.pools.delete(u.cidr);
        this.poolsChanged();
        break;
      case 'config-update': {
        this.proxy.setNodePortRanges(nodePortRanges(u.config.kubeNodePortRanges, this.o.logger));
        // absent from FelixConfiguration: the agent's own setting (environment or default)
        const v = u.config.serviceProxyEnabled;
        const on = v === undefined ? (this.o.enabled ?? false) : isTrue(v);
        if (on === this.enabled) break; // the ranges may have changed
        this.enabled = on;
        break;
      }
      default:
        return;
    }
    this.dirty = true;
  }

  async apply(): Promise<void> {
    if (!this.dirty) return;
    // what arrives while nft runs marks dirty again and goes with the next apply
    this.dirty = false;
    try {
      if (!this.enabled) {
        if (this.programmed) await this.proxy.remove();
        await this.health.close();
        this.programmed = false;
        return;
      }
      await this.proxy.apply();
      this.programmed = true;
      await this.health.sync(
        healthChecks(this.services.values(), this.slices.values(), this.o.nodeName),
      );
    } catch (e) {
      this.dirty = true;
      throw e;
    }
  }

  /** Closes the health check ports (the agent stopping). */
  async close(): Promise<void> {
    await this.health.close();
  }

  async resync(): Promise<void> {
    if (!this.enabled) return;
    this.proxy.resync();
    this.dirty = true;
    await this.apply();
  }

  private byFamily(f: IpFamily): string[] {
    return [...this.pools].filter((c) => c.includes(':') === (f === 6)).sort();
  }

  private poolsChanged(): void {
    for (const f of [4, 6] as const) this.proxy.setClusterCidrs(f, this.byFamily(f));
  }

  private makeProxy(): ServiceProxy {
    return new ServiceProxy({
      nodeName: this.o.nodeName,
      families: [4, 6],
      clusterCidrs: { 4: this.byFamily(4), 6: this.byFamily(6) },
      exec: this.o.exec,
      netns: this.o.netns,
      // the proxy tells each problem once
      onProblem: (p) => {
        this.o.logger.warn('service left out', { component: 'services', problem: p });
      },
    });
  }
}

/**
 * FelixConfiguration kubeNodePortRanges (ports or "from:to", the API checked them) as
 * ranges; absent or unreadable: Kubernetes' default 30000-32767.
 */
export function nodePortRanges(v: unknown, logger?: Logger): Array<[number, number]> {
  if (v === undefined || v === null || v === '') return [[30000, 32767]];
  const items = Array.isArray(v) ? v : String(v).split(',');
  const out: Array<[number, number]> = [];
  for (const item of items) {
    const m = /^\s*(\d+)(?::(\d+))?\s*$/.exec(String(item));
    if (!m) {
      logger?.warn('kubeNodePortRanges: not a port or range, default used', { value: item });
      return [[30000, 32767]];
    }
    out.push([Number(m[1]), Number(m[2] ?? m[1])]);
  }
  return out;
}
