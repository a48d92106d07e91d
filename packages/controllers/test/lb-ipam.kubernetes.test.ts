// Load-balancer IPAM on the Kubernetes datastore: the controllers against tortie-apiserver
// over a real etcd. A core/v1 LoadBalancer Service gets its address in
// status.loadBalancer.ingress (services/status, as a cloud controller writes it), with a
// condition, and the controller settles: no write loop on its own status updates.
import { KubeConfig } from '@kubernetes/client-node';
import { allCrds, parseResource } from '@tortie/api';
import { ApiServer, apiCall } from '@tortie/apiserver';
import { KubernetesDatastore } from '@tortie/datastore';
import { Etcd, Testbed, describeIf } from '@tortie/testbed';
import winston from 'winston';
import { CONDITION, Controllers } from '../src';

const log = winston.createLogger({ silent: true });

const call = (url: string, method: string, path: string, body?: unknown) =>
  apiCall(url, method, path, body);

async function until(what: string, ok: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeIf(['etcd'], 'load-balancer IPAM on the Kubernetes datastore (tortie-apiserver)', () => {
  let tb: Testbed;
  let server: ApiServer;
  let url: string;
  let ds: KubernetesDatastore;
  let controllers: Controllers | undefined;

  beforeAll(async () => {
    tb = new Testbed();
    const etcd = await Etcd.start(tb);
    server = new ApiServer({ etcd: [etcd.endpoint], bookmarkMs: 500 });
    url = await server.listen();
    tb.onCleanup(() => server.close());
    for (const crd of allCrds())
      await call(url, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    await call(url, 'POST', '/api/v1/namespaces', { metadata: { name: 'shop' } });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'lab', server: url, skipTLSVerify: true }],
      users: [{ name: 'lab' }],
      contexts: [{ name: 'lab', cluster: 'lab', user: 'lab' }],
      currentContext: 'lab',
    });
    ds = new KubernetesDatastore(kc);
    tb.onCleanup(() => ds.close());
    await ds.create(
      parseResource({
        apiVersion: 'tortie.io/v1',
        kind: 'IPPool',
        metadata: { name: 'lb' },
        spec: { cidr: '198.51.100.0/28', blockSize: 28, allowedUses: ['LoadBalancer'] },
      }),
    );
  }, 60_000);
  afterAll(async () => {
    await controllers?.stop();
    await tb?.cleanup();
  });

  const service = (name: string) =>
    call(url, 'GET', `/api/v1/namespaces/shop/services/${name}`) as Promise<{
      metadata: { resourceVersion: string };
      spec: { type: string };
      status?: {
        loadBalancer?: { ingress?: Array<{ ip: string }> };
        conditions?: Array<Record<string, string>>;
      };
    }>;

  test('a LoadBalancer Service gets its address in its status, and the controller settles', async () => {
    await call(url, 'POST', '/api/v1/namespaces/shop/services', {
      metadata: { name: 'web' },
      spec: { type: 'LoadBalancer', ports: [{ port: 80, targetPort: 8080 }] },
    });
    await call(url, 'POST', '/api/v1/namespaces/shop/services', {
      metadata: {
        name: 'asks',
        annotations: { 'projectcalico.org/loadBalancerIPs': '["198.51.100.9"]' },
      },
      spec: { type: 'LoadBalancer', ports: [{ port: 443 }] },
    });
    controllers = new Controllers(ds, log);
    controllers.start();
    await until('web has an address', async () =>
      Boolean((await service('web')).status?.loadBalancer?.ingress?.length),
    );
    const web = await service('web');
    expect(web.status?.loadBalancer?.ingress).toEqual([
      { ip: expect.stringMatching(/^198\.51\.100\.\d+$/) },
    ]);
    expect(web.status?.conditions).toEqual([
      {
        type: CONDITION,
        status: 'True',
        reason: 'Assigned',
        message: '',
        lastTransitionTime: expect.any(String),
      },
    ]);
    // the annotation is read from the real Service
    await until('asks has its address', async () =>
      Boolean((await service('asks')).status?.loadBalancer?.ingress?.length),
    );
    expect((await service('asks')).status?.loadBalancer?.ingress).toEqual([{ ip: '198.51.100.9' }]);
    // its own status write comes back through the watch: no further write
    const settled = (await service('web')).metadata.resourceVersion;
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await service('web')).metadata.resourceVersion).toBe(settled);
  }, 60_000);

  test('the Service spec stays the user’s: a write of anything but the status is refused', async () => {
    const cur = await ds.get({ kind: 'KubernetesService', name: 'web', namespace: 'shop' });
    expect(cur).toBeDefined();
    await expect(
      ds.update({ ...cur!, spec: { ...(cur!.spec as object), type: 'NodePort' } } as never),
    ).rejects.toThrow(/Service shop\/web: only its status .* is written here/);
    expect((await service('web')).spec.type).toBe('LoadBalancer');
  });
});
