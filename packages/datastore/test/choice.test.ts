// Which datastore a tortie process opens: flags win over the environment, the one
// source given decides without a type, and what is missing is named.
import { IN_CLUSTER, datastoreSpec, describeDatastore } from '../src';

test('the datastore comes from flags or the environment tortie-node reads', () => {
  expect(
    datastoreSpec({ type: 'etcdv3', etcdEndpoints: 'http://a:2379, http://b:2379' }, {}),
  ).toEqual({ type: 'etcdv3', endpoints: ['http://a:2379', 'http://b:2379'] });
  expect(datastoreSpec({}, { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://e:2379' })).toEqual({
    type: 'etcdv3',
    endpoints: ['http://e:2379'],
  });
  expect(datastoreSpec({ file: '/tmp/ds.json' }, {})).toEqual({
    type: 'file',
    file: '/tmp/ds.json',
  });
  expect(() => datastoreSpec({}, { DATASTORE_TYPE: 'kubernetes' })).toThrow(/needs --kubeconfig/);
  // in a pod without a kubeconfig: the service account (in-cluster config)
  expect(
    datastoreSpec({}, { DATASTORE_TYPE: 'kubernetes', KUBERNETES_SERVICE_HOST: '10.96.0.1' }),
  ).toEqual({ type: 'kubernetes', kubeconfig: IN_CLUSTER });
  // a kubeconfig given still wins
  expect(
    datastoreSpec(
      {},
      { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: '/k', KUBERNETES_SERVICE_HOST: 'h' },
    ),
  ).toEqual({ type: 'kubernetes', kubeconfig: '/k' });
  expect(() => datastoreSpec({ type: 'consul' }, {})).toThrow(/"consul" is not one of/);
  expect(() => datastoreSpec({}, {})).toThrow(/no datastore/);
});

test('descriptions for messages', () => {
  expect(describeDatastore({ type: 'etcdv3', endpoints: ['http://a:2379', 'http://b:2379'] })).toBe(
    'etcdv3 at http://a:2379,http://b:2379',
  );
  expect(describeDatastore({ type: 'file', file: '/x.json' })).toBe('file /x.json');
});
