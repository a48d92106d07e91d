// The chains hooked from the built-in ones and the dispatch chains. Pure.
//
// filter FORWARD (tortie-FORWARD): conntrack fast path first, then each side of the
// packet must end with the accept bit: from a workload (its egress policy), to a
// workload (its ingress policy), from/to a host endpoint with applyOnForward policy.
// A side handled by tortie that does not end with accept is dropped right there, so an
// endpoint chain that someone flushed fails closed instead of open. Traffic tortie has
// no endpoint for falls through to the rest of FORWARD untouched.
//
// Host endpoint stages before filter, as Felix (rules/static.go), only while some host
// endpoint has such policy: raw PREROUTING/OUTPUT run untracked (doNotTrack) policy, whose
// Allow leaves the accept bit set on a NOTRACKed packet; mangle PREROUTING runs pre-DNAT
// policy. filter INPUT accepts what raw or mangle accepted (accept bit set: an untracked
// or a pre-DNAT Allow skips normal policy for traffic to the host, as Felix), OUTPUT an
// untracked Allow; in FORWARD only an untracked Allow keeps its accept bit and skips the
// incoming host endpoint's forward policy (a pre-DNAT Allow still meets it).
import type { Chain } from './chain';
import type { HostPort } from '../../config';
import { STATIC, WORKLOAD_IFACE_PREFIX as CALI, internalIpsetName, type Family } from './names';
import { ALL_POOLS_SET, MASQ_POOLS_SET } from './names';
import { clearMark, markClear, markSet, type MarkBits } from './marks';

export type EndpointToHostAction = 'Drop' | 'Accept' | 'Return';

export interface DispatchEntry {
  /** undefined: all interfaces (a "*" host endpoint), tried last */
  iface?: string;
  chain: string;
}

export interface FilterInput {
  family: Family;
  marks: MarkBits;
  /** Workload interfaces and their chains. */
  toWorkload: DispatchEntry[];
  fromWorkload: DispatchEntry[];
  /** Host endpoints (normal and forward stages). */
  toHost: DispatchEntry[];
  fromHost: DispatchEntry[];
  toHostForward: DispatchEntry[];
  fromHostForward: DispatchEntry[];
  defaultEndpointToHostAction: EndpointToHostAction;
  failsafeIn: HostPort[];
  failsafeOut: HostPort[];
  /** Some host endpoint has untracked policy (raw chains exist). */
  untracked?: boolean;
  /** Some host endpoint has pre-DNAT policy (mangle chains exist). */
  preDnat?: boolean;
  /** IPv4 tunnels in use here: only hosts in `allHostsSet` may send them to us. */
  tunnels?: TunnelSources;
  /**
   * Drop IP-in-IP and VXLAN (UDP `vxlanPort`) sent by workloads, as Felix does unless
   * allowIPIPPacketsFromWorkloads / allowVXLANPacketsFromWorkloads: a pod's own
   * encapsulation would carry traffic past its egress policy.
   */
  dropWorkloadEncap?: { ipip: boolean; vxlanPort?: number };
}

export interface TunnelSources {
  ipip: boolean;
  /** The VXLAN UDP port, when a pool uses VXLAN. */
  vxlanPort?: number;
  /** The IP set of every node's address (and externalNodesCIDRList). */
  allHostsSet: string;
}

/**
 * As Felix's filter INPUT: IP-in-IP and VXLAN to a local address are accepted from
 * cluster nodes only and dropped from anyone else, so no host that can reach a node
 * gets a forged inner packet decapsulated past the outer addressing.
 */
export function tunnelSourceRules(t: TunnelSources): string[] {
  const fromHost = `-m set --match-set ${t.allHostsSet} src -m addrtype --dst-type LOCAL`;
  const rules: string[] = [];
  if (t.ipip) rules.push(`-p 4 ${fromHost} -j ACCEPT`, '-p 4 -j DROP');
  if (t.vxlanPort !== undefined) {
    const vxlan = `-p udp -m udp --dport ${t.vxlanPort}`;
    rules.push(`${vxlan} ${fromHost} -j ACCEPT`, `${vxlan} -m addrtype --dst-type LOCAL -j DROP`);
  }
  return rules;
}

/**
 * As Felix's filter OUTPUT: this host's own IP-in-IP and VXLAN to the other nodes is
 * allowed ahead of host endpoint policy, so an egress policy cannot cut the overlay.
 */
export function tunnelOutputRules(t: TunnelSources): string[] {
  const toHost = `-m addrtype --src-type LOCAL -m set --match-set ${t.allHostsSet} dst`;
  const rules: string[] = [];
  if (t.ipip) rules.push(`-p 4 ${toHost} -j ACCEPT`);
  if (t.vxlanPort !== undefined)
    rules.push(`-p udp -m udp --dport ${t.vxlanPort} ${toHost} -j ACCEPT`);
  return rules;
}

/**
 * Workload-sent encapsulation, dropped: Felix puts these in every from-workload endpoint
 * chain after conntrack; one rule ahead of the dispatch does the same for all of them.
 */
function workloadEncapDrops(d: FilterInput['dropWorkloadEncap'], iface: string): string[] {
  if (!d) return [];
  return [
    ...(d.ipip ? [`${iface}-p 4 -j DROP`] : []),
    ...(d.vxlanPort !== undefined ? [`${iface}-p udp -m udp --dport ${d.vxlanPort} -j DROP`] : []),
  ];
}

const WL = `${CALI}+`;
const ESTABLISHED = '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT';
const INVALID = '-m conntrack --ctstate INVALID -j DROP';
/** A packet an untracked policy allowed in raw (NOTRACKed, accept bit still set). */
const untrackedAllowed = (m: MarkBits) =>
  `${markSet(m.accept)} -m conntrack --ctstate UNTRACKED -j ACCEPT`;
// IPv6 neighbour discovery between a workload and its host (RS, RA, NS, NA, redirect)
const NDP_TYPES = [130, 131, 132, 133, 135, 136];

const byIface = (es: DispatchEntry[]) =>
  [...es].sort((a, b) =>
    a.iface === b.iface
      ? 0
      : a.iface === undefined
        ? 1
        : b.iface === undefined
          ? -1
          : a.iface < b.iface
            ? -1
            : 1,
  );

/** Above this many interfaces, a workload dispatch chain splits into a tree level. */
export const DISPATCH_FANOUT = 32;
/** Characters after "cali" a tree may split on (chain names stay within 28 characters). */
const DISPATCH_DEPTH = 4;

/**
 * Workload dispatch: goto the interface's chain; an unknown cali interface is dropped.
 * With many interfaces, as Felix, a chain dispatches on the next character after "cali"
 * to one smaller chain per character, recursively while a chain would hold more than
 * DISPATCH_FANOUT interfaces, so adding a pod rewrites one small leaf chain (~6 rules
 * at 1,500 pods) instead of one per first character (~100).
 */
export function workloadDispatch(name: string, flag: '-i' | '-o', es: DispatchEntry[]): Chain[] {
  return dispatchTree(name, flag, byIface(es), 0);
}

function dispatchTree(
  name: string,
  flag: '-i' | '-o',
  sorted: DispatchEntry[],
  depth: number,
): Chain[] {
  const drop = `${flag} ${WL} -j DROP`;
  const direct = (xs: DispatchEntry[]) => xs.map((e) => `${flag} ${e.iface} -g ${e.chain}`);
  if (sorted.length <= DISPATCH_FANOUT || depth >= DISPATCH_DEPTH)
    return [{ name, rules: [...direct(sorted), drop] }];
  const at = CALI.length + depth;
  // an interface name that ends here cannot go further down: it stays in this chain
  const short = sorted.filter((e) => e.iface!.length <= at);
  const groups = new Map<string, DispatchEntry[]>();
  for (const e of sorted) {
    if (e.iface!.length <= at) continue;
    const k = e.iface!.charAt(at);
    const g = groups.get(k);
    if (g) g.push(e);
    else groups.set(k, [e]);
  }
  const prefix = depth === 0 ? CALI : sorted[0].iface!.slice(0, at); // shared below the root
  const children = [...groups].map(([k, xs]) => ({
    match: `${prefix}${k}+`,
    tree: dispatchTree(`${name}${depth === 0 ? '-' : ''}${k}`, flag, xs, depth + 1),
  }));
  return [
    {
      name,
      rules: [
        ...direct(short),
        ...children.map((c) => `${flag} ${c.match} -g ${c.tree[0].name}`),
        drop,
      ],
    },
    ...children.flatMap((c) => c.tree),
  ];
}

/**
 * Host endpoint dispatch: per endpoint clear the verdict bits, jump, drop unless the
 * chain set accept (fails closed if the chain was flushed), return. Interfaces without a
 * host endpoint fall through.
 */
export function hostDispatch(
  name: string,
  flag: '-i' | '-o',
  es: DispatchEntry[],
  marks: MarkBits,
): Chain {
  const rules: string[] = [];
  for (const e of byIface(es)) {
    const m = e.iface === undefined ? '' : `${flag} ${e.iface} `;
    rules.push(
      `${m}${clearMark(marks.accept | marks.pass)}`,
      `${m}-j ${e.chain}`,
      `${m}${markClear(marks.accept)} -j DROP`,
      `${m}-j RETURN`,
    );
  }
  return { name, rules };
}

/**
 * Failsafe ports: accept to `ports`. In raw (before conntrack) also accept from
 * `replies`, the other direction's ports, so the replies of a failsafe connection are
 * not caught (and untracked) by doNotTrack policy, as Felix. The net is the remote side.
 */
export function failsafeChain(
  name: string,
  ports: HostPort[],
  dir: 'in' | 'out',
  replies: HostPort[] = [],
): Chain {
  const rule = (p: HostPort, flag: '--dport' | '--sport') => {
    const proto = p.protocol.toLowerCase();
    const net = p.net ? `${dir === 'in' ? '-s' : '-d'} ${p.net} ` : '';
    return `-p ${proto} ${net}-m ${proto} ${flag} ${p.port} -j ACCEPT`;
  };
  return {
    name,
    rules: [...ports.map((p) => rule(p, '--dport')), ...replies.map((p) => rule(p, '--sport'))],
  };
}

/**
 * Raw and mangle host endpoint dispatch: goto the interface's chain, the wildcard last;
 * other interfaces, and packets the chain did not decide, return unmarked to the caller.
 */
export function stageDispatch(name: string, flag: '-i' | '-o', es: DispatchEntry[]): Chain {
  return {
    name,
    rules: byIface(es).map((e) =>
      e.iface === undefined ? `-g ${e.chain}` : `${flag} ${e.iface} -g ${e.chain}`,
    ),
  };
}

const actionTarget = { Drop: 'DROP', Accept: 'ACCEPT', Return: 'RETURN' } as const;

/** Every static and dispatch chain of the filter table for one family. */
export function filterChains(i: FilterInput): Chain[] {
  const { marks } = i;
  const heps = i.toHost.length + i.fromHost.length > 0;
  const fwdHeps = i.toHostForward.length + i.fromHostForward.length > 0;
  const untracked = heps && !!i.untracked;
  const forward = [
    ESTABLISHED,
    INVALID,
    ...(untracked
      ? [
          // only raw's untracked Allow keeps its accept bit (a pre-DNAT Allow is tracked)
          clearMark(marks.all - marks.accept),
          `-m conntrack ! --ctstate UNTRACKED ${clearMark(marks.accept)}`,
        ]
      : [clearMark(marks.all)]),
    ...workloadEncapDrops(i.dropWorkloadEncap, `-i ${WL} `),
    `-i ${WL} -j ${STATIC.fromWlDispatch}`,
    `-i ${WL} ${markClear(marks.accept)} -j DROP`,
    ...(fwdHeps
      ? [
          `! -i ${WL} ${untracked ? `${markClear(marks.accept)} ` : ''}-j ${STATIC.fromHepForwardDispatch}`,
        ]
      : []),
    `-o ${WL} ${clearMark(marks.accept | marks.pass)}`,
    `-o ${WL} -j ${STATIC.toWlDispatch}`,
    `-o ${WL} ${markClear(marks.accept)} -j DROP`,
    ...(fwdHeps ? [`! -o ${WL} -j ${STATIC.toHepForwardDispatch}`] : []),
    `${markSet(marks.accept)} -j ACCEPT`,
  ];
  const input = [
    ...(i.tunnels ? tunnelSourceRules(i.tunnels) : []),
    ESTABLISHED,
    `-i ${WL} -g ${STATIC.wlToHost}`,
    // raw or mangle accepted it (their chains clear our bits first): accept here too
    ...(heps && (i.untracked || i.preDnat) ? [`${markSet(marks.accept)} -j ACCEPT`] : []),
    ...(heps
      ? [clearMark(marks.all), `-j ${STATIC.fromHepDispatch}`, `${markSet(marks.accept)} -j ACCEPT`]
      : []),
  ];
  const output = [
    ESTABLISHED,
    // the host reaching its own workloads is not policed (kubelet probes), as Calico
    `-o ${WL} -j RETURN`,
    ...(i.tunnels ? tunnelOutputRules(i.tunnels) : []),
    ...(untracked ? [untrackedAllowed(marks)] : []),
    ...(heps
      ? [clearMark(marks.all), `-j ${STATIC.toHepDispatch}`, `${markSet(marks.accept)} -j ACCEPT`]
      : []),
  ];
  const wlToHost = [
    INVALID,
    ...(i.family === 6
      ? NDP_TYPES.map((t) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`)
      : []),
    clearMark(marks.all),
    ...workloadEncapDrops(i.dropWorkloadEncap, ''),
    `-j ${STATIC.fromWlDispatch}`,
    `${markClear(marks.accept)} -j DROP`,
    `-j ${actionTarget[i.defaultEndpointToHostAction]}`,
  ];
  const chains: Chain[] = [
    { name: STATIC.forward, rules: forward },
    {
      name: STATIC.input,
      rules: input,
      ...(i.tunnels ? { ipsets: [i.tunnels.allHostsSet] } : {}),
    },
    {
      name: STATIC.output,
      rules: output,
      ...(i.tunnels ? { ipsets: [i.tunnels.allHostsSet] } : {}),
    },
    { name: STATIC.wlToHost, rules: wlToHost },
    ...workloadDispatch(STATIC.fromWlDispatch, '-i', i.fromWorkload),
    ...workloadDispatch(STATIC.toWlDispatch, '-o', i.toWorkload),
  ];
  if (heps) {
    chains.push(
      hostDispatch(STATIC.fromHepDispatch, '-i', i.fromHost, marks),
      hostDispatch(STATIC.toHepDispatch, '-o', i.toHost, marks),
      failsafeChain(STATIC.failsafeIn, i.failsafeIn, 'in'),
      failsafeChain(STATIC.failsafeOut, i.failsafeOut, 'out'),
    );
  }
  if (fwdHeps) {
    chains.push(
      hostDispatch(STATIC.fromHepForwardDispatch, '-i', i.fromHostForward, marks),
      hostDispatch(STATIC.toHepForwardDispatch, '-o', i.toHostForward, marks),
    );
  }
  return chains;
}

export interface StageInput {
  marks: MarkBits;
  /** VXLAN in use: its UDP port is not tracked (raw only). */
  vxlanPort?: number;
  /** Host endpoints with policy in this stage (raw: named interfaces only, as Felix). */
  fromHost: DispatchEntry[];
  toHost: DispatchEntry[];
  failsafeIn: HostPort[];
  failsafeOut: HostPort[];
}

/**
 * As Felix, a workload's packets must come from an address the node routes back through
 * the workload's interface (strict RPF, before conntrack: a spoofed source never gets a
 * flow): IPv6 has no rp_filter sysctl, and for IPv4 it holds even if that sysctl is
 * changed.
 */
export const WORKLOAD_RPF = `-i ${WL} -m rpfilter --validmark --invert -j DROP`;

/**
 * raw: the workload RPF check, always; untracked policy for packets from (PREROUTING) and
 * to (OUTPUT, local traffic only: raw has no POSTROUTING) host endpoints, only while
 * some endpoint has untracked policy.
 */
export function rawChains(i: StageInput): Chain[] {
  const { marks } = i;
  // VXLAN's two directions use different source ports: tracked, they would only fill
  // conntrack with unreplied flows (Felix's NOTRACK in raw PREROUTING and OUTPUT)
  const notrack =
    i.vxlanPort !== undefined ? [`-p udp -m udp --dport ${i.vxlanPort} -j NOTRACK`] : [];
  // no other stage's bits decide here
  const prerouting = [clearMark(marks.all), ...notrack, WORKLOAD_RPF];
  if (!i.fromHost.length && !i.toHost.length)
    return [
      { name: STATIC.prerouting, rules: prerouting },
      ...(notrack.length ? [{ name: STATIC.output, rules: notrack }] : []),
    ];
  const accepted = `${markSet(marks.accept)} -j ACCEPT`;
  return [
    {
      name: STATIC.prerouting,
      rules: [
        ...prerouting,
        `-i ${WL} -j RETURN`, // untracked policy is for host endpoints only
        `-j ${STATIC.fromHepDispatch}`,
        accepted,
      ],
    },
    {
      name: STATIC.output,
      rules: [clearMark(marks.all), `-j ${STATIC.toHepDispatch}`, ...notrack, accepted],
    },
    stageDispatch(STATIC.fromHepDispatch, '-i', i.fromHost),
    stageDispatch(STATIC.toHepDispatch, '-o', i.toHost),
    failsafeChain(STATIC.failsafeIn, i.failsafeIn, 'in', i.failsafeOut),
    failsafeChain(STATIC.failsafeOut, i.failsafeOut, 'out', i.failsafeIn),
  ];
}

/**
 * mangle: pre-DNAT policy for packets from host endpoints (ingress only). Established
 * flows and untracked Allows skip it. Nothing when no endpoint has pre-DNAT policy.
 */
export function mangleChains(i: StageInput & { untracked: boolean }): Chain[] {
  if (!i.fromHost.length) return [];
  const { marks } = i;
  return [
    {
      name: STATIC.prerouting,
      rules: [
        ESTABLISHED,
        ...(i.untracked ? [untrackedAllowed(marks)] : []),
        `-i ${WL} -j RETURN`,
        `-j ${STATIC.fromHepDispatch}`,
        `${markSet(marks.accept)} -j ACCEPT`,
      ],
    },
    stageDispatch(STATIC.fromHepDispatch, '-i', i.fromHost),
    failsafeChain(STATIC.failsafeIn, i.failsafeIn, 'in'),
  ];
}

/** natOutgoing: masquerade from pools that ask for it to destinations outside all pools. */
export function natChains(family: Family, masquerade: boolean): Chain[] {
  if (!masquerade) return [{ name: STATIC.postrouting, rules: [] }];
  const masq = internalIpsetName(MASQ_POOLS_SET, family);
  const all = internalIpsetName(ALL_POOLS_SET, family);
  return [
    { name: STATIC.postrouting, rules: [`-j ${STATIC.natOutgoing}`] },
    {
      name: STATIC.natOutgoing,
      rules: [`-m set --match-set ${masq} src -m set ! --match-set ${all} dst -j MASQUERADE`],
      ipsets: [masq, all],
    },
  ];
}

/** Where tortie's chains hook into the built-in chains, per table. */
export const HOOKS: Record<string, Array<{ chain: string; target: string }>> = {
  filter: [
    { chain: 'INPUT', target: STATIC.input },
    { chain: 'FORWARD', target: STATIC.forward },
    { chain: 'OUTPUT', target: STATIC.output },
  ],
  nat: [{ chain: 'POSTROUTING', target: STATIC.postrouting }],
  raw: [
    { chain: 'PREROUTING', target: STATIC.prerouting },
    { chain: 'OUTPUT', target: STATIC.output },
  ],
  mangle: [{ chain: 'PREROUTING', target: STATIC.prerouting }],
};
