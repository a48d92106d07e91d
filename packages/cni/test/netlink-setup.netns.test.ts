// The pod interface set up over netlink is the one the `ip -batch` path sets up: both
// run in node namespaces this test makes (in a process inside, as the plugin runs), and
// what the kernel then shows (`ip -j` link, addr, route, neigh; sysctls) is compared
// field by field, for IPv4 and dual stack; then a working pod, the retry over a
// leftover interface, teardown, and errors that name what failed.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Testbed, describeIf, type Netns } from '@tortie/testbed';
import type { Attachment } from '../src';

const WORKER = path.resolve(__dirname, 'fixtures/setup-worker.js');

describeIf(['root', 'netns'], 'pod network setup over netlink vs ip -batch', () => {
  const tb = new Testbed();
  afterAll(() => tb.cleanup());

  const worker = (node: Netns, via: string, op: string, a: object, mtu = 1440) =>
    new Promise<{ ok?: unknown; error?: string }>((resolve, reject) =>
      execFile(
        'ip',
        [
          'netns',
          'exec',
          node.name,
          process.execPath,
          WORKER,
          via,
          op,
          JSON.stringify(a),
          String(mtu),
        ],
        (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(JSON.parse(stdout)),
      ),
    );

  const j = async (x: Netns, argv: string[]) => {
    const out = (await x.exec(['ip', '-j', ...argv])).trim();
    return out ? (JSON.parse(out) as Array<Record<string, unknown>>) : [];
  };

  /** What the kernel shows of one pod's wiring, without what differs between any two pods. */
  async function snapshot(node: Netns, pod: Netns, a: Attachment) {
    const pick = (o: Record<string, unknown>, keys: string[]) =>
      Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
    const link = (l: Record<string, unknown>) => ({
      ...pick(l, ['ifname', 'address', 'mtu', 'flags', 'operstate', 'link_type']),
      addrgenmode: (l.linkinfo as unknown) ?? undefined,
    });
    const addr = (l: Record<string, unknown>) =>
      ((l.addr_info as Array<Record<string, unknown>>) ?? []).map((i) =>
        pick(
          i,
          // the kernel's own link-local address is tentative for a while (DAD): by time, not
          // path; without IPv6 the host side's own is the gateway's address too (EUI-64 of
          // ee:ee:ee:ee:ee:ee), with DAD (only the dual-stack gateway is set without)
          i.scope === 'link' && (i.local !== 'fe80::ecee:eeff:feee:eeee' || a.ipv6.length === 0)
            ? ['family', 'local', 'prefixlen', 'scope']
            : ['family', 'local', 'prefixlen', 'scope', 'nodad', 'tentative', 'noprefixroute'],
        ),
      );
    const route = (r: Record<string, unknown>) =>
      pick(r, ['dst', 'gateway', 'dev', 'protocol', 'scope', 'flags', 'metric', 'type', 'prefsrc']);
    const sysctl = (k: string) =>
      node.exec(['cat', `/proc/sys/net/${k}`]).then(
        (s) => s.trim(),
        () => 'absent',
      );
    const h = a.hostIface;
    return {
      hostLink: (await j(node, ['-d', 'link', 'show', h])).map(link),
      hostAddr: (await j(node, ['addr', 'show', 'dev', h])).flatMap(addr),
      hostRoutes: [
        ...(await j(node, ['route', 'show', 'dev', h])),
        ...(await j(node, ['-6', 'route', 'show', 'dev', h])),
      ].map(route),
      hostSysctls: await Promise.all(
        [
          `ipv4/conf/${h}/proxy_arp`,
          `ipv4/neigh/${h}/proxy_delay`,
          `ipv4/conf/${h}/forwarding`,
          `ipv6/conf/${h}/proxy_ndp`,
          `ipv6/conf/${h}/forwarding`,
        ].map(sysctl),
      ),
      podSysctls: await Promise.all(
        [
          'ipv6/conf/all/disable_ipv6',
          'ipv6/conf/default/disable_ipv6',
          'ipv6/conf/lo/disable_ipv6',
          `ipv6/conf/${a.podIface}/accept_dad`,
          'ipv6/conf/all/forwarding',
          'ipv4/ip_forward',
        ].map((k) => pod.exec(['cat', `/proc/sys/net/${k}`]).then((v) => v.trim())),
      ),
      podLinks: (await j(pod, ['link', 'show'])).map((l) => ({
        ...link(l),
        address: l.ifname === 'eth0' ? 'mac' : l.address,
      })),
      podAddr: (await j(pod, ['addr', 'show'])).flatMap(addr),
      podRoutes: [
        ...(await j(pod, ['route', 'show'])),
        ...(await j(pod, ['-6', 'route', 'show'])),
      ].map(route),
      podNeigh: [...(await j(pod, ['neigh', 'show'])), ...(await j(pod, ['-6', 'neigh', 'show']))],
      podMac: (await j(pod, ['link', 'show', 'eth0']))[0]?.address,
    };
  }

  for (const family of ['IPv4', 'dual stack'] as const) {
    test(`${family}: netlink gives what ip -batch gives`, async () => {
      const views = [];
      for (const via of ['ip', 'netlink']) {
        const node = await tb.netns(`nd${via}`);
        const pod = await tb.netns(`pd${via}`);
        const a: Attachment = {
          hostIface: 'cali0123456789a',
          podIface: 'eth0',
          podMac: '02:aa:bb:cc:dd:01',
          netns: `/var/run/netns/${pod.name}`,
          ipv4: ['10.65.0.7'],
          ipv6: family === 'IPv4' ? [] : ['fd00:65::7'],
        };
        expect(await worker(node, via, 'setup', a)).toEqual({ ok: null });
        views.push(await snapshot(node, pod, a));
      }
      expect(views[1]).toEqual(views[0]);
      expect(views[1].podMac).toBe('02:aa:bb:cc:dd:01');
      expect(views[1].hostLink[0]).toMatchObject({ address: 'ee:ee:ee:ee:ee:ee', mtu: 1440 });
      expect(views[1].hostSysctls.slice(0, 3)).toEqual(['1', '0', '1']);
    });
  }

  // a runtime that starts the pod namespace with IPv6 off (as Docker does by default):
  // Calico's plugin turns it on in the pod, DAD off on the pod's interface, forwarding
  // off, before the interface is up; without that the kernel refuses the pod's address
  for (const via of ['netlink', 'ip']) {
    test(`dual stack into a pod namespace with IPv6 disabled (${via}): Calico's pod sysctls`, async () => {
      const node = await tb.netns(`nd6${via}`);
      const pod = await tb.netns(`pd6${via}`);
      for (const k of ['all', 'default'])
        await pod.exec(['sysctl', '-qw', `net.ipv6.conf.${k}.disable_ipv6=1`]);
      await pod.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      const a: Attachment = {
        hostIface: 'cali0000000006d',
        podIface: 'eth0',
        podMac: '02:aa:bb:cc:dd:06',
        netns: `/var/run/netns/${pod.name}`,
        ipv4: ['10.65.0.6'],
        ipv6: ['fd00:65::6'],
      };
      expect(await worker(node, via, 'setup', a)).toEqual({ ok: null });
      expect((await snapshot(node, pod, a)).podSysctls).toEqual(['0', '0', '0', '0', '0', '0']);
      // the pod's v6 address is in place and not tentative (no DAD), and it answers
      const v6 = (await j(pod, ['-6', 'addr', 'show', 'dev', 'eth0']))
        .flatMap((l) => l.addr_info as Array<Record<string, unknown>>)
        .find((x) => x.local === 'fd00:65::6');
      expect(v6).toMatchObject({ prefixlen: 128 });
      expect(v6).not.toHaveProperty('tentative');
      await node.exec(['ping', '-c1', '-W2', 'fd00:65::6']);
    });
  }

  test('a netlink-wired pod answers; a leftover interface is replaced; teardown removes it', async () => {
    const node = await tb.netns('ndwork');
    const pod = await tb.netns('pdwork');
    const a: Attachment = {
      hostIface: 'cali0000000000b',
      podIface: 'eth0',
      podMac: '02:aa:bb:cc:dd:02',
      netns: `/var/run/netns/${pod.name}`,
      ipv4: ['10.65.0.8'],
      ipv6: ['fd00:65::8'],
    };
    expect(await worker(node, 'netlink', 'setup', a)).toEqual({ ok: null });
    // the host reaches the pod (proxy ARP gateway, host route) over both families
    await node.exec(['ip', 'addr', 'add', '192.168.65.1/32', 'dev', 'lo']);
    await node.exec(['ping', '-c1', '-W2', '10.65.0.8']);
    await node.exec(['ping', '-c1', '-W2', 'fd00:65::8']);
    // a retried ADD over the leftover: replaced, not refused
    expect(await worker(node, 'netlink', 'setup', { ...a, podMac: '02:aa:bb:cc:dd:03' })).toEqual({
      ok: null,
    });
    expect((await j(pod, ['link', 'show', 'eth0']))[0].address).toBe('02:aa:bb:cc:dd:03');
    const seen = await worker(node, 'netlink', 'observe', a);
    expect(seen.ok).toMatchObject({
      hostIfaceExists: true,
      hostRoutes: expect.arrayContaining(['10.65.0.8', 'fd00:65::8']),
      podAddrs: ['10.65.0.8/32', 'fd00:65::8/128'],
      podMac: '02:aa:bb:cc:dd:03',
    });
    expect(await worker(node, 'netlink', 'teardown', a)).toEqual({ ok: true });
    expect(await worker(node, 'netlink', 'teardown', a)).toEqual({ ok: false });
    expect(await pod.exec(['ip', '-o', 'link', 'show'])).not.toContain('eth0');
  });

  test('errors name what failed', async () => {
    const node = await tb.netns('nderr');
    const pod = await tb.netns('pderr');
    const a: Attachment = {
      hostIface: 'cali0000000000c',
      podIface: 'eth0',
      podMac: '02:aa:bb:cc:dd:04',
      netns: `/var/run/netns/${pod.name}`,
      ipv4: ['10.65.0.9'],
      ipv6: [],
    };
    expect(
      await worker(node, 'netlink', 'setup', { ...a, netns: '/var/run/netns/tt-none-such' }),
    ).toEqual({
      error:
        "pod network namespace /var/run/netns/tt-none-such: ENOENT: no such file or directory, open '/var/run/netns/tt-none-such'",
    });
    // the pod already has an eth0: the kernel refuses the peer, named
    await pod.exec(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'x0']);
    const r = await worker(node, 'netlink', 'setup', a);
    expect(r.error).toMatch(
      /^host side of cali0000000000c: netlink link add cali0000000000c type veth peer name eth0 netns \/var\/run\/netns\/tt-pderr-\w+: EEXIST \(file already exists\)/,
    );
    expect(await node.exec(['ip', '-o', 'link', 'show'])).not.toContain('cali0000000000c');
  });
});
