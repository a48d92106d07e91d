// One family's service table as desired, kept up to date one service port at a time, and
// what changed in it since the kernel last took it. Replacing a service's fragments costs
// that service's work only: the map and set elements are merged through per-frontend
// claims (so a key two services claim is resolved where it is claimed, not by walking
// every element), and the next transaction is built from the recorded changes.
// Pure: the text is applied elsewhere.
import type { IpFamily, ServicePortPlan } from './model';
import { SHARED, renderPort, type Fragment, type NftState, type RenderOptions } from './nft-render';

/** Where a fragment sorts: two claims of one frontend go to the lesser (service, then port). */
export type FragmentOrder = readonly [string, number];

/** An element as it was or is: absent, or present with its verdict (undefined for a set). */
export type Slot = { v: string | undefined } | undefined;

export interface TableChanges {
  /** [as last applied, as now] for every fragment replaced since */
  fragments: [Fragment | undefined, Fragment | undefined][];
  /** [map, key, as last applied, as now] for every element that may have changed */
  elements: [string, string, Slot, Slot][];
}

interface Claim {
  key: string;
  order: FragmentOrder;
  /** [map, verdict] in the order the fragment lists them */
  entries: [string, string | undefined][];
}

// A frontend has one owner whether it has endpoints or not: an address in service-ips and
// the same address in no-endpoint-services are one frontend.
const FRONTEND: Record<string, string> = {
  'service-ips': 'address',
  'no-endpoint-services': 'address',
  'cluster-ips': 'address',
  'service-nodeports': 'node port',
  'no-endpoint-nodeports': 'node port',
};
// shared: one pod behind several services is one hairpin element
const SHARED_SET = 'hairpin';

const frontendId = (map: string, k: string) => `${FRONTEND[map] ?? map} ${k}`;
/** The hairpin elements a fragment lists, each once. */
function hairpinsOf(frag: Fragment): Set<string> {
  const out = new Set<string>();
  for (const [map, k] of frag.elements) if (map === SHARED_SET) out.add(k);
  return out;
}
const GROUPS = new Map(
  Object.keys(FRONTEND).map((m) => [
    m,
    Object.keys(FRONTEND).filter((x) => FRONTEND[x] === FRONTEND[m]),
  ]),
);
/** The maps an element of this map's frontend can be in. */
const mapsOf = (map: string): string[] => GROUPS.get(map) ?? [map];

const before = (a: FragmentOrder, b: FragmentOrder) =>
  a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

export class NftTable {
  readonly fragments = new Map<string, Fragment>();
  /** every map and set -> (key -> verdict), resolved */
  readonly elements: Map<string, Map<string, string | undefined>>;
  /** hairpin element -> how many fragments list it (shared: no owner, no conflict) */
  private readonly hairpins = new Map<string, number>();
  /** frontend -> its element key, the maps it can be in, and its claims */
  private readonly claims = new Map<string, { k: string; maps: string[]; list: Claim[] }>();
  /** changes are recorded only while the kernel is known to hold the table (else: full) */
  private tracking = false;
  /** since the last applied: fragment key -> the fragment then (undefined: absent) */
  private readonly changedFragments = new Map<string, Fragment | undefined>();
  /** since the last applied: map -> key -> the element then */
  private readonly changedElements = new Map<string, Map<string, Slot>>();

  constructor(
    readonly family: IpFamily,
    readonly clusterCidrs: string[],
    /** told each key a frontend another fragment keeps refused */
    private readonly onConflict: (c: string) => void = () => {},
  ) {
    this.elements = new Map(SHARED(family).map((m) => [m, new Map()]));
  }

  /** Puts a fragment in place of the one under `key` (undefined: removes it). */
  set(key: string, frag: Fragment | undefined, order: FragmentOrder): void {
    const old = this.fragments.get(key);
    if (old === frag) return;
    if (this.tracking && !this.changedFragments.has(key)) this.changedFragments.set(key, old);
    // hairpin references: the new ones counted before the old ones go, so an element both
    // list is not touched
    if (frag) for (const k of hairpinsOf(frag)) this.hairpin(k, 1);
    if (old) for (const k of hairpinsOf(old)) this.hairpin(k, -1);
    const touched = new Set<string>();
    if (old) {
      for (const id of this.claimIds(old)) {
        const c = this.claims.get(id)!;
        c.list = c.list.filter((x) => x.key !== key);
        touched.add(id);
      }
    }
    if (frag) {
      this.fragments.set(key, frag);
      const mine = new Map<string, Claim>();
      for (const [map, k, v] of frag.elements) {
        if (map === SHARED_SET) continue;
        const id = frontendId(map, k);
        let claim = mine.get(id);
        if (!claim) {
          claim = { key, order, entries: [] };
          mine.set(id, claim);
          const c = this.claims.get(id) ?? { k, maps: mapsOf(map), list: [] };
          c.list.push(claim);
          this.claims.set(id, c);
        }
        claim.entries.push([map, v]);
        touched.add(id);
      }
    } else {
      this.fragments.delete(key);
    }
    for (const id of touched) this.resolve(id);
  }

  /** The table as a whole (for a full rewrite). */
  state(): NftState {
    return {
      family: this.family,
      clusterCidrs: this.clusterCidrs,
      fragments: this.fragments,
      elements: this.elements,
      conflicts: [],
    };
  }

  /** What changed since `applied()` (only meaningful while tracking). */
  changes(): TableChanges {
    const fragments: TableChanges['fragments'] = [];
    for (const [key, old] of this.changedFragments) {
      const now = this.fragments.get(key);
      if (old !== now) fragments.push([old, now]);
    }
    const elements: TableChanges['elements'] = [];
    for (const [map, olds] of this.changedElements) {
      const els = this.elements.get(map)!;
      for (const [k, old] of olds)
        elements.push([map, k, old, els.has(k) ? { v: els.get(k) } : undefined]);
    }
    return { fragments, elements };
  }

  /** The kernel holds the table as it is now: from here on, changes are recorded. */
  applied(): void {
    this.forget();
    this.tracking = true;
  }

  /** What the kernel holds is unknown (a failure, a resync): the next transaction is full. */
  forget(): void {
    this.tracking = false;
    this.changedFragments.clear();
    this.changedElements.clear();
  }

  private claimIds(frag: Fragment): Set<string> {
    const ids = new Set<string>();
    for (const [map, k] of frag.elements) if (map !== SHARED_SET) ids.add(frontendId(map, k));
    return ids;
  }

  /** Sets a frontend's elements from its claims: all of the first claim's, none of the rest. */
  private resolve(id: string): void {
    const c = this.claims.get(id)!;
    let winner: Claim | undefined;
    for (const claim of c.list) if (!winner || before(claim.order, winner.order)) winner = claim;
    if (winner) {
      for (const claim of c.list) {
        if (claim !== winner) this.onConflict(`${c.k}: kept for ${winner.key}, not ${claim.key}`);
      }
    }
    for (const map of c.maps) {
      const els = this.elements.get(map)!;
      const had = els.has(c.k);
      // the winner's entry for this map (the last one, when it lists the key twice)
      let has = false;
      let v: string | undefined;
      for (const [m, x] of winner?.entries ?? []) if (m === map) [has, v] = [true, x];
      if (had === has && (!has || els.get(c.k) === v)) continue;
      this.put(map, c.k, has ? { v } : undefined);
    }
    if (c.list.length === 0) this.claims.delete(id);
  }

  private hairpin(k: string, delta: 1 | -1): void {
    const n = (this.hairpins.get(k) ?? 0) + delta;
    if (n > 0) this.hairpins.set(k, n);
    else this.hairpins.delete(k);
    if (n === 1 && delta === 1) this.put(SHARED_SET, k, { v: undefined });
    if (n === 0) this.put(SHARED_SET, k, undefined);
  }

  /** Sets or deletes one element, recording what it was (while tracking). */
  private put(map: string, k: string, now: Slot): void {
    const els = this.elements.get(map)!;
    if (this.tracking) {
      const olds = this.changedElements.get(map) ?? new Map<string, Slot>();
      this.changedElements.set(map, olds);
      if (!olds.has(k)) olds.set(k, els.has(k) ? { v: els.get(k) } : undefined);
    }
    if (now) els.set(k, now.v);
    else els.delete(k);
  }
}

/**
 * The table from fragments (one per service port, in the plan's order): every map's and
 * set's elements merged; a key claimed twice stays with its first owner.
 */
export function assemble(
  family: IpFamily,
  clusterCidrs: string[],
  fragments: Map<string, Fragment>,
): NftState {
  const conflicts: string[] = [];
  const table = new NftTable(family, clusterCidrs, (c) => conflicts.push(c));
  let i = 0;
  for (const [key, frag] of fragments) table.set(key, frag, ['', i++]);
  return { ...table.state(), conflicts };
}

export function renderServices(plan: readonly ServicePortPlan[], o: RenderOptions): NftState {
  const fragments = new Map(plan.map((p) => [p.key, renderPort(p, o)]));
  return assemble(o.family, o.clusterCidrs, fragments);
}
