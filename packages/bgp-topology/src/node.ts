// A Node resource as BGP sees it: addresses in their canonical text (confd's
// bgpnodeprocessor stores net.IP.String()), so that comparing them is comparing addresses.
import type { Resource } from '@tortie/api';
import { formatCidr, parseCidr } from '@tortie/netaddr';
import { canonicalIp } from './address';
import type { BgpNode } from './types';

export function bgpNodeFacts(n: Resource<'Node'>): BgpNode {
  const b = n.spec.bgp;
  const v4 = b?.ipv4Address;
  const ip = v4 ? canonicalIp(v4.split('/')[0]) : undefined;
  const ipv6 = b?.ipv6Address ? canonicalIp(b.ipv6Address.split('/')[0]) : undefined;
  return {
    name: n.metadata.name,
    ...(ip ? { ip } : {}),
    ...(v4?.includes('/') ? { subnet: formatCidr(parseCidr(v4)) } : {}),
    ...(ipv6 ? { ipv6 } : {}),
    labels: n.metadata.labels ?? {},
    ...(b?.asNumber !== undefined ? { asNumber: b.asNumber } : {}),
    ...(b?.routeReflectorClusterID ? { rrClusterId: b.routeReflectorClusterID } : {}),
  };
}
