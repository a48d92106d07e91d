// Routes, pools and host facts (Felix's L3 route resolver + VXLAN resolver). Each IPAM
// block gives its own routes (a local blackhole, a route to the node it is affine to,
// /32s for addresses other nodes borrowed from it) and its originated prefixes; each
// other node gives a VXLAN tunnel route. A change recomputes only what it touches:
// a block its routes, a node the blocks it owns or borrows from and its tunnel route;
// this node's own address or a pool (rare) everything.
import type { Resource } from '@tortie/api';
import { bgpNodeFacts, type BgpConfig, type BgpNode } from '@tortie/bgp-topology';
import { blocks as ipamBlocks, containsIp, parseCidr, parseIp } from '@tortie/ipam';
import type { HostInfo, IpPoolInfo, RouteSpec } from '../types';

/** A node as the route resolver sees it: its BGP facts, plus its tunnel addresses. */
export interface NodeFacts extends BgpNode {
  ipipAddr?: string;
  vxlanAddr?: string;
  vxlanMac?: string;
}

export function nodeFacts(n: Resource<'Node'>): NodeFacts {
  return {
    ...bgpNodeFacts(n),
    ...(n.spec.bgp?.ipv4IPIPTunnelAddr ? { ipipAddr: n.spec.bgp.ipv4IPIPTunnelAddr } : {}),
    ...(n.spec.ipv4VXLANTunnelAddr ? { vxlanAddr: n.spec.ipv4VXLANTunnelAddr } : {}),
    ...(n.spec.vxlanTunnelMACAddr ? { vxlanMac: n.spec.vxlanTunnelMACAddr } : {}),
  };
}

/** Every node's addresses, sorted, each once (Felix's all-hosts set). */
export function hostAddresses(nodes: Iterable<NodeFacts>): string[] {
  const out = new Set<string>();
  for (const n of nodes) {
    if (n.ip) out.add(n.ip);
    if (n.ipv6) out.add(n.ipv6);
  }
  return [...out].sort();
}

export function poolInfo(p: Resource<'IPPool'>): IpPoolInfo {
  return {
    cidr: p.spec.cidr,
    ipip: p.spec.ipipMode,
    vxlan: p.spec.vxlanMode,
    natOutgoing: p.spec.natOutgoing,
    disableBGPExport: p.spec.disableBGPExport,
  };
}

export function hostInfo(me: string, n: NodeFacts | undefined): HostInfo {
  return {
    node: me,
    ...(n?.ip ? { ipv4Address: n.ip } : {}),
    ...(n?.subnet ? { ipv4Subnet: n.subnet } : {}),
    ...(n?.ipv6 ? { ipv6Address: n.ipv6 } : {}),
    ...(n?.ipipAddr ? { ipv4IPIPTunnelAddr: n.ipipAddr } : {}),
    ...(n?.vxlanAddr ? { ipv4VXLANTunnelAddr: n.vxlanAddr } : {}),
    ...(n?.vxlanMac ? { vxlanTunnelMACAddr: n.vxlanMac } : {}),
  };
}

function inCidr(ip: string, cidr: string): boolean {
  const { version, value } = parseIp(ip);
  return containsIp(parseCidr(cidr), version, value);
}

const hostRoute = (ip: string) => (ip.includes(':') ? `${ip}/128` : `${ip}/32`);

export interface RouteWorld {
  me: string;
  node(name: string): NodeFacts | undefined;
  /** The pool holding a CIDR. */
  poolOf(cidr: string): IpPoolInfo | undefined;
  /** Emit remote routes that need no tunnel (false when BGP-learned routes install them). */
  directRoutes: boolean;
}

/** Calico's Always / CrossSubnet: tunnel to `to` unless CrossSubnet and it is in our subnet. */
export function encapFor(w: RouteWorld, pool: IpPoolInfo | undefined, to: NodeFacts) {
  if (!pool) return 'none' as const;
  const mine = w.node(w.me)?.subnet;
  const same = mine !== undefined && to.ip !== undefined && inCidr(to.ip, mine);
  const on = (mode: string) => mode === 'Always' || (mode === 'CrossSubnet' && !same);
  if (on(pool.vxlan)) return 'vxlan' as const;
  if (on(pool.ipip)) return 'ipip' as const;
  return 'none' as const;
}

function remoteRoute(
  w: RouteWorld,
  dst: string,
  kind: 'remote-block' | 'remote-workload',
  nodeName: string,
  pool: IpPoolInfo | undefined,
): RouteSpec | undefined {
  const n = w.node(nodeName);
  // IPv6 destinations go to the node's IPv6 address, unencapsulated (IPIP is IPv4 only
  // and the resources carry no IPv6 VTEP)
  const v6 = dst.includes(':');
  const nextHop = v6 ? n?.ipv6 : n?.ip;
  if (!n || !nextHop) return undefined; // no address: nowhere to send it yet
  const encap = v6 ? 'none' : encapFor(w, pool, n);
  if (encap === 'none' && !w.directRoutes) return undefined;
  const r: RouteSpec = {
    dst,
    kind,
    node: nodeName,
    nextHop,
    encap,
    natOutgoing: pool?.natOutgoing ?? false,
  };
  if (encap === 'vxlan') {
    if (!n.vxlanAddr || !n.vxlanMac) return undefined;
    r.tunnelAddr = n.vxlanAddr;
    r.vtepMac = n.vxlanMac;
  }
  return r;
}

/** A block as the route resolver sees it. */
export interface BlockFacts {
  cidr: string;
  /** Affine node: the block's "host:<node>", else a confirmed BlockAffinity. */
  owner?: string;
  /** Allocated addresses and the node the allocation says it is for. */
  allocations: Array<{ ip: string; node?: string }>;
}

export function blockFacts(b: Resource<'IPAMBlock'>): BlockFacts {
  return {
    cidr: b.spec.cidr,
    owner: ipamBlocks.affineNode(b.spec),
    allocations: ipamBlocks
      .allocationsOf(b.spec)
      .map((a) => ({ ip: a.ip, ...(a.attrs.node ? { node: a.attrs.node } : {}) })),
  };
}

/** Nodes a block's routes depend on (its owner and its borrowers). */
export function blockNodes(b: BlockFacts): string[] {
  const out = new Set<string>();
  if (b.owner) out.add(b.owner);
  for (const a of b.allocations) if (a.node) out.add(a.node);
  return [...out];
}

/** The routes one block gives this node. Pure. */
export function blockRoutes(w: RouteWorld, b: BlockFacts): RouteSpec[] {
  const pool = w.poolOf(b.cidr);
  const out: RouteSpec[] = [];
  if (b.owner === w.me)
    out.push({
      dst: b.cidr,
      kind: 'local-block',
      node: w.me,
      natOutgoing: pool?.natOutgoing ?? false,
    });
  else if (b.owner !== undefined) {
    const r = remoteRoute(w, b.cidr, 'remote-block', b.owner, pool);
    if (r) out.push(r);
  }
  // an address another node borrowed from this block: a /32 to that node
  for (const a of b.allocations) {
    if (!a.node || a.node === b.owner || a.node === w.me) continue;
    const r = remoteRoute(w, hostRoute(a.ip), 'remote-workload', a.node, pool);
    if (r) out.push(r);
  }
  return out;
}

/** Prefixes this node originates for a block: its own blocks, addresses it borrowed. */
export function blockOriginates(w: RouteWorld, b: BlockFacts): string[] {
  if (w.poolOf(b.cidr)?.disableBGPExport) return [];
  if (b.owner === w.me) return [b.cidr];
  return b.allocations.filter((a) => a.node === w.me).map((a) => hostRoute(a.ip));
}

/** VXLAN: another node's tunnel address, with the VTEP MAC for its ARP/FDB entries. */
export function tunnelRoute(w: RouteWorld, n: NodeFacts, vxlanInUse: boolean) {
  if (!vxlanInUse || n.name === w.me || !n.ip || !n.vxlanAddr || !n.vxlanMac) return undefined;
  const r: RouteSpec = {
    dst: hostRoute(n.vxlanAddr),
    kind: 'remote-tunnel',
    node: n.name,
    nextHop: n.ip,
    encap: 'vxlan',
    tunnelAddr: n.vxlanAddr,
    vtepMac: n.vxlanMac,
  };
  return r;
}

/** The pool containing a CIDR, among a few pools. */
export function poolContaining(pools: Iterable<IpPoolInfo>, cidr: string): IpPoolInfo | undefined {
  const c = parseCidr(cidr);
  for (const p of pools) {
    const pc = parseCidr(p.cidr);
    if (c.prefix >= pc.prefix && containsIp(pc, c.version, c.base)) return p;
  }
  return undefined;
}

/**
 * BGPPeer reachableBy: a route to the peer's address through the gateway, as confd
 * renders `route <peerIP>/32 via <reachableBy>` into BIRD's static protocol
 * (bird_aggr.cfg.template), so that a peer that is not directly connected is reached.
 * Only while BGP runs (computeBgp gives no peers otherwise).
 */
export function bgpPeerRoutes(bgp: BgpConfig): RouteSpec[] {
  const out = new Map<string, RouteSpec>();
  for (const p of bgp.peers) {
    if (!p.reachableBy) continue;
    const dst = hostRoute(p.address);
    // two sessions to one address (different ports): the first gateway, as BIRD keeps one
    if (!out.has(dst))
      out.set(dst, { dst, kind: 'bgp-peer', nextHop: p.reachableBy, encap: 'none' });
  }
  return [...out.values()];
}
