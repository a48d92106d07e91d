// IPAM behaviour on the memory datastore.
import { MemoryDatastore } from '@tortie/datastore';
import { IpamClient } from '../src';
import { ipamSuite, res } from './ipam-suite';

describe('ipam on the memory datastore', () => {
  let ds: MemoryDatastore;
  ipamSuite(
    async () => (ds = new MemoryDatastore()),
    async () => ds,
  );

  test("a dual-stack batch reads its namespace's labels once, not once per IP family", async () => {
    const store = new MemoryDatastore();
    await store.create(res('Node', 'n1', {}));
    await store.create(res('Profile', 'kns.prod', { labelsToApply: { 'pcns.tier': 'prod' } }));
    for (const cidr of ['10.9.0.0/24', 'fd00:9::/120'])
      await store.create(
        res('IPPool', cidr.includes(':') ? 'v6' : 'v4', {
          cidr,
          namespaceSelector: 'tier == "prod"',
        }),
      );
    const get = jest.spyOn(store, 'get');
    const got = await new IpamClient(store).autoAssign({
      handleId: 'p',
      node: 'n1',
      num4: 1,
      num6: 1,
      namespace: 'prod',
    });
    expect([got.ipv4.length, got.ipv6.length]).toEqual([1, 1]);
    expect(get.mock.calls.filter(([k]) => k.kind === 'Profile')).toHaveLength(1);
  });
});
