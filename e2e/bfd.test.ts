// BFD end to end on the lab: three real agents and a BIRD ToR, every BGP session under a
// BFD session at 100 ms x 3 (BGPConfiguration default's bfd; BIRD's bfd protocol on the
// ToR). A node's switch port stops forwarding (its link keeps carrier, so only BFD can
// tell) and its peers must withdraw its routes within the detect time, not after the
// hold time; back on the switch, its pods are reachable again.
import { Cluster, type Pod } from '@tortie/lab';
import { SLOW, describeIf, waitUntil } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft'] as const;
const BFD = { minTxMs: 100, minRxMs: 100, multiplier: 3 };

/** The rows of node i's BFD table in `tortiectl node status`, by peer address. */
async function bfdRows(c: Cluster, i: number): Promise<Map<string, string[]>> {
  const out = await c.nodeStatus(i);
  const at = out.indexOf('BFD status');
  const rows = new Map<string, string[]>();
  if (at < 0) return rows;
  for (const line of out.slice(at).split('\n')) {
    const cells = line.split('|').map((x) => x.trim());
    if (cells.length > 2 && /^\d/.test(cells[1])) rows.set(cells[1], cells.slice(2, -1));
  }
  return rows;
}

describeIf([...NEEDS], 'cluster: BFD under the mesh and the ToR sessions', () => {
  let c: Cluster;
  let a: Pod;
  let z: Pod;
  beforeAll(async () => {
    c = await Cluster.start({ nodes: 3, tor: true, bfd: BFD });
    await Promise.all([c.ready(0), c.ready(1), c.ready(2)]);
    a = await c.addPod(0, 'a', { app: 'a' });
    z = await c.addPod(2, 'z', { app: 'z' });
    await waitUntil('a reaches z', () => c.ping(a, z.ip), 20_000, 200);
  }, 90_000 * SLOW);
  afterAll(() => c?.stop());

  test('tortiectl node status shows a BFD session Up at 100 ms under each BGP session', async () => {
    const rows = await waitUntil('BFD Up with the ToR and both mesh peers', async () => {
      const r = await bfdRows(c, 0);
      const up = ['10.99.0.1', c.nodes[1].ip, c.nodes[2].ip].every((p) => r.get(p)?.[0] === 'up');
      return up ? r : undefined;
    });
    // STATE, SINCE, TX, DETECT, UPS, DIAG
    expect(rows.get(c.nodes[2].ip)).toEqual([
      'up',
      expect.any(String),
      '100 ms',
      '300 ms',
      '1',
      '',
    ]);
    // the ToR's side, in BIRD: its sessions with the three nodes are Up
    const bird = await c.tor!.bfdSessions();
    expect(bird.filter((s) => s.state === 'Up').map((s) => s.address)).toEqual(
      expect.arrayContaining(c.nodes.map((n) => n.ip)),
    );
  });

  test('a node cut off the switch: the ToR and the other nodes withdraw its routes within the detect time', async () => {
    const m = await c.cutLink(2);
    console.log(
      `node3 cut off (BFD 100 ms x 3; hold times: ToR 9 s, mesh 90 s): ` +
        `the ToR withdrew its routes after ${m.torMs} ms, node1 after ${m.nodeMs} ms`,
    );
    // a loaded machine gets ten times the 300 ms detect time; a hold timer would take 9 s
    // (ToR) or 90 s (mesh)
    expect(m.torMs).toBeLessThan(3000);
    expect(m.nodeMs).toBeLessThan(3000);
    const rows = await bfdRows(c, 0);
    expect(rows.get(c.nodes[2].ip)?.[0]).toBe('down');
    expect(rows.get(c.nodes[2].ip)?.[5]).toBe('ControlDetectionTimeExpired');
    // node3 on its side lost the others the same way
    await waitUntil(
      'node3 withdrew the routes via node1',
      async () =>
        !(await c.nodes[2].ns.exec(['ip', 'route', 'show', 'proto', '81'])).includes(
          `via ${c.nodes[0].ip} `,
        ),
      3000,
      20,
    );

    await c.mendLink(2);
    await waitUntil('a reaches z again', () => c.ping(a, z.ip), 30_000, 200);
    const back = await waitUntil('BFD Up again', async () => {
      const r = await bfdRows(c, 0);
      return r.get(c.nodes[2].ip)?.[0] === 'up' ? r : undefined;
    });
    expect(back.get(c.nodes[2].ip)?.[4]).toBe('2'); // Up twice: before and after the cut
  });

  test('BFD settings change under live sessions: re-timed, or off for one BGPPeer, no BGP session reset', async () => {
    // SINCE has a one-second resolution: let a fresh session age past it first
    await new Promise((r) => setTimeout(r, 1100));
    const before = await c.sessionsSince(0);
    expect(before.size).toBe(3);
    await c.apply({
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: {
        serviceLoadBalancerIPs: [{ cidr: '198.51.100.0/24' }],
        bfd: { minTxInterval: '200ms', minRxInterval: '100ms', multiplier: 3 },
      },
    });
    // our TX 200 ms (the peers take 100 ms); the peers' detect time for us grows to 600 ms
    await waitUntil('node1 sends every 200 ms to every peer', async () => {
      const r = await bfdRows(c, 0);
      return r.size === 3 && [...r.values()].every((x) => x[0] === 'up' && x[2] === '200 ms');
    });
    await c.apply({
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: '10.99.0.1', asNumber: 65001, bfd: { enabled: false } },
    });
    const rows = await waitUntil('no BFD under the ToR session', async () => {
      const r = await bfdRows(c, 0);
      return !r.has('10.99.0.1') && r.size === 2 ? r : undefined;
    });
    expect([...rows.keys()].sort()).toEqual([c.nodes[1].ip, c.nodes[2].ip].sort());
    // the mesh sessions were never reset by either change
    const after = await c.sessionsSince(0);
    expect(after.get(c.nodes[1].ip)).toBe(before.get(c.nodes[1].ip));
    expect(after.get(c.nodes[2].ip)).toBe(before.get(c.nodes[2].ip));
  });
});
