// Node IP autodetection on the real kernel: a namespace with several interfaces and
// addresses (link-local first on one, an excluded docker0 / cali / vxlan.tortie, IPv6,
// routes to two destinations), the built tortie-node --detect-addresses run inside it
// for each IP_AUTODETECTION_METHOD; kubernetes-internal-ip reads a Node from
// tortie-apiserver (real etcd) through a port relay; and the agent itself, started with
// only IP_AUTODETECTION_METHOD, writes the detected address to its Node resource and a
// second node claiming the same address is refused with both names.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { allCrds, type Resource } from '@tortie/api';
import { ApiServer } from '@tortie/apiserver';
import { KubernetesDatastore } from '@tortie/datastore';
import {
  Etcd,
  PortForward,
  SLOW,
  Testbed,
  describeIf,
  waitUntil,
  type Netns,
} from '@tortie/testbed';

const CLI = path.resolve(__dirname, '../dist/cli.js');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** The built tortie-node inside `ns` with exactly `env` (plus PATH). */
function node(ns: Netns, args: string[], env: NodeJS.ProcessEnv, timeout = 30000 * SLOW) {
  return new Promise<Ran>((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', ns.name, process.execPath, CLI, ...args],
      { env: { PATH: process.env.PATH, FELIX_LOGSEVERITYSCREEN: 'Error', ...env }, timeout },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const API_PORT = 16443;

function writeKubeconfig(file: string, server: string): string {
  fs.writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: {} }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
  );
  return file;
}

describeIf(['root', 'netns', 'etcd'], 'node IP autodetection on the real kernel', () => {
  let tb: Testbed;
  let ns: Netns;
  let etcd: Etcd;
  let api: ApiServer;
  let url: string;
  let kubeconfigInNs: string;
  let kubeconfigOnHost: string;
  let hostsDir: string;

  const detect = async (env: NodeJS.ProcessEnv) => {
    const r = await node(ns, ['--detect-addresses'], env);
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as { ipv4Address?: string; ipv6Address?: string };
  };

  beforeAll(async () => {
    tb = new Testbed();
    ns = await tb.netns('ipdetect');
    const sh = (cmd: string) => ns.exec(cmd.split(' '));
    // ifindex order: lo 1, then as created; Calico walks them from the highest down
    // (veths whose other ends wait in a second namespace, so that each has carrier; this
    // kernel has no dummy interfaces)
    const far = await tb.netns('ipdetectfar');
    for (const [i, name] of [
      'eth0',
      'eth1',
      'docker0',
      'cali0123456789a',
      'ens5',
      'vxlan.tortie',
    ].entries()) {
      await sh(`ip link add ${name} type veth peer name p${i} netns ${far.name}`);
      await far.exec(['ip', 'link', 'set', `p${i}`, 'up']);
      await sh(`ip link set ${name} up`);
    }
    await sh('ip addr add 169.254.9.9/16 dev eth0');
    await sh('ip addr add 10.10.0.5/24 dev eth0');
    await sh('ip -6 addr add fd00:10::5/64 dev eth0 nodad');
    await sh('ip addr add 192.168.7.9/16 dev eth1');
    await sh('ip addr add 172.17.0.1/16 dev docker0');
    await sh('ip addr add 10.65.0.1/32 dev cali0123456789a');
    await sh('ip addr add 172.20.0.3/20 dev ens5');
    await sh('ip -6 addr add 2001:db8:5::3/64 dev ens5 nodad');
    await sh('ip addr add 10.244.0.1/32 dev vxlan.tortie');
    await sh('ip route add 203.0.113.0/24 via 10.10.0.1 dev eth0');
    await sh('ip route add default via 172.20.0.1 dev ens5');
    // a host name for can-reach, seen only inside the namespace (ip netns exec mounts it)
    hostsDir = path.join('/etc/netns', ns.name);
    fs.mkdirSync(hostsDir, { recursive: true });
    tb.onCleanup(async () => fs.rmSync(hostsDir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(hostsDir, 'hosts'), '203.0.113.7 gw.example\n');

    // tortie-apiserver over real etcd, reached from the namespace at 127.0.0.1:API_PORT
    etcd = await Etcd.start(tb);
    api = new ApiServer({ etcd: [etcd.endpoint], prefix: '/ipdetect' });
    url = await api.listen();
    tb.onCleanup(() => api.close());
    for (const c of allCrds())
      await post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', c);
    for (const [name, ip] of [
      ['node-a', '192.168.7.9'],
      ['node-b', '10.3.3.3'],
    ])
      await post('/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name },
        status: {
          addresses: [
            { type: 'Hostname', address: name },
            { type: 'InternalIP', address: 'fd00:10::5' },
            { type: 'InternalIP', address: ip },
          ],
        },
      });
    await PortForward.start(tb, ns, API_PORT, {
      host: '127.0.0.1',
      port: Number(new URL(url).port),
    });
    const dir = tb.tempDir('kube');
    kubeconfigInNs = writeKubeconfig(path.join(dir, 'in-ns'), `http://127.0.0.1:${API_PORT}`);
    kubeconfigOnHost = writeKubeconfig(path.join(dir, 'on-host'), url);
  }, 120000 * SLOW);
  afterAll(async () => {
    await tb?.cleanup();
  }, 60000);

  async function post(p: string, body: object): Promise<void> {
    const res = await fetch(url + p, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`POST ${p}: ${res.status} ${await res.text()}`);
  }

  test.each([
    // highest ifindex first; vxlan.tortie excluded by default, so ens5
    ['first-found', '172.20.0.3/20'],
    ['interface=eth.*', '192.168.7.9/16'],
    // eth0's first address is link-local
    ['interface=eth0', '10.10.0.5/24'],
    ['skip-interface=ens.*,eth1', '10.10.0.5/24'],
    ['cidr=192.168.0.0/16', '192.168.7.9/16'],
    // cidr= applies no default exclusions, as in Calico
    ['cidr=10.65.0.0/16', '10.65.0.1/32'],
    // the route to 203.0.113.0/24 leaves eth0; everything else the default route via ens5
    ['can-reach=203.0.113.7', '10.10.0.5/24'],
    ['can-reach=gw.example', '10.10.0.5/24'],
    ['can-reach=198.51.100.1', '172.20.0.3/20'],
  ])('IP_AUTODETECTION_METHOD=%s picks %s', async (method, want) => {
    expect(await detect({ IP_AUTODETECTION_METHOD: method })).toEqual({ ipv4Address: want });
  });

  test('IPv6 with IP6=autodetect; explicit addresses take the interface prefix; IP=none', async () => {
    // fe80:: link-locals (every dummy has one) are passed over
    expect(await detect({ IP: '10.10.0.5', IP6: 'autodetect' })).toEqual({
      ipv4Address: '10.10.0.5/24',
      ipv6Address: '2001:db8:5::3/64',
    });
    expect(
      await detect({ IP: 'none', IP6: 'autodetect', IP6_AUTODETECTION_METHOD: 'interface=eth0' }),
    ).toEqual({ ipv6Address: 'fd00:10::5/64' });
    expect(
      await detect({ IP6: 'autodetect', IP6_AUTODETECTION_METHOD: 'can-reach=2001:db8:5::1' }),
    ).toEqual({
      ipv4Address: '172.20.0.3/20',
      ipv6Address: '2001:db8:5::3/64',
    });
  });

  test('kubernetes-internal-ip reads the Kubernetes node through the API', async () => {
    expect(
      await detect({
        IP_AUTODETECTION_METHOD: 'kubernetes-internal-ip',
        NODENAME: 'node-a',
        KUBECONFIG: kubeconfigInNs,
      }),
    ).toEqual({ ipv4Address: '192.168.7.9/16' });
    const r = await node(ns, ['--detect-addresses'], {
      IP_AUTODETECTION_METHOD: 'kubernetes-internal-ip',
      NODENAME: 'node-b',
      KUBECONFIG: kubeconfigInNs,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "IP_AUTODETECTION_METHOD=kubernetes-internal-ip found no IPv4 address: the node's InternalIP 10.3.3.3 is on none of the interfaces: lo[127.0.0.1/8], eth0[169.254.9.9/16 10.10.0.5/24], eth1[192.168.7.9/16]",
    );
    const missing = await node(ns, ['--detect-addresses'], {
      IP_AUTODETECTION_METHOD: 'kubernetes-internal-ip',
      NODENAME: 'node-x',
      KUBECONFIG: kubeconfigInNs,
    });
    expect(missing.stderr).toContain(
      'cannot read the Kubernetes node: Kubernetes node "node-x" not found',
    );
  });

  test('nothing found: the error names the method and each interface with why it was passed over', async () => {
    const r = await node(ns, ['--detect-addresses'], {
      IP_AUTODETECTION_METHOD: 'cidr=10.99.0.0/16',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'tortie-node: IP_AUTODETECTION_METHOD=cidr=10.99.0.0/16 found no IPv4 address: interfaces considered: ' +
        'vxlan.tortie (10.244.0.1/32 is outside 10.99.0.0/16), ens5 (172.20.0.3/20 is outside 10.99.0.0/16), ' +
        'cali0123456789a (10.65.0.1/32 is outside 10.99.0.0/16), docker0 (172.17.0.1/16 is outside 10.99.0.0/16), ' +
        'eth1 (192.168.7.9/16 is outside 10.99.0.0/16), ' +
        'eth0 (169.254.9.9/16 is not global unicast; 10.10.0.5/24 is outside 10.99.0.0/16), ' +
        'lo (127.0.0.1/8 is not global unicast)\n',
    );
    const unreachable = await node(ns, ['--detect-addresses'], {
      IP: 'none',
      IP6: 'autodetect',
      IP6_AUTODETECTION_METHOD: 'can-reach=2001:db8:99::1',
    });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(
      /^tortie-node: IP6_AUTODETECTION_METHOD=can-reach=2001:db8:99::1 found no IPv6 address: cannot reach 2001:db8:99::1: .*ENETUNREACH/,
    );
  });

  test(
    'the agent writes the detected address to its Node resource; a second node with it is refused',
    async () => {
      const agentEnv = {
        DATASTORE_TYPE: 'kubernetes',
        KUBECONFIG: kubeconfigInNs,
        TORTIE_BGP_SOCKET: '',
        TORTIE_CNI_SOCKET: '',
        TORTIE_STATUS_SOCKET: '',
        FELIX_HEALTHPORT: '19099',
      };
      const agent = ns.spawn([process.execPath, CLI], {
        env: {
          PATH: process.env.PATH,
          ...agentEnv,
          NODENAME: 'node-a',
          IP_AUTODETECTION_METHOD: 'kubernetes-internal-ip',
        },
      });
      let log = '';
      agent.stdout?.on('data', (d) => (log += String(d)));
      agent.stderr?.on('data', (d) => (log += String(d)));
      const ds = KubernetesDatastore.fromFile(kubeconfigOnHost);
      try {
        const n = await waitUntil(
          "node-a's Node resource with an address",
          async () => {
            if (agent.exitCode !== null) throw new Error(`the agent exited: ${log.slice(-2000)}`);
            const r = (await ds.get({ kind: 'Node', name: 'node-a' })) as
              Resource<'Node'> | undefined;
            return r?.spec.bgp?.ipv4Address ? r : undefined;
          },
          60000,
        );
        expect(n.spec.bgp?.ipv4Address).toBe('192.168.7.9/16');
        const second = await node(ns, [], {
          ...agentEnv,
          NODENAME: 'node-b',
          IP: '192.168.7.9/24',
        });
        expect(second.code).toBe(1);
        expect(second.stderr).toContain(
          'node "node-b" cannot use the IPv4 address 192.168.7.9/24: node "node-a" already uses 192.168.7.9/16 (address conflict)',
        );
        expect((await ds.get({ kind: 'Node', name: 'node-b' }))?.spec).not.toHaveProperty(
          'bgp.ipv4Address',
        );
      } finally {
        await ds.close();
        agent.kill('SIGTERM');
      }
    },
    120000 * SLOW,
  );
});
