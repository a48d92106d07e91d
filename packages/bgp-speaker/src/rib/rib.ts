// The RIBs of RFC 4271 §3.2: an Adj-RIB-In per peer, the Loc-RIB of best paths, and
// an Adj-RIB-Out per peer. Built for bulk: a route costs one Map entry per RIB it is
// in, paths are interned per (peer, attribute set), and a prefix with one candidate
// stores the path itself rather than an array.
import type { PathAttributes, Prefix } from '../types';
import { AttributeStore } from './attribute-store';
import { selectBest } from './decision';
import { exportAttributes, type LocalIdentity } from './export-policy';
import type { BestPathChange, ExportBatch, Path, PeerInfo, Route } from './types';

export interface RibOptions {
  localAsn: number;
  routerId: string;
  clusterId?: string;
  igpCost?: (nextHop: string) => number;
  /** How many times our own AS may appear in a received AS_PATH (BIRD's "allow local as"). */
  allowOwnAs?: number;
}

interface PeerState {
  info: PeerInfo;
  adjIn: Map<Prefix, Path>;
  /** Interned paths of this peer, by (interned) attribute set. */
  paths: Map<PathAttributes, { path: Path; refs: number }>;
  /** Adj-RIB-Out: what this peer was last sent. */
  advertised: Map<Prefix, PathAttributes>;
  /** Prefixes whose best path changed since the last takePending(). */
  dirty: Set<Prefix>;
  exportCache: [WeakMap<Path, PathAttributes | null>, WeakMap<Path, PathAttributes | null>];
}

/** Loc-RIB entry: the only candidate, or all candidates with the best first. */
type Candidates = Path | Path[];

const isV6 = (p: Prefix) => p.includes(':');

export class Rib {
  private readonly store = new AttributeStore();
  private readonly peers = new Map<string, PeerState>();
  private readonly loc = new Map<Prefix, Candidates>();
  private readonly localPaths = new Map<PathAttributes, { path: Path; refs: number }>();
  private readonly originated = new Map<Prefix, Path>();
  private readonly local: LocalIdentity;

  constructor(private readonly opts: RibOptions) {
    this.local = { asn: opts.localAsn, routerId: opts.routerId, clusterId: opts.clusterId };
  }

  addPeer(info: PeerInfo): void {
    const existing = this.peers.get(info.id);
    if (existing) {
      existing.info = info;
      existing.advertised.clear();
      existing.dirty.clear();
      existing.exportCache = [new WeakMap(), new WeakMap()];
      return;
    }
    this.peers.set(info.id, {
      info,
      adjIn: new Map(),
      paths: new Map(),
      advertised: new Map(),
      dirty: new Set(),
      exportCache: [new WeakMap(), new WeakMap()],
    });
  }

  /** Session down or peer deleted: its routes leave the Loc-RIB. */
  removePeer(id: string): BestPathChange[] {
    const st = this.peers.get(id);
    if (!st) return [];
    const changes: BestPathChange[] = [];
    for (const [prefix, path] of st.adjIn) this.replace(prefix, path, undefined, changes);
    for (const { path } of st.paths.values()) this.store.unref(path.attrs);
    this.peers.delete(id);
    this.markDirty(changes);
    return changes;
  }

  /** Why a path from this peer must be ignored on import, if it must (loop checks). */
  private importRejection(info: PeerInfo, a: PathAttributes): string | undefined {
    let own = 0;
    for (const s of a.asPath) for (const asn of s.asns) if (asn === this.opts.localAsn) own++;
    if (own > (this.opts.allowOwnAs ?? 0)) return 'AS path loop';
    if (info.ibgp) {
      if (a.originatorId === this.opts.routerId) return 'ORIGINATOR_ID is our router id';
      const cluster = this.opts.clusterId ?? this.opts.routerId;
      if (a.clusterList?.includes(cluster)) return 'CLUSTER_LIST contains our cluster id';
    }
    return undefined;
  }

  /**
   * Applies one UPDATE's worth from a peer: withdrawals, then `nlri` announced with
   * `attrs` (null: announce nothing). Returns the Loc-RIB changes.
   */
  applyUpdate(
    id: string,
    withdrawn: Prefix[],
    attrs: PathAttributes | null,
    nlri: Prefix[],
  ): BestPathChange[] {
    const st = this.peers.get(id);
    if (!st) throw new Error(`update from unknown peer ${id}`);
    const changes: BestPathChange[] = [];
    for (const p of withdrawn) this.setPeerRoute(st, p, undefined, changes);
    if (attrs && nlri.length) {
      let path: Path | undefined;
      let a = attrs;
      // LOCAL_PREF from another AS is not ours to honour (RFC 4271 §5.1.5)
      if (!st.info.ibgp && a.localPref !== undefined) a = { ...a, localPref: undefined };
      if (!this.importRejection(st.info, a)) path = this.peerPath(st, this.store.intern(a));
      for (const p of nlri) this.setPeerRoute(st, p, path, changes);
    }
    this.markDirty(changes);
    return changes;
  }

  originate(prefix: Prefix, attrs: PathAttributes): BestPathChange[] {
    const a = this.store.intern(attrs);
    let e = this.localPaths.get(a);
    if (!e) {
      e = { path: { attrs: a }, refs: 0 };
      this.store.ref(a);
      this.localPaths.set(a, e);
    }
    const changes: BestPathChange[] = [];
    const old = this.originated.get(prefix);
    if (old === e.path) return changes;
    e.refs++;
    this.originated.set(prefix, e.path);
    this.replace(prefix, old, e.path, changes);
    if (old) this.releaseLocal(old);
    this.markDirty(changes);
    return changes;
  }

  withdrawOriginated(prefix: Prefix): BestPathChange[] {
    const old = this.originated.get(prefix);
    const changes: BestPathChange[] = [];
    if (!old) return changes;
    this.originated.delete(prefix);
    this.replace(prefix, old, undefined, changes);
    this.releaseLocal(old);
    this.markDirty(changes);
    return changes;
  }

  best(prefix: Prefix): Path | undefined {
    const c = this.loc.get(prefix);
    return Array.isArray(c) ? c[0] : c;
  }

  bestRoutes(): Route[] {
    const out: Route[] = [];
    for (const [prefix, c] of this.loc) {
      const b = Array.isArray(c) ? c[0] : c;
      out.push({ prefix, peer: b.peer, attrs: b.attrs });
    }
    return out;
  }

  /** All candidate paths of a prefix, best first. */
  candidates(prefix: Prefix): Path[] {
    const c = this.loc.get(prefix);
    return c === undefined ? [] : Array.isArray(c) ? [...c] : [c];
  }

  bestCount(): number {
    return this.loc.size;
  }

  /** Prefixes in the peer's Adj-RIB-In (for max-prefix limits and status). */
  receivedCount(id: string): number {
    return this.peers.get(id)?.adjIn.size ?? 0;
  }

  routesFromPeer(id: string): Route[] {
    const st = this.peers.get(id);
    if (!st) return [];
    return [...st.adjIn].map(([prefix, p]) => ({ prefix, peer: p.peer, attrs: p.attrs }));
  }

  attributeSetCount(): number {
    return this.store.size;
  }

  /** Adj-RIB-Out delta since the last call: what the peer must be sent now. */
  takePending(id: string): ExportBatch {
    const st = this.peers.get(id);
    const batch: ExportBatch = { withdrawn: [], announce: [] };
    if (!st) return batch;
    const groups = new Map<PathAttributes, Prefix[]>();
    for (const prefix of st.dirty) this.exportOne(st, prefix, batch, groups);
    st.dirty.clear();
    for (const [attrs, prefixes] of groups) batch.announce.push({ attrs, prefixes });
    return batch;
  }

  /** The whole Adj-RIB-Out of a family, for a new session or a ROUTE-REFRESH. */
  fullExport(id: string, afi: 1 | 2): ExportBatch {
    const st = this.peers.get(id);
    const batch: ExportBatch = { withdrawn: [], announce: [] };
    if (!st) return batch;
    const v6 = afi === 2;
    for (const p of [...st.advertised.keys()]) if (isV6(p) === v6) st.advertised.delete(p);
    const groups = new Map<PathAttributes, Prefix[]>();
    for (const prefix of this.loc.keys()) {
      if (isV6(prefix) !== v6) continue;
      st.dirty.delete(prefix);
      this.exportOne(st, prefix, batch, groups);
    }
    for (const [attrs, prefixes] of groups) batch.announce.push({ attrs, prefixes });
    return batch;
  }

  private exportOne(
    st: PeerState,
    prefix: Prefix,
    batch: ExportBatch,
    groups: Map<PathAttributes, Prefix[]>,
  ) {
    const best = this.best(prefix);
    const want = best ? this.exported(st, best, isV6(prefix)) : undefined;
    const had = st.advertised.get(prefix);
    if (want === had) return;
    if (!want) {
      st.advertised.delete(prefix);
      batch.withdrawn.push(prefix);
      return;
    }
    st.advertised.set(prefix, want);
    const g = groups.get(want);
    if (g) g.push(prefix);
    else groups.set(want, [prefix]);
  }

  /** Export attributes of a path to a peer, interned and cached per (peer, path). */
  private exported(st: PeerState, path: Path, v6: boolean): PathAttributes | undefined {
    const cache = st.exportCache[v6 ? 1 : 0];
    const hit = cache.get(path);
    if (hit !== undefined) return hit ?? undefined;
    const a = exportAttributes(path, st.info, this.local, v6);
    const interned = a ? this.store.intern(a) : undefined;
    cache.set(path, interned ?? null);
    return interned;
  }

  private markDirty(changes: BestPathChange[]): void {
    if (changes.length === 0) return;
    for (const st of this.peers.values()) for (const c of changes) st.dirty.add(c.prefix);
  }

  private peerPath(st: PeerState, attrs: PathAttributes): Path {
    let e = st.paths.get(attrs);
    if (!e) {
      e = { path: { peer: st.info, attrs }, refs: 0 };
      this.store.ref(attrs);
      st.paths.set(attrs, e);
    }
    return e.path;
  }

  private setPeerRoute(
    st: PeerState,
    prefix: Prefix,
    path: Path | undefined,
    changes: BestPathChange[],
  ) {
    const old = st.adjIn.get(prefix);
    if (old === path) return;
    if (path) {
      st.adjIn.set(prefix, path);
      st.paths.get(path.attrs)!.refs++;
    } else st.adjIn.delete(prefix);
    this.replace(prefix, old, path, changes);
    if (old) {
      const e = st.paths.get(old.attrs)!;
      if (--e.refs === 0) {
        st.paths.delete(old.attrs);
        this.store.unref(old.attrs);
      }
    }
  }

  private releaseLocal(path: Path): void {
    const e = this.localPaths.get(path.attrs)!;
    if (--e.refs === 0) {
      this.localPaths.delete(path.attrs);
      this.store.unref(path.attrs);
    }
  }

  /** Replaces candidate `old` of a prefix by `next` (either may be absent); records a change. */
  private replace(
    prefix: Prefix,
    old: Path | undefined,
    next: Path | undefined,
    changes: BestPathChange[],
  ) {
    const cur = this.loc.get(prefix);
    const previous = Array.isArray(cur) ? cur[0] : cur;
    let list: Path[];
    if (cur === undefined) list = [];
    else if (Array.isArray(cur)) list = cur;
    else list = [cur];
    if (old) list = list.filter((p) => p !== old);
    if (next) list = list.length ? [...list, next] : [next];
    let best: Path | undefined;
    if (list.length === 0) this.loc.delete(prefix);
    else if (list.length === 1) {
      best = list[0];
      this.loc.set(prefix, best);
    } else {
      best = selectBest(list, this.opts.igpCost)!;
      this.loc.set(prefix, [best, ...list.filter((p) => p !== best)]);
    }
    if (best !== previous) changes.push({ prefix, best, previous });
  }
}
