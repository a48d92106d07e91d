// Shared value types of the speaker: messages as the codec produces them, path
// attributes as the RIBs hold them. Everything here is plain data (no methods) so it
// can be logged, compared and sent over the control socket as JSON.

/** Address family (RFC 4760): 1 = IPv4, 2 = IPv6. Only unicast (SAFI 1) is carried. */
export type Afi = 1 | 2;
export const AFI_IPV4: Afi = 1;
export const AFI_IPV6: Afi = 2;
export const SAFI_UNICAST = 1;

/**
 * A prefix in canonical text form: "10.0.0.0/24", "2001:db8::/32" (host bits zero,
 * IPv6 in RFC 5952 form). Strings make cheap Map keys and readable logs; the family
 * is the presence of ':'.
 */
export type Prefix = string;

export enum Origin {
  IGP = 0,
  EGP = 1,
  INCOMPLETE = 2,
}

export enum AsPathSegmentType {
  AS_SET = 1,
  AS_SEQUENCE = 2,
  AS_CONFED_SEQUENCE = 3,
  AS_CONFED_SET = 4,
}

export interface AsPathSegment {
  type: AsPathSegmentType;
  asns: number[];
}

/** A path attribute this implementation does not interpret, kept to pass it on. */
export interface UnknownAttribute {
  flags: number;
  typeCode: number;
  value: Buffer;
}

/**
 * The path attributes of a route. The AS path is always held with 4-octet ASNs: the
 * codec merges AS_PATH and AS4_PATH (RFC 6793) on input and splits them on output
 * for peers without the 4-octet capability. MP_REACH/MP_UNREACH are not here: they
 * are NLRI carriers and live on the UpdateMessage.
 */
export interface PathAttributes {
  origin: Origin;
  asPath: AsPathSegment[];
  /** IPv4 NEXT_HOP (type 3), or for MP routes the MP_REACH next hop(s). */
  nextHop?: string;
  /** IPv6 link-local next hop that may follow the global one in MP_REACH. */
  nextHopLinkLocal?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asn: number; address: string };
  communities?: number[];
  largeCommunities?: Array<[number, number, number]>;
  originatorId?: string;
  clusterList?: string[];
  unknown?: UnknownAttribute[];
}

export interface MpReach {
  afi: Afi;
  safi: number;
  nextHop: string;
  nextHopLinkLocal?: string;
  nlri: Prefix[];
}

export interface MpUnreach {
  afi: Afi;
  safi: number;
  withdrawn: Prefix[];
}

export type Capability =
  | { code: 'multiprotocol'; afi: number; safi: number }
  | { code: 'route-refresh' }
  | { code: 'enhanced-route-refresh' }
  | { code: 'as4'; asn: number }
  | {
      code: 'graceful-restart';
      restarting: boolean;
      restartTime: number;
      families: Array<{ afi: number; safi: number; forwardingPreserved: boolean }>;
    }
  | { code: 'extended-nexthop'; entries: Array<{ afi: number; safi: number; nextHopAfi: number }> }
  | { code: 'unknown'; type: number; value: Buffer };

export interface OpenMessage {
  type: 'open';
  version: number;
  /** The 2-octet "My Autonomous System" field (AS_TRANS 23456 when the real ASN is > 65535). */
  myAs: number;
  holdTime: number;
  routerId: string;
  capabilities: Capability[];
}

export interface UpdateMessage {
  type: 'update';
  withdrawn: Prefix[];
  /** null when the UPDATE carries no path attributes (pure withdrawal or End-of-RIB). */
  attributes: PathAttributes | null;
  nlri: Prefix[];
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /**
   * Set by the decoder when RFC 7606 says "treat-as-withdraw": every prefix announced
   * in this UPDATE must be handled as withdrawn. The reason is for the log.
   */
  treatAsWithdraw?: string;
  /** RFC 7606 "attribute discard": attributes dropped while decoding, for the log. */
  discarded?: string[];
  /**
   * Multicast prefixes left out of `nlri` and `mpReach` (RFC 4271 §6.3: a semantically
   * incorrect prefix is logged and ignored), for the log.
   */
  ignored?: Prefix[];
  /**
   * The whole message as received, kept only when it was treat-as-withdraw or had an
   * attribute discarded: RFC 7606 §6 asks that it be logged.
   */
  raw?: Buffer;
}

export interface NotificationMessage {
  type: 'notification';
  code: number;
  subcode: number;
  data: Buffer;
}

export interface KeepaliveMessage {
  type: 'keepalive';
}

export interface RouteRefreshMessage {
  type: 'route-refresh';
  afi: number;
  /** RFC 7313 demarcation: 0 normal, 1 BoRR, 2 EoRR. */
  subtype: number;
  safi: number;
}

export type BgpMessage =
  OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

/** What the codec needs to know about a session to read or write an UPDATE. */
export interface CodecContext {
  /** Both sides sent the 4-octet AS capability (RFC 6793): AS_PATH carries 4-octet ASNs. */
  as4: boolean;
  /**
   * The peer is in another AS: LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST from it are
   * discarded (RFC 7606 §7.5, §7.9, §7.10). Unset: an internal peer.
   */
  external?: boolean;
  /**
   * The AS every received AS_PATH must start with (RFC 4271 §6.3's optional check on an
   * external peer; RFC 7606 §7.2: treat-as-withdraw otherwise). Unset: not checked.
   */
  firstAs?: number;
}
