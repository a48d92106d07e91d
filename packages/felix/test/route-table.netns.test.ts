// The route table on the real kernel, over netlink and over its `ip -batch` fallback:
// the same desired routes give the same kernel routes (read back with `ip -j`), routes
// of other protocols stay, a refused route is kept for a retry, resync repairs drift.
import { Rtnl } from '@tortie/netlink';
import { Testbed, describeIf, type Netns } from '@tortie/testbed';
import { fromJson, RouteTable, type KernelRoute } from '../src/linux/route-table';
import { ProcessRunner } from '../src/linux/runner';

const DESIRED: KernelRoute[] = [
  { dst: '10.70.0.0/26', via: '192.168.70.2' },
  { dst: '10.70.1.0/26', type: 'blackhole' },
  { dst: '10.70.2.5/32', dev: 'cali0', scopeLink: true },
  { dst: '10.70.3.0/26', via: '172.20.0.3', dev: 'fab0', onlink: true },
  { dst: 'fd00:70::/122', via: 'fd00:70:f::2' },
  { dst: 'fd00:71::/122', type: 'blackhole' },
];

for (const path of ['netlink', 'ip -batch'] as const) {
  describeIf(['root', 'netns'], `route table on the kernel (${path})`, () => {
    const tb = new Testbed();
    let ns: Netns;
    let nl: Rtnl | undefined;
    let table: RouteTable;
    const kernel = async (): Promise<KernelRoute[]> => {
      const out: KernelRoute[] = [];
      for (const v6 of [false, true]) {
        const text = await ns.exec([
          'ip',
          '-j',
          ...(v6 ? ['-6'] : []),
          'route',
          'show',
          'proto',
          '80',
        ]);
        for (const j of JSON.parse(text || '[]')) out.push(fromJson(j, v6));
      }
      return out.sort((a, b) => a.dst.localeCompare(b.dst));
    };
    const expected = (rs: KernelRoute[]) =>
      rs
        // the kernel names the interface it chose for a gateway route
        .map(({ scopeLink: _s, ...r }) => (r.via && !r.dev ? { ...r, dev: 'fab0' } : r))
        .sort((a, b) => a.dst.localeCompare(b.dst));

    beforeAll(async () => {
      ns = await tb.netns('rt');
      await ns.exec(['ip', 'link', 'add', 'fab0', 'type', 'bridge']);
      await ns.exec(['ip', 'addr', 'add', '192.168.70.1/24', 'dev', 'fab0']);
      await ns.exec(['ip', 'addr', 'add', 'fd00:70:f::1/64', 'dev', 'fab0', 'nodad']);
      await ns.exec(['ip', 'link', 'set', 'fab0', 'up']);
      // a route of another protocol to the same kind of destination: never touched
      await ns.exec(['ip', 'route', 'add', '10.71.0.0/24', 'via', '192.168.70.9', 'proto', '12']);
      nl = path === 'netlink' ? Rtnl.open(ns.name) : undefined;
      table = new RouteTable(new ProcessRunner(ns.name), 80, nl);
    });
    afterAll(async () => {
      nl?.close();
      await tb.cleanup();
    });

    test('a route to a missing interface is kept for a retry; the rest is programmed', async () => {
      table.setAll(DESIRED);
      expect(await table.apply()).toBe(5);
      expect([...table.failed.keys()]).toEqual(['10.70.2.5/32']);
      expect(await kernel()).toEqual(expected(DESIRED.filter((r) => r.dev !== 'cali0')));
      // the interface appears: the next apply programs it
      await ns.exec(['ip', 'link', 'add', 'cali0', 'type', 'veth', 'peer', 'name', 'cali0p']);
      await ns.exec(['ip', 'link', 'set', 'cali0', 'up']);
      expect(await table.apply()).toBe(1);
      expect(table.failed.size).toBe(0);
      expect(await kernel()).toEqual(expected(DESIRED));
      expect(await ns.exec(['ip', 'route', 'show', '10.70.2.5'])).toContain('scope link');
      expect(await table.apply()).toBe(0); // nothing differs
    });

    test('a new table reads the kernel (no flush); changes and removals write only the difference', async () => {
      const again = new RouteTable(new ProcessRunner(ns.name), 80, nl);
      again.setAll([...DESIRED.slice(1), { dst: '10.70.0.0/26', via: '192.168.70.3' }]);
      expect(await again.apply()).toBe(1);
      expect((await kernel()).find((r) => r.dst === '10.70.0.0/26')?.via).toBe('192.168.70.3');
      again.delete('10.70.1.0/26');
      again.delete('fd00:71::/122');
      expect(await again.apply()).toBe(2);
      expect((await kernel()).map((r) => r.dst)).not.toContain('10.70.1.0/26');
      expect(await ns.exec(['ip', 'route', 'show', 'proto', '12'])).toContain('10.71.0.0/24');
    });

    test('metrics: a route at a new metric replaces the old one (the kernel keys by metric); resync repairs a metric', async () => {
      const t = new RouteTable(new ProcessRunner(ns.name), 81, nl);
      const show = async (dst: string, v6 = false) =>
        (
          JSON.parse(
            (await ns.exec([
              'ip',
              '-j',
              ...(v6 ? ['-6'] : []),
              'route',
              'show',
              dst,
              'proto',
              '81',
            ])) || '[]',
          ) as Array<{ gateway: string; metric?: number }>
        ).map((r) => `${r.gateway} ${r.metric ?? 0}`);
      t.setAll([
        { dst: '10.72.0.0/26', via: '192.168.70.2', metric: 2147483547 },
        { dst: 'fd00:72::/122', via: 'fd00:70:f::2', metric: 900 },
      ]);
      expect(await t.apply()).toBe(2);
      expect(await show('10.72.0.0/26')).toEqual(['192.168.70.2 2147483547']);
      expect(await show('fd00:72::/122', true)).toEqual(['fd00:70:f::2 900']);
      // a new metric: written, and the old route deleted
      t.setAll([
        { dst: '10.72.0.0/26', via: '192.168.70.2', metric: 512 },
        { dst: 'fd00:72::/122', via: 'fd00:70:f::2' },
      ]);
      expect(await t.apply()).toBe(4);
      expect(await show('10.72.0.0/26')).toEqual(['192.168.70.2 512']);
      expect(await show('fd00:72::/122', true)).toEqual(['fd00:70:f::2 1024']);
      expect(await t.apply()).toBe(0);
      // someone adds our destination at another metric: resync deletes it
      await ns.exec([
        'ip',
        'route',
        'add',
        '10.72.0.0/26',
        'via',
        '192.168.70.3',
        'proto',
        '81',
        'metric',
        '7',
      ]);
      expect(await t.resync()).toBe(1);
      expect(await show('10.72.0.0/26')).toEqual(['192.168.70.2 512']);
      t.setAll([]);
      expect(await t.apply()).toBe(2);
      expect(await show('10.72.0.0/26')).toEqual([]);
    });

    test('resync repairs a deleted and a changed route', async () => {
      const t = new RouteTable(new ProcessRunner(ns.name), 80, nl);
      t.setAll(DESIRED);
      await t.apply();
      await ns.exec(['ip', 'route', 'del', '10.70.1.0/26']);
      await ns.exec([
        'ip',
        'route',
        'replace',
        '10.70.0.0/26',
        'via',
        '192.168.70.7',
        'proto',
        '80',
      ]);
      await ns.exec(['ip', 'route', 'add', '10.70.9.0/24', 'via', '192.168.70.8', 'proto', '80']);
      expect(await t.apply()).toBe(0); // it does not know yet
      expect(await t.resync()).toBe(3);
      expect(await kernel()).toEqual(expected(DESIRED));
      expect(await ns.exec(['ip', 'route', 'show', 'proto', '12'])).toContain('10.71.0.0/24');
    });
  });
}
