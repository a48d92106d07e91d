// One DataplaneRule -> the iptables rule specs that implement it in one family, as
// Felix renders a proto.Rule (felix/rules/policy.go). Pure.
//
// iptables takes one -s, one -d, one -p and one port list of 15 slots per rule, and
// cannot OR two matches. Where the rule needs more, parts of the match become "blocks"
// of rules that fold their result into the scratch mark bits first, as Felix does:
//   - a first rule resets scratch0 ("all blocks match") and scratch1 ("this block");
//   - positive alternatives (several nets; port lists over 15 slots or with named ports)
//     set a bit when any alternative matches: the first positive block writes scratch0
//     directly, later ones write scratch1 and clear scratch0 if it stayed clear;
//   - negated alternatives (not any of several nets; a positive net beside negated ones;
//     notICMP of a rule that is not itself ICMP) start from scratch0 set and clear it
//     on any match;
//   - the main rule holds what is left and matches scratch0.
// Allow sets the accept bit and Pass the pass bit, each followed by one RETURN on that
// bit; Deny is DROP; Log is LOG.
//
// A rule that cannot match in this family renders nothing. A rule that cannot be
// rendered faithfully is reported as a `problem`: the caller must not program the
// policy without it (leaving out a Deny would open traffic).
import { cidrProblem } from '@tortie/policy';
import type { DataplaneRule, PortRange } from '../../types';
import { ipsetName, type Family } from './names';
import { clearMark, hex, markClear, markSet, setMark, type MarkBits } from './marks';

export interface RenderedRule {
  /** Rule specs in order; [] when the rule cannot match in this family. */
  rules: string[];
  /** IP set names the specs refer to. */
  ipsets: string[];
  /** Why the rule cannot be programmed as written (bad input, not a family mismatch). */
  problem?: string;
}

const PROTOCOL_NAMES: Record<number, string> = {
  1: 'icmp',
  6: 'tcp',
  17: 'udp',
  58: 'ipv6-icmp',
  132: 'sctp',
  136: 'udplite',
};
/** Protocols iptables' multiport match works with (TCP, UDP, SCTP, UDPLite, DCCP). */
const PORT_PROTOCOLS = new Set([6, 17, 132, 136, 33]);

export const protocolText = (p: number) => PROTOCOL_NAMES[p] ?? String(p);
const ICMP = { 4: 1, 6: 58 } as const;
/** iptables reads ICMP type 255 as "any type": never render it. */
const ICMP_ANY = 255;

export const isV6Net = (net: string) => net.includes(':');
const isCatchAll = (net: string) => net.split('/')[1] === '0';

const portText = (r: PortRange) => (r.first === r.last ? `${r.first}` : `${r.first}:${r.last}`);

/** Port lists split so that each fits one multiport match (15 slots, a range takes 2). */
export function portChunks(ranges: PortRange[]): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let used = 0;
  for (const r of ranges) {
    const cost = r.first === r.last ? 1 : 2;
    if (used + cost > 15) {
      out.push(cur.join(','));
      cur = [];
      used = 0;
    }
    cur.push(portText(r));
    used += cost;
  }
  if (cur.length) out.push(cur.join(','));
  return out;
}

type Icmp = { type?: number; code?: number };
const icmpMatch = (family: Family, m: Icmp, negated: boolean) => {
  const [module, flag] = family === 4 ? ['icmp', '--icmp-type'] : ['icmp6', '--icmpv6-type'];
  const value = m.code !== undefined ? `${m.type}/${m.code}` : `${m.type}`;
  return `-m ${module} ${negated ? '! ' : ''}${flag} ${value}`;
};

/** Matches that must all hold (AND), as parts of one rule spec. */
type Match = string[];

/** Several matches of which one must hold (OR); or, negated, none may. */
interface Block {
  alternatives: Match[];
  negated: boolean;
}

/** The rules of the blocks, in order (none without blocks). */
function blockRules(blocks: Block[], marks: MarkBits): string[] {
  if (!blocks.length) return [];
  // positive blocks first: the first one writes scratch0 directly
  const ordered = [...blocks.filter((b) => !b.negated), ...blocks.filter((b) => b.negated)];
  const start = ordered[0].negated ? marks.scratch0 : 0;
  const out = [`-j MARK --set-xmark ${hex(start)}/${hex(marks.scratch0 + marks.scratch1)}`];
  let positives = 0;
  for (const b of ordered) {
    if (b.negated) {
      for (const m of b.alternatives) out.push([...m, clearMark(marks.scratch0)].join(' '));
      continue;
    }
    positives++;
    const bit = positives === 1 ? marks.scratch0 : marks.scratch1;
    // scratch1 still holds the previous block's result from the third block on
    if (positives > 2) out.push(clearMark(marks.scratch1));
    for (const m of b.alternatives) out.push([...m, setMark(bit)].join(' '));
    if (positives > 1) out.push(`${markClear(marks.scratch1)} ${clearMark(marks.scratch0)}`);
  }
  return out;
}

/** A rule's nets (src, dst, notSrc, notDst) of one family. */
export type FamilyNets = Record<'src' | 'dst' | 'notSrc' | 'notDst', string[]>;

/**
 * The nets of one family, as every backend reads them: `none` when the rule cannot match in
 * this family (its positive nets are all of the other family, or "not in everything",
 * which never matches; Felix drops it too), `bad` when a net is not a CIDR.
 */
export function netsForFamily(
  r: DataplaneRule,
  family: Family,
): { kind: 'nets'; nets: FamilyNets } | { kind: 'none' } | { kind: 'bad'; why: string } {
  const nets: FamilyNets = { src: [], dst: [], notSrc: [], notDst: [] };
  for (const [key, list] of [
    ['src', r.srcNets],
    ['dst', r.dstNets],
    ['notSrc', r.notSrcNets],
    ['notDst', r.notDstNets],
  ] as const) {
    if (list === undefined) continue;
    for (const n of list) {
      const why = cidrProblem(n);
      if (why) return { kind: 'bad', why };
    }
    const mine = list.filter((n) => isV6Net(n) === (family === 6));
    if (key.startsWith('not')) {
      if (mine.some(isCatchAll)) return { kind: 'none' };
    } else if (mine.length === 0) return { kind: 'none' };
    nets[key] = mine;
  }
  return { kind: 'nets', nets };
}

export function renderRule(r: DataplaneRule, family: Family, marks: MarkBits): RenderedRule {
  const none: RenderedRule = { rules: [], ipsets: [] };
  const bad = (why: string): RenderedRule => ({ ...none, problem: `rule ${r.ruleId}: ${why}` });
  if (r.invalid) return bad(r.invalid);
  if (r.ipVersion !== undefined && r.ipVersion !== family) return none;

  const n = netsForFamily(r, family);
  if (n.kind === 'bad') return bad(n.why);
  if (n.kind === 'none') return none;
  const { nets } = n;

  // protocol: ICMP fields imply this family's ICMP; a protocol and a notProtocol in one
  // rule cannot both be iptables matches (-p twice), and only one of them says anything
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
    if (icmp.type === ICMP_ANY) return none; // no real packet has type 255
    if (protocol === undefined) protocol = ICMP[family];
    else if (protocol !== ICMP[family]) return none; // ICMP fields on other traffic
  }
  if ((protocol === 1 && family === 6) || (protocol === 58 && family === 4)) return none;
  if (
    notIcmp &&
    (notIcmp.type === ICMP_ANY || (protocol !== undefined && protocol !== ICMP[family]))
  )
    notIcmp = undefined; // holds for every packet the rule can match
  if (protocol !== undefined && notProtocol !== undefined) {
    if (protocol === notProtocol) return none;
    notProtocol = undefined;
  }
  // numeric ports need a protocol multiport knows; named ports alone need none (their
  // set members carry the endpoint's own protocol)
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

  const ipsets = new Set<string>();
  const set = (id: string, neg: boolean, dirs: string) => {
    const name = ipsetName(id, family);
    ipsets.add(name);
    return `-m set ${neg ? '! ' : ''}--match-set ${name} ${dirs}`;
  };
  const proto = protocol === undefined ? [] : [`-p ${protocolText(protocol)}`];

  // The main rule in Felix's order: positive matches per side, then negated ones.
  const blocks: Block[] = [];
  const main: Match = [...proto];
  const sides = [
    {
      dir: 'src',
      flag: '-s',
      nets: nets.src,
      notNets: nets.notSrc,
      sets: r.srcIpSetIds,
      notSets: r.notSrcIpSetIds,
      ports: r.srcPorts,
      notPorts: r.notSrcPorts,
      named: r.srcNamedPortIpSetIds,
      notNamed: r.notSrcNamedPortIpSetIds,
    },
    {
      dir: 'dst',
      flag: '-d',
      nets: nets.dst,
      notNets: nets.notDst,
      sets: r.dstIpSetIds,
      notSets: r.notDstIpSetIds,
      ports: r.dstPorts,
      notPorts: r.notDstPorts,
      named: r.dstNamedPortIpSetIds,
      notNamed: r.notDstNamedPortIpSetIds,
    },
  ] as const;
  for (const s of sides) {
    // one -s / -d per rule: several nets are alternatives in a block
    if (s.nets.length > 1)
      blocks.push({ alternatives: s.nets.map((n) => [`${s.flag} ${n}`]), negated: false });
    else if (s.nets.length === 1) main.push(`${s.flag} ${s.nets[0]}`);
    for (const id of s.sets ?? []) main.push(set(id, false, s.dir));
    // numeric port chunks and named-port sets are alternatives too
    const numeric = portChunks(s.ports ?? []).map(
      (c) => `-m multiport ${s.dir === 'src' ? '--sports' : '--dports'} ${c}`,
    );
    const named = (s.named ?? []).map((id) => set(id, false, `${s.dir},${s.dir}`));
    if (numeric.length + named.length === 1) main.push(...numeric, ...named);
    else if (numeric.length + named.length > 1)
      blocks.push({
        // multiport needs the protocol in its own rule
        alternatives: [...numeric.map((m) => [...proto, m]), ...named.map((m) => [m])],
        negated: false,
      });
  }
  if (icmp) main.push(icmpMatch(family, icmp, false));
  if (notProtocol !== undefined) main.push(`! -p ${protocolText(notProtocol)}`);
  for (const s of sides) {
    // a negated net beside a positive one (or several negated) needs a block
    if (s.notNets.length > 1 || (s.notNets.length === 1 && s.nets.length === 1))
      blocks.push({ alternatives: s.notNets.map((n) => [`${s.flag} ${n}`]), negated: true });
    else if (s.notNets.length === 1) main.push(`! ${s.flag} ${s.notNets[0]}`);
    for (const id of s.notSets ?? []) main.push(set(id, true, s.dir));
    // negated ports: every chunk and named set in the rule (none may match)
    for (const c of portChunks(s.notPorts ?? []))
      main.push(`-m multiport ! ${s.dir === 'src' ? '--sports' : '--dports'} ${c}`);
    for (const id of s.notNamed ?? []) main.push(set(id, true, `${s.dir},${s.dir}`));
  }
  if (notIcmp) {
    // on an ICMP rule a plain negated match; otherwise "not (ICMP of that type)"
    if (protocol === ICMP[family]) main.push(icmpMatch(family, notIcmp, true));
    else
      blocks.push({
        alternatives: [[`-p ${protocolText(ICMP[family])}`, icmpMatch(family, notIcmp, false)]],
        negated: true,
      });
  }

  const rules = blockRules(blocks, marks);
  if (blocks.length) main.push(markSet(marks.scratch0));
  const target = {
    allow: setMark(marks.accept),
    pass: setMark(marks.pass),
    deny: '-j DROP',
    log: '-j LOG --log-prefix "tortie-packet: " --log-level 5',
  }[r.action];
  rules.push([...main, target].join(' '));
  if (r.action === 'allow') rules.push(`${markSet(marks.accept)} -j RETURN`);
  if (r.action === 'pass') rules.push(`${markSet(marks.pass)} -j RETURN`);
  return { rules, ipsets: [...ipsets] };
}
