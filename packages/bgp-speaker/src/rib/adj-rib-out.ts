// Adj-RIB-Out of one peer (RFC 4271 §3.2, §9.2): what it was sent, and what it must be
// sent next. It is an update group with this peer as its only member (update-group.ts
// holds the logic): best-path changes are turned into the peer's view at once (export
// policy, interned so equal attribute sets are one object); takePending() then
// compares against what was advertised, so a re-announcement with unchanged
// attributes costs nothing on the wire, withdrawals go only for prefixes the peer has,
// and announcements come grouped by attribute set for packing into few UPDATEs.
import type { Afi, PathAttributes, Prefix } from '../types';
import type { AttributeStore } from './attribute-store';
import { batchFor, UpdateGroup, type ExportOptions } from './update-group';
import type { BestPathChange, ExportBatch, LocalIdentity, Path, PeerInfo } from './types';

export type { ExportOptions } from './update-group';

export class AdjRibOut {
  private readonly group: UpdateGroup;

  constructor(
    readonly peer: PeerInfo,
    store: AttributeStore,
    local: LocalIdentity,
    opts: ExportOptions = {},
  ) {
    this.group = new UpdateGroup(peer, store, local, opts);
    this.group.members.set(peer.id, peer);
  }

  /** Takes in best-path changes of the Loc-RIB. */
  apply(changes: readonly BestPathChange[]): void {
    this.group.apply(changes);
  }

  /** The delta to send since the last call; it counts as advertised from now on. */
  takePending(): ExportBatch {
    return batchFor(this.group.takeParts(), this.peer.id);
  }

  /**
   * Everything the peer should have, for a new session or a ROUTE-REFRESH: all of
   * `routes` (the Loc-RIB's best paths) that export to it, of family `afi` (both when
   * omitted), plus withdrawals of what it has but should not. Pending changes of that
   * family are included.
   */
  full(routes: Iterable<[Prefix, Path]>, afi?: Afi): ExportBatch {
    return batchFor(this.group.full(routes, afi), this.peer.id);
  }

  /** The attributes last advertised for `prefix`, if any. */
  advertisedAttributes(prefix: Prefix): PathAttributes | undefined {
    return this.group.advertisedAttributes(prefix, this.peer.id);
  }

  get advertisedCount(): number {
    return this.group.advertisedCount(this.peer.id);
  }
}
