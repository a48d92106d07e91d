// IPIP end to end on a real kernel: three agents (tortie-node) in node namespaces, two
// on one subnet and one behind a router on another, pods wired by the real CNI plugin,
// a real etcd. Checked on the wire with tcpdump: traffic is IP-in-IP (protocol 4)
// exactly where the pool's ipipMode says (Always, CrossSubnet, Never, changed live),
// tunl0 is set up as Calico's Felix sets it up, and policy holds over the tunnel.
//
// This machine's kernel has no ipip module. e2e/kernel.vm.test.ts runs this file inside
// Debian's kernel under QEMU (the testbed's VM runner) where the kernel lacks ipip, and
// on the host where it has it; the name (*.vmtest.ts) keeps it out of jest's own runs.
import type { ChildProcess } from 'node:child_process';
import { Cluster, LAB_FELIX_CONFIG, type Pod } from '@tortie/lab';
import { SLOW, describeIf, waitUntil, type Netns } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'iptables', 'ipset', 'nft', 'tcpdump', 'ipip'] as const;
const POOL = '10.246.0.0/16';
// everything is slower under emulation (TCG): agents took ~45 s to get ready there
const TEST_MS = 60_000 * SLOW;

/** Counts the packets matching `filter` on `ns`'s eth0 while `during` runs. */
async function capture(ns: Netns, filter: string, during: () => Promise<unknown>): Promise<number> {
  const dump = ns.spawn(['tcpdump', '-i', 'eth0', '-nn', '-l', '-p', filter]);
  let out = '';
  dump.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    dump.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    dump.once('exit', () => reject(new Error(`tcpdump ${filter}: ${err}`)));
  });
  try {
    await during();
    await new Promise((r) => setTimeout(r, 300 * SLOW));
  } finally {
    await stop(dump);
  }
  return out.split('\n').filter((l) => l.trim()).length;
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGINT');
  await exited;
}

/** Pings `ip` from `pod` every 100 ms until `done` resolves; the longest silence, in ms. */
async function longestGap(pod: Pod, ip: string, done: Promise<unknown>): Promise<number> {
  const ping = pod.ns.spawn(['ping', '-n', '-i', '0.1', '-W', '1', ip]);
  let out = '';
  ping.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await done;
    await new Promise((r) => setTimeout(r, 2000 * SLOW)); // and the reconverged path holds
  } finally {
    await stop(ping);
  }
  const seqs = [...out.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
  if (seqs.length === 0) throw new Error(`no reply at all from ${ip}: ${out.slice(-500)}`);
  let gap = 0;
  for (let i = 1; i < seqs.length; i++) gap = Math.max(gap, seqs[i] - seqs[i - 1] - 1);
  return gap * 100;
}

function suite() {
  describeIf([...NEEDS], 'IPIP on a real kernel: three nodes in two subnets', () => {
    let c: Cluster;
    let a: Pod; // node1, subnet 10.99.0.0/24
    let b: Pod; // node2, same subnet as node1
    let r: Pod; // node3, behind the router on 10.98.0.0/24
    const setMode = (ipipMode: string) =>
      c.apply({
        kind: 'IPPool',
        metadata: { name: 'default-ipv4-ippool' },
        spec: { cidr: POOL, ipipMode },
      });
    /** node1's (or node i's) route to `pod`, as `ip route get` prints it. */
    const routeTo = async (pod: Pod, i = 0) => c.nodes[i].ns.exec(['ip', 'route', 'get', pod.ip]);
    /** Until node1 and node2 reach each other's pods directly (both ends switched). */
    const directBetween12 = () =>
      waitUntil(
        'node1 and node2 route to each other without the tunnel',
        async () =>
          !(await routeTo(b, 0)).includes('tunl0') && !(await routeTo(a, 1)).includes('tunl0'),
        30_000,
        100,
      );
    const node1 = () => c.nodes[0].ns;
    const pingable = (from: Pod, to: Pod) => c.ping(from, to.ip);

    beforeAll(async () => {
      c = await Cluster.start({
        nodes: 3,
        routedNodes: [2],
        pool: { cidr: POOL, ipipMode: 'Always' },
      });
      await Promise.all([0, 1, 2].map((i) => c.ready(i, 120_000)));
      // one pod per node, added at once (each ADD waits for its own agent)
      [a, b, r] = await Promise.all([
        c.addPod(0, 'ia', { app: 'a' }),
        c.addPod(1, 'ib', { app: 'b' }),
        c.addPod(2, 'ir', { app: 'r' }),
      ]);
    }, 300_000 * SLOW);
    afterAll(() => c?.stop(), 60_000);

    test(
      'Always: every pod pair talks, IP-in-IP on the wire, never plain',
      async () => {
        for (const [x, y] of [
          [a, b],
          [a, r],
          [b, r],
          [r, a],
        ])
          await waitUntil(`${x.name} pings ${y.name}`, () => pingable(x, y), 30_000, 300);
        expect(await routeTo(b)).toMatch(new RegExp(`via ${c.nodes[1].ip} dev tunl0`));
        expect(await routeTo(r)).toMatch(new RegExp(`via ${c.nodes[2].ip} dev tunl0`));
        // on node1's wire: a's pings to b and r are protocol 4 to their nodes, no plain ICMP
        const wire = (filter: string, to: Pod) => capture(node1(), filter, () => c.ping(a, to.ip));
        expect(await wire(`ip proto 4 and host ${c.nodes[1].ip}`, b)).toBeGreaterThanOrEqual(2);
        expect(await wire(`icmp and host ${b.ip}`, b)).toBe(0);
        expect(await wire(`ip proto 4 and host ${c.nodes[2].ip}`, r)).toBeGreaterThanOrEqual(2);
      },
      TEST_MS,
    );

    test(
      'tunl0: an address from the node block, MTU 20 below the host interface, up',
      async () => {
        for (const n of c.nodes) {
          const [link] = JSON.parse(
            await n.ns.exec(['ip', '-j', '-d', 'addr', 'show', 'tunl0']),
          ) as [
            {
              mtu: number;
              operstate: string;
              flags: string[];
              addr_info: Array<{ family: string; local: string; prefixlen: number }>;
            },
          ];
          const [eth0] = JSON.parse(await n.ns.exec(['ip', '-j', 'link', 'show', 'eth0'])) as [
            { mtu: number },
          ];
          expect(link.mtu).toBe(eth0.mtu - 20);
          expect(link.flags).toContain('UP');
          const v4 = link.addr_info.filter((x) => x.family === 'inet');
          expect(v4).toHaveLength(1);
          expect(v4[0].prefixlen).toBe(32);
          // the address is in one of this node's own blocks (routes to them are local)
          const blocks = await n.ns.exec(['ip', 'route', 'show', 'type', 'blackhole']);
          const mine = [...blocks.matchAll(/blackhole (\S+)/g)].map((m) => m[1]);
          expect(mine.some((cidr) => inBlock(v4[0].local, cidr))).toBe(true);
        }
      },
      TEST_MS,
    );

    test(
      'policy is enforced over the tunnel',
      async () => {
        await c.apply({
          kind: 'NetworkPolicy',
          metadata: { name: 'r-from-nobody', namespace: 'default' },
          spec: { selector: "app == 'r'", types: ['Ingress'], ingress: [] },
        });
        await waitUntil('a is blocked from r', async () => !(await pingable(a, r)), 20_000, 200);
        expect(await pingable(r, a)).toBe(true); // r's egress is not affected
        await c.remove('NetworkPolicy', 'r-from-nobody', 'default');
        await waitUntil('a reaches r again', () => pingable(a, r), 20_000, 200);
      },
      TEST_MS,
    );

    test(
      'only cluster nodes may tunnel in: a forged IP-in-IP packet from elsewhere is dropped and counted',
      async () => {
        // a host on the fabric that is no node wraps "a -> b" in IP-in-IP to b's node
        const evil = await c.tb.netns('evil');
        await c.fabric.attach(evil, { v4: '10.99.0.200/24' });
        const node2 = c.nodes[1];
        await evil.exec([
          ...['ip', 'link', 'add', 'evil0', 'type', 'ipip'],
          ...['local', '10.99.0.200', 'remote', node2.ip, 'ttl', '64'],
        ]);
        await evil.exec(['ip', 'link', 'set', 'evil0', 'up']);
        await evil.exec(['ip', 'addr', 'add', `${a.ip}/32`, 'dev', 'evil0']);
        await evil.exec(['ip', 'route', 'add', `${b.ip}/32`, 'dev', 'evil0', 'src', a.ip]);
        const forge = () =>
          capture(b.ns, `icmp and src ${a.ip} and dst ${b.ip}`, () =>
            evil.exec(['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', b.ip]).catch(() => ''),
          );
        const dropped = async () => {
          const out = await node2.ns.exec([
            'iptables',
            '-w',
            '-L',
            'tortie-INPUT',
            '-v',
            '-n',
            '-x',
          ]);
          const rule = out.split('\n').find((l) => /\sDROP\s+(4|ipencap)\s/.test(l));
          if (!rule) throw new Error(`no IPIP drop rule in node2's tortie-INPUT:\n${out}`);
          return Number(rule.trim().split(/\s+/)[0]);
        };
        const before = await dropped();
        expect(await forge()).toBe(0); // b never sees the forged inner packet
        expect((await dropped()) - before).toBeGreaterThanOrEqual(3);
        // Felix's externalNodesList lets that host in: the same packet then arrives (so
        // this test does see a forged packet when one gets through)
        const felix = (extra: object) =>
          c.apply({
            kind: 'FelixConfiguration',
            metadata: { name: 'default' },
            spec: { ...LAB_FELIX_CONFIG, ...extra },
          });
        await felix({ externalNodesList: ['10.99.0.200/32'] });
        await waitUntil('the forged packet gets in', async () => (await forge()) > 0, 30_000, 200);
        await felix({});
        await waitUntil('dropped again', async () => (await forge()) === 0, 30_000, 200);
      },
      TEST_MS,
    );

    test(
      'CrossSubnet, switched live: plain within the subnet, IP-in-IP across',
      async () => {
        const switched = (async () => {
          await setMode('CrossSubnet');
          await directBetween12();
        })();
        const gap = await longestGap(a, b.ip, switched);
        process.stdout.write(`IPIP Always -> CrossSubnet: longest gap of a->b pings ${gap} ms\n`);
        expect(await routeTo(b)).toMatch(new RegExp(`via ${c.nodes[1].ip} dev eth0`));
        expect(await routeTo(r)).toMatch(new RegExp(`via ${c.nodes[2].ip} dev tunl0`));
        expect(
          await capture(node1(), `icmp and host ${b.ip}`, () => c.ping(a, b.ip)),
        ).toBeGreaterThanOrEqual(2);
        expect(await capture(node1(), 'ip proto 4', () => c.ping(a, b.ip))).toBe(0);
        expect(
          await capture(node1(), `ip proto 4 and host ${c.nodes[2].ip}`, () => c.ping(a, r.ip)),
        ).toBeGreaterThanOrEqual(2);
        expect(await pingable(r, b)).toBe(true);
      },
      TEST_MS,
    );

    test(
      'Never, then Always again: no tunnel at all, then every pair back over tunl0',
      async () => {
        await setMode('Never');
        await waitUntil(
          'node1 has no route over tunl0',
          async () => !(await node1().exec(['ip', 'route'])).includes('tunl0'),
          30_000,
          200,
        );
        await directBetween12();
        // same subnet: BGP's route, plain (once both ends have switched); across the router
        // there is no path without a tunnel (the nodes' addresses are not on-link and the
        // router knows no pod routes)
        await waitUntil('a reaches b without the tunnel', () => pingable(a, b), 30_000, 200);
        expect(await routeTo(b)).toMatch(new RegExp(`via ${c.nodes[1].ip} dev eth0`));
        expect(await capture(node1(), 'ip proto 4', () => c.ping(a, b.ip))).toBe(0);

        const back = (async () => {
          await setMode('Always');
          await waitUntil('a reaches r again', () => pingable(a, r), 30_000, 200);
        })();
        const gap = await longestGap(a, b.ip, back);
        process.stdout.write(`IPIP Never -> Always: longest gap of a->b pings ${gap} ms\n`);
        expect(await routeTo(b)).toMatch(/dev tunl0/);
        expect(await pingable(b, r)).toBe(true);
      },
      TEST_MS,
    );
  });
}

/** Whether IPv4 `ip` is inside `cidr`. */
function inBlock(ip: string, cidr: string): boolean {
  const n = (s: string) => s.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const [net, len] = cidr.split('/');
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(ip) / size) === Math.floor(n(net) / size);
}

suite();
