// The routing side of the dataplane: routes (per-workload, blackholes for local blocks,
// remote blocks direct / over tunl0 / over the VXLAN device), the VXLAN device with its
// static ARP and FDB entries, tunl0 for IPIP, forwarding. Pure "desired -> commands"
// functions plus the managers that run them.
import type { DataplaneManager } from '../agent';
import { allSettled } from '../settle';
import type { LearnedRouteSink } from '../bgp/glue';
import type { BgpConfig, DataplaneUpdate, HostInfo, IpPoolInfo, RouteSpec } from '../types';
import {
  mustWriteSysctls,
  neighText,
  writeSysctls,
  type NeighOp,
  type Rtnl,
  type SysctlEntry,
} from '@tortie/netlink';
import { RouteTable, PROTO_TORTIE, PROTO_TORTIE_BGP, type KernelRoute } from './route-table';
import { mustRun, type CommandRunner } from './runner';

export const VXLAN_DEVICE = 'vxlan.tortie';
export const IPIP_DEVICE = 'tunl0';
export const ENCAP_OVERHEAD = { vxlan: 50, ipip: 20 } as const;

/** The kernel route for a route spec (undefined: not a route, e.g. a VXLAN tunnel endpoint). */
export function kernelRoute(r: RouteSpec): KernelRoute | undefined {
  switch (r.kind) {
    case 'local-workload':
      return { dst: r.dst, dev: r.ifaceName, scopeLink: true };
    case 'local-block':
      return { dst: r.dst, type: 'blackhole' };
    case 'remote-tunnel':
      return undefined;
    default:
      if (!r.nextHop) return undefined;
      if (r.encap === 'ipip') return { dst: r.dst, via: r.nextHop, dev: IPIP_DEVICE, onlink: true };
      if (r.encap === 'vxlan')
        return r.tunnelAddr
          ? { dst: r.dst, via: r.tunnelAddr, dev: VXLAN_DEVICE, onlink: true }
          : undefined;
      return { dst: r.dst, via: r.nextHop };
  }
}

/** The host-side addresses for local workload peering: /32 and /128 (pure). */
export function peeringAddrs(lp: NonNullable<BgpConfig['localWorkloadPeering']>): string[] {
  return [...(lp.ipv4 ? [`${lp.ipv4}/32`] : []), ...(lp.ipv6 ? [`${lp.ipv6}/128`] : [])];
}

export interface VxlanSettings {
  vni: number;
  port: number;
  mtu: number;
}

/** Commands that create the VXLAN device (pure). */
export function vxlanDeviceCommands(h: HostInfo, s: VxlanSettings): string[][] {
  const cmds = [
    [
      'ip',
      'link',
      'add',
      VXLAN_DEVICE,
      'type',
      'vxlan',
      'id',
      String(s.vni),
      'dstport',
      String(s.port),
      'local',
      h.ipv4Address!,
      'nolearning',
    ],
    [
      'ip',
      'link',
      'set',
      VXLAN_DEVICE,
      ...(h.vxlanTunnelMACAddr ? ['address', h.vxlanTunnelMACAddr] : []),
      'mtu',
      String(s.mtu),
      'up',
    ],
  ];
  if (h.ipv4VXLANTunnelAddr)
    cmds.push(['ip', 'addr', 'replace', `${h.ipv4VXLANTunnelAddr}/32`, 'dev', VXLAN_DEVICE]);
  return cmds;
}

/** Commands that set up tunl0 for IPIP (pure; needs the kernel's ipip module). */
export function ipipDeviceCommands(h: HostInfo, mtu: number): string[][] {
  const cmds = [
    ['ip', 'link', 'add', 'name', IPIP_DEVICE, 'type', 'ipip'],
    ['ip', 'link', 'set', IPIP_DEVICE, 'mtu', String(mtu), 'up'],
  ];
  if (h.ipv4IPIPTunnelAddr)
    cmds.push(['ip', 'addr', 'replace', `${h.ipv4IPIPTunnelAddr}/32`, 'dev', IPIP_DEVICE]);
  return cmds;
}

/** Another node's VTEP: its tunnel address and MAC, reached at its node address. */
export interface Vtep {
  ip: string;
  mac: string;
  remote: string;
}

/** The VTEP a route spec names (pure; undefined: not a VXLAN tunnel endpoint). */
export function vtepOf(r: RouteSpec): Vtep | undefined {
  if (r.kind !== 'remote-tunnel' || !r.tunnelAddr || !r.vtepMac || !r.nextHop) return undefined;
  return { ip: r.tunnelAddr, mac: r.vtepMac, remote: r.nextHop };
}

/** The ARP and FDB entries that let VXLAN reach another node's VTEP, as `ip`/`bridge` batch lines (pure). */
export function vtepEntries(r: RouteSpec): { neigh: string; fdb: string } | undefined {
  const v = vtepOf(r);
  if (!v) return undefined;
  return {
    neigh: neighText({ kind: 'neigh', op: 'replace', ip: v.ip, mac: v.mac }, VXLAN_DEVICE),
    fdb: neighText({ kind: 'fdb', op: 'replace', mac: v.mac, dst: v.remote }, VXLAN_DEVICE),
  };
}

/** The netlink changes from the VTEPs written to the wanted ones (pure): ARP and FDB per VTEP. */
export function vtepChanges(had: Map<string, Vtep>, want: Map<string, Vtep>): NeighOp[] {
  const ops: NeighOp[] = [];
  const same = (a: Vtep, b: Vtep) => a.ip === b.ip && a.mac === b.mac && a.remote === b.remote;
  for (const [dst, v] of had) {
    const w = want.get(dst);
    if (w && same(v, w)) continue;
    // gone or changed: the old entries go first (a changed MAC would leave the old one)
    if (!w || w.ip !== v.ip) ops.push({ kind: 'neigh', op: 'del', ip: v.ip });
    if (!w || w.mac !== v.mac) ops.push({ kind: 'fdb', op: 'del', mac: v.mac });
  }
  for (const [dst, w] of want) {
    const v = had.get(dst);
    if (v && same(v, w)) continue;
    ops.push({ kind: 'neigh', op: 'replace', ip: w.ip, mac: w.mac });
    ops.push({ kind: 'fdb', op: 'replace', mac: w.mac, dst: w.remote });
  }
  return ops;
}

/**
 * Per workload interface, as Felix: answer ARP for the pod's gateway at once, forward,
 * and drop packets whose source does not route back through the interface (spoofing).
 */
export function workloadSysctlFiles(iface: string): SysctlEntry[] {
  return [
    [`/proc/sys/net/ipv4/conf/${iface}/proxy_arp`, '1'],
    [`/proc/sys/net/ipv4/neigh/${iface}/proxy_delay`, '0'],
    [`/proc/sys/net/ipv4/conf/${iface}/forwarding`, '1'],
    [`/proc/sys/net/ipv4/conf/${iface}/rp_filter`, '1'],
  ];
}

/** The same as `sysctl -w` arguments (the path without netlink). */
export function workloadSysctls(iface: string): string[] {
  return workloadSysctlFiles(iface).map(
    ([p, v]) => `${p.slice('/proc/sys/'.length).replace(/\//g, '.')}=${v}`,
  );
}

/** Forwarding, once per family. */
const FORWARDING = [
  [4, 'net.ipv4.ip_forward', '/proc/sys/net/ipv4/ip_forward'],
  [6, 'net.ipv6.conf.all.forwarding', '/proc/sys/net/ipv6/conf/all/forwarding'],
] as const;

export function tunnelMtu(hostMtu: number, encap: 'vxlan' | 'ipip'): number {
  return hostMtu - ENCAP_OVERHEAD[encap];
}

interface LinkJson {
  ifname: string;
  mtu: number;
  address?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: { id?: number; port?: number; local?: string; learning?: boolean };
  };
}

export class NetManager implements DataplaneManager {
  readonly name = 'net';
  private inSync = false;
  private readonly specs = new Map<string, RouteSpec>();
  private readonly pools = new Map<string, IpPoolInfo>();
  private host?: HostInfo;
  private config: Record<string, unknown> = {};
  readonly routes: RouteTable;
  readonly learnedTable: RouteTable;
  private vteps = new Map<string, Vtep>();
  /** The families the kernel forwards for us already (the sysctl is written once). */
  private readonly forwarding = new Set<4 | 6>();
  /** Workload interfaces whose sysctls are (to be) set. */
  private readonly configuredIfaces = new Set<string>();
  private readonly pendingIfaces = new Set<string>();
  private readonly ifaceOf = new Map<string, string>();
  /** BGPConfiguration localWorkloadPeeringIPV4/IPV6 and the endpoints that peer with us. */
  private localPeering?: BgpConfig['localWorkloadPeering'];
  /** The peering addresses on workload interfaces: what we added, by interface. */
  private readonly peeringAddrs = new Map<string, string[]>();
  /** Why a tunnel device (or an interface's sysctls: `sysctl <iface>`) could not be set up. */
  readonly problems = new Map<string, string>();

  /**
   * `netlink`: routes, tunnel devices, VTEP entries and peering addresses over this socket
   * (in the runner's namespace); without it, `ip`/`bridge` processes.
   */
  constructor(
    private readonly runner: CommandRunner,
    private readonly nl?: Rtnl,
  ) {
    const netlink = nl;
    this.routes = new RouteTable(runner, PROTO_TORTIE, netlink);
    this.learnedTable = new RouteTable(runner, PROTO_TORTIE_BGP, netlink);
  }

  /** Learned routes: destination -> next hop and metric. */
  private readonly learnedRoutes = new Map<string, { via: string; metric?: number }>();

  /** False until BGP has relearned everything after this agent started. */
  private learnedComplete = false;

  /** Where the BGP glue puts learned routes (applied with the next apply). */
  readonly learned: LearnedRouteSink = {
    set: (dst, nextHop, metric) =>
      void this.learnedRoutes.set(dst, {
        via: nextHop,
        ...(metric !== undefined ? { metric } : {}),
      }),
    remove: (dst) => void this.learnedRoutes.delete(dst),
    complete: () => void (this.learnedComplete = true),
  };

  send(u: DataplaneUpdate): void {
    switch (u.type) {
      case 'route-update':
        this.specs.set(u.route.dst, u.route);
        break;
      case 'route-remove':
        this.specs.delete(u.dst);
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
      case 'config-update':
        this.config = u.config;
        break;
      case 'workload-update':
        this.ifaceOf.set(u.endpoint.id, u.endpoint.ifaceName);
        if (!this.configuredIfaces.has(u.endpoint.ifaceName))
          this.pendingIfaces.add(u.endpoint.ifaceName);
        break;
      case 'workload-remove': {
        // a pod re-created with the same name gets a new interface: configure it again
        const iface = this.ifaceOf.get(u.id);
        if (iface) {
          this.configuredIfaces.delete(iface);
          this.pendingIfaces.delete(iface);
          this.problems.delete(`sysctl ${iface}`);
        }
        this.ifaceOf.delete(u.id);
        break;
      }
      case 'bgp-update':
        this.localPeering = u.bgp.localWorkloadPeering;
        break;
      case 'in-sync':
        this.inSync = true;
        break;
    }
  }

  private uses(encap: 'vxlan' | 'ipip'): boolean {
    return [...this.pools.values()].some((p) => (encap === 'vxlan' ? p.vxlan : p.ipip) !== 'Never');
  }

  async apply(): Promise<void> {
    if (!this.inSync) return;
    // IPv6 too once the node or a pool has IPv6 (Felix, with IPv6 on)
    const v6 =
      this.host?.ipv6Address !== undefined ||
      [...this.pools.values()].some((p) => p.cidr.includes(':'));
    for (const [family, sysctl, file] of FORWARDING) {
      if (this.forwarding.has(family) || (family === 6 && !v6)) continue;
      if (this.nl) mustWriteSysctls(this.nl.netns, [[file, '1']]);
      else await mustRun(this.runner, ['sysctl', '-qw', `${sysctl}=1`]);
      this.forwarding.add(family);
    }
    // interface sysctls do not order with routes: they run alongside
    await allSettled([
      this.applyInterfaceSysctls().then(() => this.applyPeeringAddrs()),
      this.applyRoutes(),
    ]);
  }

  /**
   * BGP peering with local workloads: as Felix's endpoint manager
   * (ensureLocalBGPPeerIPOnInterface), the host side of a workload that peers with this
   * node gets localWorkloadPeeringIPV4/32 (IPV6/128), so the workload reaches the node's
   * speaker at that address through its own interface; other interfaces lose it. An
   * interface not there yet is tried again at the next apply.
   */
  private async applyPeeringAddrs(): Promise<void> {
    const want = new Map<string, string[]>();
    const lp = this.localPeering;
    const addrs = lp ? peeringAddrs(lp) : [];
    for (const id of addrs.length ? (lp?.endpoints ?? []) : []) {
      const iface = this.ifaceOf.get(id);
      if (iface) want.set(iface, addrs);
    }
    for (const [iface, had] of this.peeringAddrs) {
      const now = want.get(iface) ?? [];
      for (const a of had.filter((x) => !now.includes(x))) await this.delAddr(a, iface);
      if (!now.length) this.peeringAddrs.delete(iface);
    }
    for (const [iface, now] of want) {
      const had = this.peeringAddrs.get(iface) ?? [];
      const added: string[] = had.filter((a) => now.includes(a));
      for (const a of now.filter((x) => !had.includes(x)))
        if (await this.replaceAddr(a, iface)) added.push(a);
      this.peeringAddrs.set(iface, added);
    }
  }

  /** `ip addr replace`; false (and why, at debug level of the caller) when it failed. */
  private async replaceAddr(cidr: string, dev: string): Promise<boolean> {
    if (!this.nl)
      return (await this.runner.run(['ip', 'addr', 'replace', cidr, 'dev', dev])).code === 0;
    try {
      await this.nl.addAddr(cidr, dev, { replace: true });
      return true;
    } catch {
      return false; // e.g. the interface is not there yet: tried again at the next apply
    }
  }

  private async delAddr(cidr: string, dev: string): Promise<void> {
    if (!this.nl) {
      await this.runner.run(['ip', 'addr', 'del', cidr, 'dev', dev]);
      return;
    }
    await this.nl.delAddr(cidr, dev).catch(() => false); // gone with its interface: nothing to do
  }

  private async applyRoutes(): Promise<void> {
    if (this.uses('vxlan') && this.host?.ipv4Address) await this.ensureVxlan(this.host);
    if (this.uses('ipip') && this.host?.ipv4Address) await this.ensureIpip(this.host);
    await this.applyVteps();
    const routes: KernelRoute[] = [];
    for (const s of this.specs.values()) {
      const r = kernelRoute(s);
      if (r) routes.push(r);
    }
    this.routes.setAll(routes);
    await this.routes.apply();
    // a destination we route ourselves (a tunnel, a local block) wins over BGP's route
    const ours = new Set(routes.map((r) => r.dst));
    const learned: KernelRoute[] = [...this.learnedRoutes]
      .filter(([dst]) => !ours.has(dst))
      .map(([dst, r]) => ({ dst, ...r }));
    if (!this.learnedComplete) {
      // graceful restart: the routes an earlier agent learned keep forwarding until BGP
      // has relearned everything (every peer's End-of-RIB), then the ones not relearned go
      const have = new Set(learned.map((r) => r.dst));
      for (const r of await this.learnedTable.current())
        if (!have.has(r.dst) && !ours.has(r.dst)) learned.push(r);
    }
    this.learnedTable.setAll(learned);
    await this.learnedTable.apply();
  }

  async resync(): Promise<void> {
    if (!this.inSync) return;
    this.vteps = new Map(); // rewrite the (idempotent) ARP/FDB entries
    await this.routes.load();
    await this.learnedTable.load();
    await this.apply();
  }

  /**
   * Felix's per-workload-interface settings, retried if the interface is not there yet:
   * with the netlink socket written to /proc/sys in its namespace by this process (no
   * process per pod), else in one `sysctl` call.
   */
  private async applyInterfaceSysctls(): Promise<void> {
    if (this.pendingIfaces.size === 0) return;
    const ifaces = [...this.pendingIfaces];
    if (this.nl) {
      const errs = writeSysctls(this.nl.netns, ifaces.flatMap(workloadSysctlFiles));
      const per = workloadSysctlFiles('x').length;
      ifaces.forEach((iface, k) => {
        const bad = errs.slice(k * per, (k + 1) * per).find((e) => e);
        if (bad) {
          // a missing interface (ENOENT) is one the pod has not got yet: no problem to show
          if (bad.code !== 'ENOENT') this.problems.set(`sysctl ${iface}`, bad.message);
          return;
        }
        this.problems.delete(`sysctl ${iface}`);
        this.pendingIfaces.delete(iface);
        this.configuredIfaces.add(iface);
      });
      return;
    }
    const r = await this.runner.run(['sysctl', '-qw', ...ifaces.flatMap(workloadSysctls)]);
    // sysctl sets what it can and names what it could not: keep those for the next apply
    for (const i of ifaces) {
      if (r.code !== 0 && r.stderr.includes(i)) continue;
      this.pendingIfaces.delete(i);
      this.configuredIfaces.add(i);
    }
  }

  /** The MTU of the interface that has the node's IPv4 address (1500 when none has). */
  private async hostMtu(h: HostInfo): Promise<number> {
    if (this.nl) {
      const a = (await this.nl.listAddrs(4)).find((x) => x.address === h.ipv4Address);
      return (a && (await this.nl.link(a.index))?.mtu) ?? 1500;
    }
    const r = await this.runner.run(['ip', '-j', 'addr']);
    const links =
      r.code === 0
        ? (JSON.parse(r.stdout) as Array<LinkJson & { addr_info?: Array<{ local: string }> }>)
        : [];
    return links.find((l) => l.addr_info?.some((a) => a.local === h.ipv4Address))?.mtu ?? 1500;
  }

  /** The VXLAN device as it is now (undefined: none), in `ip -j -d link`'s terms. */
  private async vxlanLink(): Promise<
    | {
        mtu?: number;
        mac?: string;
        vni?: number;
        port?: number;
        local?: string;
        learning?: boolean;
      }
    | undefined
  > {
    if (this.nl) {
      const l = await this.nl.link(VXLAN_DEVICE);
      return l && { mtu: l.mtu, mac: l.mac, ...l.vxlan };
    }
    const cur = await this.runner.run(['ip', '-j', '-d', 'link', 'show', VXLAN_DEVICE]);
    const link = cur.code === 0 ? (JSON.parse(cur.stdout) as LinkJson[])[0] : undefined;
    if (!link) return undefined;
    const d = link.linkinfo?.info_data;
    return {
      mtu: link.mtu,
      mac: link.address,
      vni: d?.id,
      port: d?.port,
      local: d?.local,
      learning: d?.learning,
    };
  }

  private async ensureVxlan(h: HostInfo): Promise<void> {
    const s: VxlanSettings = {
      vni: Number(this.config.vxlanVNI ?? 4096),
      port: Number(this.config.vxlanPort ?? 4789),
      mtu: Number(this.config.vxlanMTU) || tunnelMtu(await this.hostMtu(h), 'vxlan'),
    };
    const link = await this.vxlanLink();
    const right =
      link &&
      link.vni === s.vni &&
      link.port === s.port &&
      link.local === h.ipv4Address &&
      link.learning === false &&
      link.mtu === s.mtu &&
      (!h.vxlanTunnelMACAddr || link.mac === h.vxlanTunnelMACAddr);
    if (right) return;
    this.vteps = new Map();
    if (!this.nl) {
      if (link) await mustRun(this.runner, ['ip', 'link', 'del', VXLAN_DEVICE]);
      for (const c of vxlanDeviceCommands(h, s)) await mustRun(this.runner, c);
      return;
    }
    if (link) await this.nl.delLink(VXLAN_DEVICE);
    await this.nl.addVxlan({
      name: VXLAN_DEVICE,
      vni: s.vni,
      port: s.port,
      local: h.ipv4Address!,
      learning: false,
      mac: h.vxlanTunnelMACAddr,
      mtu: s.mtu,
    });
    await this.nl.setLinkUp(VXLAN_DEVICE);
    if (h.ipv4VXLANTunnelAddr)
      await this.nl.addAddr(`${h.ipv4VXLANTunnelAddr}/32`, VXLAN_DEVICE, { replace: true });
  }

  private async ensureIpip(h: HostInfo): Promise<void> {
    const mtu = Number(this.config.ipipMTU) || tunnelMtu(await this.hostMtu(h), 'ipip');
    if (!this.nl) return this.ensureIpipWithIp(h, mtu);
    const nl = this.nl;
    const step = async (words: string, f: () => Promise<unknown>) => {
      try {
        await f();
        return true;
      } catch (e) {
        // e.g. a kernel without the ipip module: IPIP routes stay unprogrammed, and say why
        this.problems.set('ipip', `${words}: ${(e as Error).message}`);
        return false;
      }
    };
    // adding tunl0 loads the ipip module, which creates its own tunl0 in every namespace:
    // then the add itself fails with EEXIST, and tunl0 is there
    const added = async () => {
      try {
        await nl.addIpip(IPIP_DEVICE);
      } catch (e) {
        if (!(await nl.link(IPIP_DEVICE))) throw e;
      }
    };
    if (!(await nl.link(IPIP_DEVICE)) && !(await step('ip link add name tunl0 type ipip', added)))
      return;
    if (
      !(await step(`ip link set tunl0 mtu ${mtu} up`, () =>
        nl.setLink(IPIP_DEVICE, { mtu, up: true }),
      ))
    )
      return;
    const addr = h.ipv4IPIPTunnelAddr;
    if (
      addr &&
      !(await step(`ip addr replace ${addr}/32 dev tunl0`, () =>
        nl.addAddr(`${addr}/32`, IPIP_DEVICE, { replace: true }),
      ))
    )
      return;
    this.problems.delete('ipip');
  }

  private async ensureIpipWithIp(h: HostInfo, mtu: number): Promise<void> {
    const exists = async () =>
      (await this.runner.run(['ip', 'link', 'show', IPIP_DEVICE])).code === 0;
    const [add, ...configure] = ipipDeviceCommands(h, mtu);
    for (const c of (await exists()) ? configure : [add, ...configure]) {
      const r = await this.runner.run(c);
      // adding tunl0 loads the ipip module, which creates its own tunl0 in every
      // namespace: then the add itself fails with "File exists", and tunl0 is there
      if (r.code !== 0 && c === add && (await exists())) continue;
      if (r.code !== 0) {
        // e.g. a kernel without the ipip module: IPIP routes stay unprogrammed, and say why
        this.problems.set('ipip', `${c.join(' ')}: ${r.stderr.trim()}`);
        return;
      }
    }
    this.problems.delete('ipip');
  }

  /** The static ARP and FDB entries for every other node's VTEP: the changed ones only. */
  private async applyVteps(): Promise<void> {
    const want = new Map<string, Vtep>();
    for (const s of this.specs.values()) {
      const v = vtepOf(s);
      if (v) want.set(s.dst, v);
    }
    const ops = vtepChanges(this.vteps, want);
    if (!ops.length) return;
    if (this.nl) {
      // a refusal (e.g. the device is not there) is retried at the next resync, as with ip
      await this.nl.applyNeighs(VXLAN_DEVICE, ops).catch(() => undefined);
    } else {
      const lines = (k: NeighOp['kind']) =>
        ops.filter((o) => o.kind === k).map((o) => neighText(o, VXLAN_DEVICE) + '\n');
      const neigh = lines('neigh');
      const fdb = lines('fdb');
      if (neigh.length) await this.runner.run(['ip', '-force', '-batch', '-'], neigh.join(''));
      if (fdb.length) await this.runner.run(['bridge', '-force', '-batch', '-'], fdb.join(''));
    }
    this.vteps = want;
  }
}
