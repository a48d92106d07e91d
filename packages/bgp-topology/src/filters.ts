// A BGPPeer's `filters` as the speaker's per-peer rules, as confd builds each session's
// import and export filter (bgp_processor.go buildImportFilter/buildExportFilter): the
// named BGPFilters in the peer's order, each contributing its rules of the session's
// family (importV4/exportV4 or importV6/exportV6). A name with no BGPFilter is skipped,
// as confd skips a key it cannot read. Pure.
import type { Resource } from '@tortie/api';
import type { FilterRule } from '@tortie/bgp-speaker';
import { formatCidr, parseCidr } from '@tortie/netaddr';
import type { PeerContext } from './context';
import type { BgpPeer } from './types';

type Rule = NonNullable<Resource<'BGPFilter'>['spec']['importV4']>[number];

/** One rule in the speaker's terms: only the fields it matches on, the CIDR canonical. */
function speakerRule(r: Rule): FilterRule {
  return {
    ...(r.cidr ? { cidr: formatCidr(parseCidr(r.cidr)) } : {}),
    ...(r.matchOperator ? { matchOperator: r.matchOperator } : {}),
    ...(r.prefixLength ? { prefixLength: r.prefixLength } : {}),
    ...(r.source ? { source: r.source } : {}),
    ...(r.interface ? { interface: r.interface } : {}),
    ...(r.peerType ? { peerType: r.peerType } : {}),
    action: r.action,
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
