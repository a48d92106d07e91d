// The chains of tortie's nftables table, as ../acl/endpoint-chains.ts and
// static-chains.ts lay them out for iptables, in one `inet` table for both families. Pure.
//
// Dispatch is a verdict-map lookup (`oifname vmap @to-wl`): one rule however many pods.
// Endpoints with the same tiers and profiles share one endpoint chain (named by a hash
// of what it holds), so a pod add is two map elements and its set members, plus a chain
// only when its policy combination is new. nft reads every chain of the table before
// each transaction, so fewer chains keep every transaction fast.
import { createHash } from 'node:crypto';
import type { DataplaneRule, TierInfo } from '../../types';
import type { EndpointToHostAction, TunnelSources } from '../acl/static-chains';
import type { MarkBits } from '../acl/marks';
import type { Direction } from '../acl/endpoint-chains';
import { BASE, MAPS, nftChain } from './names';
import { clearBits, markClear, markSet, renderNftRule, setBits } from './rule-render';

export interface NftChain {
  name: string;
  /** base chains: "type filter hook forward priority filter; policy accept;" */
  hook?: string;
  rules: string[];
  /** sets the rules refer to */
  sets: string[];
}

/** A policy's or profile's rules for one direction, both families. */
export function nftRulesChain(
  name: string,
  rules: DataplaneRule[],
  marks: MarkBits,
  onProblem: (why: string) => void = () => undefined,
): NftChain {
  const out: string[] = [];
  const sets = new Set<string>();
  for (const r of rules)
    for (const f of [4, 6] as const) {
      const x = renderNftRule(r, f, marks);
      if (x.problem) {
        onProblem(x.problem);
        break;
      }
      out.push(...x.rules);
      for (const s of x.sets) sets.add(s);
    }
  return { name, rules: out, sets: [...sets] };
}

/** A policy chain that cannot be programmed: drops what reaches it (fail closed). */
export const nftFailClosed = (name: string): NftChain => ({ name, rules: ['drop'], sets: [] });

export const policyChain = (id: string, d: Direction) =>
  d === 'ingress' ? nftChain.policyIn(id) : nftChain.policyOut(id);
export const profileChain = (id: string, d: Direction) =>
  d === 'ingress' ? nftChain.profileIn(id) : nftChain.profileOut(id);

export interface EndpointSig {
  tiers: TierInfo[];
  profileIds: string[];
  direction: Direction;
}

/** The shared endpoint chain's name: tw-/fw- + a hash of its content. */
export function endpointChainName(s: EndpointSig, marks: MarkBits): string {
  const h = createHash('sha1')
    .update(JSON.stringify([s.tiers, s.profileIds, marks.all, marks.accept]))
    .digest('hex')
    .slice(0, 16);
  return `${s.direction === 'ingress' ? 'tw' : 'fw'}-${h}`;
}

/**
 * As Felix's endpoint chain: clear accept and pass; per tier with policies in this
 * direction, clear pass, jump to each policy while pass is clear, return on accept, end
 * with the tier's default (drop unless the tier passes); then each profile, return on
 * accept; then drop.
 */
export function nftEndpointChain(s: EndpointSig, marks: MarkBits): NftChain {
  const accepted = `${markSet(marks.accept)} return`;
  const rules = [clearBits(marks.accept | marks.pass)];
  for (const t of s.tiers) {
    const ps = s.direction === 'ingress' ? t.ingressPolicies : t.egressPolicies;
    if (!ps.length) continue;
    rules.push(clearBits(marks.pass));
    for (const p of ps) {
      rules.push(`${markClear(marks.pass)} jump ${policyChain(p, s.direction)}`);
      rules.push(accepted);
    }
    if (t.defaultAction === 'deny') rules.push(`${markClear(marks.pass)} drop`);
  }
  for (const p of s.profileIds) {
    rules.push(`jump ${profileChain(p, s.direction)}`);
    rules.push(accepted);
  }
  rules.push('drop');
  return { name: endpointChainName(s, marks), rules, sets: [] };
}

/** The chains an endpoint chain jumps to, as [kind, id]. */
export function referenced(s: EndpointSig): Array<['policy' | 'profile', string]> {
  const out: Array<['policy' | 'profile', string]> = [];
  for (const t of s.tiers)
    for (const p of s.direction === 'ingress' ? t.ingressPolicies : t.egressPolicies)
      out.push(['policy', p]);
  for (const p of s.profileIds) out.push(['profile', p]);
  return out;
}

export interface StaticInput {
  marks: MarkBits;
  defaultEndpointToHostAction: EndpointToHostAction;
  /** IPv4 tunnels in use: only these hosts may send them (set name in allHostsSet). */
  tunnels?: TunnelSources;
  dropWorkloadEncap: { ipip: boolean; vxlanPort?: number };
  /** natOutgoing: sets of all pools and masquerading pools per family, when some pool masquerades */
  masquerade: Array<{ family: 4 | 6; masq: string; all: string }>;
}

const WL = '"cali*"';
const ESTABLISHED = 'ct state established,related accept';
const INVALID = 'ct state invalid drop';
const NDP_TYPES = [130, 131, 132, 133, 135, 136];
const HOOK = (hook: string, prio: string, type = 'filter') =>
  `type ${type} hook ${hook} priority ${prio}; policy accept;`;

// The security drops count (`counter`), as iptables counts every rule: an operator (and a
// test) can see that forged tunnel packets and spoofed sources were dropped.
function encapDrops(d: StaticInput['dropWorkloadEncap'], iface: string): string[] {
  return [
    ...(d.ipip ? [`${iface}meta nfproto ipv4 meta l4proto 4 counter drop`] : []),
    ...(d.vxlanPort !== undefined ? [`${iface}udp dport ${d.vxlanPort} counter drop`] : []),
  ];
}

/** The base chains (hooked) and wl-to-host. */
export function nftStaticChains(i: StaticInput): NftChain[] {
  const { marks } = i;
  const toHost = { Drop: 'drop', Accept: 'accept', Return: 'return' }[
    i.defaultEndpointToHostAction
  ];
  const forward = [
    ESTABLISHED,
    INVALID,
    clearBits(marks.all),
    ...encapDrops(i.dropWorkloadEncap, `iifname ${WL} `),
    `iifname ${WL} iifname vmap @${MAPS.fromWorkload}`,
    // an unknown cali interface, or an endpoint chain that did not accept: dropped
    `iifname ${WL} ${markClear(marks.accept)} drop`,
    `oifname ${WL} ${clearBits(marks.accept | marks.pass)}`,
    `oifname ${WL} oifname vmap @${MAPS.toWorkload}`,
    `oifname ${WL} ${markClear(marks.accept)} drop`,
    `${markSet(marks.accept)} accept`,
  ];
  const t = i.tunnels;
  const fromHosts = t ? `ip saddr @${t.allHostsSet} fib daddr type local` : '';
  const input = [
    ...(t?.ipip
      ? [
          `meta nfproto ipv4 meta l4proto 4 ${fromHosts} accept`,
          'meta nfproto ipv4 meta l4proto 4 counter drop',
        ]
      : []),
    ...(t?.vxlanPort !== undefined
      ? [
          `meta nfproto ipv4 udp dport ${t.vxlanPort} ${fromHosts} accept`,
          `meta nfproto ipv4 udp dport ${t.vxlanPort} fib daddr type local counter drop`,
        ]
      : []),
    ESTABLISHED,
    `iifname ${WL} goto ${BASE.wlToHost}`,
  ];
  const wlToHost = [
    INVALID,
    `icmpv6 type { ${NDP_TYPES.join(', ')} } accept`,
    clearBits(marks.all),
    ...encapDrops(i.dropWorkloadEncap, ''),
    `iifname vmap @${MAPS.fromWorkload}`,
    `${markClear(marks.accept)} drop`,
    toHost,
  ];
  const notrack =
    i.tunnels?.vxlanPort !== undefined ? [`udp dport ${i.tunnels.vxlanPort} notrack`] : [];
  const chains: NftChain[] = [
    { name: BASE.forward, hook: HOOK('forward', 'filter'), rules: forward, sets: [] },
    {
      name: BASE.input,
      hook: HOOK('input', 'filter'),
      rules: input,
      sets: t ? [t.allHostsSet] : [],
    },
    { name: BASE.wlToHost, rules: wlToHost, sets: [] },
    {
      name: BASE.rawPrerouting,
      hook: HOOK('prerouting', 'raw'),
      // as Felix's rpfilter: a workload's packet from an address not routed back through
      // its interface is dropped before conntrack (IPv4 and IPv6)
      rules: [...notrack, `iifname ${WL} fib saddr . mark . iif oif missing counter drop`],
      sets: [],
    },
  ];
  if (notrack.length)
    chains.push({ name: BASE.rawOutput, hook: HOOK('output', 'raw'), rules: notrack, sets: [] });
  if (i.masquerade.length)
    chains.push({
      name: BASE.natPostrouting,
      hook: HOOK('postrouting', 'srcnat', 'nat'),
      rules: i.masquerade.map(
        (m) =>
          `${m.family === 4 ? 'ip' : 'ip6'} saddr @${m.masq} ${m.family === 4 ? 'ip' : 'ip6'} daddr != @${m.all} masquerade`,
      ),
      sets: i.masquerade.flatMap((m) => [m.masq, m.all]),
    });
  return chains;
}

export { setBits };
