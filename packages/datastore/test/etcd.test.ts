// The etcd backend against a real etcd (Debian's etcd-server) on a loopback port.
import { Etcd, Testbed, describeIf } from '@tortie/testbed';
import { EtcdDatastore } from '../src';
import { backendSuite, collect, pool, recordingSyncer, until } from './backend-suite';

describeIf(['etcd'], 'etcd backend (real etcd)', () => {
  let tb: Testbed;
  let etcd: Etcd;
  beforeAll(async () => {
    tb = new Testbed();
    etcd = await Etcd.start(tb);
  });
  afterAll(async () => {
    await tb.cleanup();
  });

  let n = 0;
  backendSuite(async () => {
    // a clean key space per test: wipe what the previous test wrote
    const ds = new EtcdDatastore([etcd.endpoint]);
    for (const kind of ['IPPool', 'NetworkSet'] as const) {
      for (const r of (await ds.list({ kind })).items)
        await ds.delete({ kind, name: r.metadata.name, namespace: r.metadata.namespace });
    }
    n++;
    return ds;
  });

  test('a watch from a compacted revision fails with Compacted', async () => {
    const ds = new EtcdDatastore([etcd.endpoint]);
    try {
      const first = await ds.create(pool(`c${n}`));
      const second = await ds.update({ ...first, spec: { ...first.spec, natOutgoing: true } });
      await ds.compact(second.metadata.resourceVersion!);
      const w = collect(ds, 'IPPool', String(Number(first.metadata.resourceVersion) - 1));
      await until('compaction error', () => w.events.length > 0);
      expect(w.events[0]).toMatchObject({ type: 'error', error: { code: 'Compacted' } });
      w.stop();
    } finally {
      await ds.close();
    }
  });

  test('a compare-and-swap of a resource read before is one transaction: no read first', async () => {
    const ds = new EtcdDatastore([etcd.endpoint]);
    try {
      const v1 = await ds.create(pool(`cas${n}`));
      const reads = jest.spyOn(ds, 'get');
      const v2 = await ds.update({ ...v1, spec: { ...v1.spec, natOutgoing: true } });
      // the same answers as with a read first: Conflict on a stale version, NotFound when gone
      expect(
        await ds.update({ ...v1, spec: { ...v1.spec, disabled: true } }).catch((e) => e.code),
      ).toBe('Conflict');
      expect(reads).not.toHaveBeenCalled();
      expect(v2.metadata).toMatchObject({ uid: v1.metadata.uid });
      expect((await ds.get({ kind: 'IPPool', name: `cas${n}` }))?.spec).toMatchObject({
        natOutgoing: true,
      });
      await ds.delete({ kind: 'IPPool', name: `cas${n}` });
      expect(await ds.update(v2).catch((e) => e.code)).toBe('NotFound');
    } finally {
      await ds.close();
    }
  });

  test('a delete is one round trip to etcd, with the same answers as a read first', async () => {
    // etcd's own count of the KV requests it started (Range, Txn, DeleteRange, Put)
    const kvRequests = async (): Promise<number> => {
      const text = await (await fetch(`${etcd.endpoint}/metrics`)).text();
      return [
        ...text.matchAll(
          /^grpc_server_started_total\{[^}]*grpc_service="etcdserverpb\.KV"[^}]*\} (\d+)/gm,
        ),
      ].reduce((sum, m) => sum + Number(m[1]), 0);
    };
    const ds = new EtcdDatastore([etcd.endpoint]);
    try {
      const v1 = await ds.create(pool(`del${n}`));
      const v2 = await ds.update({ ...v1, spec: { ...v1.spec, natOutgoing: true } });
      const key = { kind: 'IPPool' as const, name: `del${n}` };
      const roundTrips = async <T>(op: () => Promise<T>): Promise<[number, T | string]> => {
        const before = await kvRequests();
        const out = await op().catch((e: { code: string }) => e.code);
        return [(await kvRequests()) - before, out];
      };
      // a stale version: Conflict, nothing deleted; then the current one deletes it
      expect(
        await roundTrips(() => ds.delete(key, { resourceVersion: v1.metadata.resourceVersion })),
      ).toEqual([1, 'Conflict']);
      const [trips, deleted] = await roundTrips(() =>
        ds.delete(key, { resourceVersion: v2.metadata.resourceVersion }),
      );
      expect(trips).toBe(1);
      expect(deleted).toMatchObject({
        metadata: { uid: v1.metadata.uid, resourceVersion: v2.metadata.resourceVersion },
        spec: { natOutgoing: true },
      });
      expect(await ds.get(key)).toBeUndefined();
      // gone: NotFound with and without a version, one round trip each
      expect(
        await roundTrips(() => ds.delete(key, { resourceVersion: v2.metadata.resourceVersion })),
      ).toEqual([1, 'NotFound']);
      expect(await roundTrips(() => ds.delete(key))).toEqual([1, 'NotFound']);
      // unconditional: returns what it removed
      const v3 = await ds.create(pool(`del${n}`));
      const [t2, d2] = await roundTrips(() => ds.delete(key));
      expect(t2).toBe(1);
      expect(d2).toMatchObject({
        metadata: { uid: v3.metadata.uid, resourceVersion: v3.metadata.resourceVersion },
      });
    } finally {
      await ds.close();
    }
  });

  test('an unreachable etcd is a clear Unavailable error naming the endpoint', async () => {
    const ds = new EtcdDatastore(['http://127.0.0.1:1'], { dialTimeout: 500 });
    try {
      await expect(ds.list({ kind: 'IPPool' })).rejects.toMatchObject({
        code: 'Unavailable',
        message: expect.stringContaining('etcd at http://127.0.0.1:1'),
      });
    } finally {
      await ds.close();
    }
  }, 30000);

  test('syncer recovers from a compacted watch revision on etcd with exactly the differences', async () => {
    const inner = new EtcdDatastore([etcd.endpoint]);
    for (const r of (await inner.list({ kind: 'IPPool' })).items)
      await inner.delete({ kind: 'IPPool', name: r.metadata.name });
    await inner.create(pool('keep', '10.20.0.0/16'));
    await inner.create(pool('drop', '10.21.0.0/16'));
    // hold the syncer's first watch back until etcd has compacted past its revision
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    let first = true;
    const ds: typeof inner = Object.create(inner);
    ds.watch = (kind, revision, onEvent) => {
      if (!first) return inner.watch(kind, revision, onEvent);
      first = false;
      let w: { stop(): void } | undefined;
      let stopped = false;
      void held.then(() => {
        if (!stopped) w = inner.watch(kind, revision, onEvent);
      });
      return { stop: () => ((stopped = true), w?.stop()) };
    };
    const { syncer: s, updates, statuses } = recordingSyncer(ds, { retryMs: 50 });
    try {
      await until('in-sync', () => statuses.includes('in-sync'), 10000);
      updates.length = 0;
      await inner.delete({ kind: 'IPPool', name: 'drop' });
      const added = await inner.create(pool('add', '10.22.0.0/16'));
      await inner.compact(added.metadata.resourceVersion!);
      release();
      await until('resynced', () => statuses.filter((x) => x === 'in-sync').length >= 2, 10000);
      await new Promise((r) => setTimeout(r, 200));
      expect(statuses).toContain('resyncing');
      expect(updates.sort()).toEqual(['deleted:drop', 'set:add']);
    } finally {
      s.stop();
      await inner.close();
    }
  }, 60000);

  test('syncer across an etcd restart: the consumer sees exactly the changes, never a mass delete', async () => {
    const ds = new EtcdDatastore([etcd.endpoint]);
    for (const r of (await ds.list({ kind: 'IPPool' })).items)
      await ds.delete({ kind: 'IPPool', name: r.metadata.name });
    await ds.create(pool('a', '10.10.0.0/16'));
    await ds.create(pool('b', '10.11.0.0/16'));
    const { syncer: s, updates, statuses } = recordingSyncer(ds, { retryMs: 100, maxRetryMs: 500 });
    try {
      await until('in-sync', () => statuses.includes('in-sync'), 10000);
      expect(updates.sort()).toEqual(['set:a', 'set:b']);
      updates.length = 0;
      await etcd.kill(); // a crash, not a clean shutdown
      await new Promise((r) => setTimeout(r, 500));
      expect(
        s
          .snapshot('IPPool')
          .map((r) => r.metadata.name)
          .sort(),
      ).toEqual(['a', 'b']); // last known state kept
      await etcd.restart();
      const writer = new EtcdDatastore([etcd.endpoint]);
      await writer.delete({ kind: 'IPPool', name: 'a' });
      await writer.create(pool('c', '10.12.0.0/16'));
      await writer.close();
      await until('the two changes', () => updates.length >= 2, 20000);
      await new Promise((r) => setTimeout(r, 300));
      expect(updates.sort()).toEqual(['deleted:a', 'set:c']);
      expect(
        s
          .snapshot('IPPool')
          .map((r) => r.metadata.name)
          .sort(),
      ).toEqual(['b', 'c']);
    } finally {
      s.stop();
      await ds.close();
    }
  }, 60000);
});
