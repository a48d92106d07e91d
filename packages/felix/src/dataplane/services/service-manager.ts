// The service dataplane as one of the agent's managers: keeps the Services and
// EndpointSlices the calculation graph passes through, the pod networks (IP pools) and
// whether the proxy is on (FelixConfiguration / FELIX_SERVICEPROXYENABLED), and programs
// them with a ServiceProxy on each apply.
import type { Logger } from 'winston';
import { isTrue } from '../../config';
import type { DataplaneUpdate } from '../../types';
import type { EndpointSlice, IpFamily, Service } from './model';
import { HealthCheckServers, healthCheckOf, type HealthCheck } from './health-check';
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
  /** Services (namespace/name) whose health check is to be worked out again */
  private readonly healthDirty = new Set<string>();
  /** the health check each Service wants, and which Services want each port */
  private readonly healthOf = new Map<string, { port: number; check: HealthCheck }>();
  private readonly portClaims = new Map<number, Set<string>>();

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
        if (old && (old.namespace !== u.service.namespace || old.name !== u.service.name)) {
          this.proxy.deleteService(old.namespace, old.name);
          this.healthDirty.add(keyOf(old));
        }
        this.healthDirty.add(keyOf(u.service));
        this.services.set(u.id, u.service);
        this.proxy.setService(u.service);
        break;
      }
      case 'service-remove': {
        const old = this.services.get(u.id);
        if (old) {
          this.proxy.deleteService(old.namespace, old.name);
          this.healthDirty.add(keyOf(old));
        }
        this.services.delete(u.id);
        break;
      }
      case 'endpoint-slice-update':
      case 'endpoint-slice-remove': {
        const old = this.slices.get(u.id);
        const slice = u.type === 'endpoint-slice-update' ? u.slice : undefined;
        if (old) this.healthDirty.add(sliceKeyOf(old));
        if (slice) {
          this.healthDirty.add(sliceKeyOf(slice));
          this.slices.set(u.id, slice);
        } else this.slices.delete(u.id);
        this.proxy.setEndpointSlice(u.id, slice);
        break;
      }
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
        // turned off, the ports were closed: turned on, every Service's check is wanted again
        if (on) this.healthAll();
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
      await this.health.update(this.healthChanges());
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

  private healthAll(): void {
    this.healthOf.clear();
    this.portClaims.clear();
    for (const s of this.services.values()) this.healthDirty.add(keyOf(s));
  }

  /**
   * The health check ports whose answer changed, from the dirty Services only. Two
   * Services with one port: the first by namespace/name has it.
   */
  private healthChanges(): Map<number, HealthCheck | undefined> {
    const ports = new Set<number>();
    for (const k of this.healthDirty) {
      const old = this.healthOf.get(k);
      const now = healthCheckOf(
        this.proxy.service(k),
        this.proxy.endpointSlicesOf(k),
        this.o.nodeName,
      );
      if (old) {
        this.portClaims.get(old.port)?.delete(k);
        ports.add(old.port);
      }
      if (now) {
        this.healthOf.set(k, now);
        const claims = this.portClaims.get(now.port) ?? new Set<string>();
        this.portClaims.set(now.port, claims.add(k));
        ports.add(now.port);
      } else this.healthOf.delete(k);
    }
    this.healthDirty.clear();
    const changes = new Map<number, HealthCheck | undefined>();
    for (const p of ports) {
      const claims = [...(this.portClaims.get(p) ?? [])].sort();
      if (claims.length === 0) this.portClaims.delete(p);
      changes.set(p, claims.length ? this.healthOf.get(claims[0])!.check : undefined);
    }
    return changes;
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

const keyOf = (s: Service) => `${s.namespace}/${s.name}`;
const sliceKeyOf = (s: EndpointSlice) => `${s.namespace}/${s.serviceName}`;

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
