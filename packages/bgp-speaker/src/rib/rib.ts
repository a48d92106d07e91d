// The RIBs of RFC 4271 §3.2 tied together: an Adj-RIB-In per peer feeding the Loc-RIB,
// whose best-path changes go to every peer's Adj-RIB-Out and to subscribers. The
// session layer calls applyUpdate() per decoded UPDATE and takePending() per peer
// when it flushes.
import type { Logger } from '../log';
import type { Afi, PathAttributes, Prefix } from '../types';
import { AdjRibIn } from './adj-rib-in';
import { AdjRibOut } from './adj-rib-out';
import { AttributeStore } from './attribute-store';
import { LocRib } from './loc-rib';
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
}

export type BestPathListener = (changes: readonly BestPathChange[]) => void;

interface PeerRibs {
  in: AdjRibIn;
  out: AdjRibOut;
}

const NO_CHANGES: BestPathChange[] = [];

export class Rib {
  readonly store = new AttributeStore();
  readonly loc: LocRib;
  private readonly local: LocalIdentity;
  private readonly peers = new Map<string, PeerRibs>();
  private readonly listeners = new Set<BestPathListener>();

  constructor(private readonly opts: RibOptions) {
    this.local = { asn: opts.localAsn, routerId: opts.routerId, clusterId: opts.clusterId };
    this.loc = new LocRib(this.store, { igpCost: opts.igpCost });
  }

  /**
   * A peer whose session came up. Its Adj-RIB-Out starts empty (send it fullExport());
   * a peer already known keeps its PeerInfo object (updated in place) but loses the
   * routes of its previous session.
   */
  addPeer(info: PeerInfo): BestPathChange[] {
    const existing = this.peers.get(info.id);
    let changes = NO_CHANGES;
    let peer = info;
    if (existing) {
      changes = this.removePeer(info.id);
      peer = existing.in.peer;
      if (peer !== info) Object.assign(peer, info);
    }
    const onReject = (reason: string, prefixes: number) =>
      this.opts.logger?.debug('routes rejected on import', { peer: peer.id, reason, prefixes });
    this.peers.set(peer.id, {
      in: new AdjRibIn(peer, this.store, this.local, {
        allowOwnAs: this.opts.allowOwnAs,
        onReject,
      }),
      out: new AdjRibOut(peer, this.store, this.local, { reflect: this.opts.reflect }),
    });
    return changes;
  }

  /** Session down or peer deleted: exactly its routes leave the Loc-RIB. */
  removePeer(id: string): BestPathChange[] {
    const ribs = this.peers.get(id);
    if (!ribs) return NO_CHANGES;
    this.peers.delete(id);
    const changes: BestPathChange[] = [];
    for (const prefix of ribs.in.clear()) this.loc.set(prefix, ribs.in.peer, undefined, changes);
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
    if (!ribs) throw new Error(`UPDATE from peer ${id}, which has no session in the RIB`);
    const changes: BestPathChange[] = [];
    const adjIn = ribs.in;
    for (const prefix of adjIn.apply(withdrawn, attrs, nlri))
      this.loc.set(prefix, adjIn.peer, adjIn.get(prefix), changes);
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
    return out;
  }

  /** Distinct attribute sets in use (received and exported). */
  attributeSetCount(): number {
    return this.store.size;
  }

  adjRibIn(id: string): AdjRibIn | undefined {
    return this.peers.get(id)?.in;
  }

  adjRibOut(id: string): AdjRibOut | undefined {
    return this.peers.get(id)?.out;
  }

  /** Adj-RIB-Out delta since the last call: what the peer must be sent now. */
  takePending(id: string): ExportBatch {
    return this.peers.get(id)?.out.takePending() ?? { withdrawn: [], announce: [] };
  }

  /** The whole Adj-RIB-Out of a family, for a new session or a ROUTE-REFRESH. */
  fullExport(id: string, afi: Afi): ExportBatch {
    return (
      this.peers.get(id)?.out.full(this.loc.bestPaths(), afi) ?? { withdrawn: [], announce: [] }
    );
  }

  private publish(changes: BestPathChange[]): BestPathChange[] {
    if (changes.length === 0) return changes;
    for (const { out } of this.peers.values()) out.apply(changes);
    for (const l of this.listeners) l(changes);
    return changes;
  }
}
