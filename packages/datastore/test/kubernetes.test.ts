// The Kubernetes backend without a server: an unreachable API is a clear error. Its
// behaviour against a server is in kubernetes-apiserver.test.ts (tortie-apiserver over a
// real etcd), which replaced the in-memory stub server.
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesDatastore } from '../src';

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

test('an unreachable API server is a clear Unavailable error naming it', async () => {
  const ds = new KubernetesDatastore(kubeconfig('http://127.0.0.1:1'));
  await expect(ds.list({ kind: 'IPPool' })).rejects.toMatchObject({
    code: 'Unavailable',
    message: expect.stringContaining('Kubernetes API at http://127.0.0.1:1'),
  });
});
