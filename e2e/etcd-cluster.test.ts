// The lab on a three-member etcd: the agents and the CNI get every endpoint. The etcd
// leader is killed, then the whole etcd is down for 30 s, while a writer keeps changing
// a GlobalNetworkSet that a policy uses and pods ping each other. Each case prints how
// long the agent took to see each change (the watch gap) and asserts that nothing was
// lost: every change reaches the node's ipset, the set's other member never goes (no
// spurious delete), and no ping between the pods is lost (the dataplane stays).
import { Cluster, type Pod } from '@tortie/lab';
import { SLOW, describeIf, waitUntil } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'iptables', 'ipset', 'nft'] as const;
const STABLE = '198.51.100.1';
const probeIp = (k: number) => `192.0.2.${k}`;

describeIf(
  [...NEEDS],
  'cluster: agents on a 3-member etcd through a leader kill and an outage',
  () => {
    let c: Cluster;
    let a: Pod;
    let b: Pod;
    /** What node1's ipsets hold, sampled: when each probe address first showed, and losses. */
    const firstSeen = new Map<number, number>();
    let stableLost = 0;
    let sampling = true;
    let sampler: Promise<void>;

    /** The probe set now holds the stable address and probe k. */
    const setProbe = (k: number) =>
      c.apply({
        kind: 'GlobalNetworkSet',
        metadata: { name: 'probe', labels: { 'probe-set': 'yes' } },
        // each change adds one: an agent that coalesces changes still shows every probe
        spec: {
          nets: [`${STABLE}/32`, ...Array.from({ length: k + 1 }, (_, i) => `${probeIp(i)}/32`)],
        },
      });
    const lostSamples: string[] = [];
    let armed = false;

    /** Writes probes from..to 200 ms apart (retrying through outages), returning when each was acknowledged. */
    async function writeProbes(from: number, to: number, before?: (k: number) => Promise<void>) {
      const acked = new Map<number, number>();
      for (let k = from; k <= to; k++) {
        await before?.(k);
        await waitUntil(`probe ${k} written`, () => setProbe(k).then(() => true), 120_000, 100);
        acked.set(k, Date.now());
        await new Promise((r) => setTimeout(r, 200));
      }
      await waitUntil(`node1 saw probe ${to}`, () => firstSeen.has(to), 60_000, 50);
      const gaps = [...acked].map(([k, t]) => (firstSeen.get(k) ?? Infinity) - t);
      return {
        acked,
        longest: Math.max(...gaps),
        missed: [...acked.keys()].filter((k) => !firstSeen.has(k)),
      };
    }

    beforeAll(async () => {
      c = await Cluster.start({ nodes: 2, etcdMembers: 3 });
      await Promise.all([c.ready(0), c.ready(1)]);
      a = await c.addPod(0, 'a', { app: 'a' });
      b = await c.addPod(1, 'b', { app: 'b' });
      await c.apply({
        kind: 'GlobalNetworkPolicy',
        metadata: { name: 'uses-probe-set' },
        spec: {
          selector: "app == 'a'",
          types: ['Ingress'],
          ingress: [
            { action: 'Deny', source: { selector: "probe-set == 'yes'" } },
            { action: 'Allow' },
          ],
        },
      });
      await setProbe(0);
      await waitUntil('a reaches b', () => c.ping(a, b.ip), 20_000, 200);
      sampler = (async () => {
        while (sampling) {
          const out = await c.nodes[0].ns.exec(['ipset', 'list']).catch(() => '');
          const now = Date.now();
          // counted once node1 first had it (before, the policy's set is rightly empty)
          if (out.includes(STABLE)) armed = true;
          else if (out && armed) {
            stableLost++;
            lostSamples.push(out);
          }
          for (const m of out.matchAll(/^192\.0\.2\.(\d+)$/gm))
            if (!firstSeen.has(Number(m[1]))) firstSeen.set(Number(m[1]), now);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await waitUntil('node1 programs the probe set', () => firstSeen.has(0), 20_000, 50);
    }, 120_000 * SLOW);
    afterAll(async () => {
      sampling = false;
      await sampler;
      await c?.stop();
    });

    test('the etcd leader killed: the agents keep syncing, nothing lost', async () => {
      // each member in its own namespace on the fabric; the agents dial them there
      expect(c.etcdCluster!.members.every((m) => m.ns !== undefined)).toBe(true);
      expect(c.nodeEtcdEndpoints()).toBe(
        'http://10.99.0.201:2379,http://10.99.0.202:2379,http://10.99.0.203:2379',
      );
      const leader = await c.etcdCluster!.leader();
      const ping = c.pinger(a, b.ip, 200);
      const r = await writeProbes(1, 40, async (k) => {
        if (k === 10) await leader.kill();
      });
      const p = await ping.stop();
      const next = await c.etcdCluster!.leader();
      console.log(
        `etcd leader ${leader.name} killed (${next.name} leads now): 40 changes, longest ` +
          `change-to-node1-ipset gap ${r.longest} ms; pings a -> b: ${p.lost} of ${p.sent} lost`,
      );
      expect(r.missed).toEqual([]);
      if (stableLost) console.log(lostSamples.join('\n----\n'));
      expect(stableLost).toBe(0);
      expect(p.lost).toBe(0);
      await leader.restart();
    });

    test(
      'the whole etcd down for 30 s: the dataplane stays, changes after it arrive, nothing deleted',
      async () => {
        const ping = c.pinger(a, b.ip, 200);
        await c.etcdCluster!.stop();
        const downAt = Date.now();
        await new Promise((r) => setTimeout(r, 30_000));
        await c.etcdCluster!.start();
        const upAt = Date.now();
        const r = await writeProbes(41, 45);
        const p = await ping.stop();
        const seen41 = firstSeen.get(41)! - upAt;
        console.log(
          `etcd down for ${upAt - downAt} ms: pings a -> b ${p.lost} of ${p.sent} lost; the first ` +
            `change after etcd came back reached node1's ipset ${seen41} ms after the restart ` +
            `(longest gap from a change's acknowledgement ${r.longest} ms)`,
        );
        expect(r.missed).toEqual([]);
        if (stableLost) console.log(lostSamples.join('\n----\n'));
        expect(stableLost).toBe(0);
        expect(p.lost).toBe(0);
      },
      180_000 * SLOW,
    );
  },
);
