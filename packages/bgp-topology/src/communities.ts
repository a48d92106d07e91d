// BGPConfiguration `communities` and `prefixAdvertisements`, as calico-node applies them.
// confd (client.go getPrefixAdvertisementsKVPair, bgp_processor.go processCommunityRules)
// turns each prefixAdvertisement into one BIRD rule of the export filter every BGP session
// runs (bird.cfg.template apply_communities):
//   if ( net ~ CIDR ) then { bgp_community.add((aa, nn)); bgp_large_community.add((aa, nn, mm)); }
// so every exported route inside the CIDR (the CIDR itself, and anything more specific:
// blocks, service ranges, /32s of Local services) gets the communities of every rule it
// falls in. A name is looked up in `communities`, anything else is a literal value; each
// rule's list is deduplicated and sorted as strings. The node's own "node.<name>"
// configuration, when it has prefixAdvertisements, replaces the default's entirely.
// The rules go to the speaker as its exportCommunities: like BIRD, it adds them to what
// each session is sent, after that session's BGPFilter export rules (which therefore
// never see them), to learned routes too. Pure.
import type { Resource } from '@tortie/api';

type Config = Resource<'BGPConfiguration'>;

export interface CommunityRule {
  cidr: string;
  /** "aa:nn" (RFC 1997) and "aa:nn:mm" (RFC 8092) values, deduplicated and sorted. */
  communities: string[];
}

const isCommunityValue = (c: string) => /^\d+:\d+(:\d+)?$/.test(c);

/** The rules that apply on `node`: its own configuration's, else the default's. */
export function communityRules(configs: Iterable<Config>, node: string): CommunityRule[] {
  const byName = new Map<string, Config>();
  for (const c of configs) byName.set(c.metadata.name, c);
  const own = byName.get(`node.${node}`)?.spec;
  const spec = own?.prefixAdvertisements ? own : byName.get('default')?.spec;
  const named = new Map((spec?.communities ?? []).map((c) => [c.name, c.value]));
  return (spec?.prefixAdvertisements ?? []).flatMap(({ cidr, communities }) => {
    const values = new Set<string>();
    for (const c of communities) {
      const v = isCommunityValue(c) ? c : named.get(c);
      if (v !== undefined) values.add(v);
    }
    return values.size ? [{ cidr, communities: [...values].sort() }] : [];
  });
}
