// The etcd backend against a real three-member etcd cluster: the leader is killed
// (SIGKILL) while a writer keeps creating resources and a Syncer watches them. The Syncer
// must see every write exactly once, never a delete, and the longest time from a write's
// acknowledgement to its event is printed (the watch gap a node agent would see).
import { EtcdCluster, Testbed, describeIf, waitUntil, type Etcd } from '@tortie/testbed';
import type { Resource } from '@tortie/api';
import { DatastoreError, EtcdDatastore, Syncer } from '../src';
import { pool, until } from './backend-suite';

describeIf(['etcd'], 'etcd backend on a 3-member cluster', () => {
  let tb: Testbed;
  let cluster: EtcdCluster;
  beforeAll(async () => {
    tb = new Testbed();
    cluster = await EtcdCluster.start(tb, 3);
  }, 90_000);
  afterAll(() => tb.cleanup());

  // the leader, then the member serving the watch (the client picks a member at random)
  test("killing the leader, then the watch's member: every write reaches the watcher once, no delete, the gap measured", async () => {
    const watcher = new EtcdDatastore(cluster.endpoints);
    const writer = new EtcdDatastore(cluster.endpoints);
    const seen = new Map<string, number>();
    const events: string[] = [];
    const syncer = new Syncer(
      watcher,
      ['IPPool'],
      (us) => {
        for (const u of us) {
          const name = u.type === 'set' ? u.resource.metadata.name : u.key.name;
          events.push(`${u.type}:${name}`);
          if (u.type === 'set' && !seen.has(name)) seen.set(name, Date.now());
        }
      },
      () => undefined,
      { retryMs: 100, maxRetryMs: 500 },
    );
    syncer.start();
    const acked = new Map<string, number>();
    const failures: string[] = [];
    /** Creates p<i>, retrying through the election; a lost answer shows as AlreadyExists. */
    const write = async (i: number) => {
      const r: Resource<'IPPool'> = pool(`p${i}`, `10.${100 + (i >> 8)}.${i & 255}.0/24`);
      for (;;) {
        try {
          await writer.create(r);
          break;
        } catch (e) {
          if (e instanceof DatastoreError && e.code === 'AlreadyExists') break;
          failures.push((e as Error).message);
          await new Promise((res) => setTimeout(res, 50));
        }
      }
      acked.set(r.metadata.name, Date.now());
    };
    let i = 0;
    /** Writes `n` resources 100 ms apart, killing `victim` before the `at`th. */
    const round = async (n: number, at: number, victim: () => Promise<Etcd>) => {
      const first = i;
      let killed: Etcd | undefined;
      let killedAt = 0;
      for (; i < first + n; i++) {
        if (i === first + at) {
          killed = await victim();
          await killed.kill();
          killedAt = Date.now();
        }
        await write(i);
        await new Promise((res) => setTimeout(res, 100));
      }
      await until('every write watched', () => seen.size === i, 30_000);
      const gaps = [...acked]
        .filter(([name]) => Number(name.slice(1)) >= first)
        .map(([name, t]) => seen.get(name)! - t)
        .sort((a, b) => a - b);
      return {
        killed: killed!,
        longest: gaps[gaps.length - 1],
        median: gaps[gaps.length >> 1],
        firstAck: acked.get(`p${first + at}`)! - killedAt,
      };
    };
    try {
      const leader = await cluster.leader();
      const r1 = await round(40, 10, async () => leader);
      const newLeader = await cluster.leader();
      console.log(
        `etcd leader ${leader.name} killed: ${newLeader.name} leads; longest write-to-watch ` +
          `gap ${r1.longest} ms, median ${r1.median} ms; the first write after the kill ` +
          `acknowledged ${r1.firstAck} ms after it; ${failures.length} attempts failed`,
      );
      expect(newLeader).not.toBe(leader);
      await leader.restart(); // back as a follower, on its data
      const watching = await waitUntil('the member serving the watch', async () => {
        for (const m of cluster.members) if ((await m.watchers().catch(() => 0)) > 0) return m;
        return undefined;
      });
      const r2 = await round(40, 10, async () => watching);
      console.log(
        `member ${watching.name} serving the watch killed: longest write-to-watch gap ` +
          `${r2.longest} ms, median ${r2.median} ms`,
      );
      const count = i;
      // exactly the writes, each once, no delete (a resync would show as deletes or repeats)
      expect(events.filter((e) => !e.startsWith('set:'))).toEqual([]);
      expect(events.length).toBe(count);
      expect(
        syncer
          .snapshot('IPPool')
          .map((r) => r.metadata.name)
          .sort(),
      ).toEqual([...acked.keys()].sort());
      await watching.restart();
      const now = await cluster.leader();
      for (const m of cluster.members)
        expect((await m.status()).leader).toBe((await now.status()).memberId);
    } finally {
      syncer.stop();
      await watcher.close();
      await writer.close();
    }
  }, 120_000);
});
