// Communities added on export, per prefix: Calico's BGPConfiguration prefixAdvertisements.
// confd renders them into BIRD's `apply_communities()`:
//   if ( net ~ CIDR ) then { bgp_community.add((aa, nn)); bgp_large_community.add((aa, nn, mm)); }
// called from `calico_export_to_bgp_peers()`, which every session's export filter runs
// (mesh, global and per-node BGPPeers, local workload peers; bird.cfg and bird6.cfg
// alike) AFTER the peer's BGPFilter export functions. So:
//   - a BGPFilter export rule never sees these communities (they are not on the route yet);
//   - a route an export rule Accepts or Rejects never gets them (BIRD's `accept`/`reject`
//     in a function ends the whole filter, calico_export_to_bgp_peers is not reached);
//   - every route that reaches it gets them, learned and reflected ones too, not only the
//     node's own blocks (apply_communities looks at the prefix alone);
//   - they are added to what this session is sent, not to the route: the Loc-RIB keeps
//     the route as it was.
// BIRD checks NO_EXPORT / NO_ADVERTISE before the export filter (bgp_preexport), so a
// well-known community added here does not stop the route on this session. Pure.
import { parseCommunity, type Community } from '../community';
import type { Prefix } from '../types';
import { prefixWithin } from './route-filter';

export interface ExportCommunityRule {
  /** Routes equal to or inside this prefix (BIRD's `net ~ CIDR`) get `communities`. */
  cidr: Prefix;
  /** "aa:nn" and "aa:nn:mm" values. */
  communities: readonly string[];
}

/** What a prefix is given: the values, and a key naming the rules that gave them. */
export interface PrefixCommunities {
  key: string;
  add: readonly Community[];
}

export class ExportCommunities {
  private readonly rules: ReadonlyArray<{ cidr: Prefix; add: Community[] }>;
  /** The rules as given, to tell a change from the same rules again. */
  readonly text: string;

  constructor(rules: readonly ExportCommunityRule[] = []) {
    this.rules = rules.map((r) => ({
      cidr: r.cidr,
      add: r.communities.map((c) => parseCommunity(c)),
    }));
    this.text = JSON.stringify(rules.map((r) => [r.cidr, r.communities]));
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /**
   * The communities `prefix` gets: every matching rule's, in rule order (BIRD runs the
   * `if`s in order and `.add` skips values already there); undefined when none matches.
   */
  forPrefix(prefix: Prefix): PrefixCommunities | undefined {
    let key = '';
    let add: Community[] | undefined;
    for (let i = 0; i < this.rules.length; i++) {
      const r = this.rules[i];
      if (!prefixWithin(prefix, r.cidr)) continue;
      key += `${i},`;
      add = add ? add.concat(r.add) : r.add;
    }
    return add ? { key, add } : undefined;
  }
}
