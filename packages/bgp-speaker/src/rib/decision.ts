// The BGP decision process (RFC 4271 §9.1.2.2, RFC 4456 §9): which of a prefix's
// candidate paths is best. The steps before MED form a total preorder, so one linear
// pass keeps the tied-best candidates; MED is then compared only within each
// neighbouring AS (which is not an order, hence a filter over the tied set); the
// remaining steps form a total order again, decided by a linear minimum. No sorting.
import { AsPathSegmentType, type PathAttributes } from '../types';
import { ipv4ToNumber, parseIpv6 } from '../prefix';
import type { IgpCost, Path } from './types';

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

/**
 * The neighbouring AS a route came from, for MED comparison: the first AS of the
 * AS_PATH outside confederation segments; 0 when the path is empty (our own AS) or
 * starts with an AS_SET (no single neighbour).
 */
export function neighbourAs(a: PathAttributes): number {
  for (const s of a.asPath) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE) return s.asns[0] ?? 0;
    if (s.type === AsPathSegmentType.AS_SET) return 0;
  }
  return 0;
}

/** Numeric order of addresses: missing first, then IPv4, then IPv6. */
export function compareAddresses(x: string | undefined, y: string | undefined): number {
  if (x === y) return 0;
  if (x === undefined) return -1;
  if (y === undefined) return 1;
  const nx = ipv4ToNumber(x);
  const ny = ipv4ToNumber(y);
  if (nx >= 0 && ny >= 0) return nx - ny;
  if (nx >= 0) return -1;
  if (ny >= 0) return 1;
  const bx = parseIpv6(x);
  const by = parseIpv6(y);
  if (bx && by) return Buffer.compare(bx, by);
  return x < y ? -1 : 1; // not addresses: still a stable order
}

/** Steps a–c and "locally originated first": LOCAL_PREF, local, AS_PATH length, ORIGIN. */
function comparePre(x: Path, y: Path): number {
  const lx = x.attrs.localPref ?? DEFAULT_LOCAL_PREF;
  const ly = y.attrs.localPref ?? DEFAULT_LOCAL_PREF;
  if (lx !== ly) return ly - lx;
  if (!x.peer !== !y.peer) return x.peer ? 1 : -1;
  const ax = asPathLength(x.attrs);
  const ay = asPathLength(y.attrs);
  if (ax !== ay) return ax - ay;
  return x.attrs.origin - y.attrs.origin;
}

/** Steps e–g: eBGP over iBGP, IGP cost, router id (ORIGINATOR_ID), CLUSTER_LIST, address. */
function comparePost(x: Path, y: Path, igpCost: IgpCost | undefined): number {
  const ix = x.peer?.ibgp ? 1 : 0;
  const iy = y.peer?.ibgp ? 1 : 0;
  if (ix !== iy) return ix - iy;
  if (igpCost) {
    const cx = x.attrs.nextHop ? igpCost(x.attrs.nextHop) : 0;
    const cy = y.attrs.nextHop ? igpCost(y.attrs.nextHop) : 0;
    if (cx !== cy) return cx - cy;
  }
  const r = compareAddresses(
    x.attrs.originatorId ?? x.peer?.routerId,
    y.attrs.originatorId ?? y.peer?.routerId,
  );
  if (r !== 0) return r;
  const cl = (x.attrs.clusterList?.length ?? 0) - (y.attrs.clusterList?.length ?? 0);
  if (cl !== 0) return cl;
  return compareAddresses(x.peer?.address, y.peer?.address);
}

/** Step c: among routes from the same neighbouring AS, only the lowest MED (missing = 0) stays. */
function lowestMedPerNeighbour(paths: Path[]): Path[] {
  const min = new Map<number, number>();
  for (const p of paths) {
    const as = neighbourAs(p.attrs);
    const med = p.attrs.med ?? 0;
    const m = min.get(as);
    if (m === undefined || med < m) min.set(as, med);
  }
  if (min.size === paths.length) return paths; // one route per neighbour AS: nothing to compare
  return paths.filter((p) => (p.attrs.med ?? 0) === min.get(neighbourAs(p.attrs)));
}

/** The best of one prefix's candidates (each from a different source), or undefined if none. */
export function selectBest(candidates: readonly Path[], igpCost?: IgpCost): Path | undefined {
  if (candidates.length <= 1) return candidates[0];
  let tied: Path[] = [candidates[0]];
  for (let i = 1; i < candidates.length; i++) {
    const d = comparePre(candidates[i], tied[0]);
    if (d < 0) tied = [candidates[i]];
    else if (d === 0) tied.push(candidates[i]);
  }
  if (tied.length === 1) return tied[0];
  tied = lowestMedPerNeighbour(tied);
  let best = tied[0];
  for (let i = 1; i < tied.length; i++) if (comparePost(tied[i], best, igpCost) < 0) best = tied[i];
  return best;
}
