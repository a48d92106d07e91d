// End to end in the Kubernetes-datastore lab: tortie-apiserver over real etcd, real
// kubectl 1.32, real agents (tortie-node, kubernetes datastore) on two nodes, pods
// wired by the real CNI plugin. Kubernetes NetworkPolicies go in and out with
// `kubectl apply -f` / `kubectl delete -f`, as a user does; the upstream netpol
// truth tables (packages/policy/test/netpol-scenarios.ts, the table the reference
// evaluator is tested with) are then checked on real pods in namespaces x, y, z.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, type Pod } from '@tortie/lab';
import { convertK8sNetworkPolicy, type K8sNetworkPolicy, type Protocol } from '@tortie/policy';
import { chainName, policyId } from '@tortie/felix';
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

const NEEDS = ['root', 'netns', 'etcd', 'iptables', 'ipset', 'nft', 'kubectl'] as const;

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
    c = await Cluster.start({ nodes: 2, datastore: 'kubernetes' });
    await Promise.all([c.ready(0, 60_000 * SLOW), c.ready(1, 60_000 * SLOW)]);
    dir = c.tb.tempDir('e2e-policies');
  }, 120_000 * SLOW);
  afterAll(() => c?.stop(), 60_000);

  const kubectl = (args: string[]) => c.kube!.kubectl(args);

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

  /** Every node's iptables chains (iptables-save's "-N"/":" lines name them). */
  async function chains(): Promise<string> {
    const all = await Promise.all(c.nodes.map((n) => n.ns.exec(['iptables-save', '-t', 'filter'])));
    return all.join('\n');
  }

  /** The policy chains each policy gets on the nodes of the endpoints it selects. */
  function policyChains(policies: K8sNetworkPolicy[]): string[] {
    return policies.flatMap((k) => {
      const p = convertK8sNetworkPolicy(k);
      const id = policyId({ ...p, apiVersion: 'tortie.io/v1' } as never);
      return (p.spec.types ?? []).map((t) =>
        t === 'Ingress' ? chainName.policyIn(id) : chainName.policyOut(id),
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
      for (const [k, pod] of pods.entries()) {
        agents.set(ALL[k], await PodAgent.start(pod, served));
        ips.set(ALL[k], pod.ip);
      }
    }, 180_000 * SLOW);

    /** Each pod probes each other pod at once: the observed matrix. */
    async function observe(port: number, protocol: Protocol): Promise<Map<string, boolean>> {
      const out = new Map<string, boolean>();
      await Promise.all(
        ALL.map(async (from) => {
          const others = ALL.filter((to) => to !== from);
          const r = await agents
            .get(from)!
            .probe(others.map((to) => ({ ip: ips.get(to)!, port, protocol })));
          others.forEach((to, i) => out.set(`${from}>${to}`, r[i]));
        }),
      );
      return out;
    }

    /** Waits (bounded) until the observed matrix is the expected one; throws with the diff. */
    async function expectReachability(chk: Check): Promise<void> {
      let diff: string | undefined;
      const end = Date.now() + 30_000 * SLOW;
      do {
        const seen = await observe(chk.port, chk.protocol);
        diff = reachabilityDiff(
          chk.want,
          (f, t) => seen.get(`${f}>${t}`)!,
          `${chk.protocol}/${chk.port}`,
        );
      } while (diff && Date.now() < end);
      if (diff) throw new Error(diff);
    }

    // SCTP: this kernel has no sctp module, so those checks run in the evaluator only
    test.each(SCENARIOS.map((s) => [s.name, s] as const))(
      '%s',
      async (name, s) => {
        const policies = s.policies((pod) => ips.get(pod)!);
        const d = writePolicies(name, policies);
        if (policies.length) {
          const r = await kubectl(['apply', '-f', d]);
          expect(r).toMatchObject({ code: 0 });
          // the agents have the policies in their dataplane before anything is judged
          // (else an all-allowed expectation would hold with no policy at all)
          const want = policyChains(policies);
          await waitUntil(
            `policy chains ${want.join(', ')} programmed`,
            async () => {
              const have = await chains();
              return want.every((ch) => have.includes(`:${ch} `));
            },
            30_000 * SLOW,
            200,
          );
        }
        try {
          for (const chk of s.checks.filter((x) => x.protocol !== 'SCTP'))
            await expectReachability(chk);
        } finally {
          if (policies.length) {
            const r = await kubectl(['delete', '-f', d]);
            expect(r).toMatchObject({ code: 0 });
            const gone = policyChains(policies);
            await waitUntil(
              'policy chains removed',
              async () => {
                const have = await chains();
                return gone.every((ch) => !have.includes(`:${ch} `));
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
