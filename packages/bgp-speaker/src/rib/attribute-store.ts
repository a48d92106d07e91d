// Interning of path attribute sets: equal sets share one frozen object, so the RIBs
// hold a pointer per route instead of a copy, equality is identity, and UPDATE
// packing can group prefixes by object. Sets are counted by the paths that use them
// and forgotten when the last one goes.
import type { PathAttributes } from '../types';

function keyOf(a: PathAttributes): string {
  // Fixed field order; Buffers of unknown attributes as hex.
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

/** Drops undefined fields so interned objects have one shape. */
function compact(a: PathAttributes): PathAttributes {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out[k] = v;
  return out as unknown as PathAttributes;
}

export class AttributeStore {
  private readonly byKey = new Map<string, { attrs: PathAttributes; refs: number }>();
  private readonly keys = new WeakMap<PathAttributes, string>();

  /** The shared object equal to `a` (not yet referenced: call ref() for each holder). */
  intern(a: PathAttributes): PathAttributes {
    const known = this.keys.get(a);
    if (known !== undefined) return a;
    const key = keyOf(a);
    let e = this.byKey.get(key);
    if (!e) {
      const attrs = Object.freeze(compact(a));
      e = { attrs, refs: 0 };
      this.byKey.set(key, e);
      this.keys.set(attrs, key);
    }
    return e.attrs;
  }

  ref(a: PathAttributes): void {
    const e = this.byKey.get(this.keys.get(a)!);
    if (e) e.refs++;
  }

  unref(a: PathAttributes): void {
    const key = this.keys.get(a);
    if (key === undefined) return;
    const e = this.byKey.get(key);
    if (e && --e.refs <= 0) this.byKey.delete(key);
  }

  get size(): number {
    return this.byKey.size;
  }
}
