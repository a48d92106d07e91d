// The real tortie-cni binary, run as a container runtime runs it (config on stdin,
// CNI_* in the environment) inside a "node" namespace, against pod namespaces this test
// creates and a real etcd (reached from the node namespace through a unix-socket relay,
// so no test namespace touches the host network).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseResource, type Resource } from '@tortie/api';
import { EtcdDatastore, interfaceName } from '@tortie/datastore';
import { IpamClient, isClean } from '@tortie/ipam';
import {
  Etcd,
  PortForward,
  Testbed,
  describeIf,
  stopProcess,
  waitUntil,
  type Netns,
} from '@tortie/testbed';
import { resultSchema } from '../src';

const CLI = path.resolve(__dirname, '../dist/cli.js');
/** The C forwarder a runtime execs (native/cni-shim.c), built by `npm run build`. */
const SHIM = path.resolve(__dirname, '../dist/tortie-cni');
const ETCD_PORT = 23790;

interface Outcome {
  code: number;
  out: Record<string, unknown>;
}

describeIf(['root', 'netns', 'etcd'], 'tortie-cni binary in network namespaces', () => {
  let tb: Testbed;
  let etcd: Etcd;
  let node: Netns;
  let ds: EtcdDatastore;
  let ipam: IpamClient;

  const conf = (extra: object = {}) => ({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'tortie',
    nodename: 'node-a',
    mtu: 1400,
    datastore_type: 'etcdv3',
    etcd_endpoints: `http://127.0.0.1:${ETCD_PORT}`,
    ipam: { type: 'tortie-ipam' },
    ...extra,
  });

  function cni(
    env: Record<string, string>,
    stdin: object | string,
    binary: string[] = [process.execPath, CLI],
  ): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      const p = spawn('ip', ['netns', 'exec', node.name, ...binary], {
        env: { PATH: process.env.PATH, CNI_PATH: '/opt/cni/bin', ...env },
      });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('error', reject);
      p.on('close', (code) => {
        try {
          const parsed = out.trim() ? (JSON.parse(out) as Record<string, unknown>) : {};
          // a crash prints nothing on stdout: show its stderr in the failure
          resolve({ code: code ?? -1, out: code !== 0 && !out.trim() ? { stderr: err } : parsed });
        } catch {
          reject(new Error(`not JSON on stdout: ${out} (stderr: ${err})`));
        }
      });
      p.stdin.end(typeof stdin === 'string' ? stdin : JSON.stringify(stdin));
    });
  }

  const podEnv = (cmd: string, pod: Netns | string, name: string, id: string) => ({
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: id,
    CNI_NETNS: typeof pod === 'string' ? pod : `/var/run/netns/${pod.name}`,
    CNI_IFNAME: 'eth0',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${id}`,
  });

  /** The stand-in agent (fixtures/agent-serve.js) in the node namespace, listening. */
  async function startAgent(socket: string) {
    const proc = node.spawn([
      process.execPath,
      path.join(__dirname, 'fixtures/agent-serve.js'),
      socket,
      `http://127.0.0.1:${ETCD_PORT}`,
      'node-a',
    ]);
    const agent = { proc, said: '' };
    proc.stdout!.on('data', (d: Buffer) => (agent.said += d.toString()));
    await waitUntil('the agent listens', () => agent.said.includes('listening'));
    return agent;
  }

  beforeAll(async () => {
    tb = new Testbed();
    etcd = await Etcd.start(tb);
    node = await tb.netns('node');
    await PortForward.start(tb, node, ETCD_PORT, {
      host: '127.0.0.1',
      port: Number(new URL(etcd.endpoint).port),
    });
    // the node's own address, for pods to ping
    await node.exec(['ip', 'addr', 'add', '192.168.200.1/32', 'dev', 'lo']);
    await node.exec(['ip', 'addr', 'add', 'fd00:200::1/128', 'dev', 'lo']);
    ds = new EtcdDatastore([etcd.endpoint]);
    ipam = new IpamClient(ds);
    for (const doc of [
      { kind: 'IPPool', metadata: { name: 'pool' }, spec: { cidr: '10.65.0.0/24' } },
      { kind: 'IPPool', metadata: { name: 'pool6' }, spec: { cidr: 'fd00:65::/120' } },
      { kind: 'Node', metadata: { name: 'node-a' }, spec: {} },
    ]) {
      await ds.create(parseResource({ apiVersion: 'tortie.io/v1', ...doc }));
    }
  });
  afterAll(async () => {
    await ds?.close();
    await tb.cleanup();
  });

  test('VERSION lists the supported versions', async () => {
    const r = await cni({ CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' });
    expect(r).toEqual({
      code: 0,
      out: {
        cniVersion: '1.0.0',
        supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
      },
    });
  });

  test('ADD wires a working pod; CHECK passes, then catches a deleted route; DEL cleans up', async () => {
    const pod = await tb.netns('pod');
    const add = await cni(podEnv('ADD', pod, 'web', 'c0ffee01'), conf());
    expect(add).toMatchObject({ code: 0 });
    const result = resultSchema.parse(add.out);
    const ip = result.ips[0].address.split('/')[0];
    const host = interfaceName('ns1', 'web');
    expect(result).toMatchObject({
      cniVersion: '1.0.0',
      interfaces: [
        { name: host, mac: 'ee:ee:ee:ee:ee:ee' },
        { name: 'eth0', sandbox: `/var/run/netns/${pod.name}` },
      ],
      ips: [{ address: `${ip}/32`, interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }],
    });
    expect(ip).toMatch(/^10\.65\.0\./);

    // kernel state, both sides
    expect(await pod.exec(['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).toContain(`${ip}/32`);
    expect(await pod.exec(['ip', 'route'])).toContain('default via 169.254.1.1 dev eth0');
    expect(await pod.exec(['ip', 'neigh', 'show', '169.254.1.1'])).toContain(
      'lladdr ee:ee:ee:ee:ee:ee PERMANENT',
    );
    expect(await node.exec(['ip', 'route', 'show', `${ip}/32`])).toContain(
      `dev ${host} scope link`,
    );
    expect((await node.exec(['cat', `/proc/sys/net/ipv4/conf/${host}/proxy_arp`])).trim()).toBe(
      '1',
    );
    expect(await node.exec(['ip', '-o', 'link', 'show', host])).toContain('mtu 1400');
    // traffic: pod -> node address through the gateway, node -> pod through the host route
    await pod.exec(['ping', '-c', '1', '-W', '2', '192.168.200.1']);
    await node.exec(['ping', '-c', '1', '-W', '2', ip]);

    // datastore: endpoint and IPAM
    const weps = (await ds.list({ kind: 'WorkloadEndpoint', namespace: 'ns1' }))
      .items as Resource<'WorkloadEndpoint'>[];
    expect(weps).toHaveLength(1);
    expect(weps[0].metadata.name).toBe('node--a-k8s-web-eth0');
    expect(weps[0].spec).toMatchObject({
      node: 'node-a',
      orchestrator: 'k8s',
      pod: 'web',
      containerID: 'c0ffee01',
      endpoint: 'eth0',
      interfaceName: host,
      mac: (result.interfaces![1] as { mac: string }).mac,
      ipNetworks: [`${ip}/32`],
      profiles: ['kns.ns1', 'ksa.ns1.default'],
    });
    expect(weps[0].metadata.labels).toMatchObject({ 'projectcalico.org/namespace': 'ns1' });
    expect(await ipam.ipsByHandle('k8s-pod-network.c0ffee01')).toEqual([ip]);

    // CHECK with the previous result
    const prev = conf({ prevResult: result });
    expect(await cni(podEnv('CHECK', pod, 'web', 'c0ffee01'), prev)).toEqual({ code: 0, out: {} });
    await node.exec(['ip', 'route', 'del', `${ip}/32`]);
    const bad = await cni(podEnv('CHECK', pod, 'web', 'c0ffee01'), prev);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatchObject({ code: 101, msg: 'CHECK found differences' });
    expect(bad.out.details).toBe(`host route to ${ip} via ${host} is missing`);

    // DEL, twice, and once more after the netns is gone
    expect((await cni(podEnv('DEL', pod, 'web', 'c0ffee01'), conf())).code).toBe(0);
    await expect(node.exec(['ip', 'link', 'show', host])).rejects.toThrow();
    expect(await pod.exec(['ip', '-o', 'link'])).not.toContain('eth0');
    expect(await ipam.ipsByHandle('k8s-pod-network.c0ffee01')).toEqual([]);
    expect((await ds.list({ kind: 'WorkloadEndpoint', namespace: 'ns1' })).items).toEqual([]);
    expect((await cni(podEnv('DEL', pod, 'web', 'c0ffee01'), conf())).code).toBe(0);
    await pod.destroy();
    expect((await cni(podEnv('DEL', pod, 'web', 'c0ffee01'), conf())).code).toBe(0);
  });

  test('dual stack: a /128 with its default route; a 0.4.0 config gets the 0.4.0 result shape', async () => {
    const pod = await tb.netns('pod6');
    const add = await cni(
      podEnv('ADD', pod, 'dual', 'd0d0'),
      conf({ cniVersion: '0.4.0', ipam: { type: 'tortie-ipam', assign_ipv6: 'true' } }),
    );
    expect(add.code).toBe(0);
    const r = resultSchema.parse(add.out);
    expect(r.ips.map((i) => i.version)).toEqual(['4', '6']);
    const ip6 = r.ips[1].address.split('/')[0];
    expect(r.ips[1].address).toMatch(/^fd00:65::[0-9a-f]+\/128$/);
    expect(await pod.exec(['ip', '-6', 'route'])).toContain(
      'default via fe80::ecee:eeff:feee:eeee dev eth0',
    );
    await node.exec(['ping', '-6', '-c', '1', '-W', '2', ip6]);
    await pod.exec(['ping', '-6', '-c', '1', '-W', '2', 'fd00:200::1']);
    expect((await cni(podEnv('DEL', pod, 'dual', 'd0d0'), conf())).code).toBe(0);
  });

  test('a failure part way through ADD rolls back: no address, no veth', async () => {
    const before = (await ipam.check()).summary.allocated;
    const r = await cni(
      podEnv('ADD', '/var/run/netns/tt-does-not-exist', 'ghost', 'dead01'),
      conf(),
    );
    expect(r.code).toBe(1);
    expect(r.out).toMatchObject({ code: 5, msg: 'setting up the pod interface failed' });
    expect((await ipam.check()).summary.allocated).toBe(before);
    await expect(
      node.exec(['ip', 'link', 'show', interfaceName('ns1', 'ghost')]),
    ).rejects.toThrow();
    expect(await ipam.ipsByHandle('k8s-pod-network.dead01')).toEqual([]);
  });

  test('bad input gets the spec error codes, naming what was wrong', async () => {
    const pod = await tb.netns('podbad');
    const noEnv = await cni({ CNI_COMMAND: 'ADD', CNI_IFNAME: 'eth0' }, conf());
    expect(noEnv.out).toMatchObject({ code: 4, msg: 'CNI_CONTAINERID is required for ADD' });
    const notJson = await cni(podEnv('ADD', pod, 'x', 'x1'), '{nope');
    expect(notJson.out).toMatchObject({ code: 6, msg: 'network configuration is not JSON' });
    const badMtu = await cni(podEnv('ADD', pod, 'x', 'x1'), conf({ mtu: 'big' }));
    expect(badMtu.out).toMatchObject({ code: 7, msg: 'invalid network configuration' });
    expect(String(badMtu.out.details)).toContain('mtu');
    const version = await cni(podEnv('ADD', pod, 'x', 'x1'), conf({ cniVersion: '9.9.9' }));
    expect(version.out).toMatchObject({ code: 1, msg: 'cniVersion 9.9.9 is not supported' });
    const pool = await cni(
      podEnv('ADD', pod, 'x', 'x1'),
      conf({ ipam: { type: 'tortie-ipam', ipv4_pools: ['missing'] } }),
    );
    expect(pool.out).toMatchObject({
      code: 100,
      msg: 'IPAM failed',
      details: 'IPv4 pool "missing" does not exist',
    });
    expect(isClean(await ipam.check())).toBe(true);
  });

  test('GC releases allocations the runtime no longer lists; STATUS reports ready', async () => {
    const pods = [await tb.netns('gc1'), await tb.netns('gc2')];
    await cni(podEnv('ADD', pods[0], 'keep', 'aa01'), conf());
    await cni(podEnv('ADD', pods[1], 'drop', 'aa02'), conf());
    const gc = await cni(
      { CNI_COMMAND: 'GC' },
      conf({
        cniVersion: '1.1.0',
        'cni.dev/valid-attachments': [{ containerID: 'aa01', ifname: 'eth0' }],
      }),
    );
    expect(gc.code).toBe(0);
    expect(await ipam.ipsByHandle('k8s-pod-network.aa01')).toHaveLength(1);
    expect(await ipam.ipsByHandle('k8s-pod-network.aa02')).toEqual([]);
    expect((await cni({ CNI_COMMAND: 'STATUS' }, conf({ cniVersion: '1.1.0' }))).code).toBe(0);
    const down = await cni(
      { CNI_COMMAND: 'STATUS' },
      conf({ cniVersion: '1.1.0', etcd_endpoints: 'http://127.0.0.1:1' }),
    );
    expect(down.out).toMatchObject({ code: 50, msg: 'datastore unavailable' });
    await cni(podEnv('DEL', pods[0], 'keep', 'aa01'), conf());
    await cni(podEnv('DEL', pods[1], 'drop', 'aa02'), conf());
  });

  test.each([
    ['the TypeScript binary', [process.execPath, CLI]],
    ['the C forwarder', [SHIM]],
  ])(
    'through the agent socket with %s: ADD runs in the agent and waits for its policy; without the agent the plugin runs here',
    async (_, bin) => {
      const tag = bin.length === 1 ? 'c' : 'js';
      const socket = path.join(tb.tempDir('agent'), 'cni.sock');
      const agent = await startAgent(socket);
      expect(fs.statSync(socket).mode & 0o777).toBe(0o600); // root's commands: root only
      const viaAgent = conf({ agent_socket: socket, policy_setup_timeout_seconds: 5 });
      const pod = await tb.netns(`podsock${tag}`);

      let finished = false;
      const adding = cni(podEnv('ADD', pod, `sock${tag}`, `50c0${tag}`), viaAgent, bin).then(
        (r) => {
          finished = true;
          return r;
        },
      );
      await waitUntil('ADD waits for the policy', () => agent.said.includes('policyReady'));
      const wait = JSON.parse(agent.said.split('\n').find((l) => l.includes('policyReady'))!) as {
        policyReady: { iface: string; ips: string[]; timeoutMs: number };
      };
      const host = interfaceName('ns1', `sock${tag}`);
      expect(wait.policyReady).toMatchObject({ iface: host, timeoutMs: 5000 });
      // the interface is up already, but the runtime does not get the result yet
      expect(await node.exec(['ip', '-o', 'link', 'show', host])).toContain(host);
      expect(finished).toBe(false);
      agent.proc.stdin!.write('ready\n');
      const add = await adding;
      expect(add.code).toBe(0);
      const ip = resultSchema.parse(add.out).ips[0].address;
      expect(wait.policyReady.ips).toEqual([ip.split('/')[0]]);
      await pod.exec(['ping', '-c', '1', '-W', '2', '192.168.200.1']);

      // the agent serves one node: a config naming another is refused, naming both
      const wrong = await cni(
        podEnv('ADD', pod, 'other', `50c1${tag}`),
        conf({ agent_socket: socket, nodename: 'node-b' }),
        bin,
      );
      expect(wrong.code).toBe(1);
      expect(wrong.out).toMatchObject({ code: 7 });
      expect(String(wrong.out.msg)).toMatch(/"node-b".*agent.*"node-a"/);

      // agent gone, its socket file left behind: the binary runs DEL itself
      await stopProcess(agent.proc);
      expect((await cni(podEnv('DEL', pod, `sock${tag}`, `50c0${tag}`), viaAgent, bin)).code).toBe(
        0,
      );
      await expect(node.exec(['ip', 'link', 'show', host])).rejects.toThrow();
      expect(await ipam.ipsByHandle(`k8s-pod-network.50c0${tag}`)).toEqual([]);
      // and VERSION and a garbled config are answered by the plugin itself
      expect(await cni({ CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' }, bin)).toMatchObject({
        code: 0,
        out: { cniVersion: '1.0.0', supportedVersions: expect.arrayContaining(['1.0.0']) },
      });
      const garbled = await cni(podEnv('ADD', pod, 'g', 'g1'), '{"agent_socket": "', bin);
      expect(garbled).toMatchObject({ code: 1, out: { code: 6 } });
    },
  );

  test("through the agent in etcd mode with a kubeconfig, the pod's annotations choose its address", async () => {
    // a stand-in Kubernetes API in the node namespace: one pod with a fixed address
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'fixed',
        namespace: 'ns1',
        annotations: { 'cni.projectcalico.org/ipAddrs': '["10.65.0.77"]' },
      },
      spec: { containers: [], nodeName: 'node-a' },
    };
    const api = node.spawn([
      process.execPath,
      '-e',
      `require('http').createServer((q, r) => {
        const hit = q.url.startsWith('/api/v1/namespaces/ns1/pods/fixed');
        r.writeHead(hit ? 200 : 404, { 'content-type': 'application/json' });
        r.end(hit ? process.argv[1] : JSON.stringify({ kind: 'Status', code: 404 }));
      }).listen(18443, '127.0.0.1', () => console.log('listening'))`,
      JSON.stringify(pod),
    ]);
    const dir = tb.tempDir('kube');
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'c',
            cluster: { server: 'http://127.0.0.1:18443', 'insecure-skip-tls-verify': true },
          },
        ],
        users: [{ name: 'u', user: {} }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }),
    );
    let apiSaid = '';
    api.stdout!.on('data', (d: Buffer) => (apiSaid += d.toString()));
    await waitUntil('the API listens', () => apiSaid.includes('listening'));
    const socket = path.join(dir, 'cni.sock');
    const agent = await startAgent(socket);
    const ns = await tb.netns('podfixed');
    const c = conf({ agent_socket: socket, kubernetes: { kubeconfig } });
    const add = await cni(podEnv('ADD', ns, 'fixed', 'f1xed'), c, [SHIM]);
    expect(add).toMatchObject({ code: 0 });
    expect(resultSchema.parse(add.out).ips[0].address).toBe('10.65.0.77/32');
    expect((await cni(podEnv('DEL', ns, 'fixed', 'f1xed'), c, [SHIM])).code).toBe(0);
    await stopProcess(agent.proc);
    await stopProcess(api);
  });
});
