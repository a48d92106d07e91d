// The routing side of the dataplane: routes (per-workload, blackholes for local blocks,
// remote blocks direct / over tunl0 / over the VXLAN device), the VXLAN device with its
// static ARP and FDB entries, tunl0 for IPIP, forwarding. Pure "desired -> commands"
// functions plus the managers that run them.
import type { DataplaneManager } from '../agent';
import { allSettled } from '../settle';
import type { LearnedRouteSink } from '../bgp/glue';
import type { BgpConfig, DataplaneUpdate, HostInfo, IpPoolInfo, RouteSpec } from '../types';
import type { Rtnl } from '@tortie/netlink';
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

/** The ARP and FDB entries that let VXLAN reach another node's VTEP (pure). */
export function vtepEntries(r: RouteSpec): { neigh: string; fdb: string } | undefined {
  if (r.kind !== 'remote-tunnel' || !r.tunnelAddr || !r.vtepMac || !r.nextHop) return undefined;
  return {
    neigh: `neigh replace ${r.tunnelAddr} lladdr ${r.vtepMac} dev ${VXLAN_DEVICE} nud permanent`,
    fdb: `fdb replace ${r.vtepMac} dev ${VXLAN_DEVICE} dst ${r.nextHop} self permanent`,
  };
}

/**
 * Per workload interface, as Felix: answer ARP for the pod's gateway at once, forward,
 * and drop packets whose source does not route back through the interface (spoofing).
 */
export function workloadSysctls(iface: string): string[] {
  return [
    `net.ipv4.conf.${iface}.proxy_arp=1`,
    `net.ipv4.neigh.${iface}.proxy_delay=0`,
    `net.ipv4.conf.${iface}.forwarding=1`,
    `net.ipv4.conf.${iface}.rp_filter=1`,
  ];
}

export function tunnelMtu(hostMtu: number, encap: 'vxlan' | 'ipip'): number {
  return hostMtu - ENCAP_OVERHEAD[encap];
}

interface LinkJson {
  ifname: string;
  mtu: number;
  address?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; local?: string } };
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
  private vteps = new Map<string, { neigh: string; fdb: string }>();
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
  /** Why a tunnel device could not be set up (shown by health/logs). */
  readonly problems = new Map<string, string>();

  /** `netlink`: routes over this socket (in the runner's namespace); without it, `ip -batch`. */
  constructor(
    private readonly runner: CommandRunner,
    netlink?: Rtnl,
  ) {
    this.routes = new RouteTable(runner, PROTO_TORTIE, netlink);
    this.learnedTable = new RouteTable(runner, PROTO_TORTIE_BGP, netlink);
  }

  private readonly learnedRoutes = new Map<string, string>();

  /** False until BGP has relearned everything after this agent started. */
  private learnedComplete = false;

  /** Where the BGP glue puts learned routes (applied with the next apply). */
  readonly learned: LearnedRouteSink = {
    set: (dst, nextHop) => void this.learnedRoutes.set(dst, nextHop),
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
        if (iface) this.configuredIfaces.delete(iface);
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
    for (const [family, sysctl] of [
      [4, 'net.ipv4.ip_forward=1'],
      [6, 'net.ipv6.conf.all.forwarding=1'],
    ] as const) {
      if (this.forwarding.has(family) || (family === 6 && !v6)) continue;
      await mustRun(this.runner, ['sysctl', '-qw', sysctl]);
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
      for (const a of had.filter((x) => !now.includes(x)))
        await this.runner.run(['ip', 'addr', 'del', a, 'dev', iface]);
      if (!now.length) this.peeringAddrs.delete(iface);
    }
    for (const [iface, now] of want) {
      const had = this.peeringAddrs.get(iface) ?? [];
      const added: string[] = had.filter((a) => now.includes(a));
      for (const a of now.filter((x) => !had.includes(x))) {
        const r = await this.runner.run(['ip', 'addr', 'replace', a, 'dev', iface]);
        if (r.code === 0) added.push(a);
      }
      this.peeringAddrs.set(iface, added);
    }
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
      .map(([dst, via]) => ({ dst, via }));
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

  /** Felix's per-workload-interface settings, in one sysctl call; retried if the interface is not there yet. */
  private async applyInterfaceSysctls(): Promise<void> {
    if (this.pendingIfaces.size === 0) return;
    const ifaces = [...this.pendingIfaces];
    const r = await this.runner.run(['sysctl', '-qw', ...ifaces.flatMap(workloadSysctls)]);
    // sysctl sets what it can and names what it could not: keep those for the next apply
    for (const i of ifaces) {
      if (r.code !== 0 && r.stderr.includes(i)) continue;
      this.pendingIfaces.delete(i);
      this.configuredIfaces.add(i);
    }
  }

  private async hostMtu(h: HostInfo): Promise<number> {
    const r = await this.runner.run(['ip', '-j', 'addr']);
    const links =
      r.code === 0
        ? (JSON.parse(r.stdout) as Array<LinkJson & { addr_info?: Array<{ local: string }> }>)
        : [];
    return links.find((l) => l.addr_info?.some((a) => a.local === h.ipv4Address))?.mtu ?? 1500;
  }

  private async ensureVxlan(h: HostInfo): Promise<void> {
    const s: VxlanSettings = {
      vni: Number(this.config.vxlanVNI ?? 4096),
      port: Number(this.config.vxlanPort ?? 4789),
      mtu: Number(this.config.vxlanMTU) || tunnelMtu(await this.hostMtu(h), 'vxlan'),
    };
    const cur = await this.runner.run(['ip', '-j', '-d', 'link', 'show', VXLAN_DEVICE]);
    const link = cur.code === 0 ? (JSON.parse(cur.stdout) as LinkJson[])[0] : undefined;
    const d = link?.linkinfo?.info_data;
    const right =
      link &&
      d?.id === s.vni &&
      d.port === s.port &&
      d.local === h.ipv4Address &&
      link.mtu === s.mtu &&
      (!h.vxlanTunnelMACAddr || link.address === h.vxlanTunnelMACAddr);
    if (right) return;
    if (link) await mustRun(this.runner, ['ip', 'link', 'del', VXLAN_DEVICE]);
    for (const c of vxlanDeviceCommands(h, s)) await mustRun(this.runner, c);
    this.vteps = new Map();
  }

  private async ensureIpip(h: HostInfo): Promise<void> {
    const mtu = Number(this.config.ipipMTU) || tunnelMtu(await this.hostMtu(h), 'ipip');
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

  private async applyVteps(): Promise<void> {
    const want = new Map<string, { neigh: string; fdb: string }>();
    for (const s of this.specs.values()) {
      const e = vtepEntries(s);
      if (e) want.set(s.dst, e);
    }
    const neigh: string[] = [];
    const fdb: string[] = [];
    for (const [dst, e] of want) {
      const had = this.vteps.get(dst);
      if (had?.neigh === e.neigh && had.fdb === e.fdb) continue;
      neigh.push(e.neigh);
      fdb.push(e.fdb);
    }
    for (const [dst, e] of this.vteps) {
      if (want.has(dst)) continue;
      neigh.push(
        e.neigh
          .replace('neigh replace', 'neigh del')
          .replace(/ lladdr \S+/, '')
          .replace(' nud permanent', ''),
      );
      fdb.push(
        e.fdb
          .replace('fdb replace', 'fdb del')
          .replace(/ dst \S+/, '')
          .replace(' permanent', ''),
      );
    }
    if (neigh.length)
      await this.runner.run(['ip', '-force', '-batch', '-'], neigh.join('\n') + '\n');
    if (fdb.length)
      await this.runner.run(['bridge', '-force', '-batch', '-'], fdb.join('\n') + '\n');
    this.vteps = want;
  }
}
