// Interning of path attribute sets: equal sets share one frozen object, so the RIBs
// hold a pointer per route instead of a copy, equality is identity (Adj-RIB-Out
// suppression and UPDATE packing compare pointers), and a set lives exactly as long
// as something holds it. The table keeps weak references only; a FinalizationRegistry
// drops the key once the last holder let go, so no holder has to count references.
import type { PathAttributes } from '../types';

/** A stable text key: fixed field order, unknown attributes' values as hex. */
export function attributeKey(a: PathAttributes): string {
  return JSON.stringify([
    a.origin,
    a.asPath,
    a.nextHop,
    a.nextHopLinkLocal,
    a.med,
    a.localPref,
    a.atomicAggregate,
    a.aggregator,
    a.communities,
    a.largeCommunities,
    a.originatorId,
    a.clusterList,
    a.unknown?.map((u) => [u.flags, u.typeCode, u.value.toString('hex')]),
  ]);
}

/** A deep-frozen copy without undefined fields, so interned objects share one shape. */
function frozenCopy(a: PathAttributes): PathAttributes {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) {
    if (v === undefined) continue;
    if (k === 'asPath')
      out[k] = Object.freeze(
        (v as PathAttributes['asPath']).map((s) =>
          Object.freeze({ type: s.type, asns: Object.freeze([...s.asns]) }),
        ),
      );
    else if (k === 'unknown')
      out[k] = Object.freeze((v as object[]).map((u) => Object.freeze({ ...u })));
    else if (Array.isArray(v)) out[k] = Object.freeze([...v]);
    else if (typeof v === 'object') out[k] = Object.freeze({ ...v });
    else out[k] = v;
  }
  return Object.freeze(out) as unknown as PathAttributes;
}

export class AttributeStore {
  private readonly byKey = new Map<string, WeakRef<PathAttributes>>();
  private readonly interned = new WeakSet<PathAttributes>();
  private readonly registry = new FinalizationRegistry<string>((key) => {
    // the key may have been re-interned to a new object since; only drop a dead entry
    if (this.byKey.get(key)?.deref() === undefined) this.byKey.delete(key);
  });

  /** The one shared, frozen object equal to `a`. Interned objects are returned as they are. */
  intern(a: PathAttributes): PathAttributes {
    if (this.interned.has(a)) return a;
    const key = attributeKey(a);
    const live = this.byKey.get(key)?.deref();
    if (live) return live;
    const attrs = frozenCopy(a);
    this.byKey.set(key, new WeakRef(attrs));
    this.interned.add(attrs);
    this.registry.register(attrs, key);
    return attrs;
  }

  /** Whether `a` is an object this store handed out. */
  isInterned(a: PathAttributes): boolean {
    return this.interned.has(a);
  }

  /** Attribute sets held by someone (sets dropped since the last GC may still count). */
  get size(): number {
    return this.byKey.size;
  }
}
