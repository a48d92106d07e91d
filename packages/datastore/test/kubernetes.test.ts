// The Kubernetes backend (@kubernetes/client-node) against the local test API server:
// the same behavioural suite as memory and etcd, plus 410 Gone and a watch that drops.
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesDatastore } from '../src';
import { backendSuite, collect, pool, recordingSyncer, until } from './backend-suite';
import { KubeApiTestServer } from './kube-api-server';

function kubeconfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server, skipTLSVerify: true }],
    users: [{ name: 'test' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  return kc;
}

describe('Kubernetes backend (local test API server)', () => {
  let server: KubeApiTestServer;
  beforeEach(async () => {
    server = new KubeApiTestServer();
    await server.start();
  });
  afterEach(async () => {
    await server.stop();
  });

  backendSuite(async () => new KubernetesDatastore(kubeconfig(server.url)));

  test('a watch from a compacted resourceVersion ends with 410 Gone -> Compacted', async () => {
    const ds = new KubernetesDatastore(kubeconfig(server.url));
    await ds.create(pool('a'));
    await ds.create(pool('b', '10.1.0.0/16'));
    server.ds.compact();
    const w = collect(ds, 'IPPool', '1');
    await until('410', () => w.events.some((e) => e.type === 'error'));
    expect(w.events.at(-1)).toMatchObject({ type: 'error', error: { code: 'Compacted' } });
    w.stop();
  });

  test('an unreachable API server is a clear Unavailable error naming it', async () => {
    const ds = new KubernetesDatastore(kubeconfig('http://127.0.0.1:1'));
    await expect(ds.list({ kind: 'IPPool' })).rejects.toMatchObject({
      code: 'Unavailable',
      message: expect.stringContaining('Kubernetes API at http://127.0.0.1:1'),
    });
  });

  test('the syncer survives a dropped watch and a 410, emitting only the changes', async () => {
    const ds = new KubernetesDatastore(kubeconfig(server.url));
    await ds.create(pool('keep'));
    await ds.create(pool('gone', '10.1.0.0/16'));
    const { syncer: s, updates, statuses } = recordingSyncer(ds, { retryMs: 20 });
    try {
      await until('in-sync', () => statuses.includes('in-sync'));
      updates.length = 0;
      server.dropWatches();
      await server.ds.delete({ kind: 'IPPool', name: 'gone' });
      await server.ds.create(pool('new', '10.2.0.0/16'));
      server.ds.compact();
      await until('the changes', () => updates.length >= 2);
      await new Promise((r) => setTimeout(r, 100));
      expect(updates.sort()).toEqual(['deleted:gone', 'set:new']);
      expect(
        s
          .snapshot('IPPool')
          .map((r) => r.metadata.name)
          .sort(),
      ).toEqual(['keep', 'new']);
    } finally {
      s.stop();
    }
  });
});
