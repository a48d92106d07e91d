// The ACL dataplane on nftables: the same DataplaneUpdates as AclManager (iptables), kept
// in one `inet tortie` table. Each apply is one `nft -f` transaction of what changed: IP
// set members, the chains of changed policies, the verdict-map elements of changed
// endpoints. A pod add writes its own map elements and set members (and an endpoint chain
// only when its combination of policies is new). The first apply and resync() rewrite the
// table whole, atomically (established flows keep going through conntrack).
//
// Host endpoints as the iptables dataplane (../acl) and Felix: normal policy and profiles
// (input/output), applyOnForward (forward), pre-DNAT (prerouting at dstnat-10), untracked
// (raw, notrack), failsafe ports; per-interface dispatch through verdict maps, the "*"
// host endpoint tried last.
import winston, { type Logger } from 'winston';
import type { DataplaneManager } from '../../agent';
import type { DataplaneUpdate, HostEndpoint, IpSetType } from '../../types';
import { AclDesiredState, type IpSetSink } from '../acl/desired-state';
import type { AclStats, PolicyFailure } from '../acl/acl-manager';
import { RefCounts, rulesReferenced, type RulesRef } from '../acl/chain-refs';
import type { Direction } from '../acl/endpoint-chains';
import { memberFamily, normalizeMember } from '../acl/ipsets';
import type { Family } from '../acl/names';
import {
  endpointChainName,
  nftEndpointChain,
  nftFailClosed,
  nftRulesChain,
  nftStaticChains,
  policyChain,
  profileChain,
  type EndpointSig,
  type HepStatic,
  type NftChain,
} from './chains';
import { elementOps } from './elements';
import {
  BASE,
  HEP_IFACES,
  HEP_MAPS,
  internalSetName,
  MAPS,
  nftSetName,
  TABLE,
  TABLE_REF,
} from './names';
import { NftSession, type NftRunner } from './runner';
import { isEmpty, nftScript, type MapChange, type NftChanges } from './script';

/** A verdict map's desired elements: looked up per interface, listed only for a full write. */
interface MapView {
  get(iface: string): string | undefined;
  entries(): Iterable<[string, string]>;
}

interface SetState {
  decl: string;
  interval: boolean;
  members: Set<string>;
}

const INTERNAL = '\u0000';

/**
 * nft's declaration of a set in one family. Address sets of host addresses only (pods:
 * /32, /128) are plain hash sets, where a member is added and deleted on its own; sets
 * with networks need `flags interval` (which merges overlaps, so a delete rewrites them).
 */
function setDecl(
  type: IpSetType,
  f: Family,
  interval: boolean,
): { decl: string; interval: boolean } {
  const addr = f === 4 ? 'ipv4_addr' : 'ipv6_addr';
  if (type === 'hash:ip,port')
    return { decl: `type ${addr} . inet_proto . inet_service;`, interval: false };
  if (!interval) return { decl: `type ${addr};`, interval: false };
  return { decl: `type ${addr}; flags interval; auto-merge;`, interval: true };
}

/** A host address (no prefix, /32, /128) as a plain element; undefined for a network. */
function hostAddress(m: string): string | undefined {
  const [a, len] = m.split('/');
  if (len === undefined || len === (a.includes(':') ? '128' : '32')) return a;
  return undefined;
}

/** "10.0.0.1,tcp:80" -> "10.0.0.1 . tcp . 80"; nets as they are, host addresses bare. */
function element(m: string, type: IpSetType): string {
  if (type !== 'hash:ip,port') return hostAddress(m) ?? m;
  const [ip, pp] = m.split(',');
  const [proto, port] = pp.split(':');
  return `${ip} . ${proto} . ${port}`;
}

export interface NftAclStats extends Omit<AclStats, 'backend'> {
  backend: 'nftables';
  /** Host endpoints this dataplane does not enforce (another one has their interface). */
  unsupported: string[];
  transactions: number;
  /** of which committed over netlink (element-only: pod adds and removals) */
  netlinkTransactions: number;
}

const named = (h: HostEndpoint) => !!h.ifaceName && h.ifaceName !== '*';
/** Untracked policy: named interfaces only (Felix ignores it on "*" host endpoints). */
const hasUntracked = (h: HostEndpoint) => h.untrackedTiers.length > 0 && named(h);
const hasPreDnat = (h: HostEndpoint) => h.preDnatTiers.length > 0;

/** One host endpoint's endpoint chains (names), by stage and direction. */
interface HepChains {
  iface?: string;
  from: string;
  to: string;
  fromFwd: string;
  toFwd: string;
  rawFrom?: string;
  rawTo?: string;
  preDnat?: string;
}

export interface NftAclManagerOptions {
  runner: NftRunner;
  logger?: Logger;
  onPolicyFailure?: (f: PolicyFailure) => void;
}

export class NftAclManager implements DataplaneManager {
  readonly name = 'acl';
  private readonly log: Logger;
  private readonly desired: AclDesiredState;
  /** per host endpoint id: its endpoint chains (the ones in use) */
  private readonly hepChains = new Map<string, HepChains>();
  /** host endpoints not programmed: another one has the same interface */
  private unenforced: string[] = [];
  private hepStatic?: HepStatic;
  /** host endpoint interfaces in the maps, before and after the last render */
  private hepIfaces = new Set<string>();
  private dirtyHeps = true;

  /** calculation-graph set id -> type; sets by nft name (desired) */
  private readonly setTypes = new Map<string, IpSetType>();
  private readonly sets = new Map<string, SetState>();
  /** sets the calculation graph removed (gone once no chain refers to them) */
  private readonly unwantedSets = new Set<string>();
  private readonly dirtySets = new Set<string>();
  /** what the kernel holds: set name -> members; undefined: unknown (full write next) */
  private applied?: {
    sets: Map<string, { decl: string; members: Set<string> }>;
    chains: Map<string, NftChain>;
    maps: Record<string, Map<string, string>>;
  };

  /** policy/profile chains some endpoint chain jumps to: name -> whose, by how many */
  private readonly refs = new RefCounts<RulesRef>();
  /** rendered policy/profile chains (cleared when the policy changes) */
  private readonly rulesChains = new Map<string, NftChain>();
  private readonly renderProblems = new Map<string, { reason: string; since: Date }>();
  /** chains the kernel refused: name -> why (failed closed until they change) */
  private readonly refused = new Map<string, { reason: string; since: Date }>();
  private reported = new Map<string, PolicyFailure>();
  /** shared endpoint chains: name -> chain, by how many endpoint sides use it */
  private readonly endpointChains = new RefCounts<{ chain: NftChain; sig: EndpointSig }>();
  /** per workload id: its interface and its [ingress, egress] endpoint chain names */
  private readonly wlChains = new Map<string, { iface: string; to: string; from: string }>();
  /** interface -> the workload that has it (the newest claim) */
  private readonly ifaceOwner = new Map<string, string>();
  /** interface -> every workload that claims it, oldest claim first */
  private readonly ifaceClaims = new Map<string, Set<string>>();
  private readonly dirtyWorkloads = new Set<string>();
  private dirtyStatic = true;
  private staticChains: NftChain[] = [];

  private readonly stats: NftAclStats = {
    backend: 'nftables',
    families: [4, 6],
    rules: {},
    chainsWritten: 0,
    chainsDeleted: 0,
    ipsetLines: 0,
    rejected: [],
    unsupported: [],
    transactions: 0,
    netlinkTransactions: 0,
  };

  constructor(private readonly opts: NftAclManagerOptions) {
    this.log = opts.logger ?? winston.createLogger({ silent: true });
    this.desired = new AclDesiredState(this.setSink, this.log, 'acl-nft');
  }

  send(u: DataplaneUpdate): void {
    this.desired.send(u);
  }

  /** The IP set side of the desired state: nft sets, one per family. */
  private readonly setSink: IpSetSink = {
    has: (id) => this.setTypes.has(id),
    replace: (id, type, members) => this.replaceSet(id, type, members),
    delta: (id, added, removed) => this.deltaSet(id, added, removed),
    remove: (id) => {
      for (const f of [4, 6] as Family[]) this.unwantedSets.add(nftSetName(id, f));
      this.setTypes.delete(id);
    },
  };

  /** What the calculation graph changed since the last apply, as this backend's dirty marks. */
  private takeChanges(): void {
    const c = this.desired.takeChanges();
    for (const id of c.policies) this.rulesChanged('policy', id);
    for (const id of c.profiles) this.rulesChanged('profile', id);
    for (const id of c.workloads) this.dirtyWorkloads.add(id);
    if (c.marks) {
      this.applied = undefined; // every chain changes: rewrite all
      this.rulesChains.clear();
      for (const e of this.endpointChains.values())
        e.chain = nftEndpointChain(e.sig, this.desired.marks);
    }
    // failsafe ports are in the host endpoint chains' layout (config)
    if (c.heps || c.config || c.marks) this.dirtyHeps = true;
    if (c.pools || c.hostAddresses || c.config || c.heps) this.dirtyStatic = true;
  }

  private deltaSet(id: string, added: string[], removed: string[]): void {
    const type = this.setTypes.get(id)!;
    for (const [list, add] of [
      [removed, false],
      [added, true],
    ] as const)
      for (const m of list)
        for (const n of normalizeMember(m, type)) {
          const name = nftSetName(id, memberFamily(n));
          let s = this.sets.get(name)!;
          const el = element(n, type);
          if (add && el.includes('/') && !s.interval && type === 'hash:net') {
            // a network in a set of addresses: the set becomes an interval set
            s = { ...setDecl(type, memberFamily(n), true), members: s.members };
            this.sets.set(name, s);
          }
          if (add) s.members.add(el);
          else s.members.delete(el);
          this.dirtySets.add(name);
        }
  }

  private replaceSet(id: string, type: IpSetType, members: string[]): void {
    this.setTypes.set(id, type);
    const per: Record<Family, Set<string>> = { 4: new Set(), 6: new Set() };
    for (const m of members)
      for (const n of normalizeMember(m, type)) per[memberFamily(n)].add(element(n, type));
    for (const f of [4, 6] as Family[]) {
      const name = nftSetName(id, f);
      const nets = [...per[f]].some((m) => m.includes('/'));
      this.sets.set(name, { ...setDecl(type, f, nets), members: per[f] });
      this.unwantedSets.delete(name);
      this.dirtySets.add(name);
    }
  }

  private rulesChanged(kind: 'policy' | 'profile', id: string): void {
    for (const d of ['ingress', 'egress'] as Direction[]) {
      const name = kind === 'policy' ? policyChain(id, d) : profileChain(id, d);
      this.rulesChains.delete(name);
      this.refused.delete(name); // a changed policy is tried again
    }
  }

  private internalSet(id: string, f: Family, members: string[]): string {
    const name = internalSetName(id, f);
    const key = `${INTERNAL}${name}`;
    this.setTypes.set(key, 'hash:net');
    const want = new Set(
      members
        .filter((m) => memberFamily(m) === f)
        .flatMap((m) => normalizeMember(m, 'hash:net'))
        .map((m) => element(m, 'hash:net')),
    );
    const cur = this.sets.get(name);
    if (!cur || cur.members.size !== want.size || [...want].some((m) => !cur.members.has(m))) {
      // pools and externalNodesCIDRList are networks: always an interval set
      this.sets.set(name, { ...setDecl('hash:net', f, true), members: want });
      this.dirtySets.add(name);
    }
    this.unwantedSets.delete(name);
    return name;
  }

  private renderStatic(): void {
    if (!this.dirtyStatic) return;
    this.dirtyStatic = false;
    const pools = [...this.desired.pools.values()];
    const masquerade: Array<{ family: 4 | 6; masq: string; all: string }> = [];
    for (const f of [4, 6] as Family[]) {
      const mine = pools.filter((p) => p.cidr.includes(':') === (f === 6));
      const all = this.internalSet(
        'all-ipam-pools',
        f,
        mine.map((p) => p.cidr),
      );
      const masq = this.internalSet(
        'masq-ipam-pools',
        f,
        mine.filter((p) => p.natOutgoing).map((p) => p.cidr),
      );
      if (mine.some((p) => p.natOutgoing)) masquerade.push({ family: f, masq, all });
    }
    const v4 = pools.filter((p) => !p.cidr.includes(':'));
    const ipip = v4.some((p) => p.ipip !== 'Never');
    const vxlan = v4.some((p) => p.vxlan !== 'Never');
    let tunnels;
    if (ipip || vxlan) {
      const allHostsSet = this.internalSet('all-hosts-net', 4, [
        ...this.desired.hostAddresses,
        ...this.desired.config.externalNodesCIDRList,
      ]);
      tunnels = { ipip, vxlanPort: vxlan ? this.desired.config.vxlanPort : undefined, allHostsSet };
    } else this.unwantedSets.add(internalSetName('all-hosts-net', 4));
    this.staticChains = nftStaticChains({
      marks: this.desired.marks,
      defaultEndpointToHostAction: this.desired.config.defaultEndpointToHostAction,
      tunnels,
      dropWorkloadEncap: {
        ipip: !this.desired.config.allowIPIPPacketsFromWorkloads,
        ...(this.desired.config.allowVXLANPacketsFromWorkloads
          ? {}
          : { vxlanPort: this.desired.config.vxlanPort }),
      },
      masquerade,
      heps: this.hepStatic,
    });
  }

  /** An endpoint chain comes (1) or goes (-1): so do uses of the chains it jumps to. */
  private ref(sig: EndpointSig, delta: 1 | -1): void {
    for (const r of rulesReferenced(sig, !sig.hep || sig.hep === 'normal')) {
      const name = (r.kind === 'policy' ? policyChain : profileChain)(r.id, r.direction);
      if (delta === 1) this.refs.use(name, () => r);
      else this.refs.release(name);
    }
  }

  private useEndpointChain(sig: EndpointSig): string {
    const name = endpointChainName(sig, this.desired.marks);
    const chain = () => ({ chain: nftEndpointChain(sig, this.desired.marks), sig });
    if (this.endpointChains.use(name, chain)) this.ref(sig, 1);
    return name;
  }

  private releaseEndpointChain(name: string): void {
    const gone = this.endpointChains.release(name);
    if (gone) this.ref(gone.sig, -1);
  }

  /**
   * Host endpoint chains, maps and the static layout's view of them, rebuilt whole when a
   * host endpoint (or the failsafe config) changed: there are few. Returns the interfaces
   * whose map elements may have changed.
   */
  private renderHeps(): Set<string> {
    const ifaces = new Set<string>();
    if (!this.dirtyHeps) return ifaces;
    this.dirtyHeps = false;
    for (const i of this.hepIfaces) ifaces.add(i);
    for (const c of this.hepChains.values())
      for (const n of Object.values(c)) if (n !== c.iface && n) this.releaseEndpointChain(n);
    this.hepChains.clear();
    this.unenforced = [];
    const fsIn = BASE.failsafeIn;
    const fsOut = BASE.failsafeOut;
    let all: HostEndpoint | undefined;
    const byIface = new Map<string, HostEndpoint>();
    // sorted by id: which one of two endpoints claiming an interface wins does not
    // depend on the order they came in
    for (const h of [...this.desired.heps.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      const claimed = named(h) ? byIface.get(h.ifaceName!) : all;
      if (claimed) {
        this.unenforced.push(h.id);
        this.log.error(
          'host endpoint NOT enforced: another host endpoint has the same interface (only one is programmed per interface)',
          {
            component: 'acl-nft',
            hostEndpoint: h.id,
            winner: claimed.id,
            iface: h.ifaceName ?? '*',
          },
        );
        continue;
      }
      if (named(h)) byIface.set(h.ifaceName!, h);
      else all = h;
      if (h.untrackedTiers.length && !hasUntracked(h))
        this.log.warn('doNotTrack policy is not supported on an all-interfaces host endpoint', {
          component: 'acl-nft',
          hostEndpoint: h.id,
        });
      const normal = { tiers: h.tiers, profileIds: h.profileIds, hep: 'normal' as const };
      const fwd = { tiers: h.forwardTiers, profileIds: [], hep: 'forward' as const };
      const unt = { tiers: h.untrackedTiers, profileIds: [], hep: 'untracked' as const };
      const c: HepChains = {
        iface: named(h) ? h.ifaceName : undefined,
        from: this.useEndpointChain({ ...normal, direction: 'ingress', failsafe: fsIn }),
        to: this.useEndpointChain({ ...normal, direction: 'egress', failsafe: fsOut }),
        fromFwd: this.useEndpointChain({ ...fwd, direction: 'ingress' }),
        toFwd: this.useEndpointChain({ ...fwd, direction: 'egress' }),
      };
      if (hasUntracked(h)) {
        c.rawFrom = this.useEndpointChain({
          ...unt,
          direction: 'ingress',
          failsafe: BASE.rawFailsafeIn,
        });
        c.rawTo = this.useEndpointChain({
          ...unt,
          direction: 'egress',
          failsafe: BASE.rawFailsafeOut,
        });
      }
      // pre-DNAT policy is ingress only (Calico rejects egress rules in it)
      if (hasPreDnat(h))
        c.preDnat = this.useEndpointChain({
          tiers: h.preDnatTiers,
          profileIds: [],
          hep: 'preDNAT',
          direction: 'ingress',
          failsafe: fsIn,
        });
      this.hepChains.set(h.id, c);
    }
    this.hepIfaces = new Set(byIface.keys());
    for (const i of this.hepIfaces) ifaces.add(i);
    const allChains = all && this.hepChains.get(all.id);
    this.hepStatic = this.hepChains.size
      ? {
          untracked: [...this.hepChains.values()].some((c) => c.rawFrom),
          preDnat: [...this.hepChains.values()].some((c) => c.preDnat),
          all: allChains && {
            from: allChains.from,
            to: allChains.to,
            fromFwd: allChains.fromFwd,
            toFwd: allChains.toFwd,
            preDnat: allChains.preDnat,
          },
          failsafeIn: this.desired.config.failsafeInboundHostPorts,
          failsafeOut: this.desired.config.failsafeOutboundHostPorts,
        }
      : undefined;
    // the named interfaces, so dispatch knows an interface's chain ran
    if (this.hepStatic) {
      const members = new Set([...this.hepIfaces].map((i) => `"${i}"`));
      const cur = this.sets.get(HEP_IFACES);
      if (
        !cur ||
        cur.members.size !== members.size ||
        [...members].some((m) => !cur.members.has(m))
      ) {
        this.sets.set(HEP_IFACES, { decl: 'type ifname;', interval: false, members });
        this.dirtySets.add(HEP_IFACES);
      }
      this.unwantedSets.delete(HEP_IFACES);
    } else this.unwantedSets.add(HEP_IFACES);
    return ifaces;
  }

  /** Endpoint chains and interface ownership of the workloads that changed. */
  private renderWorkloads(): Set<string> {
    const ifaces = new Set<string>();
    for (const id of this.dirtyWorkloads) {
      const old = this.wlChains.get(id);
      const w = this.desired.workloads.get(id);
      if (old) {
        this.releaseEndpointChain(old.to);
        this.releaseEndpointChain(old.from);
        if (this.ifaceOwner.get(old.iface) === id) this.ifaceOwner.delete(old.iface);
        const claims = this.ifaceClaims.get(old.iface);
        claims?.delete(id);
        if (claims?.size === 0) this.ifaceClaims.delete(old.iface);
        ifaces.add(old.iface);
        this.wlChains.delete(id);
      }
      if (!w) continue;
      const base = { tiers: w.tiers, profileIds: w.profileIds };
      const to = this.useEndpointChain({ ...base, direction: 'ingress' });
      const from = this.useEndpointChain({ ...base, direction: 'egress' });
      this.wlChains.set(id, { iface: w.ifaceName, to, from });
      this.ifaceOwner.set(w.ifaceName, id);
      let claims = this.ifaceClaims.get(w.ifaceName);
      if (!claims) this.ifaceClaims.set(w.ifaceName, (claims = new Set()));
      claims.add(id);
      ifaces.add(w.ifaceName);
    }
    this.dirtyWorkloads.clear();
    // an interface whose owner went may still belong to another endpoint (pod replaced):
    // the newest remaining claim
    for (const i of ifaces)
      if (!this.ifaceOwner.has(i)) {
        const claims = this.ifaceClaims.get(i);
        if (claims?.size) this.ifaceOwner.set(i, [...claims].at(-1)!);
      }
    return ifaces;
  }

  private rulesChain(name: string): NftChain {
    const refused = this.refused.get(name);
    if (refused) return nftFailClosed(name);
    let c = this.rulesChains.get(name);
    if (c) return c;
    const r = this.refs.get(name)!;
    const src = (r.kind === 'policy' ? this.desired.policies : this.desired.profiles).get(r.id);
    if (!src)
      this.log.warn('endpoint refers to an unknown policy or profile', {
        component: 'acl-nft',
        kind: r.kind,
        id: r.id,
      });
    const rules = src ? (r.direction === 'ingress' ? src.inbound : src.outbound) : [];
    const problems: string[] = [];
    c = nftRulesChain(name, rules, this.desired.marks, (why) => problems.push(why));
    if (problems.length) {
      const since = this.renderProblems.get(name)?.since ?? new Date();
      this.renderProblems.set(name, { reason: problems.join('; '), since });
      c = nftFailClosed(name);
    } else this.renderProblems.delete(name);
    this.rulesChains.set(name, c);
    return c;
  }

  /** Every chain wanted now. */
  private desiredChains(): Map<string, NftChain> {
    const out = new Map<string, NftChain>();
    for (const c of this.staticChains) out.set(c.name, c);
    for (const [name, e] of this.endpointChains.entries()) out.set(name, e.chain);
    for (const name of this.refs.keys()) out.set(name, this.rulesChain(name));
    for (const name of [...this.rulesChains.keys()])
      if (!this.refs.has(name)) this.rulesChains.delete(name);
    for (const name of [...this.renderProblems.keys()])
      if (!this.refs.has(name)) this.renderProblems.delete(name);
    for (const name of [...this.refused.keys()])
      if (!this.refs.has(name)) this.refused.delete(name);
    return out;
  }

  /** The workload verdict map of one direction, as a view (a pod add looks up one interface). */
  private workloadMap(side: 'to' | 'from'): MapView {
    const verdict = (id: string) => `jump ${this.wlChains.get(id)![side]}`;
    return {
      get: (iface) => {
        const id = this.ifaceOwner.get(iface);
        return id === undefined ? undefined : verdict(id);
      },
      entries: () => [...this.ifaceOwner].map(([iface, id]) => [iface, verdict(id)]),
    };
  }

  /** Every verdict map: interface -> verdict. */
  private desiredMaps(): Record<string, MapView> {
    const out: Record<string, MapView> = {};
    out[MAPS.toWorkload] = this.workloadMap('to');
    out[MAPS.fromWorkload] = this.workloadMap('from');
    const hep: Record<string, Map<string, string>> = {};
    for (const m of Object.values(HEP_MAPS)) out[m] = hep[m] = new Map();
    for (const c of this.hepChains.values()) {
      if (c.iface === undefined) continue; // "*": tried after the maps
      const put = (map: string, verdict: string, chain?: string) =>
        chain && hep[map].set(c.iface!, `${verdict} ${chain}`);
      put(HEP_MAPS.from, 'jump', c.from);
      put(HEP_MAPS.to, 'jump', c.to);
      put(HEP_MAPS.fromFwd, 'jump', c.fromFwd);
      put(HEP_MAPS.toFwd, 'jump', c.toFwd);
      put(HEP_MAPS.rawFrom, 'goto', c.rawFrom);
      put(HEP_MAPS.rawTo, 'goto', c.rawTo);
      put(HEP_MAPS.preDnatFrom, 'goto', c.preDnat);
    }
    return out;
  }

  /** Sets some chain refers to that nobody sent: empty (logged), so the transaction works. */
  private ensureSets(chains: Map<string, NftChain>): Set<string> {
    const used = new Set<string>();
    for (const c of chains.values()) for (const s of c.sets) used.add(s);
    for (const s of used)
      if (!this.sets.has(s)) {
        this.log.error(
          'a rule refers to an IP set the calculation graph never sent; created empty',
          {
            component: 'acl-nft',
            set: s,
          },
        );
        const f = s.startsWith('s6-') || s.startsWith('t6-') ? 6 : 4;
        // named-port sets are only referred to as such; an unknown one is taken as a net set
        this.sets.set(s, { ...setDecl('hash:net', f, true), members: new Set() });
        this.dirtySets.add(s);
      }
    for (const s of this.unwantedSets)
      if (!used.has(s)) {
        this.sets.delete(s);
        this.unwantedSets.delete(s);
        this.dirtySets.delete(s);
      }
    return used;
  }

  /** The transaction from the kernel's state (applied) to the desired one. */
  private changes(
    chains: Map<string, NftChain>,
    maps: Record<string, MapView>,
    dirtyIfaces: Set<string>,
  ): NftChanges {
    // a set whose type changed cannot be altered in place: everything is written whole
    const retyped = [...this.dirtySets].some((n) => {
      const old = this.applied?.sets.get(n);
      return old && this.sets.has(n) && old.decl !== this.sets.get(n)!.decl;
    });
    const a = retyped ? undefined : this.applied;
    const c: NftChanges = {
      full: !a,
      maps: Object.keys(maps).filter((m) => !a?.maps[m]),
      addSets: [],
      elements: [],
      addChains: [],
      replaceChains: [],
      mapChanges: [],
      delChains: [],
      delSets: [],
    };
    if (!a) {
      for (const [name, s] of this.sets) {
        c.addSets.push({ name, decl: s.decl });
        if (s.members.size) c.elements.push({ set: name, add: [...s.members], del: [] });
      }
      c.addChains.push(...chains.values());
      for (const [map, els] of Object.entries(maps))
        c.mapChanges.push({ map, add: [...els.entries()], del: [] });
      return c;
    }
    for (const name of this.dirtySets) {
      const s = this.sets.get(name);
      if (!s) continue;
      const old = a.sets.get(name);
      if (!old) {
        c.addSets.push({ name, decl: s.decl });
        if (s.members.size) c.elements.push({ set: name, add: [...s.members], del: [] });
        continue;
      }
      const add = [...s.members].filter((m) => !old.members.has(m));
      const del = [...old.members].filter((m) => !s.members.has(m));
      if (!add.length && !del.length) continue;
      // interval sets merge what overlaps: a delete could miss; they are written whole
      if (del.length && s.interval)
        c.elements.push({ set: name, add: [], del: [], refill: [...s.members] });
      else c.elements.push({ set: name, add, del });
    }
    for (const name of a.sets.keys()) if (!this.sets.has(name)) c.delSets.push(name);
    for (const [name, ch] of chains) {
      const old = a.chains.get(name);
      if (!old) c.addChains.push(ch);
      else if (
        old !== ch &&
        (old.rules.length !== ch.rules.length || old.rules.some((r, i) => r !== ch.rules[i]))
      )
        c.replaceChains.push(ch);
    }
    for (const name of a.chains.keys()) if (!chains.has(name)) c.delChains.push(name);
    for (const [map, els] of Object.entries(maps)) {
      const old = a.maps[map] ?? new Map<string, string>();
      const m: MapChange = { map, add: [], del: [] };
      for (const i of dirtyIfaces) {
        const want = els.get(i);
        const have = old.get(i);
        if (want === have) continue;
        if (have !== undefined) m.del.push(i);
        if (want !== undefined) m.add.push([i, want]);
      }
      if (m.add.length || m.del.length) c.mapChanges.push(m);
    }
    return c;
  }

  async apply(): Promise<void> {
    if (!this.desired.inSync) return;
    this.takeChanges();
    const hepIfaces = this.renderHeps();
    this.renderStatic();
    const dirtyIfaces = this.renderWorkloads();
    for (const i of hepIfaces) dirtyIfaces.add(i);
    let chains = this.desiredChains();
    this.ensureSets(chains);
    let maps = this.desiredMaps();
    let c = this.changes(chains, maps, dirtyIfaces);
    if (!isEmpty(c)) {
      try {
        await this.write(c);
      } catch (e) {
        // find the policy chains the kernel refuses, close them, write everything whole
        const found = await this.isolate(
          [...c.addChains, ...c.replaceChains],
          (e as Error).message,
        );
        if (!found) {
          this.applied = undefined; // unknown state: the next apply writes everything
          throw e;
        }
        chains = this.desiredChains();
        maps = this.desiredMaps();
        this.applied = undefined;
        c = this.changes(chains, maps, dirtyIfaces);
        try {
          await this.write(c);
        } catch (e2) {
          this.applied = undefined;
          throw e2;
        }
      }
      this.commit(c, chains, maps, dirtyIfaces);
    }
    this.dirtySets.clear();
    this.reportFailures();
  }

  private async write(c: NftChanges): Promise<void> {
    this.stats.transactions++;
    // elements only (a pod add or removal): the same transaction as element operations too,
    // which the runner may commit over netlink instead of through nft
    const ops = elementOps(c, (set) =>
      this.sets.get(set)?.interval === false ? this.sets.get(set)!.decl : undefined,
    );
    const how = await this.opts.runner.run(
      nftScript(c),
      ops && { family: 'inet', table: TABLE, ops },
    );
    if (how === 'netlink') this.stats.netlinkTransactions++;
  }

  /** After a successful transaction: the kernel now holds the desired state. */
  private commit(
    c: NftChanges,
    chains: Map<string, NftChain>,
    maps: Record<string, MapView>,
    dirtyIfaces: Set<string>,
  ): void {
    this.stats.chainsWritten += c.addChains.length + c.replaceChains.length;
    this.stats.chainsDeleted += c.delChains.length;
    const copy = (s: SetState) => ({ decl: s.decl, members: new Set(s.members) });
    if (c.full || !this.applied) {
      this.applied = {
        sets: new Map([...this.sets].map(([n, s]) => [n, copy(s)])),
        chains: new Map(chains),
        maps: Object.fromEntries(Object.entries(maps).map(([k, v]) => [k, new Map(v.entries())])),
      };
      return;
    }
    const a = this.applied;
    for (const n of c.delSets) a.sets.delete(n);
    for (const n of this.dirtySets) {
      const s = this.sets.get(n);
      if (s) a.sets.set(n, copy(s));
    }
    a.chains = new Map(chains);
    for (const [map, els] of Object.entries(maps)) {
      const have = (a.maps[map] ??= new Map());
      for (const i of dirtyIfaces) {
        const v = els.get(i);
        if (v === undefined) have.delete(i);
        else have.set(i, v);
      }
    }
  }

  /**
   * Which of these policy/profile chains the kernel refuses (each checked alone with
   * `nft -c`, nothing committed): those fail closed. True when one was found.
   */
  private async isolate(candidates: NftChain[], error: string): Promise<boolean> {
    const rulesChains = candidates.filter((ch) => this.refs.has(ch.name));
    let found = false;
    for (const ch of rulesChains) {
      const sets = ch.sets
        .map((s) => this.sets.get(s) && `add set ${TABLE_REF} ${s} { ${this.sets.get(s)!.decl} }\n`)
        .join('');
      const script =
        `add table ${TABLE_REF}\n${sets}add chain ${TABLE_REF} ${ch.name}\n` +
        ch.rules.map((r) => `add rule ${TABLE_REF} ${ch.name} ${r}\n`).join('');
      const why = await this.opts.runner.check(script);
      if (why === undefined) continue;
      found = true;
      this.refused.set(ch.name, { reason: why, since: new Date() });
      this.rulesChains.delete(ch.name);
    }
    if (!found)
      this.log.error('nft refused a transaction and no policy chain alone explains it', {
        component: 'acl-nft',
        error,
      });
    return found;
  }

  private failures(): Map<string, PolicyFailure> {
    const out = new Map<string, PolicyFailure>();
    const add = (chain: string, reason: string, since: Date) => {
      const r = this.refs.get(chain);
      if (!r) return;
      for (const family of [4, 6] as Family[])
        out.set(`${family} ${chain}`, {
          kind: r.kind,
          id: r.id,
          direction: r.direction,
          family,
          table: 'filter',
          chain,
          reason,
          since: since.toISOString(),
        });
    };
    for (const [chain, p] of this.renderProblems) add(chain, p.reason, p.since);
    for (const [chain, p] of this.refused)
      add(chain, `the kernel refused it: ${p.reason}`, p.since);
    return out;
  }

  private reportFailures(): void {
    const now = this.failures();
    for (const [k, f] of now) {
      if (this.reported.has(k)) continue;
      if (f.family === 4) {
        this.log.error(`${f.kind} cannot be programmed; what it decides is denied (fail closed)`, {
          component: 'acl-nft',
          [f.kind]: f.id,
          direction: f.direction,
          chain: f.chain,
          reason: f.reason,
        });
      }
      this.opts.onPolicyFailure?.(f);
    }
    this.reported = now;
  }

  /** Rewrites the table whole (atomically), repairing any drift. */
  async resync(): Promise<void> {
    if (!this.desired.inSync) return;
    this.applied = undefined;
    await this.apply();
  }

  status(): NftAclStats {
    let rules = 0;
    for (const c of this.applied?.chains.values() ?? []) rules += c.rules.length;
    return {
      ...this.stats,
      lastConfigError: this.desired.lastConfigError,
      rules: { [TABLE_REF]: rules },
      rejected: [...this.reported.values()],
      unsupported: [...this.unenforced],
    };
  }

  /** Ends the long-lived nft process, if the runner has one. */
  close(): void {
    (this.opts.runner as { close?: () => void }).close?.();
  }

  /** The desired chains (tests and the benchmark). */
  desiredChainList(): NftChain[] {
    return [...(this.applied?.chains.values() ?? [])];
  }
}

/** The manager wired to the real nft, optionally inside a network namespace. */
export function linuxNftAclManager(
  o: {
    netns?: string;
    prefix?: string[];
    logger?: Logger;
    onPolicyFailure?: (f: PolicyFailure) => void;
  } = {},
): NftAclManager {
  return new NftAclManager({
    runner: new NftSession({ netns: o.netns, prefix: o.prefix }),
    logger: o.logger,
    onPolicyFailure: o.onPolicyFailure,
  });
}
