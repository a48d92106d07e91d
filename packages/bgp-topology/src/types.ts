// What the topology computes for one node: its BGP settings and peers, plain data. The
// node agent's BGP glue and tortie-rr turn it into a speaker configuration.
import type { FilterRule } from '@tortie/bgp-speaker';
import type { CommunityRule } from './communities';
import type { BgpLogLevel } from './settings';
/** The facts of a Node that BGP needs (the agent's NodeFacts carry these and more). */
export interface BgpNode {
  name: string;
  /** The node's IPv4 address (Node spec.bgp.ipv4Address without its prefix), canonical. */
  ip?: string;
  /** Network of the node's IPv4 address prefix ("10.0.0.0/24"), when it has one. */
  subnet?: string;
  /** The node's IPv6 address (spec.bgp.ipv6Address without its prefix), canonical. */
  ipv6?: string;
  labels: Record<string, string>;
  asNumber?: number;
  rrClusterId?: string;
}

/** One BGP session this node should have; a session is keyed by address and port. */
export interface BgpPeer {
  /** Stable name: "mesh-<ip>", "global-<BGPPeer name>", "node-<BGPPeer name>", "rr-<ip>". */
  name: string;
  /** Its family is the session's: IPv4 unicast over IPv4, IPv6 unicast over IPv6. */
  address: string;
  /** The peer's listen port: a node's from its BGPConfiguration, else the peerIP's. */
  port: number;
  asNumber: number;
  /** The AS we are towards this peer, when not the node's (a peerIP BGPPeer's localASNumber). */
  localAsNumber?: number;
  /** We reflect to this peer (we are an RR and it is a client). */
  rrClient?: boolean;
  /**
   * Our address the session's TCP connection is bound to (confd's `source address`): the
   * node's address in the session's family, unless a BGPPeer says sourceAddress None.
   */
  sourceAddress?: string;
  /**
   * A peerIP BGPPeer's reachableBy: the gateway through which the peer's address is
   * reached (confd renders `route <peerIP>/32 via <reachableBy>`; the agent programs it).
   */
  reachableBy?: string;
  /** Wait for the peer to connect (the lexically lower address waits: context.ts). */
  passive?: boolean;
  ttlSecurity?: number;
  /** Pass on the original next hop, not ours (nextHopMode Keep; keepOriginalNextHop to eBGP). */
  keepOriginalNextHop?: boolean;
  /** Always send our own address as next hop, iBGP too (nextHopMode Self). */
  nextHopSelf?: boolean;
  /** Our AS may appear this many times in the peer's paths (numAllowedLocalASNumbers). */
  allowOwnAs?: number;
  /** BGPFilter rules for routes from this peer, of the session's family, in order. */
  importFilter?: FilterRule[];
  /** BGPFilter rules for routes to this peer, of the session's family, in order. */
  exportFilter?: FilterRule[];
  /** Seconds between our KEEPALIVEs (a BGPPeer's keepaliveTime, BIRD's `keepalive time`). */
  keepaliveS?: number;
  /** Graceful restart time we announce (maxRestartTime, nodeMeshMaxRestartTime, else 120 s). */
  restartTimeS: number;
  /** BFD under the session (BGPConfiguration default's bfd, a BGPPeer's over it). */
  bfd?: BfdTiming;
  /** TCP-MD5 key: where it is (BGPPeer password, BGPConfiguration nodeMeshPassword). */
  password?: SecretRef;
  /** The key itself, once read (resolvePasswords): what the speaker is given. */
  md5Key?: string;
}

/** A key of a Secret (Calico's secretKeyRef). */
export interface SecretRef {
  name: string;
  key: string;
}

/** A BFD session's timers, in the speaker's terms. */
export interface BfdTiming {
  minTxMs: number;
  minRxMs: number;
  multiplier: number;
}

export interface BgpConfig {
  enabled: boolean;
  asNumber: number;
  /** CALICO_ROUTER_ID, else the node's IPv4 address. */
  routerId?: string;
  /** The node's own addresses: next hops of what it originates and of next-hop-self. */
  ipv4Address?: string;
  ipv6Address?: string;
  listenPort: number;
  /** From BGPConfiguration logSeverityScreen (default info). */
  logLevel?: BgpLogLevel;
  /** Set when this node is a route reflector. */
  routeReflectorClusterId?: string;
  /** The node's IPv4 subnet (eBGP peers in it get third-party next hops). */
  localSubnet?: string;
  peers: BgpPeer[];
  /** Prefixes this node originates: its affine blocks, borrowed /32s, service IPs. */
  originate: string[];
  /**
   * BGPConfiguration prefixAdvertisements of this node (its `node.<name>` configuration's,
   * else the default's): every route exported on any session inside a rule's CIDR gets
   * its communities ("aa:nn", "aa:nn:mm") after the session's export filter, as confd's
   * apply_communities(). Absent when there are none.
   */
  communities?: CommunityRule[];
  /**
   * Local workloads that peer with this node (BGPPeer localWorkloadSelector): the ids of
   * their endpoints and BGPConfiguration default's localWorkloadPeeringIPV4/IPV6, the
   * address the agent puts on their host-side interfaces for them to dial. Absent when none.
   */
  localWorkloadPeering?: { ipv4?: string; ipv6?: string; endpoints: string[] };
  /**
   * BGPConfiguration default's ipv4NormalRoutePriority / ipv6NormalRoutePriority when
   * set (see `normalRoutePriority()`: 1024 otherwise): the priority of the node's own
   * routes, sent to iBGP peers as LOCAL_PREF 2^31-1 - priority, as confd's export does.
   */
  normalRoutePriority?: { ipv4?: number; ipv6?: number };
}
