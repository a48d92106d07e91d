// tortie-node in a Calico node-to-node mesh, in network namespaces on one fabric: a BIRD
// configured as calico-node's confd renders bird.cfg for its node (the mesh template,
// passive towards the addresses greater as strings: confd bgp_processor.go
// processMeshPeers), and two real agents (tortie-node, each reading its own copy of a file
// datastore). The addresses make string and numeric order differ: 10.0.0.5 (BIRD),
// 10.0.0.8 and 10.0.0.10 (tortie). BGPConfiguration listenPort 1790, and 1791 for node
// n10 (node.n10). The two tortie nodes also mesh over IPv6 (fd00::8, fd00::10). Every
// session must come up and every block reach the other nodes' kernels.
// Route priority as Calico: BGPConfiguration ipv4NormalRoutePriority 700 and
// ipv6NormalRoutePriority 900 travel as LOCAL_PREF 2^31-1 - priority on iBGP and become
// kernel metrics (2^31-1 - LOCAL_PREF); n8 also peers with an eBGP ToR (BIRD, AS 65001)
// through a BGPFilter whose import setPriority 512 reaches n8's kernel.
import fs from 'node:fs';
import path from 'node:path';
import { parseResource, type Resource } from '@tortie/api';
import { blockName, blocks } from '@tortie/ipam';
import { Bird, Fabric, Testbed, describeIf, waitUntil, type Netns } from '@tortie/testbed';
import { startFileAgent, writeDatastore, type FileAgent } from './file-agent';

const R = (kind: string, name: string, spec: object): Resource =>
  parseResource({ apiVersion: 'projectcalico.org/v3', kind, metadata: { name }, spec });

const NODES = {
  n5: { v4: '10.0.0.5', block: '10.244.5.0/26' }, // the calico-node (BIRD)
  n8: { v4: '10.0.0.8', v6: 'fd00::8', block: '10.244.8.0/26', block6: 'fd10:0:0:8::/122' },
  n10: { v4: '10.0.0.10', v6: 'fd00::10', block: '10.244.10.0/26', block6: 'fd10:0:0:10::/122' },
};

const block = (cidr: string, node: string) =>
  R('IPAMBlock', blockName(cidr), blocks.newBlock(cidr, node));

const MAX = 2147483647;
const PRIO = { v4: 700, v6: 900, filtered: 512 };
const TOR = { v4: '10.0.0.20', routes: ['10.99.0.0/24', '10.99.1.0/24'] };

const RESOURCES: Resource[] = [
  R('BGPConfiguration', 'default', {
    listenPort: 1790,
    ipv4NormalRoutePriority: PRIO.v4,
    ipv6NormalRoutePriority: PRIO.v6,
  }),
  R('BGPPeer', 'n8-tor', { node: 'n8', peerIP: TOR.v4, asNumber: 65001, filters: ['prio'] }),
  R('BGPFilter', 'prio', {
    importV4: [
      {
        action: 'Accept',
        cidr: TOR.routes[1],
        matchOperator: 'Equal',
        operations: [{ setPriority: { value: PRIO.filtered } }],
      },
    ],
  }),
  R('BGPConfiguration', 'node.n10', { listenPort: 1791 }),
  R('Node', 'n5', { bgp: { ipv4Address: '10.0.0.5/24' } }),
  R('Node', 'n8', { bgp: { ipv4Address: '10.0.0.8/24', ipv6Address: 'fd00::8/64' } }),
  R('Node', 'n10', { bgp: { ipv4Address: '10.0.0.10/24', ipv6Address: 'fd00::10/64' } }),
  R('IPPool', 'v4', { cidr: '10.244.0.0/16' }),
  R('IPPool', 'v6', { cidr: 'fd10::/48' }),
  block(NODES.n5.block, 'n5'),
  block(NODES.n8.block, 'n8'),
  block(NODES.n10.block, 'n10'),
  block(NODES.n8.block6, 'n8'),
  block(NODES.n10.block6, 'n10'),
];

/**
 * bird.cfg for node n5 as confd renders it from the resources above
 * (node/filesystem/etc/calico/confd/templates/bird.cfg.template), in BIRD 2's syntax:
 * the bgp_template, then one Mesh_ protocol per other node, dialling its listen port,
 * passive when the peer's address is greater as a string. Written out by hand from
 * confd's rule, not from our code, so that the two are checked against each other.
 * Route priority as confd renders it for ipv4NormalRoutePriority 700: the kernel
 * protocol's SetMetricForBGPRoutes (krt_metric = 2^31-1 - bgp_local_pref) and the
 * export prologue of buildExportFilter (bgp_local_pref = 2^31-1 - krt_metric, 700 when
 * the route has no krt_metric).
 */
const CALICO_BIRD_CFG = `
log stderr all;
router id 10.0.0.5;
protocol device { scan time 2; }
protocol direct { ipv4; interface -"cali*", -"kube-ipvs*", "*"; }
# the node's blocks (bird_aggr.cfg)
protocol static static_blocks { ipv4; route ${NODES.n5.block} blackhole; }
filter calico_kernel_programming {
  if (defined(source) && (source = RTS_BGP) && !defined(krt_metric)) then {
    krt_metric = ${PRIO.v4};
    if (defined(bgp_local_pref)) then {
      krt_metric = ${MAX} - bgp_local_pref;
    }
  }
  if (source = RTS_BGP) then accept;
  reject;
}
filter calico_export {
  if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {
    krt_metric = ${MAX} - bgp_local_pref;
  } else {
    if (!defined(krt_metric)) then { krt_metric = ${PRIO.v4}; }
    bgp_local_pref = ${MAX} - krt_metric;
  }
  if (source = RTS_STATIC) then accept;
  reject;
}
# BIRD 2 writes its own "metric 32" unless told 0 (BIRD 1, calico-node's, has no such default)
protocol kernel {
  metric 0;
  ipv4 { import none; export filter calico_kernel_programming; };
  graceful restart;
  merge paths on;
}
template bgp bgp_template {
  description "Connection to BGP peer";
  local 10.0.0.5 port 1790 as 64512;
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}
# "10.0.0.8" > "10.0.0.5": wait for it
protocol bgp Mesh_10_0_0_8 from bgp_template {
  neighbor 10.0.0.8 port 1790 as 64512;
  ttl security off;
  multihop;
  ipv4 { gateway recursive; add paths on; import all; export filter calico_export; };
  passive on;
}
# "10.0.0.10" < "10.0.0.5": dial it, on its own listen port (node.n10)
protocol bgp Mesh_10_0_0_10 from bgp_template {
  neighbor 10.0.0.10 port 1791 as 64512;
  ttl security off;
  multihop;
  ipv4 { gateway recursive; add paths on; import all; export filter calico_export; };
}
`;

describeIf(
  ['root', 'netns', 'bird', 'iptables', 'ipset'],
  'tortie-node meshes with a calico-node (BIRD) and with itself over IPv4 and IPv6',
  () => {
    const tb = new Testbed();
    let bird: Bird;
    let tor: Bird;
    const agents: FileAgent<'n8' | 'n10'>[] = [];
    const lastLogs = () => agents.map((a) => a.lastLog(15)).join('\n');

    beforeAll(async () => {
      try {
        const dir = tb.tempDir('mesh');
        const base = path.join(dir, 'base.json');
        await writeDatastore(base, RESOURCES);

        const fabric = await Fabric.create(tb);
        const n5 = await tb.netns('n5');
        await fabric.attach(n5, { v4: '10.0.0.5/24' });
        bird = await Bird.start(tb, n5, { text: CALICO_BIRD_CFG });
        const torNs = await tb.netns('tor');
        await fabric.attach(torNs, { v4: `${TOR.v4}/24` });
        tor = await Bird.start(tb, torNs, {
          routerId: TOR.v4,
          routes: TOR.routes.map((prefix) => ({ prefix })),
          peers: [
            {
              name: 'n8',
              localAs: 65001,
              neighbor: NODES.n8.v4,
              neighborAs: 64512,
              port: 1790,
              passive: true,
              families: ['ipv4'],
            },
          ],
        });
        for (const name of ['n8', 'n10'] as const) {
          const ns = await tb.netns(name);
          const n = NODES[name];
          await fabric.attach(ns, { v4: `${n.v4}/24`, v6: `${n.v6}/64` });
          const file = path.join(dir, `${name}.json`);
          fs.copyFileSync(base, file);
          agents.push(
            startFileAgent(tb, ns, { name, ip: `${n.v4}/24`, ip6: `${n.v6}/64`, file, dir }),
          );
        }
      } catch (e) {
        await tb.cleanup();
        throw e;
      }
    }, 60_000);

    afterAll(() => tb.cleanup());

    async function allUp(a: FileAgent, expected: string[]): Promise<void> {
      await waitUntil(
        `${a.name}: sessions ${expected.join(', ')} Established`,
        async () => {
          if (a.proc.exitCode !== null) throw new Error(`${a.name} exited:\n${lastLogs()}`);
          const rows = await a.peers();
          const up = rows.filter((r) => r.state === 'Established');
          const keys = up.map(
            (r) => `${r.address.includes(':') ? `[${r.address}]` : r.address}:${r.port}`,
          );
          return expected.every((k) => keys.includes(k)) && rows.length === expected.length;
        },
        45_000,
        250,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${lastLogs()}`);
      });
    }

    test('every session comes up: BIRD passive towards 10.0.0.8, tortie passive towards 10.0.0.5 from 10.0.0.10', async () => {
      const [n8, n10] = agents;
      await allUp(n8, ['10.0.0.5:1790', '10.0.0.10:1791', '[fd00::10]:1791', `${TOR.v4}:179`]);
      await allUp(n10, ['10.0.0.5:1790', '10.0.0.8:1790', '[fd00::8]:1790']);
      await bird.waitEstablished('Mesh_10_0_0_8', 45_000);
      await bird.waitEstablished('Mesh_10_0_0_10', 45_000);
      await tor.waitEstablished('n8', 45_000);
    }, 120_000);

    test('routes are exchanged: the blocks reach every kernel, over IPv4 and IPv6', async () => {
      const [n8, n10] = agents;
      // BIRD (the calico-node) learned both tortie blocks, each via its node
      await waitUntil('BIRD has the tortie blocks', async () => {
        const routes = await bird.routes('ipv4');
        const via = (p: string) => routes.find((r) => r.prefix === p && r.primary)?.nextHop;
        return via(NODES.n8.block) === '10.0.0.8' && via(NODES.n10.block) === '10.0.0.10';
      });
      const kernel = (a: FileAgent, v6: boolean) =>
        a.ns.exec(['ip', ...(v6 ? ['-6'] : []), 'route', 'show', 'proto', '81']);
      for (const [a, other] of [
        [n8, n10],
        [n10, n8],
      ] as const) {
        await waitUntil(`${a.name} installs the learned routes`, async () => {
          const v4 = await kernel(a, false);
          const v6 = await kernel(a, true);
          const o = NODES[other.name];
          return (
            v4.includes(`${NODES.n5.block} via 10.0.0.5`) &&
            v4.includes(`${o.block} via ${o.v4}`) &&
            v6.includes(`${o.block6} via ${o.v6}`)
          );
        });
      }
      // and the calico-node's BIRD installed them in its kernel
      const torKernel = await bird.ns.exec(['ip', 'route']);
      expect(torKernel).toMatch(
        new RegExp(`${NODES.n8.block.replace(/\./g, '\\.')} via 10\\.0\\.0\\.8`),
      );
    }, 60_000);

    test('route priority: LOCAL_PREF 2^31-1 - normalRoutePriority on iBGP, kernel metric 2^31-1 - LOCAL_PREF, a BGPFilter setPriority reaches the kernel', async () => {
      const [n8, n10] = agents;
      const metrics = async (ns: Netns, v6 = false) => {
        const text = await ns.exec(['ip', '-j', ...(v6 ? ['-6'] : []), 'route', 'show']);
        const rows = JSON.parse(text || '[]') as Array<{ dst: string; metric?: number }>;
        return new Map(rows.map((r) => [r.dst, r.metric ?? 0]));
      };
      // BIRD (calico-node) got our blocks with LOCAL_PREF 2^31-1 - 700 ...
      await waitUntil(`BIRD sees LOCAL_PREF ${MAX - PRIO.v4} on the tortie blocks`, async () => {
        const routes = await bird.routes('ipv4');
        const lp = (p: string) => routes.find((r) => r.prefix === p && r.primary)?.localPref;
        return lp(NODES.n8.block) === MAX - PRIO.v4 && lp(NODES.n10.block) === MAX - PRIO.v4;
      });
      // ... and its kernel protocol turned that into metric 700, as confd's does
      let birdKernel = new Map<string, number>();
      await waitUntil('BIRD installs the tortie blocks at metric 700', async () => {
        birdKernel = await metrics(bird.ns);
        return (
          birdKernel.get(NODES.n8.block) === PRIO.v4 && birdKernel.get(NODES.n10.block) === PRIO.v4
        );
      }).catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify([...birdKernel])}`);
      });
      // our kernels: metric = 2^31-1 - LOCAL_PREF, from BIRD and from each other, v4 and v6
      const want: Array<[FileAgent, string, number, boolean]> = [
        [n8, NODES.n5.block, PRIO.v4, false],
        [n8, NODES.n10.block, PRIO.v4, false],
        [n8, NODES.n10.block6, PRIO.v6, true],
        [n10, NODES.n5.block, PRIO.v4, false],
        [n10, NODES.n8.block, PRIO.v4, false],
        [n10, NODES.n8.block6, PRIO.v6, true],
        // from the eBGP ToR (no LOCAL_PREF: BIRD's 100), and the one the filter raised
        [n8, TOR.routes[0], MAX - 100, false],
        [n8, TOR.routes[1], PRIO.filtered, false],
      ];
      for (const [a, dst, metric, v6] of want) {
        let seen: number | undefined;
        await waitUntil(`${a.name}: ${dst} at metric ${metric}`, async () => {
          seen = (await metrics(a.ns, v6)).get(dst);
          return seen === metric;
        }).catch((e: Error) => {
          throw new Error(`${e.message} (kernel has ${seen})\n${lastLogs()}`);
        });
      }
      // one route per destination: the learned routes' metric was set when they were written
      const lines = (await n8.ns.exec(['ip', 'route', 'show', TOR.routes[1]])).trim().split('\n');
      expect(lines).toHaveLength(1);
    }, 90_000);
  },
);
