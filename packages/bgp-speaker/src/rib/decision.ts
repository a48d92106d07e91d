// The BGP decision process (RFC 4271 §9.1.2.2, RFC 4456 §9): which of a prefix's
// candidate paths is best. Pure functions over the candidates.
import { AsPathSegmentType, type PathAttributes } from '../types';
import { ipv4ToNumber } from '../prefix';
import type { Path } from './types';

export const DEFAULT_LOCAL_PREF = 100;

/** AS_PATH length for comparison: an AS_SET counts 1, confederation segments 0. */
export function asPathLength(a: PathAttributes): number {
  let n = 0;
  for (const s of a.asPath) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE) n += s.asns.length;
    else if (s.type === AsPathSegmentType.AS_SET) n += 1;
  }
  return n;
}

/** The AS we learned the route from (first AS of the path); 0 for local/iBGP-internal routes. */
export function neighbourAs(a: PathAttributes): number {
  const first = a.asPath.find(
    (s) => s.type === AsPathSegmentType.AS_SEQUENCE || s.type === AsPathSegmentType.AS_SET,
  );
  return first && first.type === AsPathSegmentType.AS_SEQUENCE ? first.asns[0] : 0;
}

function addrKey(a: string | undefined): string {
  if (!a) return '';
  const n = ipv4ToNumber(a);
  return n >= 0 ? n.toString(16).padStart(8, '0') : `~${a}`;
}

type IgpCost = (nextHop: string) => number;

/** Keeps the candidates that are best by `score` (lower is better). */
function keepMin(paths: Path[], score: (p: Path) => number): Path[] {
  let min = Infinity;
  for (const p of paths) min = Math.min(min, score(p));
  return paths.filter((p) => score(p) === min);
}

/**
 * Picks the best path among candidates for one prefix, step by step as the RFC
 * describes (filtering, so the non-transitive MED rule is applied correctly).
 */
export function selectBest(candidates: Path[], igpCost?: IgpCost): Path | undefined {
  if (candidates.length <= 1) return candidates[0];
  let c = keepMin(candidates, (p) => -(p.attrs.localPref ?? DEFAULT_LOCAL_PREF));
  c = keepMin(c, (p) => (p.peer ? 1 : 0)); // locally originated first
  c = keepMin(c, (p) => asPathLength(p.attrs));
  c = keepMin(c, (p) => p.attrs.origin);
  if (c.length > 1) {
    // MED: only between routes from the same neighbouring AS; missing MED = 0.
    const minMed = new Map<number, number>();
    for (const p of c) {
      const as = neighbourAs(p.attrs);
      minMed.set(as, Math.min(minMed.get(as) ?? Infinity, p.attrs.med ?? 0));
    }
    c = c.filter((p) => (p.attrs.med ?? 0) === minMed.get(neighbourAs(p.attrs)));
  }
  c = keepMin(c, (p) => (p.peer && p.peer.ibgp ? 1 : 0)); // eBGP over iBGP
  if (igpCost && c.length > 1)
    c = keepMin(c, (p) => (p.attrs.nextHop ? igpCost(p.attrs.nextHop) : 0));
  if (c.length === 1) return c[0];
  // Tie-breaks: lowest router id (ORIGINATOR_ID when reflected), shorter CLUSTER_LIST,
  // lowest peer address.
  return [...c].sort((x, y) => {
    const idx = addrKey(x.attrs.originatorId ?? x.peer?.routerId);
    const idy = addrKey(y.attrs.originatorId ?? y.peer?.routerId);
    if (idx !== idy) return idx < idy ? -1 : 1;
    const cl = (x.attrs.clusterList?.length ?? 0) - (y.attrs.clusterList?.length ?? 0);
    if (cl !== 0) return cl;
    const ax = addrKey(x.peer?.address);
    const ay = addrKey(y.peer?.address);
    return ax < ay ? -1 : ax > ay ? 1 : 0;
  })[0];
}
