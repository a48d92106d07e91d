import { MemoryDatastore, Syncer, type SyncStatus, type SyncUpdate } from '../src';
import { backendSuite, collect, netset, pool, until } from './backend-suite';

describe('memory backend', () => {
  backendSuite(async () => new MemoryDatastore());

  test('a watch from a compacted revision fails with Compacted', async () => {
    const ds = new MemoryDatastore();
    await ds.create(pool('p1'));
    await ds.create(pool('p2', '10.1.0.0/16'));
    ds.compact();
    const w = collect(ds, 'IPPool', '1');
    await until('error', () => w.events.length > 0);
    expect(w.events[0]).toMatchObject({ type: 'error', error: { code: 'Compacted' } });
  });
});

describe('Syncer on the memory backend', () => {
  function syncer(ds: MemoryDatastore) {
    const updates: string[] = [];
    const statuses: SyncStatus[] = [];
    const s = new Syncer(
      ds,
      ['IPPool', 'NetworkSet'],
      (us: SyncUpdate[]) =>
        updates.push(
          ...us.map((u) => `${u.type}:${u.type === 'set' ? u.resource.metadata.name : u.key.name}`),
        ),
      (st) => statuses.push(st),
      { retryMs: 10 },
    );
    return { s, updates, statuses };
  }

  test('lists, reports in-sync, then streams changes', async () => {
    const ds = new MemoryDatastore();
    await ds.create(pool('p1'));
    const { s, updates, statuses } = syncer(ds);
    s.start();
    await until('in-sync', () => statuses.includes('in-sync'));
    expect(updates).toEqual(['set:p1']);
    await ds.create(netset('n1', 'a', ['10.0.0.0/8']));
    await ds.delete({ kind: 'IPPool', name: 'p1' });
    await until('two more', () => updates.length === 3);
    expect(updates).toEqual(['set:p1', 'set:n1', 'deleted:p1']);
    s.stop();
  });

  test('after compaction it re-lists and emits exactly the differences', async () => {
    const ds = new MemoryDatastore();
    const keep = await ds.create(pool('keep'));
    await ds.create(pool('gone', '10.1.0.0/16'));
    const { s, updates, statuses } = syncer(ds);
    s.start();
    await until('in-sync', () => statuses.includes('in-sync'));
    updates.length = 0;
    // changes the watch will not replay: delete one, add one, then compact and break the watch
    ds.disconnectWatches();
    await ds.delete({ kind: 'IPPool', name: 'gone' });
    await ds.create(pool('new', '10.2.0.0/16'));
    ds.compact();
    await until('resynced', () => updates.length >= 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(updates.sort()).toEqual(['deleted:gone', 'set:new']); // keep was not re-sent
    expect(
      s
        .snapshot('IPPool')
        .map((r) => r.metadata.name)
        .sort(),
    ).toEqual(['keep', 'new']);
    expect(statuses).toEqual(['wait-for-datastore', 'in-sync', 'resyncing', 'in-sync']);
    expect(keep.metadata.name).toBe('keep');
    s.stop();
  });
});
