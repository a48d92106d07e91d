// One DataplaneRule -> nft rule texts for one family, the nftables counterpart of
// ../acl/rule-render.ts (same reading of every field, as the reference evaluator). Pure.
//
// nft says in one rule what iptables needs mark-bit blocks for: several nets are an
// anonymous set (`ip saddr { a, b }`), a positive net beside negated ones is two matches,
// port lists have no 15-slot limit. What is left as an OR of different matches (numeric
// ports beside named-port sets, or several named-port sets) becomes one rule per
// alternative, each with the same verdict. Only "notICMP" on a rule that is not itself
// ICMP ("not (ICMP and type t)") needs a scratch mark bit: set, cleared when the
// excluded packet matches, required by the main rule.
//
// Allow sets the accept bit and returns; Pass sets the pass bit and returns; Deny drops;
// Log logs. A rule that cannot match in this family renders nothing; one that cannot be
// rendered faithfully is a `problem` (the caller fails its policy closed).
import type { DataplaneRule, PortRange } from '../../types';
import type { Family } from '../acl/names';
import type { MarkBits } from '../acl/marks';
import { netsForFamily } from '../acl/rule-render';
import { nftSetName } from './names';

export interface RenderedNftRule {
  rules: string[];
  /** nft set names the rules refer to */
  sets: string[];
  problem?: string;
}

const ICMP = { 4: 1, 6: 58 } as const;
const ICMP_ANY = 255;
/** Protocols whose ports `th sport/dport` reads (TCP, UDP, SCTP, UDPLite, DCCP). */
const PORT_PROTOCOLS = new Set([6, 17, 132, 136, 33]);

export const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
/** `meta mark & bit == bit` */
export const markSet = (bit: number) => `meta mark & ${hex(bit)} == ${hex(bit)}`;
/** `meta mark & bits == 0` */
export const markClear = (bits: number) => `meta mark & ${hex(bits)} == 0x0`;
export const setBits = (bits: number) => `meta mark set meta mark | ${hex(bits)}`;
export const clearBits = (bits: number) => `meta mark set meta mark & ${hex(~bits)}`;

const anon = (xs: string[]) => (xs.length === 1 ? xs[0] : `{ ${xs.join(', ')} }`);
const portText = (r: PortRange) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`);

function icmpMatch(family: Family, m: { type?: number; code?: number }, negated: boolean): string {
  const k = family === 4 ? 'icmp' : 'icmpv6';
  if (m.code === undefined) return `${k} type ${negated ? '!= ' : ''}${m.type}`;
  if (!negated) return `${k} type ${m.type} ${k} code ${m.code}`;
  return `${k} type . ${k} code != { ${m.type} . ${m.code} }`;
}

export function renderNftRule(r: DataplaneRule, family: Family, marks: MarkBits): RenderedNftRule {
  const none: RenderedNftRule = { rules: [], sets: [] };
  const bad = (why: string): RenderedNftRule => ({ ...none, problem: `rule ${r.ruleId}: ${why}` });
  if (r.invalid) return bad(r.invalid);
  if (r.ipVersion !== undefined && r.ipVersion !== family) return none;
  const ip = family === 4 ? 'ip' : 'ip6';

  const n = netsForFamily(r, family);
  if (n.kind === 'bad') return bad(n.why);
  if (n.kind === 'none') return none;
  const { nets } = n;

  let protocol = r.protocol;
  let notProtocol = r.notProtocol;
  let icmp = r.icmp;
  let notIcmp = r.notIcmp;
  for (const m of [icmp, notIcmp])
    if (m && m.type === undefined && m.code !== undefined)
      return bad('an ICMP code needs an ICMP type');
  if (icmp && icmp.type === undefined) icmp = undefined;
  if (notIcmp && notIcmp.type === undefined) notIcmp = undefined;
  if (protocol === 0 || notProtocol === 0) return bad('protocol 0 is not a protocol');
  if (icmp) {
    if (icmp.type === ICMP_ANY) return none;
    if (protocol === undefined) protocol = ICMP[family];
    else if (protocol !== ICMP[family]) return none;
  }
  if ((protocol === 1 && family === 6) || (protocol === 58 && family === 4)) return none;
  if (
    notIcmp &&
    (notIcmp.type === ICMP_ANY || (protocol !== undefined && protocol !== ICMP[family]))
  )
    notIcmp = undefined;
  if (protocol !== undefined && notProtocol !== undefined) {
    if (protocol === notProtocol) return none;
    notProtocol = undefined;
  }
  const numericPorts = !!(
    r.srcPorts?.length ||
    r.dstPorts?.length ||
    r.notSrcPorts?.length ||
    r.notDstPorts?.length
  );
  const namedPorts = !!(
    r.srcNamedPortIpSetIds?.length ||
    r.dstNamedPortIpSetIds?.length ||
    r.notSrcNamedPortIpSetIds?.length ||
    r.notDstNamedPortIpSetIds?.length
  );
  const portless = protocol !== undefined && !PORT_PROTOCOLS.has(protocol);
  // named-port and destination `services` sets hold (address, TCP/UDP/SCTP, port): on a
  // protocol without ports (ICMP to a Service) the set holds no packet, so the rule matches
  // nothing, as Felix's `-m set dst,dst` and `daddr . l4proto . th dport @set` do
  if (portless && (r.srcNamedPortIpSetIds?.length || r.dstNamedPortIpSetIds?.length)) return none;
  const portsNeedProtocol = numericPorts || (namedPorts && protocol !== undefined);
  if (portsNeedProtocol && (protocol === undefined || portless))
    return bad('ports need protocol TCP, UDP, SCTP or UDPLite');

  const sets = new Set<string>();
  const set = (id: string) => {
    const n = nftSetName(id, family);
    sets.add(n);
    return `@${n}`;
  };

  // every rule is for this family only (an inet chain sees both)
  const main: string[] = [`meta nfproto ${family === 4 ? 'ipv4' : 'ipv6'}`];
  if (protocol !== undefined) main.push(`meta l4proto ${protocol}`);
  if (notProtocol !== undefined) main.push(`meta l4proto != ${notProtocol}`);
  /** per side, the alternatives (numeric ports as one set, each named-port set) */
  const alternatives: string[][] = [];
  for (const side of ['src', 'dst'] as const) {
    const S = side === 'src' ? 's' : 'd';
    const addr = `${ip} ${S}addr`;
    const port = `th ${S}port`;
    const pos = side === 'src' ? nets.src : nets.dst;
    const neg = side === 'src' ? nets.notSrc : nets.notDst;
    if (pos.length) main.push(`${addr} ${anon(pos)}`);
    if (neg.length) main.push(`${addr} != ${anon(neg)}`);
    for (const id of (side === 'src' ? r.srcIpSetIds : r.dstIpSetIds) ?? [])
      main.push(`${addr} ${set(id)}`);
    for (const id of (side === 'src' ? r.notSrcIpSetIds : r.notDstIpSetIds) ?? [])
      main.push(`${addr} != ${set(id)}`);
    const ports = (side === 'src' ? r.srcPorts : r.dstPorts) ?? [];
    const named = (side === 'src' ? r.srcNamedPortIpSetIds : r.dstNamedPortIpSetIds) ?? [];
    const alts = [
      ...(ports.length ? [`${port} ${anon(ports.map(portText))}`] : []),
      ...named.map((id) => `${addr} . meta l4proto . ${port} ${set(id)}`),
    ];
    if (alts.length === 1) main.push(alts[0]);
    else if (alts.length > 1) alternatives.push(alts);
    const notPorts = (side === 'src' ? r.notSrcPorts : r.notDstPorts) ?? [];
    if (notPorts.length) main.push(`${port} != ${anon(notPorts.map(portText))}`);
    for (const id of (side === 'src' ? r.notSrcNamedPortIpSetIds : r.notDstNamedPortIpSetIds) ?? [])
      main.push(`${addr} . meta l4proto . ${port} != ${set(id)}`);
  }
  if (icmp) main.push(icmpMatch(family, icmp, false));
  const out: string[] = [];
  if (notIcmp) {
    if (protocol === ICMP[family]) main.push(icmpMatch(family, notIcmp, true));
    else {
      // "not (ICMP of that type)": an OR of two matches, through the scratch bit
      out.push(setBits(marks.scratch0));
      out.push(
        `meta l4proto ${ICMP[family]} ${icmpMatch(family, notIcmp, false)} ${clearBits(marks.scratch0)}`,
      );
      main.push(markSet(marks.scratch0));
    }
  }
  const verdict = {
    allow: `${setBits(marks.accept)} return`,
    pass: `${setBits(marks.pass)} return`,
    deny: 'drop',
    log: 'log prefix "tortie-packet: " level notice',
  }[r.action];
  // the alternatives of both sides, each combination one rule
  let combos: string[][] = [[]];
  for (const alts of alternatives) combos = combos.flatMap((c) => alts.map((a) => [...c, a]));
  for (const c of combos) out.push([...main, ...c, verdict].join(' '));
  return { rules: out, sets: [...sets] };
}
