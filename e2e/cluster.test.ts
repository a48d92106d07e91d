// End to end on the lab: real agents (tortie-node) in node namespaces on one fabric, a
// real etcd, pods wired by the real CNI plugin, a BIRD top-of-rack router.
import { Cluster, type Pod } from '@tortie/lab';
import { SLOW, describeIf, waitUntil } from '@tortie/testbed';

// the lab turns tortie-node's service proxy on (nftables)
const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft'] as const;
// the longer tests' budgets, stretched under emulation (e2e/kernel.vm.test.ts)
const SERVICES_MS = 90_000 * SLOW;
const RESTART_MS = 150_000 * SLOW;

// Under emulation this file takes many minutes and jest reports it only at its end: a
// line per finished test (streamed out of the VM) shows where a run is and what it cost.
if (SLOW > 1) {
  const t0 = Date.now();
  afterEach(() => {
    const s = Math.round((Date.now() - t0) / 1000);
    process.stdout.write(`[${s} s] done: ${expect.getState().currentTestName}\n`);
  });
}

describeIf([...NEEDS], 'cluster: BGP full mesh with a BIRD top-of-rack router', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.start({ nodes: 2, tor: true });
    // generous: e2e/kernel.vm.test.ts runs this suite under emulation too, and a loaded
    // machine starves the agents (waitUntil stretches these by SLOW there)
    await Promise.all([c.ready(0, 120_000), c.ready(1, 120_000)]);
  }, 150_000 * SLOW);
  afterAll(() => c?.stop());

  test('pods on different nodes reach each other over BGP-learned routes', async () => {
    const a = await c.addPod(0, 'a', { app: 'a' });
    const b = await c.addPod(1, 'b', { app: 'b' });
    await waitUntil('a pings b across nodes', () => c.ping(a, b.ip), 20_000, 300);
    expect(await c.ping(b, a.ip)).toBe(true);
    // node1 learned node2's block from the mesh and the ToR's default route, under proto 81
    const routes = await c.nodes[0].ns.exec(['ip', 'route', 'show', 'proto', '81']);
    expect(routes).toContain(`default via 10.99.0.1`);
    expect(routes).toMatch(
      new RegExp(`${b.ip.split('.').slice(0, 3).join('\\.')}\\.\\d+/26 via ${c.nodes[1].ip}`),
    );
    // tortiectl node status on node1: the mesh peer and the ToR, both up
    const status = await c.nodeStatus(0);
    expect(status).toMatch(new RegExp(`\\| ${c.nodes[1].ip} +\\| node-to-node mesh \\| up `));
    expect(status).toMatch(/\| 10\.99\.0\.1 +\| global +\| up /);
    // the ToR (BIRD) installed the pod blocks and reaches the pods, each block via the
    // node that owns it (third-party next hop), not via whichever node re-advertised it
    await waitUntil('ToR reaches pod b', () => c.ping(c.tor!.ns, b.ip), 10_000, 300);
    const blockVia = (pod: Pod, i: number) =>
      new RegExp(`${pod.ip.split('.').slice(0, 3).join('\\.')}\\.\\d+/26 via ${c.nodes[i].ip} `);
    // both blocks, each as its own node advertised it (they may arrive one after the other)
    const torRoutes = await waitUntil(
      "the ToR's routes to both blocks",
      async () => {
        const r = await c.tor!.ns.exec(['ip', 'route']);
        return blockVia(b, 1).test(r) && blockVia(a, 0).test(r) && r;
      },
      10_000,
      300,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${await c.tor!.ns.exec(['ip', 'route'])}`);
    });
    expect(torRoutes).toMatch(blockVia(b, 1));
    expect(torRoutes).toMatch(blockVia(a, 0));
  });

  test('a pod added through its agent talks as soon as ADD returns (policy programmed first)', async () => {
    const [a, b] = c.pods;
    // no waiting: ADD returned only after node1's agent programmed the endpoint
    const e = await c.addPod(0, 'e', { app: 'e' });
    expect(await c.ping(e, a.ip)).toBe(true); // same node: both endpoints' chains in place
    expect(await c.ping(e, b.ip)).toBe(true); // across nodes: the block route was there already
    await c.deletePod(e);
  });

  test('a NetworkPolicy takes effect on the other node within a second, and goes again', async () => {
    const [a, b] = c.pods;
    const t0 = Date.now();
    await c.apply({
      kind: 'NetworkPolicy',
      metadata: { name: 'b-only-from-nobody', namespace: 'default' },
      spec: { selector: "app == 'b'", types: ['Ingress'], ingress: [] },
    });
    await waitUntil('a is blocked from b', async () => !(await c.ping(a, b.ip)), 5_000, 100);
    expect(Date.now() - t0).toBeLessThan(5_000 * SLOW);
    expect(await c.ping(b, a.ip)).toBe(true); // egress from b is not affected
    await c.remove('NetworkPolicy', 'b-only-from-nobody', 'default');
    await waitUntil('a reaches b again', () => c.ping(a, b.ip), 5_000, 100);
  });

  test('an egress ipBlock with one except is enforced, and the node goes on programming', async () => {
    // the shape that stalled a node's whole dataplane: "-d <cidr> ! -d <except>" was one
    // iptables rule, which iptables refuses
    const [a, b] = c.pods;
    const pool = `${a.ip.split('.').slice(0, 2).join('.')}.0.0/16`;
    await c.apply({
      kind: 'NetworkPolicy',
      metadata: { name: 'a-egress-except-b', namespace: 'default' },
      spec: {
        selector: "app == 'a'",
        types: ['Egress'],
        egress: [{ action: 'Allow', destination: { nets: [pool], notNets: [`${b.ip}/32`] } }],
      },
    });
    await waitUntil('a is blocked from b', async () => !(await c.ping(a, b.ip)), 5_000, 100);
    // the rest of the pool stays reachable, and a pod added now is programmed at once
    const f = await c.addPod(1, 'f', { app: 'f' });
    expect(await c.ping(a, f.ip)).toBe(true);
    const status = await c.policyStatus(0);
    expect(status.out).toContain('Every policy is programmed.');
    expect(status.code).toBe(0);
    await c.remove('NetworkPolicy', 'a-egress-except-b', 'default');
    await waitUntil('a reaches b again', () => c.ping(a, b.ip), 5_000, 100);
    await c.deletePod(f);
  });

  test(
    'Services: cluster IP from a pod, node port and load-balancer IP from the ToR; a removed endpoint gets no new connections',
    async () => {
      const [a] = c.pods;
      const w1 = await c.addPod(0, 'w1', { app: 'w', only: 'w1' });
      const w2 = await c.addPod(1, 'w2', { app: 'w' });
      await Promise.all([c.serve(w1, 8080), c.serve(w2, 8080)]);
      await c.apply({
        kind: 'BGPConfiguration',
        metadata: { name: 'default' },
        spec: { serviceLoadBalancerIPs: [{ cidr: '198.51.100.0/24' }] },
      });
      await c.addService('w', {
        type: 'LoadBalancer',
        clusterIP: '10.96.0.10',
        selector: { app: 'w' },
        ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080 }],
      });
      // its address from the LoadBalancer pool, given by tortie-controllers
      const [lbIp] = await c.loadBalancerIps('w');
      expect(lbIp).toMatch(/^198\.51\.100\./);
      const names = (answers: string[]) => [...new Set(answers.map((x) => x.split(' ')[0]))].sort();
      const clients = (answers: string[]) => [...new Set(answers.map((x) => x.split(' ')[1]))];
      await waitUntil(
        'the cluster IP reaches both pods',
        async () => names(await c.ask(a, '10.96.0.10', 80, 20)).join() === 'w1,w2',
        20_000,
        200,
      );
      // inside the cluster the client address is kept
      expect(clients(await c.ask(a, '10.96.0.10', 80, 4))).toEqual([a.ip]);
      const tor = c.tor!.ns;
      // node2's service proxy programs on its own time: poll until its node port answers
      const viaNodePort = await waitUntil(
        "node2's node port reaches both pods",
        async () => {
          const r = await c.ask(tor, c.nodes[1].ip, 30080, 20);
          return names(r).join() === 'w1,w2' && r;
        },
        20_000,
        200,
      );
      expect(names(viaNodePort)).toEqual(['w1', 'w2']);
      expect(clients(viaNodePort)).not.toContain('10.99.0.1'); // Cluster policy: masqueraded
      await waitUntil(
        'the ToR routes the load-balancer range',
        async () => /198\.51\.100\.0\/24/.test(await tor.exec(['ip', 'route'])),
        15_000,
        200,
      );
      await waitUntil(
        'the load-balancer IP reaches both pods',
        async () => names(await c.ask(tor, lbIp, 80, 20)).join() === 'w1,w2',
        20_000,
        200,
      );
      // externalTrafficPolicy Local: the /32 comes only from the node with the endpoint
      // (node1), and the client address reaches the pod
      await c.addService('wl', {
        type: 'LoadBalancer',
        clusterIP: '10.96.0.11',
        selector: { only: 'w1' },
        externalTrafficPolicy: 'Local',
        ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30081 }],
        loadBalancerIP: '198.51.100.20', // asked for: honoured
        healthCheckNodePort: 32100,
      });
      expect(await c.loadBalancerIps('wl')).toEqual(['198.51.100.20']);
      await waitUntil(
        'the ToR has the /32',
        async () => /198\.51\.100\.20 via/.test(await tor.exec(['ip', 'route'])),
        15_000,
        200,
      );
      const host = await c.tor!.birdc('show route 198.51.100.20/32');
      expect(host).toContain(`via ${c.nodes[0].ip}`);
      expect(host).not.toContain(`via ${c.nodes[1].ip}`);
      const local = await c.ask(tor, '198.51.100.20', 80, 5);
      expect(names(local)).toEqual(['w1']);
      expect(clients(local)).toEqual(['10.99.0.1']);
      // what an outside load balancer asks each node: only node1 has a local endpoint
      const health = async (ip: string) =>
        (
          await tor.exec([
            process.execPath,
            '-e',
            `fetch('http://${ip}:32100/').then((r) => process.stdout.write(String(r.status)))`,
          ])
        ).trim();
      expect(await health(c.nodes[0].ip)).toBe('200');
      expect(await health(c.nodes[1].ip)).toBe('503');
      // w2 goes: its endpoint leaves the slice and new connections reach w1 only
      await c.deletePod(w2);
      await c.refreshEndpoints();
      await waitUntil(
        'only w1 answers',
        async () => names(await c.ask(a, '10.96.0.10', 80, 10)).join() === 'w1',
        10_000,
        200,
      );
      expect(names(await c.ask(tor, c.nodes[1].ip, 30080, 10))).toEqual(['w1']);
      await c.deletePod(w1);
      await c.refreshEndpoints();
      // no endpoint left: refused at once, as kube-proxy does
      await waitUntil(
        'refused',
        async () => (await c.ask(a, '10.96.0.10', 80, 1))[0] === 'ECONNREFUSED',
        10_000,
        200,
      );
    },
    SERVICES_MS,
  );

  test(
    'a stopped agent leaves its node dataplane working; a restarted one converges',
    async () => {
      const [a, b] = c.pods;
      const d = await c.addPod(1, 'd', { app: 'd' });
      await waitUntil('b reaches d on the same node', () => c.ping(b, d.ip), 10_000, 200);
      await waitUntil('a reaches b across nodes', () => c.ping(a, b.ip), 10_000, 200);
      // a long-lived TCP connection from a (node1) to b (node2), and pings every 200 ms
      const echo = b.ns.spawn([process.execPath, '-e', ECHO_SERVER]);
      await waitUntil('echo server', () =>
        b.ns.exec(['ss', '-ltn', 'sport = :7777']).then((o) => o.includes('7777')),
      );
      const tcp = tcpClient(a, b.ip);
      // lost pings by phase: node2's agent up, stopped, restarting
      const lost = { up: 0, stopped: 0, restarting: 0 };
      let phase: keyof typeof lost = 'up';
      let pinging = true;
      const pinger = (async () => {
        while (pinging) {
          const during = phase;
          // a dropped packet is lost whatever the deadline; SLOW only spares a late reply
          if (!(await c.ping(a, b.ip, SLOW))) lost[during]++;
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      try {
        await waitUntil('TCP echoes', () => tcp.echoed() > 0, 5_000, 100);
        await c.stopAgent(1);
        phase = 'stopped';
        // routes, rules and sets stay in node2's kernel while its agent is down, and node1
        // keeps node2's routes (BGP graceful restart: the session closed without NOTIFICATION)
        expect(await c.ping(b, d.ip)).toBe(true);
        expect(await c.nodes[1].ns.exec(['ip', 'route', 'show', 'proto', '80'])).toContain(d.ip);
        await new Promise((r) => setTimeout(r, 3_000));
        expect(await c.ping(a, b.ip)).toBe(true);
        phase = 'restarting';
        c.startAgent(1);
        await c.ready(1, 60_000);
        // until node2's restarted speaker has every peer's End-of-RIB (the second time its
        // log says so): only then may it drop the learned routes it kept from before
        const completes = () =>
          c.nodes[1].log.filter((l) => l.includes('BGP routes complete')).length;
        await waitUntil(
          'node2 relearned its BGP routes',
          async () => completes() >= 2,
          40_000,
          200,
        );
        await new Promise((r) => setTimeout(r, 2_000));
        const before = tcp.echoed();
        await waitUntil('TCP still echoing', () => tcp.echoed() > before, 5_000, 100);
        expect(tcp.failure()).toBeUndefined();
      } finally {
        pinging = false;
        await pinger;
        tcp.proc.kill();
        echo.kill();
      }
      // no ping lost at any time: node1 kept node2's routes while node2's agent was away
      // (graceful restart helper), node2 kept its learned ones until BGP relearned them
      expect(lost).toEqual({ up: 0, stopped: 0, restarting: 0 });
    },
    RESTART_MS,
  );
});

/** An echo server on port 7777, run with node inside a pod. */
const ECHO_SERVER = "require('net').createServer((s) => s.pipe(s)).listen(7777)";

/** A TCP client in `pod` writing a byte every 100 ms to `ip`:7777; counts echoed bytes. */
function tcpClient(pod: Pod, ip: string) {
  const script = `const s = require('net').connect(7777, process.argv[1]);
    let n = 0;
    s.on('data', (d) => { n += d.length; process.stdout.write(n + '\\n'); });
    s.on('error', (e) => { process.stderr.write(e.message); process.exit(1); });
    s.on('close', () => process.exit(2));
    setInterval(() => s.write('x'), 100);`;
  const proc = pod.ns.spawn([process.execPath, '-e', script, ip]);
  let echoed = 0;
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => {
    const last = d.toString().trim().split('\n').pop();
    if (last) echoed = Number(last);
  });
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return {
    proc,
    echoed: () => echoed,
    failure: () =>
      proc.exitCode !== null ? `client exited ${proc.exitCode}: ${err}` : err || undefined,
  };
}

describeIf([...NEEDS, 'tcpdump'], 'cluster: VXLAN overlay (no BGP)', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.start({
      nodes: 2,
      backend: 'vxlan',
      pool: { cidr: '10.245.0.0/16', vxlanMode: 'Always' },
    });
    // generous: e2e/kernel.vm.test.ts runs this suite under emulation too
    await Promise.all([c.ready(0, 120_000), c.ready(1, 120_000)]);
  }, 150_000 * SLOW);
  afterAll(() => c?.stop());

  test('pods on different nodes reach each other through vxlan.tortie', async () => {
    const a = await c.addPod(0, 'va');
    const b = await c.addPod(1, 'vb');
    await waitUntil('va pings vb over VXLAN', () => c.ping(a, b.ip), 20_000, 300);
    const stats = JSON.parse(
      await c.nodes[0].ns.exec(['ip', '-j', '-s', 'link', 'show', 'vxlan.tortie']),
    );
    expect(stats[0].stats64.tx.packets).toBeGreaterThan(0);
    const route = await c.nodes[0].ns.exec(['ip', 'route', 'show', 'proto', '80']);
    expect(route).toMatch(/10\.245\.\d+\.\d+\/26 via 10\.245\.\d+\.\d+ dev vxlan\.tortie onlink/);
  });

  test('only cluster nodes may send VXLAN: a forged packet from another host is dropped and counted', async () => {
    const [a, b] = c.pods;
    const node2 = c.nodes[1];
    // a host on the fabric that is no node wraps "a -> b" in VXLAN to b's node, with the
    // VNI and the VTEP MAC node2 expects
    const [vtep] = JSON.parse(
      await node2.ns.exec(['ip', '-j', 'link', 'show', 'vxlan.tortie']),
    ) as [{ address: string }];
    const evil = await c.tb.netns('evilvx');
    await c.fabric.attach(evil, { v4: '10.99.0.200/24' });
    await evil.exec([
      ...['ip', 'link', 'add', 'evil0', 'type', 'vxlan', 'id', '4096', 'dstport', '4789'],
      ...['local', '10.99.0.200', 'remote', node2.ip],
    ]);
    await evil.exec(['ip', 'link', 'set', 'evil0', 'up']);
    await evil.exec(['ip', 'addr', 'add', `${a.ip}/32`, 'dev', 'evil0']);
    await evil.exec(['ip', 'route', 'add', `${b.ip}/32`, 'dev', 'evil0', 'src', a.ip]);
    await evil.exec(['ip', 'neigh', 'replace', b.ip, 'lladdr', vtep.address, 'dev', 'evil0']);
    const dropped = async () => {
      const out = await node2.ns.exec(['iptables', '-w', '-L', 'tortie-INPUT', '-v', '-n', '-x']);
      const rule = out.split('\n').find((l) => /DROP\s+(17|udp)\s.*dpt:4789/.test(l));
      if (!rule) throw new Error(`no VXLAN drop rule in node2's tortie-INPUT:\n${out}`);
      return Number(rule.trim().split(/\s+/)[0]);
    };
    const before = await dropped();
    const seen = b.ns.spawn(['tcpdump', '-i', 'eth0', '-nn', '-l', `icmp and src ${a.ip}`]);
    let got = '';
    seen.stdout!.on('data', (d: Buffer) => (got += d.toString()));
    await new Promise((r) =>
      seen.stderr!.on('data', (d: Buffer) => /listening/.test(`${d}`) && r(0)),
    );
    await evil.exec(['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', b.ip]).catch(() => '');
    seen.kill('SIGINT');
    expect((await dropped()) - before).toBeGreaterThanOrEqual(3);
    expect(got.trim()).toBe(''); // b never saw the forged inner packet
    expect(await c.ping(a, b.ip)).toBe(true); // the nodes' own VXLAN still flows
  });

  test('etcd down: traffic flows on the last state, nothing is removed, an agent started meanwhile waits; a change made after it returns applies', async () => {
    const [a, b] = c.pods;
    const routesBefore = await c.nodes[0].ns.exec(['ip', 'route', 'show', 'proto', '80']);
    await c.etcd.kill(); // SIGKILL: the agents' watches break mid-stream
    for (let i = 0; i < 10; i++) {
      expect(await c.ping(a, b.ip)).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
    }
    // the agents kept their view: no route or rule went with the datastore
    expect(await c.nodes[0].ns.exec(['ip', 'route', 'show', 'proto', '80'])).toBe(routesBefore);
    expect(c.nodes.every((n) => n.agent && n.agent.exitCode === null)).toBe(true);
    // an agent (re)started while etcd is down waits for it, as calico-node, instead of
    // exiting; traffic still flows on what the kernel holds
    await c.stopAgent(1);
    c.startAgent(1);
    await waitUntil('node2 says it waits for the datastore', () =>
      c.nodes[1].log.some((l) => l.includes('datastore not reachable yet')),
    );
    expect(c.nodes[1].agent!.exitCode).toBeNull();
    expect(await c.ping(a, b.ip)).toBe(true);
    await c.etcd.restart(); // same data, same port
    await c.ready(1, 60_000);
    const deny = {
      kind: 'NetworkPolicy',
      metadata: { name: 'vb-from-nobody', namespace: 'default' },
      spec: {
        selector: 'projectcalico.org/orchestrator == "k8s"',
        types: ['Ingress'],
        ingress: [],
      },
    };
    // our own client reconnects too: retry the write until it goes through
    await waitUntil(
      'policy written after etcd is back',
      () =>
        c.apply(deny).then(
          () => true,
          () => false,
        ),
      20_000,
      200,
    );
    await waitUntil(
      'the agents see it: va blocked from vb',
      async () => !(await c.ping(a, b.ip, 0.3)),
      20_000,
      200,
    );
    await c.remove('NetworkPolicy', 'vb-from-nobody', 'default');
    await waitUntil('va reaches vb again', () => c.ping(a, b.ip), 20_000, 200);
  });
});

// IPIP: e2e/ipip.vmtest.ts (through e2e/kernel.vm.test.ts, in Debian's kernel under QEMU where this kernel has no ipip)

describeIf([...NEEDS], 'cluster: route reflector role of the node agent (no mesh)', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.start({
      nodes: 3,
      resources: [
        {
          kind: 'BGPConfiguration',
          metadata: { name: 'default' },
          spec: { nodeToNodeMeshEnabled: false },
        },
        // Calico's documented topology: every node peers with the reflectors
        {
          kind: 'BGPPeer',
          metadata: { name: 'peer-with-route-reflectors' },
          spec: { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" },
        },
      ],
      nodeLabels: { 0: 'route-reflector=true' },
      clusterIds: { 0: '244.0.0.1' },
    });
    await Promise.all([c.ready(0), c.ready(1), c.ready(2)]);
  }, 60_000 * SLOW);
  afterAll(() => c?.stop());

  test('node1 reflects: pods on node2 and node3 reach each other, next hop untouched', async () => {
    const x = await c.addPod(1, 'rx');
    const y = await c.addPod(2, 'ry');
    await waitUntil('rx pings ry through reflected routes', () => c.ping(x, y.ip), 20_000, 300);
    // node2 learned node3's block from node1 with node3 as next hop (reflection keeps it)
    const routes = await c.nodes[1].ns.exec(['ip', 'route', 'show', 'proto', '81']);
    expect(routes).toMatch(new RegExp(`/26 via ${c.nodes[2].ip} `));
    // node2 and node3 have no session with each other (no mesh): the only peer is node1
    expect(c.nodes[1].log.some((l) => l.includes('"peer":"10.99.0.13"'))).toBe(false);
  });
});
