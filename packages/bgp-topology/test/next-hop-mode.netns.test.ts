// BGPPeer nextHopMode on the wire, with real BIRD peers. Node n1 (AS 65000) learns
// 10.70.0.0/24 from an eBGP router at 10.0.0.2 (next hop 10.0.0.2) and passes it on to
// four more BIRDs, one BGPPeer each:
//   self  iBGP, nextHopMode Self  -> our address (BIRD's `next hop self`)
//   auto  iBGP, no mode           -> the original next hop (iBGP keeps it)
//   keep  eBGP, nextHopMode Keep  -> the original next hop (BIRD's `next hop keep`)
//   ebgp  eBGP, nextHopMode Auto  -> our address (eBGP default)
// Ignoring the mode makes `self` see 10.0.0.2 and `keep` see 10.0.0.1.
import { Bird, Testbed, describeIf, waitUntil, type BirdBgpPeer } from '@tortie/testbed';
import { config, node, peer } from './fixtures';
import { nodeAndRouters } from './netns-speaker';

const US = '10.0.0.1';
const NODE_AS = 65000;
const ROUTERS = {
  origin: '10.0.0.2',
  self: '10.0.0.3',
  auto: '10.0.0.4',
  keep: '10.0.0.5',
  ebgp: '10.0.0.6',
};
const AS: Record<keyof typeof ROUTERS, number> = {
  origin: 65001,
  self: NODE_AS,
  auto: NODE_AS,
  keep: 65002,
  ebgp: 65003,
};
const PREFIX = '10.70.0.0/24';

describeIf(['netns', 'bird', 'root'], 'BGPPeer nextHopMode with BIRD', () => {
  test('Self rewrites the next hop to an iBGP peer, Keep passes the original to an eBGP peer, Auto is BGP’s default', async () => {
    const tb = new Testbed();
    try {
      const { routers } = await nodeAndRouters(tb, {
        me: 'n1',
        usAddr: US,
        routers: ROUTERS,
        resources: [
          node('n1', `${US}/24`),
          config('default', { asNumber: NODE_AS, nodeToNodeMeshEnabled: false }),
          peer('origin', { peerIP: ROUTERS.origin, asNumber: AS.origin }),
          peer('self', { peerIP: ROUTERS.self, asNumber: AS.self, nextHopMode: 'Self' }),
          peer('auto', { peerIP: ROUTERS.auto, asNumber: AS.auto }),
          peer('keep', { peerIP: ROUTERS.keep, asNumber: AS.keep, nextHopMode: 'Keep' }),
          peer('ebgp', { peerIP: ROUTERS.ebgp, asNumber: AS.ebgp, nextHopMode: 'Auto' }),
        ],
      });
      const birds = {} as Record<keyof typeof ROUTERS, Bird>;
      for (const name of Object.keys(ROUTERS) as Array<keyof typeof ROUTERS>) {
        const p: BirdBgpPeer = {
          name: 'tortie',
          localAs: AS[name],
          neighbor: US,
          neighborAs: NODE_AS,
          families: ['ipv4'],
        };
        birds[name] = await Bird.start(tb, routers[name], {
          routerId: ROUTERS[name],
          peers: [p],
          routes: name === 'origin' ? [{ prefix: PREFIX }] : [],
        });
      }
      for (const b of Object.values(birds)) await b.waitEstablished('tortie', 30_000);

      const nextHops: Record<string, string | undefined> = {};
      for (const name of ['self', 'auto', 'keep', 'ebgp'] as const) {
        const r = await waitUntil(`${name} learning ${PREFIX}`, async () =>
          (await birds[name].routes()).find((x) => x.prefix === PREFIX && x.protocol === 'tortie'),
        );
        nextHops[name] = r.nextHop;
      }
      expect(nextHops).toEqual({
        self: US,
        auto: ROUTERS.origin,
        keep: ROUTERS.origin,
        ebgp: US,
      });
    } finally {
      await tb.cleanup();
    }
  }, 120_000);
});
