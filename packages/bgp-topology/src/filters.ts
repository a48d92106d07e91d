// A BGPPeer's `filters` as the speaker's per-peer rules, as confd builds each session's
// import and export filter (bgp_processor.go buildImportFilter/buildExportFilter): the
// named BGPFilters in the peer's order, each contributing its rules of the session's
// family (importV4/exportV4 or importV6/exportV6), with their matches and operations. A name with no BGPFilter is skipped,
// as confd skips a key it cannot read. Pure.
import type { Resource } from '@tortie/api';
import type { FilterOperation, FilterRule } from '@tortie/bgp-speaker';
import { formatCidr, parseCidr } from '@tortie/netaddr';
import type { PeerContext } from './context';
import type { BgpPeer } from './types';

type Rule = NonNullable<Resource<'BGPFilter'>['spec']['importV4']>[number];

type Operation = NonNullable<Rule['operations']>[number];

/** One operation in the speaker's terms (the API allows exactly one field). */
function operation(o: Operation): FilterOperation {
  if (o.addCommunity) return { addCommunity: o.addCommunity.value };
  if (o.prependASPath) return { prependASPath: o.prependASPath.prefix };
  return { setPriority: o.setPriority!.value };
}

/** One rule in the speaker's terms: the CIDR canonical, communities as its one value. */
function speakerRule(r: Rule): FilterRule {
  return {
    ...(r.cidr ? { cidr: formatCidr(parseCidr(r.cidr)) } : {}),
    ...(r.matchOperator ? { matchOperator: r.matchOperator } : {}),
    ...(r.prefixLength ? { prefixLength: r.prefixLength } : {}),
    ...(r.source ? { source: r.source } : {}),
    ...(r.interface ? { interface: r.interface } : {}),
    ...(r.peerType ? { peerType: r.peerType } : {}),
    // confd matches the first (today: the only) value
    ...(r.communities?.values.length ? { community: r.communities.values[0] } : {}),
    ...(r.asPathPrefix?.length ? { asPathPrefix: r.asPathPrefix } : {}),
    ...(r.priority !== undefined ? { priority: r.priority } : {}),
    action: r.action,
    ...(r.operations?.length ? { operations: r.operations.map(operation) } : {}),
  };
}

export function filterRules(
  c: PeerContext,
  names: readonly string[] | undefined,
): Pick<BgpPeer, 'importFilter' | 'exportFilter'> {
  const found = (names ?? []).flatMap((n) => c.filters.get(n) ?? []);
  const v6 = c.family === 6;
  const importFilter = found.flatMap((f) => (v6 ? f.spec.importV6 : f.spec.importV4) ?? []);
  const exportFilter = found.flatMap((f) => (v6 ? f.spec.exportV6 : f.spec.exportV4) ?? []);
  return {
    ...(importFilter.length ? { importFilter: importFilter.map(speakerRule) } : {}),
    ...(exportFilter.length ? { exportFilter: exportFilter.map(speakerRule) } : {}),
  };
}
