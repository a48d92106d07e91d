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
import type { EndpointChainKind } from '../acl/endpoint-chains';
import type { HostPort } from '../../config';
import type { MarkBits } from '../acl/marks';
import type { Direction } from '../acl/endpoint-chains';
import { BASE, HEP_IFACES, HEP_MAPS, MAPS, nftChain } from './names';
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
  /**
   * Host endpoints: 'normal' (a host endpoint's input/output policy and profiles),
   * 'forward' (applyOnForward), 'untracked' (doNotTrack, raw), 'preDNAT'. Absent: a
   * workload's chain.
   */
  hep?: EndpointChainKind;
  /** host endpoints: the failsafe chain jumped to first */
  failsafe?: string;
}

const HEP_PREFIX: Record<EndpointChainKind, string> = {
  normal: 'h',
  forward: 'hf',
  untracked: 'hu',
  preDNAT: 'hp',
};

/**
 * The shared endpoint chain's name: tw-/fw- (workloads), th-/fh- (host endpoints),
 * thf-/fhf- (applyOnForward), thu-/fhu- (untracked), fhp- (pre-DNAT), + a hash of its content.
 */
export function endpointChainName(s: EndpointSig, marks: MarkBits): string {
  const h = createHash('sha1')
    .update(
      JSON.stringify([
        s.tiers,
        s.profileIds,
        marks.all,
        marks.accept,
        ...(s.hep ? [s.hep, s.failsafe ?? ''] : []),
      ]),
    )
    .digest('hex')
    .slice(0, 16);
  // a workload's ingress is traffic to it (tw-); a host endpoint's ingress comes from it (fh-)
  if (!s.hep) return `${s.direction === 'ingress' ? 'tw' : 'fw'}-${h}`;
  return `${s.direction === 'ingress' ? 'f' : 't'}${HEP_PREFIX[s.hep]}-${h}`;
}

/**
 * As Felix's endpoint chain: clear accept and pass; per tier with policies in this
 * direction, clear pass, jump to each policy while pass is clear, return on accept, end
 * with the tier's default (drop unless the tier passes); then each profile, return on
 * accept; then drop. Host endpoints jump to the failsafe chain first. As
 * ../acl/endpoint-chains.ts: a forward chain has no profiles and allows when no policy
 * applies; untracked and pre-DNAT chains have no end-of-tier drop, no profiles and no
 * final drop (undecided packets go on to the next stage), and an untracked Allow also
 * stops connection tracking for the packet (notrack).
 */
export function nftEndpointChain(s: EndpointSig, marks: MarkBits): NftChain {
  const accepted = `${markSet(marks.accept)} return`;
  const rules: string[] = [];
  if (s.failsafe) rules.push(`jump ${s.failsafe}`);
  rules.push(clearBits(marks.accept | marks.pass));
  const staged = s.hep === 'untracked' || s.hep === 'preDNAT';
  let applied = 0;
  for (const t of s.tiers) {
    const ps = s.direction === 'ingress' ? t.ingressPolicies : t.egressPolicies;
    if (!ps.length) continue;
    applied++;
    rules.push(clearBits(marks.pass));
    for (const p of ps) {
      rules.push(`${markClear(marks.pass)} jump ${policyChain(p, s.direction)}`);
      if (s.hep === 'untracked') rules.push(`${markSet(marks.accept)} notrack`);
      rules.push(accepted);
    }
    if (t.defaultAction === 'deny' && !staged) rules.push(`${markClear(marks.pass)} drop`);
  }
  if (!staged && s.hep !== 'forward') {
    for (const p of s.profileIds) {
      rules.push(`jump ${profileChain(p, s.direction)}`);
      rules.push(accepted);
    }
    rules.push('drop');
  } else if (s.hep === 'forward' && applied === 0) rules.push(`${setBits(marks.accept)} return`);
  return { name: endpointChainName(s, marks), rules, sets: [] };
}

export interface StaticInput {
  marks: MarkBits;
  defaultEndpointToHostAction: EndpointToHostAction;
  /** IPv4 tunnels in use: only these hosts may send them (set name in allHostsSet). */
  tunnels?: TunnelSources;
  dropWorkloadEncap: { ipip: boolean; vxlanPort?: number };
  /** natOutgoing: sets of all pools and masquerading pools per family, when some pool masquerades */
  masquerade: Array<{ family: 4 | 6; masq: string; all: string }>;
  /** Host endpoints, when there are any. */
  heps?: HepStatic;
}

/** What the static chains need to know of the host endpoints. */
export interface HepStatic {
  /** Some named host endpoint has untracked (doNotTrack) policy: raw stage in use. */
  untracked: boolean;
  /** Some host endpoint has pre-DNAT policy: the pre-DNAT stage is in use. */
  preDnat: boolean;
  /** The "*" (all interfaces) host endpoint's chains, tried after the interface maps. */
  all?: { from: string; to: string; fromFwd: string; toFwd: string; preDnat?: string };
  failsafeIn: HostPort[];
  failsafeOut: HostPort[];
}

/**
 * Failsafe ports: accept to `ports`; in raw also from `replies` (the other direction's
 * ports), so doNotTrack policy does not catch a failsafe connection's replies, as
 * ../acl/static-chains.ts failsafeChain. The net is the remote side.
 */
export function nftFailsafeRules(ports: HostPort[], dir: 'in' | 'out', replies: HostPort[] = []) {
  const rule = (p: HostPort, which: 'dport' | 'sport') => {
    const proto = p.protocol.toLowerCase();
    const net = p.net
      ? `${p.net.includes(':') ? 'ip6' : 'ip'} ${dir === 'in' ? 'saddr' : 'daddr'} ${p.net} `
      : '';
    return `${net}meta l4proto ${proto} ${proto} ${which} ${p.port} accept`;
  };
  return [...ports.map((p) => rule(p, 'dport')), ...replies.map((p) => rule(p, 'sport'))];
}

/**
 * A filter-stage host endpoint dispatch chain, as ../acl/static-chains.ts hostDispatch:
 * clear the verdict bits, jump to the interface's chain through the map, then for a host
 * endpoint's interface drop unless its chain accepted (fails closed when a chain was
 * flushed) and return; the "*" host endpoint likewise for every other interface.
 * Interfaces without a host endpoint return undecided.
 */
function hepDispatch(
  name: string,
  dir: 'iifname' | 'oifname',
  map: string,
  all: string | undefined,
  marks: MarkBits,
): NftChain {
  const rejectUnaccepted = `${markClear(marks.accept)} drop`;
  return {
    name,
    rules: [
      clearBits(marks.accept | marks.pass),
      `${dir} vmap @${map}`,
      `${dir} @${HEP_IFACES} ${rejectUnaccepted}`,
      `${dir} @${HEP_IFACES} return`,
      ...(all ? [`jump ${all}`, rejectUnaccepted] : []),
    ],
    sets: [HEP_IFACES],
  };
}

/** Raw and pre-DNAT dispatch: goto the interface's chain, the "*" one last; else return. */
const stageDispatch = (name: string, dir: 'iifname' | 'oifname', map: string, all?: string) => ({
  name,
  rules: [`${dir} vmap @${map}`, ...(all ? [`goto ${all}`] : [])],
  sets: [],
});

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
  const h = i.heps;
  const untracked = !!h?.untracked;
  const forward = [
    ESTABLISHED,
    INVALID,
    ...(untracked
      ? // only raw's untracked Allow keeps its accept bit (a pre-DNAT Allow is tracked)
        [clearBits(marks.all & ~marks.accept), `ct state != untracked ${clearBits(marks.accept)}`]
      : [clearBits(marks.all)]),
    ...encapDrops(i.dropWorkloadEncap, `iifname ${WL} `),
    `iifname ${WL} iifname vmap @${MAPS.fromWorkload}`,
    // an unknown cali interface, or an endpoint chain that did not accept: dropped
    `iifname ${WL} ${markClear(marks.accept)} drop`,
    // applyOnForward policy of the host endpoint the packet came in by (an untracked
    // Allow skips it)
    ...(h
      ? [
          `iifname != ${WL} ${untracked ? `${markClear(marks.accept)} ` : ''}jump ${BASE.fromHepFwd}`,
        ]
      : []),
    `oifname ${WL} ${clearBits(marks.accept | marks.pass)}`,
    `oifname ${WL} oifname vmap @${MAPS.toWorkload}`,
    `oifname ${WL} ${markClear(marks.accept)} drop`,
    ...(h ? [`oifname != ${WL} jump ${BASE.toHepFwd}`] : []),
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
    // raw or pre-DNAT accepted it (their chains clear our bits first): accept here too
    ...(h && (h.untracked || h.preDnat) ? [`${markSet(marks.accept)} accept`] : []),
    ...(h ? [clearBits(marks.all), `jump ${BASE.fromHep}`, `${markSet(marks.accept)} accept`] : []),
  ];
  const fromHosts4 = t ? `ip daddr @${t.allHostsSet} fib saddr type local` : '';
  const output = [
    ESTABLISHED,
    // the host reaching its own workloads is not policed (kubelet probes), as Calico
    `oifname ${WL} return`,
    // this host's own IP-in-IP and VXLAN to the other nodes, ahead of host endpoint policy
    ...(t?.ipip ? [`meta nfproto ipv4 meta l4proto 4 ${fromHosts4} accept`] : []),
    ...(t?.vxlanPort !== undefined
      ? [`meta nfproto ipv4 udp dport ${t.vxlanPort} ${fromHosts4} accept`]
      : []),
    ...(untracked ? [`${markSet(marks.accept)} ct state untracked accept`] : []),
    clearBits(marks.all),
    `jump ${BASE.toHep}`,
    `${markSet(marks.accept)} accept`,
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
  const accepted = `${markSet(marks.accept)} accept`;
  const rawPrerouting = [
    // no other stage's bits decide here
    clearBits(marks.all),
    ...notrack,
    `iifname ${WL} fib saddr . mark . iif oif missing counter drop`,
    ...(untracked ? [`iifname ${WL} return`, `jump ${BASE.rawFromHep}`, accepted] : []),
  ];
  const rawOutput = untracked
    ? [clearBits(marks.all), `jump ${BASE.rawToHep}`, ...notrack, accepted]
    : notrack;
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
      // its interface is dropped before conntrack (IPv4 and IPv6); then untracked policy
      // of the host endpoint it came in by
      rules: rawPrerouting,
      sets: [],
    },
  ];
  if (rawOutput.length)
    chains.push({ name: BASE.rawOutput, hook: HOOK('output', 'raw'), rules: rawOutput, sets: [] });
  if (h) {
    const fsIn = nftFailsafeRules(h.failsafeIn, 'in');
    const fsOut = nftFailsafeRules(h.failsafeOut, 'out');
    chains.push(
      {
        name: BASE.output,
        hook: HOOK('output', 'filter'),
        rules: output,
        sets: t ? [t.allHostsSet] : [],
      },
      hepDispatch(BASE.fromHep, 'iifname', HEP_MAPS.from, h.all?.from, marks),
      hepDispatch(BASE.toHep, 'oifname', HEP_MAPS.to, h.all?.to, marks),
      hepDispatch(BASE.fromHepFwd, 'iifname', HEP_MAPS.fromFwd, h.all?.fromFwd, marks),
      hepDispatch(BASE.toHepFwd, 'oifname', HEP_MAPS.toFwd, h.all?.toFwd, marks),
      { name: BASE.failsafeIn, rules: fsIn, sets: [] },
      { name: BASE.failsafeOut, rules: fsOut, sets: [] },
    );
    if (untracked)
      chains.push(
        stageDispatch(BASE.rawFromHep, 'iifname', HEP_MAPS.rawFrom),
        stageDispatch(BASE.rawToHep, 'oifname', HEP_MAPS.rawTo),
        {
          name: BASE.rawFailsafeIn,
          rules: nftFailsafeRules(h.failsafeIn, 'in', h.failsafeOut),
          sets: [],
        },
        {
          name: BASE.rawFailsafeOut,
          rules: nftFailsafeRules(h.failsafeOut, 'out', h.failsafeIn),
          sets: [],
        },
      );
    if (h.preDnat)
      chains.push(
        {
          // Felix's nftables mangle-PREROUTING: after conntrack, before DNAT
          name: BASE.preDnat,
          hook: HOOK('prerouting', 'dstnat - 10'),
          rules: [
            ESTABLISHED,
            ...(untracked ? [`${markSet(marks.accept)} ct state untracked accept`] : []),
            `iifname ${WL} return`,
            `jump ${BASE.preDnatFromHep}`,
            accepted,
          ],
          sets: [],
        },
        stageDispatch(BASE.preDnatFromHep, 'iifname', HEP_MAPS.preDnatFrom, h.all?.preDnat),
      );
  }
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
