// The lab's writes against a real etcd, many at once, as pods added together make them.
import { EtcdDatastore } from '@tortie/datastore';
import { Etcd, Testbed, describeIf } from '@tortie/testbed';
import { addLabels, applyResource } from '../src';

describeIf(['etcd'], 'lab writes under contention (real etcd)', () => {
  let tb: Testbed;
  let ds: EtcdDatastore;
  beforeAll(async () => {
    tb = new Testbed();
    const etcd = await Etcd.start(tb);
    ds = new EtcdDatastore([etcd.endpoint]);
    tb.onCleanup(() => ds.close());
  });
  afterAll(() => tb.cleanup());

  const profile = (i: number) => ({
    kind: 'Profile',
    metadata: { name: 'kns.default' },
    spec: { labelsToApply: { 'pcns.projectcalico.org/name': 'default', n: String(i) } },
  });

  test('30 concurrent applies of one namespace profile all succeed', async () => {
    // the first few create-or-update at once, then the rest update over each other
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => applyResource(ds, profile(i))),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.map((f) => String((f as PromiseRejectedResult).reason))).toEqual([]);
    const stored = await ds.get({ kind: 'Profile', name: 'kns.default' });
    expect(stored?.spec).toMatchObject({
      labelsToApply: { 'pcns.projectcalico.org/name': 'default' },
    });
  });

  test('concurrent label additions to one endpoint keep every label', async () => {
    await applyResource(ds, {
      kind: 'WorkloadEndpoint',
      metadata: { name: 'node1-k8s-a-eth0', namespace: 'default' },
      spec: {
        node: 'node1',
        orchestrator: 'k8s',
        pod: 'a',
        endpoint: 'eth0',
        interfaceName: 'cali0',
        ipNetworks: ['10.0.0.1/32'],
      },
    });
    const key = {
      kind: 'WorkloadEndpoint' as const,
      name: 'node1-k8s-a-eth0',
      namespace: 'default',
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => addLabels(ds, key, { [`l${i}`]: 'x' })));
    const labels = (await ds.get(key))!.metadata.labels ?? {};
    for (let i = 0; i < 20; i++) expect(labels[`l${i}`]).toBe('x');
  });

  test('a missing resource is a clear error, not a retry loop', async () => {
    await expect(
      addLabels(ds, { kind: 'WorkloadEndpoint', name: 'nope', namespace: 'default' }, { a: 'b' }),
    ).rejects.toThrow(/WorkloadEndpoint default\/nope not found/);
  });
});
