// BGPPeer reachableBy with the real agent (tortie-node) and a real BIRD two hops away.
// The node n1 (10.0.0.1/24) has no default route; BIRD (AS 65100, 10.1.0.2/24) sits on
// another segment behind the gateway namespace gw (10.0.0.254 / 10.1.0.254, forwarding).
// The BGPPeer names BIRD's address; only with reachableBy: 10.0.0.254 does the agent
// program `10.1.0.2/32 via 10.0.0.254` (confd's static route, bird_aggr.cfg.template), and
// only then can the session come up. The agent runs twice from a file datastore: first
// without reachableBy (no route, no session), then with it.
import path from 'node:path';
import { parseResource, type Resource } from '@tortie/api';
import { Bird, Fabric, Testbed, describeIf, waitUntil, type Netns } from '@tortie/testbed';
import { startFileAgent, writeDatastore, type FileAgent } from './file-agent';
const FAR = '10.1.0.2';
const GW = '10.0.0.254';

const R = (kind: string, name: string, spec: object): Resource =>
  parseResource({ apiVersion: 'projectcalico.org/v3', kind, metadata: { name }, spec });

const resources = (reachableBy?: string): Resource[] => [
  R('BGPConfiguration', 'default', { nodeToNodeMeshEnabled: false, asNumber: 64512 }),
  R('Node', 'n1', { bgp: { ipv4Address: '10.0.0.1/24' } }),
  R('BGPPeer', 'far', { peerIP: FAR, asNumber: 65100, ...(reachableBy ? { reachableBy } : {}) }),
];

describeIf(
  ['root', 'netns', 'bird', 'iptables', 'ipset'],
  'BGPPeer reachableBy: a peer two hops away, through the gateway',
  () => {
    const tb = new Testbed();
    let n1: Netns;
    let bird: Bird;
    let dir: string;

    beforeAll(async () => {
      try {
        dir = tb.tempDir('reachable-by');
        const a = await Fabric.create(tb, 'rb-a');
        const b = await Fabric.create(tb, 'rb-b');
        n1 = await tb.netns('rb-n1');
        await a.attach(n1, { v4: '10.0.0.1/24' });
        const gw = await tb.netns('rb-gw');
        await a.attach(gw, { v4: `${GW}/24`, ifName: 'eth0' });
        await b.attach(gw, { v4: '10.1.0.254/24', ifName: 'eth1' });
        await gw.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
        const far = await tb.netns('rb-far');
        await b.attach(far, { v4: `${FAR}/24` });
        await far.exec(['ip', 'route', 'add', '10.0.0.0/24', 'via', '10.1.0.254']);
        bird = await Bird.start(tb, far, {
          routerId: FAR,
          peers: [
            {
              name: 'tortie',
              localAs: 65100,
              neighbor: '10.0.0.1',
              neighborAs: 64512,
              multihop: 2,
              families: ['ipv4'],
            },
          ],
          routes: [{ prefix: '10.99.0.0/24' }],
        });
      } catch (e) {
        await tb.cleanup();
        throw e;
      }
    }, 60_000);

    afterAll(() => tb.cleanup());

    /** Runs the agent on n1 over these resources until `check` is done, then stops it. */
    async function withAgent(tag: string, rs: Resource[], check: (a: FileAgent) => Promise<void>) {
      const file = path.join(dir, `${tag}.json`);
      await writeDatastore(file, rs);
      const agent = startFileAgent(tb, n1, { name: 'n1', ip: '10.0.0.1/24', file, dir });
      try {
        await check(agent);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${agent.lastLog()}`);
      } finally {
        await agent.stop();
      }
    }

    const routeToFar = () => n1.exec(['ip', '-4', 'route', 'show', `${FAR}/32`]);

    test('without reachableBy: no route to the peer, the session never comes up', async () => {
      await withAgent('without', resources(), async (agent) => {
        await waitUntil(
          'the agent configured the peer',
          async () => (await agent.peers()).some((r) => r.address === FAR),
          60_000,
          250,
        );
        // 15 s: BIRD retries every second and the agent every 2 s; neither can connect
        const until = Date.now() + 15_000;
        while (Date.now() < until) {
          const rows = await agent.peers();
          expect(rows.find((r) => r.address === FAR)?.state).not.toBe('Established');
          expect(await routeToFar()).toBe('');
          await new Promise((r) => setTimeout(r, 500));
        }
        const [p] = (await bird.protocols()).filter((x) => x.name === 'tortie');
        expect(p.info).not.toMatch(/Established/);
      });
    }, 120_000);

    test('with reachableBy: the agent routes the peer via the gateway and the session is Established', async () => {
      await withAgent('with', resources(GW), async (agent) => {
        await waitUntil(
          'the route to the peer via the gateway',
          async () => /via 10\.0\.0\.254/.test(await routeToFar()),
          60_000,
          250,
        );
        await waitUntil(
          'the session Established at the agent',
          async () => (await agent.peers()).find((r) => r.address === FAR)?.state === 'Established',
          60_000,
          250,
        );
        await bird.waitEstablished('tortie', 30_000);
        // the agent's own route, the only way there (no default route on n1)
        expect(await routeToFar()).toMatch(/^10\.1\.0\.2 via 10\.0\.0\.254 dev eth0 proto 80/);
        expect(await n1.exec(['ip', '-4', 'route', 'show', 'default'])).toBe('');
      });
    }, 120_000);
  },
);
