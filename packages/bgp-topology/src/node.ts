// A Node resource as BGP sees it.
import type { Resource } from '@tortie/api';
import { formatCidr, parseCidr } from '@tortie/ipam';
import type { BgpNode } from './types';

export function bgpNodeFacts(n: Resource<'Node'>): BgpNode {
  const b = n.spec.bgp;
  const v4 = b?.ipv4Address;
  return {
    name: n.metadata.name,
    ...(v4 ? { ip: v4.split('/')[0] } : {}),
    ...(v4?.includes('/') ? { subnet: formatCidr(parseCidr(v4)) } : {}),
    ...(b?.ipv6Address ? { ipv6: b.ipv6Address.split('/')[0] } : {}),
    labels: n.metadata.labels ?? {},
    ...(b?.asNumber !== undefined ? { asNumber: b.asNumber } : {}),
    ...(b?.routeReflectorClusterID ? { rrClusterId: b.routeReflectorClusterID } : {}),
  };
}
