// Per-peer import and export filters, as Calico's BGPFilter rules rendered into BIRD
// functions (confd template_funcs.go filterStatement): the rules of the route's family
// are tried in order, the first whose conditions all hold decides (Accept or Reject),
// and a route no rule matches gets the default (import: accepted; export: the normal
// export policy). Calico chains one function per BGPFilter; each falls through when
// none of its rules match, so one list of all their rules in order is the same thing.
// An Accept rule's operations (addCommunity, prependASPath, setPriority) change the
// route before it is accepted: on import, the route as stored and compared; on export,
// the route before the session's own rewriting (our AS prepended, next hop), as BIRD
// runs an export filter before its BGP code. Pure.
import { hasCommunity, parseCommunity, withCommunities, type Community } from '../community';
import { ipv4ToNumber, parseIpv6 } from '../prefix';
import {
  AsPathSegmentType,
  Origin,
  type AsPathSegment,
  type PathAttributes,
  type Prefix,
} from '../types';
import { DEFAULT_LOCAL_PREF } from './decision';

export type MatchOperator = 'Equal' | 'NotEqual' | 'In' | 'NotIn';

/**
 * Calico's route priority (FelixConfiguration's ...RoutePriority units, a kernel metric:
 * lower wins) travels as LOCAL_PREF = 2^31-1 - priority (confd's BirdIntMaxValue).
 */
export const PRIORITY_BASE = 2147483647;
/** The priority of a route originated here (Calico's default NormalRoutePriority). */
export const NORMAL_ROUTE_PRIORITY = 1024;

/** One route modification of an Accept rule: exactly one field. */
export type FilterOperation =
  { addCommunity: string } | { prependASPath: readonly number[] } | { setPriority: number };

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
  /** Only routes carrying this community: `aa:nn` (standard) or `aa:nn:mm` (large). */
  community?: string;
  /** Only routes whose AS path begins with these AS numbers (BIRD's `[= a b * =]`). */
  asPathPrefix?: readonly number[];
  /** Only routes of this priority (LOCAL_PREF = PRIORITY_BASE - priority). */
  priority?: number;
  action: 'Accept' | 'Reject';
  /** Applied in order to a route this (Accept) rule matches. */
  operations?: readonly FilterOperation[];
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
  /** The route's attributes (communities, AS path, LOCAL_PREF); none when omitted. */
  attrs?: PathAttributes;
}

/** What a filter made of a route: the deciding rule's action, and the changed attributes. */
export interface FilterOutcome {
  /** undefined: no rule matched (the default applies). */
  action?: 'Accept' | 'Reject';
  /** The route's attributes after the rule's operations (only when it had some). */
  attrs?: PathAttributes;
  /** Index of the deciding rule in the family's list (a cache key for `attrs`). */
  rule?: number;
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

/** Rules' community values, parsed once (the values were validated with the config). */
const parsed = new Map<string, Community>();
function community(value: string): Community {
  let c = parsed.get(value);
  if (!c) parsed.set(value, (c = parseCommunity(value)));
  return c;
}

/**
 * BIRD's `bgp_path ~ [= a b * =]`: the path's first positions are a, b... A sequence
 * gives one position per AS number; a set is one position that matches any of its
 * members (BIRD's as_path_match).
 */
export function asPathStartsWith(path: readonly AsPathSegment[], prefix: readonly number[]) {
  let i = 0;
  for (const seg of path) {
    if (i === prefix.length) return true;
    const set =
      seg.type === AsPathSegmentType.AS_SET || seg.type === AsPathSegmentType.AS_CONFED_SET;
    if (set) {
      if (!seg.asns.includes(prefix[i++])) return false;
      continue;
    }
    for (const asn of seg.asns) {
      if (i === prefix.length) return true;
      if (asn !== prefix[i++]) return false;
    }
  }
  return i === prefix.length;
}

/**
 * A route's priority as confd's filters see it: PRIORITY_BASE - LOCAL_PREF. A learned
 * route without LOCAL_PREF (from eBGP) has BIRD's default 100; one originated here has
 * the normal route priority (confd's export prologue: bgp_local_pref from krt_metric).
 */
export function routePriority(route: FilterRoute): number {
  const lp = route.attrs?.localPref;
  if (lp !== undefined) return PRIORITY_BASE - lp;
  return route.learned ? PRIORITY_BASE - DEFAULT_LOCAL_PREF : NORMAL_ROUTE_PRIORITY;
}

/**
 * The kernel metric of a learned route, as confd's kernel protocol sets it
 * (`krt_metric = 2^31-1 - bgp_local_pref`, BIRD's LOCAL_PREF 100 when the route came
 * without one): the route's priority. A LOCAL_PREF above 2^31-1 gives 0.
 */
export function kernelMetric(attrs: PathAttributes): number {
  return Math.max(0, PRIORITY_BASE - (attrs.localPref ?? DEFAULT_LOCAL_PREF));
}

function ruleMatches(r: FilterRule, route: FilterRoute): boolean {
  if (r.peerType && (r.peerType === 'iBGP') !== route.ibgp) return false;
  if (r.cidr !== undefined && r.matchOperator && !cidrMatches(r, route.prefix)) return false;
  if (r.source === 'RemotePeers' && !route.learned) return false;
  if (r.interface !== undefined)
    if (route.iface === undefined || !interfaceMatches(r.interface, route.iface)) return false;
  if (r.community !== undefined && !hasCommunity(route.attrs, community(r.community))) return false;
  if (r.asPathPrefix?.length && !asPathStartsWith(route.attrs?.asPath ?? [], r.asPathPrefix))
    return false;
  if (r.priority !== undefined && routePriority(route) !== r.priority) return false;
  return true;
}

/** Prepends one AS number, into the first AS_SEQUENCE while it has room (BIRD's prepend). */
function prependOne(asn: number, path: readonly AsPathSegment[]): AsPathSegment[] {
  const [first, ...rest] = path;
  if (first && first.type === AsPathSegmentType.AS_SEQUENCE && first.asns.length < 255)
    return [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [asn, ...first.asns] }, ...rest];
  return [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [asn] }, ...path];
}

/** The attributes after `ops`, in order (confd's filterOperationStatements). */
export function applyOperations(
  attrs: PathAttributes,
  ops: readonly FilterOperation[],
): PathAttributes {
  const out: PathAttributes = { ...attrs };
  for (const op of ops) {
    if ('addCommunity' in op) {
      Object.assign(out, withCommunities(out, [community(op.addCommunity)]));
    } else if ('prependASPath' in op) {
      // the path then starts with the list as written: [a, b] gives "a b <path>"
      let path = out.asPath;
      for (let i = op.prependASPath.length - 1; i >= 0; i--)
        path = prependOne(op.prependASPath[i], path);
      out.asPath = path;
    } else {
      out.localPref = PRIORITY_BASE - op.setPriority;
    }
  }
  return out;
}

const EMPTY: PathAttributes = { origin: Origin.IGP, asPath: [] };

/** The first matching rule's action for `route`, with its operations applied. */
export function filterRoute(filter: RouteFilter | undefined, route: FilterRoute): FilterOutcome {
  const rules = route.prefix.includes(':') ? filter?.ipv6 : filter?.ipv4;
  if (!rules) return {};
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    if (!ruleMatches(r, route)) continue;
    if (r.action === 'Accept' && r.operations?.length) {
      const attrs = applyOperations(route.attrs ?? EMPTY, r.operations);
      return { action: r.action, attrs, rule: i };
    }
    return { action: r.action, rule: i };
  }
  return {};
}

/** The first matching rule's action for `route`, or undefined when no rule matches. */
export function filterVerdict(
  filter: RouteFilter | undefined,
  route: FilterRoute,
): 'Accept' | 'Reject' | undefined {
  return filterRoute(filter, route).action;
}

/** Whether the filter lets `route` pass (no matching rule: it does). */
export const filterPasses = (filter: RouteFilter | undefined, route: FilterRoute): boolean =>
  filterVerdict(filter, route) !== 'Reject';
