// The RIBs of RFC 4271 §3.2 tied together: an Adj-RIB-In per peer feeding the Loc-RIB,
// whose best-path changes go to every update group's Adj-RIB-Out and to subscribers.
// A peer is its own group unless it is added with an update-group key; peers with
// equal keys and equal export policy share one group (update-group.ts). The session
// layer calls applyUpdate() per decoded UPDATE and takeUpdates() when it flushes.
// Graceful restart (RFC 4724): peerDown() can keep a peer's routes, marked stale, while
// it has no session; they stay in the Loc-RIB (and exported) until announced again or
// flushed with flushStale().
import type { Logger } from '../log';
import type { Afi, PathAttributes, Prefix } from '../types';
import { AdjRibIn } from './adj-rib-in';
import { AttributeStore } from './attribute-store';
import { ExportCommunities, type ExportCommunityRule } from './export-communities';
import { exportPolicyKey } from './export-policy';
import { LocRib } from './loc-rib';
import { sortByPrefix } from './prefix-map';
import { batchFor, UpdateGroup, type GroupPart } from './update-group';
import type {
  BestPathChange,
  ExportBatch,
  IgpCost,
  LocalIdentity,
  Path,
  PeerInfo,
  ReflectRule,
  Route,
} from './types';

export interface RibOptions {
  localAsn: number;
  routerId: string;
  /** Set when this speaker is a route reflector (RFC 4456). */
  clusterId?: string;
  igpCost?: IgpCost;
  /** How many times our own AS may appear in an eBGP-received AS_PATH. */
  allowOwnAs?: number;
  /** Which iBGP-learned routes go to which iBGP peer (default: RFC 4456 §6 with a cluster id). */
  reflect?: ReflectRule;
  /** Import rejections are logged at debug level. */
  logger?: Logger;
  /** Communities every peer's export adds after its export filter (export-communities.ts). */
  exportCommunities?: readonly ExportCommunityRule[];
}

export type BestPathListener = (changes: readonly BestPathChange[]) => void;

interface PeerRibs {
  in: AdjRibIn;
  /** Unset while the peer has no session and only stale routes are kept. */
  group?: UpdateGroup;
  groupKey?: string;
}

export interface AddPeerOptions {
  /**
   * Share an update group with the peers added with the same key whose export policy
   * is the same: the caller's promise that they take the same encoding (4-octet AS,
   * families) and are flushed together with takeUpdates().
   */
  updateGroup?: string;
}

/** One update group's delta: its members' ids, and the parts each member gets. */
export interface GroupUpdate {
  members: string[];
  parts: GroupPart[];
}

const NO_CHANGES: BestPathChange[] = [];

export class Rib {
  readonly store = new AttributeStore();
  readonly loc: LocRib;
  private readonly local: LocalIdentity;
  private readonly peers = new Map<string, PeerRibs>();
  private readonly groups = new Map<string, UpdateGroup>();
  private readonly listeners = new Set<BestPathListener>();
  private communities: ExportCommunities;

  constructor(private readonly opts: RibOptions) {
    this.local = { asn: opts.localAsn, routerId: opts.routerId, clusterId: opts.clusterId };
    this.loc = new LocRib(this.store, { igpCost: opts.igpCost });
    this.communities = new ExportCommunities(opts.exportCommunities);
  }

  /**
   * Replaces the export communities (throws, naming the value, on a bad community). Every
   * group's exports are recomputed; what changed goes out with the next takeUpdates().
   * Returns whether anything changed.
   */
  setExportCommunities(rules: readonly ExportCommunityRule[]): boolean {
    const next = new ExportCommunities(rules);
    if (next.text === this.communities.text) return false;
    this.communities = next;
    for (const group of this.groups.values()) group.setCommunities(next, this.loc.bestPaths());
    return true;
  }

  /**
   * A peer whose session came up. Its Adj-RIB-Out starts empty (send it fullExport());
   * a peer already known keeps its PeerInfo object (updated in place) and loses the
   * routes of its previous session, unless peerDown() kept them stale: those stay.
   */
  addPeer(info: PeerInfo, opts: AddPeerOptions = {}): BestPathChange[] {
    const existing = this.peers.get(info.id);
    let changes = NO_CHANGES;
    let peer = info;
    if (existing) {
      if (existing.group) changes = this.removePeer(info.id);
      peer = existing.in.peer;
      if (peer !== info) Object.assign(peer, info);
    }
    const onReject = (reason: string, prefixes: number) =>
      this.opts.logger?.debug('routes rejected on import', { peer: peer.id, reason, prefixes });
    // a custom reflect rule may look at anything of the peer: no sharing then
    const groupKey =
      opts.updateGroup === undefined || this.opts.reflect
        ? `peer ${peer.id}`
        : `${opts.updateGroup} ${exportPolicyKey(peer)}`;
    let group = this.groups.get(groupKey);
    if (!group) {
      group = new UpdateGroup(peer, this.store, this.local, {
        reflect: this.opts.reflect,
        communities: this.communities,
      });
      this.groups.set(groupKey, group);
    }
    group.members.set(peer.id, peer);
    const kept = existing && !existing.group ? existing.in : undefined;
    this.peers.set(peer.id, {
      in:
        kept ??
        new AdjRibIn(peer, this.store, this.local, {
          allowOwnAs: peer.allowOwnAs ?? this.opts.allowOwnAs,
          onReject,
        }),
      group,
      groupKey,
    });
    return changes;
  }

  /** Session down or peer deleted: exactly its routes leave the Loc-RIB. */
  removePeer(id: string): BestPathChange[] {
    const ribs = this.peers.get(id);
    if (!ribs) return NO_CHANGES;
    this.peers.delete(id);
    this.leaveGroup(id, ribs);
    return this.withdrawFrom(ribs.in, ribs.in.clear());
  }

  /**
   * Session down with graceful restart (RFC 4724 §4.2): the routes of the families in
   * `retain` stay, marked stale, and the others are withdrawn; the peer leaves its
   * update group until addPeer(). Without families to retain this is removePeer().
   */
  peerDown(id: string, retain: readonly Afi[]): BestPathChange[] {
    const ribs = this.peers.get(id);
    if (!ribs) return NO_CHANGES;
    if (retain.length === 0) return this.removePeer(id);
    this.leaveGroup(id, ribs);
    const gone: Prefix[] = [];
    for (const afi of [1, 2] as Afi[])
      if (!retain.includes(afi)) gone.push(...ribs.in.removeFamily(afi));
    ribs.in.markStale(retain);
    return this.withdrawFrom(ribs.in, gone);
  }

  /**
   * Withdraws the peer's routes still stale, of family `afi` (all when omitted): at its
   * End-of-RIB, or when it did not come back in time. A peer without a session is
   * forgotten once it has no route left.
   */
  flushStale(id: string, afi?: Afi): BestPathChange[] {
    const ribs = this.peers.get(id);
    if (!ribs) return NO_CHANGES;
    const changes = this.withdrawFrom(ribs.in, ribs.in.removeStale(afi));
    if (!ribs.group && ribs.in.count === 0) this.peers.delete(id);
    return changes;
  }

  /** Stale routes held for the peer. */
  staleCount(id: string): number {
    return this.peers.get(id)?.in.staleCount ?? 0;
  }

  /** Whether a route is a stale one kept through a peer's restart. */
  isStale(route: Route): boolean {
    return route.peer ? (this.peers.get(route.peer.id)?.in.isStale(route.prefix) ?? false) : false;
  }

  private leaveGroup(id: string, ribs: PeerRibs): void {
    const { group, groupKey } = ribs;
    ribs.group = undefined;
    ribs.groupKey = undefined;
    if (!group) return;
    group.members.delete(id);
    if (group.members.size === 0) this.groups.delete(groupKey!);
  }

  private withdrawFrom(adjIn: AdjRibIn, prefixes: readonly Prefix[]): BestPathChange[] {
    const changes: BestPathChange[] = [];
    for (const prefix of prefixes) this.loc.set(prefix, adjIn.peer, undefined, changes);
    return this.publish(changes);
  }

  /**
   * One UPDATE's worth from a peer: `withdrawn`, then `nlri` announced with `attrs`
   * (null: nothing announced). Returns the best-path changes.
   */
  applyUpdate(
    id: string,
    withdrawn: readonly Prefix[],
    attrs: PathAttributes | null,
    nlri: readonly Prefix[],
  ): BestPathChange[] {
    const ribs = this.peers.get(id);
    if (!ribs?.group) throw new Error(`UPDATE from peer ${id}, which has no session in the RIB`);
    const changes: BestPathChange[] = [];
    const adjIn = ribs.in;
    const { loc } = this;
    const peer = adjIn.peer;
    adjIn.applyEach(withdrawn, attrs, nlri, (prefix, path) => loc.set(prefix, peer, path, changes));
    return this.publish(changes);
  }

  originate(prefix: Prefix, attrs: PathAttributes): BestPathChange[] {
    return this.publish(this.loc.originate(prefix, attrs));
  }

  withdrawOriginated(prefix: Prefix): BestPathChange[] {
    return this.publish(this.loc.withdrawLocal(prefix));
  }

  /** Runs the decision again where several candidates compete (after IGP cost changes). */
  reselect(): BestPathChange[] {
    return this.publish(this.loc.reselect());
  }

  /** Calls `listener` with every non-empty batch of best-path changes; returns an unsubscribe. */
  subscribe(listener: BestPathListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  best(prefix: Prefix): Path | undefined {
    return this.loc.best(prefix);
  }

  candidates(prefix: Prefix): Path[] {
    return this.loc.candidates(prefix);
  }

  bestRoutes(): Route[] {
    return this.loc.bestRoutes();
  }

  bestCount(): number {
    return this.loc.size;
  }

  /** Prefixes in the peer's Adj-RIB-In (for max-prefix limits and status). */
  receivedCount(id: string): number {
    return this.peers.get(id)?.in.count ?? 0;
  }

  routesFromPeer(id: string): Route[] {
    const ribs = this.peers.get(id);
    if (!ribs) return [];
    const out: Route[] = [];
    for (const [prefix, p] of ribs.in.entries()) out.push({ prefix, peer: p.peer, attrs: p.attrs });
    return sortByPrefix(out, (r) => r.prefix);
  }

  /** Distinct attribute sets in use (received and exported). */
  attributeSetCount(): number {
    return this.store.size;
  }

  adjRibIn(id: string): AdjRibIn | undefined {
    return this.peers.get(id)?.in;
  }

  /** The update group whose Adj-RIB-Out the peer shares. */
  updateGroup(id: string): UpdateGroup | undefined {
    return this.peers.get(id)?.group;
  }

  /**
   * Adj-RIB-Out delta since the last call: what the peer must be sent now. For a peer
   * alone in its group; peers sharing one are flushed together with takeUpdates().
   */
  takePending(id: string): ExportBatch {
    const group = this.peers.get(id)?.group;
    if (!group) return { withdrawn: [], announce: [] };
    if (group.members.size > 1)
      throw new Error(`peer ${id} shares an update group: flush it with takeUpdates()`);
    return batchFor(group.takeParts(), id);
  }

  /** Every update group's delta since the last call (groups without one are left out). */
  takeUpdates(): GroupUpdate[] {
    const out: GroupUpdate[] = [];
    for (const group of this.groups.values()) {
      const parts = group.takeParts();
      if (parts.length) out.push({ members: [...group.members.keys()], parts });
    }
    return out;
  }

  /**
   * The whole Adj-RIB-Out of a family, for a new session or a ROUTE-REFRESH. A peer
   * alone in its group gets it recomputed from the Loc-RIB; one joining others gets
   * what they have, and their pending changes with the next takeUpdates().
   */
  fullExport(id: string, afi: Afi): ExportBatch {
    const group = this.peers.get(id)?.group;
    if (!group) return { withdrawn: [], announce: [] };
    if (group.members.size > 1) {
      group.fill(this.loc.bestPaths());
      return group.current(id, afi);
    }
    return batchFor(group.full(this.loc.bestPaths(), afi), id);
  }

  private publish(changes: BestPathChange[]): BestPathChange[] {
    if (changes.length === 0) return changes;
    for (const group of this.groups.values()) group.apply(changes);
    for (const l of this.listeners) l(changes);
    return changes;
  }
}
