// The ACL side of the node agent's dataplane: consumes the calculation graph's updates
// (IP sets, policies, profiles, workload and host endpoints, pools, config), keeps the
// desired state, and on apply() writes what changed: IP set updates first, then each
// iptables table in one `iptables-restore --noflush`, then IP set removals. Nothing is
// written before in-sync. The first apply reads what the kernel has and converges
// (chains that already match stay untouched, so a restart does not disturb traffic);
// resync() reads everything back and repairs drift. Host endpoint policy runs in three
// stages (untracked in raw, pre-DNAT in mangle, normal in filter); a policy's chains live
// in the table of the stage that refers to them.
import winston, { type Logger } from 'winston';
import type { DataplaneManager } from '../../agent';
import type { DataplaneUpdate, HostEndpoint, WorkloadEndpoint } from '../../types';
import { AclDesiredState } from './desired-state';
import type { Chain } from './chain';
import { RefCounts, rulesReferenced, type RulesRef } from './chain-refs';
import {
  endpointChain,
  failClosedChain,
  policyChainName,
  profileChainName,
  rulesChain,
  tableOf,
  type Direction,
  type EndpointChainSpec,
} from './endpoint-chains';
import {
  detectBackend,
  ProcessIptablesRunner,
  type Backend,
  type IptablesRunner,
} from './iptables-runner';
import { IptablesTable, type Isolation } from './iptables-table';
import { Ipsets, ProcessIpsetRunner, type IpsetRunner } from './ipsets';
import {
  ALL_HOSTS_SET,
  ALL_POOLS_SET,
  chainName,
  internalIpsetName,
  ipsetName,
  isRulesChain,
  MASQ_POOLS_SET,
  STATIC,
  type Family,
} from './names';
import {
  filterChains,
  HOOKS,
  mangleChains,
  natChains,
  rawChains,
  type DispatchEntry,
  type TunnelSources,
} from './static-chains';

/** The tables tortie writes, per family. */
export type TableName = 'filter' | 'nat' | 'raw' | 'mangle';
const TABLES: TableName[] = ['filter', 'nat', 'raw', 'mangle'];
/** Tables that hold endpoint and policy chains (one per host endpoint policy stage). */
type AclTable = 'filter' | 'raw' | 'mangle';
const ACL_TABLES: AclTable[] = ['filter', 'raw', 'mangle'];

/** A chain of one table, as a key (chain names hold no spaces). */
const tableKey = (table: string, chain: string) => `${table} ${chain}`;

export interface AclManagerOptions {
  /** The iptables runner of one family for the chosen backend. */
  iptables: (backend: Backend, family: Family) => IptablesRunner;
  ipsets: IpsetRunner;
  /** Felix's "Auto" backend detection (used when neither option nor config decides). */
  detectBackend?: () => Promise<Backend>;
  /** Overrides config-update's iptablesBackend. */
  backend?: Backend;
  /** Overrides config-update's ipv6Support. */
  ipv6?: boolean;
  logger?: Logger;
  /** Told once each time a policy or profile starts failing closed (metrics). */
  onPolicyFailure?: (f: PolicyFailure) => void;
}

/**
 * A policy or profile chain that could not be programmed: the kernel refused it, or one
 * of its rules cannot be rendered. It fails closed (drops what reaches it) until fixed.
 */
export interface PolicyFailure {
  kind: 'policy' | 'profile';
  /** Policy id ("<tier>/<namespace>/<name>", "<tier>/<name>") or profile name. */
  id: string;
  direction: Direction;
  family: Family;
  table: TableName;
  chain: string;
  reason: string;
  /** ISO time it started failing. */
  since: string;
}

const ISOLATION: Isolation = { isolable: isRulesChain, failClosed: failClosedChain };

/** A policy/profile chain some endpoint chain jumps to: where it lives and whose it is. */
interface ChainRef extends RulesRef {
  table: AclTable;
  name: string;
}

const INTERNAL = '\u0000';

export interface AclStats {
  backend?: Backend;
  families: Family[];
  rules: Record<string, number>;
  chainsWritten: number;
  chainsDeleted: number;
  ipsetLines: number;
  /** Why the last config-update was ignored, if it was. */
  lastConfigError?: string;
  /** Policies and profiles failing closed now. */
  rejected: PolicyFailure[];
}

export class AclManager implements DataplaneManager {
  readonly name = 'acl';
  private readonly log: Logger;
  private readonly desired: AclDesiredState;

  // what changed since the last apply
  private readonly dirtyRules = new Set<string>(); // tableKeys of policy/profile chains
  private readonly dirtyWorkloads = new Set<string>();
  private dirtyHeps = true;
  private dirtyStatic = true;
  private dirtyPools = true;
  private dirtyHostSet = true;
  private everything = true;

  /** Endpoint chains rendered per workload id / host endpoint id, with the chains they jump to. */
  private readonly endpointChains = new Map<
    string,
    { chains: Array<{ table: AclTable; chain: Chain }>; specs: EndpointChainSpec[] }
  >();
  /** Policy/profile chains endpoint chains jump to (tableKey), by how many endpoint chains. */
  private readonly refs = new RefCounts<ChainRef>();
  /** How many desired chains hold each IP set (sets are destroyed only when 0). */
  private readonly setRefs = new Map<string, number>();
  /** Which endpoint an endpoint chain (tableKey) belongs to (the last one to claim it). */
  private readonly chainOwner = new Map<string, string>();
  /** Names of the static and dispatch chains last rendered, per family and table. */
  private readonly staticChains = new Map<string, Set<string>>();
  /** Policy/profile chains with a rule that cannot be rendered (family + tableKey -> why). */
  private readonly renderProblems = new Map<string, { reason: string; since: Date }>();
  /** Failures reported so far (family + tableKey -> failure), to log each once. */
  private reported = new Map<string, PolicyFailure>();

  private backend?: Backend;
  private readonly tables = new Map<Family, Record<TableName, IptablesTable>>();
  private readonly ipsets: Ipsets;
  private readonly stats: AclStats = {
    families: [],
    rules: {},
    chainsWritten: 0,
    chainsDeleted: 0,
    ipsetLines: 0,
    rejected: [],
  };

  constructor(private readonly opts: AclManagerOptions) {
    this.log = opts.logger ?? winston.createLogger({ silent: true });
    this.ipsets = new Ipsets(opts.ipsets, (id, f) =>
      id.startsWith(INTERNAL) ? internalIpsetName(id.slice(1), f) : ipsetName(id, f),
    );
    this.desired = new AclDesiredState(this.ipsets, this.log, 'acl');
  }

  send(u: DataplaneUpdate): void {
    this.desired.send(u);
  }

  /** What the calculation graph changed since the last apply, as this backend's dirty marks. */
  private takeChanges(): void {
    const c = this.desired.takeChanges();
    for (const id of c.policies) this.policyChanged(id);
    for (const id of c.profiles) this.profileChanged(id);
    for (const id of c.workloads) this.dirtyWorkloads.add(id);
    if (c.heps) this.dirtyHeps = true;
    // a pool may turn a tunnel on or off
    if (c.pools) this.dirtyPools = this.dirtyStatic = this.dirtyHostSet = true;
    if (c.hostAddresses) this.dirtyHostSet = true;
    if (c.config) this.dirtyStatic = this.dirtyHostSet = true;
    if (c.marks) this.everything = true;
  }

  /** A policy's chains may be in any stage's table; only referenced ones are rendered. */
  private policyChanged(id: string): void {
    for (const t of ACL_TABLES)
      this.dirtyRules
        .add(tableKey(t, chainName.policyIn(id)))
        .add(tableKey(t, chainName.policyOut(id)));
  }

  /** Profiles only apply in the normal stage. */
  private profileChanged(id: string): void {
    this.dirtyRules
      .add(tableKey('filter', chainName.profileIn(id)))
      .add(tableKey('filter', chainName.profileOut(id)));
  }

  private families(): Family[] {
    const v6 =
      this.opts.ipv6 ??
      this.desired.config.ipv6Support ??
      ([...this.desired.pools.keys()].some((c) => c.includes(':')) ||
        [...this.desired.workloads.values()].some((w) => w.ipv6Nets.length > 0));
    return v6 ? [4, 6] : [4];
  }

  private async chooseBackend(): Promise<Backend> {
    if (this.opts.backend) return this.opts.backend;
    if (this.desired.config.iptablesBackend === 'Legacy') return 'legacy';
    if (this.desired.config.iptablesBackend === 'NFT') return 'nft';
    return (this.opts.detectBackend ?? (() => detectBackend()))();
  }

  private async ensureTables(): Promise<IptablesTable[]> {
    if (!this.backend) {
      this.backend = await this.chooseBackend();
      this.log.info('iptables backend chosen', { component: 'acl', backend: this.backend });
    }
    for (const f of this.families()) {
      if (this.tables.has(f)) continue;
      const runner = this.opts.iptables(this.backend, f);
      // raw and mangle are read even while tortie wants nothing there, so chains left
      // by an earlier run (untracked or pre-DNAT policy since removed) are cleaned up
      const ts = Object.fromEntries(
        TABLES.map((t) => [t, new IptablesTable(t, runner, HOOKS[t], ISOLATION)]),
      ) as Record<TableName, IptablesTable>;
      this.tables.set(f, ts);
      this.everything = true;
    }
    this.ipsets.setFamilies([...this.tables.keys()]);
    return [...this.tables.values()].flatMap((ts) => TABLES.map((t) => ts[t]));
  }

  private put(t: IptablesTable, c: Chain): void {
    const old = t.chain(c.name);
    for (const s of old?.ipsets ?? []) this.setRefs.set(s, (this.setRefs.get(s) ?? 1) - 1);
    for (const s of c.ipsets ?? []) this.setRefs.set(s, (this.setRefs.get(s) ?? 0) + 1);
    t.setChain(c);
  }

  private drop(t: IptablesTable, name: string): void {
    for (const s of t.chain(name)?.ipsets ?? [])
      this.setRefs.set(s, (this.setRefs.get(s) ?? 1) - 1);
    t.deleteChain(name);
  }

  private table(f: Family, t: TableName): IptablesTable {
    return this.tables.get(f)![t];
  }

  /** An endpoint chain comes (1) or goes (-1): the chains it jumps to that come or go are dirty. */
  private addRefs(spec: EndpointChainSpec, delta: 1 | -1): void {
    const table = tableOf(spec.kind);
    for (const r of rulesReferenced(spec, spec.kind === 'normal')) {
      const name = (r.kind === 'policy' ? policyChainName : profileChainName)(r.id, r.direction);
      const key = tableKey(table, name);
      const changed =
        delta === 1
          ? this.refs.use(key, () => ({ ...r, table, name }))
          : this.refs.release(key) !== undefined;
      if (changed) this.dirtyRules.add(key);
    }
  }

  /** Endpoint chain specs of one workload or host endpoint. */
  private workloadSpecs(w: WorkloadEndpoint): EndpointChainSpec[] {
    const base = { tiers: w.tiers, profileIds: w.profileIds, kind: 'normal' as const };
    return [
      { ...base, name: chainName.toWorkload(w.ifaceName), direction: 'ingress' },
      { ...base, name: chainName.fromWorkload(w.ifaceName), direction: 'egress' },
    ];
  }

  private hepSpecs(h: HostEndpoint): EndpointChainSpec[] {
    const iface = hepIface(h);
    const normal = { tiers: h.tiers, profileIds: h.profileIds, kind: 'normal' as const };
    const fwd = { tiers: h.forwardTiers, profileIds: [], kind: 'forward' as const };
    const untracked = { tiers: h.untrackedTiers, profileIds: [], kind: 'untracked' as const };
    const preDnat = { tiers: h.preDnatTiers, profileIds: [], kind: 'preDNAT' as const };
    return [
      ...(hasUntracked(h)
        ? [
            {
              ...untracked,
              name: chainName.fromHost(iface),
              direction: 'ingress' as const,
              failsafeChain: STATIC.failsafeIn,
            },
            {
              ...untracked,
              name: chainName.toHost(iface),
              direction: 'egress' as const,
              failsafeChain: STATIC.failsafeOut,
            },
          ]
        : []),
      // pre-DNAT policy is ingress only (Calico rejects egress rules in it)
      ...(hasPreDnat(h)
        ? [
            {
              ...preDnat,
              name: chainName.fromHost(iface),
              direction: 'ingress' as const,
              failsafeChain: STATIC.failsafeIn,
            },
          ]
        : []),
      {
        ...normal,
        name: chainName.fromHost(iface),
        direction: 'ingress',
        failsafeChain: STATIC.failsafeIn,
      },
      {
        ...normal,
        name: chainName.toHost(iface),
        direction: 'egress',
        failsafeChain: STATIC.failsafeOut,
      },
      { ...fwd, name: chainName.fromHostForward(iface), direction: 'ingress' },
      { ...fwd, name: chainName.toHostForward(iface), direction: 'egress' },
    ];
  }

  private setEndpoint(key: string, specs: EndpointChainSpec[] | undefined): void {
    const old = this.endpointChains.get(key);
    const chains = (specs ?? []).map((s) => ({
      table: tableOf(s.kind),
      chain: endpointChain(s, this.desired.marks),
    }));
    for (const s of specs ?? []) this.addRefs(s, 1);
    if (old) for (const s of old.specs) this.addRefs(s, -1);
    const owned = (c: { table: AclTable; chain: Chain }) => tableKey(c.table, c.chain.name);
    const keep = new Set(chains.map(owned));
    // an interface handed from an old endpoint to a new one (pod replaced) belongs to the
    // newest: the old endpoint's removal must not take the new one's chains away
    const gone = (old?.chains ?? []).filter(
      (c) => !keep.has(owned(c)) && this.chainOwner.get(owned(c)) === key,
    );
    for (const c of gone) this.chainOwner.delete(owned(c));
    for (const c of chains) this.chainOwner.set(owned(c), key);
    for (const f of this.tables.keys()) {
      for (const c of gone) this.drop(this.table(f, c.table), c.chain.name);
      for (const c of chains) this.put(this.table(f, c.table), c.chain);
    }
    if (specs) this.endpointChains.set(key, { chains, specs });
    else this.endpointChains.delete(key);
  }

  private renderRulesChain(key: string, f: Family): Chain | undefined {
    const r = this.refs.get(key);
    if (!r) return undefined; // only chains some endpoint jumps to are programmed
    const src = (r.kind === 'policy' ? this.desired.policies : this.desired.profiles).get(r.id);
    if (!src) {
      // an endpoint refers to a policy we do not have (yet): an empty chain decides nothing
      this.log.warn('endpoint refers to an unknown policy or profile', {
        component: 'acl',
        kind: r.kind,
        id: r.id,
      });
    }
    const rules = src ? (r.direction === 'ingress' ? src.inbound : src.outbound) : [];
    const problems: string[] = [];
    const chain = rulesChain(r.name, rules, f, this.desired.marks, (why) => problems.push(why));
    const at = `${f} ${key}`;
    if (!problems.length) {
      this.renderProblems.delete(at);
      return chain;
    }
    // programming the policy without a rule could allow more than it says: fail closed
    const since = this.renderProblems.get(at)?.since ?? new Date();
    this.renderProblems.set(at, { reason: problems.join('; '), since });
    return failClosedChain(r.name);
  }

  private dispatch(): Record<
    'toWl' | 'fromWl' | 'toH' | 'fromH' | 'toHF' | 'fromHF' | 'rawFrom' | 'rawTo' | 'mangleFrom',
    DispatchEntry[]
  > {
    const byIface = new Map<string, WorkloadEndpoint>();
    for (const w of this.desired.workloads.values()) byIface.set(w.ifaceName, w);
    const ifaces = [...byIface.keys()];
    const entry = (h: HostEndpoint) => ({
      iface: h.ifaceName && h.ifaceName !== '*' ? h.ifaceName : undefined,
      key: hepIface(h),
    });
    const all = [...this.desired.heps.values()];
    const heps = all.map(entry);
    const untracked = all.filter(hasUntracked).map(entry);
    const preDnat = all.filter(hasPreDnat).map(entry);
    for (const h of all)
      if (h.untrackedTiers.length && !hasUntracked(h))
        this.log.warn('doNotTrack policy is not supported on an all-interfaces host endpoint', {
          component: 'acl',
          hostEndpoint: h.id,
        });
    return {
      rawFrom: untracked.map((h) => ({ iface: h.iface, chain: chainName.fromHost(h.key) })),
      rawTo: untracked.map((h) => ({ iface: h.iface, chain: chainName.toHost(h.key) })),
      mangleFrom: preDnat.map((h) => ({ iface: h.iface, chain: chainName.fromHost(h.key) })),
      toWl: ifaces.map((i) => ({ iface: i, chain: chainName.toWorkload(i) })),
      fromWl: ifaces.map((i) => ({ iface: i, chain: chainName.fromWorkload(i) })),
      toH: heps.map((h) => ({ iface: h.iface, chain: chainName.toHost(h.key) })),
      fromH: heps.map((h) => ({ iface: h.iface, chain: chainName.fromHost(h.key) })),
      toHF: heps.map((h) => ({ iface: h.iface, chain: chainName.toHostForward(h.key) })),
      fromHF: heps.map((h) => ({ iface: h.iface, chain: chainName.fromHostForward(h.key) })),
    };
  }

  /** natOutgoing's sets: every pool, and the pools that masquerade. */
  private renderPoolSets(): void {
    if (!this.dirtyPools && !this.everything) return;
    const all = [...this.desired.pools.values()];
    this.ipsets.replace(
      `${INTERNAL}${ALL_POOLS_SET}`,
      'hash:net',
      all.map((p) => p.cidr),
    );
    this.ipsets.replace(
      `${INTERNAL}${MASQ_POOLS_SET}`,
      'hash:net',
      all.filter((p) => p.natOutgoing).map((p) => p.cidr),
    );
  }

  /** Who may send us IP-in-IP/VXLAN: every node, and externalNodesCIDRList (while a tunnel is in use). */
  private renderHostSet(): void {
    if (!this.dirtyHostSet && !this.everything) return;
    const id = `${INTERNAL}${ALL_HOSTS_SET}`;
    if (this.tunnelSources())
      this.ipsets.replace(id, 'hash:net', [
        ...this.desired.hostAddresses,
        ...this.desired.config.externalNodesCIDRList,
      ]);
    else this.ipsets.remove(id);
    this.dirtyHostSet = false;
  }

  /** The IPv4 tunnels some pool uses, and so the INPUT rules that guard them. */
  private tunnelSources(): TunnelSources | undefined {
    const v4 = [...this.desired.pools.values()].filter((p) => !p.cidr.includes(':'));
    const ipip = v4.some((p) => p.ipip !== 'Never');
    const vxlan = v4.some((p) => p.vxlan !== 'Never');
    if (!ipip && !vxlan) return undefined;
    return {
      ipip,
      vxlanPort: vxlan ? this.desired.config.vxlanPort : undefined,
      allHostsSet: internalIpsetName(ALL_HOSTS_SET, 4),
    };
  }

  /** Brings the desired chains of every table up to date with what changed. */
  private render(): void {
    if (this.everything) {
      for (const id of this.desired.workloads.keys()) this.dirtyWorkloads.add(id);
      for (const k of this.endpointChains.keys())
        if (!k.startsWith('hep:')) this.dirtyWorkloads.add(k);
      for (const k of this.refs.keys()) this.dirtyRules.add(k);
      this.dirtyHeps = this.dirtyStatic = this.dirtyPools = true;
    }
    for (const id of this.dirtyWorkloads) {
      const w = this.desired.workloads.get(id);
      this.setEndpoint(id, w && this.workloadSpecs(w));
    }
    if (this.dirtyHeps) {
      for (const k of [...this.endpointChains.keys()])
        if (k.startsWith('hep:') && !this.desired.heps.has(k.slice(4)))
          this.setEndpoint(k, undefined);
      for (const h of this.desired.heps.values()) this.setEndpoint(`hep:${h.id}`, this.hepSpecs(h));
    }
    const families = [...this.tables.keys()];
    for (const key of this.dirtyRules) {
      const [table, name] = key.split(' ') as [AclTable, string];
      for (const f of families) {
        const c = this.renderRulesChain(key, f);
        if (c) this.put(this.table(f, table), c);
        else {
          this.drop(this.table(f, table), name);
          this.renderProblems.delete(`${f} ${key}`);
        }
      }
    }
    if (this.dirtyWorkloads.size || this.dirtyHeps || this.dirtyStatic) {
      const d = this.dispatch();
      const stage = {
        marks: this.desired.marks,
        failsafeIn: this.desired.config.failsafeInboundHostPorts,
        failsafeOut: this.desired.config.failsafeOutboundHostPorts,
      };
      const untracked = d.rawFrom.length > 0;
      for (const f of families) {
        const vxlanPort = f === 4 ? this.tunnelSources()?.vxlanPort : undefined;
        this.setStatic(
          f,
          'raw',
          rawChains({ ...stage, fromHost: d.rawFrom, toHost: d.rawTo, vxlanPort }),
        );
        this.setStatic(
          f,
          'mangle',
          mangleChains({ ...stage, fromHost: d.mangleFrom, toHost: [], untracked }),
        );
        const chains = filterChains({
          family: f,
          marks: this.desired.marks,
          toWorkload: d.toWl,
          fromWorkload: d.fromWl,
          toHost: d.toH,
          fromHost: d.fromH,
          toHostForward: d.toHF,
          fromHostForward: d.fromHF,
          defaultEndpointToHostAction: this.desired.config.defaultEndpointToHostAction,
          failsafeIn: this.desired.config.failsafeInboundHostPorts,
          failsafeOut: this.desired.config.failsafeOutboundHostPorts,
          untracked,
          preDnat: d.mangleFrom.length > 0,
          tunnels: f === 4 ? this.tunnelSources() : undefined,
          dropWorkloadEncap: {
            ipip: !this.desired.config.allowIPIPPacketsFromWorkloads,
            ...(this.desired.config.allowVXLANPacketsFromWorkloads
              ? {}
              : { vxlanPort: this.desired.config.vxlanPort }),
          },
        });
        this.setStatic(f, 'filter', chains);
      }
    }
    if (this.dirtyPools) {
      const all = [...this.desired.pools.values()];
      for (const f of families) {
        const nat = this.table(f, 'nat');
        const masq = all.some((p) => p.natOutgoing && p.cidr.includes(':') === (f === 6));
        const chains = natChains(f, masq);
        if (!masq && nat.has(STATIC.natOutgoing)) this.drop(nat, STATIC.natOutgoing);
        for (const c of chains) this.put(nat, c);
      }
    }
    this.dirtyRules.clear();
    this.dirtyWorkloads.clear();
    this.dirtyHeps = this.dirtyStatic = this.dirtyPools = this.everything = false;
  }

  /** The static and dispatch chains of one table: those no longer rendered go. */
  private setStatic(f: Family, table: AclTable, chains: Chain[]): void {
    const t = this.table(f, table);
    const key = tableKey(String(f), table);
    const names = new Set(chains.map((c) => c.name));
    for (const n of this.staticChains.get(key) ?? []) if (!names.has(n)) this.drop(t, n);
    this.staticChains.set(key, names);
    for (const c of chains) this.put(t, c);
  }

  /** IP sets rules refer to that nobody sent: created empty (logged), so the restore can work. */
  private ensureReferencedSets(): boolean {
    let any = false;
    for (const [name, n] of this.setRefs) {
      if (n <= 0 || this.ipsets.exists(name)) continue;
      this.log.error('a rule refers to an IP set the calculation graph never sent; created empty', {
        component: 'acl',
        ipset: name,
      });
      this.ipsets.placeholder(name);
      any = true;
    }
    return any;
  }

  async apply(): Promise<void> {
    if (!this.desired.inSync) return; // nothing before the datastore is in sync
    this.takeChanges();
    const tables = await this.ensureTables();
    this.renderPoolSets();
    this.renderHostSet();
    // read-backs (first apply, after a failure or a resync) and IP set updates run while
    // the chains are rendered; iptables is written once the sets exist
    const io = Promise.all([
      Promise.all(tables.map((t) => t.ensureLoaded())),
      // listed before written: a listing taken while a set is filled under its temporary
      // name would count that name as a leftover to destroy
      this.ipsets.ensureLoaded().then(() => this.ipsets.applyUpdates()),
    ]);
    this.render();
    this.stats.ipsetLines += (await io)[1];
    if (this.ensureReferencedSets()) this.stats.ipsetLines += await this.ipsets.applyUpdates();
    for (const t of tables) {
      // the input is produced while iptables-restore already parses it
      const plan = await t.write(t.prepare());
      this.stats.chainsWritten += plan.written.length;
      this.stats.chainsDeleted += plan.deleted.length;
      if (plan.chunks)
        this.log.debug('iptables table written', {
          component: 'acl',
          table: t.table,
          written: plan.written.length,
          deleted: plan.deleted.length,
        });
    }
    this.reportFailures();
    await this.ipsets.applyRemovals((name) => (this.setRefs.get(name) ?? 0) > 0);
  }

  /** Policies failing closed now: chains the kernel refused or that cannot be rendered. */
  private failures(): Map<string, PolicyFailure> {
    const out = new Map<string, PolicyFailure>();
    const add = (f: Family, table: AclTable, chain: string, reason: string, since: Date) => {
      const key = tableKey(table, chain);
      const r = this.refs.get(key);
      if (!r) return; // no longer wanted
      out.set(`${f} ${key}`, {
        kind: r.kind,
        id: r.id,
        direction: r.direction,
        family: f,
        table,
        chain,
        reason,
        since: since.toISOString(),
      });
    };
    for (const [at, p] of this.renderProblems) {
      const [f, table, chain] = at.split(' ');
      add(Number(f) as Family, table as AclTable, chain, p.reason, p.since);
    }
    for (const [f, ts] of this.tables)
      for (const t of ACL_TABLES)
        for (const r of ts[t].rejections())
          add(f, t, r.chain, `the kernel refused it: ${r.error}`, r.since);
    return out;
  }

  /** Logs each failure once when it starts and when it ends. */
  private reportFailures(): void {
    const now = this.failures();
    for (const [k, f] of now) {
      if (this.reported.has(k)) continue;
      this.log.error(`${f.kind} cannot be programmed; what it decides is denied (fail closed)`, {
        component: 'acl',
        [f.kind]: f.id,
        direction: f.direction,
        family: f.family,
        table: f.table,
        chain: f.chain,
        reason: f.reason,
      });
      this.opts.onPolicyFailure?.(f);
    }
    for (const [k, f] of this.reported)
      if (!now.has(k))
        this.log.info(`${f.kind} programmed again`, {
          component: 'acl',
          [f.kind]: f.id,
          direction: f.direction,
          family: f.family,
        });
    this.reported = now;
  }

  /** Reads back every table (and rewrites the IP sets whole), repairing drift. */
  async resync(): Promise<void> {
    if (!this.desired.inSync) return;
    const tables = await this.ensureTables();
    this.ipsets.markAllDirty();
    await Promise.all(tables.map((t) => t.load())); // one iptables-save serves them all
    await this.apply();
  }

  /** Numbers for metrics and the benchmark. */
  status(): AclStats {
    const rules: Record<string, number> = {};
    for (const [f, ts] of this.tables)
      for (const t of TABLES) rules[`${t}${f === 6 ? '6' : ''}`] = ts[t].ruleCount();
    return {
      ...this.stats,
      lastConfigError: this.desired.lastConfigError,
      backend: this.backend,
      families: [...this.tables.keys()],
      rules,
      rejected: [...this.reported.values()],
    };
  }

  /** The desired chains of one table (for tests, the benchmark's reference and tortiectl). */
  desiredChains(family: Family, table: TableName): Chain[] {
    const t = this.tables.get(family)?.[table];
    return t ? [...t.chains()] : [];
  }
}

const hepIface = (h: HostEndpoint) =>
  h.ifaceName && h.ifaceName !== '*' ? h.ifaceName : 'all-interfaces';
const named = (h: HostEndpoint) => !!h.ifaceName && h.ifaceName !== '*';
/** Untracked policy: named interfaces only (Felix ignores it on "*" host endpoints). */
const hasUntracked = (h: HostEndpoint) => h.untrackedTiers.length > 0 && named(h);
const hasPreDnat = (h: HostEndpoint) => h.preDnatTiers.length > 0;

/** The manager wired to the real tools, optionally inside a network namespace. */
export function linuxAclManager(
  o: {
    netns?: string;
    prefix?: string[];
    backend?: Backend;
    ipv6?: boolean;
    logger?: Logger;
    onPolicyFailure?: (f: PolicyFailure) => void;
  } = {},
): AclManager {
  const where = { netns: o.netns, prefix: o.prefix };
  return new AclManager({
    iptables: (backend, family) => new ProcessIptablesRunner({ backend, family, ...where }),
    ipsets: new ProcessIpsetRunner(where),
    detectBackend: () => detectBackend(where),
    backend: o.backend,
    ipv6: o.ipv6,
    logger: o.logger,
    onPolicyFailure: o.onPolicyFailure,
  });
}
