// BGPFilter import and export rules with real BIRD: the resources go through
// computeBgp and peerConfig into the real tortie-bgp daemon in one namespace, peering
// with BIRD in another. BIRD announces six routes; tortie keeps exactly those the
// import rules let through (BIRD exported all six). tortie originates four; BIRD learns
// exactly those the export rules let through.
import { Bird, Testbed, describeIf, waitUntil } from '@tortie/testbed';
import { config, filter, node, peer } from './fixtures';
import { nodeAndRouter } from './netns-speaker';

const US = '10.0.0.1';
const BIRD = '10.0.0.2';
const OUR_AS = 65000;
const BIRD_AS = 65001;

const resources = [
  node('n1', `${US}/24`),
  config('default', {
    asNumber: OUR_AS,
    nodeToNodeMeshEnabled: false,
    prefixAdvertisements: [
      { cidr: '10.90.0.0/16', communities: ['65000:100', '65000:1:2'] },
      { cidr: '10.91.0.0/24', communities: ['65000:200'] },
    ],
  }),
  peer('tor', { peerIP: BIRD, asNumber: BIRD_AS, filters: ['tor-in', 'tor-out'] }),
  filter('tor-in', {
    importV4: [
      // /24 to /32 inside 10.60/16 rejected; the /16 itself is not in {24,32}
      {
        cidr: '10.60.0.0/16',
        matchOperator: 'In',
        prefixLength: { min: 24, max: 32 },
        action: 'Reject',
      },
      { cidr: '10.61.0.0/24', matchOperator: 'Equal', action: 'Accept' },
      { cidr: '10.61.0.0/16', matchOperator: 'In', action: 'Reject' },
      // the session's interface is known: '*' matches it, another name does not
      { cidr: '10.63.0.0/16', matchOperator: 'In', interface: '*', action: 'Reject' },
      { cidr: '10.64.0.0/16', matchOperator: 'In', interface: 'nosuch0', action: 'Reject' },
    ],
  }),
  filter('tor-out', {
    exportV4: [
      // 10.90.0.0/24 gets 65000:100 only after the rules: this one does not match it
      { communities: { values: ['65000:100'] }, action: 'Reject' },
      // accepted here: calico_export_to_bgp_peers() is not reached, no 65000:200
      { cidr: '10.91.0.0/24', matchOperator: 'Equal', action: 'Accept' },
      { cidr: '10.90.1.0/24', matchOperator: 'Equal', action: 'Reject' },
      { cidr: '10.80.0.0/12', matchOperator: 'NotIn', action: 'Reject' },
    ],
  }),
];
const FROM_BIRD = [
  '10.60.0.0/16',
  '10.60.1.0/24',
  '10.61.0.0/24',
  '10.61.5.0/24',
  '10.63.0.0/24',
  '10.64.0.0/24',
];
const KEPT = ['10.60.0.0/16', '10.61.0.0/24', '10.64.0.0/24'];
const ORIGINATED = ['10.90.0.0/24', '10.90.1.0/24', '10.91.0.0/24', '10.100.0.0/24'];
const SENT = ['10.90.0.0/24', '10.91.0.0/24'];

const byAddress = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

describeIf(['netns', 'bird', 'root'], 'BGPFilter import and export with BIRD', () => {
  test('tortie keeps the routes its import rules accept, and BIRD gets those its export rules accept', async () => {
    const tb = new Testbed();
    try {
      const { them, bgp, speaker } = await nodeAndRouter(tb, {
        me: 'n1',
        usAddr: US,
        themAddr: BIRD,
        resources,
        originate: ORIGINATED,
      });
      expect(bgp.peers).toHaveLength(1);
      const bird = await Bird.start(tb, them, {
        routerId: BIRD,
        peers: [
          {
            name: 'tortie',
            localAs: BIRD_AS,
            neighbor: US,
            neighborAs: OUR_AS,
            families: ['ipv4'],
          },
        ],
        routes: FROM_BIRD.map((prefix) => ({ prefix })),
      });
      await bird.waitEstablished('tortie');

      // BIRD's side of import: it exported all six to us
      await waitUntil('BIRD exporting its six routes', async () => {
        const out = await bird.birdc('show route export tortie');
        return FROM_BIRD.every((p) => out.includes(p));
      });
      // ours: only what the import rules accept (the rest came in the same UPDATEs)
      await waitUntil('the accepted routes', async () => {
        const rows = await speaker.routes();
        return KEPT.every((p) => rows.some((r) => r.prefix === p));
      });
      await new Promise((r) => setTimeout(r, 1500));
      const learned = (await speaker.routes()).filter((r) => r.from !== 'local');
      expect(learned.map((r) => r.prefix).sort(byAddress)).toEqual(KEPT);
      expect((await speaker.peers())[0].prefixesReceived).toBe(KEPT.length);

      // export: BIRD learns only what the export rules accept
      await waitUntil('BIRD learning our routes', async () => {
        const got = (await bird.routes()).filter((r) => r.protocol === 'tortie');
        return SENT.every((p) => got.some((r) => r.prefix === p));
      });
      await new Promise((r) => setTimeout(r, 1500));
      const fromUs = (await bird.routes()).filter((r) => r.protocol === 'tortie');
      expect(fromUs.map((r) => r.prefix).sort(byAddress)).toEqual(SENT);
      // prefixAdvertisements: added after the rules, and only when no rule decided
      const atBird = new Map(fromUs.map((r) => [r.prefix, r]));
      expect(atBird.get('10.90.0.0/24')).toMatchObject({
        communities: ['65000:100'],
        largeCommunities: ['65000:1:2'],
      });
      expect(atBird.get('10.91.0.0/24')).toMatchObject({ communities: [], largeCommunities: [] });
      // while tortie has all four of its own
      const local = (await speaker.routes()).filter((r) => r.from === 'local');
      expect(local.map((r) => r.prefix).sort(byAddress)).toEqual([...ORIGINATED].sort(byAddress));
      // the communities are the session's: the routes themselves carry none
      expect(local.filter((r) => r.communities?.length || r.largeCommunities?.length)).toEqual([]);
    } finally {
      await tb.cleanup();
    }
  }, 90_000);
});
