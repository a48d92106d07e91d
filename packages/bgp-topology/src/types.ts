// What the topology computes for one node: its BGP settings and peers, plain data. The
// node agent's BGP glue and tortie-rr turn it into a speaker configuration.

/** The facts of a Node that BGP needs (the agent's NodeFacts carry these and more). */
export interface BgpNode {
  name: string;
  /** The node's IPv4 address (Node spec.bgp.ipv4Address without its prefix). */
  ip?: string;
  /** Network of the node's IPv4 address prefix ("10.0.0.0/24"), when it has one. */
  subnet?: string;
  ipv6?: string;
  labels: Record<string, string>;
  asNumber?: number;
  rrClusterId?: string;
}

/** One BGP session this node should have. */
export interface BgpPeer {
  /** Stable name: "mesh-<ip>", "global-<BGPPeer name>", "node-<BGPPeer name>", "rr-<ip>". */
  name: string;
  address: string;
  port?: number;
  asNumber: number;
  /** We reflect to this peer (we are an RR and it is a client). */
  rrClient?: boolean;
  /** Wait for the peer to connect (mesh: the node with the higher IP is passive). */
  passive?: boolean;
  ttlSecurity?: number;
  keepOriginalNextHop?: boolean;
}

export interface BgpConfig {
  enabled: boolean;
  asNumber: number;
  routerId?: string;
  listenPort: number;
  /** Set when this node is a route reflector. */
  routeReflectorClusterId?: string;
  /** The node's IPv4 subnet (eBGP peers in it get third-party next hops). */
  localSubnet?: string;
  peers: BgpPeer[];
  /** Prefixes this node originates: its affine blocks, borrowed /32s, service IPs. */
  originate: string[];
}
