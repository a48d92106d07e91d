// Dataplane rules and endpoints -> iptables chains, as Felix renders them. Pure.
//
// Marks (Felix's layout in the 0xffff0000 mask): 0x10000 accept, 0x20000 pass. A policy
// chain RETURNs with the accept mark on Allow, with the pass mark on Pass, DROPs on Deny.
// An endpoint chain clears both, walks its tiers (policies of a tier are skipped once one
// passed; a tier whose policies all fell through applies its default action), then its
// profiles, then drops: default deny for every endpoint tortie knows.
import { createHash } from 'node:crypto';
import type { HostPort } from '../config';
import type { DataplaneRule, HostEndpoint, PortRange, TierInfo, WorkloadEndpoint } from '../types';

export const MARK_ACCEPT = 0x10000;
export const MARK_PASS = 0x20000;
const hex = (n: number) => `0x${n.toString(16)}`;

export type Family = 4 | 6;

export interface Chain {
  name: string;
  rules: string[];
}

const hash = (s: string, n: number) =>
  createHash('sha224').update(s).digest('base64url').slice(0, n);

/** Chain names stay within iptables' 28 characters. */
export const chainNames = {
  policyIn: (id: string) => `tortie-pi-${hash(id, 18)}`,
  policyOut: (id: string) => `tortie-po-${hash(id, 18)}`,
  profileIn: (id: string) => `tortie-pri-${hash(id, 17)}`,
  profileOut: (id: string) => `tortie-pro-${hash(id, 17)}`,
  fromWorkload: (iface: string) => `tortie-fw-${iface}`,
  toWorkload: (iface: string) => `tortie-tw-${iface}`,
  fromHost: (iface: string) => `tortie-fh-${iface}`,
  toHost: (iface: string) => `tortie-th-${iface}`,
  fromHostForward: (iface: string) => `tortie-fhfw-${iface}`,
  toHostForward: (iface: string) => `tortie-thfw-${iface}`,
};

/** IP set names within ipset's 31 characters. */
export function ipsetName(id: string, family: Family): string {
  return `tortie${family === 4 ? 40 : 60}s:${id}`;
}

const PROTO_NAMES: Record<number, string> = {
  1: 'icmp',
  6: 'tcp',
  17: 'udp',
  58: 'ipv6-icmp',
  132: 'sctp',
  136: 'udplite',
};
const protoText = (p: number) => PROTO_NAMES[p] ?? String(p);
const isV6 = (net: string) => net.includes(':');
const ports = (rs: PortRange[]) =>
  rs.map((r) => (r.first === r.last ? `${r.first}` : `${r.first}:${r.last}`));

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** Net lists longer than one need a set of their own (iptables takes one -s per rule). */
export function netSetId(nets: string[]): string {
  return `n${hash([...nets].sort().join(','), 19)}`;
}

export interface NetSet {
  id: string;
  nets: string[];
}

/**
 * The match alternatives of one rule for one family (each alternative becomes one
 * iptables rule; they are OR-ed), or [] when the rule cannot match in this family.
 */
export function ruleMatches(
  r: DataplaneRule,
  family: Family,
  netSets: Map<string, NetSet>,
): string[] {
  if (r.ipVersion !== undefined && r.ipVersion !== family) return [];
  const fam = (nets?: string[]) => nets?.filter((n) => isV6(n) === (family === 6));
  const parts: string[] = [];
  if (r.protocol !== undefined) {
    if ((r.protocol === 1 && family === 6) || (r.protocol === 58 && family === 4)) return [];
    parts.push(`-p ${protoText(r.protocol)}`);
  }
  if (r.notProtocol !== undefined) parts.push(`! -p ${protoText(r.notProtocol)}`);
  const netMatch = (
    nets: string[] | undefined,
    dir: 'src' | 'dst',
    negate: boolean,
  ): string | null | undefined => {
    if (nets === undefined) return undefined;
    const mine = fam(nets)!;
    if (mine.length === 0) return negate ? undefined : null; // null: cannot match in this family
    const flag = dir === 'src' ? '-s' : '-d';
    if (mine.length === 1) return `${negate ? '! ' : ''}${flag} ${mine[0]}`;
    const id = netSetId(mine);
    netSets.set(id, { id, nets: mine });
    return `-m set ${negate ? '! ' : ''}--match-set ${ipsetName(id, family)} ${dir}`;
  };
  for (const [nets, dir, neg] of [
    [r.srcNets, 'src', false],
    [r.notSrcNets, 'src', true],
    [r.dstNets, 'dst', false],
    [r.notDstNets, 'dst', true],
  ] as const) {
    const m = netMatch(nets, dir, neg);
    if (m === null) return [];
    if (m) parts.push(m);
  }
  for (const [ids, dir, neg] of [
    [r.srcIpSetIds, 'src', false],
    [r.notSrcIpSetIds, 'src', true],
    [r.dstIpSetIds, 'dst', false],
    [r.notDstIpSetIds, 'dst', true],
  ] as const) {
    for (const id of ids ?? [])
      parts.push(`-m set ${neg ? '! ' : ''}--match-set ${ipsetName(id, family)} ${dir}`);
  }
  if (r.notSrcPorts?.length)
    for (const c of chunks(ports(r.notSrcPorts), 15))
      parts.push(`-m multiport ! --sports ${c.join(',')}`);
  if (r.notDstPorts?.length)
    for (const c of chunks(ports(r.notDstPorts), 15))
      parts.push(`-m multiport ! --dports ${c.join(',')}`);
  const icmpFlag = family === 4 ? '--icmp-type' : '--icmpv6-type';
  const icmpModule = family === 4 ? 'icmp' : 'icmp6';
  const icmpText = (m: { type?: number; code?: number }) =>
    m.code !== undefined ? `${m.type}/${m.code}` : `${m.type}`;
  if (r.icmp?.type !== undefined) parts.push(`-m ${icmpModule} ${icmpFlag} ${icmpText(r.icmp)}`);
  if (r.notIcmp?.type !== undefined)
    parts.push(`-m ${icmpModule} ! ${icmpFlag} ${icmpText(r.notIcmp)}`);

  // positive ports: numeric ranges OR named-port sets, per side: alternatives
  const side = (
    nums: PortRange[] | undefined,
    named: string[] | undefined,
    dir: 'src' | 'dst',
  ): string[] | undefined => {
    if (!nums?.length && !named?.length) return undefined;
    const flag = dir === 'src' ? '--sports' : '--dports';
    return [
      ...chunks(ports(nums ?? []), 15).map((c) => `-m multiport ${flag} ${c.join(',')}`),
      ...(named ?? []).map((id) => `-m set --match-set ${ipsetName(id, family)} ${dir},${dir}`),
    ];
  };
  const base = parts.join(' ');
  let alternatives = [base];
  for (const alts of [
    side(r.srcPorts, r.srcNamedPortIpSetIds, 'src'),
    side(r.dstPorts, r.dstNamedPortIpSetIds, 'dst'),
  ]) {
    if (!alts) continue;
    alternatives = alternatives.flatMap((a) => alts.map((x) => `${a} ${x}`.trim()));
  }
  return alternatives;
}

/** One policy or profile direction as a chain. */
export function ruleChain(
  name: string,
  rules: DataplaneRule[],
  family: Family,
  netSets: Map<string, NetSet>,
): Chain {
  const out: string[] = [];
  for (const r of rules) {
    const comment = `-m comment --comment "tortie:${r.ruleId}"`;
    for (const m of ruleMatches(r, family, netSets)) {
      const match = m ? `${m} ` : '';
      switch (r.action) {
        case 'allow':
          out.push(
            `${match}-j MARK --set-xmark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)} ${comment}`,
          );
          out.push(`-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)} -j RETURN`);
          break;
        case 'pass':
          out.push(`${match}-j MARK --set-xmark ${hex(MARK_PASS)}/${hex(MARK_PASS)} ${comment}`);
          out.push(`-m mark --mark ${hex(MARK_PASS)}/${hex(MARK_PASS)} -j RETURN`);
          break;
        case 'deny':
          out.push(`${match}-j DROP ${comment}`);
          break;
        case 'log':
          out.push(`${match}-j LOG --log-prefix "tortie: " ${comment}`);
          break;
      }
    }
  }
  return { name, rules: out };
}

/** An endpoint's chain for one direction: tiers, then profiles, then drop. */
export function endpointChain(
  name: string,
  tiers: TierInfo[],
  direction: 'ingress' | 'egress',
  profileIds: string[],
  opts: { failsafe?: string; undecided?: 'drop' | 'return' } = {},
): Chain {
  // failsafe ports first: no policy can lock the operator out (host endpoints)
  const rules = [
    ...(opts.failsafe ? [`-j ${opts.failsafe}`] : []),
    `-j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`,
  ];
  const accepted = `-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)} -j RETURN`;
  const notPassed = `-m mark --mark 0x0/${hex(MARK_PASS)}`;
  for (const t of tiers) {
    const ps = direction === 'ingress' ? t.ingressPolicies : t.egressPolicies;
    if (ps.length === 0) continue;
    rules.push(`-j MARK --set-xmark 0x0/${hex(MARK_PASS)}`);
    for (const p of ps) {
      rules.push(
        `${notPassed} -j ${direction === 'ingress' ? chainNames.policyIn(p) : chainNames.policyOut(p)}`,
      );
      rules.push(accepted);
    }
    if (t.defaultAction === 'deny')
      rules.push(`${notPassed} -j DROP -m comment --comment "tortie:end of tier ${t.name}"`);
  }
  for (const p of profileIds) {
    rules.push(
      `-j ${direction === 'ingress' ? chainNames.profileIn(p) : chainNames.profileOut(p)}`,
    );
    rules.push(accepted);
  }
  // forwarded traffic no applyOnForward policy decided is not policed here (as Calico)
  if (opts.undecided === 'return')
    rules.push(`-j MARK --set-xmark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)}`);
  else rules.push('-j DROP -m comment --comment "tortie:no policy or profile allowed it"');
  return { name, rules };
}

/** Failsafe chains: the configured host ports stay open whatever the policy says. */
export function failsafeChains(inbound: HostPort[], outbound: HostPort[]): Chain[] {
  const rule = (h: HostPort, dir: 'in' | 'out') =>
    `-p ${h.protocol.toLowerCase()}${h.net ? ` ${dir === 'in' ? '-s' : '-d'} ${h.net}` : ''} --dport ${h.port} -j ACCEPT`;
  return [
    { name: 'tortie-failsafe-in', rules: inbound.map((h) => rule(h, 'in')) },
    { name: 'tortie-failsafe-out', rules: outbound.map((h) => rule(h, 'out')) },
  ];
}

/** A host endpoint's chains: to the host (ingress), from the host (egress), forwarded. */
export function hostEndpointChains(h: HostEndpoint): Chain[] {
  const iface = h.ifaceName!;
  const fwd = h.forwardTiers.length > 0;
  return [
    endpointChain(chainNames.fromHost(iface), h.tiers, 'ingress', h.profileIds, {
      failsafe: 'tortie-failsafe-in',
    }),
    endpointChain(chainNames.toHost(iface), h.tiers, 'egress', h.profileIds, {
      failsafe: 'tortie-failsafe-out',
    }),
    ...(fwd
      ? [
          endpointChain(chainNames.fromHostForward(iface), h.forwardTiers, 'ingress', [], {
            undecided: 'return',
          }),
          endpointChain(chainNames.toHostForward(iface), h.forwardTiers, 'egress', [], {
            undecided: 'return',
          }),
        ]
      : []),
  ];
}

export interface FilterInput {
  workloads: WorkloadEndpoint[];
  /** Host endpoints on a named interface (all-interfaces host endpoints are not rendered yet). */
  hostEndpoints?: HostEndpoint[];
  defaultEndpointToHostAction: 'Drop' | 'Accept' | 'Return';
}

/** The static chains and dispatch of the filter table. */
export function filterChains(i: FilterInput): Chain[] {
  const toHost = { Drop: 'DROP', Accept: 'ACCEPT', Return: 'RETURN' }[
    i.defaultEndpointToHostAction
  ];
  const ws = [...i.workloads].sort((a, b) => a.ifaceName.localeCompare(b.ifaceName));
  const heps = (i.hostEndpoints ?? [])
    .filter((h) => h.ifaceName && h.ifaceName !== '*')
    .sort((a, b) => a.ifaceName!.localeCompare(b.ifaceName!));
  const fwd = heps.filter((h) => h.forwardTiers.length > 0);
  return [
    {
      name: 'tortie-FORWARD',
      rules: [
        '-m conntrack --ctstate INVALID -j DROP',
        '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        `-j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`,
        // each side must end with the accept mark: an emptied (flushed) endpoint chain
        // fails closed instead of letting the packet through
        '-i cali+ -j tortie-from-wl-dispatch',
        `-i cali+ -m mark --mark 0x0/${hex(MARK_ACCEPT)} -j DROP`,
        `-o cali+ -j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`,
        '-o cali+ -j tortie-to-wl-dispatch',
        `-o cali+ -m mark --mark 0x0/${hex(MARK_ACCEPT)} -j DROP`,
        // forwarded through host endpoints: their applyOnForward policies
        ...fwd.flatMap((h) => [
          `-i ${h.ifaceName} -j ${chainNames.fromHostForward(h.ifaceName!)}`,
          `-o ${h.ifaceName} -j ${chainNames.toHostForward(h.ifaceName!)}`,
        ]),
        `-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)} -j ACCEPT`,
      ],
    },
    {
      name: 'tortie-INPUT',
      rules: [
        '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-i cali+ -j tortie-wl-to-host',
        `-j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`,
        ...heps.map((h) => `-i ${h.ifaceName} -j ${chainNames.fromHost(h.ifaceName!)}`),
        `-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)} -j ACCEPT`,
      ],
    },
    {
      // host -> local workload is not policed (probes from the kubelet), as Felix
      name: 'tortie-OUTPUT',
      rules: [
        '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-o cali+ -j RETURN',
        `-j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`,
        ...heps.map((h) => `-o ${h.ifaceName} -j ${chainNames.toHost(h.ifaceName!)}`),
        `-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)} -j ACCEPT`,
      ],
    },
    {
      // the endpoint's egress policy first, then Felix's DefaultEndpointToHostAction
      name: 'tortie-wl-to-host',
      rules: [
        `-j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`,
        '-j tortie-from-wl-dispatch',
        `-m mark --mark 0x0/${hex(MARK_ACCEPT)} -j DROP`,
        `-j ${toHost} -m comment --comment "tortie:defaultEndpointToHostAction"`,
      ],
    },
    ...dispatch('tortie-from-wl-dispatch', '-i', ws, chainNames.fromWorkload),
    ...dispatch('tortie-to-wl-dispatch', '-o', ws, chainNames.toWorkload),
  ];
}

/**
 * Dispatch to per-endpoint chains as a two-level tree keyed by the interface name's
 * first character after "cali" (as Felix does): adding a pod rewrites one small
 * sub-chain, not a chain with a rule per pod of the node.
 */
function dispatch(
  root: string,
  flag: '-i' | '-o',
  ws: WorkloadEndpoint[],
  target: (iface: string) => string,
): Chain[] {
  const groups = new Map<string, WorkloadEndpoint[]>();
  for (const w of ws) {
    const k = w.ifaceName.slice(0, 5);
    groups.set(k, [...(groups.get(k) ?? []), w]);
  }
  const drop = '-j DROP -m comment --comment "tortie:unknown interface"';
  const sub = (k: string) => `${root}-${k.slice(4)}`;
  const keys = [...groups.keys()].sort();
  return [
    { name: root, rules: [...keys.map((k) => `${flag} ${k}+ -g ${sub(k)}`), drop] },
    ...keys.map((k) => ({
      name: sub(k),
      rules: [
        ...groups.get(k)!.map((w) => `${flag} ${w.ifaceName} -g ${target(w.ifaceName)}`),
        drop,
      ],
    })),
  ];
}

/** natOutgoing: masquerade from pools that ask for it to anywhere outside all pools. */
export function natChains(family: Family, masquerade: boolean): Chain[] {
  return [
    {
      name: 'tortie-POSTROUTING',
      rules: masquerade ? ['-j tortie-nat-outgoing'] : [],
    },
    {
      name: 'tortie-nat-outgoing',
      rules: masquerade
        ? [
            `-m set --match-set ${ipsetName('masq-ipam-pools', family)} src -m set ! --match-set ${ipsetName('all-ipam-pools', family)} dst -j MASQUERADE`,
          ]
        : [],
    },
  ];
}

/** Where tortie's chains hook into the built-in ones. */
export const HOOKS: Record<string, Array<{ chain: string; target: string }>> = {
  filter: [
    { chain: 'INPUT', target: 'tortie-INPUT' },
    { chain: 'FORWARD', target: 'tortie-FORWARD' },
    { chain: 'OUTPUT', target: 'tortie-OUTPUT' },
  ],
  nat: [{ chain: 'POSTROUTING', target: 'tortie-POSTROUTING' }],
};

/**
 * A fast 64-bit (two 32-bit FNV-1a lanes) hash for rule comments: tens of thousands of
 * rules are hashed on a full program, and drift detection needs no cryptography.
 */
function ruleHash(s: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(36).padStart(7, '0') + (b >>> 0).toString(36).padStart(7, '0');
}

/** Rule hashes: each rule's comment carries the hash of (chain, previous hash, rule). */
const hashCache = new WeakMap<Chain, string[]>();
export function ruleHashes(c: Chain): string[] {
  let h = hashCache.get(c);
  if (!h) {
    let prev = '';
    h = c.rules.map((r) => (prev = ruleHash(`${c.name}|${prev}|${r}`)));
    hashCache.set(c, h);
  }
  return h;
}

export function withHashes(c: Chain): string[] {
  const hs = ruleHashes(c);
  return c.rules.map((r, i) => `-A ${c.name} ${r} -m comment --comment "tortie-h:${hs[i]}"`);
}
