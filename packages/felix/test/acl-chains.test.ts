// Exact chains, pure: an endpoint with one tier of two policies and a profile, Pass to
// the next tier, tier default actions, failsafe ports, dispatch, natOutgoing.
import { createHash } from 'node:crypto';
import type { TierInfo } from '../src/types';
import { aclConfig, DEFAULT_ACL_CONFIG } from '../src/dataplane/acl/acl-config';
import { endpointChain, rulesChain } from '../src/dataplane/acl/endpoint-chains';
import { allocateMarks } from '../src/dataplane/acl/marks';
import { chainName } from '../src/dataplane/acl/names';
import {
  failsafeChain,
  filterChains,
  natChains,
  rawChains,
  workloadDispatch,
  DISPATCH_FANOUT,
  type FilterInput,
} from '../src/dataplane/acl/static-chains';

const marks = allocateMarks();
const tier = (
  name: string,
  ingress: string[],
  defaultAction: TierInfo['defaultAction'] = 'deny',
): TierInfo => ({
  name,
  defaultAction,
  ingressPolicies: ingress,
  egressPolicies: [],
});
const PI = (id: string) => chainName.policyIn(id);

test('one workload, one tier with two policies, one profile (ingress)', () => {
  const c = endpointChain(
    {
      name: 'tortie-tw-cali1',
      tiers: [tier('default', ['p1', 'p2'])],
      profileIds: ['kns.ns'],
      direction: 'ingress',
      kind: 'normal',
    },
    marks,
  );
  expect(c.rules).toEqual([
    '-j MARK --set-xmark 0x0/0x30000',
    '-j MARK --set-xmark 0x0/0x20000',
    '-m mark --mark 0x0/0x20000 -j tortie-pi-p1',
    '-m mark --mark 0x10000/0x10000 -j RETURN',
    '-m mark --mark 0x0/0x20000 -j tortie-pi-p2',
    '-m mark --mark 0x10000/0x10000 -j RETURN',
    '-m mark --mark 0x0/0x20000 -j DROP',
    '-j tortie-pri-kns.ns',
    '-m mark --mark 0x10000/0x10000 -j RETURN',
    '-j DROP',
  ]);
});

test('Pass: the policy returns with the pass bit, later policies of the tier are skipped, the next tier starts clean', () => {
  const pass = rulesChain(PI('a'), [{ action: 'pass', protocol: 6, ruleId: 'x' }], 4, marks);
  expect(pass.rules).toEqual([
    '-p tcp -j MARK --set-xmark 0x20000/0x20000',
    '-m mark --mark 0x20000/0x20000 -j RETURN',
  ]);
  const c = endpointChain(
    {
      name: 'tortie-tw-cali1',
      tiers: [tier('security', ['a', 'b']), tier('default', ['c'])],
      profileIds: [],
      direction: 'ingress',
      kind: 'normal',
    },
    marks,
  );
  expect(c.rules).toEqual([
    '-j MARK --set-xmark 0x0/0x30000',
    '-j MARK --set-xmark 0x0/0x20000',
    '-m mark --mark 0x0/0x20000 -j tortie-pi-a',
    '-m mark --mark 0x10000/0x10000 -j RETURN',
    '-m mark --mark 0x0/0x20000 -j tortie-pi-b', // skipped once a passed
    '-m mark --mark 0x10000/0x10000 -j RETURN',
    '-m mark --mark 0x0/0x20000 -j DROP', // end of tier: nobody passed
    '-j MARK --set-xmark 0x0/0x20000', // next tier clears pass
    '-m mark --mark 0x0/0x20000 -j tortie-pi-c',
    '-m mark --mark 0x10000/0x10000 -j RETURN',
    '-m mark --mark 0x0/0x20000 -j DROP',
    '-j DROP', // no profiles: default deny
  ]);
});

test('tier default action: pass tiers end without a drop; tiers with no policy in this direction are skipped', () => {
  const c = endpointChain(
    {
      name: 'x',
      tiers: [
        tier('t1', ['a'], 'pass'),
        { name: 'egress-only', defaultAction: 'deny', ingressPolicies: [], egressPolicies: ['e'] },
      ],
      profileIds: ['prof'],
      direction: 'ingress',
      kind: 'normal',
    },
    marks,
  );
  expect(c.rules).toEqual([
    '-j MARK --set-xmark 0x0/0x30000',
    '-j MARK --set-xmark 0x0/0x20000',
    '-m mark --mark 0x0/0x20000 -j tortie-pi-a',
    '-m mark --mark 0x10000/0x10000 -j RETURN',
    '-j tortie-pri-prof',
    '-m mark --mark 0x10000/0x10000 -j RETURN',
    '-j DROP',
  ]);
});

test('an endpoint with no policies and no profiles drops; egress uses the outbound chains', () => {
  expect(
    endpointChain(
      { name: 'x', tiers: [], profileIds: [], direction: 'egress', kind: 'normal' },
      marks,
    ).rules,
  ).toEqual(['-j MARK --set-xmark 0x0/0x30000', '-j DROP']);
  const e = endpointChain(
    {
      name: 'x',
      tiers: [{ ...tier('t', []), egressPolicies: ['p'] }],
      profileIds: ['q'],
      direction: 'egress',
      kind: 'normal',
    },
    marks,
  );
  expect(e.rules).toContain('-m mark --mark 0x0/0x20000 -j tortie-po-p');
  expect(e.rules).toContain('-j tortie-pro-q');
});

test('host endpoints: failsafe first; forward chains allow when no applyOnForward policy applies', () => {
  const h = endpointChain(
    {
      name: 'tortie-fh-eth0',
      tiers: [],
      profileIds: [],
      direction: 'ingress',
      kind: 'normal',
      failsafeChain: 'tortie-failsafe-in',
    },
    marks,
  );
  expect(h.rules[0]).toBe('-j tortie-failsafe-in');
  const fwd = endpointChain(
    {
      name: 'tortie-fhfw-eth0',
      tiers: [],
      profileIds: ['ignored'],
      direction: 'ingress',
      kind: 'forward',
    },
    marks,
  );
  expect(fwd.rules).toEqual([
    '-j MARK --set-xmark 0x0/0x30000',
    '-j MARK --set-xmark 0x10000/0x10000',
    '-j RETURN',
  ]);
});

test("failsafe ports: Calico's defaults, and config-update overrides them", () => {
  expect(
    failsafeChain('tortie-failsafe-in', DEFAULT_ACL_CONFIG.failsafeInboundHostPorts, 'in').rules,
  ).toEqual([
    '-p tcp -m tcp --dport 22 -j ACCEPT',
    '-p udp -m udp --dport 68 -j ACCEPT',
    '-p tcp -m tcp --dport 179 -j ACCEPT',
    '-p tcp -m tcp --dport 2379 -j ACCEPT',
    '-p tcp -m tcp --dport 2380 -j ACCEPT',
    '-p tcp -m tcp --dport 5473 -j ACCEPT',
    '-p tcp -m tcp --dport 6443 -j ACCEPT',
    '-p tcp -m tcp --dport 6666 -j ACCEPT',
    '-p tcp -m tcp --dport 6667 -j ACCEPT',
  ]);
  expect(
    failsafeChain('o', DEFAULT_ACL_CONFIG.failsafeOutboundHostPorts, 'out').rules.slice(0, 2),
  ).toEqual(['-p udp -m udp --dport 53 -j ACCEPT', '-p udp -m udp --dport 67 -j ACCEPT']);
  const cfg = aclConfig({
    failsafeInboundHostPorts: 'tcp:10.0.0.0/8:22',
    failsafeOutboundHostPorts: [{ protocol: 'UDP', port: 53, net: '10.0.0.10/32' }],
  });
  expect(failsafeChain('i', cfg.failsafeInboundHostPorts, 'in').rules).toEqual([
    '-p tcp -s 10.0.0.0/8 -m tcp --dport 22 -j ACCEPT',
  ]);
  expect(failsafeChain('o', cfg.failsafeOutboundHostPorts, 'out').rules).toEqual([
    '-p udp -d 10.0.0.10/32 -m udp --dport 53 -j ACCEPT',
  ]);
  expect(() => aclConfig({ defaultEndpointToHostAction: 'Maybe' })).toThrow(
    /defaultEndpointToHostAction: "Maybe" is not one of Drop, Accept, Return/,
  );
});

const input = (x: Partial<FilterInput> = {}): FilterInput => ({
  family: 4,
  marks,
  toWorkload: [],
  fromWorkload: [],
  toHost: [],
  fromHost: [],
  toHostForward: [],
  fromHostForward: [],
  defaultEndpointToHostAction: 'Drop',
  failsafeIn: DEFAULT_ACL_CONFIG.failsafeInboundHostPorts,
  failsafeOut: DEFAULT_ACL_CONFIG.failsafeOutboundHostPorts,
  ...x,
});
const byName = (i: FilterInput) => new Map(filterChains(i).map((c) => [c.name, c.rules]));

test('static filter chains: conntrack first, each side fails closed, dispatch per interface', () => {
  const m = byName(
    input({
      toWorkload: [
        { iface: 'calib', chain: 'tortie-tw-calib' },
        { iface: 'calia', chain: 'tortie-tw-calia' },
      ],
      fromWorkload: [{ iface: 'calia', chain: 'tortie-fw-calia' }],
      defaultEndpointToHostAction: 'Accept',
    }),
  );
  expect(m.get('tortie-FORWARD')).toEqual([
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-m conntrack --ctstate INVALID -j DROP',
    '-j MARK --set-xmark 0x0/0xf0000',
    '-i cali+ -j tortie-from-wl-dispatch',
    '-i cali+ -m mark --mark 0x0/0x10000 -j DROP',
    '-o cali+ -j MARK --set-xmark 0x0/0x30000',
    '-o cali+ -j tortie-to-wl-dispatch',
    '-o cali+ -m mark --mark 0x0/0x10000 -j DROP',
    '-m mark --mark 0x10000/0x10000 -j ACCEPT',
  ]);
  expect(m.get('tortie-to-wl-dispatch')).toEqual([
    '-o calia -g tortie-tw-calia',
    '-o calib -g tortie-tw-calib',
    '-o cali+ -j DROP',
  ]);
  expect(m.get('tortie-INPUT')).toEqual([
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-i cali+ -g tortie-wl-to-host',
  ]);
  expect(m.get('tortie-wl-to-host')).toEqual([
    '-m conntrack --ctstate INVALID -j DROP',
    '-j MARK --set-xmark 0x0/0xf0000',
    '-j tortie-from-wl-dispatch',
    '-m mark --mark 0x0/0x10000 -j DROP',
    '-j ACCEPT', // defaultEndpointToHostAction
  ]);
  // no host endpoints: no failsafe or host dispatch chains (only referenced chains exist)
  expect([...m.keys()].sort()).toEqual([
    'tortie-FORWARD',
    'tortie-INPUT',
    'tortie-OUTPUT',
    'tortie-from-wl-dispatch',
    'tortie-to-wl-dispatch',
    'tortie-wl-to-host',
  ]);
  expect(byName(input()).get('tortie-wl-to-host')!.at(-1)).toBe('-j DROP'); // Calico's default
});

test('host endpoints: INPUT/OUTPUT dispatch guarded per interface, wildcard last, failsafe chains present', () => {
  const m = byName(
    input({
      fromHost: [{ chain: 'tortie-fh-all-interfaces' }, { iface: 'eth0', chain: 'tortie-fh-eth0' }],
      toHost: [{ iface: 'eth0', chain: 'tortie-th-eth0' }],
      fromHostForward: [{ iface: 'eth0', chain: 'tortie-fhfw-eth0' }],
      toHostForward: [{ iface: 'eth0', chain: 'tortie-thfw-eth0' }],
    }),
  );
  expect(m.get('tortie-from-host-endpoint')).toEqual([
    '-i eth0 -j MARK --set-xmark 0x0/0x30000',
    '-i eth0 -j tortie-fh-eth0',
    '-i eth0 -m mark --mark 0x0/0x10000 -j DROP',
    '-i eth0 -j RETURN',
    '-j MARK --set-xmark 0x0/0x30000',
    '-j tortie-fh-all-interfaces',
    '-m mark --mark 0x0/0x10000 -j DROP',
    '-j RETURN',
  ]);
  expect(m.get('tortie-INPUT')).toEqual([
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    '-i cali+ -g tortie-wl-to-host',
    '-j MARK --set-xmark 0x0/0xf0000',
    '-j tortie-from-host-endpoint',
    '-m mark --mark 0x10000/0x10000 -j ACCEPT',
  ]);
  expect(m.get('tortie-FORWARD')).toContain('! -i cali+ -j tortie-from-hep-forward');
  expect(m.get('tortie-FORWARD')).toContain('! -o cali+ -j tortie-to-hep-forward');
  expect(m.has('tortie-failsafe-in')).toBe(true);
  expect(m.has('tortie-failsafe-out')).toBe(true);
});

test('IPv6 lets neighbour discovery from workloads reach the host', () => {
  const m = byName(input({ family: 6 }));
  expect(m.get('tortie-wl-to-host')).toContain('-p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT');
});

test('natOutgoing: masquerade from natOutgoing pools to outside all pools', () => {
  expect(natChains(4, true)).toEqual([
    { name: 'tortie-POSTROUTING', rules: ['-j tortie-nat-outgoing'] },
    {
      name: 'tortie-nat-outgoing',
      rules: [
        '-m set --match-set tortie40masq-ipam-pools src -m set ! --match-set tortie40all-ipam-pools dst -j MASQUERADE',
      ],
      ipsets: ['tortie40masq-ipam-pools', 'tortie40all-ipam-pools'],
    },
  ]);
  expect(natChains(6, true)[1].rules[0]).toContain('tortie60masq-ipam-pools');
  expect(natChains(4, false)).toEqual([{ name: 'tortie-POSTROUTING', rules: [] }]);
});

test('many workloads: a two-level dispatch tree, so adding a pod rewrites one small chain', () => {
  const es = Array.from({ length: 40 }, (_, i) => {
    const iface = `cali${(i % 4).toString(16)}${String(i).padStart(10, '0')}`;
    return { iface, chain: `tortie-tw-${iface}` };
  });
  const chains = workloadDispatch('tortie-to-wl-dispatch', '-o', es);
  expect(chains[0]).toEqual({
    name: 'tortie-to-wl-dispatch',
    rules: [
      '-o cali0+ -g tortie-to-wl-dispatch-0',
      '-o cali1+ -g tortie-to-wl-dispatch-1',
      '-o cali2+ -g tortie-to-wl-dispatch-2',
      '-o cali3+ -g tortie-to-wl-dispatch-3',
      '-o cali+ -j DROP',
    ],
  });
  expect(chains).toHaveLength(5);
  expect(chains[1].rules).toHaveLength(11); // 10 interfaces + drop of unknown ones
  expect(chains[1].rules[0]).toBe('-o cali00000000000 -g tortie-tw-cali00000000000');
  expect(chains.every((c) => c.name.length <= 28)).toBe(true);
  // few interfaces: one flat chain
  expect(workloadDispatch('d', '-i', es.slice(0, 3))).toHaveLength(1);
});

test('1,500 workloads: the tree splits further, every interface reaches its chain, a new pod rewrites one leaf', () => {
  const hex = (i: number) => createHash('sha1').update(`ns.pod-${i}`).digest('hex').slice(0, 11);
  const entries = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      iface: `cali${hex(i)}`,
      chain: `tortie-fw-cali${hex(i)}`,
    }));
  const before = workloadDispatch('tortie-from-wl-dispatch', '-i', entries(1500));
  const byName = new Map(before.map((c) => [c.name, c.rules]));
  // walk the tree as the kernel does: first matching rule, "+" is a prefix match
  const dispatch = (iface: string): string => {
    let chain = 'tortie-from-wl-dispatch';
    for (;;) {
      const rule = byName.get(chain)!.find((r) => {
        const m = r.split(' ')[1];
        return m.endsWith('+') ? iface.startsWith(m.slice(0, -1)) : iface === m;
      })!;
      const [, , verb, target] = rule.split(' ');
      if (verb === '-j' || !byName.has(target)) return target;
      chain = target;
    }
  };
  for (const e of entries(1500)) expect(dispatch(e.iface)).toBe(e.chain);
  expect(dispatch('calizzzzzzzzzzz')).toBe('DROP');
  expect(before.every((c) => c.name.length <= 28)).toBe(true);
  expect(Math.max(...before.map((c) => c.rules.length))).toBeLessThanOrEqual(DISPATCH_FANOUT + 1);
  // one more pod: the chains that differ hold a few dozen rules, not hundreds
  const after = workloadDispatch('tortie-from-wl-dispatch', '-i', entries(1501));
  const changed = after.filter(
    (c) => JSON.stringify(byName.get(c.name)) !== JSON.stringify(c.rules),
  );
  expect(changed.length).toBeGreaterThan(0);
  expect(changed.reduce((n, c) => n + c.rules.length, 0)).toBeLessThan(40);
});

test('tunnels: IP-in-IP and VXLAN to this host only from the all-hosts set, as Felix', () => {
  const set = 'tortie40all-hosts-net';
  const chains = filterChains(
    input({ tunnels: { ipip: true, vxlanPort: 4789, allHostsSet: set } }),
  );
  const inputChain = chains.find((c) => c.name === 'tortie-INPUT')!;
  // before conntrack: a forged packet must not ride an entry a node's tunnel made
  expect(inputChain.rules.slice(0, 5)).toEqual([
    `-p 4 -m set --match-set ${set} src -m addrtype --dst-type LOCAL -j ACCEPT`,
    '-p 4 -j DROP',
    `-p udp -m udp --dport 4789 -m set --match-set ${set} src -m addrtype --dst-type LOCAL -j ACCEPT`,
    '-p udp -m udp --dport 4789 -m addrtype --dst-type LOCAL -j DROP',
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  ]);
  expect(inputChain.ipsets).toEqual([set]); // the set is created before the rules
  // only IPIP: no VXLAN rules; no tunnel: no rules and no set
  const ipipOnly = byName(input({ tunnels: { ipip: true, allHostsSet: set } })).get(
    'tortie-INPUT',
  )!;
  expect(ipipOnly.filter((r) => r.includes('udp'))).toEqual([]);
  expect(ipipOnly.filter((r) => r.startsWith('-p 4'))).toHaveLength(2);
  const none = filterChains(input()).find((c) => c.name === 'tortie-INPUT')!;
  expect(none.rules.some((r) => r.includes('-p 4') || r.includes(set))).toBe(false);
  expect(none.ipsets).toBeUndefined();
});

test('externalNodesCIDRList and vxlanPort are read and checked', () => {
  const cfg = aclConfig({ externalNodesCIDRList: '192.0.2.0/24, 198.51.100.7', vxlanPort: '4790' });
  expect(cfg.externalNodesCIDRList).toEqual(['192.0.2.0/24', '198.51.100.7']);
  expect(cfg.vxlanPort).toBe(4790);
  expect(DEFAULT_ACL_CONFIG.vxlanPort).toBe(4789);
  expect(() => aclConfig({ externalNodesCIDRList: ['10.0.0.0/33'] })).toThrow(
    /externalNodesCIDRList: "10.0.0.0\/33" is not a valid CIDR/,
  );
  expect(() => aclConfig({ vxlanPort: 70000 })).toThrow(/vxlanPort: "70000" is not a port/);
});

test('tunnels: this host may send IP-in-IP and VXLAN to the other nodes past host endpoint policy, as Felix', () => {
  const set = 'tortie40all-hosts-net';
  const m = filterChains(
    input({
      tunnels: { ipip: true, vxlanPort: 4789, allHostsSet: set },
      toHost: [{ iface: 'eth0', chain: 'tortie-th-eth0' }],
      fromHost: [{ iface: 'eth0', chain: 'tortie-fh-eth0' }],
    }),
  ).find((c) => c.name === 'tortie-OUTPUT')!;
  const toHepAt = m.rules.indexOf('-j tortie-to-host-endpoint');
  const allowAt = m.rules.indexOf(
    `-p 4 -m addrtype --src-type LOCAL -m set --match-set ${set} dst -j ACCEPT`,
  );
  expect(allowAt).toBeGreaterThan(m.rules.indexOf('-o cali+ -j RETURN'));
  expect(m.rules[allowAt + 1]).toBe(
    `-p udp -m udp --dport 4789 -m addrtype --src-type LOCAL -m set --match-set ${set} dst -j ACCEPT`,
  );
  expect(toHepAt === -1 || toHepAt > allowAt + 1).toBe(true);
  expect(m.ipsets).toEqual([set]);
  const none = filterChains(input()).find((c) => c.name === 'tortie-OUTPUT')!;
  expect(none.rules.some((r) => r.includes(set))).toBe(false);
});

test('workloads may not send IP-in-IP or VXLAN of their own (forwarded or to the host), as Felix', () => {
  const m = byName(input({ dropWorkloadEncap: { ipip: true, vxlanPort: 4790 } }));
  const fwd = m.get('tortie-FORWARD')!;
  const at = fwd.indexOf('-i cali+ -p 4 -j DROP');
  expect(fwd[at + 1]).toBe('-i cali+ -p udp -m udp --dport 4790 -j DROP');
  // after the conntrack fast path, before the workload's own policy
  expect(at).toBeGreaterThan(fwd.indexOf('-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'));
  expect(at).toBeLessThan(fwd.indexOf('-i cali+ -j tortie-from-wl-dispatch'));
  const toHost = m.get('tortie-wl-to-host')!;
  const h = toHost.indexOf('-p 4 -j DROP');
  expect(toHost[h + 1]).toBe('-p udp -m udp --dport 4790 -j DROP');
  expect(h).toBeLessThan(toHost.indexOf('-j tortie-from-wl-dispatch'));
});

test('allowIPIPPacketsFromWorkloads / allowVXLANPacketsFromWorkloads lift each drop, as Felix', () => {
  const fwd = (d: { ipip: boolean; vxlanPort?: number }) =>
    byName(input({ dropWorkloadEncap: d })).get('tortie-FORWARD')!;
  expect(
    fwd({ ipip: false, vxlanPort: 4789 }).filter((r) => r.includes('DROP') && r.includes('-p ')),
  ).toEqual(['-i cali+ -p udp -m udp --dport 4789 -j DROP']);
  expect(fwd({ ipip: true }).filter((r) => r.includes('DROP') && r.includes('-p '))).toEqual([
    '-i cali+ -p 4 -j DROP',
  ]);
  const cfg = aclConfig({
    allowIPIPPacketsFromWorkloads: true,
    allowVXLANPacketsFromWorkloads: 'true',
  });
  expect([cfg.allowIPIPPacketsFromWorkloads, cfg.allowVXLANPacketsFromWorkloads]).toEqual([
    true,
    true,
  ]);
  expect(aclConfig({}).allowIPIPPacketsFromWorkloads).toBe(false);
});

test('VXLAN is not tracked: NOTRACK on its port in raw PREROUTING (before the RPF check) and OUTPUT, as Felix', () => {
  const stage = { marks, fromHost: [], toHost: [], failsafeIn: [], failsafeOut: [] };
  const raw = new Map(rawChains({ ...stage, vxlanPort: 4789 }).map((c) => [c.name, c.rules]));
  const pre = raw.get('tortie-PREROUTING')!;
  const notrack = '-p udp -m udp --dport 4789 -j NOTRACK';
  expect(pre.indexOf(notrack)).toBeGreaterThanOrEqual(0);
  expect(pre.indexOf(notrack)).toBeLessThan(pre.findIndex((r) => r.includes('rpfilter')));
  expect(raw.get('tortie-OUTPUT')).toEqual([notrack]);
  // with untracked host endpoint policy, OUTPUT keeps it before the accept
  const heps = rawChains({
    ...stage,
    vxlanPort: 4789,
    fromHost: [{ iface: 'eth0', chain: 'tortie-fh-eth0' }],
    toHost: [{ iface: 'eth0', chain: 'tortie-th-eth0' }],
  });
  expect(heps.find((c) => c.name === 'tortie-OUTPUT')!.rules).toContain(notrack);
  // no VXLAN: no NOTRACK, and no raw OUTPUT chain without host endpoints
  const none = rawChains(stage);
  expect(none.map((c) => c.name)).toEqual(['tortie-PREROUTING']);
  expect(none[0].rules.some((r) => r.includes('NOTRACK'))).toBe(false);
});
