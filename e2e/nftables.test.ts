// End to end on the lab with FelixConfiguration nftablesMode Enabled: real agents program
// policy in the native nftables dataplane (`inet tortie`), pods wired by the real CNI
// plugin on two nodes (BGP mesh), and NetworkPolicy enforced between them by nftables
// alone: no tortie chain in iptables, no tortie IP set. Then the mode switched back to
// Disabled and the agents restarted: the table goes, iptables takes over, policy holds.
import { createHash } from 'node:crypto';
import { Cluster, type Pod } from '@tortie/lab';
import { SLOW, describeIf, waitUntil } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'iptables', 'ipset', 'nft'] as const;

/** The host side of a pod's veth, as Calico names it. */
const iface = (p: Pod) =>
  `cali${createHash('sha1').update(`${p.namespace}.${p.name}`).digest('hex').slice(0, 11)}`;

describeIf(
  [...NEEDS],
  'cluster: policy on the native nftables dataplane (nftablesMode Enabled)',
  () => {
    let c: Cluster;
    let pods: Record<'a' | 'b' | 'c' | 'd', Pod>;
    beforeAll(async () => {
      c = await Cluster.start({ nodes: 2, tor: false, nftablesMode: 'Enabled' });
      await Promise.all([c.ready(0, 60_000 * SLOW), c.ready(1, 60_000 * SLOW)]);
    }, 120_000 * SLOW);
    afterAll(() => c?.stop());

    /** tortie's lines in a node's iptables (both backends and families) and IP sets. */
    const iptablesLeft = async (i: number) => {
      const ns = c.nodes[i].ns;
      const out: string[] = [];
      for (const bin of ['iptables', 'ip6tables'])
        for (const b of ['nft', 'legacy']) {
          // legacy only where the namespace has legacy tables (reading creates them)
          if (b === 'legacy') {
            const names = await ns.exec([
              'cat',
              `/proc/net/${bin.replace('tables', '_tables')}_names`,
            ]);
            if (!names.trim()) continue;
          }
          const save = await ns.exec([`${bin}-${b}-save`]);
          out.push(...save.split('\n').filter((l) => l.includes('tortie')));
        }
      const sets = await ns.exec(['ipset', 'list', '-n']);
      out.push(...sets.split('\n').filter((s) => s.startsWith('tortie')));
      return out;
    };
    const nftTable = (i: number) =>
      c.nodes[i].ns.exec(['nft', 'list', 'table', 'inet', 'tortie']).catch(() => '');

    /** What each pair gives now: "a>b ok", "c>b blocked" ... */
    const reach = async (pairs: Array<[keyof typeof pods, keyof typeof pods]>) =>
      (
        await Promise.all(
          pairs.map(
            async ([s, d]) => `${s}>${d} ${(await c.ping(pods[s], pods[d].ip)) ? 'ok' : 'blocked'}`,
          ),
        )
      ).join(', ');
    const PAIRS: Array<[keyof typeof pods, keyof typeof pods]> = [
      ['a', 'b'],
      ['c', 'b'],
      ['a', 'd'],
      ['c', 'd'],
      ['b', 'a'],
      ['d', 'c'],
    ];
    const POLICIES = [
      {
        // ingress on node2: b admits only a
        kind: 'NetworkPolicy',
        metadata: { name: 'b-only-from-a', namespace: 'default' },
        spec: {
          selector: "app == 'b'",
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { selector: "app == 'a'" } }],
        },
      },
      {
        // egress on node1: c may not send to d
        kind: 'NetworkPolicy',
        metadata: { name: 'c-not-to-d', namespace: 'default' },
        spec: {
          selector: "app == 'c'",
          types: ['Egress'],
          egress: [
            { action: 'Deny', destination: { selector: "app == 'd'" } },
            { action: 'Allow' },
          ],
        },
      },
    ];
    const ENFORCED = 'a>b ok, c>b blocked, a>d ok, c>d blocked, b>a ok, d>c ok';
    const OPEN = 'a>b ok, c>b ok, a>d ok, c>d ok, b>a ok, d>c ok';

    test('every agent says it chose nftables, and why', () => {
      for (const i of [0, 1])
        expect(c.aclDataplane(i)).toEqual({
          dataplane: 'nftables',
          reason: 'nftablesMode is Enabled',
        });
    });

    test('NetworkPolicy between pods on two nodes is enforced by nftables alone, and lifted', async () => {
      pods = {
        a: await c.addPod(0, 'a', { app: 'a' }),
        c: await c.addPod(0, 'c', { app: 'c' }),
        b: await c.addPod(1, 'b', { app: 'b' }),
        d: await c.addPod(1, 'd', { app: 'd' }),
      };
      await waitUntil(
        'every pair reachable',
        async () => (await reach(PAIRS)) === OPEN,
        30_000,
        300,
      );
      for (const p of POLICIES) await c.apply(p);
      await waitUntil(
        'both policies enforced',
        async () => (await reach(PAIRS)) === ENFORCED,
        15_000,
        200,
      );
      // the rules are in inet tortie on each node (b's ingress on node2, c's egress on
      // node1), and none of tortie's in iptables or ipset
      const [t1, t2] = [await nftTable(0), await nftTable(1)];
      expect(t2).toContain('b-only-from-a');
      expect(t2).toContain(iface(pods.b));
      expect(t1).toContain('c-not-to-d');
      expect(t1).toContain(iface(pods.c));
      expect(await iptablesLeft(0)).toEqual([]);
      expect(await iptablesLeft(1)).toEqual([]);
      for (const p of POLICIES) await c.remove('NetworkPolicy', p.metadata.name, 'default');
      await waitUntil(
        'every pair reachable again',
        async () => (await reach(PAIRS)) === OPEN,
        15_000,
        200,
      );
    });

    test('switched to Disabled and restarted: the inet tortie table goes, iptables enforces the policy', async () => {
      for (const p of POLICIES) await c.apply(p);
      await waitUntil(
        'enforced on nftables',
        async () => (await reach(PAIRS)) === ENFORCED,
        15_000,
        200,
      );
      await c.apply({
        kind: 'FelixConfiguration',
        metadata: { name: 'default' },
        spec: {
          defaultEndpointToHostAction: 'Accept',
          serviceProxyEnabled: true,
          nftablesMode: 'Disabled',
        },
      });
      for (const i of [0, 1]) {
        await c.stopAgent(i);
        c.startAgent(i);
      }
      await Promise.all([c.ready(0, 60_000 * SLOW), c.ready(1, 60_000 * SLOW)]);
      for (const i of [0, 1]) {
        const chosen = c.nodes[i].log.filter((l) => l.includes('ACL dataplane chosen')).pop() ?? '';
        expect(JSON.parse(chosen)).toMatchObject({
          dataplane: 'iptables',
          reason: 'nftablesMode is Disabled',
        });
      }
      await waitUntil(
        'the inet tortie tables are gone',
        async () => !(await nftTable(0)) && !(await nftTable(1)),
        15_000,
        200,
      );
      expect(await reach(PAIRS)).toBe(ENFORCED);
      expect((await iptablesLeft(1)).join('\n')).toContain('-A FORWARD');
    });
  },
);
