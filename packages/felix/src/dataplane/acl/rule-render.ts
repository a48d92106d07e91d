// One DataplaneRule -> the iptables rule specs that implement it in one family, as
// Felix renders a proto.Rule. Pure.
//
// - one net per side is a plain -s/-d; several nets (OR) and several negated nets (AND
//   NOT) are folded into the scratch mark bits first, as Felix does: set scratch0 ("all
//   blocks match"), per positive block set scratch1 on any member and clear scratch0 if
//   none did, clear scratch0 on any negated net; the rule then matches scratch0.
// - positive port lists are split at multiport's 15-slot limit and OR-ed with the
//   named-port sets: one rule per alternative (src alternatives x dst alternatives).
// - Allow sets the accept bit and Pass the pass bit, each followed by one RETURN on that
//   bit; Deny is DROP; Log is LOG.
import type { DataplaneRule, PortRange } from '../../types';
import { ipsetName, type Family } from './names';
import { clearMark, markClear, markSet, setMark, type MarkBits } from './marks';

export interface RenderedRule {
  /** Rule specs in order; [] when the rule cannot match in this family. */
  rules: string[];
  /** IP set names the specs refer to. */
  ipsets: string[];
  /** Why the rule was left out, for a log line (bad input, not a family mismatch). */
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
const PORT_PROTOCOLS = new Set([6, 17, 132, 136, 33]);

export const protocolText = (p: number) => PROTOCOL_NAMES[p] ?? String(p);
const ICMP = { 4: 1, 6: 58 } as const;

export const isV6Net = (net: string) => net.includes(':');

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

const icmpText = (m: { type?: number; code?: number }) =>
  m.code !== undefined ? `${m.type}/${m.code}` : `${m.type}`;

export function renderRule(r: DataplaneRule, family: Family, marks: MarkBits): RenderedRule {
  const none: RenderedRule = { rules: [], ipsets: [] };
  if (r.ipVersion !== undefined && r.ipVersion !== family) return none;
  const ipsets: string[] = [];
  const set = (id: string, neg: boolean, dirs: string) => {
    const name = ipsetName(id, family);
    ipsets.push(name);
    return `-m set ${neg ? '! ' : ''}--match-set ${name} ${dirs}`;
  };

  // protocol
  const m: string[] = [];
  let protocol = r.protocol;
  const wantsIcmp = r.icmp?.type !== undefined || r.notIcmp?.type !== undefined;
  if (protocol === undefined && wantsIcmp) protocol = ICMP[family];
  if (protocol !== undefined) {
    if ((protocol === 1 && family === 6) || (protocol === 58 && family === 4)) return none;
    m.push(`-p ${protocolText(protocol)}`);
  }
  if (r.notProtocol !== undefined) m.push(`! -p ${protocolText(r.notProtocol)}`);
  const hasPorts = !!(
    r.srcPorts?.length ||
    r.dstPorts?.length ||
    r.notSrcPorts?.length ||
    r.notDstPorts?.length
  );
  if (hasPorts && (protocol === undefined || !PORT_PROTOCOLS.has(protocol))) {
    return { ...none, problem: `rule ${r.ruleId}: ports need protocol TCP, UDP, SCTP or UDPLite` };
  }

  // nets: plain matches where one suffices, scratch-mark blocks otherwise
  const mine = (nets?: string[]) => nets?.filter((n) => isV6Net(n) === (family === 6));
  const blocks: Array<{ flag: '-s' | '-d'; nets: string[]; negated: boolean }> = [];
  for (const [nets, flag, negated] of [
    [r.srcNets, '-s', false],
    [r.dstNets, '-d', false],
    [r.notSrcNets, '-s', true],
    [r.notDstNets, '-d', true],
  ] as const) {
    if (nets === undefined) continue;
    const fam = mine(nets)!;
    if (fam.length === 0) {
      if (!negated) return none; // only other-family nets: cannot match here
      continue;
    }
    if (fam.length === 1) m.push(`${negated ? '! ' : ''}${flag} ${fam[0]}`);
    else blocks.push({ flag, nets: fam, negated });
  }

  // IP sets (selectors, network sets)
  for (const [ids, dir, neg] of [
    [r.srcIpSetIds, 'src', false],
    [r.dstIpSetIds, 'dst', false],
    [r.notSrcIpSetIds, 'src', true],
    [r.notDstIpSetIds, 'dst', true],
  ] as const) {
    for (const id of ids ?? []) m.push(set(id, neg, dir));
  }

  // negated ports: every chunk in the same rule (AND)
  for (const c of portChunks(r.notSrcPorts ?? [])) m.push(`-m multiport ! --sports ${c}`);
  for (const c of portChunks(r.notDstPorts ?? [])) m.push(`-m multiport ! --dports ${c}`);

  // ICMP type/code
  const [icmpModule, icmpFlag] =
    family === 4 ? ['icmp', '--icmp-type'] : ['icmp6', '--icmpv6-type'];
  if (r.icmp?.type !== undefined) m.push(`-m ${icmpModule} ${icmpFlag} ${icmpText(r.icmp)}`);
  if (r.notIcmp?.type !== undefined)
    m.push(`-m ${icmpModule} ! ${icmpFlag} ${icmpText(r.notIcmp)}`);

  // positive ports and named ports: alternatives (OR)
  const alternatives = (
    nums: PortRange[] | undefined,
    named: string[] | undefined,
    dir: 'src' | 'dst',
  ) => {
    if (!nums?.length && !named?.length) return [''];
    const flag = dir === 'src' ? '--sports' : '--dports';
    return [
      ...portChunks(nums ?? []).map((c) => `-m multiport ${flag} ${c}`),
      ...(named ?? []).map((id) => set(id, false, `${dir},${dir}`)),
    ];
  };
  const srcAlts = alternatives(r.srcPorts, r.srcNamedPortIpSetIds, 'src');
  const dstAlts = alternatives(r.dstPorts, r.dstNamedPortIpSetIds, 'dst');

  const rules: string[] = [];
  if (blocks.length) {
    rules.push(setMark(marks.scratch0));
    for (const b of blocks) {
      if (b.negated) {
        for (const n of b.nets) rules.push(`${b.flag} ${n} ${clearMark(marks.scratch0)}`);
      } else {
        rules.push(clearMark(marks.scratch1));
        for (const n of b.nets) rules.push(`${b.flag} ${n} ${setMark(marks.scratch1)}`);
        rules.push(`${markClear(marks.scratch1)} ${clearMark(marks.scratch0)}`);
      }
    }
    m.unshift(markSet(marks.scratch0));
  }
  const target = {
    allow: setMark(marks.accept),
    pass: setMark(marks.pass),
    deny: '-j DROP',
    log: '-j LOG --log-prefix "tortie-packet: " --log-level 5',
  }[r.action];
  for (const s of srcAlts) {
    for (const d of dstAlts) rules.push([...m, s, d, target].filter(Boolean).join(' '));
  }
  if (r.action === 'allow') rules.push(`${markSet(marks.accept)} -j RETURN`);
  if (r.action === 'pass') rules.push(`${markSet(marks.pass)} -j RETURN`);
  return { rules, ipsets: [...new Set(ipsets)] };
}
