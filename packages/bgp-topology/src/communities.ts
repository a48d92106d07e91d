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
// We attach them where the route is made (the speaker's originated routes), which is
// what BIRD's export filter gives for this node's own routes. Pure.
import type { Resource } from '@tortie/api';
import { containsCidr, parseCidr, type Cidr } from '@tortie/netaddr';

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

/**
 * The communities of each prefix inside some rule's CIDR (BIRD's `net ~ CIDR`: the same
 * family, equal or more specific), in rule order without repeats. Prefixes no rule covers
 * are left out.
 */
export function communitiesOf(
  prefixes: Iterable<string>,
  rules: CommunityRule[],
): Record<string, string[]> {
  if (!rules.length) return {};
  const parsed: Array<{ net: Cidr; communities: string[] }> = rules.map((r) => ({
    net: parseCidr(r.cidr),
    communities: r.communities,
  }));
  const out: Record<string, string[]> = {};
  for (const prefix of prefixes) {
    const p = parseCidr(prefix);
    const values = new Set<string>();
    for (const r of parsed)
      if (containsCidr(r.net, p)) for (const c of r.communities) values.add(c);
    if (values.size) out[prefix] = [...values];
  }
  return out;
}

/** Splits community values into the speaker's two attributes. */
export function splitCommunities(values: string[]): {
  communities: string[];
  largeCommunities: string[];
} {
  const large = (c: string) => c.split(':').length === 3;
  return {
    communities: values.filter((c) => !large(c)),
    largeCommunities: values.filter(large),
  };
}
