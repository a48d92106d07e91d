// The Kubernetes backend (@kubernetes/client-node) against the local test API server:
// the same behavioural suite as memory and etcd, plus 410 Gone and a watch that drops.
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesDatastore, Syncer, type SyncUpdate } from '../src';
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

describe('Kubernetes backend: core objects mirrored read-only, as Calico KDD does', () => {
  let server: KubeApiTestServer;
  beforeEach(async () => {
    server = new KubeApiTestServer();
    await server.start();
    server.putCore('namespaces', {
      metadata: { name: 'prod', labels: { env: 'production' } },
    } as never);
    server.putCore('serviceaccounts', { metadata: { name: 'default', namespace: 'prod' } });
    server.putCore('nodes', {
      metadata: { name: 'node1', annotations: { 'projectcalico.org/IPv4Address': '10.0.0.11/24' } },
    } as never);
    server.putCore('pods', {
      metadata: { name: 'web', namespace: 'prod', labels: { app: 'web' } },
      spec: { nodeName: 'node1', containers: [{ ports: [{ name: 'http', containerPort: 80 }] }] },
      status: { phase: 'Running', podIP: '10.244.0.5' },
    } as never);
    server.putCore('networkpolicies', {
      metadata: { name: 'deny', namespace: 'prod' },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    } as never);
  });
  afterEach(async () => {
    await server.stop();
  });

  test('getPod reads one pod with its labels and annotations (for the CNI plugin)', async () => {
    server.putCore('pods', {
      metadata: {
        name: 'fixed',
        namespace: 'prod',
        labels: { app: 'db' },
        annotations: { 'cni.projectcalico.org/ipAddrs': '["10.244.0.9"]' },
      },
      spec: { serviceAccountName: 'db', containers: [] },
    } as never);
    const ds = new KubernetesDatastore(kubeconfig(server.url));
    const pod = await ds.getPod('prod', 'fixed');
    expect(pod?.metadata).toMatchObject({
      labels: { app: 'db' },
      annotations: { 'cni.projectcalico.org/ipAddrs': '["10.244.0.9"]' },
    });
    expect(pod?.spec.serviceAccountName).toBe('db');
    expect(await ds.getPod('prod', 'absent')).toBeUndefined();
  });

  test('pods, namespaces, service accounts and NetworkPolicies appear as tortie resources', async () => {
    const ds = new KubernetesDatastore(kubeconfig(server.url));
    const weps = (await ds.list({ kind: 'WorkloadEndpoint' })).items;
    expect(weps.map((w) => `${w.metadata.namespace}/${w.metadata.name}`)).toEqual([
      'prod/node1-k8s-web-eth0',
    ]);
    expect(weps[0].spec).toMatchObject({
      ipNetworks: ['10.244.0.5/32'],
      profiles: ['kns.prod', 'ksa.prod.default'],
    });
    expect((await ds.list({ kind: 'Profile' })).items.map((p) => p.metadata.name).sort()).toEqual([
      'kns.prod',
      'ksa.prod.default',
    ]);
    expect(
      (await ds.list({ kind: 'NetworkPolicy', namespace: 'prod' })).items.map(
        (p) => p.metadata.name,
      ),
    ).toEqual(['knp.default.deny']);
    expect((await ds.list({ kind: 'Node' })).items).toEqual([
      expect.objectContaining({
        metadata: expect.objectContaining({ name: 'node1' }),
        spec: expect.objectContaining({ bgp: { ipv4Address: '10.0.0.11/24' } }),
      }),
    ]);
    expect(await ds.get({ kind: 'Profile', name: 'kns.prod' })).toMatchObject({
      spec: { labelsToApply: { 'pcns.env': 'production' } },
    });
    // CRD objects of the same kind sit beside the mirrored ones
    await ds.create({
      apiVersion: 'tortie.io/v1',
      kind: 'Profile',
      metadata: { name: 'extra' },
      spec: {},
    });
    expect((await ds.list({ kind: 'Profile' })).items).toHaveLength(3);
  });

  test('mirrored objects are read-only, with a message saying so', async () => {
    const ds = new KubernetesDatastore(kubeconfig(server.url));
    const kns = (await ds.get({ kind: 'Profile', name: 'kns.prod' }))!;
    await expect(ds.update(kns)).rejects.toMatchObject({
      code: 'Invalid',
      message: expect.stringContaining('read-only'),
    });
    await expect(ds.delete({ kind: 'Profile', name: 'kns.prod' })).rejects.toMatchObject({
      code: 'Invalid',
    });
  });

  test('a syncer follows pods as workload endpoints: scheduled, addressed, finished, deleted', async () => {
    const ds = new KubernetesDatastore(kubeconfig(server.url));
    const updates: string[] = [];
    const statuses: string[] = [];
    const s = new Syncer(
      ds,
      ['WorkloadEndpoint'],
      (us: SyncUpdate[]) =>
        updates.push(
          ...us.map((u) => `${u.type}:${u.type === 'set' ? u.resource.metadata.name : u.key.name}`),
        ),
      (st) => statuses.push(st),
    );
    s.start();
    try {
      await until('in-sync', () => statuses.includes('in-sync'));
      expect(updates).toEqual(['set:node1-k8s-web-eth0']);
      const db = {
        metadata: { name: 'db', namespace: 'prod' },
        spec: { nodeName: 'node2', containers: [] },
      };
      server.putCore('pods', { ...db, status: { phase: 'Pending' } } as never); // no IP yet: nothing
      server.putCore('pods', { ...db, status: { phase: 'Running', podIP: '10.244.1.9' } } as never);
      await until('db endpoint', () => updates.includes('set:node2-k8s-db-eth0'));
      server.putCore('pods', {
        ...db,
        status: { phase: 'Succeeded', podIP: '10.244.1.9' },
      } as never);
      await until('db finished', () => updates.includes('deleted:node2-k8s-db-eth0'));
      server.deleteCore('pods', 'web', 'prod');
      await until('web deleted', () => updates.includes('deleted:node1-k8s-web-eth0'));
      expect(updates).toEqual([
        'set:node1-k8s-web-eth0',
        'set:node2-k8s-db-eth0',
        'deleted:node2-k8s-db-eth0',
        'deleted:node1-k8s-web-eth0',
      ]);
    } finally {
      s.stop();
    }
  });
});
