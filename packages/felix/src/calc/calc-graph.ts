// The calculation graph: syncer updates in, this node's dataplane updates out (see
// ../types.ts). Pure: no I/O, no timers. Organised as Felix's calc graph:
//
//   endpoints, network sets, profiles ─► flat labels (model.ts) ─┬─► IP set index (ipsets.ts)
//   policies ─► policy selectors ─► index over LOCAL endpoints ──┴─► per-endpoint tiers (tiers.ts)
//   local endpoints' tiers ─► active policies/profiles (refcounted) ─► rendered rules (rules.ts)
//        └─ their rules' selections ─► active IP sets (refcounted)
//   EndpointSlices ─► the IP sets of rules' `services` matches (ipsets.ts)
//   blocks, affinities, nodes, pools ─► routes (routes.ts, route-table.ts), BGP (@tortie/bgp-topology)
//
// Nothing is sent before the syncer is in sync: updates only mark what they touch
// dirty; the first flush (at in-sync) sends the whole state, then `in-sync`; later
// flushes (one per onUpdates batch) send only what changed. Each change costs what it
// touches: a pod's label change re-checks the selectors reading those labels and
// recomputes that one pod's policy lists.
import type { Resource } from '@tortie/api';
import { bgpSettings, computeBgp, type LocalWorkload } from '@tortie/bgp-topology';
import type { SyncStatus, SyncUpdate } from '@tortie/datastore';
import { policyTypes, type PolicySpec, type Rule } from '@tortie/policy';
import winston from 'winston';
import type {
  DataplaneSink,
  DataplaneUpdate,
  EndpointUpdate,
  HostEndpoint,
  IpPoolInfo,
  PolicyUpdate,
  TierInfo,
  WorkloadEndpoint,
} from '../types';
import {
  endpointSliceFromResource,
  serviceFromResource,
} from '../dataplane/services/from-resources';
import { localServiceRoutes, type EndpointSlice, type Service } from '../dataplane/services/model';
import { DEFAULT_TIER, policyId, resourceKey } from './ids';
import { IpSetCalculator } from './ipsets';
import { KeyedOutput } from './keyed-output';
import {
  endpointInfo,
  endpointLabels,
  netSetInfo,
  netSetLabels,
  type EndpointInfo,
  type NetSetInfo,
  type ProfileInfo,
} from './model';
import { RouteTable } from './route-table';
import {
  blockFacts,
  bgpPeerRoutes,
  blockNodes,
  blockOriginates,
  blockRoutes,
  hostAddresses,
  hostInfo,
  nodeFacts,
  poolContaining,
  poolInfo,
  tunnelRoute,
  type BlockFacts,
  type NodeFacts,
  type RouteWorld,
} from './routes';
import { renderRules } from './rules';
import { SelectorIndex } from './selector-index';
import { policySelector } from './selections';
import { tierList, type PolicyMeta, type TierMeta } from './tiers';

export interface CalcGraphConfig {
  /**
   * Send remote routes that need no tunnel (encap "none"), default true. Set false when
   * the BGP speaker installs the routes it learns itself.
   */
  directRoutes?: boolean;
  /** Run BGP at all (default true); false for Calico's "vxlan"/"none" backends. */
  bgp?: boolean;
  /** CALICO_ROUTER_ID: this node's BGP router id (an IPv4 address), or "hash". */
  routerId?: string;
}

export interface CalcGraphOptions {
  nodeName: string;
  sink: DataplaneSink;
  config?: CalcGraphConfig;
  logger?: winston.Logger;
}

/** Work done so far: tests use it to prove a change costs what it touches. */
export interface CalcStats {
  selectorEvaluations: number;
  endpointsResolved: number;
  rulesRendered: number;
  blocksRecomputed: number;
}

interface PolicyEntry {
  id: string;
  meta: PolicyMeta;
  namespace?: string;
  spec: PolicySpec;
  /** Canonical text of its endpoint selector ('' when it is invalid). */
  selectorText: string;
}

interface LocalState {
  outKey: string;
  uses: Set<string>;
  profiles: string[];
}

interface ActiveRules {
  users: number;
  sets: string[];
}

type RulesKey = `policy:${string}` | `profile:${string}`;

const addTo = <K, V>(m: Map<K, Set<V>>, k: K, v: V) => {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
};
const removeFrom = <K, V>(m: Map<K, Set<V>>, k: K, v: V) => {
  const s = m.get(k);
  s?.delete(v);
  if (s?.size === 0) m.delete(k);
};

export class CalcGraph {
  private readonly me: string;
  private readonly sink: DataplaneSink;
  private readonly log: winston.Logger;
  private readonly directRoutes: boolean;
  private readonly bgpEnabled: boolean;
  private readonly routerIdSetting?: string;
  private inSync = false;

  // ---- what the datastore holds (as plain facts) --------------------------------------
  private readonly endpoints = new Map<string, EndpointInfo>();
  private readonly netsets = new Map<string, NetSetInfo>();
  private readonly profiles = new Map<string, ProfileInfo>();
  private readonly policies = new Map<string, PolicyEntry>(); // by policy id
  private readonly policyIdByKey = new Map<string, string>();
  private readonly tiers = new Map<string, TierMeta>();
  private readonly nodes = new Map<string, NodeFacts>();
  private readonly pools = new Map<string, IpPoolInfo>(); // by resource key
  private readonly blocks = new Map<string, BlockFacts>(); // by cidr
  private readonly blockCidrByKey = new Map<string, string>();
  private readonly affinities = new Map<string, { cidr: string; node: string }>(); // confirmed, by key
  private readonly affinityOwners = new Map<string, Set<string>>(); // cidr -> affinity keys
  /** BGPConfigurations by name ("default", "node.<name>"). */
  private readonly bgpConfigs = new Map<string, Resource<'BGPConfiguration'>>();
  private readonly bgpPeers = new Map<string, Resource<'BGPPeer'>>();
  private readonly bgpFilters = new Map<string, Resource<'BGPFilter'>>();
  /** This node's workload endpoints as BGPPeer localWorkloadSelector reads them, by key. */
  private readonly bgpWorkloads = new Map<string, LocalWorkload>();
  private readonly felixConfigs = new Map<string, Record<string, unknown>>();
  /** service changes since the last flush, by kind and key (the last one wins) */
  private readonly servicesOut = new Map<string, DataplaneUpdate>();
  private readonly serviceModels = new Map<string, Service>();
  private readonly sliceModels = new Map<string, EndpointSlice>();

  // ---- reverse indexes: who to refresh when something they inherit from changes ------
  private readonly itemsByProfile = new Map<string, Set<string>>();
  private readonly itemsByNamespace = new Map<string, Set<string>>();
  private readonly itemsByServiceAccount = new Map<string, Set<string>>(); // "<ns>.<sa>"
  private readonly policiesByTier = new Map<string, Set<string>>();
  private readonly blocksByNode = new Map<string, Set<string>>();
  private readonly blockNodesOf = new Map<string, string[]>();

  // ---- derived state --------------------------------------------------------------------
  private readonly ipsets = new IpSetCalculator();
  private readonly policyIndex: SelectorIndex<string, string>;
  private readonly local = new Map<string, LocalState>();
  private readonly active = new Map<RulesKey, ActiveRules>();
  private readonly originated = new Map<string, string[]>();
  private readonly routeTable = new RouteTable();

  // ---- outputs, diffed against what was sent --------------------------------------------
  private readonly endpointOut = new KeyedOutput<EndpointUpdate>();
  private readonly rulesOut = new KeyedOutput<PolicyUpdate>();
  private readonly poolsOut = new KeyedOutput<IpPoolInfo>();
  private readonly miscOut = new KeyedOutput<DataplaneUpdate>();

  // ---- what changed since the last flush ------------------------------------------------
  private readonly dirtyEndpoints = new Set<string>();
  private readonly dirtyRules = new Set<RulesKey>();
  private readonly maybeUnused = new Set<RulesKey>();
  private readonly dirtyBlocks = new Set<string>();
  private readonly dirtyTunnels = new Set<string>();
  private dirtyHost = true;
  private dirtyHostAddresses = true;
  private dirtyBgp = true;
  private dirtyConfig = true;

  private readonly counters = { endpointsResolved: 0, rulesRendered: 0, blocksRecomputed: 0 };

  constructor(opts: CalcGraphOptions) {
    this.me = opts.nodeName;
    this.sink = opts.sink;
    this.directRoutes = opts.config?.directRoutes ?? true;
    this.bgpEnabled = opts.config?.bgp ?? true;
    this.routerIdSetting = opts.config?.routerId;
    this.log = opts.logger ?? winston.createLogger({ silent: true });
    this.policyIndex = new SelectorIndex({
      started: (_p, ep) => this.dirtyEndpoints.add(ep),
      stopped: (_p, ep) => this.dirtyEndpoints.add(ep),
    });
  }

  stats(): CalcStats {
    return {
      selectorEvaluations: this.ipsets.evaluations + this.policyIndex.evaluations,
      ...this.counters,
    };
  }

  onStatus(status: SyncStatus): void {
    if (status !== 'in-sync' || this.inSync) return;
    this.inSync = true;
    this.flush();
    this.sink.send({ type: 'in-sync' });
  }

  onUpdates(updates: SyncUpdate[]): void {
    for (const u of updates) {
      try {
        this.apply(u.resource, u.type === 'set');
      } catch (err) {
        // a resource we cannot use is skipped, naming it; the rest of the batch goes on
        this.log.error('calc: ignoring resource', {
          component: 'calc',
          resource: resourceKey(u.resource),
          error: (err as Error).message,
        });
      }
    }
    if (this.inSync) this.flush();
  }

  // ---- intake -----------------------------------------------------------------------------

  private apply(r: Resource, present: boolean): void {
    const key = resourceKey(r);
    switch (r.kind) {
      case 'WorkloadEndpoint':
      case 'HostEndpoint':
        return this.endpointChanged(key, present ? endpointInfo(r as never) : undefined);
      case 'NetworkSet':
      case 'GlobalNetworkSet':
        return this.netSetChanged(key, present ? netSetInfo(r as never) : undefined);
      case 'Profile':
        return this.profileChanged(r as Resource<'Profile'>, present);
      case 'NetworkPolicy':
      case 'GlobalNetworkPolicy':
        return this.policyChanged(key, present ? (r as Resource<'NetworkPolicy'>) : undefined);
      case 'Tier':
        return this.tierChanged(r as Resource<'Tier'>, present);
      case 'Node':
        return this.nodeChanged(r as Resource<'Node'>, present);
      case 'IPPool':
        return this.poolChanged(key, present ? poolInfo(r as Resource<'IPPool'>) : undefined);
      case 'IPAMBlock':
        return this.blockChanged(key, present ? (r as Resource<'IPAMBlock'>) : undefined);
      case 'BlockAffinity':
        return this.affinityChanged(key, present ? (r as Resource<'BlockAffinity'>) : undefined);
      case 'BGPConfiguration':
        // every node's: their listen ports are the ports we dial
        if (present) this.bgpConfigs.set(r.metadata.name, r as Resource<'BGPConfiguration'>);
        else this.bgpConfigs.delete(r.metadata.name);
        this.dirtyBgp = true;
        return;
      case 'BGPPeer':
        if (present) this.bgpPeers.set(key, r as Resource<'BGPPeer'>);
        else this.bgpPeers.delete(key);
        this.dirtyBgp = true;
        return;
      case 'BGPFilter':
        if (present) this.bgpFilters.set(key, r as Resource<'BGPFilter'>);
        else this.bgpFilters.delete(key);
        this.dirtyBgp = true;
        return;
      case 'KubernetesService': {
        const service = present ? serviceFromResource(r as never) : undefined;
        // only Local services give host routes: a change elsewhere leaves BGP alone
        if (isLocal(this.serviceModels.get(key)) || isLocal(service)) this.dirtyBgp = true;
        if (service) this.serviceModels.set(key, service);
        else this.serviceModels.delete(key);
        this.servicesOut.set(
          `svc:${key}`,
          service
            ? { type: 'service-update', id: key, service }
            : { type: 'service-remove', id: key },
        );
        return;
      }
      case 'KubernetesEndpointSlice': {
        const slice = present ? endpointSliceFromResource(r as never) : undefined;
        for (const s of [this.sliceModels.get(key), slice]) {
          if (s && isLocal(this.serviceModels.get(serviceKey(s)))) this.dirtyBgp = true;
        }
        if (slice) this.sliceModels.set(key, slice);
        else this.sliceModels.delete(key);
        // rules' `services` sets resolve to the slices' endpoints
        this.ipsets.setSlice(key, slice);
        this.servicesOut.set(
          `eps:${key}`,
          slice
            ? { type: 'endpoint-slice-update', id: key, slice }
            : { type: 'endpoint-slice-remove', id: key },
        );
        return;
      }
      case 'FelixConfiguration':
        if (present) this.felixConfigs.set(r.metadata.name, r.spec as Record<string, unknown>);
        else this.felixConfigs.delete(r.metadata.name);
        this.dirtyConfig = true;
        return;
      default:
        return; // kinds the dataplane does not depend on
    }
  }

  private lookupProfile = (name: string) => this.profiles.get(name);

  private endpointChanged(key: string, ep: EndpointInfo | undefined): void {
    const old = this.endpoints.get(key);
    if (old) this.unindexEndpoint(old);
    if (!ep) {
      this.endpoints.delete(key);
      this.ipsets.deleteItem(key);
      this.policyIndex.deleteItem(key);
      this.setBgpWorkload(key, undefined);
      if (this.local.has(key)) this.dirtyEndpoints.add(key);
      return;
    }
    this.endpoints.set(key, ep);
    for (const p of ep.profiles) addTo(this.itemsByProfile, p, key);
    if (ep.namespace !== undefined) {
      addTo(this.itemsByNamespace, ep.namespace, key);
      if (ep.serviceAccount !== undefined)
        addTo(this.itemsByServiceAccount, `${ep.namespace}.${ep.serviceAccount}`, key);
    }
    this.refreshEndpointLabels(ep);
    if (ep.node === this.me || this.local.has(key)) this.dirtyEndpoints.add(key);
  }

  private unindexEndpoint(ep: EndpointInfo): void {
    for (const p of ep.profiles) removeFrom(this.itemsByProfile, p, ep.key);
    if (ep.namespace !== undefined) {
      removeFrom(this.itemsByNamespace, ep.namespace, ep.key);
      if (ep.serviceAccount !== undefined)
        removeFrom(this.itemsByServiceAccount, `${ep.namespace}.${ep.serviceAccount}`, ep.key);
    }
  }

  /** Re-derives an endpoint's flat labels into both indexes. */
  private refreshEndpointLabels(ep: EndpointInfo): void {
    const labels = endpointLabels(ep, this.lookupProfile);
    const global = ep.namespace === undefined;
    this.ipsets.setItem(ep.key, labels, global, { nets: ep.nets, ports: ep.ports });
    if (ep.node === this.me) this.policyIndex.setItem(ep.key, labels, global);
    else this.policyIndex.deleteItem(ep.key);
    const first = (v6: boolean) => ep.nets.find((n) => n.includes(':') === v6)?.split('/')[0];
    const [ipv4, ipv6] = [first(false), first(true)];
    this.setBgpWorkload(
      ep.key,
      ep.kind === 'wep' && ep.node === this.me
        ? { id: ep.id, labels, ...(ipv4 ? { ipv4 } : {}), ...(ipv6 ? { ipv6 } : {}) }
        : undefined,
    );
  }

  /** A local workload for BGP; BGP is recomputed only when a BGPPeer selects workloads. */
  private setBgpWorkload(key: string, w: LocalWorkload | undefined): void {
    const before = this.bgpWorkloads.get(key);
    if (w) this.bgpWorkloads.set(key, w);
    else this.bgpWorkloads.delete(key);
    if (JSON.stringify(before) === JSON.stringify(w)) return;
    for (const p of this.bgpPeers.values())
      if (p.spec.localWorkloadSelector) return void (this.dirtyBgp = true);
  }

  private netSetChanged(key: string, s: NetSetInfo | undefined): void {
    const old = this.netsets.get(key);
    if (old?.namespace !== undefined) removeFrom(this.itemsByNamespace, old.namespace, key);
    if (!s) {
      this.netsets.delete(key);
      this.ipsets.deleteItem(key);
      return;
    }
    this.netsets.set(key, s);
    if (s.namespace !== undefined) addTo(this.itemsByNamespace, s.namespace, key);
    this.refreshNetSetLabels(s);
  }

  private refreshNetSetLabels(s: NetSetInfo): void {
    this.ipsets.setItem(s.key, netSetLabels(s, this.lookupProfile), s.namespace === undefined, {
      nets: s.nets,
      ports: [],
    });
  }

  private profileChanged(r: Resource<'Profile'>, present: boolean): void {
    const name = r.metadata.name;
    const old = this.profiles.get(name);
    if (present)
      this.profiles.set(name, { name, labelsToApply: r.spec.labelsToApply ?? {}, resource: r });
    else this.profiles.delete(name);
    this.dirtyRules.add(`profile:${name}`);
    const labelsBefore = JSON.stringify(old?.labelsToApply ?? {});
    if (labelsBefore === JSON.stringify(this.profiles.get(name)?.labelsToApply ?? {})) return;
    // Inherited labels changed: refresh the items that inherit from this profile
    // directly, as their namespace ("kns.<ns>") or as their service account ("ksa.<ns>.<sa>").
    const affected = new Set(this.itemsByProfile.get(name) ?? []);
    if (name.startsWith('kns.'))
      for (const k of this.itemsByNamespace.get(name.slice(4)) ?? []) affected.add(k);
    if (name.startsWith('ksa.'))
      for (const k of this.itemsByServiceAccount.get(name.slice(4)) ?? []) affected.add(k);
    for (const k of affected) {
      const ep = this.endpoints.get(k);
      if (ep) this.refreshEndpointLabels(ep);
      const ns = this.netsets.get(k);
      if (ns) this.refreshNetSetLabels(ns);
    }
  }

  private policyChanged(key: string, r: Resource<'NetworkPolicy'> | undefined): void {
    const oldId = this.policyIdByKey.get(key);
    const id = r ? policyId(r) : undefined;
    if (oldId !== undefined && oldId !== id) this.removePolicy(key, oldId);
    if (!r || id === undefined) return;
    const spec = r.spec as PolicySpec;
    const namespace = r.kind === 'NetworkPolicy' ? (r.metadata.namespace ?? 'default') : undefined;
    const types = policyTypes(spec);
    const meta: PolicyMeta = {
      id,
      tier: spec.tier ?? DEFAULT_TIER,
      ...(spec.order !== undefined ? { order: spec.order } : {}),
      sortName: namespace !== undefined ? `${namespace}/${r.metadata.name}` : r.metadata.name,
      ingress: types.includes('Ingress'),
      egress: types.includes('Egress'),
      doNotTrack: spec.doNotTrack ?? false,
      preDNAT: spec.preDNAT ?? false,
      applyOnForward: spec.applyOnForward ?? false,
    };
    const old = this.policies.get(id);
    let sel;
    let selectorText = '';
    try {
      sel = policySelector(spec, namespace);
      selectorText = JSON.stringify(sel);
    } catch (err) {
      this.log.error('calc: policy selects nothing: bad selector', {
        component: 'calc',
        policy: id,
        error: (err as Error).message,
      });
    }
    this.policies.set(id, { id, meta, namespace, spec, selectorText });
    this.policyIdByKey.set(key, id);
    addTo(this.policiesByTier, meta.tier, id);
    this.dirtyRules.add(`policy:${id}`);
    if (!old || old.selectorText !== selectorText) {
      if (sel) this.policyIndex.setSelector(id, sel);
      else this.policyIndex.deleteSelector(id);
    } else if (JSON.stringify(old.meta) !== JSON.stringify(meta)) {
      // same endpoints, other place in their lists
      for (const ep of this.policyIndex.selected(id)) this.dirtyEndpoints.add(ep);
    }
  }

  private removePolicy(key: string, id: string): void {
    const p = this.policies.get(id);
    this.policyIndex.deleteSelector(id);
    this.policies.delete(id);
    this.policyIdByKey.delete(key);
    if (p) removeFrom(this.policiesByTier, p.meta.tier, id);
    this.dirtyRules.add(`policy:${id}`);
  }

  private tierChanged(r: Resource<'Tier'>, present: boolean): void {
    const name = r.metadata.name;
    if (present)
      this.tiers.set(name, {
        ...(r.spec.order !== undefined ? { order: r.spec.order } : {}),
        defaultAction: r.spec.defaultAction === 'Pass' ? 'pass' : 'deny',
      });
    else this.tiers.delete(name);
    for (const id of this.policiesByTier.get(name) ?? [])
      for (const ep of this.policyIndex.selected(id)) this.dirtyEndpoints.add(ep);
  }

  private nodeChanged(r: Resource<'Node'>, present: boolean): void {
    const name = r.metadata.name;
    const before = JSON.stringify(this.nodes.get(name));
    if (present) this.nodes.set(name, nodeFacts(r));
    else this.nodes.delete(name);
    if (before === JSON.stringify(this.nodes.get(name))) return;
    this.dirtyBgp = true;
    this.dirtyHostAddresses = true;
    this.dirtyTunnels.add(name);
    for (const cidr of this.blocksByNode.get(name) ?? []) this.dirtyBlocks.add(cidr);
    if (name === this.me) {
      // our subnet decides CrossSubnet for every remote destination
      this.dirtyHost = true;
      this.allBlocksDirty();
      for (const n of this.nodes.keys()) this.dirtyTunnels.add(n);
    }
  }

  private poolChanged(key: string, p: IpPoolInfo | undefined): void {
    const old = this.pools.get(key);
    if (old && old.cidr !== p?.cidr) this.poolsOut.set(old.cidr, undefined);
    if (p) {
      this.pools.set(key, p);
      this.poolsOut.set(p.cidr, p);
    } else this.pools.delete(key);
    // encapsulation, natOutgoing and BGP export of every block may follow (pools are few)
    this.allBlocksDirty();
    for (const n of this.nodes.keys()) this.dirtyTunnels.add(n);
  }

  /** Blocks known from IPAMBlocks or only from a confirmed BlockAffinity. */
  private allBlocksDirty(): void {
    for (const cidr of this.blocks.keys()) this.dirtyBlocks.add(cidr);
    for (const cidr of this.affinityOwners.keys()) this.dirtyBlocks.add(cidr);
  }

  private blockChanged(key: string, r: Resource<'IPAMBlock'> | undefined): void {
    const oldCidr = this.blockCidrByKey.get(key);
    if (oldCidr !== undefined) {
      this.blocks.delete(oldCidr);
      this.blockCidrByKey.delete(key);
      this.dirtyBlocks.add(oldCidr);
    }
    if (!r || r.spec.deleted) return;
    const facts = blockFacts(r);
    this.blocks.set(facts.cidr, facts);
    this.blockCidrByKey.set(key, facts.cidr);
    this.dirtyBlocks.add(facts.cidr);
  }

  private affinityChanged(key: string, r: Resource<'BlockAffinity'> | undefined): void {
    const old = this.affinities.get(key);
    if (old) {
      removeFrom(this.affinityOwners, old.cidr, key);
      this.affinities.delete(key);
      this.dirtyBlocks.add(old.cidr);
    }
    if (!r || r.spec.state !== 'confirmed' || r.spec.deleted) return;
    this.affinities.set(key, { cidr: r.spec.cidr, node: r.spec.node });
    addTo(this.affinityOwners, r.spec.cidr, key);
    this.dirtyBlocks.add(r.spec.cidr);
  }

  // ---- flush ----------------------------------------------------------------------------

  private flush(): void {
    for (const key of [...this.dirtyEndpoints].sort()) this.resolveEndpoint(key);
    this.dirtyEndpoints.clear();
    for (const k of this.dirtyRules) if (this.active.has(k)) this.render(k);
    this.dirtyRules.clear();
    for (const k of this.maybeUnused) this.deactivateIfUnused(k);
    this.maybeUnused.clear();

    // Felix's order: sets before the rules that use them, rules before the endpoints
    // that jump to them; removals the other way round.
    const sets = this.ipsets.flush();
    const rules = this.rulesOut.flush();
    const endpoints = this.endpointOut.flush();
    for (const u of sets.updates) this.send(u);
    for (const u of rules.updates) this.send(u);
    for (const u of endpoints.updates) this.send(u);
    for (const k of endpoints.removes) this.send(endpointRemove(k));
    for (const k of rules.removes) this.send(rulesRemove(k));
    for (const u of sets.removes) this.send(u);
    this.flushTopology();
    // services pass straight through (the service dataplane keeps its own view)
    for (const u of this.servicesOut.values()) this.send(u);
    this.servicesOut.clear();
  }

  private send(u: DataplaneUpdate): void {
    this.sink.send(u);
  }

  private tierLookup = (name: string) => this.tiers.get(name);

  /** Recomputes one local endpoint's policy lists (or its removal). */
  private resolveEndpoint(key: string): void {
    const ep = this.endpoints.get(key);
    const state = this.local.get(key);
    if (!ep || ep.node !== this.me) {
      if (!state) return;
      this.setUses(state, new Set(), []);
      this.endpointOut.set(state.outKey, undefined);
      this.routeTable.setOwner(`ep:${key}`, []);
      this.local.delete(key);
      return;
    }
    this.counters.endpointsResolved++;
    const metas = [...this.policyIndex.selectorsOf(key)]
      .map((id) => this.policies.get(id)?.meta)
      .filter((m): m is PolicyMeta => m !== undefined);
    const stage = (s: Parameters<typeof tierList>[2]) => tierList(metas, this.tierLookup, s);
    const tiers = stage('normal');
    const lists: TierInfo[][] = [tiers];
    let update: EndpointUpdate;
    if (ep.kind === 'wep') {
      const w = ep.resource as Resource<'WorkloadEndpoint'>;
      const endpoint: WorkloadEndpoint = {
        id: ep.id,
        ifaceName: w.spec.interfaceName,
        ...(w.spec.mac ? { mac: w.spec.mac } : {}),
        ipv4Nets: w.spec.ipNetworks.filter((n) => !n.includes(':')),
        ipv6Nets: w.spec.ipNetworks.filter((n) => n.includes(':')),
        tiers,
        profileIds: ep.profiles,
      };
      update = { type: 'workload-update', endpoint };
      this.routeTable.setOwner(
        `ep:${key}`,
        w.spec.ipNetworks.map((dst) => ({
          dst,
          kind: 'local-workload' as const,
          ifaceName: w.spec.interfaceName,
          node: this.me,
        })),
      );
    } else {
      const h = ep.resource as Resource<'HostEndpoint'>;
      const endpoint: HostEndpoint = {
        id: ep.id,
        ...(h.spec.interfaceName ? { ifaceName: h.spec.interfaceName } : {}),
        expectedIps: h.spec.expectedIPs ?? [],
        tiers,
        untrackedTiers: stage('untracked'),
        preDnatTiers: stage('preDNAT'),
        forwardTiers: stage('forward'),
        profileIds: ep.profiles,
      };
      lists.push(endpoint.untrackedTiers, endpoint.preDnatTiers, endpoint.forwardTiers);
      update = { type: 'host-endpoint-update', endpoint };
    }
    const uses = new Set<string>();
    for (const list of lists)
      for (const t of list)
        for (const p of [...t.ingressPolicies, ...t.egressPolicies]) uses.add(p);
    const outKey = `${ep.kind}:${ep.id}`;
    const st = state ?? { outKey, uses: new Set<string>(), profiles: [] };
    if (st.outKey !== outKey) this.endpointOut.set(st.outKey, undefined);
    st.outKey = outKey;
    this.local.set(key, st);
    this.setUses(st, uses, ep.profiles);
    this.endpointOut.set(outKey, update);
  }

  /** Moves an endpoint's references to the policies and profiles it uses now. */
  private setUses(st: LocalState, uses: Set<string>, profiles: string[]): void {
    for (const id of uses) if (!st.uses.has(id)) this.acquire(`policy:${id}`);
    for (const id of new Set(profiles))
      if (!st.profiles.includes(id)) this.acquire(`profile:${id}`);
    for (const id of st.uses) if (!uses.has(id)) this.release(`policy:${id}`);
    for (const id of new Set(st.profiles))
      if (!profiles.includes(id)) this.release(`profile:${id}`);
    st.uses = uses;
    st.profiles = [...profiles];
  }

  private acquire(k: RulesKey): void {
    let a = this.active.get(k);
    if (!a) {
      this.active.set(k, (a = { users: 0, sets: [] }));
      this.render(k);
    }
    a.users++;
  }

  private release(k: RulesKey): void {
    const a = this.active.get(k);
    if (!a) return;
    a.users--;
    if (a.users === 0) this.maybeUnused.add(k);
  }

  private deactivateIfUnused(k: RulesKey): void {
    const a = this.active.get(k);
    if (!a || a.users > 0) return;
    for (const id of a.sets) this.ipsets.unref(id);
    this.active.delete(k);
    this.rulesOut.set(k, undefined);
  }

  /** Renders an active policy's or profile's rules, moving its IP set references. */
  private render(k: RulesKey): void {
    const a = this.active.get(k)!;
    this.dirtyRules.delete(k); // rendered from the current resource: not again this flush
    this.counters.rulesRendered++;
    const isPolicy = k.startsWith('policy:');
    const id = k.slice(isPolicy ? 7 : 8);
    const p = isPolicy ? this.policies.get(id) : undefined;
    const prof = isPolicy ? undefined : this.profiles.get(id)?.resource;
    const spec = isPolicy ? p?.spec : prof?.spec;
    const ns = p?.namespace;
    const inbound = renderRules(spec?.ingress as Rule[] | undefined, id, 'inbound', ns);
    const outbound = renderRules(spec?.egress as Rule[] | undefined, id, 'outbound', ns);
    for (const problem of [...inbound.problems, ...outbound.problems])
      this.log.warn(`calc: ${problem}`, { component: 'calc' });
    const sets = [...inbound.sets, ...outbound.sets];
    for (const d of sets) this.ipsets.ref(d);
    for (const old of a.sets) this.ipsets.unref(old);
    a.sets = sets.map((d) => d.id);
    const u: PolicyUpdate = isPolicy
      ? {
          type: 'policy-update',
          id,
          inbound: inbound.rules,
          outbound: outbound.rules,
          ...(p?.spec.doNotTrack ? { untracked: true } : {}),
          ...(p?.spec.preDNAT ? { preDnat: true } : {}),
          ...(p?.spec.applyOnForward ? { applyOnForward: true } : {}),
        }
      : { type: 'profile-update', id, inbound: inbound.rules, outbound: outbound.rules };
    this.rulesOut.set(k, u);
  }

  // ---- topology: routes, pools, host, BGP, config ---------------------------------------

  private routeWorld(): RouteWorld {
    const pools = [...this.pools.values()];
    return {
      me: this.me,
      node: (n) => this.nodes.get(n),
      poolOf: (cidr) => poolContaining(pools, cidr),
      directRoutes: this.directRoutes,
    };
  }

  private flushTopology(): void {
    const w = this.routeWorld();
    for (const cidr of this.dirtyBlocks) this.recomputeBlock(w, cidr);
    this.dirtyBlocks.clear();
    const vxlanInUse = [...this.pools.values()].some((p) => p.vxlan !== 'Never');
    for (const name of this.dirtyTunnels) {
      const n = this.nodes.get(name);
      const r = n ? tunnelRoute(w, n, vxlanInUse) : undefined;
      this.routeTable.setOwner(`tunnel:${name}`, r ? [r] : []);
    }
    this.dirtyTunnels.clear();

    if (this.dirtyConfig) {
      const config = {
        ...(this.felixConfigs.get('default') ?? {}),
        ...(this.felixConfigs.get(`node.${this.me}`) ?? {}),
      };
      this.miscOut.set('config', { type: 'config-update', config });
      this.dirtyConfig = false;
    }
    if (this.dirtyHostAddresses) {
      this.miscOut.set('host-addresses', {
        type: 'host-addresses',
        addresses: hostAddresses(this.nodes.values()),
      });
      this.dirtyHostAddresses = false;
    }
    if (this.dirtyHost) {
      this.miscOut.set('host', {
        type: 'host-update',
        host: hostInfo(this.me, this.nodes.get(this.me)),
      });
      this.dirtyHost = false;
    }
    if (this.dirtyBgp) {
      this.bgpOut.set(
        'bgp',
        computeBgp({
          me: this.me,
          nodes: this.nodes,
          configs: this.bgpConfigs.values(),
          peers: this.bgpPeers.values(),
          filters: this.bgpFilters.values(),
          originate: [
            ...[...this.originated.values()].flat(),
            ...localServiceRoutes(
              this.serviceModels.values(),
              this.sliceModels.values(),
              this.me,
              bgpSettings(this.bgpConfigs.values()).services,
            ),
          ],
          bgpEnabled: this.bgpEnabled,
          routerId: this.routerIdSetting,
          localWorkloads: this.bgpWorkloads.values(),
        }),
      );
      // the static routes BGPPeers' reachableBy asks for, before the routes go out
      this.routeTable.setOwner('bgp-peers', bgpPeerRoutes(this.bgpOut.get('bgp')!));
      this.dirtyBgp = false;
    }
    const misc = this.miscOut.flush();
    for (const u of misc.updates) this.send(u);
    const pools = this.poolsOut.flush();
    for (const pool of pools.updates) this.send({ type: 'pool-update', pool });
    const routes = this.routeTable.flush();
    for (const route of routes.updates) this.send({ type: 'route-update', route });
    for (const dst of routes.removes) this.send({ type: 'route-remove', dst });
    for (const cidr of pools.removes) this.send({ type: 'pool-remove', cidr });

    for (const bgp of this.bgpOut.flush().updates) this.send({ type: 'bgp-update', bgp });
  }

  private readonly bgpOut = new KeyedOutput<ReturnType<typeof computeBgp>>();

  private recomputeBlock(w: RouteWorld, cidr: string): void {
    this.counters.blocksRecomputed++;
    const block = this.blocks.get(cidr);
    const affinityOwner = [...(this.affinityOwners.get(cidr) ?? [])]
      .map((k) => this.affinities.get(k)!.node)
      .sort()[0];
    const facts: BlockFacts | undefined = block
      ? { ...block, owner: block.owner ?? affinityOwner }
      : affinityOwner !== undefined
        ? { cidr, owner: affinityOwner, allocations: [] }
        : undefined;
    for (const n of this.blockNodesOf.get(cidr) ?? []) removeFrom(this.blocksByNode, n, cidr);
    const nodes = facts ? blockNodes(facts) : [];
    for (const n of nodes) addTo(this.blocksByNode, n, cidr);
    if (nodes.length) this.blockNodesOf.set(cidr, nodes);
    else this.blockNodesOf.delete(cidr);
    this.routeTable.setOwner(`block:${cidr}`, facts ? blockRoutes(w, facts) : []);
    const before = JSON.stringify(this.originated.get(cidr) ?? []);
    const now = facts ? blockOriginates(w, facts) : [];
    if (now.length) this.originated.set(cidr, now);
    else this.originated.delete(cidr);
    if (before !== JSON.stringify(now)) this.dirtyBgp = true;
  }
}

function endpointRemove(outKey: string): EndpointUpdate {
  const [kind, ...rest] = outKey.split(':');
  const id = rest.join(':');
  return kind === 'wep' ? { type: 'workload-remove', id } : { type: 'host-endpoint-remove', id };
}

function rulesRemove(k: string): PolicyUpdate {
  return k.startsWith('policy:')
    ? { type: 'policy-remove', id: k.slice(7) }
    : { type: 'profile-remove', id: k.slice(8) };
}

/** Whether a Service's addresses are advertised per node (externalTrafficPolicy Local). */
const isLocal = (s: Service | undefined) => s?.externalTrafficPolicy === 'Local';

/** The key of the Service an EndpointSlice belongs to, as resourceKey writes it. */
const serviceKey = (s: EndpointSlice) => `KubernetesService/${s.namespace}/${s.serviceName}`;
