// BGP passwords end to end on the lab: two real agents and a BIRD ToR, the mesh keyed by
// BGPConfiguration nodeMeshPassword and the ToR session by its BGPPeer's password, both
// Secret references that each agent reads from its own mount (TORTIE_SECRETS_DIR). The
// segments on the wire carry the TCP-MD5 option; a node given another key loses its mesh
// session, and gets it back with the right one.
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, LAB_BGP_SECRET } from '@tortie/lab';
import { SLOW, describeIf, waitUntil } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft', 'tcpdump'] as const;
const KEY = 'lab-md5-key';

describeIf([...NEEDS], 'cluster: TCP-MD5 on the mesh and the ToR sessions', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.start({ nodes: 2, tor: true, bgpPassword: KEY });
    await Promise.all([c.ready(0, 60_000 * SLOW), c.ready(1, 60_000 * SLOW)]);
  }, 90_000 * SLOW);
  afterAll(() => c?.stop());

  const meshUp = async (i: number, peer: number) =>
    (await c.sessionsSince(i)).has(c.nodes[peer].ip);

  test(
    'the mesh and the ToR sessions come up, signed: BGP segments carry the MD5 option',
    async () => {
      await waitUntil('node1 and node2 mesh, both with the ToR', async () => {
        const s = await c.sessionsSince(0);
        const torUp = await Promise.all(
          ['node1', 'node2'].map(
            async (p) => (await c.tor!.protocol(p))?.info.startsWith('Established') ?? false,
          ),
        );
        return s.has(c.nodes[1].ip) && torUp.every(Boolean);
      });
      // BGP messages between node1 and the others, as tcpdump decodes their TCP options
      const out = await c.nodes[0].ns.exec(
        ['tcpdump', '-i', 'any', '-nn', '-v', '-c', '4', 'tcp port 179 and tcp[13] & 8 != 0'],
        { timeoutMs: 30_000 },
      );
      const segments = out.split('\n').filter((l) => l.includes('.179'));
      expect(segments.length).toBeGreaterThanOrEqual(1);
      for (const l of segments) expect(l).toMatch(/md5/);
    },
    60_000 * SLOW,
  );

  test(
    'node2 given another key: its mesh session goes and stays down; back with the right key',
    async () => {
      const meshKey = path.join(c.nodes[1].secretsDir, LAB_BGP_SECRET, 'mesh');
      fs.writeFileSync(meshKey, 'not-the-key');
      // the agent reads its Secrets again every 10 s and re-creates the keyed sessions
      await waitUntil(
        'node1 lost its session with node2',
        async () => !(await meshUp(0, 1)),
        30_000,
      );
      for (let t = 0; t < 8; t++) {
        await new Promise((r) => setTimeout(r, 1000));
        expect(await meshUp(0, 1)).toBe(false);
      }
      // the ToR's key did not change: node2 keeps that session
      expect((await c.tor!.protocol('node2'))?.info).toMatch(/^Established/);
      fs.writeFileSync(meshKey, KEY);
      await waitUntil('the mesh session is back', () => meshUp(0, 1), 30_000);
    },
    90_000 * SLOW,
  );
});
