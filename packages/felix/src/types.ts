// The contract between the calculation graph and the dataplane, shaped like Felix's
// calc -> dataplane protobuf messages. The calculation graph turns datastore updates
// into a stream of these (deltas, never full snapshots after the first in-sync); the
// dataplane managers consume them and make the kernel match.
//
// Everything here is plain data: no selectors, no resources. Selectors have been
// resolved into IP set ids, policies into rule lists, endpoints into interface names.
import type { BgpConfig } from '@tortie/bgp-topology';

/** A port or port range as the dataplane matches it. */
export interface PortRange {
  first: number;
  last: number;
}

/**
 * One policy rule after selector resolution (Felix's proto.Rule). Every selector-ish
 * match (selector, notSelector, namespaceSelector, serviceAccounts, network sets) has
 * become an IP set id; named ports have become named-port IP sets (members
 * "ip,proto:port").
 */
export interface DataplaneRule {
  action: 'allow' | 'deny' | 'pass' | 'log';
  ipVersion?: 4 | 6;
  /** IP protocol number. */
  protocol?: number;
  notProtocol?: number;
  srcNets?: string[];
  notSrcNets?: string[];
  dstNets?: string[];
  notDstNets?: string[];
  /** The packet's source must be in every one of these sets. */
  srcIpSetIds?: string[];
  /** ... and in none of these. */
  notSrcIpSetIds?: string[];
  dstIpSetIds?: string[];
  notDstIpSetIds?: string[];
  srcPorts?: PortRange[];
  notSrcPorts?: PortRange[];
  dstPorts?: PortRange[];
  notDstPorts?: PortRange[];
  /**
   * (ip, proto, port) sets: the source's must be in one of them. Named ports, and a
   * destination `services` match's endpoints on their slice ports (Calico's
   * DstIPPortSetIDs; Calico forbids ports beside it, so "one of" is that one set).
   */
  srcNamedPortIpSetIds?: string[];
  dstNamedPortIpSetIds?: string[];
  /** Named-port sets of notPorts: the (ip, proto, port) must be in none of them. */
  notSrcNamedPortIpSetIds?: string[];
  notDstNamedPortIpSetIds?: string[];
  icmp?: { type?: number; code?: number };
  notIcmp?: { type?: number; code?: number };
  /**
   * Why the rule could not be converted: the dataplane must not program its policy as if
   * the rule were absent (a missing Deny allows more), so it fails the policy closed.
   */
  invalid?: string;
  /** Stable id of the rule (hash of policy id, direction, index, content): the iptables comment. */
  ruleId: string;
}

export type IpSetType = 'hash:net' | 'hash:ip,port';

export type IpSetUpdate =
  | { type: 'ipset-update'; id: string; setType: IpSetType; ipVersion: 4 | 6; members: string[] }
  | { type: 'ipset-delta'; id: string; added: string[]; removed: string[] }
  | { type: 'ipset-remove'; id: string };

/** Policy ids: "<tier>/<namespace>/<name>" for NetworkPolicy, "<tier>/<name>" for global. */
export type PolicyUpdate =
  | {
      type: 'policy-update';
      id: string;
      inbound: DataplaneRule[];
      outbound: DataplaneRule[];
      /** Host-endpoint stages (GlobalNetworkPolicy only). */
      untracked?: boolean;
      preDnat?: boolean;
      applyOnForward?: boolean;
    }
  | { type: 'policy-remove'; id: string }
  | { type: 'profile-update'; id: string; inbound: DataplaneRule[]; outbound: DataplaneRule[] }
  | { type: 'profile-remove'; id: string };

/** The policies of one tier that apply to an endpoint, in order, per direction. */
export interface TierInfo {
  name: string;
  /** What happens when policies of the tier matched the endpoint but no rule decided. */
  defaultAction: 'deny' | 'pass';
  ingressPolicies: string[];
  egressPolicies: string[];
}

export interface WorkloadEndpoint {
  /** "<namespace>/<pod>/<endpoint>" as Calico's workload endpoint key. */
  id: string;
  /** Host-side interface: cali + 11 hex chars. */
  ifaceName: string;
  mac?: string;
  ipv4Nets: string[];
  ipv6Nets: string[];
  tiers: TierInfo[];
  profileIds: string[];
}

export interface HostEndpoint {
  id: string;
  /** Absent or "*" for all-interfaces host endpoints. */
  ifaceName?: string;
  expectedIps: string[];
  tiers: TierInfo[];
  untrackedTiers: TierInfo[];
  preDnatTiers: TierInfo[];
  forwardTiers: TierInfo[];
  profileIds: string[];
}

export type EndpointUpdate =
  | { type: 'workload-update'; endpoint: WorkloadEndpoint }
  | { type: 'workload-remove'; id: string }
  | { type: 'host-endpoint-update'; endpoint: HostEndpoint }
  | { type: 'host-endpoint-remove'; id: string };

/**
 * A route the node should have. `dst` is the key. Kinds:
 * - local-workload: a /32 (/128) to a local pod via its veth
 * - local-block: a block affine to this node (blackhole, so unallocated addresses do not leak out)
 * - remote-block: a block affine to another node, reached directly, via tunl0 (IPIP) or via the VXLAN device
 * - remote-workload: a borrowed address (/32) on another node
 * - remote-tunnel: another node's tunnel address (VXLAN: needs ARP/FDB entries)
 * - bgp-peer: a BGPPeer's peerIP (/32, /128) via its reachableBy gateway, so a peer that is
 *   not directly connected can be reached (confd's static route); the lowest priority
 */
export interface RouteSpec {
  dst: string;
  kind:
    | 'local-workload'
    | 'local-block'
    | 'remote-block'
    | 'remote-workload'
    | 'remote-tunnel'
    | 'bgp-peer';
  /** For local-workload: the veth. */
  ifaceName?: string;
  /** Node the destination lives on. */
  node?: string;
  /** The other node's IP (the BGP next hop / tunnel endpoint). */
  nextHop?: string;
  /** How to reach a remote destination. */
  encap?: 'none' | 'ipip' | 'vxlan';
  /** VXLAN: the other node's tunnel address and VTEP MAC (for the ARP/FDB entries). */
  tunnelAddr?: string;
  vtepMac?: string;
  /** The destination's pool asks for natOutgoing. */
  natOutgoing?: boolean;
}

export type RouteUpdate =
  { type: 'route-update'; route: RouteSpec } | { type: 'route-remove'; dst: string };

export interface IpPoolInfo {
  cidr: string;
  ipip: 'Never' | 'Always' | 'CrossSubnet';
  vxlan: 'Never' | 'Always' | 'CrossSubnet';
  natOutgoing: boolean;
  disableBGPExport: boolean;
}

export type PoolUpdate =
  { type: 'pool-update'; pool: IpPoolInfo } | { type: 'pool-remove'; cidr: string };

/** This node's own facts, for tunnel devices and MTU. */
export interface HostInfo {
  node: string;
  ipv4Address?: string;
  /** Subnet of the node address (for CrossSubnet decisions). */
  ipv4Subnet?: string;
  ipv6Address?: string;
  ipv4IPIPTunnelAddr?: string;
  ipv4VXLANTunnelAddr?: string;
  vxlanTunnelMACAddr?: string;
}

import type { EndpointSlice, Service } from './dataplane/services/model';

/** The BGP settings and peers of this node (BGP glue input): see @tortie/bgp-topology. */
export type { BgpConfig, BgpPeer } from '@tortie/bgp-topology';

export type MiscUpdate =
  | { type: 'host-update'; host: HostInfo }
  /**
   * The addresses of every node in the cluster, this one included (Felix's all-hosts
   * set): only they may send this node IP-in-IP or VXLAN packets.
   */
  | { type: 'host-addresses'; addresses: string[] }
  | { type: 'bgp-update'; bgp: BgpConfig }
  | { type: 'config-update'; config: Record<string, unknown> }
  /** Sent once, after the initial snapshot: nothing is written to the dataplane before it. */
  | { type: 'in-sync' };

/** Services and their endpoints, passed through to the service dataplane. */
export type ServiceUpdate =
  | { type: 'service-update'; id: string; service: Service }
  | { type: 'service-remove'; id: string }
  | { type: 'endpoint-slice-update'; id: string; slice: EndpointSlice }
  | { type: 'endpoint-slice-remove'; id: string };

export type DataplaneUpdate =
  | IpSetUpdate
  | PolicyUpdate
  | EndpointUpdate
  | RouteUpdate
  | PoolUpdate
  | MiscUpdate
  | ServiceUpdate;

/** What the calculation graph talks to: the real dataplane driver or a recording fake. */
export interface DataplaneSink {
  send(u: DataplaneUpdate): void;
}
