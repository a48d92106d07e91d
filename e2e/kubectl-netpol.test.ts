// End to end in the Kubernetes-datastore lab: tortie-apiserver over real etcd, real
// kubectl 1.32, real agents (tortie-node, kubernetes datastore) on two nodes, pods
// wired by the real CNI plugin. The nodes run as on a real cluster (the lab's
// --containers): deploy/tortie.yaml's DaemonSet from the tortie/node image under runc,
// install-cni first, the agent with in-cluster config (the tortie-node service account's
// token from the TokenRequest API, ca.crt and namespace mounted at
// /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/PORT), pods
// added by executing the installed plugin with the installed conflist, whose kubeconfig
// install-cni wrote from that token. Kubernetes NetworkPolicies go in and out with
// `kubectl apply -f` / `kubectl delete -f`, as a user does; the upstream netpol
// truth tables (packages/policy/test/netpol-scenarios.ts, the table the reference
// evaluator is tested with) are then checked on real pods in namespaces x, y, z: first on
// the iptables dataplane, then, after `kubectl patch` sets FelixConfiguration nftablesMode
// Enabled and the agents restart, on the native nftables one (issue 18), the same pods
// and the same cases (each case's ports probed in one round).
import { spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, type Pod } from '@tortie/lab';
import { convertK8sNetworkPolicy, type K8sNetworkPolicy, type Protocol } from '@tortie/policy';
import { NFT_ACL_TABLE, chainName, nftChain, policyId } from '@tortie/felix';
import { SLOW, describeIf, waitUntil } from '@tortie/testbed';
import {
  ALL,
  NAMESPACES,
  PROTOCOLS,
  SCENARIOS,
  SERVED_PORTS,
  probedPorts,
  reachabilityDiff,
  type Check,
} from '../packages/policy/test/netpol-scenarios';

const NEEDS = ['root', 'netns', 'etcd', 'iptables', 'ipset', 'nft', 'kubectl', 'runc'] as const;
const SA_USER = 'system:serviceaccount:tortie-system:tortie-node';
const BACKENDS = ['iptables', 'nftables'] as const;
type Backend = (typeof BACKENDS)[number];

/** A JWT's claims (not verified: the API server does that). */
const claimsOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as {
    iss: string;
    sub: string;
    exp: number;
    iat: number;
  };

// In each pod: servers on every probed port (TCP and UDP), and a prober that takes one
// JSON line of targets on stdin and answers one line: whether each answered in time.
const POD_AGENT = `
const net = require('node:net'), dgram = require('node:dgram');
const ports = JSON.parse(process.argv[1]);
let waiting = ports.length;
const up = () => { if (--waiting === 0) process.stdout.write('ready\\n'); };
for (const { port, protocol } of ports) {
  if (protocol === 'TCP') net.createServer((c) => { c.on('error', () => {}); c.end('ok'); }).listen(port, '0.0.0.0', up);
  else { const s = dgram.createSocket('udp4'); s.on('message', (m, r) => s.send('ok', r.port, r.address)); s.bind(port, '0.0.0.0', up); }
}
const TIMEOUT = 1500;
const probe = ({ ip, port, protocol }) => new Promise((done) => {
  let over = false;
  const finish = (ok) => { if (!over) { over = true; clearTimeout(t); done(ok); } };
  const t = setTimeout(() => finish(false), TIMEOUT);
  if (protocol === 'TCP') {
    const c = net.connect(port, ip);
    c.on('data', () => { finish(true); c.destroy(); });
    c.on('error', () => finish(false));
    setTimeout(() => c.destroy(), TIMEOUT);
  } else {
    const s = dgram.createSocket('udp4');
    s.on('message', () => { finish(true); s.close(); });
    s.on('error', () => finish(false));
    const send = () => { if (!over) s.send('ping', port, ip); };
    send(); setTimeout(send, 500); setTimeout(send, 1000);
    setTimeout(() => { try { s.close(); } catch {} }, TIMEOUT);
  }
});
require('node:readline').createInterface({ input: process.stdin }).on('line', async (l) => {
  const { id, targets } = JSON.parse(l);
  const results = await Promise.all(targets.map(probe));
  process.stdout.write(JSON.stringify({ id, results }) + '\\n');
});
`;

/** The pod's long-running agent: serve, and probe on request. */
class PodAgent {
  private next = 0;
  private buf = '';
  private readonly waiting = new Map<number, (r: boolean[]) => void>();
  private constructor(private readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        if (line === 'ready') continue;
        const { id, results } = JSON.parse(line) as { id: number; results: boolean[] };
        this.waiting.get(id)?.(results);
        this.waiting.delete(id);
      }
    });
  }

  static async start(pod: Pod, ports: object[]): Promise<PodAgent> {
    const child = pod.ns.spawn([process.execPath, '-e', POD_AGENT, JSON.stringify(ports)]);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((ok, fail) => {
      child.stdout!.once('data', () => ok());
      child.once('exit', (code) =>
        fail(new Error(`pod agent in ${pod.name} exited ${code}: ${err}`)),
      );
    });
    return new PodAgent(child);
  }

  probe(targets: Array<{ ip: string; port: number; protocol: Protocol }>): Promise<boolean[]> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin!.write(JSON.stringify({ id, targets }) + '\n');
    });
  }
}

const KDD_MANIFEST = path.resolve(__dirname, '../deploy/tortie.yaml');

describeIf([...NEEDS], 'cluster: kubernetes datastore, NetworkPolicy through kubectl', () => {
  let c: Cluster;
  let dir: string;
  beforeAll(async () => {
    c = await Cluster.start({ nodes: 2, datastore: 'kubernetes', containers: true });
    await Promise.all([c.ready(0, 90_000 * SLOW), c.ready(1, 90_000 * SLOW)]);
    dir = c.tb.tempDir('e2e-policies');
  }, 600_000 * SLOW);
  afterAll(() => c?.stop(), 60_000);

  const kubectl = (args: string[]) => c.kube!.kubectl(args);
  /** kubectl as the holder of `token` (no kubeconfig user). */
  const kubectlAs = (token: string, args: string[], stdin?: string) =>
    c.kube!.kubectl(
      [
        '--server',
        c.kube!.url,
        '--certificate-authority',
        c.kube!.caFile,
        '--token',
        token,
        ...args,
      ],
      stdin,
    );
  /** The root of node i's agent container, as /proc sees it. */
  const agentRoot = (i: number) => {
    const st = spawnSync('runc', ['state', c.nodes[i].containerId!], { encoding: 'utf8' });
    expect(st.status).toBe(0);
    return `/proc/${(JSON.parse(st.stdout) as { pid: number }).pid}`;
  };

  test('each agent is the image’s tortie-node under runc, with in-cluster config: the service account’s token, no kubeconfig', async () => {
    for (const [i, n] of c.nodes.entries()) {
      const proc = agentRoot(i);
      expect(fs.existsSync(`${proc}/root/opt/tortie/packages/felix/dist/cli.js`)).toBe(true);
      const env = fs.readFileSync(`${proc}/environ`, 'utf8').split('\0');
      expect(env).toContain('KUBERNETES_SERVICE_HOST=127.0.0.1');
      expect(env).toContain('KUBERNETES_SERVICE_PORT=6443');
      expect(env).toContain('DATASTORE_TYPE=kubernetes');
      expect(env.filter((e) => e.startsWith('KUBECONFIG='))).toEqual([]);
      const sa = `${proc}/root/var/run/secrets/kubernetes.io/serviceaccount`;
      expect(fs.readFileSync(`${sa}/namespace`, 'utf8')).toBe('tortie-system');
      expect(fs.readFileSync(`${sa}/ca.crt`, 'utf8')).toBe(fs.readFileSync(c.kube!.caFile, 'utf8'));
      const token = fs.readFileSync(`${sa}/token`, 'utf8');
      // issued by tortie-apiserver's TokenRequest API for tortie-node, for a kubelet's hour
      expect(claimsOf(token)).toMatchObject({
        iss: 'https://kubernetes.default.svc.cluster.local',
        sub: SA_USER,
      });
      expect(claimsOf(token).exp - claimsOf(token).iat).toBe(3607);
      // the API server takes it, and RBAC (deploy/tortie.yaml's ClusterRole) decides
      expect(await kubectlAs(token, ['get', 'pods', '-A', '-o', 'name'])).toMatchObject({
        code: 0,
      });
      const np = await kubectlAs(
        token,
        ['create', '-f', '-'],
        JSON.stringify({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'x', namespace: 'default' },
          spec: { podSelector: {} },
        }),
      );
      expect(np.stderr).toContain(
        `User "${SA_USER}" cannot create resource "networkpolicies" in API group "networking.k8s.io"`,
      );
      // and the agent, with it, registered its node and address (IP=autodetect)
      const node = await c.ds.get({ kind: 'Node', name: n.name });
      expect(node?.spec).toMatchObject({ bgp: { ipv4Address: `${n.ip}/24` } });
    }
  });

  test('install-cni wrote the plugin, the conflist and the plugin’s kubeconfig from the token into each node', () => {
    for (const [i, n] of c.nodes.entries()) {
      const net = n.host!.path('/etc/cni/net.d');
      const list = JSON.parse(fs.readFileSync(path.join(net, '10-tortie.conflist'), 'utf8'));
      expect(list.plugins[0]).toMatchObject({
        type: 'tortie-cni',
        nodename: n.name,
        datastore_type: 'kubernetes',
        kubernetes: { kubeconfig: '/etc/cni/net.d/tortie-kubeconfig' },
        agent_socket: '/var/run/tortie/cni.sock',
      });
      const kc = JSON.parse(fs.readFileSync(path.join(net, 'tortie-kubeconfig'), 'utf8'));
      expect(kc.clusters[0].cluster.server).toBe('https://127.0.0.1:6443');
      expect(
        Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(),
      ).toBe(fs.readFileSync(c.kube!.caFile, 'utf8'));
      const sa = `${agentRoot(i)}/root/var/run/secrets/kubernetes.io/serviceaccount`;
      expect(kc.users[0].user.token).toBe(fs.readFileSync(`${sa}/token`, 'utf8'));
      expect(
        fs.statSync(path.join(n.host!.path('/opt/cni/bin'), 'tortie-cni')).mode & 0o111,
      ).not.toBe(0);
    }
  });

  test('the lab installed tortie as an operator does: every object of deploy/tortie.yaml is served', async () => {
    // kubectl get -f fails naming any object of the file the server does not have
    const got = await kubectl(['get', '-f', KDD_MANIFEST, '-o', 'name']);
    expect(got.stderr).toBe('');
    const names = got.stdout.trim().split('\n');
    expect(names).toEqual(
      expect.arrayContaining([
        'namespace/tortie-system',
        'serviceaccount/tortie-node',
        'clusterrole.rbac.authorization.k8s.io/tortie-node',
        'configmap/tortie-config',
        'daemonset.apps/tortie-node',
        'customresourcedefinition.apiextensions.k8s.io/ippools.tortie.io',
      ]),
    );
    expect(names).toHaveLength(
      fs
        .readFileSync(KDD_MANIFEST, 'utf8')
        .split(/^---$/m)
        .filter((d) => /^kind:/m.test(d)).length,
    );
  });

  /** The policies as files, one per policy, in a fresh directory for `kubectl apply -f`. */
  function writePolicies(name: string, policies: K8sNetworkPolicy[]): string {
    const d = path.join(dir, name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60));
    fs.mkdirSync(d);
    for (const p of policies)
      fs.writeFileSync(
        path.join(d, `${p.metadata.namespace}-${p.metadata.name}.json`),
        JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', ...p }),
      );
    return d;
  }

  /** The dataplane the agents program policy into (FelixConfiguration nftablesMode). */
  let backend: Backend = 'iptables';

  /**
   * Every node's policy chain names: iptables-save's ":<chain> " lines, or the chains of
   * nft's inet tortie table ("chain <name> {").
   */
  async function chains(): Promise<Set<string>> {
    const all = await Promise.all(
      c.nodes.map((n) =>
        backend === 'iptables'
          ? n.ns.exec(['iptables-save', '-t', 'filter'])
          : n.ns.exec(['nft', '-t', 'list', 'table', ...NFT_ACL_TABLE.split(' ')]),
      ),
    );
    const re = backend === 'iptables' ? /^:(\S+) /gm : /^\s*chain (\S+) \{/gm;
    return new Set(all.flatMap((out) => [...out.matchAll(re)].map((m) => m[1])));
  }

  /** The policy chains each policy gets on the nodes of the endpoints it selects. */
  function policyChains(policies: K8sNetworkPolicy[]): string[] {
    const names = backend === 'iptables' ? chainName : nftChain;
    return policies.flatMap((k) => {
      const p = convertK8sNetworkPolicy(k);
      const id = policyId({ ...p, apiVersion: 'tortie.io/v1' } as never);
      return (p.spec.types ?? []).map((t) =>
        t === 'Ingress' ? names.policyIn(id) : names.policyOut(id),
      );
    });
  }

  test('a NetworkPolicy applied with kubectl is enforced across nodes; kubectl delete restores traffic', async () => {
    const a = await c.addPod(0, 'a', { app: 'a' });
    const b = await c.addPod(1, 'b', { app: 'b' });
    await c.serve(b, 8080);
    await waitUntil(
      'a reaches b across nodes',
      async () => (await c.ask(a, b.ip, 8080))[0]?.startsWith('b '),
      20_000,
      200,
    );
    const file = path.join(dir, 'b-from-nobody.yaml');
    fs.writeFileSync(
      file,
      [
        'apiVersion: networking.k8s.io/v1',
        'kind: NetworkPolicy',
        'metadata: {name: b-from-nobody, namespace: default}',
        'spec: {podSelector: {matchLabels: {app: b}}, policyTypes: [Ingress]}',
        '',
      ].join('\n'),
    );
    const applied = await kubectl(['apply', '-f', file]);
    expect(applied).toMatchObject({ code: 0 });
    expect(applied.stdout).toContain('networkpolicy.networking.k8s.io/b-from-nobody created');
    await waitUntil(
      'a blocked from b on node2',
      async () => (await c.ask(a, b.ip, 8080))[0] === 'timeout',
      15_000,
      200,
    );
    expect(await c.ping(a, b.ip)).toBe(false);
    expect(await c.ping(b, a.ip)).toBe(true); // b's egress and a's ingress are open
    const got = await kubectl(['get', 'networkpolicies', '-o', 'wide']);
    expect(got.stdout).toMatch(/b-from-nobody\s+app=b/);
    const deleted = await kubectl(['delete', '-f', file]);
    expect(deleted.stdout).toContain('networkpolicy.networking.k8s.io "b-from-nobody" deleted');
    await waitUntil(
      'a reaches b again',
      async () => (await c.ask(a, b.ip, 8080))[0]?.startsWith('b '),
      15_000,
      200,
    );
    await c.deletePod(a);
    await c.deletePod(b);
  });

  // The table runs twice on the same pods: on iptables (the default), then with
  // FelixConfiguration nftablesMode Enabled (issue 18: the matrices run unchanged on the
  // native nftables dataplane). Every case on each backend, each judged only once the
  // policy's chains are in that backend's tables.
  describe('upstream netpol truth tables through kubectl, on real pods in namespaces x, y, z', () => {
    const agents = new Map<string, PodAgent>();
    const ips = new Map<string, string>();
    beforeAll(async () => {
      for (const ns of NAMESPACES) await c.ensureNamespace(ns, { ns });
      // named container ports as upstream's pods declare them
      const ports = SERVED_PORTS.flatMap((port) =>
        PROTOCOLS.map((protocol) => ({
          name: `serve-${port}-${protocol.toLowerCase()}`,
          containerPort: port,
          protocol,
        })),
      );
      // the nine pods spread over both nodes
      const pods = await Promise.all(
        ALL.map((id, k) => {
          const [ns, name] = id.split('/');
          return c.addPod(k % 2, name, { pod: name }, ns, ports);
        }),
      );
      const served = probedPorts().filter((p) => p.protocol !== 'SCTP');
      await Promise.all(
        pods.map(async (pod, k) => {
          agents.set(ALL[k], await PodAgent.start(pod, served));
          ips.set(ALL[k], pod.ip);
        }),
      );
    }, 180_000 * SLOW);

    /**
     * Each pod probes each other pod on every port of `checks` at once: the observed
     * matrices, one per check (a denied probe costs its timeout once per round, not once
     * per port).
     */
    async function observe(checks: Check[]): Promise<Array<Map<string, boolean>>> {
      const out = checks.map(() => new Map<string, boolean>());
      await Promise.all(
        ALL.map(async (from) => {
          const others = ALL.filter((to) => to !== from);
          const targets = checks.flatMap((chk) =>
            others.map((to) => ({ ip: ips.get(to)!, port: chk.port, protocol: chk.protocol })),
          );
          const r = await agents.get(from)!.probe(targets);
          checks.forEach((_, k) =>
            others.forEach((to, i) => out[k].set(`${from}>${to}`, r[k * others.length + i])),
          );
        }),
      );
      return out;
    }

    /** Waits (bounded) until every observed matrix is the expected one; throws with the diffs. */
    async function expectReachability(checks: Check[]): Promise<void> {
      let diffs: string[];
      const end = Date.now() + 30_000 * SLOW;
      do {
        const seen = await observe(checks);
        diffs = checks.flatMap(
          (chk, k) =>
            reachabilityDiff(
              chk.want,
              (f, t) => seen[k].get(`${f}>${t}`)!,
              `${backend} ${chk.protocol}/${chk.port}`,
            ) ?? [],
        );
      } while (diffs.length && Date.now() < end);
      if (diffs.length) throw new Error(diffs.join('\n'));
    }

    for (const b of BACKENDS)
      describe(b, () => {
        if (b === 'nftables')
          beforeAll(async () => {
            // as an operator switches it: kubectl patch, then the agents restart (the mode
            // takes effect at start, as Felix's does)
            const r = await kubectl([
              'patch',
              'felixconfigurations.tortie.io',
              'default',
              '--type',
              'merge',
              '-p',
              JSON.stringify({ spec: { nftablesMode: 'Enabled' } }),
            ]);
            expect(r).toMatchObject({ code: 0 });
            for (const i of [0, 1]) {
              await c.stopAgent(i);
              c.nodes[i].log.length = 0; // aclDataplane reads the first choice in the log
              c.startAgent(i);
            }
            await Promise.all([c.ready(0, 90_000 * SLOW), c.ready(1, 90_000 * SLOW)]);
            for (const i of [0, 1])
              expect(c.aclDataplane(i)).toEqual({
                dataplane: 'nftables',
                reason: 'nftablesMode is Enabled',
              });
            // the iptables rules are gone: what the table sees below is nftables' alone
            await waitUntil(
              'no tortie chain left in iptables',
              async () =>
                (
                  await Promise.all(
                    c.nodes.map((n) => n.ns.exec(['iptables-save', '-t', 'filter'])),
                  )
                ).every((save) => !save.includes(':tortie-')),
              30_000 * SLOW,
              500,
            );
            backend = 'nftables';
          }, 180_000 * SLOW);

        // SCTP: this kernel has no sctp module, so those checks run in the evaluator only
        test.each(SCENARIOS.map((s) => [s.name, s] as const))(
          '%s',
          async (name, s) => {
            expect(backend).toBe(b);
            const policies = s.policies((pod) => ips.get(pod)!);
            const d = writePolicies(`${b}-${name}`, policies);
            if (policies.length) {
              const r = await kubectl(['apply', '-f', d]);
              expect(r).toMatchObject({ code: 0 });
              // the agents have the policies in their dataplane before anything is judged
              // (else an all-allowed expectation would hold with no policy at all)
              const want = policyChains(policies);
              await waitUntil(
                `policy chains ${want.join(', ')} programmed (${b})`,
                async () => {
                  const have = await chains();
                  return want.every((ch) => have.has(ch));
                },
                30_000 * SLOW,
                200,
              );
            }
            try {
              await expectReachability(s.checks.filter((x) => x.protocol !== 'SCTP'));
            } finally {
              if (policies.length) {
                const r = await kubectl(['delete', '-f', d]);
                expect(r).toMatchObject({ code: 0 });
                const gone = policyChains(policies);
                await waitUntil(
                  `policy chains removed (${b})`,
                  async () => {
                    const have = await chains();
                    return gone.every((ch) => !have.has(ch));
                  },
                  30_000 * SLOW,
                  200,
                );
              }
            }
          },
          180_000 * SLOW,
        );
      });
  });

  // last: it stops node2's agent
  test(
    'with no agent on the node, the installed plugin itself reaches tortie-apiserver through install-cni’s kubeconfig',
    async () => {
      await c.stopAgent(1);
      const kcFile = path.join(c.nodes[1].host!.path('/etc/cni/net.d'), 'tortie-kubeconfig');
      const good = fs.readFileSync(kcFile, 'utf8');
      // a token the API server refuses: the plugin's ADD fails with its 401
      const bad = JSON.parse(good);
      bad.users[0].user.token = 'not-a-token';
      fs.writeFileSync(kcFile, JSON.stringify(bad));
      try {
        await expect(c.addPod(1, 'refused')).rejects.toThrow(/Unauthorized|401/);
      } finally {
        fs.writeFileSync(kcFile, good);
      }
      const p = await c.addPod(1, 'solo', { app: 'solo' });
      expect(p.ip).toMatch(/^10\.244\./);
      // its address is recorded in the Kubernetes API (IPAM handle of the pod's container)
      const handles = await kubectl(['get', 'ipamhandles.tortie.io', '-o', 'name']);
      expect(handles.stdout).toContain(`k8s-pod-network.${p.containerId}`.toLowerCase());
    },
    120_000 * SLOW,
  );
});
