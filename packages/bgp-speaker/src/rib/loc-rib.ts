// Loc-RIB (RFC 4271 §3.2, §9.1.2): every prefix's candidates, one per source (a peer,
// or this speaker for originated routes), and the best of them. A prefix with a single
// candidate stores the Path itself; an array (best first) exists only when several
// sources have the prefix, so a 1M-route table from one peer is one Map entry per route.
import type { PathAttributes, Prefix } from '../types';
import type { AttributeStore } from './attribute-store';
import { selectBest } from './decision';
import { PrefixMap, sortByPrefix } from './prefix-map';
import type { BestPathChange, IgpCost, Path, PeerInfo, Route } from './types';

/** The only candidate, or all candidates (at least two) with the best first. */
type Candidates = Path | Path[];

export interface LocRibOptions {
  /** IGP metric to a next hop (RFC 4271 §9.1.2.2 e); without it every next hop costs 0. */
  igpCost?: IgpCost;
}

const bestOf = (c: Candidates): Path => (Array.isArray(c) ? c[0] : c);

export class LocRib {
  private readonly table = new PrefixMap<Candidates>();
  /** Originated routes share a Path per attribute set, like a peer's. */
  private readonly localPaths = new WeakMap<PathAttributes, Path>();
  private readonly originated = new Set<Prefix>();

  constructor(
    private readonly store: AttributeStore,
    private readonly opts: LocRibOptions = {},
  ) {}

  /**
   * Makes `path` the candidate of `source` (undefined: this speaker) for `prefix`, or
   * removes that source's candidate when `path` is undefined. Appends to `changes`
   * when the best path changed.
   */
  set(
    prefix: Prefix,
    source: PeerInfo | undefined,
    path: Path | undefined,
    changes: BestPathChange[],
  ): void {
    let cur: Candidates | undefined;
    if (path) {
      // the common cases in one lookup: a prefix new to the table, or a new path from
      // its only source
      cur = this.table.swap(prefix, path);
      if (cur === undefined || (!Array.isArray(cur) && cur.peer === source)) {
        if (cur !== path) changes.push({ prefix, best: path, previous: cur });
        return;
      }
      this.table.set(prefix, cur); // other sources: put it back and decide below
    } else {
      cur = this.table.get(prefix);
      if (cur === undefined) return;
    }
    if (!Array.isArray(cur)) {
      if (cur.peer === source) {
        if (cur === path) return;
        if (path) this.table.set(prefix, path);
        else this.table.delete(prefix);
        changes.push({ prefix, best: path, previous: cur });
        return;
      }
      if (!path) return;
      const best = selectBest([cur, path], this.opts.igpCost)!;
      this.table.set(prefix, best === cur ? [cur, path] : [path, cur]);
      if (best !== cur) changes.push({ prefix, best, previous: cur });
      return;
    }
    const previous = cur[0];
    let i = 0;
    while (i < cur.length && cur[i].peer !== source) i++;
    if (i < cur.length) {
      if (cur[i] === path) return;
      if (path) cur[i] = path;
      else cur.splice(i, 1);
    } else if (path) cur.push(path);
    else return;
    const best = this.settle(prefix, cur);
    if (best !== previous) changes.push({ prefix, best, previous });
  }

  /** Originates `prefix` from this speaker with `attrs`. */
  originate(prefix: Prefix, attrs: PathAttributes): BestPathChange[] {
    const interned = this.store.intern(attrs);
    let path = this.localPaths.get(interned);
    if (!path) {
      path = Object.freeze({ attrs: interned });
      this.localPaths.set(interned, path);
    }
    const changes: BestPathChange[] = [];
    this.originated.add(prefix);
    this.set(prefix, undefined, path, changes);
    return changes;
  }

  /** Stops originating `prefix` (no-op when it is not originated here). */
  withdrawLocal(prefix: Prefix): BestPathChange[] {
    const changes: BestPathChange[] = [];
    if (this.originated.delete(prefix)) this.set(prefix, undefined, undefined, changes);
    return changes;
  }

  /** Runs the decision again for prefixes with several candidates (e.g. IGP costs changed). */
  reselect(): BestPathChange[] {
    const changes: BestPathChange[] = [];
    for (const [prefix, c] of this.table) {
      if (!Array.isArray(c)) continue;
      const previous = c[0];
      const best = this.settle(prefix, c);
      if (best !== previous) changes.push({ prefix, best, previous });
    }
    return changes;
  }

  best(prefix: Prefix): Path | undefined {
    const c = this.table.get(prefix);
    return c === undefined ? undefined : bestOf(c);
  }

  /** All candidates of a prefix, best first. */
  candidates(prefix: Prefix): Path[] {
    const c = this.table.get(prefix);
    return c === undefined ? [] : Array.isArray(c) ? [...c] : [c];
  }

  isOriginated(prefix: Prefix): boolean {
    return this.originated.has(prefix);
  }

  /** Prefixes with a best path. */
  get size(): number {
    return this.table.size;
  }

  /** Every prefix with its best path. */
  *bestPaths(): IterableIterator<[Prefix, Path]> {
    for (const [prefix, c] of this.table) yield [prefix, bestOf(c)];
  }

  /** Every best route, sorted by prefix. */
  bestRoutes(): Route[] {
    const out: Route[] = [];
    for (const [prefix, c] of this.table) {
      const b = bestOf(c);
      out.push({ prefix, peer: b.peer, attrs: b.attrs });
    }
    return sortByPrefix(out, (r) => r.prefix);
  }

  /** Stores `list` (best first) or collapses it to a single Path; returns the best. */
  private settle(prefix: Prefix, list: Path[]): Path | undefined {
    if (list.length === 0) {
      this.table.delete(prefix);
      return undefined;
    }
    if (list.length === 1) {
      this.table.set(prefix, list[0]);
      return list[0];
    }
    const best = selectBest(list, this.opts.igpCost)!;
    const at = list.indexOf(best);
    if (at > 0) [list[0], list[at]] = [list[at], list[0]];
    return best;
  }
}
