// LoadBalancer address management on a datastore (memory here: the IPAM underneath is
// the one the pods use, tested on etcd in @tortie/ipam).
import { parseResource, type Resource } from '@tortie/api';
import { MemoryDatastore } from '@tortie/datastore';
import winston from 'winston';
import { CONDITION, Controllers, LoadBalancerIpam } from '../src';

const log = winston.createLogger({ silent: true });
const R = (kind: string, name: string, spec: object, meta: object = {}) =>
  parseResource({ apiVersion: 'tortie.io/v1', kind, metadata: { name, ...meta }, spec });
const lbService = (name: string, spec: object = {}, meta: object = {}) =>
  R(
    'KubernetesService',
    name,
    {
      type: 'LoadBalancer',
      clusterIP: '10.96.0.10',
      ports: [{ port: 80, nodePort: 30080 }],
      ...spec,
    },
    { namespace: 'shop', ...meta },
  );

async function world() {
  const ds = new MemoryDatastore();
  await ds.create(R('IPPool', 'pods', { cidr: '10.65.0.0/16' }));
  await ds.create(
    R('IPPool', 'lb', { cidr: '198.51.100.0/28', blockSize: 28, allowedUses: ['LoadBalancer'] }),
  );
  return ds;
}
const spec = async (ds: MemoryDatastore, name: string) =>
  (
    (await ds.get({
      kind: 'KubernetesService',
      name,
      namespace: 'shop',
    })) as Resource<'KubernetesService'>
  ).spec;

test('a LoadBalancer Service gets an address from a LoadBalancer pool, never a pod pool', async () => {
  const ds = await world();
  await ds.create(lbService('web'));
  await new LoadBalancerIpam(ds, log).reconcile('shop', 'web');
  const s = await spec(ds, 'web');
  expect(s.loadBalancerIngress).toEqual([{ ip: expect.stringMatching(/^198\.51\.100\.\d+$/) }]);
  expect(s.conditions).toEqual([{ type: CONDITION, status: 'True', reason: 'Assigned' }]);
});

test('a requested address is honoured (loadBalancerIP or Calico annotation)', async () => {
  const ds = await world();
  const lb = new LoadBalancerIpam(ds, log);
  await ds.create(lbService('a', { loadBalancerIP: '198.51.100.7' }));
  await ds.create(
    lbService(
      'b',
      {},
      { annotations: { 'projectcalico.org/loadBalancerIPs': '["198.51.100.9"]' } },
    ),
  );
  await lb.reconcile('shop', 'a');
  await lb.reconcile('shop', 'b');
  expect((await spec(ds, 'a')).loadBalancerIngress).toEqual([{ ip: '198.51.100.7' }]);
  expect((await spec(ds, 'b')).loadBalancerIngress).toEqual([{ ip: '198.51.100.9' }]);
});

test('an address outside the pools, or already taken, is refused on that Service only', async () => {
  const ds = await world();
  const lb = new LoadBalancerIpam(ds, log);
  await ds.create(lbService('outside', { loadBalancerIP: '203.0.113.5' }));
  await ds.create(lbService('first', { loadBalancerIP: '198.51.100.3' }));
  await ds.create(lbService('second', { loadBalancerIP: '198.51.100.3' }));
  await ds.create(lbService('fine'));
  for (const n of ['outside', 'first', 'second', 'fine']) await lb.reconcile('shop', n);
  expect((await spec(ds, 'outside')).conditions).toEqual([
    {
      type: CONDITION,
      status: 'False',
      reason: 'NotAssigned',
      message: '203.0.113.5 is in no IP pool allowed for LoadBalancer',
    },
  ]);
  expect((await spec(ds, 'outside')).loadBalancerIngress).toBeUndefined();
  expect((await spec(ds, 'first')).loadBalancerIngress).toEqual([{ ip: '198.51.100.3' }]);
  expect((await spec(ds, 'second')).conditions?.[0]).toMatchObject({
    status: 'False',
    message: expect.stringContaining('198.51.100.3 is already in use'),
  });
  expect((await spec(ds, 'fine')).loadBalancerIngress).toHaveLength(1);
});

test('the address goes back when the Service stops being a LoadBalancer, or goes', async () => {
  const ds = await world();
  const lb = new LoadBalancerIpam(ds, log);
  await ds.create(lbService('web', { loadBalancerIP: '198.51.100.5' }));
  await lb.reconcile('shop', 'web');
  const cur = (await ds.get({
    kind: 'KubernetesService',
    name: 'web',
    namespace: 'shop',
  })) as Resource<'KubernetesService'>;
  await ds.update({ ...cur, spec: { ...cur.spec, type: 'ClusterIP' } });
  await lb.reconcile('shop', 'web');
  expect((await spec(ds, 'web')).loadBalancerIngress).toBeUndefined();
  // free again: another Service can have it
  await ds.create(lbService('next', { loadBalancerIP: '198.51.100.5' }));
  await lb.reconcile('shop', 'next');
  expect((await spec(ds, 'next')).loadBalancerIngress).toEqual([{ ip: '198.51.100.5' }]);
  await ds.delete({ kind: 'KubernetesService', name: 'next', namespace: 'shop' });
  await lb.reconcile('shop', 'next');
  await ds.create(lbService('third', { loadBalancerIP: '198.51.100.5' }));
  await lb.reconcile('shop', 'third');
  expect((await spec(ds, 'third')).loadBalancerIngress).toEqual([{ ip: '198.51.100.5' }]);
});

test('two controllers at once: 12 Services, 12 distinct addresses', async () => {
  const ds = await world();
  const names = Array.from({ length: 12 }, (_, i) => `s${i}`);
  for (const n of names) await ds.create(lbService(n));
  const a = new Controllers(ds, log);
  const b = new Controllers(ds, log);
  a.start();
  b.start();
  const assigned = async () => {
    const ips = await Promise.all(
      names.map(async (n) => (await spec(ds, n)).loadBalancerIngress?.[0]?.ip),
    );
    return ips.every(Boolean) ? ips : undefined;
  };
  let ips: (string | undefined)[] | undefined;
  for (let i = 0; i < 200 && !(ips = await assigned()); i++)
    await new Promise((r) => setTimeout(r, 20));
  await Promise.all([a.idle(), b.idle()]);
  ips = await assigned();
  await Promise.all([a.stop(), b.stop()]);
  expect(ips).toBeDefined();
  expect(new Set(ips).size).toBe(12);
  // one address each, however the two raced
  for (const n of names) expect((await spec(ds, n)).loadBalancerIngress).toHaveLength(1);
  // the /28 has 16 addresses: the 13th and later Services would be refused, not doubled
});
