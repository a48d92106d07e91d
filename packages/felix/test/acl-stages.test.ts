// Untracked (raw) and pre-DNAT (mangle) host endpoint policy: exact chains (pure), then
// the AclManager on the kernel-like fakes (only referenced chains, hooks, drift repair,
// cleanup when the last such policy goes).
import type { DataplaneUpdate, HostEndpoint, TierInfo } from '../src/types';
import { AclManager } from '../src/dataplane/acl/acl-manager';
import { DEFAULT_ACL_CONFIG } from '../src/dataplane/acl/acl-config';
import { endpointChain } from '../src/dataplane/acl/endpoint-chains';
import { FakeIpset, FakeIptables } from '../src/dataplane/acl/fakes';
import { allocateMarks } from '../src/dataplane/acl/marks';
import {
  failsafeChain,
  filterChains,
  mangleChains,
  rawChains,
  type FilterInput,
} from '../src/dataplane/acl/static-chains';

const marks = allocateMarks();
const tier = (ingress: string[], egress: string[] = []): TierInfo => ({
  name: 'default',
  defaultAction: 'deny',
  ingressPolicies: ingress,
  egressPolicies: egress,
});
const tcp = (port: number) => ({ protocol: 'TCP' as const, port });
const eth0 = { iface: 'eth0', chain: 'tortie-fh-eth0' };

describe('exact chains', () => {
  test('untracked endpoint chain: failsafe, tiers without end-of-tier drop, Allow NOTRACKs, no profiles, no final drop', () => {
    const c = endpointChain(
      {
        name: 'tortie-fh-eth0',
        tiers: [tier(['dnt1', 'dnt2']), { ...tier(['dnt3']), name: 'second' }],
        profileIds: ['ignored'],
        direction: 'ingress',
        kind: 'untracked',
        failsafeChain: 'tortie-failsafe-in',
      },
      marks,
    );
    expect(c.rules).toEqual([
      '-j tortie-failsafe-in',
      '-j MARK --set-xmark 0x0/0x30000',
      '-j MARK --set-xmark 0x0/0x20000',
      '-m mark --mark 0x0/0x20000 -j tortie-pi-dnt1',
      '-m mark --mark 0x10000/0x10000 -j NOTRACK',
      '-m mark --mark 0x10000/0x10000 -j RETURN',
      '-m mark --mark 0x0/0x20000 -j tortie-pi-dnt2',
      '-m mark --mark 0x10000/0x10000 -j NOTRACK',
      '-m mark --mark 0x10000/0x10000 -j RETURN',
      '-j MARK --set-xmark 0x0/0x20000',
      '-m mark --mark 0x0/0x20000 -j tortie-pi-dnt3',
      '-m mark --mark 0x10000/0x10000 -j NOTRACK',
      '-m mark --mark 0x10000/0x10000 -j RETURN',
    ]);
  });

  test('pre-DNAT endpoint chain: as untracked, without NOTRACK', () => {
    const c = endpointChain(
      {
        name: 'tortie-fh-eth0',
        tiers: [tier(['pre'])],
        profileIds: [],
        direction: 'ingress',
        kind: 'preDNAT',
        failsafeChain: 'tortie-failsafe-in',
      },
      marks,
    );
    expect(c.rules).toEqual([
      '-j tortie-failsafe-in',
      '-j MARK --set-xmark 0x0/0x30000',
      '-j MARK --set-xmark 0x0/0x20000',
      '-m mark --mark 0x0/0x20000 -j tortie-pi-pre',
      '-m mark --mark 0x10000/0x10000 -j RETURN',
    ]);
  });

  test('raw: clear the bits, skip workloads, dispatch by interface (goto), accept on the accept bit; failsafe both ways', () => {
    const chains = rawChains({
      marks,
      fromHost: [eth0],
      toHost: [{ iface: 'eth0', chain: 'tortie-th-eth0' }],
      failsafeIn: [tcp(22)],
      failsafeOut: [{ protocol: 'UDP', port: 53, net: '10.0.0.0/8' }],
    });
    expect(Object.fromEntries(chains.map((c) => [c.name, c.rules]))).toEqual({
      'tortie-PREROUTING': [
        '-j MARK --set-xmark 0x0/0xf0000',
        '-i cali+ -m rpfilter --validmark --invert -j DROP',
        '-i cali+ -j RETURN',
        '-j tortie-from-host-endpoint',
        '-m mark --mark 0x10000/0x10000 -j ACCEPT',
      ],
      'tortie-OUTPUT': [
        '-j MARK --set-xmark 0x0/0xf0000',
        '-j tortie-to-host-endpoint',
        '-m mark --mark 0x10000/0x10000 -j ACCEPT',
      ],
      'tortie-from-host-endpoint': ['-i eth0 -g tortie-fh-eth0'],
      'tortie-to-host-endpoint': ['-o eth0 -g tortie-th-eth0'],
      // before conntrack: the replies of failsafe connections are let through too
      'tortie-failsafe-in': [
        '-p tcp -m tcp --dport 22 -j ACCEPT',
        '-p udp -s 10.0.0.0/8 -m udp --sport 53 -j ACCEPT',
      ],
      'tortie-failsafe-out': [
        '-p udp -d 10.0.0.0/8 -m udp --dport 53 -j ACCEPT',
        '-p tcp -m tcp --sport 22 -j ACCEPT',
      ],
    });
    // without untracked policy: the workload RPF check alone
    expect(rawChains({ marks, fromHost: [], toHost: [], failsafeIn: [], failsafeOut: [] })).toEqual(
      [
        {
          name: 'tortie-PREROUTING',
          rules: [
            '-j MARK --set-xmark 0x0/0xf0000',
            '-i cali+ -m rpfilter --validmark --invert -j DROP',
          ],
        },
      ],
    );
  });

  test('mangle: established and untracked-allowed packets skip pre-DNAT policy; wildcard endpoint last', () => {
    const chains = mangleChains({
      marks,
      fromHost: [{ chain: 'tortie-fh-all-interfaces' }, eth0],
      toHost: [],
      failsafeIn: [tcp(22)],
      failsafeOut: [tcp(179)],
      untracked: true,
    });
    expect(Object.fromEntries(chains.map((c) => [c.name, c.rules]))).toEqual({
      'tortie-PREROUTING': [
        '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-m mark --mark 0x10000/0x10000 -m conntrack --ctstate UNTRACKED -j ACCEPT',
        '-i cali+ -j RETURN',
        '-j tortie-from-host-endpoint',
        '-m mark --mark 0x10000/0x10000 -j ACCEPT',
      ],
      'tortie-from-host-endpoint': ['-i eth0 -g tortie-fh-eth0', '-g tortie-fh-all-interfaces'],
      'tortie-failsafe-in': ['-p tcp -m tcp --dport 22 -j ACCEPT'], // no replies: conntrack has them
    });
    expect(
      mangleChains({
        ...{ marks, toHost: [], failsafeIn: [], failsafeOut: [] },
        fromHost: [],
        untracked: false,
      }),
    ).toEqual([]);
  });

  test('filter with untracked policy: INPUT/OUTPUT accept untracked Allows; FORWARD skips the incoming host endpoint for them', () => {
    const base: FilterInput = {
      family: 4,
      marks,
      toWorkload: [],
      fromWorkload: [],
      toHost: [{ iface: 'eth0', chain: 'tortie-th-eth0' }],
      fromHost: [eth0],
      toHostForward: [{ iface: 'eth0', chain: 'tortie-thfw-eth0' }],
      fromHostForward: [{ iface: 'eth0', chain: 'tortie-fhfw-eth0' }],
      defaultEndpointToHostAction: 'Drop',
      failsafeIn: DEFAULT_ACL_CONFIG.failsafeInboundHostPorts,
      failsafeOut: DEFAULT_ACL_CONFIG.failsafeOutboundHostPorts,
    };
    const byName = (i: FilterInput) =>
      Object.fromEntries(filterChains(i).map((c) => [c.name, c.rules]));
    const plain = byName(base);
    const dnt = byName({ ...base, untracked: true });
    const accept = '-m mark --mark 0x10000/0x10000 -m conntrack --ctstate UNTRACKED -j ACCEPT';
    // INPUT accepts what raw or mangle accepted (Felix's acceptAlreadyAccepted)
    const accepted = [
      '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-i cali+ -g tortie-wl-to-host',
      '-m mark --mark 0x10000/0x10000 -j ACCEPT',
      ...plain['tortie-INPUT'].slice(2),
    ];
    expect(dnt['tortie-INPUT']).toEqual(accepted);
    expect(byName({ ...base, preDnat: true })['tortie-INPUT']).toEqual(accepted);
    expect(dnt['tortie-OUTPUT']).toEqual([
      ...plain['tortie-OUTPUT'].slice(0, 2),
      accept,
      ...plain['tortie-OUTPUT'].slice(2),
    ]);
    expect(dnt['tortie-FORWARD'].slice(0, 7)).toEqual([
      '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-m conntrack --ctstate INVALID -j DROP',
      '-j MARK --set-xmark 0x0/0xe0000',
      // a pre-DNAT Allow (tracked) loses its accept bit: normal forward policy still applies
      '-m conntrack ! --ctstate UNTRACKED -j MARK --set-xmark 0x0/0x10000',
      '-i cali+ -j tortie-from-wl-dispatch',
      '-i cali+ -m mark --mark 0x0/0x10000 -j DROP',
      '! -i cali+ -m mark --mark 0x0/0x10000 -j tortie-from-hep-forward',
    ]);
    expect(dnt['tortie-FORWARD'].slice(7)).toEqual(plain['tortie-FORWARD'].slice(6));
    expect(byName({ ...base, untracked: false })).toEqual(plain);
  });

  test('failsafe chain without replies is unchanged', () => {
    expect(failsafeChain('x', [tcp(22)], 'in').rules).toEqual([
      '-p tcp -m tcp --dport 22 -j ACCEPT',
    ]);
  });
});

const POLICIES: DataplaneUpdate[] = [
  {
    type: 'policy-update',
    id: 'dnt',
    inbound: [
      { action: 'deny', protocol: 6, dstPorts: [{ first: 7072, last: 7072 }], ruleId: 'd1' },
    ],
    outbound: [
      { action: 'allow', protocol: 6, srcPorts: [{ first: 7071, last: 7071 }], ruleId: 'd2' },
    ],
  },
  {
    type: 'policy-update',
    id: 'pre',
    inbound: [
      { action: 'deny', protocol: 6, dstPorts: [{ first: 7073, last: 7073 }], ruleId: 'p1' },
    ],
    outbound: [],
  },
  {
    type: 'policy-update',
    id: 'normal',
    inbound: [{ action: 'allow', ruleId: 'n1' }],
    outbound: [],
  },
];
const hep = (over: Partial<HostEndpoint> = {}): HostEndpoint => ({
  id: 'node/eth0',
  ifaceName: 'eth0',
  expectedIps: [],
  tiers: [tier(['normal'])],
  untrackedTiers: [tier(['dnt'], ['dnt'])],
  preDnatTiers: [tier(['pre'])],
  forwardTiers: [],
  profileIds: [],
  ...over,
});

function setup(ipt = { 4: new FakeIptables(), 6: new FakeIptables() }) {
  const m = new AclManager({
    iptables: (_b, f) => ipt[f],
    ipsets: new FakeIpset([ipt[4], ipt[6]]),
    backend: 'nft',
    ipv6: true,
  });
  const feed = (us: DataplaneUpdate[]) => us.forEach((u) => m.send(u));
  const chains = (f: 4 | 6, table: string) =>
    [...ipt[f].table(table).keys()].filter((n) => n.startsWith('tortie-')).sort();
  return { m, ipt, feed, chains };
}

describe('AclManager: raw and mangle', () => {
  test('no untracked or pre-DNAT policy: nothing in mangle, in raw only the workload RPF check', async () => {
    const s = setup();
    s.feed([
      ...POLICIES,
      { type: 'host-endpoint-update', endpoint: hep({ untrackedTiers: [], preDnatTiers: [] }) },
      { type: 'in-sync' },
    ]);
    await s.m.apply();
    for (const f of [4, 6] as const) {
      expect(s.ipt[f].restores.map((r) => r.table)).toEqual(['filter', 'nat', 'raw']);
      expect(s.ipt[f].rules('raw', 'tortie-PREROUTING')).toEqual([
        '-j MARK --set-xmark 0x0/0xf0000',
        '-i cali+ -m rpfilter --validmark --invert -j DROP',
      ]);
      expect(s.ipt[f].rules('mangle', 'PREROUTING')).toEqual([]);
    }
    expect(s.ipt[4].rules('filter', 'tortie-INPUT')!.join('\n')).not.toContain('UNTRACKED');
  });

  test('each stage in its own table, one restore per table, both families; policy chains only where referenced', async () => {
    const s = setup();
    s.feed([...POLICIES, { type: 'host-endpoint-update', endpoint: hep() }, { type: 'in-sync' }]);
    await s.m.apply();
    for (const f of [4, 6] as const) {
      expect(s.ipt[f].restores.map((r) => r.table).sort()).toEqual([
        'filter',
        'mangle',
        'nat',
        'raw',
      ]);
      expect(s.chains(f, 'raw')).toEqual([
        'tortie-OUTPUT',
        'tortie-PREROUTING',
        'tortie-failsafe-in',
        'tortie-failsafe-out',
        'tortie-fh-eth0',
        'tortie-from-host-endpoint',
        'tortie-pi-dnt',
        'tortie-po-dnt',
        'tortie-th-eth0',
        'tortie-to-host-endpoint',
      ]);
      expect(s.chains(f, 'mangle')).toEqual([
        'tortie-PREROUTING',
        'tortie-failsafe-in',
        'tortie-fh-eth0',
        'tortie-from-host-endpoint',
        'tortie-pi-pre',
      ]);
      expect(s.ipt[f].rules('raw', 'PREROUTING')).toEqual(['-j tortie-PREROUTING']);
      expect(s.ipt[f].rules('raw', 'OUTPUT')).toEqual(['-j tortie-OUTPUT']);
      expect(s.ipt[f].rules('mangle', 'PREROUTING')).toEqual(['-j tortie-PREROUTING']);
      const filter = s.chains(f, 'filter');
      expect(filter).toContain('tortie-pi-normal');
      expect(filter).not.toContain('tortie-pi-dnt');
      expect(filter).not.toContain('tortie-pi-pre');
    }
    expect(s.ipt[4].rules('raw', 'tortie-pi-dnt')).toEqual([
      '-p tcp -m multiport --dports 7072 -j DROP',
    ]);
    expect(s.ipt[4].rules('mangle', 'tortie-pi-pre')).toEqual([
      '-p tcp -m multiport --dports 7073 -j DROP',
    ]);
    expect(s.ipt[4].rules('filter', 'tortie-INPUT')).toContain(
      '-m mark --mark 0x10000/0x10000 -j ACCEPT',
    );
    expect(s.ipt[4].rules('filter', 'tortie-OUTPUT')).toContain(
      '-m mark --mark 0x10000/0x10000 -m conntrack --ctstate UNTRACKED -j ACCEPT',
    );
  });

  test('a policy moving between stages moves its chain between tables', async () => {
    const s = setup();
    s.feed([...POLICIES, { type: 'host-endpoint-update', endpoint: hep() }, { type: 'in-sync' }]);
    await s.m.apply();
    s.feed([
      {
        type: 'host-endpoint-update',
        endpoint: hep({ untrackedTiers: [], preDnatTiers: [tier(['dnt'])] }),
      },
    ]);
    await s.m.apply();
    expect(s.ipt[4].table('mangle').has('tortie-pi-dnt')).toBe(true);
    expect(s.ipt[4].table('mangle').has('tortie-pi-pre')).toBe(false);
    // nobody has untracked policy any more: the RPF check alone
    expect(s.chains(4, 'raw')).toEqual(['tortie-PREROUTING']);
    expect(s.ipt[4].rules('raw', 'tortie-PREROUTING')).toHaveLength(2);
    expect(s.ipt[4].rules('filter', 'tortie-INPUT')!.join('\n')).not.toContain('UNTRACKED');
  });

  test('the last such policy gone: its raw and mangle chains and the mangle hook are removed, foreign rules stay', async () => {
    const s = setup();
    s.feed([...POLICIES, { type: 'host-endpoint-update', endpoint: hep() }, { type: 'in-sync' }]);
    await s.m.apply();
    s.ipt[4].run('*raw\n-A PREROUTING -s 192.0.2.1 -j NOTRACK\nCOMMIT\n');
    s.feed([{ type: 'host-endpoint-remove', id: 'node/eth0' }]);
    await s.m.apply();
    for (const f of [4, 6] as const) {
      expect(s.chains(f, 'raw')).toEqual(['tortie-PREROUTING']); // the RPF check stays
      expect(s.chains(f, 'mangle')).toEqual([]);
      expect(s.ipt[f].rules('mangle', 'PREROUTING')).toEqual([]);
    }
    expect(s.ipt[4].rules('raw', 'PREROUTING')).toEqual([
      '-j tortie-PREROUTING',
      '-s 192.0.2.1 -j NOTRACK',
    ]);
  });

  test('a restart writes nothing; resync repairs a flushed raw chain and a deleted mangle hook', async () => {
    const a = setup();
    const updates: DataplaneUpdate[] = [
      ...POLICIES,
      { type: 'host-endpoint-update', endpoint: hep() },
      { type: 'in-sync' },
    ];
    a.feed(updates);
    await a.m.apply();
    const b = setup(a.ipt);
    const n = a.ipt[4].restores.length;
    b.feed(updates);
    await b.m.apply();
    expect(a.ipt[4].restores.length).toBe(n);
    const want = a.ipt[4].rules('raw', 'tortie-fh-eth0');
    const hook = a.ipt[4].table('mangle').get('PREROUTING')!.rules[0];
    a.ipt[4].run('*raw\n-F tortie-fh-eth0\nCOMMIT\n');
    a.ipt[4].run(`*mangle\n-D PREROUTING ${hook}\nCOMMIT\n`);
    await b.m.resync();
    expect(a.ipt[4].rules('raw', 'tortie-fh-eth0')).toEqual(want);
    expect(a.ipt[4].rules('mangle', 'PREROUTING')).toEqual(['-j tortie-PREROUTING']);
    expect(
      a.ipt[4].restores
        .slice(n)
        .map((r) => r.table)
        .sort(),
    ).toEqual(['mangle', 'raw']);
  });

  test('an all-interfaces host endpoint gets pre-DNAT chains but no untracked ones (as Felix)', async () => {
    const s = setup();
    s.feed([
      ...POLICIES,
      { type: 'host-endpoint-update', endpoint: hep({ ifaceName: '*' }) },
      { type: 'in-sync' },
    ]);
    await s.m.apply();
    expect(s.chains(4, 'raw')).toEqual(['tortie-PREROUTING']); // the RPF check only
    expect(s.ipt[4].rules('mangle', 'tortie-from-host-endpoint')).toEqual([
      '-g tortie-fh-all-interfaces',
    ]);
  });
});
