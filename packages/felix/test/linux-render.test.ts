// The Linux dataplane's pure parts: iptables rendering, restore plans from a read-back,
// route plans, tunnel desired state (IPIP proven here: this kernel has no ipip module).
import {
  chainNames,
  endpointChain,
  ipsetName,
  ruleChain,
  ruleMatches,
  type NetSet,
} from '../src/linux/iptables-render';
import { IptablesTable, parseSave } from '../src/linux/iptables-table';
import {
  ipipDeviceCommands,
  kernelRoute,
  NetManager,
  tunnelMtu,
  vtepEntries,
  vxlanDeviceCommands,
} from '../src/linux/net-manager';
import { RouteTable, routeArgs } from '../src/linux/route-table';
import { RecordingRunner } from '../src/linux/runner';
import type { DataplaneRule } from '../src/types';

const rule = (r: Partial<DataplaneRule>): DataplaneRule => ({
  action: 'allow',
  ruleId: 'r1',
  ...r,
});

describe('iptables rendering', () => {
  const sets = new Map<string, NetSet>();
  test.each<[Partial<DataplaneRule>, string[]]>([
    [
      {
        protocol: 6,
        dstPorts: [
          { first: 80, last: 80 },
          { first: 8000, last: 8080 },
        ],
      },
      ['-p tcp -m multiport --dports 80,8000:8080'],
    ],
    [{ srcNets: ['10.0.0.0/8'], notDstNets: ['10.1.0.0/16'] }, ['-s 10.0.0.0/8 ! -d 10.1.0.0/16']],
    [
      { srcIpSetIds: ['abc'], notDstIpSetIds: ['def'] },
      ['-m set --match-set tortie40s:abc src -m set ! --match-set tortie40s:def dst'],
    ],
    [{ protocol: 1, icmp: { type: 8, code: 0 } }, ['-p icmp -m icmp --icmp-type 8/0']],
    [{ notProtocol: 17 }, ['! -p udp']],
    // numeric ports OR a named port: two alternatives
    [
      { protocol: 6, dstPorts: [{ first: 80, last: 80 }], dstNamedPortIpSetIds: ['np'] },
      ['-p tcp -m multiport --dports 80', '-p tcp -m set --match-set tortie40s:np dst,dst'],
    ],
    // an IPv6-only rule renders nothing in the IPv4 table
    [{ srcNets: ['fd00::/64'] }, []],
    [{ ipVersion: 6 }, []],
  ])('%j -> %j', (r, want) => {
    expect(ruleMatches(rule(r), 4, sets)).toEqual(want);
  });

  test('several nets become a net set; negated nets of the other family are ignored', () => {
    const s = new Map<string, NetSet>();
    const [m] = ruleMatches(
      rule({ srcNets: ['10.0.0.0/8', '192.168.0.0/16', 'fd00::/8'], notDstNets: ['fd00::1/128'] }),
      4,
      s,
    );
    const [set] = [...s.values()];
    expect(set.nets).toEqual(['10.0.0.0/8', '192.168.0.0/16']);
    expect(m).toBe(`-m set --match-set ${ipsetName(set.id, 4)} src`);
  });

  test('actions with Felix mark semantics and a rule-id comment', () => {
    const c = ruleChain(
      'tortie-pi-x',
      [
        rule({ action: 'allow' }),
        rule({ action: 'pass', ruleId: 'r2' }),
        rule({ action: 'deny', ruleId: 'r3', protocol: 17 }),
      ],
      4,
      new Map(),
    );
    expect(c.rules).toEqual([
      '-j MARK --set-xmark 0x10000/0x10000 -m comment --comment "tortie:r1"',
      '-m mark --mark 0x10000/0x10000 -j RETURN',
      '-j MARK --set-xmark 0x20000/0x20000 -m comment --comment "tortie:r2"',
      '-m mark --mark 0x20000/0x20000 -j RETURN',
      '-p udp -j DROP -m comment --comment "tortie:r3"',
    ]);
  });

  test('endpoint chain: tiers with pass and default action, then profiles, then drop', () => {
    const c = endpointChain(
      'tortie-tw-cali1',
      [
        { name: 'sec', defaultAction: 'pass', ingressPolicies: ['sec/p1'], egressPolicies: [] },
        {
          name: 'default',
          defaultAction: 'deny',
          ingressPolicies: ['default/ns/a', 'default/ns/b'],
          egressPolicies: [],
        },
        { name: 'egress-only', defaultAction: 'deny', ingressPolicies: [], egressPolicies: ['x'] },
      ],
      'ingress',
      ['kns.ns'],
    );
    const [p1, a, b] = ['sec/p1', 'default/ns/a', 'default/ns/b'].map(chainNames.policyIn);
    expect(c.rules).toEqual([
      '-j MARK --set-xmark 0x0/0x30000',
      '-j MARK --set-xmark 0x0/0x20000',
      `-m mark --mark 0x0/0x20000 -j ${p1}`,
      '-m mark --mark 0x10000/0x10000 -j RETURN',
      '-j MARK --set-xmark 0x0/0x20000',
      `-m mark --mark 0x0/0x20000 -j ${a}`,
      '-m mark --mark 0x10000/0x10000 -j RETURN',
      `-m mark --mark 0x0/0x20000 -j ${b}`,
      '-m mark --mark 0x10000/0x10000 -j RETURN',
      '-m mark --mark 0x0/0x20000 -j DROP -m comment --comment "tortie:end of tier default"',
      `-j ${chainNames.profileIn('kns.ns')}`,
      '-m mark --mark 0x10000/0x10000 -j RETURN',
      '-j DROP -m comment --comment "tortie:no policy or profile allowed it"',
    ]);
  });

  test('names fit iptables (28) and ipset (31)', () => {
    const long = 'tier-with-a-long-name/some-namespace/a-policy-with-a-very-long-name';
    for (const n of [
      chainNames.policyIn(long),
      chainNames.profileOut(long),
      chainNames.fromWorkload('cali0123456789a'),
    ])
      expect(n.length).toBeLessThanOrEqual(28);
    expect(ipsetName('abcdefghijklmnopqrst', 6).length).toBeLessThanOrEqual(31);
  });
});

describe('iptables tables', () => {
  const SAVE = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
:tortie-FORWARD - [0:0]
:tortie-old - [0:0]
-A FORWARD -m comment --comment "tortie-h:hook-FORWARD" -j tortie-FORWARD
-A FORWARD -j KUBE-FORWARD
-A tortie-FORWARD -m comment --comment "tortie-h:XXXX" -j ACCEPT
COMMIT
`;
  test('read-back: our chains with their rule hashes, hooks, foreign chains ignored', () => {
    const a = parseSave(SAVE);
    expect([...a.chains.keys()]).toEqual(['tortie-FORWARD', 'tortie-old']);
    expect(a.chains.get('tortie-FORWARD')).toEqual(['XXXX']);
    expect([...a.hooks]).toEqual(['FORWARD:hook-FORWARD']);
  });

  test('the restore input rewrites only what differs, deletes what is gone, hooks once', async () => {
    const runner = new RecordingRunner((argv) =>
      argv[0].endsWith('-save') ? { stdout: SAVE } : {},
    );
    const t = new IptablesTable(runner, 'filter', 4, 'legacy');
    t.setChains([
      { name: 'tortie-FORWARD', rules: ['-j ACCEPT'] },
      { name: 'tortie-INPUT', rules: [] },
      { name: 'tortie-OUTPUT', rules: [] },
    ]);
    await t.apply();
    const restore = runner.calls.find((c) => c.argv[0] === 'iptables-legacy-restore')!;
    expect(restore.argv).toEqual(['iptables-legacy-restore', '--noflush']);
    const lines = restore.stdin!.trim().split('\n');
    expect(lines[0]).toBe('*filter');
    expect(lines).toContain(':tortie-FORWARD - [0:0]'); // its hash differed: rewritten
    expect(lines).toContain(':tortie-old - [0:0]'); // flushed, then deleted last
    expect(lines.at(-2)).toBe('-X tortie-old');
    expect(lines).toContain(
      '-I INPUT 1 -m comment --comment "tortie-h:hook-INPUT" -j tortie-INPUT',
    );
    expect(lines.some((l) => l.includes('hook-FORWARD'))).toBe(false); // already there
    expect(lines.some((l) => l.includes('KUBE'))).toBe(false); // never touch foreign chains
    // nothing changed since: no second restore
    runner.calls.length = 0;
    await t.apply();
    expect(runner.calls).toEqual([]);
  });
});

describe('routes and tunnels', () => {
  test('kernel routes per kind', () => {
    expect(kernelRoute({ dst: '10.0.0.5/32', kind: 'local-workload', ifaceName: 'cali1' })).toEqual(
      { dst: '10.0.0.5/32', dev: 'cali1', scopeLink: true },
    );
    expect(routeArgs(kernelRoute({ dst: '10.0.1.0/26', kind: 'local-block' })!, 80)).toBe(
      'blackhole 10.0.1.0/26 proto 80',
    );
    expect(
      routeArgs(
        kernelRoute({
          dst: '10.0.2.0/26',
          kind: 'remote-block',
          nextHop: '192.168.0.2',
          encap: 'none',
        })!,
        80,
      ),
    ).toBe('10.0.2.0/26 via 192.168.0.2 proto 80');
    expect(
      routeArgs(
        kernelRoute({
          dst: '10.0.2.0/26',
          kind: 'remote-block',
          nextHop: '192.168.0.2',
          encap: 'ipip',
        })!,
        80,
      ),
    ).toBe('10.0.2.0/26 via 192.168.0.2 dev tunl0 onlink proto 80');
    expect(
      routeArgs(
        kernelRoute({
          dst: '10.0.2.0/26',
          kind: 'remote-block',
          nextHop: '192.168.0.2',
          encap: 'vxlan',
          tunnelAddr: '10.0.2.0',
        })!,
        80,
      ),
    ).toBe('10.0.2.0/26 via 10.0.2.0 dev vxlan.tortie onlink proto 80');
  });

  test('IPIP desired state: tunl0 with its address and MTU (exact commands)', () => {
    expect(
      ipipDeviceCommands(
        { node: 'n1', ipv4Address: '192.168.0.1', ipv4IPIPTunnelAddr: '10.0.1.1' },
        tunnelMtu(1500, 'ipip'),
      ),
    ).toEqual([
      ['ip', 'link', 'add', 'name', 'tunl0', 'type', 'ipip'],
      ['ip', 'link', 'set', 'tunl0', 'mtu', '1480', 'up'],
      ['ip', 'addr', 'replace', '10.0.1.1/32', 'dev', 'tunl0'],
    ]);
  });

  test('VXLAN desired state: device, ARP and FDB for a remote VTEP', () => {
    expect(
      vxlanDeviceCommands(
        {
          node: 'n1',
          ipv4Address: '192.168.0.1',
          ipv4VXLANTunnelAddr: '10.0.1.0',
          vxlanTunnelMACAddr: '66:00:00:00:00:01',
        },
        { vni: 4096, port: 4789, mtu: 1450 },
      ),
    ).toEqual([
      [
        'ip',
        'link',
        'add',
        'vxlan.tortie',
        'type',
        'vxlan',
        'id',
        '4096',
        'dstport',
        '4789',
        'local',
        '192.168.0.1',
        'nolearning',
      ],
      ['ip', 'link', 'set', 'vxlan.tortie', 'address', '66:00:00:00:00:01', 'mtu', '1450', 'up'],
      ['ip', 'addr', 'replace', '10.0.1.0/32', 'dev', 'vxlan.tortie'],
    ]);
    expect(
      vtepEntries({
        dst: '10.0.2.0/32',
        kind: 'remote-tunnel',
        nextHop: '192.168.0.2',
        tunnelAddr: '10.0.2.0',
        vtepMac: '66:00:00:00:00:02',
      }),
    ).toEqual({
      neigh: 'neigh replace 10.0.2.0 lladdr 66:00:00:00:00:02 dev vxlan.tortie nud permanent',
      fdb: 'fdb replace 66:00:00:00:00:02 dev vxlan.tortie dst 192.168.0.2 self permanent',
    });
  });

  test('route table: foreign routes are left alone, ours converge, refused ones retried', async () => {
    const shown = JSON.stringify([
      { dst: '10.0.9.0/26', type: 'blackhole', flags: [] },
      { dst: '10.0.0.7', dev: 'cali7', flags: [] },
    ]);
    let refuse = true;
    const runner = new RecordingRunner((argv) => {
      if (argv.includes('-j')) return { stdout: argv.includes('-6') ? '[]' : shown };
      if (argv.includes('-batch') && refuse)
        return { code: 1, stderr: 'Cannot find device "cali8"\nCommand failed -:2\n' };
      return {};
    });
    const t = new RouteTable(runner, 80);
    t.setAll([
      { dst: '10.0.0.7/32', dev: 'cali7', scopeLink: true },
      { dst: '10.0.0.8/32', dev: 'cali8', scopeLink: true },
    ]);
    await t.apply();
    const batch = runner.calls.find((c) => c.argv.includes('-batch'))!;
    // the show command asked only for proto 80: other protocols never enter the plan
    expect(runner.calls[0].argv).toEqual([
      'ip',
      '-j',
      'route',
      'show',
      'table',
      'main',
      'proto',
      '80',
    ]);
    expect(batch.stdin).toBe(
      'route del blackhole 10.0.9.0/26 proto 80\nroute replace 10.0.0.8/32 dev cali8 scope link proto 80\n',
    );
    expect([...t.failed.keys()]).toEqual(['10.0.0.8/32']);
    refuse = false;
    runner.calls.length = 0;
    await t.apply();
    expect(runner.calls.map((c) => c.stdin)).toEqual([
      'route replace 10.0.0.8/32 dev cali8 scope link proto 80\n',
    ]);
  });

  test('without an ipip module the manager says why and keeps going', async () => {
    const runner = new RecordingRunner((argv) =>
      argv.join(' ') === 'ip link add name tunl0 type ipip'
        ? { code: 2, stderr: 'Error: Unknown device type.' }
        : argv.join(' ') === 'ip link show tunl0'
          ? { code: 1 }
          : { stdout: '[]' },
    );
    const m = new NetManager(runner);
    m.send({
      type: 'pool-update',
      pool: {
        cidr: '10.0.0.0/16',
        ipip: 'Always',
        vxlan: 'Never',
        natOutgoing: false,
        disableBGPExport: false,
      },
    });
    m.send({ type: 'host-update', host: { node: 'n1', ipv4Address: '192.168.0.1' } });
    m.send({ type: 'in-sync' });
    await m.apply();
    expect(m.problems.get('ipip')).toBe(
      'ip link add name tunl0 type ipip: Error: Unknown device type.',
    );
  });
});
