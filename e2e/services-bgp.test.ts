// Services and BGPConfiguration on the lab, seen from the BIRD top-of-rack router:
// communities and prefixAdvertisements on the routes the nodes advertise (as calico-node's
// BIRD export filter adds them: confd's apply_communities), and ExternalIPs advertised
// and answered when serviceExternalIPs covers them.
import { Cluster, LB_POOL, type Pod } from '@tortie/lab';
import { SLOW, describeIf, waitUntil, type BirdRoute } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft'] as const;
const POOL = '10.244.0.0/16';
const EXTERNAL = '203.0.113.0/24';

/** What the ToR holds from the nodes, per path: "prefix via next hop: communities". */
const fromNodes = (routes: BirdRoute[]) =>
  routes
    .filter((r) => r.protocol.startsWith('node'))
    .map(
      (r) =>
        `${r.prefix} via ${r.protocol}: ${[...r.communities].sort().join(' ')} | ${[...r.largeCommunities].sort().join(' ')}`,
    )
    .sort();

describeIf([...NEEDS], 'services and BGP communities at the ToR', () => {
  let c: Cluster;
  let pods: Pod[] = [];
  beforeAll(async () => {
    c = await Cluster.start({ nodes: 2, tor: true });
    await Promise.all([c.ready(0, 60_000), c.ready(1, 60_000)]);
    pods = [
      await c.addPod(0, 'w1', { app: 'w', only: 'w1' }),
      await c.addPod(1, 'w2', { app: 'w' }),
    ];
    await Promise.all(pods.map((p) => c.serve(p, 8080)));
  }, 150_000 * SLOW);
  afterAll(() => c?.stop());

  const blockOf = (p: Pod) => {
    const [a, b, x, y] = p.ip.split('.').map(Number);
    return `${a}.${b}.${x}.${y & ~63}/26`;
  };

  test('prefixAdvertisements: BIRD sees exactly the configured communities on exactly the prefixes inside each CIDR; a change is re-advertised', async () => {
    const bird = c.tor!;
    const protocols = (await bird.protocols()).filter((p) => p.name.startsWith('node'));
    expect(protocols).toHaveLength(2);
    const [blockA, blockB] = pods.map(blockOf);
    const config = (spec: object) =>
      c.apply({
        kind: 'BGPConfiguration',
        metadata: { name: 'default' },
        spec: {
          serviceLoadBalancerIPs: [{ cidr: LB_POOL }],
          serviceExternalIPs: [{ cidr: EXTERNAL }],
          ...spec,
        },
      });
    await config({
      communities: [
        { name: 'pods', value: '65000:100' },
        { name: 'lb-large', value: '65000:200:1' },
      ],
      prefixAdvertisements: [
        { cidr: POOL, communities: ['pods'] },
        // named and literal, standard and large
        { cidr: LB_POOL, communities: ['lb-large', '65000:300', '4200000000:1:2'] },
      ],
    });
    // every path of every node-advertised prefix, the default route of BIRD's own aside
    const expected = (rows: Record<string, string>) =>
      Object.entries(rows)
        .flatMap(([prefix, attrs]) => protocols.map((p) => `${prefix} via ${p.name}: ${attrs}`))
        .sort();
    const first = expected({
      [blockA]: '65000:100 | ',
      [blockB]: '65000:100 | ',
      [LB_POOL]: '65000:300 | 4200000000:1:2 65000:200:1',
      [EXTERNAL]: ' | ', // no rule covers it: no communities
    });
    let seen: string[] = [];
    await waitUntil(
      'the ToR sees the communities',
      async () => {
        seen = fromNodes(await bird.routes());
        return JSON.stringify(seen) === JSON.stringify(first);
      },
      20_000,
      250,
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}\nexpected:\n${first.join('\n')}\nseen:\n${seen.join('\n')}\n${c.nodes[0].log
          .filter((l) => /originated|BGPConf|error/i.test(l))
          .slice(-10)
          .join('\n')}`,
      );
    });
    // as birdc prints it
    const lb = await bird.birdc(`show route ${LB_POOL} all`);
    expect(lb).toMatch(/BGP\.community: \(65000,300\)/);
    expect(lb).toMatch(/BGP\.large_community: \(4200000000, 1, 2\) \(65000, 200, 1\)/);

    // a new value for the name, the load-balancer rule gone, the external range covered
    await config({
      communities: [{ name: 'pods', value: '65000:101' }],
      prefixAdvertisements: [
        { cidr: POOL, communities: ['pods'] },
        { cidr: EXTERNAL, communities: ['65000:9:9'] },
      ],
    });
    const second = expected({
      [blockA]: '65000:101 | ',
      [blockB]: '65000:101 | ',
      [LB_POOL]: ' | ',
      [EXTERNAL]: ' | 65000:9:9',
    });
    await waitUntil(
      'the ToR sees the new communities',
      async () => {
        seen = fromNodes(await bird.routes());
        return JSON.stringify(seen) === JSON.stringify(second);
      },
      20_000,
      250,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nexpected:\n${second.join('\n')}\nseen:\n${seen.join('\n')}`);
    });
  }, 90_000);

  test('ExternalIPs: inside serviceExternalIPs the range is advertised by every node and answers from the ToR; an address outside it is not advertised', async () => {
    const bird = c.tor!;
    await c.apply({
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: {
        serviceLoadBalancerIPs: [{ cidr: LB_POOL }],
        serviceExternalIPs: [{ cidr: EXTERNAL }],
      },
    });
    await c.addService('ext', {
      type: 'ClusterIP',
      clusterIP: '10.96.0.20',
      selector: { app: 'w' },
      externalIPs: ['203.0.113.10', '192.0.2.10'],
      ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    });
    // the range, from both nodes (ECMP at the ToR); nothing for the address outside it
    await waitUntil(
      'the ToR has the external range from both nodes',
      async () => {
        const paths = (await bird.routes()).filter(
          (r) => r.prefix === EXTERNAL && r.protocol.startsWith('node'),
        );
        return paths.length === 2;
      },
      20_000,
      250,
    );
    const all = (await bird.routes()).map((r) => r.prefix);
    expect(all.some((p) => p.startsWith('192.0.2.'))).toBe(false);
    const names = (answers: string[]) => [...new Set(answers.map((x) => x.split(' ')[0]))].sort();
    await waitUntil(
      'the external IP answers from both backends',
      async () => names(await c.ask(bird.ns, '203.0.113.10', 80, 20)).join() === 'w1,w2',
      20_000,
      250,
    );
  }, 90_000);
});
