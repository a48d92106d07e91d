// Dual stack end to end on the lab: two real agents with IPv4 and IPv6 addresses, an
// IPv6 pool beside the IPv4 one, pods with an address of each family from tortie-cni,
// the mesh over IPv4 and over IPv6 (as calico-node's bird and bird6), and a BIRD ToR
// with a session of each family per node. Pods reach each other across nodes over both
// families, the ToR learns the IPv6 blocks, and a NetworkPolicy holds on both.
import { Cluster, POOL6, type Pod } from '@tortie/lab';
import { SLOW, describeIf, waitUntil } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft'] as const;

describeIf([...NEEDS], 'cluster: dual stack (IPv4 and IPv6 pools, BGP over both)', () => {
  let c: Cluster;
  let a: Pod;
  let b: Pod;
  beforeAll(async () => {
    c = await Cluster.start({ nodes: 2, tor: true, ipv6: true });
    await Promise.all([c.ready(0), c.ready(1)]);
    a = await c.addPod(0, 'a', { app: 'a' });
    b = await c.addPod(1, 'b', { app: 'b' });
  }, 90_000 * SLOW);
  afterAll(() => c?.stop());

  test('pods get an address of each family and reach each other across nodes over both', async () => {
    expect(a.ip6).toMatch(/^fd00:10:244:/);
    expect(b.ip6).toMatch(/^fd00:10:244:/);
    await waitUntil('a reaches b over IPv4', () => c.ping(a, b.ip), 30_000, 200);
    await waitUntil('a reaches b over IPv6', () => c.ping(a, b.ip6!), 30_000, 200);
    // node1 routes b's IPv6 block over BGP (learned from node2, protocol 81)
    const learned = await c.nodes[0].ns.exec(['ip', '-6', 'route', 'show', 'proto', '81']);
    expect(learned).toMatch(new RegExp(`^fd00:10:244:\\S+/122 via ${c.nodeIp6(1)} `, 'm'));
  });

  test('the mesh runs over IPv6 too, and the ToR learns the IPv6 blocks', async () => {
    const status = await c.nodeStatus(0);
    const v6 = status.slice(status.indexOf('IPv6 BGP status'));
    expect(v6).toMatch(new RegExp(`${c.nodeIp6(1).replace(/:/g, ':')}\\s*\\|.*\\|\\s*up\\s*\\|`));
    await waitUntil('the ToR has an IPv6 block from each node', async () => {
      const routes = await c.tor!.routes('ipv6');
      const inPool = routes.filter((r) => r.prefix.startsWith(POOL6.split('::')[0]));
      const from = new Set(inPool.map((r) => r.protocol));
      return from.has('node1v6') && from.has('node2v6');
    });
  });

  test('a NetworkPolicy holds on both families', async () => {
    await c.apply({
      kind: 'NetworkPolicy',
      metadata: { name: 'b-from-nobody', namespace: 'default' },
      spec: { selector: "app == 'b'", types: ['Ingress'], ingress: [] },
    });
    await waitUntil('IPv4 blocked', async () => !(await c.ping(a, b.ip, 0.3)), 15_000, 100);
    await waitUntil('IPv6 blocked', async () => !(await c.ping(a, b.ip6!, 0.3)), 15_000, 100);
    await c.remove('NetworkPolicy', 'b-from-nobody', 'default');
    await waitUntil('IPv4 back', () => c.ping(a, b.ip), 15_000, 100);
    await waitUntil('IPv6 back', () => c.ping(a, b.ip6!), 15_000, 100);
  });
});
