import type { PathAttributes, Prefix } from '../types';

/** What the RIBs know of a peer. */
export interface PeerInfo {
  /** Unique key (the peer address). */
  id: string;
  address: string;
  asn: number;
  /** The peer's BGP identifier, known once the session is up. */
  routerId: string;
  localAsn: number;
  /** Our addresses per family, used as next hop for next-hop-self. */
  localAddress: { ipv4?: string; ipv6?: string };
  ibgp: boolean;
  /** RFC 4456: this peer is a route-reflector client of ours. */
  rrClient?: boolean;
  /** Rewrite the next hop to ours also on iBGP. */
  nextHopSelf?: boolean;
}

/** One candidate route: who it came from (undefined = originated here) and its attributes. */
export interface Path {
  readonly peer?: PeerInfo;
  readonly attrs: PathAttributes;
}

export interface Route extends Path {
  readonly prefix: Prefix;
}

export interface BestPathChange {
  prefix: Prefix;
  /** undefined: the prefix is no longer reachable. */
  best?: Path;
  previous?: Path;
}

/** What to send a peer: withdrawals, and announcements grouped by shared attributes. */
export interface ExportBatch {
  withdrawn: Prefix[];
  announce: Array<{ attrs: PathAttributes; prefixes: Prefix[] }>;
}
