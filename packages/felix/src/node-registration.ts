// What calico-node does at startup: write this node's Node resource (BGP address, AS
// number, route-reflector cluster id) and, when a pool uses VXLAN or IPIP, give the
// node a tunnel address from IPAM and a VTEP MAC. Idempotent; compare-and-swap.
import { createHash } from 'node:crypto';
import { API_VERSION, type Resource } from '@tortie/api';
import { DatastoreError, type Datastore } from '@tortie/datastore';
import type { IpamClient } from '@tortie/ipam';

export interface NodeIdentity {
  name: string;
  /** "10.0.0.1/24": the address other nodes and BGP use, with its subnet. */
  ipv4Address: string;
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

export async function registerNode(
  ds: Datastore,
  ipam: IpamClient,
  id: NodeIdentity,
): Promise<Resource<'Node'>> {
  const pools = (await ds.list({ kind: 'IPPool' })).items as Resource<'IPPool'>[];
  const vxlan = pools.some((p) => p.spec.vxlanMode !== 'Never' && !p.spec.disabled);
  const ipip = pools.some((p) => p.spec.ipipMode !== 'Never' && !p.spec.disabled);
  for (let attempt = 0; ; attempt++) {
    const cur = (await ds.get({ kind: 'Node', name: id.name })) as Resource<'Node'> | undefined;
    const spec: Resource<'Node'>['spec'] = structuredClone(cur?.spec ?? {});
    spec.bgp = {
      ...spec.bgp,
      ipv4Address: id.ipv4Address,
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
