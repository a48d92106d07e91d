// Routes this node needs, computed per source (one IPAM block, one node's tunnel) so a
// change recomputes only its own routes. Pure.
import type { Resource } from '@tortie/api';
import { blocks as ipamBlocks, containsIp, parseCidr, parseIp } from '@tortie/ipam';
import type { RouteSpec } from '../types';

export interface RouteContext {
  me: string;
  nodes: ReadonlyMap<string, Resource<'Node'>>;
  pools: ReadonlyArray<Resource<'IPPool'>>;
  /** BGP carries direct (unencapsulated) routes to other nodes' blocks. */
  bgpEnabled: boolean;
}

export function nodeIpv4(n: Resource<'Node'> | undefined): string | undefined {
  return n?.spec.bgp?.ipv4Address?.split('/')[0];
}

function inCidr(ip: string, cidr: string): boolean {
  const { version, value } = parseIp(ip);
  return containsIp(parseCidr(cidr), version, value);
}

export function poolOfCidr(pools: ReadonlyArray<Resource<'IPPool'>>, cidr: string) {
  const base = cidr.split('/')[0];
  return pools.find((p) => inCidr(base, p.spec.cidr));
}

/** How to reach `node` for a destination in `pool`: Calico's Always / CrossSubnet rules. */
export function encapFor(
  ctx: RouteContext,
  pool: Resource<'IPPool'> | undefined,
  node: string,
): 'none' | 'ipip' | 'vxlan' {
  if (!pool) return 'none';
  const mine = ctx.nodes.get(ctx.me)?.spec.bgp?.ipv4Address;
  const theirs = nodeIpv4(ctx.nodes.get(node));
  const sameSubnet = !!mine && !!theirs && mine.includes('/') && inCidr(theirs, mine);
  const pick = (mode: string) => mode === 'Always' || (mode === 'CrossSubnet' && !sameSubnet);
  if (pick(pool.spec.vxlanMode)) return 'vxlan';
  if (pick(pool.spec.ipipMode)) return 'ipip';
  return 'none';
}

/** A route to a destination on another node, or undefined when BGP (or nothing) covers it. */
function remoteRoute(
  ctx: RouteContext,
  dst: string,
  kind: 'remote-block' | 'remote-workload',
  node: string,
  pool: Resource<'IPPool'> | undefined,
): RouteSpec | undefined {
  const n = ctx.nodes.get(node);
  const nextHop = nodeIpv4(n);
  if (!nextHop) return undefined;
  const encap = encapFor(ctx, pool, node);
  if (encap === 'none' && ctx.bgpEnabled) return undefined; // learned over BGP instead
  const r: RouteSpec = {
    dst,
    kind,
    node,
    nextHop,
    encap,
    natOutgoing: pool?.spec.natOutgoing ?? false,
  };
  if (encap === 'vxlan') {
    if (!n?.spec.ipv4VXLANTunnelAddr || !n.spec.vxlanTunnelMACAddr) return undefined;
    r.tunnelAddr = n.spec.ipv4VXLANTunnelAddr;
    r.vtepMac = n.spec.vxlanTunnelMACAddr;
  }
  return r;
}

/** The routes one IPAM block gives this node. */
export function blockRoutes(ctx: RouteContext, b: Resource<'IPAMBlock'>): RouteSpec[] {
  const owner = ipamBlocks.affineNode(b.spec);
  const pool = poolOfCidr(ctx.pools, b.spec.cidr);
  const out: RouteSpec[] = [];
  const natOutgoing = pool?.spec.natOutgoing ?? false;
  if (owner === ctx.me)
    out.push({ dst: b.spec.cidr, kind: 'local-block', node: ctx.me, natOutgoing });
  else if (owner !== undefined) {
    const r = remoteRoute(ctx, b.spec.cidr, 'remote-block', owner, pool);
    if (r) out.push(r);
  }
  // addresses borrowed by a node other than the block's: /32s (/128s) to that node
  for (const a of ipamBlocks.allocationsOf(b.spec)) {
    const node = a.attrs.node;
    if (!node || node === owner || node === ctx.me) continue;
    const dst = a.ip.includes(':') ? `${a.ip}/128` : `${a.ip}/32`;
    const r = remoteRoute(ctx, dst, 'remote-workload', node, pool);
    if (r) out.push(r);
  }
  return out;
}

/** VXLAN: the other node's tunnel address, for its ARP and FDB entries. */
export function tunnelRoute(ctx: RouteContext, node: Resource<'Node'>): RouteSpec | undefined {
  if (node.metadata.name === ctx.me) return undefined;
  if (!ctx.pools.some((p) => p.spec.vxlanMode !== 'Never')) return undefined;
  const { ipv4VXLANTunnelAddr: tunnelAddr, vxlanTunnelMACAddr: vtepMac } = node.spec;
  const nextHop = nodeIpv4(node);
  if (!tunnelAddr || !vtepMac || !nextHop) return undefined;
  return {
    dst: `${tunnelAddr}/32`,
    kind: 'remote-tunnel',
    node: node.metadata.name,
    nextHop,
    encap: 'vxlan',
    tunnelAddr,
    vtepMac,
  };
}

/** Blocks (and borrowed addresses) this node originates in BGP. */
export function originatedBy(ctx: RouteContext, b: Resource<'IPAMBlock'>): string[] {
  const pool = poolOfCidr(ctx.pools, b.spec.cidr);
  if (pool?.spec.disableBGPExport) return [];
  const owner = ipamBlocks.affineNode(b.spec);
  const out = owner === ctx.me ? [b.spec.cidr] : [];
  for (const a of ipamBlocks.allocationsOf(b.spec)) {
    if (a.attrs.node === ctx.me && owner !== ctx.me)
      out.push(a.ip.includes(':') ? `${a.ip}/128` : `${a.ip}/32`);
  }
  return out;
}
