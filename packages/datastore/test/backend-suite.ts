// The behaviour every Datastore backend must have; each backend's test file runs it.
import { API_VERSION, type Resource } from '@tortie/api';
import {
  DatastoreError,
  Syncer,
  type Datastore,
  type SyncStatus,
  type SyncerOptions,
  type WatchEvent,
} from '../src';

export function pool(name: string, cidr = '10.0.0.0/16'): Resource<'IPPool'> {
  return {
    apiVersion: API_VERSION,
    kind: 'IPPool',
    metadata: { name },
    spec: {
      cidr,
      blockSize: 26,
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: false,
      disabled: false,
      disableBGPExport: false,
      nodeSelector: 'all()',
      allowedUses: ['Workload', 'Tunnel'],
    },
  };
}

export function netset(name: string, namespace: string, nets: string[]): Resource<'NetworkSet'> {
  return {
    apiVersion: API_VERSION,
    kind: 'NetworkSet',
    metadata: { name, namespace, labels: { a: 'b' } },
    spec: { nets },
  };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DatastoreError) return err.code;
    throw err;
  }
  return 'ok';
}

export function collect(ds: Datastore, kind: 'IPPool' | 'NetworkSet', revision: string) {
  const events: WatchEvent[] = [];
  const w = ds.watch(kind, revision, (e) => events.push(e));
  return { events, stop: () => w.stop() };
}

export async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Registers the shared tests; `make` returns a fresh, empty datastore. */
export function backendSuite(make: () => Promise<Datastore>) {
  let ds: Datastore;
  beforeEach(async () => {
    ds = await make();
  });
  afterEach(async () => {
    await ds.close();
  });

  test('create, get, list, and resourceVersion assigned', async () => {
    const created = await ds.create(pool('p1'));
    expect(created.metadata.resourceVersion).toMatch(/^\d+$/);
    expect(await ds.get({ kind: 'IPPool', name: 'p1' })).toEqual(created);
    await ds.create(pool('p2', '10.1.0.0/16'));
    await ds.create(pool('q1', '10.2.0.0/16'));
    expect((await ds.list({ kind: 'IPPool' })).items.map((r) => r.metadata.name)).toEqual([
      'p1',
      'p2',
      'q1',
    ]);
    expect(
      (await ds.list({ kind: 'IPPool', namePrefix: 'p' })).items.map((r) => r.metadata.name),
    ).toEqual(['p1', 'p2']);
    expect(await ds.get({ kind: 'IPPool', name: 'nope' })).toBeUndefined();
  });

  test('namespaces keep same-named resources apart and filter lists', async () => {
    await ds.create(netset('s', 'a', ['10.0.0.0/8']));
    await ds.create(netset('s', 'b', ['11.0.0.0/8']));
    expect((await ds.get({ kind: 'NetworkSet', name: 's', namespace: 'b' }))?.spec).toEqual({
      nets: ['11.0.0.0/8'],
    });
    expect((await ds.list({ kind: 'NetworkSet', namespace: 'a' })).items).toHaveLength(1);
    expect((await ds.list({ kind: 'NetworkSet' })).items).toHaveLength(2);
  });

  test('create twice: AlreadyExists; update or delete of nothing: NotFound', async () => {
    await ds.create(pool('p1'));
    expect(await code(ds.create(pool('p1')))).toBe('AlreadyExists');
    expect(await code(ds.update(pool('missing')))).toBe('NotFound');
    expect(await code(ds.delete({ kind: 'IPPool', name: 'missing' }))).toBe('NotFound');
  });

  test('compare-and-swap: a stale resourceVersion is a Conflict and changes nothing', async () => {
    const v1 = await ds.create(pool('p1'));
    const v2 = await ds.update({ ...v1, spec: { ...v1.spec, natOutgoing: true } });
    expect(v2.metadata.resourceVersion).not.toBe(v1.metadata.resourceVersion);
    expect(await code(ds.update({ ...v1, spec: { ...v1.spec, disabled: true } }))).toBe('Conflict');
    expect(
      await code(
        ds.delete({ kind: 'IPPool', name: 'p1' }, { resourceVersion: v1.metadata.resourceVersion }),
      ),
    ).toBe('Conflict');
    expect((await ds.get({ kind: 'IPPool', name: 'p1' }))?.spec).toMatchObject({
      natOutgoing: true,
      disabled: false,
    });
    // without a resourceVersion the write is unconditional
    const { resourceVersion: _rv, ...meta } = v1.metadata;
    await ds.update({ ...v1, metadata: meta, spec: { ...v1.spec, disabled: true } });
    expect((await ds.get({ kind: 'IPPool', name: 'p1' }))?.spec).toMatchObject({ disabled: true });
  });

  test('concurrent compare-and-swap: exactly one of two writers wins', async () => {
    const v1 = await ds.create(pool('p1'));
    const results = await Promise.all([
      code(ds.update({ ...v1, spec: { ...v1.spec, natOutgoing: true } })),
      code(ds.update({ ...v1, spec: { ...v1.spec, disabled: true } })),
    ]);
    expect(results.sort()).toEqual(['Conflict', 'ok']);
  });

  test('watch from a revision replays later events in order, per kind', async () => {
    const start = (await ds.list({ kind: 'IPPool' })).revision;
    const p = await ds.create(pool('p1'));
    await ds.create(netset('s', 'a', ['10.0.0.0/8']));
    await ds.update({ ...p, spec: { ...p.spec, natOutgoing: true } });
    await ds.delete({ kind: 'IPPool', name: 'p1' });
    const w = collect(ds, 'IPPool', start);
    await until('three events', () => w.events.length >= 3);
    await ds.create(pool('p2', '10.1.0.0/16'));
    await until('four events', () => w.events.length >= 4);
    w.stop();
    expect(
      w.events.map((e) => `${e.type}:${'resource' in e ? e.resource.metadata.name : ''}`),
    ).toEqual(['added:p1', 'modified:p1', 'deleted:p1', 'added:p2']);
    const revs = w.events.map((e) => Number((e as { revision: string }).revision));
    expect([...revs].sort((a, b) => a - b)).toEqual(revs);
  });
}

/** A started Syncer over IPPools that records updates as "set:name" / "deleted:name". */
export function recordingSyncer(ds: Datastore, opts: SyncerOptions) {
  const updates: string[] = [];
  const statuses: SyncStatus[] = [];
  const syncer = new Syncer(
    ds,
    ['IPPool'],
    (us) =>
      updates.push(
        ...us.map((u) => `${u.type}:${u.type === 'set' ? u.resource.metadata.name : u.key.name}`),
      ),
    (st) => statuses.push(st),
    opts,
  );
  syncer.start();
  return { syncer, updates, statuses };
}
