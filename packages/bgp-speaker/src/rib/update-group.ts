// An update group, as in FRR and GoBGP: peers whose export policy gives the same
// outcome (equal exportPolicyKey) share one Adj-RIB-Out (RFC 4271 §3.2, §9.2). Export
// attributes are computed and interned once per best path for the whole group, the
// advertised state is kept once, and a delta comes as parts that each go to many
// members, so the speaker encodes each part's UPDATEs once and sends the same bytes to
// all of them. Members differ in one thing only: a route is never sent back to the peer
// it came from, so each part names the members it skips (the routes' source).
//
// All members hold the group's advertised state minus their own routes: a joining
// member is sent current() and then shares every later delta.
import type { Afi, PathAttributes, Prefix } from '../types';
import type { AttributeStore } from './attribute-store';
import { withCommunities } from '../community';
import { ExportCommunities } from './export-communities';
import { defaultReflectRule, policyExport } from './export-policy';
import { filterRoute } from './route-filter';
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
  /** Communities added after the export filter (BGPConfiguration prefixAdvertisements). */
  communities?: ExportCommunities;
}

/**
 * Part of a group's delta: `prefixes` announced with `attrs`, or withdrawn when `attrs`
 * is undefined; sent to every member but those in `except`, or to `only` alone.
 */
export interface GroupPart {
  attrs?: PathAttributes;
  prefixes: Prefix[];
  except: readonly string[];
  only?: string;
}

/** A best path as the group exports it, and the peer it came from (which does not get it). */
interface Exported {
  readonly attrs: PathAttributes;
  readonly source?: string;
}

const isV6 = (p: Prefix) => p.indexOf(':') >= 0;

/** Whether member `id` gets `part`. */
export function receives(part: GroupPart, id: string): boolean {
  return part.only !== undefined ? part.only === id : !part.except.includes(id);
}

/** The parts member `id` gets, as one batch (withdrawals, announcements grouped by attributes). */
export function batchFor(parts: readonly GroupPart[], id: string): ExportBatch {
  const withdrawn: Prefix[] = [];
  const groups = new Map<PathAttributes, Prefix[]>();
  for (const part of parts) {
    if (!receives(part, id)) continue;
    if (!part.attrs) withdrawn.push(...part.prefixes);
    else {
      const g = groups.get(part.attrs);
      if (g) g.push(...part.prefixes);
      else groups.set(part.attrs, [...part.prefixes]);
    }
  }
  return { withdrawn, announce: [...groups].map(([attrs, prefixes]) => ({ attrs, prefixes })) };
}

/**
 * Each member's messages for a group's delta, each part encoded once by `encode`: the
 * members share the very same Buffers.
 */
export function messagesPerMember(
  members: readonly string[],
  parts: readonly GroupPart[],
  encode: (part: GroupPart) => Buffer[],
): Map<string, Buffer[]> {
  const out = new Map<string, Buffer[]>(members.map((id) => [id, []]));
  for (const part of parts) {
    const msgs = encode(part);
    for (const [id, queue] of out) if (receives(part, id)) for (const m of msgs) queue.push(m);
  }
  return out;
}

/**
 * What one member sends when it had `had` and should have `want`: attributes to
 * announce, null to withdraw, undefined for nothing. `resend` announces even unchanged
 * attributes (a full table).
 */
function action(
  had: PathAttributes | undefined,
  want: PathAttributes | undefined,
  resend: boolean,
): PathAttributes | null | undefined {
  if (want) return want === had && !resend ? undefined : want;
  return had ? null : undefined;
}

/** Collects prefixes into parts by (attributes or withdrawal, recipients); withdrawals first. */
class Parts {
  private readonly withdrawals = new Map<string, GroupPart>();
  private readonly announcements = new Map<PathAttributes, Map<string, GroupPart>>();

  add(act: PathAttributes | null | undefined, prefix: Prefix, except: string[], only?: string) {
    if (act === undefined) return;
    const key = only !== undefined ? `=${only}` : except.join(' ');
    let byKey = act ? this.announcements.get(act) : this.withdrawals;
    if (!byKey) this.announcements.set(act!, (byKey = new Map()));
    const part = byKey.get(key);
    if (part) part.prefixes.push(prefix);
    else byKey.set(key, { attrs: act ?? undefined, prefixes: [prefix], except, only });
  }

  list(): GroupPart[] {
    const out = [...this.withdrawals.values()];
    for (const byKey of this.announcements.values()) out.push(...byKey.values());
    return out;
  }
}

const NONE: string[] = [];

export class UpdateGroup {
  /** The members, by peer id. */
  readonly members = new Map<string, PeerInfo>();
  private readonly advertised = new Map<Prefix, Exported>();
  /** Prefix -> what members should have now (null: nothing), since the last takeParts(). */
  private readonly pending = new Map<Prefix, Exported | null>();
  /** Export result per best path and family; weak, so paths that left the RIB are forgotten. */
  private readonly cache = [
    new WeakMap<Path, Exported | null>(),
    new WeakMap<Path, Exported | null>(),
  ];
  /**
   * Export results of paths given communities by `communities`, per family, by path and
   * then by the key of the rules that gave them (paths are shared by many prefixes).
   */
  private withAdded = [
    new WeakMap<Path, Map<string, Exported | null>>(),
    new WeakMap<Path, Map<string, Exported | null>>(),
  ];
  private communities: ExportCommunities;
  /** A best path as an export rule's operations changed it, per rule: stable cache keys. */
  private readonly changed = new WeakMap<Path, Map<number, Path>>();
  /** A copy of the first member's policy fields: members come and go, the policy stays. */
  private readonly policy: PeerInfo;
  private readonly reflect: ReflectRule;
  /** Best paths were left out of `advertised`: the group's only member was their source. */
  private partial = false;

  constructor(
    policy: PeerInfo,
    private readonly store: AttributeStore,
    private readonly local: LocalIdentity,
    opts: ExportOptions = {},
  ) {
    this.policy = { ...policy, localAddress: { ...policy.localAddress } };
    this.reflect = opts.reflect ?? defaultReflectRule(local);
    this.communities = opts.communities ?? new ExportCommunities();
  }

  /**
   * New export communities: every best path (`routes`, the Loc-RIB's) is exported again
   * and the prefixes whose export changed are pending for the members.
   */
  setCommunities(communities: ExportCommunities, routes: Iterable<[Prefix, Path]>): void {
    this.communities = communities;
    this.withAdded = [new WeakMap(), new WeakMap()];
    const changes: BestPathChange[] = [];
    for (const [prefix, best] of routes) changes.push({ prefix, best });
    this.apply(changes);
  }

  /** Takes in best-path changes of the Loc-RIB. */
  apply(changes: readonly BestPathChange[]): void {
    const sole = this.members.size === 1 ? [...this.members.keys()][0] : undefined;
    for (const c of changes) {
      // the only member's own route goes to no one: not even exported or kept (one peer
      // feeding a full table would otherwise cost a second copy of it); fill() adds them
      // when a second member joins
      if (
        sole !== undefined &&
        c.best?.peer?.id === sole &&
        (this.advertised.size === 0 || !this.advertised.has(c.prefix)) &&
        (this.pending.size === 0 || !this.pending.has(c.prefix))
      ) {
        this.partial = true;
        continue;
      }
      const want = c.best ? this.exported(c.prefix, c.best) : undefined;
      // nothing to send and nothing sent before: skip without touching the maps
      if (want === undefined && !this.advertised.has(c.prefix) && !this.pending.has(c.prefix))
        continue;
      this.pending.set(c.prefix, want ?? null);
    }
  }

  /** The delta for all members since the last call; it counts as advertised from now on. */
  takeParts(): GroupPart[] {
    const parts = new Parts();
    for (const [prefix, want] of this.pending) {
      const had = this.advertised.get(prefix);
      if (had?.attrs === want?.attrs && had?.source === want?.source) continue;
      this.change(parts, prefix, had, want ?? undefined, false);
    }
    this.pending.clear();
    return parts.list();
  }

  /**
   * Recomputes the group's whole Adj-RIB-Out of family `afi` (both when omitted) from
   * `routes` (the Loc-RIB's best paths) and resends it: everything that exports, and
   * withdrawals of what members have but should not. Pending changes of that family
   * are included. For a group's first member, or one alone in its group.
   */
  full(routes: Iterable<[Prefix, Path]>, afi?: Afi): GroupPart[] {
    const inFamily = (p: Prefix) => afi === undefined || isV6(p) === (afi === 2);
    const now = new Map<Prefix, Exported>();
    for (const [prefix, path] of routes) {
      if (!inFamily(prefix)) continue;
      const want = this.exported(prefix, path);
      if (want) now.set(prefix, want);
    }
    const parts = new Parts();
    for (const [prefix, had] of [...this.advertised])
      if (inFamily(prefix) && !now.has(prefix)) this.change(parts, prefix, had, undefined, true);
    for (const [prefix, want] of now)
      this.change(parts, prefix, this.advertised.get(prefix), want, true);
    for (const prefix of [...this.pending.keys()])
      if (inFamily(prefix)) this.pending.delete(prefix);
    if (afi === undefined) this.partial = false;
    return parts.list();
  }

  /**
   * Before a second member is sent current(): the routes left out while the first member
   * was alone (its own, which it never gets) join the advertised state. No one is sent
   * anything for them here; the joining member gets them with current().
   */
  fill(routes: Iterable<[Prefix, Path]>): void {
    if (!this.partial) return;
    for (const [prefix, path] of routes) {
      if (this.advertised.has(prefix) || this.pending.has(prefix)) continue;
      const want = this.exported(prefix, path);
      if (want) this.advertised.set(prefix, want);
    }
    this.partial = false;
  }

  /** What member `id` has of family `afi`: the advertised state without its own routes. */
  current(id: string, afi: Afi): ExportBatch {
    const parts = new Parts();
    for (const [prefix, e] of this.advertised)
      if (isV6(prefix) === (afi === 2) && e.source !== id) parts.add(e.attrs, prefix, NONE);
    return batchFor(parts.list(), id);
  }

  /** The attributes last advertised to member `id` for `prefix`, if any. */
  advertisedAttributes(prefix: Prefix, id: string): PathAttributes | undefined {
    const e = this.advertised.get(prefix);
    return e && e.source !== id ? e.attrs : undefined;
  }

  /** Prefixes advertised to member `id`. */
  advertisedCount(id: string): number {
    let n = 0;
    for (const e of this.advertised.values()) if (e.source !== id) n++;
    return n;
  }

  /**
   * Records that members should now have `want` for `prefix` instead of `had`, and adds
   * what each member must be sent to `parts`. Members that are neither route's source
   * go from had to want; the old route's source never had it; the new route's source
   * must not have it.
   */
  private change(
    parts: Parts,
    prefix: Prefix,
    had: Exported | undefined,
    want: Exported | undefined,
    resend: boolean,
  ): void {
    if (want) this.advertised.set(prefix, want);
    else this.advertised.delete(prefix);
    const hs = had?.source;
    const ws = want?.source;
    const sources = [hs, ws].filter(
      (s, i, all): s is string => s !== undefined && all.indexOf(s) === i,
    );
    parts.add(action(had?.attrs, want?.attrs, resend), prefix, sources.length ? sources : NONE);
    if (hs !== undefined && hs !== ws && this.members.has(hs))
      parts.add(action(undefined, want?.attrs, resend), prefix, NONE, hs);
    if (ws !== undefined && ws !== hs && this.members.has(ws))
      parts.add(action(had?.attrs, undefined, resend), prefix, NONE, ws);
  }

  /**
   * Export of a best path to the group: the export filter (its operations change the
   * path before our own rewriting, as in BIRD), our own rewriting, then, when no filter
   * rule decided, the export communities of the prefix. Cached per path.
   */
  private exported(prefix: Prefix, best: Path): Exported | undefined {
    let path = best;
    let decided = false;
    const filter = this.policy.exportFilter;
    if (filter) {
      const route = {
        prefix,
        learned: !!best.peer,
        iface: best.peer?.iface,
        ibgp: this.policy.ibgp,
        attrs: best.attrs,
      };
      const out = filterRoute(filter, route);
      if (out.action === 'Reject') return undefined;
      // an Accept ends BIRD's export filter before calico_export_to_bgp_peers()
      decided = out.action === 'Accept';
      if (out.attrs && out.rule !== undefined) {
        let byRule = this.changed.get(best);
        if (!byRule) this.changed.set(best, (byRule = new Map()));
        let p = byRule.get(out.rule);
        if (!p) byRule.set(out.rule, (p = Object.freeze({ peer: best.peer, attrs: out.attrs })));
        path = p;
      }
    }
    const v6 = isV6(prefix);
    const added =
      decided || this.communities.empty ? undefined : this.communities.forPrefix(prefix);
    if (added) {
      let byKey = this.withAdded[v6 ? 1 : 0].get(path);
      if (!byKey) this.withAdded[v6 ? 1 : 0].set(path, (byKey = new Map()));
      const hit = byKey.get(added.key);
      if (hit !== undefined) return hit ?? undefined;
      const a = policyExport(path, this.policy, this.local, v6, this.reflect);
      const e = a
        ? Object.freeze({
            attrs: this.store.intern(withCommunities(a, added.add)),
            source: path.peer?.id,
          })
        : null;
      byKey.set(added.key, e);
      return e ?? undefined;
    }
    const cache = this.cache[v6 ? 1 : 0];
    const hit = cache.get(path);
    if (hit !== undefined) return hit ?? undefined;
    const a = policyExport(path, this.policy, this.local, v6, this.reflect);
    const e = a ? Object.freeze({ attrs: this.store.intern(a), source: path.peer?.id }) : null;
    cache.set(path, e);
    return e ?? undefined;
  }
}
