import type { PathAttributes, Prefix } from '../types';
import type { RouteFilter } from './route-filter';

/** What the RIBs know of a peer. */
export interface PeerInfo {
  /** Unique key: the peer's peerKey (its address, with the port when not 179). */
  id: string;
  address: string;
  asn: number;
  /** The peer's BGP identifier, known once the session is up. */
  routerId: string;
  localAsn: number;
  /** Our addresses per family, used as next hop for next-hop-self. */
  localAddress: { ipv4?: string; ipv6?: string };
  /** Our address on the session with this peer (a NEXT_HOP equal to it is refused). */
  localEndpoint?: string;
  /** asn === localAsn. */
  ibgp: boolean;
  /** RFC 4456: this peer is a route-reflector client of ours. */
  rrClient?: boolean;
  /** Rewrite the next hop to ours also on iBGP. */
  nextHopSelf?: boolean;
  /** Pass on the next hop a route came with, to eBGP peers too (BIRD's `next hop keep`). */
  nextHopKeep?: boolean;
  /**
   * The IPv4 subnet we share with this (eBGP) peer: a next hop inside it is passed on
   * unchanged, RFC 4271 §5.1.3's "third party" next hop (BIRD does the same), so the peer
   * sends traffic straight to the router that has the route instead of through us.
   */
  sharedSubnet?: string;
  /** How many times our AS may appear in a path from this peer (BIRD's "allow local as"). */
  allowOwnAs?: number;
  /** Routes from this peer pass these rules first (Calico's BGPFilter import rules). */
  importFilter?: RouteFilter;
  /** Routes to this peer pass these rules first (Calico's BGPFilter export rules). */
  exportFilter?: RouteFilter;
  /** Our interface towards this peer: the outgoing interface of the routes it sends. */
  iface?: string;
}

/**
 * One candidate route of a prefix: who it came from (undefined = originated here) and
 * its interned attributes. Paths are shared: all prefixes a peer sent with one
 * attribute set point to the same Path, so a route costs one pointer per RIB.
 */
export interface Path {
  readonly peer?: PeerInfo;
  readonly attrs: PathAttributes;
}

export interface Route extends Path {
  readonly prefix: Prefix;
}

/** A prefix whose best path changed; `best` undefined: no longer reachable. */
export interface BestPathChange {
  prefix: Prefix;
  best?: Path;
  previous?: Path;
}

/** What to send a peer: withdrawals, and announcements grouped by shared attributes. */
export interface ExportBatch {
  withdrawn: Prefix[];
  announce: Array<{ attrs: PathAttributes; prefixes: Prefix[] }>;
}

/** Who we are, for loop checks on import and attribute rewriting on export. */
export interface LocalIdentity {
  asn: number;
  routerId: string;
  /** Set when this speaker is a route reflector (RFC 4456); defaults to routerId in checks. */
  clusterId?: string;
}

/** Says whether an iBGP-learned route from `from` may be reflected to iBGP peer `to`. */
export type ReflectRule = (from: PeerInfo, to: PeerInfo) => boolean;

/** IGP metric to a next hop (RFC 4271 §9.1.2.2 e); lower wins. */
export type IgpCost = (nextHop: string) => number;
