// BGPPeer sourceAddress on the wire, with real BIRD peers that only take a connection
// from the address they expect (passive, so only our connection can bring a session up).
// Our namespace has two addresses on the switch: 10.0.0.1 (primary: the kernel's choice
// of source) and 10.0.0.11, the node's address in its Node resource.
//   node  sourceAddress unset (UseNodeIP): BIRD expects 10.0.0.11, the node IP
//   none  sourceAddress None:              BIRD expects 10.0.0.1, the kernel's choice
// Without binding, `node` never comes up; binding `none` too, `none` never does.
import { Bird, Testbed, describeIf, waitUntil } from '@tortie/testbed';
import { config, node, peer } from './fixtures';
import { nodeAndRouters } from './netns-speaker';

const PRIMARY = '10.0.0.1';
const NODE_IP = '10.0.0.11';
const ROUTERS = { node: '10.0.0.2', none: '10.0.0.3' };

describeIf(['netns', 'bird', 'root'], 'BGPPeer sourceAddress with BIRD', () => {
  test('UseNodeIP (the default) connects from the node IP, None from the address the kernel picks', async () => {
    const tb = new Testbed();
    try {
      const { routers, us, speaker } = await nodeAndRouters(tb, {
        me: 'n1',
        usAddr: [PRIMARY, NODE_IP],
        routers: ROUTERS,
        resources: [
          node('n1', `${NODE_IP}/24`),
          config('default', { asNumber: 65000, nodeToNodeMeshEnabled: false }),
          peer('node', { peerIP: ROUTERS.node, asNumber: 65001 }),
          peer('none', { peerIP: ROUTERS.none, asNumber: 65002, sourceAddress: 'None' }),
        ],
        originate: ['10.90.0.0/24'],
      });
      const expects = { node: NODE_IP, none: PRIMARY };
      const birds = {} as Record<keyof typeof ROUTERS, Bird>;
      for (const [name, asn] of [
        ['node', 65001],
        ['none', 65002],
      ] as const) {
        birds[name] = await Bird.start(tb, routers[name], {
          routerId: ROUTERS[name],
          peers: [
            {
              name: 'tortie',
              localAs: asn,
              neighbor: expects[name],
              neighborAs: 65000,
              passive: true,
              families: ['ipv4'],
            },
          ],
        });
      }
      await birds.node.waitEstablished('tortie', 30_000);
      await birds.none.waitEstablished('tortie', 30_000);
      // the connections as the kernel has them: each from the address its BIRD expects
      const ss = await us.exec(['ss', '-Htn', 'state', 'established']);
      expect(ss).toMatch(new RegExp(`${NODE_IP.replace(/\./g, '\\.')}:\\d+\\s+10\\.0\\.0\\.2:179`));
      expect(ss).toMatch(new RegExp(`10\\.0\\.0\\.1:\\d+\\s+10\\.0\\.0\\.3:179`));
      // and routes flow over both
      for (const b of Object.values(birds))
        await waitUntil('BIRD learning our route', async () =>
          (await b.routes()).some((r) => r.prefix === '10.90.0.0/24'),
        );
      expect((await speaker.peers()).map((p) => p.state)).toEqual(['Established', 'Established']);
    } finally {
      await tb.cleanup();
    }
  }, 120_000);
});
