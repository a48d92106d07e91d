// A recording dataplane: applies the calculation graph's updates to plain maps. The fake
// for unit tests, and the way to compare "incremental" with "from scratch" (the
// accumulated state must be the same whatever the path).
import type {
  BgpConfig,
  DataplaneSink,
  DataplaneUpdate,
  HostEndpoint,
  HostInfo,
  IpPoolInfo,
  RouteSpec,
  WorkloadEndpoint,
} from './types';

export class DataplaneState implements DataplaneSink {
  readonly log: DataplaneUpdate[] = [];
  ipsets = new Map<string, Set<string>>();
  policies = new Map<string, Extract<DataplaneUpdate, { type: 'policy-update' }>>();
  profiles = new Map<string, Extract<DataplaneUpdate, { type: 'profile-update' }>>();
  workloads = new Map<string, WorkloadEndpoint>();
  hostEndpoints = new Map<string, HostEndpoint>();
  routes = new Map<string, RouteSpec>();
  pools = new Map<string, IpPoolInfo>();
  host?: HostInfo;
  hostAddresses: string[] = [];
  bgp?: BgpConfig;
  config?: Record<string, unknown>;
  inSync = false;
  /** Protocol errors (a delta for an unknown set, a policy used before it exists...). */
  readonly errors: string[] = [];

  send(u: DataplaneUpdate): void {
    this.log.push(u);
    switch (u.type) {
      case 'ipset-update':
        this.ipsets.set(u.id, new Set(u.members));
        break;
      case 'ipset-delta': {
        const s = this.ipsets.get(u.id);
        if (!s) {
          this.errors.push(`delta for unknown set ${u.id}`);
          break;
        }
        for (const m of u.removed) s.delete(m);
        for (const m of u.added) s.add(m);
        break;
      }
      case 'ipset-remove':
        this.ipsets.delete(u.id);
        break;
      case 'policy-update':
        for (const id of setIds(u))
          if (!this.ipsets.has(id)) this.errors.push(`policy ${u.id} uses missing set ${id}`);
        this.policies.set(u.id, u);
        break;
      case 'policy-remove':
        this.policies.delete(u.id);
        break;
      case 'profile-update':
        this.profiles.set(u.id, u);
        break;
      case 'profile-remove':
        this.profiles.delete(u.id);
        break;
      case 'workload-update':
        for (const t of u.endpoint.tiers)
          for (const p of [...t.ingressPolicies, ...t.egressPolicies])
            if (!this.policies.has(p))
              this.errors.push(`endpoint ${u.endpoint.id} uses missing policy ${p}`);
        this.workloads.set(u.endpoint.id, u.endpoint);
        break;
      case 'workload-remove':
        this.workloads.delete(u.id);
        break;
      case 'host-endpoint-update':
        this.hostEndpoints.set(u.endpoint.id, u.endpoint);
        break;
      case 'host-endpoint-remove':
        this.hostEndpoints.delete(u.id);
        break;
      case 'route-update':
        this.routes.set(u.route.dst, u.route);
        break;
      case 'route-remove':
        this.routes.delete(u.dst);
        break;
      case 'pool-update':
        this.pools.set(u.pool.cidr, u.pool);
        break;
      case 'pool-remove':
        this.pools.delete(u.cidr);
        break;
      case 'host-update':
        this.host = u.host;
        break;
      case 'host-addresses':
        this.hostAddresses = u.addresses;
        break;
      case 'bgp-update':
        this.bgp = u.bgp;
        break;
      case 'config-update':
        this.config = u.config;
        break;
      case 'in-sync':
        this.inSync = true;
        break;
    }
  }

  /** Everything, as plain sorted data (for equality checks). */
  snapshot() {
    const sortMap = <V>(m: Map<string, V>) =>
      Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)));
    return {
      ipsets: sortMap(new Map([...this.ipsets].map(([k, v]) => [k, [...v].sort()]))),
      policies: sortMap(this.policies),
      profiles: sortMap(this.profiles),
      workloads: sortMap(this.workloads),
      hostEndpoints: sortMap(this.hostEndpoints),
      routes: sortMap(this.routes),
      pools: sortMap(this.pools),
      host: this.host,
      hostAddresses: this.hostAddresses,
      bgp: this.bgp,
    };
  }
}

function setIds(u: Extract<DataplaneUpdate, { type: 'policy-update' }>): string[] {
  return [...u.inbound, ...u.outbound].flatMap((r) => [
    ...(r.srcIpSetIds ?? []),
    ...(r.dstIpSetIds ?? []),
    ...(r.notSrcIpSetIds ?? []),
    ...(r.notDstIpSetIds ?? []),
    ...(r.srcNamedPortIpSetIds ?? []),
    ...(r.dstNamedPortIpSetIds ?? []),
    ...(r.notSrcNamedPortIpSetIds ?? []),
    ...(r.notDstNamedPortIpSetIds ?? []),
  ]);
}
