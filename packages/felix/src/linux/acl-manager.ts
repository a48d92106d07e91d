// The ACL side of the dataplane: IP sets and iptables chains for the local workload
// endpoints, their policies and profiles, and natOutgoing. Consumes the calculation
// graph's updates, writes in batches: sets first, then each table in one
// iptables-restore, then set removals. Nothing before in-sync; startup reads what the
// kernel has and converges without flushing.
import type { DataplaneManager } from '../agent';
import { resolveConfig, type HostPort } from '../config';
import type {
  DataplaneRule,
  DataplaneUpdate,
  HostEndpoint,
  IpPoolInfo,
  WorkloadEndpoint,
} from '../types';
import {
  chainNames,
  endpointChain,
  failsafeChains,
  filterChains,
  hostEndpointChains,
  natChains,
  ruleChain,
  type Chain,
  type Family,
  type NetSet,
} from './iptables-render';
import { IptablesTable, detectBackend, type Backend } from './iptables-table';
import { IpsetWriter } from './ipsets';
import type { CommandRunner } from './runner';

interface Rules {
  inbound: DataplaneRule[];
  outbound: DataplaneRule[];
}

export interface AclOptions {
  backend?: Backend | 'Auto';
  /** Host ports that stay open on host endpoints whatever the policy (default: Calico's). */
  failsafeInbound?: HostPort[];
  failsafeOutbound?: HostPort[];
  /** Program ip6tables too (default: when an IPv6 pool exists). */
  ipv6?: boolean;
}

export class AclManager implements DataplaneManager {
  readonly name = 'acl';
  private inSync = false;
  private readonly policies = new Map<string, Rules>();
  private readonly profiles = new Map<string, Rules>();
  private readonly workloads = new Map<string, WorkloadEndpoint>();
  private readonly hostEndpoints = new Map<string, HostEndpoint>();
  private readonly pools = new Map<string, IpPoolInfo>();
  private defaultEndpointToHostAction: 'Drop' | 'Accept' | 'Return' = 'Drop';
  private readonly ipsets: IpsetWriter;
  private tables?: IptablesTable[];
  private netSets = new Map<string, NetSet>();
  private poolSets = '';
  /** Rendered chains per policy/profile/endpoint, reused while unchanged. */
  private readonly chainCache = new Map<
    string,
    { key: unknown; chains: Chain[]; netSets: NetSet[] }
  >();

  constructor(
    private readonly runner: CommandRunner,
    private readonly opts: AclOptions = {},
  ) {
    this.ipsets = new IpsetWriter(runner);
  }

  send(u: DataplaneUpdate): void {
    switch (u.type) {
      case 'ipset-update':
        this.ipsets.replace(u.id, u.setType, u.members);
        break;
      case 'ipset-delta':
        this.ipsets.delta(u.id, u.added, u.removed);
        break;
      case 'ipset-remove':
        this.ipsets.remove(u.id);
        break;
      case 'policy-update':
        this.policies.set(u.id, { inbound: u.inbound, outbound: u.outbound });
        break;
      case 'policy-remove':
        this.policies.delete(u.id);
        break;
      case 'profile-update':
        this.profiles.set(u.id, { inbound: u.inbound, outbound: u.outbound });
        break;
      case 'profile-remove':
        this.profiles.delete(u.id);
        break;
      case 'workload-update':
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
      case 'pool-update':
        this.pools.set(u.pool.cidr, u.pool);
        break;
      case 'pool-remove':
        this.pools.delete(u.cidr);
        break;
      case 'config-update': {
        const a = u.config.defaultEndpointToHostAction;
        if (a === 'Drop' || a === 'Accept' || a === 'Return') this.defaultEndpointToHostAction = a;
        break;
      }
      case 'in-sync':
        this.inSync = true;
        break;
    }
  }

  setDefaultEndpointToHostAction(a: 'Drop' | 'Accept' | 'Return'): void {
    this.defaultEndpointToHostAction = a;
  }

  private families(): Family[] {
    const v6 = this.opts.ipv6 ?? [...this.pools.keys()].some((c) => c.includes(':'));
    return v6 ? [4, 6] : [4];
  }

  private async ensureTables(): Promise<IptablesTable[]> {
    if (!this.tables) {
      const backend =
        !this.opts.backend || this.opts.backend === 'Auto'
          ? await detectBackend(this.runner)
          : this.opts.backend;
      this.tables = this.families().flatMap((f) => [
        new IptablesTable(this.runner, 'filter', f, backend),
        new IptablesTable(this.runner, 'nat', f, backend),
      ]);
    }
    return this.tables;
  }

  private cached(key: string, version: unknown, render: (netSets: Map<string, NetSet>) => Chain[]) {
    const hit = this.chainCache.get(key);
    if (hit && hit.key === version) return hit;
    const netSets = new Map<string, NetSet>();
    const entry = { key: version, chains: render(netSets), netSets: [...netSets.values()] };
    this.chainCache.set(key, entry);
    return entry;
  }

  /** Every chain of one family's filter table. */
  private filterChainsFor(family: Family, netSets: Map<string, NetSet>): Chain[] {
    const heps = [...this.hostEndpoints.values()].filter((h) => h.ifaceName && h.ifaceName !== '*');
    const defaults = resolveConfig({});
    const chains: Chain[] = [
      ...filterChains({
        workloads: [...this.workloads.values()],
        hostEndpoints: heps,
        defaultEndpointToHostAction: this.defaultEndpointToHostAction,
      }),
      ...failsafeChains(
        this.opts.failsafeInbound ?? defaults.failsafeInboundHostPorts,
        this.opts.failsafeOutbound ?? defaults.failsafeOutboundHostPorts,
      ),
    ];
    const live = new Set<string>();
    const add = (key: string, version: unknown, render: (n: Map<string, NetSet>) => Chain[]) => {
      live.add(key);
      const e = this.cached(key, version, render);
      chains.push(...e.chains);
      for (const n of e.netSets) netSets.set(n.id, n);
    };
    for (const [id, r] of this.policies) {
      add(`${family}|p|${id}`, r, (n) => [
        ruleChain(chainNames.policyIn(id), r.inbound, family, n),
        ruleChain(chainNames.policyOut(id), r.outbound, family, n),
      ]);
    }
    for (const [id, r] of this.profiles) {
      add(`${family}|r|${id}`, r, (n) => [
        ruleChain(chainNames.profileIn(id), r.inbound, family, n),
        ruleChain(chainNames.profileOut(id), r.outbound, family, n),
      ]);
    }
    for (const w of this.workloads.values()) {
      add(`${family}|w|${w.id}`, w, () => [
        endpointChain(chainNames.toWorkload(w.ifaceName), w.tiers, 'ingress', w.profileIds),
        endpointChain(chainNames.fromWorkload(w.ifaceName), w.tiers, 'egress', w.profileIds),
      ]);
    }
    for (const h of heps) add(`${family}|h|${h.id}`, h, () => hostEndpointChains(h));
    for (const k of this.chainCache.keys())
      if (k.startsWith(`${family}|`) && !live.has(k)) this.chainCache.delete(k);
    return chains;
  }

  async apply(): Promise<void> {
    if (!this.inSync) return;
    const tables = await this.ensureTables();
    const netSets = new Map<string, NetSet>();
    const byTable = new Map<IptablesTable, Chain[]>();
    const masquerade = [...this.pools.values()].some((p) => p.natOutgoing);
    for (const t of tables) {
      byTable.set(
        t,
        t.table === 'filter'
          ? this.filterChainsFor(t.family, netSets)
          : natChains(t.family, masquerade),
      );
    }
    // sets the rules need: net lists, and the pools for natOutgoing
    for (const [id, n] of netSets)
      if (!this.netSets.has(id)) this.ipsets.replace(id, 'hash:net', n.nets);
    for (const id of this.netSets.keys()) if (!netSets.has(id)) this.ipsets.remove(id);
    this.netSets = netSets;
    const all = [...this.pools.keys()].sort();
    const masq = [...this.pools.values()]
      .filter((p) => p.natOutgoing)
      .map((p) => p.cidr)
      .sort();
    const poolKey = JSON.stringify([all, masq]);
    if (poolKey !== this.poolSets) {
      this.ipsets.replace('all-ipam-pools', 'hash:net', all);
      this.ipsets.replace('masq-ipam-pools', 'hash:net', masq);
      this.poolSets = poolKey;
    }
    // sets and the first read-back of every table at once; then the tables
    await Promise.all([this.ipsets.applyUpdates(), ...tables.map((t) => t.ensureLoaded())]);
    await Promise.all(
      [...byTable].map(([t, chains]) => {
        t.setChains(chains);
        return t.apply();
      }),
    );
    await this.ipsets.applyRemovals();
  }

  /** Reads back every table and repairs drift; rewrites the sets whole. */
  async resync(): Promise<void> {
    if (!this.inSync) return;
    this.ipsets.markAllDirty();
    await this.ipsets.applyUpdates();
    for (const t of await this.ensureTables()) await t.resync();
  }

  ruleCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.tables ?? [])
      out[`${t.table}${t.family === 6 ? '6' : ''}`] = t.ruleCount();
    return out;
  }
}
