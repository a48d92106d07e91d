// AclManager against the kernel-like fakes: what is written, in which order, and how it
// converges (first start, incremental changes, restart, drift, failures).
import type { DataplaneUpdate, TierInfo, WorkloadEndpoint } from '../src/types';
import { AclManager } from '../src/dataplane/acl/acl-manager';
import { FakeIpset, FakeIptables } from '../src/dataplane/acl/fakes';
import { chainName } from '../src/dataplane/acl/names';
import {
  detectBackend,
  type Backend,
  type IptablesRunner,
} from '../src/dataplane/acl/iptables-runner';
import type { Family } from '../src/dataplane/acl/names';

const tier = (ingress: string[], egress: string[] = []): TierInfo => ({
  name: 'default',
  defaultAction: 'deny',
  ingressPolicies: ingress,
  egressPolicies: egress,
});
const wep = (
  n: number,
  tiers: TierInfo[] = [tier(['ns/allow-web'])],
  v6 = false,
): WorkloadEndpoint => ({
  id: `ns/pod${n}/eth0`,
  ifaceName: `cali${String(n).padStart(11, '0')}`,
  ipv4Nets: [`10.65.0.${n}/32`],
  ipv6Nets: v6 ? [`fd00::${n}/128`] : [],
  tiers,
  profileIds: ['kns.ns'],
});

const BASE: DataplaneUpdate[] = [
  {
    type: 'ipset-update',
    id: 's:web-clients',
    setType: 'hash:net',
    ipVersion: 4,
    members: ['10.65.0.1/32', '10.65.0.2/32'],
  },
  {
    type: 'policy-update',
    id: 'ns/allow-web',
    inbound: [
      {
        action: 'allow',
        protocol: 6,
        srcIpSetIds: ['s:web-clients'],
        dstPorts: [{ first: 80, last: 80 }],
        ruleId: 'r1',
      },
    ],
    outbound: [],
  },
  {
    type: 'profile-update',
    id: 'kns.ns',
    inbound: [],
    outbound: [{ action: 'allow', ruleId: 'p1' }],
  },
  {
    type: 'pool-update',
    pool: {
      cidr: '10.65.0.0/16',
      ipip: 'Never',
      vxlan: 'Never',
      natOutgoing: true,
      disableBGPExport: false,
    },
  },
];

function setup(kernel?: { ipt: Record<Family, FakeIptables>; ips: FakeIpset }) {
  const ipt = kernel?.ipt ?? { 4: new FakeIptables(), 6: new FakeIptables() };
  const ips = kernel?.ips ?? new FakeIpset([ipt[4], ipt[6]]);
  const events: string[] = [];
  const backends: Backend[] = [];
  const wrap = (f: Family, r: FakeIptables): IptablesRunner => ({
    restore: (t, i) => (events.push(`iptables${f}:${t}`), r.restore(t, i)),
    save: (t) => r.save(t),
  });
  const m = new AclManager({
    iptables: (b, f) => (backends.push(b), wrap(f, ipt[f])),
    ipsets: {
      restore: (i) => (events.push(`ipset:${i.split(' ')[0]}`), ips.restore(i)),
      listNames: () => ips.listNames(),
    },
    detectBackend: async () => 'nft',
  });
  const feed = (us: DataplaneUpdate[]) => us.forEach((u) => m.send(u));
  return { m, ipt, ips, events, backends, feed, kernel: { ipt, ips } };
}

const lastInput = (ipt: FakeIptables, table = 'filter') =>
  ipt.restores.filter((r) => r.table === table).at(-1)?.input ?? '';
const declared = (input: string) =>
  input
    .split('\n')
    .filter((l) => l.startsWith(':'))
    .map((l) => l.slice(1).split(' ')[0]);

test('nothing is written (or read) before in-sync', async () => {
  const s = setup();
  s.feed([...BASE, { type: 'workload-update', endpoint: wep(1) }]);
  await s.m.apply();
  expect(s.events).toEqual([]);
  expect(s.ipt[4].saves).toEqual([]);
});

test('first apply: sets, then one restore per table, backend from Auto detection', async () => {
  const s = setup();
  s.feed([...BASE, { type: 'workload-update', endpoint: wep(1) }, { type: 'in-sync' }]);
  await s.m.apply();
  // raw: the workload RPF check
  expect(s.events).toEqual(['ipset:create', 'iptables4:filter', 'iptables4:nat', 'iptables4:raw']);
  expect(s.ipt[4].rules('raw', 'PREROUTING')).toEqual(['-j tortie-PREROUTING']);
  expect(s.backends).toEqual(['nft']);
  expect(s.ipt[4].rules('filter', 'FORWARD')).toEqual(['-j tortie-FORWARD']);
  expect(s.ipt[4].rules('filter', chainName.policyIn('ns/allow-web'))).toEqual([
    '-p tcp -m set --match-set tortie40s:s:web-clients src -m multiport --dports 80 -j MARK --set-xmark 0x10000/0x10000',
    '-m mark --mark 0x10000/0x10000 -j RETURN',
  ]);
  expect([...s.ips.sets.get('tortie40s:s:web-clients')!.members]).toEqual([
    '10.65.0.1/32',
    '10.65.0.2/32',
  ]);
  expect([...s.ips.sets.get('tortie40masq-ipam-pools')!.members]).toEqual(['10.65.0.0/16']);
  expect(s.ipt[4].rules('nat', 'tortie-nat-outgoing')).toHaveLength(1);
  // no temporary sets left behind, no v6 tables touched
  expect(
    [...s.ips.sets.keys()].filter((n) => n.includes('t:') || n.startsWith('tortie4t')),
  ).toEqual([]);
  expect(s.ipt[6].restores).toEqual([]);
});

test('only referenced policy/profile chains exist; unreferenced ones come and go with their endpoints', async () => {
  const s = setup();
  s.feed([
    ...BASE,
    {
      type: 'policy-update',
      id: 'ns/unused',
      inbound: [{ action: 'deny', ruleId: 'u' }],
      outbound: [],
    },
    { type: 'in-sync' },
  ]);
  await s.m.apply();
  const filter = s.ipt[4].table('filter');
  expect(filter.has(chainName.policyIn('ns/unused'))).toBe(false);
  expect(filter.has(chainName.policyIn('ns/allow-web'))).toBe(false);
  expect(filter.has('tortie-pro-kns.ns')).toBe(false);
  s.feed([{ type: 'workload-update', endpoint: wep(1) }]);
  await s.m.apply();
  expect(s.ipt[4].table('filter').has(chainName.policyIn('ns/allow-web'))).toBe(true);
  expect(s.ipt[4].table('filter').has('tortie-pro-kns.ns')).toBe(true);
  expect(s.ipt[4].table('filter').has('tortie-pri-kns.ns')).toBe(true);
  expect(s.ipt[4].table('filter').has('tortie-po-kns.ns')).toBe(false);
  s.feed([{ type: 'workload-remove', id: wep(1).id }]);
  await s.m.apply();
  const input = lastInput(s.ipt[4]);
  expect(input).toContain(`-X ${chainName.policyIn('ns/allow-web')}`);
  expect(input).toContain('-X tortie-tw-cali00000000001');
  expect(s.ipt[4].table('filter').has(chainName.policyIn('ns/allow-web'))).toBe(false);
});

test('adding one endpoint rewrites only its chains and the dispatch chains', async () => {
  const s = setup();
  s.feed([
    ...BASE,
    ...[1, 2, 3].map((n) => ({ type: 'workload-update' as const, endpoint: wep(n) })),
    { type: 'in-sync' },
  ]);
  await s.m.apply();
  s.feed([{ type: 'workload-update', endpoint: wep(4) }]);
  await s.m.apply();
  expect(declared(lastInput(s.ipt[4])).sort()).toEqual([
    'tortie-from-wl-dispatch',
    'tortie-fw-cali00000000004',
    'tortie-to-wl-dispatch',
    'tortie-tw-cali00000000004',
  ]);
  expect(s.ipt[4].restores.filter((r) => r.table === 'nat')).toHaveLength(1); // nat untouched
  await s.m.apply();
  expect(s.ipt[4].restores).toHaveLength(4); // nothing changed: nothing written
});

test('IP set deltas are add/del lines; a removed set is destroyed only after the rules using it are gone', async () => {
  const s = setup();
  s.feed([...BASE, { type: 'workload-update', endpoint: wep(1) }, { type: 'in-sync' }]);
  await s.m.apply();
  s.feed([
    {
      type: 'ipset-delta',
      id: 's:web-clients',
      added: ['10.65.0.9/32'],
      removed: ['10.65.0.1/32'],
    },
  ]);
  await s.m.apply();
  expect(s.ips.restores.at(-1)).toBe(
    'del tortie40s:s:web-clients 10.65.0.1/32 -exist\nadd tortie40s:s:web-clients 10.65.0.9/32 -exist\n',
  );
  // the calc graph drops the set and the policy's use of it in one batch
  s.events.length = 0;
  s.feed([
    {
      type: 'policy-update',
      id: 'ns/allow-web',
      inbound: [{ action: 'allow', protocol: 6, ruleId: 'r2' }],
      outbound: [],
    },
    { type: 'ipset-remove', id: 's:web-clients' },
  ]);
  await s.m.apply();
  expect(s.events).toEqual(['iptables4:filter', 'ipset:destroy']);
  expect(s.ips.sets.has('tortie40s:s:web-clients')).toBe(false);
});

test('a set removed while a rule still uses it stays until the rule is gone', async () => {
  const s = setup();
  s.feed([...BASE, { type: 'workload-update', endpoint: wep(1) }, { type: 'in-sync' }]);
  await s.m.apply();
  s.feed([{ type: 'ipset-remove', id: 's:web-clients' }]);
  await expect(s.m.apply()).resolves.toBeUndefined();
  expect(s.ips.sets.has('tortie40s:s:web-clients')).toBe(true);
  s.feed([{ type: 'workload-remove', id: wep(1).id }]);
  await s.m.apply();
  expect(s.ips.sets.has('tortie40s:s:web-clients')).toBe(false);
});

test('restart: a new manager over a programmed kernel converges without rewriting any chain', async () => {
  const a = setup();
  const updates: DataplaneUpdate[] = [
    ...BASE,
    { type: 'workload-update', endpoint: wep(1) },
    { type: 'workload-update', endpoint: wep(2) },
    { type: 'in-sync' },
  ];
  a.feed(updates);
  await a.m.apply();
  const before = a.ipt[4].save('filter');
  const b = setup(a.kernel);
  const restores = a.ipt[4].restores.length;
  b.feed(updates);
  await b.m.apply();
  expect(a.ipt[4].restores.length).toBe(restores); // no iptables write at all
  expect(await a.ipt[4].save('filter')).toBe(await before);
  // an endpoint that disappeared while we were down is cleaned up in one transaction
  const c = setup(a.kernel);
  c.feed(updates.filter((u) => !(u.type === 'workload-update' && u.endpoint.id === wep(2).id)));
  await c.m.apply();
  expect(declared(lastInput(a.ipt[4])).sort()).toEqual([
    'tortie-from-wl-dispatch',
    'tortie-fw-cali00000000002',
    'tortie-to-wl-dispatch',
    'tortie-tw-cali00000000002',
  ]);
  expect(a.ipt[4].table('filter').has('tortie-tw-cali00000000002')).toBe(false);
});

test('resync repairs a chain flushed by hand, a deleted hook, and leaves foreign rules alone', async () => {
  const s = setup();
  s.feed([...BASE, { type: 'workload-update', endpoint: wep(1) }, { type: 'in-sync' }]);
  await s.m.apply();
  const want = s.ipt[4].rules('filter', 'tortie-tw-cali00000000001');
  s.ipt[4].run(
    [
      '*filter',
      '-F tortie-tw-cali00000000001',
      `-D FORWARD ${s.ipt[4].table('filter').get('FORWARD')!.rules[0]}`,
      '-A FORWARD -s 192.0.2.1 -j DROP',
      'COMMIT',
    ].join('\n'),
  );
  await s.m.apply(); // apply alone does not read back
  expect(s.ipt[4].rules('filter', 'tortie-tw-cali00000000001')).toEqual([]);
  await s.m.resync();
  expect(s.ipt[4].rules('filter', 'tortie-tw-cali00000000001')).toEqual(want);
  expect(s.ipt[4].rules('filter', 'FORWARD')).toEqual([
    '-j tortie-FORWARD',
    '-s 192.0.2.1 -j DROP',
  ]);
  expect(declared(lastInput(s.ipt[4]))).toEqual(['tortie-tw-cali00000000001']);
});

test('a failed restore outside policy chains is reported and retried from a fresh read-back', async () => {
  const s = setup();
  s.feed([...BASE, { type: 'workload-update', endpoint: wep(1) }, { type: 'in-sync' }]);
  s.ipt[4].refuse = { rule: /tortie-wl-to-host/, error: 'no such chain' };
  await expect(s.m.apply()).rejects.toThrow(/no such chain/);
  // read in parallel before the write (raw and mangle too: an earlier run may have left chains)
  expect(s.ipt[4].saves).toEqual(['filter', 'nat', 'raw', 'mangle']);
  s.ipt[4].refuse = undefined;
  await s.m.apply();
  // only the failed table again
  expect(s.ipt[4].saves).toEqual(['filter', 'nat', 'raw', 'mangle', 'filter']);
  expect(s.ipt[4].table('filter').has('tortie-tw-cali00000000001')).toBe(true);
  expect(s.m.status().rejected).toEqual([]);
});

describe('failure isolation: a policy the kernel refuses fails closed, everything else is programmed', () => {
  const policy = (id: string, port: number): DataplaneUpdate => ({
    type: 'policy-update',
    id,
    inbound: [
      { action: 'allow', protocol: 6, dstPorts: [{ first: port, last: port }], ruleId: id },
    ],
    outbound: [],
  });
  const ids = Array.from({ length: 12 }, (_, i) => `ns/p${i}`);
  /** 12 policies on one endpoint, and the kernel refusing the rules of ports in `bad`. */
  function cluster(bad: number[]) {
    const failures: string[] = [];
    const s = setup();
    const m = new AclManager({
      iptables: () => s.ipt[4],
      ipsets: s.ips,
      backend: 'nft',
      onPolicyFailure: (f) => failures.push(`${f.kind} ${f.id} ${f.direction}`),
    });
    ids.forEach((id, i) => m.send(policy(id, 1000 + i)));
    for (const u of BASE) m.send(u);
    m.send({ type: 'workload-update', endpoint: wep(1, [tier(ids)]) });
    m.send({ type: 'in-sync' });
    s.ipt[4].refuse = {
      rule: new RegExp(`--dports (${bad.map((p) => 1000 + p).join('|')}) `),
      error: 'iptables-restore: multiple -d flags not allowed',
    };
    return { s, m, failures };
  }
  const chainOf = (s: ReturnType<typeof setup>, id: string) =>
    s.ipt[4].rules('filter', chainName.policyIn(id));

  test('one bad policy among 12: only it is closed, found in a few restores, reported by name', async () => {
    const { s, m, failures } = cluster([7]);
    await m.apply();
    for (const [i, id] of ids.entries())
      expect(chainOf(s, id)).toEqual(
        i === 7
          ? ['-j DROP']
          : [
              `-p tcp -m multiport --dports ${1000 + i} -j MARK --set-xmark 0x10000/0x10000`,
              '-m mark --mark 0x10000/0x10000 -j RETURN',
            ],
      );
    // the endpoint still walks every policy: the closed one drops what reaches it
    expect(s.ipt[4].rules('filter', 'tortie-tw-cali00000000001')).toContain(
      `-m mark --mark 0x0/0x20000 -j ${chainName.policyIn('ns/p7')}`,
    );
    expect(m.status().rejected).toEqual([
      expect.objectContaining({
        kind: 'policy',
        id: 'ns/p7',
        direction: 'ingress',
        family: 4,
        table: 'filter',
        chain: chainName.policyIn('ns/p7'),
        reason: expect.stringMatching(/the kernel refused it: .*multiple -d flags not allowed/),
      }),
    ]);
    expect(failures).toEqual(['policy ns/p7 ingress']);
    // 1 refused + 1 all closed + bisection of 13 suspects (12 policies and the profile)
    const restores = s.ipt[4].restores.filter((r) => r.table === 'filter').length;
    expect(restores).toBeLessThanOrEqual(2 + 2 * Math.ceil(Math.log2(13)));
  });

  test('two bad policies: both found; later changes still apply; a fixed policy comes back', async () => {
    const { s, m, failures } = cluster([2, 9]);
    await m.apply();
    expect(m.status().rejected.map((f) => f.id)).toEqual(['ns/p2', 'ns/p9']);
    expect(chainOf(s, 'ns/p2')).toEqual(['-j DROP']);
    expect(chainOf(s, 'ns/p9')).toEqual(['-j DROP']);
    // a new endpoint is programmed, the bad policies stay closed without bisecting again
    const before = s.ipt[4].restores.length;
    m.send({ type: 'workload-update', endpoint: wep(2, [tier(ids)]) });
    await m.apply();
    expect(s.ipt[4].table('filter').has('tortie-tw-cali00000000002')).toBe(true);
    expect(s.ipt[4].restores.length - before).toBe(1);
    // the user fixes p2 (its rules change): tried again, programmed
    m.send(policy('ns/p2', 2000));
    await m.apply();
    expect(chainOf(s, 'ns/p2')).toHaveLength(2);
    expect(m.status().rejected.map((f) => f.id)).toEqual(['ns/p9']);
    // deleting the other one ends its failure too
    m.send({
      type: 'workload-update',
      endpoint: wep(1, [tier(ids.filter((i) => i !== 'ns/p9'))]),
    });
    m.send({
      type: 'workload-update',
      endpoint: wep(2, [tier(ids.filter((i) => i !== 'ns/p9'))]),
    });
    await m.apply();
    expect(m.status().rejected).toEqual([]);
    expect(failures).toEqual(['policy ns/p2 ingress', 'policy ns/p9 ingress']);
  });

  test('a refused chain is tried again at resync (the kernel may accept it now)', async () => {
    const { s, m } = cluster([4]);
    await m.apply();
    expect(chainOf(s, 'ns/p4')).toEqual(['-j DROP']);
    await m.resync(); // still refused: closed again, still reported since the first time
    const since = m.status().rejected[0].since;
    expect(chainOf(s, 'ns/p4')).toEqual(['-j DROP']);
    s.ipt[4].refuse = undefined;
    await m.resync();
    expect(chainOf(s, 'ns/p4')).toHaveLength(2);
    expect(m.status().rejected).toEqual([]);
    expect(since).toMatch(/^\d{4}-/);
  });

  test('a rule that cannot be rendered closes its policy without asking the kernel', async () => {
    const s = setup();
    s.feed([
      ...BASE,
      {
        type: 'policy-update',
        id: 'ns/allow-web',
        inbound: [
          { action: 'deny', srcNets: ['10.0.0.0/33'], ruleId: 'bad' },
          { action: 'allow', ruleId: 'ok' },
        ],
        outbound: [],
      },
      { type: 'workload-update', endpoint: wep(1) },
      { type: 'in-sync' },
    ]);
    await s.m.apply();
    expect(s.ipt[4].rules('filter', chainName.policyIn('ns/allow-web'))).toEqual(['-j DROP']);
    expect(s.m.status().rejected).toEqual([
      expect.objectContaining({
        id: 'ns/allow-web',
        reason: 'rule bad: "10.0.0.0/33" is not a valid CIDR',
      }),
    ]);
  });
});

test('config: backend and defaultEndpointToHostAction from config-update; IPv6 endpoints bring ip6tables', async () => {
  const s = setup();
  s.feed([
    ...BASE,
    {
      type: 'config-update',
      config: { iptablesBackend: 'Legacy', defaultEndpointToHostAction: 'Accept' },
    },
    { type: 'workload-update', endpoint: wep(1, [tier(['ns/allow-web'])], true) },
    { type: 'ipset-delta', id: 's:web-clients', added: ['fd00::1/128'], removed: [] },
    { type: 'in-sync' },
  ]);
  await s.m.apply();
  expect(s.backends).toEqual(['legacy', 'legacy']);
  expect(s.ipt[4].rules('filter', 'tortie-wl-to-host')!.at(-1)).toBe('-j ACCEPT');
  expect(s.ipt[6].rules('filter', chainName.policyIn('ns/allow-web'))![0]).toContain(
    'tortie60s:s:web-clients',
  );
  expect([...s.ips.sets.get('tortie60s:s:web-clients')!.members]).toEqual(['fd00::1/128']);
  expect(s.ipt[6].table('nat').has('tortie-nat-outgoing')).toBe(false); // v4 pool only
});

test('host endpoints: normal and forward chains, failsafe chains referenced', async () => {
  const s = setup();
  s.feed([
    ...BASE,
    {
      type: 'host-endpoint-update',
      endpoint: {
        id: 'n1-eth0',
        ifaceName: 'eth0',
        expectedIps: [],
        tiers: [tier(['ns/allow-web'])],
        untrackedTiers: [],
        preDnatTiers: [],
        forwardTiers: [],
        profileIds: [],
      },
    },
    { type: 'in-sync' },
  ]);
  await s.m.apply();
  const f = s.ipt[4].table('filter');
  for (const c of [
    'tortie-fh-eth0',
    'tortie-th-eth0',
    'tortie-fhfw-eth0',
    'tortie-thfw-eth0',
    'tortie-failsafe-in',
    'tortie-failsafe-out',
  ])
    expect(f.has(c)).toBe(true);
  expect(s.ipt[4].rules('filter', 'tortie-fh-eth0')![0]).toBe('-j tortie-failsafe-in');
  s.feed([{ type: 'host-endpoint-remove', id: 'n1-eth0' }]);
  await s.m.apply();
  expect(
    [...s.ipt[4].table('filter').keys()].filter((n) =>
      /^tortie-(fh|th|failsafe)|host-endpoint|hep/.test(n),
    ),
  ).toEqual([]);
});

test('iptablesMarkMask from config-update moves every mark bit', async () => {
  const s = setup();
  s.feed([
    ...BASE,
    { type: 'config-update', config: { iptablesMarkMask: '0xf00' } },
    { type: 'workload-update', endpoint: wep(1) },
    { type: 'in-sync' },
  ]);
  await s.m.apply();
  expect(s.ipt[4].rules('filter', 'tortie-tw-cali00000000001')![0]).toBe(
    '-j MARK --set-xmark 0x0/0x300',
  );
  expect(s.ipt[4].rules('filter', 'tortie-FORWARD')).toContain(
    '-m mark --mark 0x100/0x100 -j ACCEPT',
  );
  // a bad value is reported and ignored: the last good configuration stays
  s.feed([
    {
      type: 'config-update',
      config: { iptablesMarkMask: 'lots', defaultEndpointToHostAction: 'Accept' },
    },
  ]);
  expect(s.m.status().lastConfigError).toBe('iptablesMarkMask: "lots" is not a 32-bit mask');
  s.feed([{ type: 'config-update', config: { iptablesMarkMask: 0x3 } }]);
  expect(s.m.status().lastConfigError).toMatch(
    /iptablesMarkMask 0x3 has 2 bit\(s\) set; tortie needs at least 4/,
  );
  await s.m.apply();
  expect(s.ipt[4].rules('filter', 'tortie-wl-to-host')!.at(-1)).toBe('-j DROP');
  expect(s.ipt[4].rules('filter', 'tortie-FORWARD')).toContain(
    '-m mark --mark 0x100/0x100 -j ACCEPT',
  );
});

describe('backend detection (Felix "Auto")', () => {
  const exec =
    (legacyRules: number, nftRules: number, version = 'iptables v1.8.9 (nf_tables)') =>
    async (argv: string[]) => {
      const bin = argv[argv.length - 1] === '--version' ? 'version' : argv[argv.length - 1];
      const n = bin.includes('legacy') ? legacyRules : nftRules;
      const stdout =
        bin === 'version' ? version : Array.from({ length: n }, () => '-A INPUT -j X').join('\n');
      return { code: 0, stdout, stderr: '' };
    };
  test('the backend that holds rules wins; otherwise what iptables is', async () => {
    expect(await detectBackend({}, exec(5, 0))).toBe('legacy');
    expect(await detectBackend({}, exec(0, 3))).toBe('nft');
    expect(await detectBackend({}, exec(0, 0, 'iptables v1.8.9 (legacy)'))).toBe('legacy');
    expect(await detectBackend({}, exec(0, 0))).toBe('nft');
  });
  test('commands run inside the namespace', async () => {
    const seen: string[][] = [];
    await detectBackend(
      { netns: 'tt-x' },
      async (argv) => (seen.push(argv), { code: 0, stdout: '', stderr: '' }),
    );
    expect(seen.every((a) => a.slice(0, 4).join(' ') === 'ip netns exec tt-x')).toBe(true);
  });
});

test('an interface handed to a new endpoint (pod replaced) keeps its chains when the old endpoint goes', async () => {
  const s = setup();
  s.feed([...BASE, { type: 'workload-update', endpoint: wep(1) }, { type: 'in-sync' }]);
  await s.m.apply();
  const replacement = { ...wep(1), id: 'ns/pod1-new/eth0', tiers: [] };
  s.feed([{ type: 'workload-update', endpoint: replacement }]);
  await s.m.apply();
  s.feed([{ type: 'workload-remove', id: wep(1).id }]);
  await s.m.apply();
  expect(s.ipt[4].rules('filter', 'tortie-tw-cali00000000001')).toEqual([
    '-j MARK --set-xmark 0x0/0x30000',
    '-j tortie-pri-kns.ns',
    '-m mark --mark 0x10000/0x10000 -j RETURN',
    '-j DROP',
  ]);
  expect(s.ipt[4].rules('filter', 'tortie-to-wl-dispatch')).toContain(
    '-o cali00000000001 -g tortie-tw-cali00000000001',
  );
  // the old endpoint's policy is no longer referenced by anyone
  expect(s.ipt[4].table('filter').has(chainName.policyIn('ns/allow-web'))).toBe(false);
});

test('tunnels: a pool turning IPIP on guards INPUT with the all-hosts set; nodes and externalNodesCIDRList fill it', async () => {
  const s = setup();
  const pool = (ipip: 'Never' | 'Always' | 'CrossSubnet'): DataplaneUpdate => ({
    type: 'pool-update',
    pool: {
      cidr: '10.65.0.0/16',
      ipip,
      vxlan: 'Never',
      natOutgoing: true,
      disableBGPExport: false,
    },
  });
  s.feed([
    ...BASE,
    { type: 'host-addresses', addresses: ['10.0.0.1', '10.0.0.2', 'fd00::1'] },
    { type: 'config-update', config: { externalNodesCIDRList: ['192.0.2.0/24'] } },
    { type: 'in-sync' },
  ]);
  await s.m.apply();
  const ipipRules = () =>
    s.ipt[4].rules('filter', 'tortie-INPUT')!.filter((r) => r.startsWith('-p 4'));
  expect(ipipRules()).toEqual([]); // every pool says Never: no rules, no set
  expect(s.ips.sets.has('tortie40all-hosts-net')).toBe(false);
  s.feed([pool('CrossSubnet')]);
  await s.m.apply();
  expect([...s.ips.sets.get('tortie40all-hosts-net')!.members].sort()).toEqual([
    '10.0.0.1',
    '10.0.0.2',
    '192.0.2.0/24',
  ]);
  expect(ipipRules()).toEqual([
    '-p 4 -m set --match-set tortie40all-hosts-net src -m addrtype --dst-type LOCAL -j ACCEPT',
    '-p 4 -j DROP',
  ]);
  expect(s.ipt[6].rules('filter', 'tortie-INPUT') ?? []).toEqual([]); // IPIP is IPv4 only
  // a node joins: the set follows, the chain is not rewritten
  const restores = s.ipt[4].restores.length;
  s.feed([{ type: 'host-addresses', addresses: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] }]);
  await s.m.apply();
  expect(s.ips.sets.get('tortie40all-hosts-net')!.members.has('10.0.0.3')).toBe(true);
  expect(s.ipt[4].restores.length).toBe(restores);
  s.feed([pool('Never')]);
  await s.m.apply();
  expect(ipipRules()).toEqual([]);
  expect(s.ips.sets.has('tortie40all-hosts-net')).toBe(false); // gone after the rules
});
