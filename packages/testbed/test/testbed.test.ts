// The testbed itself: config generation and CLI-output parsing without root, and the
// daemons peering with each other in namespaces (which proves the drivers, not tortie).
import { execFileSync } from 'node:child_process';
import {
  Bird,
  Frr,
  GoBgp,
  Testbed,
  birdConfig,
  describeIf,
  link,
  parseBirdProtocols,
  parseBirdRoutes,
  waitUntil,
} from '../src';

test('BIRD config: iBGP peers are direct, originated routes carry their attributes', () => {
  const conf = birdConfig({
    routerId: '10.0.0.2',
    routes: [{ prefix: '10.1.0.0/24', communities: [[65000, 7]], med: 5 }],
    peers: [
      {
        name: 'p',
        localAs: 65000,
        neighbor: '10.0.0.1',
        neighborAs: 65000,
        families: ['ipv4'],
        passive: true,
      },
    ],
  });
  expect(conf).toContain(
    'route 10.1.0.0/24 blackhole { bgp_community.add((65000,7)); bgp_med = 5; };',
  );
  expect(conf).toMatch(/protocol bgp p \{[^}]*passive on;\s*direct;/);
});

test('birdc output parsers', () => {
  const routes = parseBirdRoutes(
    [
      'BIRD 2.0.12 ready.',
      'Table master4:',
      '10.20.0.0/24         unicast [us4 03:00:00.000] * (100) [AS65100i]',
      '\tvia 10.0.0.2 on va1',
      '\tType: BGP univ',
      '\tBGP.origin: IGP',
      '\tBGP.as_path: 65100 65200',
      '\tBGP.next_hop: 10.0.0.2',
      '\tBGP.med: 5',
      '\tBGP.local_pref: 100',
      '\tBGP.community: (65000,100) (65000,200)',
      '                     unicast [us6 03:00:01.000] (100) [AS65300i]',
      '\tBGP.as_path: 65300',
    ].join('\n'),
  );
  expect(routes).toEqual([
    expect.objectContaining({
      prefix: '10.20.0.0/24',
      protocol: 'us4',
      primary: true,
      asPath: [65100, 65200],
      nextHop: '10.0.0.2',
      med: 5,
      localPref: 100,
      communities: ['65000:100', '65000:200'],
    }),
    expect.objectContaining({
      prefix: '10.20.0.0/24',
      protocol: 'us6',
      primary: false,
      asPath: [65300],
    }),
  ]);
  expect(
    parseBirdProtocols(
      'BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\nus4        BGP        ---        up     03:00:00.000  Established   \n',
    ),
  ).toEqual([{ name: 'us4', proto: 'BGP', state: 'up', info: 'Established' }]);
});

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
