// The testbed without root: BIRD config generation and birdc output parsing.
import { birdConfig, parseBirdProtocols, parseBirdRoutes } from '../src';

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
