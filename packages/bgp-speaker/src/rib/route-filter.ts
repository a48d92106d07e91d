// Per-peer import and export filters, as Calico's BGPFilter rules rendered into BIRD
// functions (confd template_funcs.go filterStatement): the rules of the route's family
// are tried in order, the first whose conditions all hold decides (Accept or Reject),
// and a route no rule matches gets the default (import: accepted; export: the normal
// export policy). Calico chains one function per BGPFilter; each falls through when
// none of its rules match, so one list of all their rules in order is the same thing.
// Pure.
import { ipv4ToNumber, parseIpv6 } from '../prefix';
import type { Prefix } from '../types';

export type MatchOperator = 'Equal' | 'NotEqual' | 'In' | 'NotIn';

export interface FilterRule {
  /** A canonical prefix; with matchOperator, the route's prefix is compared to it. */
  cidr?: Prefix;
  matchOperator?: MatchOperator;
  /** With cidr: the prefix lengths that match (BIRD's `cidr{min,max}` prefix set). */
  prefixLength?: { min?: number; max?: number };
  /** Only routes learned from a BGP peer (BIRD's `source ~ [ RTS_BGP ]`). */
  source?: 'RemotePeers';
  /** Only routes whose outgoing interface matches this pattern (`*`, `?` wildcards). */
  interface?: string;
  /** Only towards / from peers of this type (BIRD's is_same_as guard). */
  peerType?: 'iBGP' | 'eBGP';
  action: 'Accept' | 'Reject';
}

/** A peer's rules per family: IPv4 routes meet `ipv4`, IPv6 routes `ipv6`. */
export interface RouteFilter {
  ipv4?: readonly FilterRule[];
  ipv6?: readonly FilterRule[];
}

/** What a rule looks at of a route. */
export interface FilterRoute {
  prefix: Prefix;
  /** Learned from a BGP peer (not originated here). */
  learned: boolean;
  /** The interface the route leaves by, when known. */
  iface?: string;
  /** The peer the route is imported from or exported to is in our AS. */
  ibgp: boolean;
}

/** The prefix as bytes and a length. */
function bits(p: Prefix): { addr: Uint8Array; len: number } | undefined {
  const slash = p.lastIndexOf('/');
  const text = p.slice(0, slash);
  const len = Number(p.slice(slash + 1));
  if (text.includes(':')) {
    const b = parseIpv6(text);
    return b ? { addr: b, len } : undefined;
  }
  const n = ipv4ToNumber(text);
  if (n < 0) return undefined;
  return { addr: Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255), len };
}

/** Whether `inner` lies inside `outer` (equal included), both of one family. */
export function prefixWithin(inner: Prefix, outer: Prefix): boolean {
  const a = bits(inner);
  const b = bits(outer);
  if (!a || !b || a.addr.length !== b.addr.length || a.len < b.len) return false;
  for (let i = 0; i < b.len; i++) {
    const byte = i >> 3;
    const mask = 0x80 >> (i & 7);
    if ((a.addr[byte] & mask) !== (b.addr[byte] & mask)) return false;
  }
  return true;
}

const lengthOf = (p: Prefix) => Number(p.slice(p.lastIndexOf('/') + 1));

/** BIRD's prefix match: `net = C`, `net ~ C`, or `net ~ [ C{min,max} ]` and negations. */
function cidrMatches(r: FilterRule, prefix: Prefix): boolean {
  const cidr = r.cidr!;
  let hit: boolean;
  if (r.prefixLength) {
    // confd: min is at least the CIDR's own length, max at most the family's
    const own = lengthOf(cidr);
    const min = Math.max(own, r.prefixLength.min ?? own);
    const max = Math.min(cidr.includes(':') ? 128 : 32, r.prefixLength.max ?? 128);
    const len = lengthOf(prefix);
    hit = prefixWithin(prefix, cidr) && len >= min && len <= max;
  } else if (r.matchOperator === 'Equal' || r.matchOperator === 'NotEqual') {
    hit = prefix === cidr;
  } else {
    hit = prefixWithin(prefix, cidr);
  }
  return r.matchOperator === 'NotEqual' || r.matchOperator === 'NotIn' ? !hit : hit;
}

/** BIRD's string pattern: `*` any run of characters, `?` any one, the rest literal. */
export function interfaceMatches(pattern: string, name: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\-]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

function ruleMatches(r: FilterRule, route: FilterRoute): boolean {
  if (r.peerType && (r.peerType === 'iBGP') !== route.ibgp) return false;
  if (r.cidr !== undefined && r.matchOperator && !cidrMatches(r, route.prefix)) return false;
  if (r.source === 'RemotePeers' && !route.learned) return false;
  if (r.interface !== undefined)
    if (route.iface === undefined || !interfaceMatches(r.interface, route.iface)) return false;
  return true;
}

/** The first matching rule's action for `route`, or undefined when no rule matches. */
export function filterVerdict(
  filter: RouteFilter | undefined,
  route: FilterRoute,
): 'Accept' | 'Reject' | undefined {
  const rules = route.prefix.includes(':') ? filter?.ipv6 : filter?.ipv4;
  if (!rules) return undefined;
  for (const r of rules) if (ruleMatches(r, route)) return r.action;
  return undefined;
}

/** Whether the filter lets `route` pass (no matching rule: it does). */
export const filterPasses = (filter: RouteFilter | undefined, route: FilterRoute): boolean =>
  filterVerdict(filter, route) !== 'Reject';
