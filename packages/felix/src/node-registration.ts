// What calico-node does at startup: write this node's Node resource (BGP address, AS
// number, route-reflector cluster id) and, when a pool uses VXLAN or IPIP, give the
// node a tunnel address from IPAM and a VTEP MAC. Idempotent; compare-and-swap. An
// address another node already has is refused with both names (Calico's
// checkConflictingNodes), unless checkConflicts is false (DISABLE_NODE_IP_CHECK=true).
import { createHash } from 'node:crypto';
import { API_VERSION, type Resource } from '@tortie/api';
import { DatastoreError, type Datastore } from '@tortie/datastore';
import type { IpamClient } from '@tortie/ipam';
import { ipVersionOf, parseIp } from '@tortie/netaddr';

export interface NodeIdentity {
  name: string;
  /** "10.0.0.1/24": the address other nodes and BGP use, with its subnet (none: IP=none). */
  ipv4Address?: string;
  /** "fd00::1/64": the node's IPv6 address, when it has one (BGP sessions over IPv6). */
  ipv6Address?: string;
  asNumber?: number;
  routeReflectorClusterId?: string;
  labels?: Record<string, string>;
}

/** A stable, locally administered MAC for this node's VTEP. */
export function vtepMac(node: string): string {
  const b = createHash('sha256').update(`vtep:${node}`).digest().subarray(0, 6);
  b[0] = (b[0] & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Same address, whatever the prefix or spelling ("10.0.0.1/24" and "10.0.0.1/16" clash). */
function sameAddress(a: string | undefined, b: string | undefined): boolean {
  const ia = a?.split('/')[0];
  const ib = b?.split('/')[0];
  if (!ia || !ib || !ipVersionOf(ia) || !ipVersionOf(ib)) return false;
  const pa = parseIp(ia);
  const pb = parseIp(ib);
  return pa.version === pb.version && pa.value === pb.value;
}

/** Throws naming both nodes when another node has one of this node's addresses. */
async function refuseConflicts(ds: Datastore, id: NodeIdentity): Promise<void> {
  const nodes = (await ds.list({ kind: 'Node' })).items as Resource<'Node'>[];
  const clashes: string[] = [];
  for (const n of nodes) {
    if (n.metadata.name === id.name) continue;
    for (const [family, ours, theirs] of [
      ['IPv4', id.ipv4Address, n.spec.bgp?.ipv4Address],
      ['IPv6', id.ipv6Address, n.spec.bgp?.ipv6Address],
    ] as const) {
      if (sameAddress(ours, theirs))
        clashes.push(
          `node "${id.name}" cannot use the ${family} address ${ours}: node "${n.metadata.name}" already uses ${theirs}`,
        );
    }
  }
  if (clashes.length) throw new Error(`${clashes.join('; ')} (address conflict)`);
}

export async function registerNode(
  ds: Datastore,
  ipam: IpamClient,
  id: NodeIdentity,
  opts: { checkConflicts?: boolean } = {},
): Promise<Resource<'Node'>> {
  if (opts.checkConflicts !== false) await refuseConflicts(ds, id);
  const pools = (await ds.list({ kind: 'IPPool' })).items as Resource<'IPPool'>[];
  const vxlan = pools.some((p) => p.spec.vxlanMode !== 'Never' && !p.spec.disabled);
  const ipip = pools.some((p) => p.spec.ipipMode !== 'Never' && !p.spec.disabled);
  for (let attempt = 0; ; attempt++) {
    const cur = (await ds.get({ kind: 'Node', name: id.name })) as Resource<'Node'> | undefined;
    const spec: Resource<'Node'>['spec'] = structuredClone(cur?.spec ?? {});
    const { ipv4Address: _4, ipv6Address: _6, ...rest } = spec.bgp ?? {};
    spec.bgp = {
      ...rest,
      ...(id.ipv4Address ? { ipv4Address: id.ipv4Address } : {}),
      ...(id.ipv6Address ? { ipv6Address: id.ipv6Address } : {}),
      ...(id.asNumber !== undefined ? { asNumber: id.asNumber } : {}),
      ...(id.routeReflectorClusterId
        ? { routeReflectorClusterID: id.routeReflectorClusterId }
        : {}),
    };
    if (vxlan && !spec.ipv4VXLANTunnelAddr) {
      spec.ipv4VXLANTunnelAddr = await tunnelAddress(ipam, id.name, 'vxlan-tunnel-addr');
    }
    if (vxlan && !spec.vxlanTunnelMACAddr) spec.vxlanTunnelMACAddr = vtepMac(id.name);
    if (ipip && !spec.bgp.ipv4IPIPTunnelAddr) {
      spec.bgp.ipv4IPIPTunnelAddr = await tunnelAddress(ipam, id.name, 'ipip-tunnel-addr');
    }
    const labels = { ...cur?.metadata.labels, ...id.labels };
    const next: Resource<'Node'> = {
      apiVersion: API_VERSION,
      kind: 'Node',
      metadata: { ...(cur?.metadata ?? { name: id.name }), labels },
      spec,
    };
    try {
      return (cur ? await ds.update(next) : await ds.create(next)) as Resource<'Node'>;
    } catch (e) {
      const raced =
        e instanceof DatastoreError && (e.code === 'Conflict' || e.code === 'AlreadyExists');
      if (!raced || attempt > 20) throw e;
    }
  }
}

/** The node's tunnel address: one allocation under a per-node handle, reused when present. */
async function tunnelAddress(ipam: IpamClient, node: string, kind: string): Promise<string> {
  const handleId = `${kind}-${node}`;
  const have = await ipam.ipsByHandle(handleId);
  if (have.length) return have[0];
  const r = await ipam.autoAssign({ handleId, node, num4: 1, attrs: { node, type: kind } });
  return r.ipv4[0];
}
