// Adj-RIB-Out of one peer (RFC 4271 §3.2, §9.2): what it was sent, and what it must be
// sent next. Best-path changes are turned into this peer's view at once (export
// policy, interned so equal attribute sets are one object); takePending() then
// compares against what was advertised, so a re-announcement with unchanged
// attributes costs nothing on the wire, withdrawals go only for prefixes the peer has,
// and announcements come grouped by attribute set for packing into few UPDATEs.
import type { Afi, PathAttributes, Prefix } from '../types';
import type { AttributeStore } from './attribute-store';
import { defaultReflectRule, exportAttributes } from './export-policy';
import type {
  BestPathChange,
  ExportBatch,
  LocalIdentity,
  Path,
  PeerInfo,
  ReflectRule,
} from './types';

export interface ExportOptions {
  /** Which iBGP-learned routes may go to which iBGP peer; default: RFC 4456 §6 when a cluster id is set. */
  reflect?: ReflectRule;
}

const isV6 = (p: Prefix) => p.indexOf(':') >= 0;

export class AdjRibOut {
  private readonly advertised = new Map<Prefix, PathAttributes>();
  /** Prefix -> what the peer should have now (null: nothing), since the last takePending(). */
  private readonly pending = new Map<Prefix, PathAttributes | null>();
  /** Export result per best path and family; weak, so paths that left the RIB are forgotten. */
  private readonly cache = [
    new WeakMap<Path, PathAttributes | null>(),
    new WeakMap<Path, PathAttributes | null>(),
  ];
  private readonly reflect: ReflectRule;

  constructor(
    readonly peer: PeerInfo,
    private readonly store: AttributeStore,
    private readonly local: LocalIdentity,
    opts: ExportOptions = {},
  ) {
    this.reflect = opts.reflect ?? defaultReflectRule(local);
  }

  /** Takes in best-path changes of the Loc-RIB. */
  apply(changes: readonly BestPathChange[]): void {
    for (const c of changes) {
      const want = c.best ? this.exported(c.best, isV6(c.prefix)) : undefined;
      // nothing to send and nothing sent before: skip without touching the maps
      if (want === undefined && !this.advertised.has(c.prefix) && !this.pending.has(c.prefix))
        continue;
      this.pending.set(c.prefix, want ?? null);
    }
  }

  /** The delta to send since the last call; it counts as advertised from now on. */
  takePending(): ExportBatch {
    const withdrawn: Prefix[] = [];
    const groups = new Map<PathAttributes, Prefix[]>();
    for (const [prefix, want] of this.pending) {
      const had = this.advertised.get(prefix);
      if (want === (had ?? null)) continue;
      if (want === null) {
        this.advertised.delete(prefix);
        withdrawn.push(prefix);
      } else {
        this.advertised.set(prefix, want);
        addTo(groups, want, prefix);
      }
    }
    this.pending.clear();
    return { withdrawn, announce: grouped(groups) };
  }

  /**
   * Everything the peer should have, for a new session or a ROUTE-REFRESH: all of
   * `routes` (the Loc-RIB's best paths) that export to it, of family `afi` (both when
   * omitted), plus withdrawals of what it has but should not. Pending changes of that
   * family are included.
   */
  full(routes: Iterable<[Prefix, Path]>, afi?: Afi): ExportBatch {
    const inFamily = (p: Prefix) => afi === undefined || isV6(p) === (afi === 2);
    const now = new Map<Prefix, PathAttributes>();
    const groups = new Map<PathAttributes, Prefix[]>();
    for (const [prefix, path] of routes) {
      if (!inFamily(prefix)) continue;
      const want = this.exported(path, isV6(prefix));
      if (!want) continue;
      now.set(prefix, want);
      addTo(groups, want, prefix);
    }
    const withdrawn: Prefix[] = [];
    for (const prefix of [...this.advertised.keys()]) {
      if (!inFamily(prefix)) continue;
      if (!now.has(prefix)) withdrawn.push(prefix);
      this.advertised.delete(prefix);
    }
    for (const prefix of [...this.pending.keys()])
      if (inFamily(prefix)) this.pending.delete(prefix);
    for (const [prefix, attrs] of now) this.advertised.set(prefix, attrs);
    return { withdrawn, announce: grouped(groups) };
  }

  /** The attributes last advertised for `prefix`, if any. */
  advertisedAttributes(prefix: Prefix): PathAttributes | undefined {
    return this.advertised.get(prefix);
  }

  get advertisedCount(): number {
    return this.advertised.size;
  }

  /** Export attributes of a best path to this peer, interned and cached per path. */
  private exported(path: Path, v6: boolean): PathAttributes | undefined {
    const cache = this.cache[v6 ? 1 : 0];
    const hit = cache.get(path);
    if (hit !== undefined) return hit ?? undefined;
    const a = exportAttributes(path, this.peer, this.local, v6, this.reflect);
    const interned = a ? this.store.intern(a) : undefined;
    cache.set(path, interned ?? null);
    return interned;
  }
}

function addTo(groups: Map<PathAttributes, Prefix[]>, attrs: PathAttributes, prefix: Prefix) {
  const g = groups.get(attrs);
  if (g) g.push(prefix);
  else groups.set(attrs, [prefix]);
}

function grouped(groups: Map<PathAttributes, Prefix[]>): ExportBatch['announce'] {
  const out: ExportBatch['announce'] = [];
  for (const [attrs, prefixes] of groups) out.push({ attrs, prefixes });
  return out;
}
