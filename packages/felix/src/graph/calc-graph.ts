// The calculation graph: syncer updates in, this node's dataplane updates out (types.ts).
// Pure (no I/O, no timers). Work is proportional to what changed: an endpoint change
// re-checks that endpoint against the active IP sets and, if it is local, recomputes its
// policy list; a block change recomputes that block's routes; a policy change re-checks
// the local endpoints. Nothing is sent before the syncer is in sync; then the whole
// initial state, then `in-sync`, then only differences.
import type { Kind, Resource } from '@tortie/api';
import type { SyncStatus, SyncUpdate } from '@tortie/datastore';
import type { Endpoint, Labels, Policy, Profile, Tier } from '@tortie/policy';
import type {
  BgpConfig,
  DataplaneSink,
  DataplaneUpdate,
  HostInfo,
  IpPoolInfo,
  RouteSpec,
} from '../types';
import { computePeers, nodeAsn } from './bgp';
import { IpSetIndex } from './ipsets';
import { blockRoutes, nodeIpv4, originatedBy, tunnelRoute, type RouteContext } from './routes';
import { renderRules } from './rules';
import { tiersFor } from './tiers';
import {
  hostToEndpoint,
  namespaceLabels,
  policyId,
  toNetworkSet,
  toPolicy,
  toProfile,
  toTier,
  workloadId,
  workloadToEndpoint,
} from './world';

export interface CalcGraphOptions {
  nodeName: string;
  sink: DataplaneSink;
  /** Networking backend: 'bgp' (default) learns remote routes over BGP; 'vxlan'/'none' derive them from blocks. */
  backend?: 'bgp' | 'vxlan' | 'none';
}

const keyOf = (kind: string, ns: string | undefined, name: string) => `${kind}/${ns ?? ''}/${name}`;

interface LocalEp {
  kind: 'wep' | 'hep';
  id: string;
  resource: Resource<'WorkloadEndpoint'> | Resource<'HostEndpoint'>;
  model: Endpoint;
  /** What was last sent, as JSON, to skip sending unchanged endpoints. */
  sent?: string;
  policies: Set<string>;
  profiles: string[];
}

interface ActiveRules {
  refs: string[];
  users: number;
  json: string;
}

export class CalcGraph {
  private readonly me: string;
  private readonly sink: DataplaneSink;
  private readonly backend: 'bgp' | 'vxlan' | 'none';
  private inSync = false;

  // what the datastore holds
  private readonly res = new Map<Kind, Map<string, Resource>>();
  private readonly policies = new Map<string, Policy>();
  private readonly profiles = new Map<string, Profile>();
  private readonly tiers = new Map<string, Tier>();
  private readonly endpointModels = new Map<string, Endpoint>();

  // derived
  private readonly ipsets: IpSetIndex;
  private readonly local = new Map<string, LocalEp>();
  private readonly activePolicies = new Map<string, ActiveRules>();
  private readonly activeProfiles = new Map<string, ActiveRules>();
  private readonly routeOwners = new Map<string, RouteSpec[]>();
  private readonly originated = new Map<string, string[]>();
  private sentRoutes = new Map<string, string>();
  private sentPools = new Map<string, string>();
  private sentHost?: string;
  private sentBgp?: string;
  private sentConfig?: string;

  // what changed since the last flush
  private readonly dirtyLocal = new Set<string>();
  private readonly dirtyPolicies = new Set<string>();
  private readonly dirtyProfiles = new Set<string>();
  private readonly dirtyBlocks = new Set<string>();
  private dirtyTopology = true;

  /** (set x item) checks and endpoint policy recomputations: proves incrementality in tests. */
  readonly work = { endpointRecomputes: 0, blockRecomputes: 0 };

  constructor(opts: CalcGraphOptions) {
    this.me = opts.nodeName;
    this.sink = opts.sink;
    this.backend = opts.backend ?? 'bgp';
    this.ipsets = new IpSetIndex((ns) => this.nsLabels(ns));
  }

  onStatus(status: SyncStatus): void {
    if (status === 'in-sync' && !this.inSync) {
      this.inSync = true;
      this.flush();
      this.sink.send({ type: 'in-sync' });
    }
  }

  onUpdates(updates: SyncUpdate[]): void {
    for (const u of updates) {
      const r = u.resource;
      this.apply(
        r.kind,
        keyOf(r.kind, r.metadata.namespace, r.metadata.name),
        u.type === 'set' ? r : undefined,
      );
    }
    if (this.inSync) this.flush();
  }

  // ---- intake ------------------------------------------------------------------------

  private store(kind: Kind): Map<string, Resource> {
    let m = this.res.get(kind);
    if (!m) this.res.set(kind, (m = new Map()));
    return m;
  }

  private all<K extends Kind>(kind: K): Resource<K>[] {
    return [...(this.res.get(kind)?.values() ?? [])] as Resource<K>[];
  }

  private apply(kind: Kind, key: string, r: Resource | undefined): void {
    const store = this.store(kind);
    const before = store.get(key);
    if (r) store.set(key, r);
    else store.delete(key);
    switch (kind) {
      case 'WorkloadEndpoint':
      case 'HostEndpoint':
        this.endpointChanged(
          key,
          (r ?? before) as Resource<'WorkloadEndpoint'> | Resource<'HostEndpoint'>,
          !!r,
        );
        break;
      case 'NetworkPolicy':
      case 'GlobalNetworkPolicy': {
        const p = toPolicy((r ?? before) as Resource<'NetworkPolicy'>);
        const id = policyId(p);
        if (r) this.policies.set(id, p);
        else this.policies.delete(id);
        // a tier move changes the id: the old one goes
        if (before && r) {
          const old = policyId(toPolicy(before as Resource<'NetworkPolicy'>));
          if (old !== id) {
            this.policies.delete(old);
            this.dirtyPolicies.add(old);
          }
        }
        this.dirtyPolicies.add(id);
        for (const k of this.local.keys()) this.dirtyLocal.add(k);
        break;
      }
      case 'Tier':
        if (r) this.tiers.set(r.metadata.name, toTier(r as Resource<'Tier'>));
        else this.tiers.delete((before as Resource).metadata.name);
        for (const k of this.local.keys()) this.dirtyLocal.add(k);
        break;
      case 'Profile': {
        const name = (r ?? before)!.metadata.name;
        if (r) this.profiles.set(name, toProfile(r as Resource<'Profile'>));
        else this.profiles.delete(name);
        this.dirtyProfiles.add(name);
        this.profileLabelsChanged(name);
        break;
      }
      case 'NetworkSet':
      case 'GlobalNetworkSet':
        this.ipsets.setItem(
          key,
          r ? { kind: 'net', set: toNetworkSet(r as Resource<'NetworkSet'>) } : undefined,
        );
        break;
      case 'IPAMBlock':
        this.dirtyBlocks.add(key);
        break;
      case 'FelixConfiguration':
        break; // read at flush
      default:
        // nodes, pools, affinities, BGP settings: the topology
        this.dirtyTopology = true;
    }
  }

  private endpointChanged(
    key: string,
    r: Resource<'WorkloadEndpoint'> | Resource<'HostEndpoint'>,
    present: boolean,
  ): void {
    const model = present ? this.toModel(r) : undefined;
    if (model) this.endpointModels.set(key, model);
    else this.endpointModels.delete(key);
    this.ipsets.setItem(key, model ? { kind: 'ep', ep: model } : undefined);
    const isLocal = present && r.spec.node === this.me;
    if (isLocal || this.local.has(key)) this.dirtyLocal.add(key);
    if (isLocal) {
      const cur = this.local.get(key);
      const id =
        r.kind === 'WorkloadEndpoint'
          ? workloadId(r as Resource<'WorkloadEndpoint'>)
          : r.metadata.name;
      this.local.set(key, {
        kind: r.kind === 'WorkloadEndpoint' ? 'wep' : 'hep',
        id,
        resource: r,
        model: model!,
        sent: cur?.id === id ? cur.sent : undefined,
        policies: cur?.policies ?? new Set(),
        profiles: cur?.profiles ?? [],
      });
    }
  }

  private toModel(r: Resource<'WorkloadEndpoint'> | Resource<'HostEndpoint'>): Endpoint {
    return r.kind === 'WorkloadEndpoint'
      ? workloadToEndpoint(r as Resource<'WorkloadEndpoint'>, this.profiles)
      : hostToEndpoint(r as Resource<'HostEndpoint'>, this.profiles);
  }

  /** A profile's labelsToApply feed endpoint labels (and namespace labels for kns.*). */
  private profileLabelsChanged(name: string): void {
    if (name.startsWith('kns.')) {
      const ns = name.slice(4);
      this.ipsets.namespaceChanged(ns);
      for (const [k, l] of this.local) if (l.model.namespace === ns) this.dirtyLocal.add(k);
    }
    for (const kind of ['WorkloadEndpoint', 'HostEndpoint'] as const) {
      for (const [key, r] of this.res.get(kind) ?? []) {
        const profiles = (r as Resource<'WorkloadEndpoint'>).spec.profiles ?? [];
        const sa = (r as Resource<'WorkloadEndpoint'>).spec.serviceAccountName;
        const viaSa = sa !== undefined && name === `ksa.${r.metadata.namespace}.${sa}`;
        if (profiles.includes(name) || viaSa)
          this.endpointChanged(key, r as Resource<'WorkloadEndpoint'>, true);
      }
    }
  }

  private nsLabels(ns: string): Labels {
    return namespaceLabels(ns, this.profiles);
  }

  // ---- output ------------------------------------------------------------------------

  private send(u: DataplaneUpdate): void {
    this.sink.send(u);
  }

  private flush(): void {
    const removals: DataplaneUpdate[] = [];
    this.flushPolicyContent();
    const endpointUpdates = this.flushEndpoints(removals);
    this.flushActiveRules(removals);
    const { updates: setUpdates, removes: setRemoves } = splitIpsets(this.ipsets.flush());
    // Felix's order: sets before the rules that use them, rules before endpoints that
    // jump to them; removals in reverse.
    for (const u of setUpdates) this.send(u);
    for (const u of this.pendingRules.splice(0)) this.send(u);
    for (const u of endpointUpdates) this.send(u);
    for (const u of removals) this.send(u);
    for (const u of setRemoves) this.send(u);
    this.flushTopology();
  }

  private readonly pendingRules: DataplaneUpdate[] = [];

  /** Changed policies/profiles that are active get re-rendered. */
  private flushPolicyContent(): void {
    for (const id of this.dirtyPolicies) {
      const a = this.activePolicies.get(id);
      if (a) this.renderActive('policy', id, a);
    }
    this.dirtyPolicies.clear();
    for (const id of this.dirtyProfiles) {
      const a = this.activeProfiles.get(id);
      if (a) this.renderActive('profile', id, a);
    }
    this.dirtyProfiles.clear();
  }

  private flushEndpoints(removals: DataplaneUpdate[]): DataplaneUpdate[] {
    const out: DataplaneUpdate[] = [];
    const allPolicies = [...this.policies.values()];
    for (const key of this.dirtyLocal) {
      const l = this.local.get(key);
      if (!l) continue;
      const present = this.store(l.resource.kind).has(key) && l.resource.spec.node === this.me;
      if (!present) {
        this.setUses(l, new Set(), []);
        this.local.delete(key);
        if (l.sent)
          removals.push(
            l.kind === 'wep'
              ? { type: 'workload-remove', id: l.id }
              : { type: 'host-endpoint-remove', id: l.id },
          );
        this.setLocalRoutes(key, []);
        continue;
      }
      this.work.endpointRecomputes++;
      l.model = this.toModel(l.resource);
      const tiers = tiersFor(l.model, allPolicies, this.tiers, (ns) => this.nsLabels(ns));
      const uses = new Set(tiers.flatMap((t) => [...t.ingressPolicies, ...t.egressPolicies]));
      const profiles = l.model.profiles ?? [];
      let u: DataplaneUpdate;
      if (l.kind === 'wep') {
        const w = l.resource as Resource<'WorkloadEndpoint'>;
        const nets = w.spec.ipNetworks;
        u = {
          type: 'workload-update',
          endpoint: {
            id: l.id,
            ifaceName: w.spec.interfaceName,
            ...(w.spec.mac ? { mac: w.spec.mac } : {}),
            ipv4Nets: nets.filter((n) => !n.includes(':')),
            ipv6Nets: nets.filter((n) => n.includes(':')),
            tiers,
            profileIds: profiles,
          },
        };
        this.setLocalRoutes(
          key,
          nets.map((dst) => ({
            dst,
            kind: 'local-workload',
            ifaceName: w.spec.interfaceName,
            node: this.me,
          })),
        );
      } else {
        const h = l.resource as Resource<'HostEndpoint'>;
        const stage = (s: 'untracked' | 'preDNAT' | 'forward') =>
          tiersFor(l.model, allPolicies, this.tiers, (ns) => this.nsLabels(ns), s);
        const untrackedTiers = stage('untracked');
        const preDnatTiers = stage('preDNAT');
        const forwardTiers = stage('forward');
        for (const t of [...untrackedTiers, ...preDnatTiers, ...forwardTiers])
          for (const p of [...t.ingressPolicies, ...t.egressPolicies]) uses.add(p);
        u = {
          type: 'host-endpoint-update',
          endpoint: {
            id: l.id,
            ...(h.spec.interfaceName ? { ifaceName: h.spec.interfaceName } : {}),
            expectedIps: h.spec.expectedIPs ?? [],
            tiers,
            untrackedTiers,
            preDnatTiers,
            forwardTiers,
            profileIds: profiles,
          },
        };
      }
      this.setUses(l, uses, profiles);
      const json = JSON.stringify(u);
      if (json !== l.sent) {
        l.sent = json;
        out.push(u);
      }
    }
    this.dirtyLocal.clear();
    return out;
  }

  /** Moves an endpoint's references to the policies/profiles it now uses. */
  private setUses(l: LocalEp, uses: Set<string>, profiles: string[]): void {
    for (const id of uses) if (!l.policies.has(id)) this.use('policy', id);
    for (const id of l.policies) if (!uses.has(id)) this.release('policy', id);
    for (const id of profiles) if (!l.profiles.includes(id)) this.use('profile', id);
    for (const id of l.profiles) if (!profiles.includes(id)) this.release('profile', id);
    l.policies = uses;
    l.profiles = [...profiles];
  }

  private use(kind: 'policy' | 'profile', id: string): void {
    const map = kind === 'policy' ? this.activePolicies : this.activeProfiles;
    let a = map.get(id);
    if (!a) {
      map.set(id, (a = { refs: [], users: 0, json: '' }));
      this.renderActive(kind, id, a);
    }
    a.users++;
  }

  private release(kind: 'policy' | 'profile', id: string): void {
    const map = kind === 'policy' ? this.activePolicies : this.activeProfiles;
    const a = map.get(id);
    if (a) a.users--;
  }

  /** Renders an active policy/profile's rules (re-referencing its IP sets). */
  private renderActive(kind: 'policy' | 'profile', id: string, a: ActiveRules): void {
    const old = a.refs;
    let u: DataplaneUpdate | undefined;
    if (kind === 'policy') {
      const p = this.policies.get(id);
      if (!p) return; // deleted: the endpoints that used it let go at this flush
      const ns = p.kind === 'NetworkPolicy' ? p.metadata.namespace : undefined;
      const inbound = renderRules(p.spec.ingress, id, 'inbound', ns, this.ipsets);
      const outbound = renderRules(p.spec.egress, id, 'outbound', ns, this.ipsets);
      a.refs = [...inbound.refs, ...outbound.refs];
      u = {
        type: 'policy-update',
        id,
        inbound: inbound.rules,
        outbound: outbound.rules,
        ...(p.spec.doNotTrack ? { untracked: true } : {}),
        ...(p.spec.preDNAT ? { preDnat: true } : {}),
        ...(p.spec.applyOnForward ? { applyOnForward: true } : {}),
      };
    } else {
      const p = this.profiles.get(id);
      const inbound = renderRules(p?.ingress, id, 'inbound', undefined, this.ipsets);
      const outbound = renderRules(p?.egress, id, 'outbound', undefined, this.ipsets);
      a.refs = [...inbound.refs, ...outbound.refs];
      u = { type: 'profile-update', id, inbound: inbound.rules, outbound: outbound.rules };
    }
    for (const r of old) this.ipsets.unref(r);
    const json = JSON.stringify(u);
    if (json !== a.json) {
      a.json = json;
      this.pendingRules.push(u);
    }
  }

  /** Policies/profiles no endpoint uses any more are removed (after the endpoints). */
  private flushActiveRules(removals: DataplaneUpdate[]): void {
    for (const [kind, map] of [
      ['policy', this.activePolicies],
      ['profile', this.activeProfiles],
    ] as const) {
      for (const [id, a] of map) {
        if (a.users > 0) continue;
        map.delete(id);
        for (const r of a.refs) this.ipsets.unref(r);
        if (a.json)
          removals.push(
            kind === 'policy' ? { type: 'policy-remove', id } : { type: 'profile-remove', id },
          );
        // a pending update for it is moot
        const i = this.pendingRules.findIndex(
          (u) => 'id' in u && u.id === id && u.type === `${kind}-update`,
        );
        if (i >= 0) this.pendingRules.splice(i, 1);
      }
    }
  }

  // ---- topology: routes, pools, host, BGP -----------------------------------------------

  private routeContext(): RouteContext {
    return {
      me: this.me,
      nodes: new Map(this.all('Node').map((n) => [n.metadata.name, n])),
      pools: this.all('IPPool'),
      bgpEnabled: this.backend === 'bgp',
    };
  }

  private setLocalRoutes(key: string, routes: RouteSpec[]): void {
    this.setRoutes(`ep:${key}`, routes);
  }

  private setRoutes(owner: string, routes: RouteSpec[]): void {
    if (routes.length) this.routeOwners.set(owner, routes);
    else this.routeOwners.delete(owner);
    this.routesChanged = true;
  }

  private routesChanged = false;

  private flushTopology(): void {
    const ctx = this.routeContext();
    const blocks = this.store('IPAMBlock');
    const recompute = this.dirtyTopology ? [...blocks.keys()] : [...this.dirtyBlocks];
    for (const key of recompute) {
      const b = blocks.get(key) as Resource<'IPAMBlock'> | undefined;
      this.work.blockRecomputes++;
      this.setRoutes(`block:${key}`, b ? blockRoutes(ctx, b) : []);
      if (b) this.originated.set(key, originatedBy(ctx, b));
      else this.originated.delete(key);
    }
    if (this.dirtyTopology) {
      for (const o of [...this.routeOwners.keys()])
        if (o.startsWith('tunnel:')) this.routeOwners.delete(o);
      for (const n of ctx.nodes.values()) {
        const r = tunnelRoute(ctx, n);
        if (r) this.setRoutes(`tunnel:${n.metadata.name}`, [r]);
      }
      this.routesChanged = true;
      this.flushPools(ctx);
      this.flushHost(ctx);
      this.flushConfig();
    }
    if (this.routesChanged) this.flushRoutes();
    if (this.dirtyTopology || this.dirtyBlocks.size) this.flushBgp(ctx);
    this.dirtyTopology = false;
    this.dirtyBlocks.clear();
    this.routesChanged = false;
  }

  private flushRoutes(): void {
    const next = new Map<string, string>();
    const specs = new Map<string, RouteSpec>();
    for (const routes of this.routeOwners.values()) {
      for (const r of routes) {
        // a local workload's /32 wins over anything else for the same destination
        if (specs.has(r.dst) && specs.get(r.dst)!.kind === 'local-workload') continue;
        specs.set(r.dst, r);
        next.set(r.dst, JSON.stringify(r));
      }
    }
    for (const [dst, json] of next)
      if (this.sentRoutes.get(dst) !== json)
        this.send({ type: 'route-update', route: specs.get(dst)! });
    for (const dst of this.sentRoutes.keys())
      if (!next.has(dst)) this.send({ type: 'route-remove', dst });
    this.sentRoutes = next;
  }

  private flushPools(ctx: RouteContext): void {
    const next = new Map<string, string>();
    for (const p of ctx.pools) {
      const pool: IpPoolInfo = {
        cidr: p.spec.cidr,
        ipip: p.spec.ipipMode,
        vxlan: p.spec.vxlanMode,
        natOutgoing: p.spec.natOutgoing,
        disableBGPExport: p.spec.disableBGPExport,
      };
      const json = JSON.stringify(pool);
      next.set(p.spec.cidr, json);
      if (this.sentPools.get(p.spec.cidr) !== json) this.send({ type: 'pool-update', pool });
    }
    for (const cidr of this.sentPools.keys())
      if (!next.has(cidr)) this.send({ type: 'pool-remove', cidr });
    this.sentPools = next;
  }

  private flushHost(ctx: RouteContext): void {
    const n = ctx.nodes.get(this.me);
    const addr = n?.spec.bgp?.ipv4Address;
    const host: HostInfo = { node: this.me };
    if (addr) {
      host.ipv4Address = addr.split('/')[0];
      if (addr.includes('/')) host.ipv4Subnet = subnetOf(addr);
    }
    if (n?.spec.bgp?.ipv6Address) host.ipv6Address = n.spec.bgp.ipv6Address.split('/')[0];
    if (n?.spec.bgp?.ipv4IPIPTunnelAddr) host.ipv4IPIPTunnelAddr = n.spec.bgp.ipv4IPIPTunnelAddr;
    if (n?.spec.ipv4VXLANTunnelAddr) host.ipv4VXLANTunnelAddr = n.spec.ipv4VXLANTunnelAddr;
    if (n?.spec.vxlanTunnelMACAddr) host.vxlanTunnelMACAddr = n.spec.vxlanTunnelMACAddr;
    const json = JSON.stringify(host);
    if (json !== this.sentHost) {
      this.sentHost = json;
      this.send({ type: 'host-update', host });
    }
  }

  private flushConfig(): void {
    const felix = this.all('FelixConfiguration');
    const global = felix.find((f) => f.metadata.name === 'default')?.spec ?? {};
    const mine = felix.find((f) => f.metadata.name === `node.${this.me}`)?.spec ?? {};
    const config = { ...global, ...mine } as Record<string, unknown>;
    const json = JSON.stringify(config);
    if (json !== this.sentConfig) {
      this.sentConfig = json;
      this.send({ type: 'config-update', config });
    }
  }

  private flushBgp(ctx: RouteContext): void {
    const me = ctx.nodes.get(this.me);
    const config = this.all('BGPConfiguration').find((c) => c.metadata.name === 'default');
    const inputs = { me: this.me, nodes: ctx.nodes, config, peers: this.all('BGPPeer') };
    const routerId = nodeIpv4(me);
    const services = [
      ...(config?.spec.serviceClusterIPs ?? []),
      ...(config?.spec.serviceExternalIPs ?? []),
    ].map((s) => s.cidr);
    const bgp: BgpConfig = {
      enabled: this.backend === 'bgp' && routerId !== undefined,
      asNumber: nodeAsn(inputs, me),
      ...(routerId ? { routerId } : {}),
      listenPort: config?.spec.listenPort ?? 179,
      ...(me?.spec.bgp?.ipv4Address?.includes('/')
        ? { localSubnet: subnetOf(me.spec.bgp.ipv4Address) }
        : {}),
      ...(me?.spec.bgp?.routeReflectorClusterID
        ? { routeReflectorClusterId: me.spec.bgp.routeReflectorClusterID }
        : {}),
      peers: this.backend === 'bgp' ? computePeers(inputs) : [],
      originate: [...new Set([...[...this.originated.values()].flat(), ...services])].sort(),
    };
    const json = JSON.stringify(bgp);
    if (json !== this.sentBgp) {
      this.sentBgp = json;
      this.send({ type: 'bgp-update', bgp });
    }
  }
}

function splitIpsets(us: DataplaneUpdate[]) {
  return {
    updates: us.filter((u) => u.type !== 'ipset-remove'),
    removes: us.filter((u) => u.type === 'ipset-remove'),
  };
}

function subnetOf(cidr: string): string {
  const [ip, len] = cidr.split('/');
  const n = ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const mask = Number(len) === 0 ? 0 : (0xffffffff << (32 - Number(len))) >>> 0;
  const net = (n & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${len}`;
}
