// BGPPeer localASNumber with real BIRD: the node (AS 65000) presents AS 64999 to its
// peerIP peer, as calico-node's BIRD does with `local as`. BIRD is configured to expect
// 64999 from us: the session comes up, BIRD sees our routes with the path "64999", and we
// learn BIRD's. BIRD also sends a route whose path holds 64999: our loop check is
// against the AS of this session, so we drop it (and keep one whose path holds 65000).
import { Bird, Testbed, describeIf, waitUntil } from '@tortie/testbed';
import { config, node, peer } from './fixtures';
import { nodeAndRouter } from './netns-speaker';

const US = '10.0.0.1';
const BIRD = '10.0.0.2';
const NODE_AS = 65000;
const LOCAL_AS = 64999;
const BIRD_AS = 65001;

describeIf(['netns', 'bird', 'root'], 'BGPPeer localASNumber with BIRD', () => {
  test('the session runs in the local AS: BIRD expects it, sees it in our paths, and we loop-check against it', async () => {
    const tb = new Testbed();
    try {
      const { them, speaker } = await nodeAndRouter(tb, {
        me: 'n1',
        usAddr: US,
        themAddr: BIRD,
        resources: [
          node('n1', `${US}/24`),
          config('default', { asNumber: NODE_AS, nodeToNodeMeshEnabled: false }),
          peer('tor', { peerIP: BIRD, asNumber: BIRD_AS, localASNumber: LOCAL_AS }),
        ],
        originate: ['10.90.0.0/24'],
      });
      // BIRD prepends the paths it sends with its own AS only (prepending more takes a
      // filter): a static route's path is given in its config text below
      const bird = await Bird.start(tb, them, {
        text: `log stderr all;
router id ${BIRD};
protocol device {}
protocol static {
  ipv4;
  route 10.60.0.0/24 blackhole;
  route 10.61.0.0/24 blackhole { bgp_path.prepend(${LOCAL_AS}); };
  route 10.62.0.0/24 blackhole { bgp_path.prepend(${NODE_AS}); };
}
protocol bgp tortie {
  local ${BIRD} as ${BIRD_AS};
  neighbor ${US} as ${LOCAL_AS};
  hold time 9; keepalive time 3;
  connect retry time 1; connect delay time 0; error wait time 1, 2;
  ipv4 { import all; export all; };
}
`,
      });
      await bird.waitEstablished('tortie');
      expect((await speaker.peers())[0]).toMatchObject({ asn: BIRD_AS, state: 'Established' });

      await waitUntil('BIRD learning our route', async () =>
        (await bird.routes()).find((r) => r.prefix === '10.90.0.0/24'),
      );
      const ours = (await bird.routes()).find((r) => r.prefix === '10.90.0.0/24')!;
      expect(ours.asPath).toEqual([LOCAL_AS]);

      await waitUntil('our learning the routes of BIRD', async () =>
        (await speaker.routes()).some((r) => r.prefix === '10.62.0.0/24'),
      );
      await new Promise((r) => setTimeout(r, 1000)); // the three came in one burst
      const learned = (await speaker.routes()).filter((r) => r.from === BIRD);
      expect(learned.map((r) => [r.prefix, r.asPath]).sort()).toEqual([
        ['10.60.0.0/24', `${BIRD_AS}`],
        ['10.62.0.0/24', `${BIRD_AS} ${NODE_AS}`],
      ]);
    } finally {
      await tb.cleanup();
    }
  }, 90_000);
});
