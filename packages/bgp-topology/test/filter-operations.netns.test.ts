// BGPFilter communities, asPathPrefix, priority and operations with real BIRD: the
// resources go through computeBgp and peerConfig into the real tortie-bgp daemon, which
// peers with an eBGP BIRD (AS 65001) and an iBGP BIRD (AS 65000). Import rules decide
// by the community, large community, AS path and LOCAL_PREF (priority) BIRD put on its
// routes, and change the ones they accept; export rules add communities and prepend AS
// numbers that BIRD then sees, and a priority BIRD sees as LOCAL_PREF on iBGP.
// prefixAdvertisements reach learned routes too (apply_communities looks at the prefix
// only): the iBGP BIRD gets the eBGP BIRD's 10.70/16 routes with 65000:44 added.
import { Bird, Testbed, describeIf, waitUntil, type StaticRoute } from '@tortie/testbed';
import { config, filter, node, peer } from './fixtures';
import { nodeAndRouters } from './netns-speaker';

const US = '10.0.0.1';
const EBGP = '10.0.0.2';
const IBGP = '10.0.0.3';
const OUR_AS = 65000;
const EBGP_AS = 65001;
const BASE = 2147483647; // LOCAL_PREF = BASE - priority (confd's BirdIntMaxValue)

const resources = [
  node('n1', `${US}/24`),
  config('default', {
    asNumber: OUR_AS,
    nodeToNodeMeshEnabled: false,
    prefixAdvertisements: [{ cidr: '10.70.0.0/16', communities: ['65000:44'] }],
  }),
  peer('tor', { peerIP: EBGP, asNumber: EBGP_AS, filters: ['from-tor', 'to-tor'] }),
  peer('rr', { peerIP: IBGP, asNumber: OUR_AS, filters: ['from-rr', 'to-rr'] }),
  filter('from-tor', {
    importV4: [
      { communities: { values: ['65001:666'] }, action: 'Reject' },
      { communities: { values: ['65001:1:2'] }, action: 'Reject' },
      { asPathPrefix: [65001, 65100], action: 'Reject' },
      {
        communities: { values: ['65001:100'] },
        action: 'Accept',
        operations: [
          { setPriority: { value: 500 } },
          { addCommunity: { value: '65000:7' } },
          { prependASPath: { prefix: [64512] } },
        ],
      },
    ],
  }),
  filter('to-tor', {
    exportV4: [
      {
        cidr: '10.90.1.0/24',
        matchOperator: 'Equal',
        action: 'Accept',
        operations: [
          { addCommunity: { value: '65000:300' } },
          { addCommunity: { value: '65000:300:400' } },
          { prependASPath: { prefix: [64999, 64998] } },
        ],
      },
    ],
  }),
  filter('from-rr', { importV4: [{ priority: 512, action: 'Reject' }] }),
  filter('to-rr', {
    exportV4: [
      {
        cidr: '10.90.0.0/24',
        matchOperator: 'Equal',
        action: 'Accept',
        operations: [{ setPriority: { value: 256 } }],
      },
    ],
  }),
];

const FROM_TOR: StaticRoute[] = [
  { prefix: '10.70.1.0/24', communities: [[65001, 666]] }, // rejected: community
  { prefix: '10.70.2.0/24', largeCommunities: [[65001, 1, 2]] }, // rejected: large community
  { prefix: '10.70.3.0/24', asPath: [65100] }, // rejected: path 65001 65100
  { prefix: '10.70.4.0/24', asPath: [65200] }, // kept unchanged
  { prefix: '10.70.5.0/24', communities: [[65001, 100]] }, // kept, changed
];
const FROM_RR: StaticRoute[] = [
  { prefix: '10.80.1.0/24', localPref: BASE - 512 }, // rejected: priority 512
  { prefix: '10.80.2.0/24', localPref: BASE - 513 }, // kept
];
const ORIGINATED = ['10.90.0.0/24', '10.90.1.0/24'];

const byAddress = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

describeIf(
  ['netns', 'bird', 'root'],
  'BGPFilter communities, AS path, priority and operations with BIRD',
  () => {
    test('import rules match and change what BIRD sends; export operations reach BIRD', async () => {
      const tb = new Testbed();
      try {
        const { routers, speaker } = await nodeAndRouters(tb, {
          me: 'n1',
          usAddr: US,
          routers: { tor: EBGP, rr: IBGP },
          resources,
          originate: ORIGINATED,
        });
        const tor = await Bird.start(tb, routers.tor, {
          routerId: EBGP,
          peers: [
            {
              name: 'tortie',
              localAs: EBGP_AS,
              neighbor: US,
              neighborAs: OUR_AS,
              families: ['ipv4'],
            },
          ],
          routes: FROM_TOR,
        });
        const rr = await Bird.start(tb, routers.rr, {
          routerId: IBGP,
          peers: [
            {
              name: 'tortie',
              localAs: OUR_AS,
              neighbor: US,
              neighborAs: OUR_AS,
              families: ['ipv4'],
            },
          ],
          routes: FROM_RR,
        });
        await tor.waitEstablished('tortie');
        await rr.waitEstablished('tortie');

        // both BIRDs exported all their routes to us
        for (const [b, rs] of [
          [tor, FROM_TOR],
          [rr, FROM_RR],
        ] as const)
          await waitUntil('BIRD exporting its routes', async () => {
            const out = await b.birdc('show route export tortie');
            return rs.every((r) => out.includes(r.prefix));
          });

        const KEPT = ['10.70.4.0/24', '10.70.5.0/24', '10.80.2.0/24'];
        await waitUntil('the accepted routes', async () => {
          const rows = await speaker.routes();
          return KEPT.every((p) => rows.some((r) => r.prefix === p));
        });
        await new Promise((r) => setTimeout(r, 1500));
        const learned = (await speaker.routes()).filter((r) => r.from !== 'local');
        expect(learned.map((r) => r.prefix).sort(byAddress)).toEqual(KEPT);
        const got = new Map(learned.map((r) => [r.prefix, r]));
        // untouched: BIRD's own path, no LOCAL_PREF from eBGP
        expect(got.get('10.70.4.0/24')).toMatchObject({ asPath: '65001 65200' });
        expect(got.get('10.70.4.0/24')?.localPref).toBeUndefined();
        // changed by the Accept rule's operations, in order
        expect(got.get('10.70.5.0/24')).toMatchObject({
          asPath: '64512 65001',
          localPref: BASE - 500,
          communities: ['65001:100', '65000:7'],
        });
        expect(got.get('10.80.2.0/24')).toMatchObject({ localPref: BASE - 513 });

        // export: the eBGP BIRD sees the communities and the path prepended before our AS
        await waitUntil('the eBGP BIRD learning our routes', async () => {
          const rows = (await tor.routes()).filter((r) => r.protocol === 'tortie');
          return ORIGINATED.every((p) => rows.some((r) => r.prefix === p));
        });
        const atTor = new Map(
          (await tor.routes()).filter((r) => r.protocol === 'tortie').map((r) => [r.prefix, r]),
        );
        expect(atTor.get('10.90.1.0/24')).toMatchObject({
          asPath: [OUR_AS, 64999, 64998],
          communities: ['65000:300'],
          largeCommunities: ['65000:300:400'],
        });
        expect(atTor.get('10.90.0.0/24')).toMatchObject({
          asPath: [OUR_AS],
          communities: [],
          largeCommunities: [],
        });
        // what tortie's priority of an eBGP-learned route rests on: BIRD gives a route from
        // eBGP (no LOCAL_PREF on the wire) its default LOCAL_PREF 100, priority 2^31-1-100
        expect(atTor.get('10.90.0.0/24')?.localPref).toBe(100);

        // the iBGP BIRD sees the priority as LOCAL_PREF on the route the rule accepted
        await waitUntil('the iBGP BIRD learning our routes', async () => {
          const rows = (await rr.routes()).filter((r) => r.protocol === 'tortie');
          return ORIGINATED.every((p) => rows.some((r) => r.prefix === p));
        });
        const atRr = new Map(
          (await rr.routes()).filter((r) => r.protocol === 'tortie').map((r) => [r.prefix, r]),
        );
        expect(atRr.get('10.90.0.0/24')?.localPref).toBe(BASE - 256);
        expect(atRr.get('10.90.1.0/24')?.localPref).not.toBe(BASE - 256);

        // learned routes passed on get this node's prefixAdvertisements after their own
        await waitUntil('the iBGP BIRD learning the eBGP routes', async () => {
          const rows = (await rr.routes()).filter((r) => r.protocol === 'tortie');
          return KEPT.slice(0, 2).every((p) => rows.some((r) => r.prefix === p));
        });
        const passedOn = new Map(
          (await rr.routes()).filter((r) => r.protocol === 'tortie').map((r) => [r.prefix, r]),
        );
        expect(passedOn.get('10.70.4.0/24')?.communities).toEqual(['65000:44']);
        expect([...(passedOn.get('10.70.5.0/24')?.communities ?? [])].sort()).toEqual([
          '65000:44',
          '65000:7',
          '65001:100',
        ]);
        expect(atRr.get('10.90.0.0/24')?.communities).toEqual([]);
      } finally {
        await tb.cleanup();
      }
    }, 120_000);
  },
);
