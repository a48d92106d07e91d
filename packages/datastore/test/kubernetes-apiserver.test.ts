// The Kubernetes backend (@kubernetes/client-node) against tortie-apiserver over a real
// etcd, with tortie's CRDs installed through the API: the behavioural suite every backend
// passes, 410 Gone after a real etcd compaction, and a syncer that survives an API
// server restart plus a compaction with no spurious deletes. Core objects (pods,
// namespaces, ...) are written through the API as Kubernetes would, and mirrored.
import fs from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { Etcd3 } from 'etcd3';
import { allCrds } from '@tortie/api';
import { ApiServer, apiCall, makeLabCertificates } from '@tortie/apiserver';
import { Etcd, Testbed, describeIf } from '@tortie/testbed';
import { KubernetesDatastore, Syncer, type SyncUpdate } from '../src';
import { backendSuite, collect, pool, recordingSyncer, until } from './backend-suite';

const TOKEN = 'lab-token';
let ca: string;
let cert: Buffer;
let key: Buffer;

function kubeconfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server, caData: Buffer.from(ca).toString('base64') }],
    users: [{ name: 'test', token: TOKEN }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  return kc;
}

function call(
  url: string,
  method: string,
  path: string,
  body: unknown,
  contentType?: string,
): Promise<unknown> {
  return apiCall(url, method, path, body, { ca, token: TOKEN, contentType });
}

describeIf(['etcd'], 'Kubernetes backend against tortie-apiserver (real etcd)', () => {
  let tb: Testbed;
  let etcd: Etcd;
  let server: ApiServer;
  let url: string;
  let n = 0;

  /** A fresh API server (its own etcd prefix) with tortie's CRDs applied. */
  const make = (prefix: string): ApiServer =>
    new ApiServer({
      etcd: [etcd.endpoint],
      prefix,
      bookmarkMs: 500,
      tls: { cert, key },
      tokens: [TOKEN],
    });

  async function fresh(port = 0, prefix = `/t${++n}`): Promise<void> {
    server = make(prefix);
    url = await server.listen(port);
    if (port === 0) {
      // the suite's namespaces exist first, as the API server requires
      await Promise.all(
        ['a', 'b'].map((name) => call(url, 'POST', '/api/v1/namespaces', { metadata: { name } })),
      );
      await Promise.all(
        allCrds().map((c) =>
          call(url, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', c),
        ),
      );
    }
  }

  beforeAll(async () => {
    tb = new Testbed();
    etcd = await Etcd.start(tb);
    const certs = await makeLabCertificates(tb.tempDir('pki'));
    ca = fs.readFileSync(certs.caFile, 'utf8');
    cert = fs.readFileSync(certs.certFile);
    key = fs.readFileSync(certs.keyFile);
  }, 60000);
  afterAll(async () => {
    await tb?.cleanup();
  });
  beforeEach(async () => {
    await fresh();
  });
  afterEach(async () => {
    await server.close();
  });

  backendSuite(async () => new KubernetesDatastore(kubeconfig(url)));

  test('a watch from a compacted resourceVersion ends with 410 Gone -> Compacted', async () => {
    const ds = new KubernetesDatastore(kubeconfig(url));
    const a = await ds.create(pool('a'));
    await ds.create(pool('b', '10.1.0.0/16'));
    await ds.create(pool('c', '10.2.0.0/16'));
    const now = (await ds.list({ kind: 'IPPool' })).revision;
    await server.storage.compact(now);
    const w = collect(ds, 'IPPool', a.metadata.resourceVersion!);
    await until('410', () => w.events.some((e) => e.type === 'error'));
    expect(w.events.at(-1)).toMatchObject({ type: 'error', error: { code: 'Compacted' } });
    w.stop();
    await ds.close();
  });

  test('the syncer survives an API server restart and a compaction, emitting only the changes', async () => {
    const ds = new KubernetesDatastore(kubeconfig(url));
    await ds.create(pool('keep'));
    await ds.create(pool('gone', '10.1.0.0/16'));
    const { syncer: s, updates, statuses } = recordingSyncer(ds, { retryMs: 50, maxRetryMs: 1000 });
    try {
      await until('in-sync', () => statuses.includes('in-sync'));
      updates.length = 0;
      // the server goes away; meanwhile etcd changes and is compacted
      const port = Number(new URL(url).port);
      const prefix = server.storage.prefix;
      await server.close();
      const writer = make(prefix);
      const writerUrl = await writer.listen();
      const other = new KubernetesDatastore(kubeconfig(writerUrl));
      await other.delete({ kind: 'IPPool', name: 'gone' });
      await other.create(pool('new', '10.2.0.0/16'));
      await writer.storage.compact((await other.list({ kind: 'IPPool' })).revision);
      await other.close();
      await writer.close();
      // the server comes back on the same address
      await fresh(port, prefix);
      await until('the changes', () => updates.length >= 2, 15000);
      await new Promise((r) => setTimeout(r, 300));
      expect(updates.sort()).toEqual(['deleted:gone', 'set:new']);
      expect(
        s
          .snapshot('IPPool')
          .map((r) => r.metadata.name)
          .sort(),
      ).toEqual(['keep', 'new']);
    } finally {
      s.stop();
      await ds.close();
    }
  }, 60000);

  test('pods, namespaces, service accounts, nodes and NetworkPolicies written through the API are mirrored', async () => {
    await call(url, 'POST', '/api/v1/namespaces', {
      metadata: { name: 'prod', labels: { env: 'production' } },
    });
    await call(url, 'POST', '/api/v1/namespaces/prod/serviceaccounts', {
      metadata: { name: 'default' },
    });
    await call(url, 'POST', '/api/v1/nodes', {
      metadata: { name: 'node1', annotations: { 'projectcalico.org/IPv4Address': '10.0.0.11/24' } },
    });
    await call(url, 'POST', '/api/v1/namespaces/prod/pods', {
      metadata: { name: 'web', labels: { app: 'web' } },
      spec: {
        nodeName: 'node1',
        containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80 }] }],
      },
    });
    await call(url, 'POST', '/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies', {
      metadata: { name: 'deny' },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    const ds = new KubernetesDatastore(kubeconfig(url));
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
      // a pod is created Pending with no IP: no endpoint yet
      expect(updates).toEqual([]);
      await call(
        url,
        'PATCH',
        '/api/v1/namespaces/prod/pods/web/status',
        { status: { phase: 'Running', podIP: '10.244.0.5' } },
        'application/merge-patch+json',
      );
      await until('the endpoint', () => updates.includes('set:node1-k8s-web-eth0'));
      const weps = (await ds.list({ kind: 'WorkloadEndpoint' })).items;
      expect(weps[0].spec).toMatchObject({
        ipNetworks: ['10.244.0.5/32'],
        profiles: ['kns.prod', 'ksa.prod.default'],
      });
      expect((await ds.list({ kind: 'Profile' })).items.map((p) => p.metadata.name).sort()).toEqual(
        // the API server's own namespaces are there too, as in a real cluster
        [
          'kns.a',
          'kns.b',
          'kns.default',
          'kns.kube-node-lease',
          'kns.kube-public',
          'kns.kube-system',
          'kns.prod',
          'ksa.prod.default',
        ],
      );
      expect(await ds.get({ kind: 'Profile', name: 'kns.prod' })).toMatchObject({
        spec: { labelsToApply: { 'pcns.env': 'production' } },
      });
      expect(
        (await ds.list({ kind: 'NetworkPolicy', namespace: 'prod' })).items.map(
          (p) => p.metadata.name,
        ),
      ).toEqual(['knp.default.deny']);
      expect((await ds.list({ kind: 'Node' })).items).toEqual([
        expect.objectContaining({
          spec: expect.objectContaining({ bgp: { ipv4Address: '10.0.0.11/24' } }),
        }),
      ]);
      expect((await ds.getPod('prod', 'web'))?.metadata.labels).toEqual({ app: 'web' });
      await call(url, 'DELETE', '/api/v1/namespaces/prod/pods/web', {});
      await until('the endpoint deleted', () => updates.includes('deleted:node1-k8s-web-eth0'));
    } finally {
      s.stop();
      await ds.close();
    }
  }, 30000);

  test('core/v1 Services and discovery.k8s.io/v1 EndpointSlices are mirrored for the service dataplane', async () => {
    await call(url, 'POST', '/api/v1/namespaces', { metadata: { name: 'svc' } });
    await call(url, 'POST', '/api/v1/namespaces/svc/services', {
      metadata: { name: 'web' },
      spec: {
        type: 'NodePort',
        clusterIP: '10.96.0.10',
        selector: { app: 'web' },
        ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353, nodePort: 30053 }],
        externalTrafficPolicy: 'Local',
      },
    });
    const slice = (ready: boolean) => ({
      metadata: { name: 'web-abc', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      ports: [{ name: 'dns', protocol: 'UDP', port: 5353 }],
      endpoints: [
        { addresses: ['10.244.0.5'], nodeName: 'node1', conditions: { ready: true } },
        { addresses: ['10.244.1.6'], nodeName: 'node2', conditions: { ready } },
      ],
    });
    await call(url, 'POST', '/apis/discovery.k8s.io/v1/namespaces/svc/endpointslices', slice(true));
    const ds = new KubernetesDatastore(kubeconfig(url));
    const s = new Syncer(ds, ['KubernetesService', 'KubernetesEndpointSlice'], () => {});
    s.start();
    try {
      // each kind is listed on its own: wait for both, not for the slice alone
      await until(
        'both',
        () =>
          s.snapshot('KubernetesEndpointSlice').length === 1 &&
          s.snapshot('KubernetesService').length === 1,
      );
      expect(s.snapshot('KubernetesService')).toEqual([
        expect.objectContaining({
          metadata: expect.objectContaining({ name: 'web', namespace: 'svc' }),
          spec: expect.objectContaining({
            type: 'NodePort',
            clusterIP: '10.96.0.10',
            externalTrafficPolicy: 'Local',
            ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353, nodePort: 30053 }],
          }),
        }),
      ]);
      expect(s.snapshot('KubernetesEndpointSlice')[0].spec).toEqual({
        serviceName: 'web',
        addressType: 'IPv4',
        ports: [{ name: 'dns', protocol: 'UDP', port: 5353 }],
        endpoints: [
          { addresses: ['10.244.0.5'], nodeName: 'node1', conditions: { ready: true } },
          { addresses: ['10.244.1.6'], nodeName: 'node2', conditions: { ready: true } },
        ],
      });
      // an endpoint turning unready reaches the syncer
      await call(
        url,
        'PUT',
        '/apis/discovery.k8s.io/v1/namespaces/svc/endpointslices/web-abc',
        slice(false),
      );
      await until(
        'unready',
        () =>
          (
            s.snapshot('KubernetesEndpointSlice')[0]?.spec as {
              endpoints: Array<{ conditions?: { ready?: boolean } }>;
            }
          )?.endpoints[1]?.conditions?.ready === false,
      );
      await call(url, 'DELETE', '/api/v1/namespaces/svc/services/web', {});
      await until('deleted', () => s.snapshot('KubernetesService').length === 0);
    } finally {
      s.stop();
      await ds.close();
    }
  }, 30000);

  test('getPod reads one pod with its labels, annotations and service account (for the CNI plugin)', async () => {
    await call(url, 'POST', '/api/v1/namespaces', { metadata: { name: 'prod' } });
    await call(url, 'POST', '/api/v1/namespaces/prod/pods', {
      metadata: {
        name: 'fixed',
        labels: { app: 'db' },
        annotations: { 'cni.projectcalico.org/ipAddrs': '["10.244.0.9"]' },
      },
      spec: { serviceAccountName: 'db', containers: [{ name: 'c' }] },
    });
    const ds = new KubernetesDatastore(kubeconfig(url));
    const pod = await ds.getPod('prod', 'fixed');
    expect(pod?.metadata).toMatchObject({
      labels: { app: 'db' },
      annotations: { 'cni.projectcalico.org/ipAddrs': '["10.244.0.9"]' },
    });
    expect(pod?.spec.serviceAccountName).toBe('db');
    expect(await ds.getPod('prod', 'absent')).toBeUndefined();
    await ds.close();
  });

  test('CRD objects are read with @tortie/api defaults; one the schema refuses is read as stored and named', async () => {
    // stored as written: the IPPool CRD, like Calico's, has no default for allowedUses
    await call(url, 'POST', '/apis/tortie.io/v1/ippools', {
      apiVersion: 'tortie.io/v1',
      kind: 'IPPool',
      metadata: { name: 'plain' },
      spec: { cidr: '10.9.0.0/16' },
    });
    const ds = new KubernetesDatastore(kubeconfig(url));
    const defaults = {
      cidr: '10.9.0.0/16',
      blockSize: 26,
      allowedUses: ['Workload', 'Tunnel'],
      ipipMode: 'Never',
      vxlanMode: 'Never',
      nodeSelector: 'all()',
    };
    expect((await ds.get({ kind: 'IPPool', name: 'plain' }))?.spec).toMatchObject(defaults);
    const listed = await ds.list({ kind: 'IPPool' });
    expect(listed.items.find((r) => r.metadata.name === 'plain')?.spec).toMatchObject(defaults);

    // written into etcd behind the server's admission, as an older or foreign writer might
    const warnings: string[] = [];
    const warn = jest
      .spyOn(process, 'emitWarning')
      .mockImplementation((w: string | Error) => void warnings.push(String(w)));
    const etcdClient = new Etcd3({ hosts: etcd.endpoint });
    try {
      await etcdClient.put(`/t${n}/tortie.io/ippools/odd`).value(
        JSON.stringify({
          apiVersion: 'tortie.io/v1',
          kind: 'IPPool',
          metadata: { name: 'odd', uid: 'u-odd', creationTimestamp: new Date().toISOString() },
          spec: { cidr: '10.8.0.0/16', blockSize: 99 },
        }),
      );
      const odd = await ds.get({ kind: 'IPPool', name: 'odd' });
      expect(odd?.spec).toEqual({ cidr: '10.8.0.0/16', blockSize: 99 });
      await ds.get({ kind: 'IPPool', name: 'odd' });
      expect(warnings).toHaveLength(1); // once per resourceVersion
      expect(warnings[0]).toMatch(/IPPool odd.*blockSize.*read as stored/s);
    } finally {
      warn.mockRestore();
      etcdClient.close();
      await ds.close();
    }
  });

  test('mirrored objects are read-only, with a message saying so; CRD objects of the same kind sit beside them', async () => {
    await call(url, 'POST', '/api/v1/namespaces', { metadata: { name: 'prod' } });
    const ds = new KubernetesDatastore(kubeconfig(url));
    const kns = (await ds.get({ kind: 'Profile', name: 'kns.prod' }))!;
    await expect(ds.update(kns)).rejects.toMatchObject({
      code: 'Invalid',
      message: expect.stringContaining('read-only'),
    });
    await expect(ds.delete({ kind: 'Profile', name: 'kns.prod' })).rejects.toMatchObject({
      code: 'Invalid',
    });
    const before = (await ds.list({ kind: 'Profile' })).items.length;
    await ds.create({
      apiVersion: 'tortie.io/v1',
      kind: 'Profile',
      metadata: { name: 'extra' },
      spec: {},
    });
    expect((await ds.list({ kind: 'Profile' })).items).toHaveLength(before + 1);
    await ds.close();
  });

  test('a syncer follows pods as workload endpoints: scheduled, addressed, finished, deleted', async () => {
    await call(url, 'POST', '/api/v1/namespaces', { metadata: { name: 'prod' } });
    const ds = new KubernetesDatastore(kubeconfig(url));
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
    const status = (name: string, st: unknown) =>
      call(
        url,
        'PATCH',
        `/api/v1/namespaces/prod/pods/${name}/status`,
        { status: st },
        'application/merge-patch+json',
      );
    s.start();
    try {
      await until('in-sync', () => statuses.includes('in-sync'));
      await call(url, 'POST', '/api/v1/namespaces/prod/pods', {
        metadata: { name: 'db' },
        spec: { nodeName: 'node2', containers: [{ name: 'c' }] },
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(updates).toEqual([]); // Pending, no IP yet: nothing
      await status('db', { phase: 'Running', podIP: '10.244.1.9' });
      await until('db endpoint', () => updates.includes('set:node2-k8s-db-eth0'));
      await status('db', { phase: 'Succeeded' });
      await until('db finished', () => updates.includes('deleted:node2-k8s-db-eth0'));
      expect(updates).toEqual(['set:node2-k8s-db-eth0', 'deleted:node2-k8s-db-eth0']);
    } finally {
      s.stop();
      await ds.close();
    }
  });
});
