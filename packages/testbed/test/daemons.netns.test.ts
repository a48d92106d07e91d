// The daemons peering with each other in namespaces (which proves the drivers, not tortie).
import { execFileSync } from 'node:child_process';
import { Bird, Frr, GoBgp, Testbed, describeIf, link, waitUntil } from '../src';

describeIf(['netns', 'bird', 'frr', 'gobgp'], 'daemons peer with each other in namespaces', () => {
  test('BIRD <-> FRR (eBGP) and BIRD <-> GoBGP (iBGP): routes flow, withdrawals too, cleanup leaves nothing', async () => {
    const tb = new Testbed();
    let names: string[] = [];
    try {
      const b = await tb.netns('bird');
      const f = await tb.netns('frr');
      const g = await tb.netns('gobgp');
      names = [b.name, f.name, g.name];
      await link(b, f, { v4: ['10.1.0.1/24', '10.1.0.2/24'] });
      await link(b, g, { v4: ['10.2.0.1/24', '10.2.0.2/24'] });
      const bird = await Bird.start(tb, b, {
        routerId: '10.1.0.1',
        routes: [{ prefix: '10.100.0.0/24' }],
        peers: [
          {
            name: 'frr',
            localAs: 65001,
            neighbor: '10.1.0.2',
            neighborAs: 65002,
            families: ['ipv4'],
          },
          {
            name: 'gobgp',
            localAs: 65001,
            neighbor: '10.2.0.2',
            neighborAs: 65001,
            families: ['ipv4'],
          },
        ],
      });
      const frr = await Frr.start(tb, f, {
        asn: 65002,
        routerId: '10.1.0.2',
        neighbors: [{ address: '10.1.0.1', remoteAs: 65001, families: ['ipv4'] }],
      });
      const gobgp = await GoBgp.start(tb, g, {
        asn: 65001,
        routerId: '10.2.0.2',
        neighbors: [{ address: '10.2.0.1', peerAs: 65001, families: ['ipv4'] }],
      });
      await bird.waitEstablished('frr');
      await bird.waitEstablished('gobgp');
      await frr.announce('10.200.0.0/24', { communities: ['65002:9'] });
      await gobgp.announce('10.250.0.0/24');
      const fromFrr = await waitUntil('FRR route at BIRD', async () =>
        (await bird.routes()).find((r) => r.prefix === '10.200.0.0/24'),
      );
      expect(fromFrr).toMatchObject({
        asPath: [65002],
        nextHop: '10.1.0.2',
        communities: ['65002:9'],
      });
      await waitUntil('GoBGP route at BIRD', async () =>
        (await bird.routes()).find((r) => r.prefix === '10.250.0.0/24'),
      );
      const atFrr = await waitUntil('BIRD route at FRR', async () =>
        (await frr.routes()).find((r) => r.prefix === '10.100.0.0/24'),
      );
      expect(atFrr.asPath).toEqual([65001]);
      await waitUntil('BIRD route at GoBGP', async () =>
        (await gobgp.routes()).find((r) => r.prefix === '10.100.0.0/24'),
      );
      expect(await bird.routeCount()).toBe(3);
      await frr.withdraw('10.200.0.0/24');
      await waitUntil('withdrawal at BIRD', async () =>
        (await bird.routes()).every((r) => r.prefix !== '10.200.0.0/24'),
      );
    } finally {
      await tb.cleanup();
    }
    const left = execFileSync('ip', ['netns', 'list']).toString();
    for (const n of names) expect(left).not.toContain(n);
  }, 60000);
});
