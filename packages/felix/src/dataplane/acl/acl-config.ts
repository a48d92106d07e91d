// The settings of the ACL dataplane, read from config-update (FelixConfiguration fields,
// merged global + node by the calculation graph) with Calico's defaults. Pure.
import { cidrProblem } from '@tortie/netaddr';
import { CHOICES, isTrue, oneOf, parseHostPorts, type HostPort } from '../../config';
import { allocateMarks, DEFAULT_MARK_MASK } from './marks';
import type { EndpointToHostAction } from './static-chains';

export interface AclConfig {
  defaultEndpointToHostAction: EndpointToHostAction;
  failsafeInboundHostPorts: HostPort[];
  failsafeOutboundHostPorts: HostPort[];
  iptablesBackend: 'Legacy' | 'NFT' | 'Auto';
  iptablesMarkMask: number;
  /** undefined: IPv6 when an IPv6 pool or endpoint address exists */
  ipv6Support?: boolean;
  /** Besides the nodes, who may send IP-in-IP/VXLAN to this node (Felix's setting). */
  externalNodesCIDRList: string[];
  vxlanPort: number;
  /** Felix drops IP-in-IP / VXLAN that workloads send unless these allow it. */
  allowIPIPPacketsFromWorkloads: boolean;
  allowVXLANPacketsFromWorkloads: boolean;
}

const tcp = (port: number): HostPort => ({ protocol: 'TCP', port });
const udp = (port: number): HostPort => ({ protocol: 'UDP', port });

export const DEFAULT_ACL_CONFIG: AclConfig = {
  defaultEndpointToHostAction: 'Drop',
  failsafeInboundHostPorts: [
    tcp(22),
    udp(68),
    tcp(179),
    tcp(2379),
    tcp(2380),
    tcp(5473),
    tcp(6443),
    tcp(6666),
    tcp(6667),
  ],
  failsafeOutboundHostPorts: [
    udp(53),
    udp(67),
    tcp(179),
    tcp(2379),
    tcp(2380),
    tcp(5473),
    tcp(6443),
    tcp(6666),
    tcp(6667),
  ],
  iptablesBackend: 'Auto',
  iptablesMarkMask: DEFAULT_MARK_MASK,
  externalNodesCIDRList: [],
  vxlanPort: 4789,
  allowIPIPPacketsFromWorkloads: false,
  allowVXLANPacketsFromWorkloads: false,
};

/** Calico's defaults overlaid with what config-update says; bad values are named. */
export function aclConfig(raw: Record<string, unknown>): AclConfig {
  const c: AclConfig = { ...DEFAULT_ACL_CONFIG };
  if (raw.defaultEndpointToHostAction !== undefined)
    c.defaultEndpointToHostAction = oneOf(
      'defaultEndpointToHostAction',
      raw.defaultEndpointToHostAction,
      CHOICES.defaultEndpointToHostAction,
    );
  if (raw.failsafeInboundHostPorts !== undefined)
    c.failsafeInboundHostPorts = parseHostPorts(
      'failsafeInboundHostPorts',
      raw.failsafeInboundHostPorts,
    );
  if (raw.failsafeOutboundHostPorts !== undefined)
    c.failsafeOutboundHostPorts = parseHostPorts(
      'failsafeOutboundHostPorts',
      raw.failsafeOutboundHostPorts,
    );
  if (raw.iptablesBackend !== undefined)
    c.iptablesBackend = oneOf('iptablesBackend', raw.iptablesBackend, CHOICES.iptablesBackend);
  if (raw.iptablesMarkMask !== undefined) {
    const n =
      typeof raw.iptablesMarkMask === 'number'
        ? raw.iptablesMarkMask
        : Number(raw.iptablesMarkMask);
    if (!Number.isInteger(n) || n <= 0 || n > 0xffffffff)
      throw new Error(`iptablesMarkMask: "${String(raw.iptablesMarkMask)}" is not a 32-bit mask`);
    allocateMarks(n); // names a mask with too few bits
    c.iptablesMarkMask = n;
  }
  if (raw.ipv6Support !== undefined) c.ipv6Support = isTrue(raw.ipv6Support);
  if (raw.allowIPIPPacketsFromWorkloads !== undefined)
    c.allowIPIPPacketsFromWorkloads = isTrue(raw.allowIPIPPacketsFromWorkloads);
  if (raw.allowVXLANPacketsFromWorkloads !== undefined)
    c.allowVXLANPacketsFromWorkloads = isTrue(raw.allowVXLANPacketsFromWorkloads);
  // FelixConfiguration's field is externalNodesList; FELIX_EXTERNALNODESCIDRLIST its env form
  if (raw.externalNodesList !== undefined)
    c.externalNodesCIDRList = cidrList('externalNodesList', raw.externalNodesList);
  else if (raw.externalNodesCIDRList !== undefined)
    c.externalNodesCIDRList = cidrList('externalNodesCIDRList', raw.externalNodesCIDRList);
  if (raw.vxlanPort !== undefined) {
    const n = Number(raw.vxlanPort);
    if (!Number.isInteger(n) || n < 1 || n > 65535)
      throw new Error(`vxlanPort: "${String(raw.vxlanPort)}" is not a port (1-65535)`);
    c.vxlanPort = n;
  }
  return c;
}

/** A list of addresses or CIDRs, given as an array or (environment) comma-separated. */
function cidrList(field: string, raw: unknown): string[] {
  const items = Array.isArray(raw) ? raw : String(raw).split(',');
  return items.map((x) => {
    const s = String(x).trim();
    const problem = cidrProblem(s);
    if (problem) throw new Error(`${field}: ${problem}`);
    return s;
  });
}
