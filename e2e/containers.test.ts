// The lab in containers mode: every node runs deploy/tortie-etcd.yaml's DaemonSet from the
// tortie/node image under real runc (install-cni into the node's own /opt/cni/bin and
// /etc/cni/net.d, then tortie-node in the node's network namespace with the manifest's
// environment and mounts), and pods are added by executing the installed plugin with the
// installed conflist. Pods reach each other across nodes over BGP, and a NetworkPolicy
// holds and lifts, as in process mode. Every BGP session is keyed (--bgp-password): the
// agents read the keys from the DaemonSet's secret volume, which the lab writes as a kubelet.
// Dual stack (--containers --ipv6): the ConfigMap's assign_ipv6 and ip6 as an operator sets
// them; pods get both families, reach each other over both, and the policy holds on both.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, LAB_BGP_SECRET, RR_ADDRESS, TOR_ADDRESS, type Pod } from '@tortie/lab';
import { SLOW, describeIf, waitUntil } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft', 'runc'] as const;
const KEY = 'containers-md5-key';

describeIf(
  [...NEEDS],
  'cluster: agents from the tortie/node image under runc (--containers)',
  () => {
    let c: Cluster;
    let a: Pod;
    let b: Pod;
    beforeAll(async () => {
      const lines: string[] = [];
      c = await Cluster.start({
        nodes: 2,
        tor: true,
        containers: true,
        ipv6: true,
        bgpPassword: KEY,
        say: (l) => lines.push(l),
      });
      const started = Date.now();
      await Promise.all([c.ready(0, 60_000 * SLOW), c.ready(1, 60_000 * SLOW)]);
      process.stdout.write(`${lines.join('\n')}\nagents ready ${Date.now() - started} ms\n`);
      // the image is built and unpacked before anything starts (a failed build loses nothing)
      const first = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
      expect(first('image unpacked')).toBeGreaterThanOrEqual(0);
      expect(first('image unpacked')).toBeLessThan(first('etcd '));
      a = await c.addPod(0, 'a', { app: 'a' });
      b = await c.addPod(1, 'b', { app: 'b' });
    }, 600_000 * SLOW);
    afterAll(() => c?.stop());

    test('each agent is the image’s tortie-node in a runc container, in its node’s namespace', async () => {
      for (const n of c.nodes) {
        const state = spawnSync('runc', ['state', n.containerId!], { encoding: 'utf8' });
        expect(state.status).toBe(0);
        const { pid, status } = JSON.parse(state.stdout) as { pid: number; status: string };
        expect(status).toBe('running');
        // its root is the unpacked image (the app is at /opt/tortie), not this machine's
        expect(fs.existsSync(`/proc/${pid}/root/opt/tortie/packages/felix/dist/cli.js`)).toBe(true);
        const root = fs.statSync(`/proc/${pid}/root/`);
        const ours = fs.statSync('/');
        expect(`${root.dev}:${root.ino}`).not.toBe(`${ours.dev}:${ours.ino}`);
        // the node's network namespace
        const nodeNet = (await n.ns.exec(['readlink', '/proc/self/ns/net'])).trim();
        expect(fs.readlinkSync(`/proc/${pid}/ns/net`)).toBe(nodeNet);
      }
    });

    test(
      'BGP passwords from the DaemonSet’s secret volume: mesh and ToR sessions come up keyed',
      async () => {
        for (const n of c.nodes) {
          const { pid } = JSON.parse(
            spawnSync('runc', ['state', n.containerId!], { encoding: 'utf8' }).stdout,
          ) as { pid: number };
          // the Secret where the manifest mounts it, read at the agent's default path
          const secret = `/proc/${pid}/root/etc/tortie/secrets/${LAB_BGP_SECRET}`;
          expect(fs.readFileSync(`${secret}/mesh`, 'utf8')).toBe(KEY);
          expect(fs.readFileSync(`/proc/${pid}/environ`, 'utf8')).not.toContain(
            'TORTIE_SECRETS_DIR',
          );
        }
        // BIRD has the key for each node: without it on our side its TCP drops our segments
        await waitUntil(
          'both nodes mesh and are Established with the ToR',
          async () =>
            (await c.sessionsSince(0)).has(c.nodes[1].ip) &&
            (
              await Promise.all(
                c.nodes.map(
                  async (n) =>
                    (await c.tor!.protocol(n.name))?.info.startsWith('Established') ?? false,
                ),
              )
            ).every(Boolean),
          60_000 * SLOW,
          500,
        );
      },
      90_000 * SLOW,
    );

    test('install-cni wrote the plugin and the conflist into the node’s own directories', () => {
      for (const n of c.nodes) {
        const bin = n.host!.path('/opt/cni/bin');
        expect(fs.statSync(path.join(bin, 'tortie-cni')).mode & 0o111).not.toBe(0);
        expect(fs.existsSync(path.join(bin, 'tortie-cni.d', 'cli.js'))).toBe(true);
        const list = JSON.parse(
          fs.readFileSync(path.join(n.host!.path('/etc/cni/net.d'), '10-tortie.conflist'), 'utf8'),
        );
        expect(list.plugins[0]).toMatchObject({
          type: 'tortie-cni',
          nodename: n.name,
          datastore_type: 'etcdv3',
          etcd_endpoints: c.nodeEtcdEndpoints(),
          agent_socket: '/var/run/tortie/cni.sock',
          // the ConfigMap's assign_ipv6, through the template's __ASSIGN_IPV6__
          ipam: { type: 'tortie-ipam', assign_ipv4: 'true', assign_ipv6: 'true' },
        });
      }
    });

    test('the agent found its addresses itself (IP=autodetect, IP6=autodetect from the ConfigMap)', async () => {
      for (const [i, n] of c.nodes.entries()) {
        const node = await c.ds.get({ kind: 'Node', name: n.name });
        expect(node?.spec).toMatchObject({
          bgp: { ipv4Address: `${n.ip}/24`, ipv6Address: `${c.nodeIp6(i)}/64` },
        });
      }
    });

    test('pods get both families, reach each other across nodes over both, and a NetworkPolicy holds and lifts on both', async () => {
      for (const p of [a, b]) {
        expect(p.ip6).toMatch(/^fd00:10:244:/); // the lab's IPv6 pool
        const addrs = await p.ns.exec(['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
        expect(addrs).toContain(` ${p.ip}/32 `);
        expect(addrs).toContain(` ${p.ip6}/128 `);
      }
      for (const [from, to] of [
        [a, b.ip],
        [b, a.ip],
        [a, b.ip6!],
        [b, a.ip6!],
      ] as const)
        await waitUntil(`${from.name} reaches ${to}`, () => c.ping(from, to), 30_000, 200);
      // b's IPv6 block reached node1 over BGP (the IPv6 mesh), next hop node2's IPv6 address
      expect(await c.nodes[0].ns.exec(['ip', '-6', 'route', 'show', 'proto', '81'])).toContain(
        `via ${c.nodeIp6(1)}`,
      );
      await c.apply({
        kind: 'NetworkPolicy',
        metadata: { name: 'b-from-nobody', namespace: 'default' },
        spec: { selector: "app == 'b'", types: ['Ingress'], ingress: [] },
      });
      for (const to of [b.ip, b.ip6!])
        await waitUntil(`${to} blocked`, async () => !(await c.ping(a, to, 0.3)), 15_000, 100);
      expect(await c.ping(b, a.ip)).toBe(true);
      expect(await c.ping(b, a.ip6!)).toBe(true);
      await c.remove('NetworkPolicy', 'b-from-nobody', 'default');
      for (const to of [b.ip, b.ip6!])
        await waitUntil(`${to} allowed again`, () => c.ping(a, to), 15_000, 100);
    });

    test('a pod deleted through the installed plugin releases its address', async () => {
      const gone = await c.addPod(0, 'gone');
      const handles = async () =>
        (await c.ds.list({ kind: 'IPAMHandle' })).items.map((h) => h.metadata.name);
      expect(await handles()).toContain(`k8s-pod-network.${gone.containerId}`);
      await c.deletePod(gone);
      expect(await handles()).not.toContain(`k8s-pod-network.${gone.containerId}`);
    });
  },
);

// deploy/tortie-rr.yaml's Deployment run as a kubelet runs it: tortie-rr from the same
// image under runc, on its own node (a namespace on the fabric, its hostNetwork), the
// mesh off, and every node's agent (the DaemonSet's, also under runc) its client; the
// ToR peers with the nodes, not with the reflector.
describeIf(
  [...NEEDS],
  'cluster: the route-reflector Deployment (deploy/tortie-rr.yaml) under runc',
  () => {
    let c: Cluster;
    beforeAll(async () => {
      c = await Cluster.start({ nodes: 2, tor: true, containers: true, routeReflector: true });
      await Promise.all([c.ready(0, 60_000 * SLOW), c.ready(1, 60_000 * SLOW)]);
    }, 600_000 * SLOW);
    afterAll(() => c?.stop());

    test('tortie-rr is the image’s, in a runc container in its node’s namespace; its probes answer', async () => {
      const rr = c.rr!;
      const state = spawnSync('runc', ['state', rr.containerId!], { encoding: 'utf8' });
      expect(state.status).toBe(0);
      const { pid, status } = JSON.parse(state.stdout) as { pid: number; status: string };
      expect(status).toBe('running');
      // the Deployment's command, the image's entry point: /usr/local/bin/tortie-rr, a link
      // into the app in the image's root (not this checkout)
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      expect(argv.slice(1, 3)).toEqual(['/usr/local/bin/tortie-rr', 'run']);
      expect(fs.readlinkSync(`/proc/${pid}/root/usr/local/bin/tortie-rr`)).toBe(
        '/opt/tortie/packages/route-reflector/dist/cli.js',
      );
      expect(
        fs.existsSync(`/proc/${pid}/root/opt/tortie/packages/route-reflector/dist/cli.js`),
      ).toBe(true);
      const rrNet = (await rr.ns.exec(['readlink', '/proc/self/ns/net'])).trim();
      expect(fs.readlinkSync(`/proc/${pid}/ns/net`)).toBe(rrNet);
      // the manifest's probes, on the port and paths it names
      expect(await c.rrProbe('/liveness')).toBe(200);
      await waitUntil(
        'the reflector ready',
        async () => (await c.rrProbe('/readiness')) === 200,
        60_000 * SLOW,
        500,
      );
    });

    test(
      'every node is Established with the reflector only, and it reflects their blocks',
      async () => {
        await waitUntil(
          'both nodes Established with the reflector and the ToR',
          async () =>
            (await Promise.all(c.nodes.map((_, i) => c.sessionsSince(i)))).every(
              (m) => m.has(RR_ADDRESS) && m.has(TOR_ADDRESS),
            ),
          90_000 * SLOW,
          500,
        );
        // the mesh is off: no node-to-node session, only the reflector and the ToR
        for (let i = 0; i < c.nodes.length; i++)
          expect([...(await c.sessionsSince(i)).keys()].sort()).toEqual(
            [RR_ADDRESS, TOR_ADDRESS].sort(),
          );
        // the reflector's own view, over the control socket its hostPath volume exposes:
        // the nodes, and nothing else (not the ToR)
        const peers = await waitUntil(
          'the reflector Established with both nodes',
          async () => {
            const rows = await c.rrPeers();
            return rows.every((p) => p.state === 'Established') ? rows : undefined;
          },
          30_000 * SLOW,
          200,
        );
        expect(peers.map((p) => [p.address, p.state]).sort()).toEqual(
          c.nodes.map((n) => [n.ip, 'Established']).sort(),
        );
        const a = await c.addPod(0, 'a');
        const b = await c.addPod(1, 'b');
        // node1 learnt node2's block from the reflector, next hop node2 itself
        await waitUntil(
          'node1 routes b via node2',
          async () =>
            (await c.nodes[0].ns.exec(['ip', 'route', 'show', 'proto', '81'])).includes(
              `via ${c.nodes[1].ip}`,
            ),
          30_000 * SLOW,
          200,
        );
        await waitUntil('a reaches b', () => c.ping(a, b.ip), 30_000, 200);
        await waitUntil('b reaches a', () => c.ping(b, a.ip), 30_000, 200);
      },
      180_000 * SLOW,
    );
  },
);
