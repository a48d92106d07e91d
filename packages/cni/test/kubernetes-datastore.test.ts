// The CNI plugin in the Kubernetes datastore against tortie-apiserver over a real etcd,
// as Calico's plugin does it: ADD records the pod's addresses in its annotations
// (cni.projectcalico.org/podIP, podIPs, containerID), so an agent watching pods sees the
// endpoint before the kubelet reports the pod's IPs and the ADD's wait for policy ends
// at once instead of at policy_setup_timeout; DEL empties them, and a stale DEL (another
// container of the same pod) leaves them. The kernel side is a recording fake: the
// pod's interface is cni.netns's subject, the datastore here is.
import fs from 'node:fs';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { allCrds, API_VERSION, type Resource } from '@tortie/api';
import { ApiServer, apiCall, makeLabCertificates } from '@tortie/apiserver';
import {
  CONTAINER_ID_ANNOTATION,
  KubernetesDatastore,
  POD_IP_ANNOTATION,
  POD_IPS_ANNOTATION,
  Syncer,
  type K8sPod,
} from '@tortie/datastore';
import { IpamClient } from '@tortie/ipam';
import { Etcd, Testbed, describeIf } from '@tortie/testbed';
import {
  add,
  del,
  parseEnv,
  parseNetConf,
  type Attachment,
  type ObservedAttachment,
  type PluginDeps,
  type PodNetwork,
} from '../src';

const TOKEN = 'cni-test-token';

/** A kernel side that records what it was asked to wire. */
class FakeNet implements PodNetwork {
  links = new Map<string, Attachment>();
  async setup(a: Attachment): Promise<void> {
    this.links.set(a.hostIface, a);
  }
  async teardown(iface: string): Promise<boolean> {
    return this.links.delete(iface);
  }
  async observe(): Promise<ObservedAttachment> {
    return { hostIfaceExists: false, hostRoutes: [], podAddrs: [], podDefaultVia: [] };
  }
}

describeIf(['etcd'], 'CNI with the Kubernetes datastore (tortie-apiserver, real etcd)', () => {
  let tb: Testbed;
  let server: ApiServer;
  let ca: string;
  let url: string;
  let kubeconfigFile: string;

  const call = (method: string, p: string, body?: unknown) =>
    apiCall(url, method, p, body, { ca, token: TOKEN });
  const readPod = async (name: string) =>
    (await call('GET', `/api/v1/namespaces/prod/pods/${name}`)) as K8sPod;

  beforeAll(async () => {
    tb = new Testbed();
    const etcd = await Etcd.start(tb);
    const dir = tb.tempDir('cni-kdd');
    const certs = await makeLabCertificates(path.join(dir, 'pki'));
    ca = fs.readFileSync(certs.caFile, 'utf8');
    server = new ApiServer({
      etcd: [etcd.endpoint],
      bookmarkMs: 500,
      tls: { cert: fs.readFileSync(certs.certFile), key: fs.readFileSync(certs.keyFile) },
      tokens: [TOKEN],
    });
    url = await server.listen();
    tb.onCleanup(() => server.close());
    for (const c of allCrds())
      await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', c);
    await call('POST', '/api/v1/namespaces', { metadata: { name: 'prod' } });
    await call('POST', '/api/v1/nodes', { metadata: { name: 'node1' } });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 't', server: url, caData: Buffer.from(ca).toString('base64') }],
      users: [{ name: 't', token: TOKEN }],
      contexts: [{ name: 't', cluster: 't', user: 't' }],
      currentContext: 't',
    });
    kubeconfigFile = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kubeconfigFile, kc.exportConfig());
    const ds = KubernetesDatastore.fromFile(kubeconfigFile);
    await ds.create({
      apiVersion: API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'default' },
      spec: {
        cidr: '10.244.0.0/16',
        blockSize: 26,
        ipipMode: 'Never',
        vxlanMode: 'Never',
        natOutgoing: false,
        disabled: false,
      },
    } as Resource);
    await ds.close();
  }, 60000);
  afterAll(async () => {
    await tb?.cleanup();
  });

  test('ADD writes podIP/podIPs/containerID and its wait for the endpoint ends before the timeout; a stale DEL leaves them; DEL empties them', async () => {
    await call('POST', '/api/v1/namespaces/prod/pods', {
      metadata: { name: 'web-1', labels: { app: 'web' } },
      spec: { nodeName: 'node1', containers: [{ name: 'c' }] },
    });
    // the plugin's connection, and the agent's: a syncer over pods as endpoints
    const ds = KubernetesDatastore.fromFile(kubeconfigFile);
    const agentDs = KubernetesDatastore.fromFile(kubeconfigFile);
    const statuses: string[] = [];
    const syncer = new Syncer(
      agentDs,
      ['WorkloadEndpoint'],
      () => {},
      (s) => statuses.push(s),
    );
    const endpoints = () => syncer.snapshot('WorkloadEndpoint') as Resource<'WorkloadEndpoint'>[];
    syncer.start();
    // the agent's answer to the ADD's wait: does an endpoint on this interface with these
    // addresses appear within the time (the agent then programs it)?
    const answers: boolean[] = [];
    const policyReady = async (iface: string, ips: string[], timeoutMs: number) => {
      const want = ips.map((ip) => `${ip}/32`).join(',');
      const end = Date.now() + timeoutMs;
      let ok = false;
      while (Date.now() < end && !ok) {
        ok = endpoints().some(
          (w) => w.spec.interfaceName === iface && w.spec.ipNetworks?.join(',') === want,
        );
        if (!ok) await new Promise((r) => setTimeout(r, 10));
      }
      answers.push(ok);
      return ok;
    };
    const net = new FakeNet();
    const deps: PluginDeps = {
      datastore: ds,
      ipam: new IpamClient(ds),
      net,
      node: 'node1',
      pods: ds,
      policyReady,
    };
    const conf = parseNetConf(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'k8s-pod-network',
        type: 'tortie-cni',
        nodename: 'node1',
        datastore_type: 'kubernetes',
        kubernetes: { kubeconfig: kubeconfigFile },
        policy_setup_timeout_seconds: 5,
      }),
    );
    const env = (command: 'ADD' | 'DEL', containerId: string) =>
      parseEnv({
        CNI_COMMAND: command,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: '/var/run/netns/web-1',
        CNI_IFNAME: 'eth0',
        CNI_ARGS: 'K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-1',
      });
    try {
      const t0 = performance.now();
      const result = await add(conf, env('ADD', 'sandbox-b'), deps);
      const addMs = performance.now() - t0;
      const ip = result.ips[0].address.split('/')[0];
      // the endpoint came from the annotations: the kubelet has not written the status
      expect(answers).toEqual([true]);
      let pod = await readPod('web-1');
      expect(pod.status?.podIPs ?? []).toEqual([]);
      expect(pod.metadata.annotations).toMatchObject({
        [POD_IP_ANNOTATION]: `${ip}/32`,
        [POD_IPS_ANNOTATION]: `${ip}/32`,
        [CONTAINER_ID_ANNOTATION]: 'sandbox-b',
      });
      const wepName = 'node1-k8s-web--1-eth0';
      expect(
        await ds.get({ kind: 'WorkloadEndpoint', name: wepName, namespace: 'prod' }),
      ).toMatchObject({
        metadata: { labels: expect.objectContaining({ app: 'web' }) },
        spec: { containerID: 'sandbox-b', ipNetworks: [`${ip}/32`], node: 'node1', pod: 'web-1' },
      });
      process.stderr.write(`KDD CNI ADD returned in ${addMs.toFixed(0)} ms (timeout 5000 ms)\n`);

      // a DEL of an earlier sandbox of the same pod: the pod's addresses stay
      await del(conf, env('DEL', 'sandbox-a'), deps);
      pod = await readPod('web-1');
      expect(pod.metadata.annotations).toMatchObject({
        [POD_IP_ANNOTATION]: `${ip}/32`,
        [CONTAINER_ID_ANNOTATION]: 'sandbox-b',
      });
      expect(net.links.size).toBe(1); // its interface belongs to sandbox-b
      expect(endpoints().map((w) => w.metadata.name)).toEqual([wepName]);

      // the DEL of the pod's own sandbox empties them (the containerID stays, as Calico)
      await del(conf, env('DEL', 'sandbox-b'), deps);
      pod = await readPod('web-1');
      expect(pod.metadata.annotations).toMatchObject({
        [POD_IP_ANNOTATION]: '',
        [POD_IPS_ANNOTATION]: '',
        [CONTAINER_ID_ANNOTATION]: 'sandbox-b',
      });
      expect(net.links.size).toBe(0);
      expect(await deps.ipam.ipsByHandle('k8s-pod-network.sandbox-b')).toEqual([]);
      await waitFor('the endpoint gone from the agent', () => endpoints().length === 0);
      expect(
        await ds.get({ kind: 'WorkloadEndpoint', name: wepName, namespace: 'prod' }),
      ).toBeUndefined();
      // a repeated DEL finds nothing to do
      await del(conf, env('DEL', 'sandbox-b'), deps);
    } finally {
      syncer.stop();
      await ds.close();
      await agentDs.close();
    }
  }, 60000);

  test('an endpoint write for a pod on another node, or for no pod, is refused naming it', async () => {
    await call('POST', '/api/v1/namespaces/prod/pods', {
      metadata: { name: 'db' },
      spec: { nodeName: 'node2', containers: [{ name: 'c' }] },
    });
    const ds = KubernetesDatastore.fromFile(kubeconfigFile);
    const wep = (name: string, pod: string): Resource =>
      ({
        apiVersion: API_VERSION,
        kind: 'WorkloadEndpoint',
        metadata: { name, namespace: 'prod' },
        spec: {
          orchestrator: 'k8s',
          node: 'node1',
          pod,
          endpoint: 'eth0',
          interfaceName: 'cali0123456789a',
          ipNetworks: ['10.244.9.9/32'],
        },
      }) as Resource;
    try {
      await expect(ds.create(wep('node1-k8s-db-eth0', 'db'))).rejects.toMatchObject({
        code: 'Invalid',
        message: expect.stringContaining('Pod prod/db is on node "node2", not "node1"'),
      });
      await expect(ds.create(wep('node1-k8s-absent-eth0', 'absent'))).rejects.toMatchObject({
        code: 'NotFound',
        message: expect.stringContaining('Pod prod/absent not found'),
      });
      // nothing was written
      expect((await readPod('db')).metadata.annotations ?? {}).toEqual({});
    } finally {
      await ds.close();
    }
  }, 30000);
});

async function waitFor(what: string, fn: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
