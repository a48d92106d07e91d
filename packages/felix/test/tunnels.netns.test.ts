// The VXLAN device, its VTEP entries (static ARP and FDB) and the local-workload peering
// addresses against the real kernel, programmed by NetManager over netlink and over the
// `ip`/`bridge` fallback: both must leave the same state, read back with `ip -d -j` and
// `bridge -j`, and the netlink path must run no `ip`/`bridge` process at all (issue 18).
// IPIP needs the ipip module, which this host's kernel lacks: e2e/ipip.vmtest.ts runs it (through e2e/kernel.vm.test.ts).
import { Testbed, describeIf, type Netns } from '@tortie/testbed';
import { Rtnl } from '@tortie/netlink';
import { NetManager } from '../src/linux/net-manager';
import { ProcessRunner, type CommandRunner } from '../src/linux/runner';
import type { BgpConfig, DataplaneUpdate, RouteSpec, WorkloadEndpoint } from '../src/types';

interface LinkJson {
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  linkinfo?: {
    info_kind: string;
    info_data: { id: number; port: number; local: string; learning: boolean };
  };
}

const HOST = {
  node: 'n1',
  ipv4Address: '192.168.77.1',
  ipv4VXLANTunnelAddr: '10.77.1.0',
  vxlanTunnelMACAddr: '66:00:00:00:77:01',
};
const vtep = (mac: string, nextHop: string): RouteSpec => ({
  dst: '10.77.2.0/32',
  kind: 'remote-tunnel',
  nextHop,
  tunnelAddr: '10.77.2.0',
  vtepMac: mac,
});
const BLOCK: RouteSpec = {
  dst: '10.77.2.0/26',
  kind: 'remote-block',
  nextHop: '192.168.77.2',
  encap: 'vxlan',
  tunnelAddr: '10.77.2.0',
};
const PEER_EP = 'ns/p/eth0';
const peering = (endpoints: string[]): DataplaneUpdate => ({
  type: 'bgp-update',
  // NetManager reads only localWorkloadPeering
  bgp: { localWorkloadPeering: { ipv4: '169.254.0.179', endpoints } } as unknown as BgpConfig,
});

for (const via of ['netlink', 'ip'] as const) {
  describeIf(['root', 'netns'], `VXLAN device and VTEP entries over ${via}`, () => {
    const tb = new Testbed();
    let ns: Netns;
    let nl: Rtnl | undefined;
    let net: NetManager;
    /** Every command NetManager ran (the tool, without the netns prefix). */
    const ran: string[][] = [];

    const show = async <T>(argv: string[]): Promise<T> => JSON.parse(await ns.exec(argv)) as T;
    const device = async () =>
      (await show<LinkJson[]>(['ip', '-d', '-j', 'link', 'show', 'vxlan.tortie']))[0];
    const neigh = () =>
      show<Array<{ dst: string; lladdr?: string; state: string[] }>>([
        'ip',
        '-j',
        'neigh',
        'show',
        'dev',
        'vxlan.tortie',
      ]);
    const fdb = async () =>
      (
        await show<Array<{ mac: string; dst?: string; flags: string[]; state?: string }>>([
          'bridge',
          '-j',
          'fdb',
          'show',
          'dev',
          'vxlan.tortie',
        ])
      ).filter((e) => e.dst !== undefined);
    const addrs = async (dev: string) =>
      (
        await show<Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>>([
          'ip',
          '-4',
          '-j',
          'addr',
          'show',
          'dev',
          dev,
        ])
      )
        .flatMap((l) => l.addr_info)
        .map((a) => `${a.local}/${a.prefixlen}`);

    beforeAll(async () => {
      ns = await tb.netns(`tun${via}`);
      // the node's uplink: its MTU (1400) sets the VXLAN device's (1350)
      await ns.exec(['ip', 'link', 'add', 'eth0', 'mtu', '1400', 'type', 'veth', 'peer', 'eth0p']);
      await ns.exec(['ip', 'addr', 'add', '192.168.77.1/24', 'dev', 'eth0']);
      await ns.exec(['ip', 'link', 'set', 'eth0', 'up']);
      // a workload's host-side interface, for the peering address
      await ns.exec(['ip', 'link', 'add', 'calipeer1', 'type', 'veth', 'peer', 'calipeer1p']);
      const runner = new ProcessRunner(ns.name);
      const recording: CommandRunner = {
        run: (argv, stdin) => (ran.push(argv), runner.run(argv, stdin)),
      };
      nl = via === 'netlink' ? Rtnl.open(ns.name) : undefined;
      net = new NetManager(recording, nl);
      for (const u of [
        { type: 'host-update', host: HOST },
        {
          type: 'pool-update',
          pool: {
            cidr: '10.77.0.0/16',
            ipip: 'Never',
            vxlan: 'Always',
            natOutgoing: false,
            disableBGPExport: false,
          },
        },
        { type: 'config-update', config: { vxlanVNI: 4097, vxlanPort: 4790 } },
        { type: 'route-update', route: vtep('66:00:00:00:77:02', '192.168.77.2') },
        { type: 'route-update', route: BLOCK },
        {
          type: 'workload-update',
          endpoint: { id: PEER_EP, ifaceName: 'calipeer1' } as WorkloadEndpoint,
        },
        peering([PEER_EP]),
        { type: 'in-sync' },
      ] as DataplaneUpdate[])
        net.send(u);
      await net.apply();
    });
    afterAll(async () => {
      nl?.close();
      await tb.cleanup();
    });

    test('the device as `ip -d link` shows it: vni, port, local, learning off, MTU, MAC, up, address', async () => {
      const d = await device();
      expect(d.linkinfo?.info_kind).toBe('vxlan');
      expect(d.linkinfo?.info_data).toMatchObject({
        id: 4097,
        port: 4790,
        local: '192.168.77.1',
        learning: false,
      });
      expect(d.mtu).toBe(1350);
      expect(d.address).toBe('66:00:00:00:77:01');
      expect(d.flags).toContain('UP');
      expect(await addrs('vxlan.tortie')).toEqual(['10.77.1.0/32']);
      const routes = await ns.exec(['ip', 'route', 'show', 'proto', '80']);
      expect(routes).toContain('10.77.2.0/26 via 10.77.2.0 dev vxlan.tortie onlink');
    });

    test('the VTEP: permanent ARP entry and FDB entry to the other node', async () => {
      expect(await neigh()).toEqual([
        expect.objectContaining({
          dst: '10.77.2.0',
          lladdr: '66:00:00:00:77:02',
          state: ['PERMANENT'],
        }),
      ]);
      expect(await fdb()).toEqual([
        expect.objectContaining({
          mac: '66:00:00:00:77:02',
          dst: '192.168.77.2',
          state: 'permanent',
        }),
      ]);
      expect((await fdb())[0].flags).toContain('self');
    });

    test('the peering address is on the selected workload interface, and goes with it', async () => {
      expect(await addrs('calipeer1')).toEqual(['169.254.0.179/32']);
      net.send(peering([]));
      await net.apply();
      expect(await addrs('calipeer1')).toEqual([]);
    });

    test('a VTEP moved to another MAC and node replaces both entries; a removed one leaves none', async () => {
      net.send({ type: 'route-update', route: vtep('66:00:00:00:77:03', '192.168.77.3') });
      await net.apply();
      expect((await neigh()).map((n) => `${n.dst} ${n.lladdr}`)).toEqual([
        '10.77.2.0 66:00:00:00:77:03',
      ]);
      expect((await fdb()).map((e) => `${e.mac} ${e.dst}`)).toEqual([
        '66:00:00:00:77:03 192.168.77.3',
      ]);
      net.send({ type: 'route-remove', dst: '10.77.2.0/32' });
      await net.apply();
      expect(await neigh()).toEqual([]);
      expect(await fdb()).toEqual([]);
    });

    test('a new VNI and port re-create the device (entries rewritten); a VNI out of range is refused by name', async () => {
      net.send({ type: 'route-update', route: vtep('66:00:00:00:77:02', '192.168.77.2') });
      net.send({ type: 'config-update', config: { vxlanVNI: 4098, vxlanPort: 4789 } });
      await net.apply();
      expect((await device()).linkinfo?.info_data).toMatchObject({
        id: 4098,
        port: 4789,
        learning: false,
      });
      expect((await neigh()).map((n) => n.lladdr)).toEqual(['66:00:00:00:77:02']);
      expect((await fdb()).map((e) => e.dst)).toEqual(['192.168.77.2']);
      net.send({ type: 'config-update', config: { vxlanVNI: 20000000, vxlanPort: 4789 } });
      await expect(net.apply()).rejects.toThrow(
        via === 'netlink' ? /VNI 20000000 is not in 0\.\.16777215/ : /20000000/,
      );
    });

    test('IPIP: tunl0 with the MTU, up and the tunnel address; without the ipip module, the reason named', async () => {
      const ipns = await tb.netns(`ipip${via}`);
      await ipns.exec([
        'ip',
        'link',
        'add',
        'eth0',
        'mtu',
        '1400',
        'type',
        'veth',
        'peer',
        'eth0p',
      ]);
      await ipns.exec(['ip', 'addr', 'add', '192.168.78.1/24', 'dev', 'eth0']);
      const nl2 = via === 'netlink' ? Rtnl.open(ipns.name) : undefined;
      try {
        const m = new NetManager(new ProcessRunner(ipns.name), nl2);
        for (const u of [
          {
            type: 'host-update',
            host: { node: 'n1', ipv4Address: '192.168.78.1', ipv4IPIPTunnelAddr: '10.78.1.1' },
          },
          {
            type: 'pool-update',
            pool: {
              cidr: '10.78.0.0/16',
              ipip: 'Always',
              vxlan: 'Never',
              natOutgoing: false,
              disableBGPExport: false,
            },
          },
          { type: 'in-sync' },
        ] as DataplaneUpdate[])
          m.send(u);
        await m.apply();
        // the ipip module makes tunl0 in every namespace: this kernel has it or it does not
        const hasIpip = (await ipns.exec(['ip', '-j', 'link', 'show'])).includes('"tunl0"');
        if (hasIpip) {
          const [t] = JSON.parse(await ipns.exec(['ip', '-j', 'addr', 'show', 'tunl0'])) as Array<
            LinkJson & { addr_info: Array<{ local: string }> }
          >;
          expect([t.mtu, t.flags.includes('UP'), t.addr_info.map((a) => a.local)]).toEqual([
            1380,
            true,
            ['10.78.1.1'],
          ]);
          expect(m.problems.get('ipip')).toBeUndefined();
        } else {
          // the ip path names the command and ip's words, the netlink one the request and errno
          expect(m.problems.get('ipip')).toMatch(
            via === 'netlink'
              ? /^ip link add name tunl0 type ipip: netlink link add name tunl0 type ipip: E(OPNOTSUPP|NOTSUP) .*Unknown device type/
              : /^ip link add name tunl0 type ipip: .*Unknown device type/,
          );
        }
      } finally {
        nl2?.close();
      }
    });

    if (via === 'netlink')
      test('no process ran (no ip, bridge or sysctl)', () => {
        expect(ran).toEqual([]);
      });
  });
}
