// Fault injection on the lab cluster (3 agents, etcd, a BIRD ToR): each case breaks
// something for real, prints what it measured, and asserts that nothing was lost. The
// figures go to docs/reliability.md. Pods a (node1) and b (node2) ping each other every
// 100 ms through each case.
import { Cluster, type Pod } from '@tortie/lab';
import { SLOW, describeIf, waitUntil } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft'] as const;

/** Node i's BGP-learned routes (proto 81), one line each. */
const learned = (c: Cluster, i: number) =>
  c.nodes[i].ns.exec(['ip', 'route', 'show', 'proto', '81']);

describeIf([...NEEDS], 'cluster: fault injection', () => {
  let c: Cluster;
  let a: Pod;
  let b: Pod;
  beforeAll(async () => {
    c = await Cluster.start({ nodes: 3, tor: true });
    await Promise.all([0, 1, 2].map((i) => c.ready(i)));
    a = await c.addPod(0, 'a', { app: 'a' });
    b = await c.addPod(1, 'b', { app: 'b' });
    await waitUntil('a reaches b', () => c.ping(a, b.ip), 20_000, 200);
  }, 90_000 * SLOW);
  afterAll(() => c?.stop());

  test('agent SIGKILL under traffic: no packet lost, the restarted agent reprograms', async () => {
    const ping = c.pinger(a, b.ip);
    await c.stopAgent(1, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 2000));
    const t0 = Date.now();
    c.startAgent(1);
    await c.ready(1);
    const readyMs = Date.now() - t0;
    // a change after the restart is programmed on node2: a policy that blocks a -> b
    const t1 = Date.now();
    await c.apply({
      kind: 'NetworkPolicy',
      metadata: { name: 'b-closed', namespace: 'default' },
      spec: { selector: "app == 'b'", types: ['Ingress'], ingress: [] },
    });
    const p = await ping.stop();
    await waitUntil('a blocked from b', async () => !(await c.ping(a, b.ip, 1)), 10_000, 100);
    const policyMs = Date.now() - t1;
    await c.remove('NetworkPolicy', 'b-closed', 'default');
    await waitUntil('a reaches b again', () => c.ping(a, b.ip, 1), 10_000, 100);
    console.log(
      `agent SIGKILL on node2: ${p.lost} of ${p.sent} pings lost; restarted agent ready ` +
        `${readyMs} ms after start; a new policy enforced ${policyMs} ms after it was written`,
    );
    expect(p.lost).toBe(0);
  });

  test('iptables flushed by an outside process: repaired, the policy holds again', async () => {
    await c.apply({
      kind: 'NetworkPolicy',
      metadata: { name: 'b-closed', namespace: 'default' },
      spec: { selector: "app == 'b'", types: ['Ingress'], ingress: [] },
    });
    await waitUntil('a blocked from b', async () => !(await c.ping(a, b.ip, 1)), 10_000, 100);
    const n2 = c.nodes[1].ns;
    // the backend the agent chose (the lab's Debian iptables is nft)
    const save = () => n2.exec(['iptables-save']);
    const before = await save();
    expect(before).toContain('tortie-');
    const t0 = Date.now();
    await n2.exec(['iptables', '-t', 'filter', '-F']);
    // the flush opens the hole (a reaches b); the agent's refresh (10 s in the lab) closes it
    const repaired = await waitUntil(
      'node2 repairs its filter table',
      async () => ((await c.ping(a, b.ip, 1)) ? undefined : (await save()).includes('tortie-fw')),
      60_000,
      100,
    );
    const ms = Date.now() - t0;
    console.log(
      `filter table flushed on node2: rules back and the policy enforced ${ms} ms later (refresh interval 10 s)`,
    );
    expect(repaired).toBe(true);
    expect(ms).toBeLessThan(10_000 * 2 * SLOW); // within one resync (with slack for load)
    await c.remove('NetworkPolicy', 'b-closed', 'default');
    await waitUntil('a reaches b again', () => c.ping(a, b.ip, 1), 10_000, 100);
  });

  test('a link flap of 2 s without BFD: the BGP sessions ride it out, no route withdrawn', async () => {
    const routeVia2 = `via ${c.nodes[1].ip} `;
    let withdrawn = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        if (!(await learned(c, 0)).includes(routeVia2)) withdrawn++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const ping = c.pinger(a, b.ip);
    const established = (await c.nodeStatus(0)).match(/\| up /g)?.length ?? 0;
    await c.fabric.cut(c.nodes[1].ns);
    await new Promise((r) => setTimeout(r, 2000));
    await c.fabric.mend(c.nodes[1].ns);
    await waitUntil('a reaches b after the flap', () => c.ping(a, b.ip, 1), 10_000, 100);
    const p = await ping.stop();
    sampling = false;
    await sampler;
    console.log(
      `2 s link flap on node2 (hold time 90 s, no BFD): ${p.lost} of ${p.sent} pings lost, ` +
        `node1's route to node2's block withdrawn in ${withdrawn} samples`,
    );
    expect(withdrawn).toBe(0);
    expect((await c.nodeStatus(0)).match(/\| up /g)?.length ?? 0).toBe(established);
    // only the pings sent while the port was off the bridge can be lost
    expect(p.lost).toBeLessThanOrEqual(Math.ceil(2000 / 100) + 2);
  });

  test('ToR restart: the pods keep talking over the mesh, the ToR relearns every block', async () => {
    const blocks = async () =>
      (await c.tor!.ns.exec(['ip', 'route'])).split('\n').filter((l) => l.includes('/26 via'))
        .length;
    const want = await blocks();
    expect(want).toBeGreaterThanOrEqual(2);
    const ping = c.pinger(a, b.ip);
    const t0 = Date.now();
    await c.tor!.restart();
    await waitUntil(
      'the ToR has every block again',
      async () => (await blocks()) === want,
      60_000,
      100,
    );
    const ms = Date.now() - t0;
    const p = await ping.stop();
    console.log(
      `ToR (BIRD) restarted: it routes all ${want} pod blocks again ${ms} ms after; ` +
        `pings a -> b (mesh): ${p.lost} of ${p.sent} lost`,
    );
    expect(p.lost).toBe(0);
  });

  test('a CNI ADD storm during an agent restart: every pod gets a distinct address, nothing leaks', async () => {
    await c.stopAgent(2);
    const adds = Array.from({ length: 12 }, (_, i) => c.addPod(2, `storm${i}`, { app: 'storm' }));
    // the agent comes back while the ADDs are running
    await new Promise((r) => setTimeout(r, 300));
    c.startAgent(2);
    const results = await Promise.allSettled(adds);
    const pods = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.flatMap((r) =>
      r.status === 'rejected' ? [(r.reason as Error).message.split('\n')[0]] : [],
    );
    await c.ready(2);
    const ips = pods.map((p) => p.ip);
    const check = await c.ipamCheck();
    console.log(
      `12 CNI ADDs on node3 while its agent restarts: ${pods.length} pods, ${failed.length} ` +
        `ADDs failed${failed.length ? ` (${failed[0]})` : ''}; ${new Set(ips).size} distinct ` +
        `addresses; ipam check: ${check.out.trim().split('\n').pop()}`,
    );
    expect(new Set(ips).size).toBe(ips.length);
    expect(check.code).toBe(0);
    // and the pods that were added work
    for (const p of pods.slice(0, 3))
      await waitUntil(`a reaches ${p.name}`, () => c.ping(a, p.ip, 1), 20_000, 200);
    for (const p of pods) await c.deletePod(p);
    expect((await c.ipamCheck()).code).toBe(0);
  });
  test('a BGP peer sending garbage mid-session: that session resets, the others are untouched', async () => {
    await new Promise((r) => setTimeout(r, 1100)); // SINCE has a one-second resolution
    const before = await c.sessionsSince(0);
    const bad = await c.tb.netns('garbage');
    await c.fabric.attach(bad, { v4: '10.99.0.250/24' });
    bad.spawn([process.execPath, '-e', GARBAGE_PEER]);
    const ping = c.pinger(a, b.ip);
    await c.apply({
      kind: 'BGPPeer',
      metadata: { name: 'garbage' },
      spec: { node: 'node1', peerIP: '10.99.0.250', asNumber: 65099 },
    });
    const t0 = Date.now();
    // node1 saw the garbage and closed that session (twice: the peer does it again)
    await waitUntil(
      'node1 reset the session with the garbage peer twice',
      () =>
        c.nodes[0].log.filter((l) => l.includes('10.99.0.250') && l.includes('"session down"'))
          .length >= 2,
      20_000,
      100,
    );
    const resetMs = Date.now() - t0;
    const p = await ping.stop();
    const after = await c.sessionsSince(0);
    const line = c.nodes[0].log.find(
      (l) => l.includes('10.99.0.250') && l.includes('"session down"'),
    );
    console.log(
      `garbage from a BGP peer: node1 reset that session twice within ${resetMs} ms of the ` +
        `BGPPeer (${line?.slice(0, 200)}); its ${before.size} other sessions kept their SINCE; ` +
        `${p.lost} of ${p.sent} pings lost`,
    );
    for (const [peer, t] of before) expect(after.get(peer)).toBe(t);
    expect(p.lost).toBe(0);
    await c.remove('BGPPeer', 'garbage');
  });
});

/**
 * A BGP "router" that opens a session (OPEN without capabilities, KEEPALIVE) and, a second
 * into each session, sends 19 bytes of garbage instead of a message header.
 */
const GARBAGE_PEER = `
const net = require('node:net');
const header = (len, type) => { const b = Buffer.alloc(len); b.fill(0xff, 0, 16); b.writeUInt16BE(len, 16); b[18] = type; return b; };
const open = header(29, 1);
open[19] = 4; open.writeUInt16BE(65099, 20); open.writeUInt16BE(90, 22);
[10, 99, 0, 250].forEach((x, i) => (open[24 + i] = x));
net.createServer((s) => {
  s.on('error', () => undefined);
  s.on('data', () => undefined);
  s.write(open);
  s.write(header(19, 4));
  setTimeout(() => s.write(Buffer.alloc(19, 0x42)), 1000);
}).listen(179, '0.0.0.0');
`;

describeIf([...NEEDS], 'cluster: route-reflector failover with two reflectors', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.start({
      nodes: 5,
      resources: [
        {
          kind: 'BGPConfiguration',
          metadata: { name: 'default' },
          spec: { nodeToNodeMeshEnabled: false },
        },
        {
          kind: 'BGPPeer',
          metadata: { name: 'peer-with-route-reflectors' },
          spec: { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" },
        },
      ],
      // node1 and node2 reflect, in one cluster; node3, node4 and node5 are their clients
      nodeLabels: { 0: 'route-reflector=true', 1: 'route-reflector=true' },
      clusterIds: { 0: '244.0.0.1', 1: '244.0.0.1' },
    });
    await Promise.all([0, 1, 2, 3, 4].map((i) => c.ready(i)));
  }, 90_000 * SLOW);
  afterAll(() => c?.stop());

  test('a reflector killed: its clients keep every route and learn new ones from the other', async () => {
    const x = await c.addPod(2, 'x');
    const y = await c.addPod(3, 'y');
    await waitUntil('x reaches y through reflected routes', () => c.ping(x, y.ip), 20_000, 300);
    const ping = c.pinger(x, y.ip);
    await c.stopAgent(0, 'SIGKILL');
    // node5's first pod after the kill: a new block, only node2 can reflect it to node3
    const t0 = Date.now();
    const z = await c.addPod(4, 'z');
    await waitUntil(
      'x reaches z (reflected by node2 alone)',
      () => c.ping(x, z.ip, 1),
      30_000,
      100,
    );
    const newRouteMs = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 2000));
    const p = await ping.stop();
    console.log(
      `reflector node1 SIGKILLed: x -> y ${p.lost} of ${p.sent} pings lost; a new block ` +
        `(pod z on node5) reachable from node3 ${newRouteMs} ms after its ADD started`,
    );
    expect(p.lost).toBe(0);
    // node3 has node4's block and node5's, with the clients as next hops (reflected)
    const routes = await learned(c, 2);
    expect(routes).toContain(`via ${c.nodes[3].ip} `);
    expect(routes).toContain(`via ${c.nodes[4].ip} `);
  });
});
