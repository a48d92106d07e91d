// rtnetlink on the real kernel, in namespaces this test makes: what the socket programs
// is compared with what `ip -j` shows, refusals name the request and the errno, and a
// batch larger than one sendmsg chunk reports exactly the requests that failed.
import { Testbed, describeIf, type Netns } from '@tortie/testbed';
import { Rtnl, type RouteSpec } from '../src';

interface IpRoute {
  dst: string;
  type?: string;
  gateway?: string;
  dev?: string;
  scope?: string;
  flags?: string[];
  protocol?: string;
  metric?: number;
}

describeIf(['root', 'netns'], 'rtnetlink in network namespaces', () => {
  const tb = new Testbed();
  let ns: Netns;
  let pod: Netns;
  let nl: Rtnl;
  const json = async <T>(x: Netns, argv: string[]): Promise<T[]> => {
    const out = (await x.exec(argv)).trim();
    return out ? (JSON.parse(out) as T[]) : [];
  };

  beforeAll(async () => {
    ns = await tb.netns('nl');
    pod = await tb.netns('nlpod');
    await ns.exec(['ip', 'link', 'add', 'fab0', 'type', 'bridge']);
    await ns.exec(['ip', 'addr', 'add', '192.168.9.1/24', 'dev', 'fab0']);
    await ns.exec(['ip', 'addr', 'add', 'fd00:9::1/64', 'dev', 'fab0', 'nodad']);
    await ns.exec(['ip', 'link', 'set', 'fab0', 'up']);
    nl = Rtnl.open(ns.name);
  });
  afterAll(async () => {
    nl?.close();
    await tb.cleanup();
  });

  test('routes programmed over netlink are what ip route shows, and listRoutes reads them back', async () => {
    const want: RouteSpec[] = [
      { dst: '10.1.0.0/26', via: '192.168.9.2', protocol: 80 },
      { dst: '10.1.1.0/26', type: 'blackhole', protocol: 80 },
      { dst: '10.1.2.7/32', dev: 'fab0', scopeLink: true, protocol: 80 },
      { dst: '10.1.3.0/26', via: '172.16.0.9', dev: 'fab0', onlink: true, protocol: 80 },
      { dst: '0.0.0.0/0', via: '192.168.9.254', protocol: 80 },
      { dst: 'fd00:10::/122', via: 'fd00:9::2', protocol: 80 },
      { dst: 'fd00:11::5/128', dev: 'fab0', protocol: 80 },
      { dst: 'fd00:12::/122', type: 'blackhole', protocol: 80 },
    ];
    const errors = await nl.applyRoutes(want.map((route) => ({ op: 'replace', route })));
    expect(errors.filter(Boolean)).toEqual([]);
    const v4 = await json<IpRoute>(ns, ['ip', '-j', 'route', 'show', 'proto', '80']);
    const v6 = await json<IpRoute>(ns, ['ip', '-j', '-6', 'route', 'show', 'proto', '80']);
    const shown = [...v4, ...v6].map((r) => ({
      dst: r.dst,
      type: r.type,
      gateway: r.gateway,
      dev: r.type === 'blackhole' ? undefined : r.dev,
      scope: r.scope,
      onlink: r.flags?.includes('onlink') ?? false,
    }));
    expect(shown).toEqual(
      expect.arrayContaining([
        {
          dst: '10.1.0.0/26',
          type: undefined,
          gateway: '192.168.9.2',
          dev: 'fab0',
          scope: undefined,
          onlink: false,
        },
        {
          dst: '10.1.1.0/26',
          type: 'blackhole',
          gateway: undefined,
          dev: undefined,
          scope: undefined,
          onlink: false,
        },
        {
          dst: '10.1.2.7',
          type: undefined,
          gateway: undefined,
          dev: 'fab0',
          scope: 'link',
          onlink: false,
        },
        {
          dst: '10.1.3.0/26',
          type: undefined,
          gateway: '172.16.0.9',
          dev: 'fab0',
          scope: undefined,
          onlink: true,
        },
        {
          dst: 'default',
          type: undefined,
          gateway: '192.168.9.254',
          dev: 'fab0',
          scope: undefined,
          onlink: false,
        },
        {
          dst: 'fd00:10::/122',
          type: undefined,
          gateway: 'fd00:9::2',
          dev: 'fab0',
          scope: undefined,
          onlink: false,
        },
        {
          dst: 'fd00:11::5',
          type: undefined,
          gateway: undefined,
          dev: 'fab0',
          scope: undefined,
          onlink: false,
        },
        {
          dst: 'fd00:12::/122',
          type: 'blackhole',
          gateway: undefined,
          dev: undefined,
          scope: undefined,
          onlink: false,
        },
      ]),
    );
    expect(shown).toHaveLength(8);
    const back = await nl.listRoutes({ protocol: 80 });
    const key = (r: RouteSpec) =>
      `${r.type ?? ''} ${r.dst} ${r.via ?? ''} ${r.onlink ? 'onlink' : ''}`;
    expect(back.map(key).sort()).toEqual(want.map(key).sort());
    expect(back.find((r) => r.dst === '10.1.2.7/32')).toMatchObject({
      dev: 'fab0',
      scopeLink: true,
    });
    // other protocols are not listed
    await ns.exec(['ip', 'route', 'add', '10.9.0.0/24', 'via', '192.168.9.3', 'proto', '12']);
    expect((await nl.listRoutes({ protocol: 80 })).some((r) => r.dst === '10.9.0.0/24')).toBe(
      false,
    );
    expect((await nl.listRoutes({ protocol: 12 })).map((r) => r.dst)).toEqual(['10.9.0.0/24']);

    // replace changes the next hop in place; del removes; a second del says there was none
    await nl.replaceRoute({ dst: '10.1.0.0/26', via: '192.168.9.3', protocol: 80 });
    expect((await json<IpRoute>(ns, ['ip', '-j', 'route', 'show', '10.1.0.0/26']))[0].gateway).toBe(
      '192.168.9.3',
    );
    expect(await nl.delRoute('10.1.1.0/26', 80)).toBe(true);
    expect(await nl.delRoute('10.1.1.0/26', 80)).toBe(false);
    // del under another protocol leaves the route alone
    expect(await nl.delRoute('10.9.0.0/24', 80)).toBe(false);
    expect(await ns.exec(['ip', 'route', 'show', '10.9.0.0/24'])).toContain('via 192.168.9.3');
  });

  test('metric: ip route shows it, the kernel keys routes by it, a del with one removes only that route', async () => {
    const errors = await nl.applyRoutes([
      {
        op: 'replace',
        route: { dst: '10.3.0.0/26', via: '192.168.9.2', protocol: 81, metric: 2147482623 },
      },
      {
        op: 'replace',
        route: { dst: 'fd00:13::/122', via: 'fd00:9::2', protocol: 81, metric: 900 },
      },
    ]);
    expect(errors.filter(Boolean)).toEqual([]);
    const v4 = await json<IpRoute>(ns, ['ip', '-j', 'route', 'show', '10.3.0.0/26']);
    expect(v4.map((r) => [r.gateway, r.metric])).toEqual([['192.168.9.2', 2147482623]]);
    const v6 = await json<IpRoute>(ns, ['ip', '-j', '-6', 'route', 'show', 'fd00:13::/122']);
    expect(v6.map((r) => r.metric)).toEqual([900]);
    // a replace with another metric is another route: both are there
    await nl.replaceRoute({ dst: '10.3.0.0/26', via: '192.168.9.3', protocol: 81, metric: 512 });
    const both = await json<IpRoute>(ns, ['ip', '-j', 'route', 'show', '10.3.0.0/26']);
    expect(both.map((r) => [r.gateway, r.metric])).toEqual([
      ['192.168.9.3', 512],
      ['192.168.9.2', 2147482623],
    ]);
    const listed = (await nl.listRoutes({ protocol: 81 })).map((r) => [r.dst, r.metric]);
    expect(listed.sort()).toEqual(
      [
        ['10.3.0.0/26', 512],
        ['10.3.0.0/26', 2147482623],
        ['fd00:13::/122', 900],
      ].sort(),
    );
    // deleting by metric leaves the other one
    expect(await nl.delRoute('10.3.0.0/26', 81, undefined, 2147482623)).toBe(true);
    const left = await json<IpRoute>(ns, ['ip', '-j', 'route', 'show', '10.3.0.0/26']);
    expect(left.map((r) => r.metric)).toEqual([512]);
    expect(await nl.delRoute('10.3.0.0/26', 81, undefined, 2147482623)).toBe(false);
  });

  test('refusals name the request and the errno; the rest of the batch is applied', async () => {
    const errors = await nl.applyRoutes([
      { op: 'replace', route: { dst: '10.2.0.0/26', via: '192.168.9.2', protocol: 80 } },
      { op: 'replace', route: { dst: '10.2.1.0/26', dev: 'nosuch0', protocol: 80 } },
      { op: 'replace', route: { dst: '10.2.2.0/26', via: '172.31.0.1', protocol: 80 } },
      { op: 'replace', route: { dst: '10.2.3.0/26', via: 'fd00:9::2', protocol: 80 } },
      { op: 'add', route: { dst: '10.2.0.0/26', via: '192.168.9.2', protocol: 80 } },
      { op: 'replace', route: { dst: '10.2.4.0/26', via: '192.168.9.2', protocol: 80 } },
    ]);
    expect(errors[0]).toBeUndefined();
    expect(errors[1]?.message).toBe(
      'netlink route replace 10.2.1.0/26 dev nosuch0 proto 80: ENODEV (no such device): no interface nosuch0',
    );
    expect(errors[2]?.code).toBe('ENETUNREACH');
    expect(errors[2]?.message).toMatch(
      /^netlink route replace 10.2.2.0\/26 via 172.31.0.1 proto 80: ENETUNREACH .*: Nexthop has invalid gateway$/,
    );
    expect(errors[3]?.message).toContain('gateway fd00:9::2 is of another address family');
    expect(errors[4]?.message).toMatch(
      /^netlink route add 10.2.0.0\/26 via 192.168.9.2 proto 80: EEXIST/,
    );
    expect(errors[5]).toBeUndefined();
    const shown = (await ns.exec(['ip', 'route', 'show', 'proto', '80'])).split('\n');
    expect(shown.filter((l) => l.startsWith('10.2.')).map((l) => l.split(' ')[0])).toEqual([
      '10.2.0.0/26',
      '10.2.4.0/26',
    ]);
  });

  test('a batch of 3,000 changes (many sendmsg chunks) reports exactly the refused ones', async () => {
    const ops = Array.from({ length: 3000 }, (_, i) => ({
      op: 'replace' as const,
      route: {
        dst: `10.${50 + (i >> 8)}.${i & 255}.0/24`,
        // every 7th gateway is off-link: refused by the kernel
        via: i % 7 === 0 ? `172.30.${i >> 8}.${i & 255}` : `192.168.9.${2 + (i % 200)}`,
        protocol: 80,
      },
    }));
    const errors = await nl.applyRoutes(ops);
    const bad = errors.flatMap((e, i) => (e ? [i] : []));
    expect(bad).toEqual(ops.flatMap((_, i) => (i % 7 === 0 ? [i] : [])));
    const inKernel = (await ns.exec(['ip', 'route', 'show', 'proto', '80']))
      .split('\n')
      .filter((l) => /^10\.(5\d|6\d)\./.test(l));
    expect(inKernel).toHaveLength(3000 - bad.length);
    const dels = await nl.applyRoutes(
      ops.map((o) => ({ op: 'del' as const, dst: o.route.dst, protocol: 80 })),
    );
    expect(dels.filter((e) => e?.code === 'ESRCH')).toHaveLength(bad.length);
  });

  test('a veth pair with its peer made in another namespace, addresses, neighbours, link settings', async () => {
    await nl.addVeth({
      name: 'calitest1',
      mac: 'ee:ee:ee:ee:ee:ee',
      mtu: 1440,
      peer: { name: 'eth0', mac: '02:11:22:33:44:55', mtu: 1440, netns: pod.name },
    });
    await nl.setLinkUp('calitest1');
    const host = (
      await json<{ ifname: string; address: string; mtu: number; flags: string[] }>(ns, [
        'ip',
        '-j',
        'link',
        'show',
        'calitest1',
      ])
    )[0];
    expect(host).toMatchObject({ ifname: 'calitest1', address: 'ee:ee:ee:ee:ee:ee', mtu: 1440 });
    expect(host.flags).toContain('UP');
    const peer = (
      await json<{ ifname: string; address: string; mtu: number }>(pod, [
        'ip',
        '-j',
        'link',
        'show',
        'eth0',
      ])
    )[0];
    expect(peer).toMatchObject({ ifname: 'eth0', address: '02:11:22:33:44:55', mtu: 1440 });
    expect(await ns.exec(['ip', 'link', 'show'])).not.toContain('eth0');

    const inPod = Rtnl.open(`/var/run/netns/${pod.name}`);
    try {
      await inPod.setLinkUp('eth0');
      await inPod.addAddr('10.3.0.5/32', 'eth0');
      await inPod.addAddr('fd00:3::5/128', 'eth0', { nodad: true });
      await inPod.replaceNeigh('169.254.1.1', 'ee:ee:ee:ee:ee:ee', 'eth0');
      await inPod.replaceRoute({
        dst: '169.254.1.1/32',
        dev: 'eth0',
        scopeLink: true,
        protocol: 3,
      });
      await inPod.replaceRoute({ dst: '0.0.0.0/0', via: '169.254.1.1', dev: 'eth0', protocol: 3 });
      const addrs = await json<{
        addr_info: Array<{
          local: string;
          prefixlen: number;
          nodad?: boolean;
          tentative?: boolean;
        }>;
      }>(pod, ['ip', '-j', 'addr', 'show', 'dev', 'eth0']);
      const a = addrs[0].addr_info.filter((x) => !x.local.startsWith('fe80'));
      expect(a.map((x) => `${x.local}/${x.prefixlen}`)).toEqual(['10.3.0.5/32', 'fd00:3::5/128']);
      expect(a[1].tentative).toBeUndefined(); // nodad: usable at once
      const neigh = await json<{ dst: string; lladdr: string; state: string[] }>(pod, [
        'ip',
        '-j',
        'neigh',
        'show',
        'dev',
        'eth0',
      ]);
      expect(neigh).toEqual([
        expect.objectContaining({
          dst: '169.254.1.1',
          lladdr: 'ee:ee:ee:ee:ee:ee',
          state: ['PERMANENT'],
        }),
      ]);
      expect(await pod.exec(['ip', 'route', 'show', 'default'])).toBe(
        'default via 169.254.1.1 dev eth0 \n',
      );
      await expect(inPod.addAddr('10.3.0.5/32', 'eth0')).rejects.toThrow(
        'netlink addr add 10.3.0.5/32 dev eth0: EEXIST',
      );
      await expect(inPod.addAddr('10.3.0.6/32', 'eth9')).rejects.toThrow(
        'netlink link show eth9: ENODEV (no such device): no such interface',
      );
    } finally {
      inPod.close();
    }

    await nl.setLink('calitest1', { mac: 'ee:ee:ee:ee:ee:01', mtu: 1400 });
    expect(await ns.exec(['ip', 'link', 'show', 'calitest1'])).toMatch(
      /mtu 1400 .*\n.*ee:ee:ee:ee:ee:01/,
    );
    await expect(nl.addVeth({ name: 'calitest1', peer: { name: 'x' } })).rejects.toThrow(
      /^netlink link add calitest1 type veth peer name x: EEXIST/,
    );
    expect(await nl.delLink('calitest1')).toBe(true);
    expect(await nl.delLink('calitest1')).toBe(false);
    expect(await pod.exec(['ip', '-o', 'link', 'show'])).not.toContain('eth0');

    // a link moved to another namespace
    await ns.exec(['ip', 'link', 'add', 'mv0', 'type', 'veth', 'peer', 'name', 'mv1']);
    await nl.moveLink('mv0', pod.name);
    expect(await pod.exec(['ip', '-o', 'link', 'show'])).toContain('mv0');
    expect(await nl.link('mv0')).toBeUndefined();
  });

  test('a namespace that does not exist is named', () => {
    expect(() => Rtnl.open('tt-no-such-namespace')).toThrow(
      /^netlink: cannot open network namespace \/var\/run\/netns\/tt-no-such-namespace: ENOENT/,
    );
  });
});
