// The routing dataplane's pure parts: route plans and tunnel desired state (IPIP proven
// here: this kernel has no ipip module). The ACL side is tested in acl-*.test.ts.
import {
  ipipDeviceCommands,
  kernelRoute,
  NetManager,
  tunnelMtu,
  vtepChanges,
  vtepEntries,
  vxlanDeviceCommands,
} from '../src/linux/net-manager';
import { RouteTable, routeArgs } from '../src/linux/route-table';
import { RecordingRunner } from '../src/linux/runner';

const IPIP_POOL = {
  type: 'pool-update',
  pool: {
    cidr: '10.0.0.0/16',
    ipip: 'Always',
    vxlan: 'Never',
    natOutgoing: false,
    disableBGPExport: false,
  },
} as const;

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
    // BGPPeer reachableBy: the peer's address via the gateway, as BIRD's static route
    expect(
      routeArgs(
        kernelRoute({
          dst: '192.0.2.1/32',
          kind: 'bgp-peer',
          nextHop: '10.0.0.254',
          encap: 'none',
        })!,
        80,
      ),
    ).toBe('192.0.2.1/32 via 10.0.0.254 proto 80');
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

  test('VTEP changes: unchanged ones untouched, a moved MAC replaces both entries, a gone one deletes them', () => {
    const v = (mac: string, remote: string) => ({ ip: '10.0.2.0', mac, remote });
    const had = new Map([
      ['10.0.2.0/32', v('66:00:00:00:00:02', '192.168.0.2')],
      ['10.0.3.0/32', { ip: '10.0.3.0', mac: '66:00:00:00:00:03', remote: '192.168.0.3' }],
    ]);
    expect(vtepChanges(had, new Map(had))).toEqual([]);
    const moved = new Map([['10.0.2.0/32', v('66:00:00:00:00:09', '192.168.0.9')]]);
    expect(vtepChanges(had, moved)).toEqual([
      { kind: 'fdb', op: 'del', mac: '66:00:00:00:00:02' },
      { kind: 'neigh', op: 'del', ip: '10.0.3.0' },
      { kind: 'fdb', op: 'del', mac: '66:00:00:00:00:03' },
      { kind: 'neigh', op: 'replace', ip: '10.0.2.0', mac: '66:00:00:00:00:09' },
      { kind: 'fdb', op: 'replace', mac: '66:00:00:00:00:09', dst: '192.168.0.9' },
    ]);
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
    m.send(IPIP_POOL);
    m.send({ type: 'host-update', host: { node: 'n1', ipv4Address: '192.168.0.1' } });
    m.send({ type: 'in-sync' });
    await m.apply();
    expect(m.problems.get('ipip')).toBe(
      'ip link add name tunl0 type ipip: Error: Unknown device type.',
    );
  });

  test('adding tunl0 loads the ipip module, which makes its own tunl0: "File exists" is success', async () => {
    // as a real kernel does (seen in the VM): tunl0 appears when the add loads the module
    let loaded = false;
    const runner = new RecordingRunner((argv) => {
      const cmd = argv.join(' ');
      if (cmd === 'ip link add name tunl0 type ipip') {
        loaded = true;
        return { code: 2, stderr: 'RTNETLINK answers: File exists' };
      }
      if (cmd === 'ip link show tunl0') return { code: loaded ? 0 : 1 };
      return { stdout: '[]' };
    });
    const m = new NetManager(runner);
    m.send(IPIP_POOL);
    m.send({
      type: 'host-update',
      host: { node: 'n1', ipv4Address: '192.168.0.1', ipv4IPIPTunnelAddr: '10.0.1.1' },
    });
    m.send({ type: 'in-sync' });
    await m.apply();
    expect(m.problems.get('ipip')).toBeUndefined();
    const cmds = runner.calls.map((c) => c.argv.join(' '));
    expect(cmds).toContain('ip link set tunl0 mtu 1480 up');
    expect(cmds).toContain('ip addr replace 10.0.1.1/32 dev tunl0');
  });

  test('a learned route at a new metric is written beside the old one, then the old one is deleted', async () => {
    // the kernel: one learned route at metric 1024, one v6 at the default metric (1024,
    // shown), and one destination twice (a metric change that was half done)
    const v4 = JSON.stringify([
      { dst: '10.0.1.0/26', gateway: '192.168.0.2', metric: 1024, flags: [] },
      { dst: '10.0.3.0/26', gateway: '192.168.0.3', metric: 700, flags: [] },
      { dst: '10.0.3.0/26', gateway: '192.168.0.3', metric: 1024, flags: [] },
    ]);
    const v6 = JSON.stringify([{ dst: 'fd10::/122', gateway: 'fd00::2', metric: 1024, flags: [] }]);
    const runner = new RecordingRunner((argv) =>
      argv.includes('-j') ? { stdout: argv.includes('-6') ? v6 : v4 } : {},
    );
    const m = new NetManager(runner);
    m.send({ type: 'in-sync' });
    m.learned.set('10.0.1.0/26', '192.168.0.2', 512);
    m.learned.set('fd10::/122', 'fd00::2', 900);
    m.learned.set('10.0.3.0/26', '192.168.0.3', 700);
    m.learned.complete!();
    await m.apply();
    const batch = runner.calls.filter((c) => c.stdin?.includes('proto 81'));
    expect(batch.map((c) => c.stdin)).toEqual([
      [
        'route replace 10.0.1.0/26 via 192.168.0.2 proto 81 metric 512',
        'route del 10.0.1.0/26 proto 81 metric 1024',
        'route replace fd10::/122 via fd00::2 proto 81 metric 900',
        'route del fd10::/122 proto 81 metric 1024',
        'route del 10.0.3.0/26 proto 81 metric 1024',
        '',
      ].join('\n'),
    ]);
    runner.calls.length = 0;
    await m.apply(); // converged: nothing more
    expect(runner.calls.filter((c) => c.argv.includes('-batch'))).toEqual([]);
    expect((await m.learnedTable.current()).map((r) => `${r.dst} ${r.metric}`).sort()).toEqual([
      '10.0.1.0/26 512',
      '10.0.3.0/26 700',
      'fd10::/122 900',
    ]);
  });

  test('after a restart, BGP-learned kernel routes stay until BGP has relearned everything', async () => {
    // the kernel has two proto 81 routes from the agent before this one
    const kept = JSON.stringify([
      { dst: '10.0.1.0/26', gateway: '192.168.0.2', flags: [] },
      { dst: '10.0.2.0/26', gateway: '192.168.0.3', flags: [] },
    ]);
    const runner = new RecordingRunner((argv) =>
      argv.includes('-j') && argv.includes('route')
        ? { stdout: argv.includes('81') && !argv.includes('-6') ? kept : '[]' }
        : {},
    );
    const m = new NetManager(runner);
    m.send({ type: 'in-sync' });
    const learnedBatches = () =>
      runner.calls.filter((c) => c.argv.includes('-batch') && c.stdin?.includes('proto 81'));
    await m.apply();
    expect(learnedBatches()).toEqual([]); // nothing deleted while BGP relearns
    m.learned.set('10.0.1.0/26', '192.168.0.2'); // relearned, same next hop
    await m.apply();
    expect(learnedBatches()).toEqual([]);
    m.learned.complete!(); // every peer's End-of-RIB: what was not relearned goes
    await m.apply();
    expect(learnedBatches().map((c) => c.stdin)).toEqual(['route del 10.0.2.0/26 proto 81\n']);
  });
});
