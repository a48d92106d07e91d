// SCTP policy on a real kernel: a Kubernetes NetworkPolicy with SCTP ports (a number and
// a named port) and a GlobalNetworkPolicy with SCTP ports and notPorts go through the
// calculation graph into the real AclManager in a node namespace; real SCTP associations
// between pod namespaces must get the reference evaluator's verdicts, on iptables-legacy
// and -nft.
//
// This machine's kernel has no SCTP. e2e/kernel.vm.test.ts runs this file inside Debian's
// kernel under QEMU (the testbed's VM runner) where the kernel lacks SCTP, and on the
// host where it has it; the name (*.vmtest.ts) keeps it out of jest's own runs.
import type { Resource } from '@tortie/api';
import { convertK8sNetworkPolicy, Evaluator, type Flow } from '@tortie/policy';
import { SLOW, Testbed, describeIf, python3, type Netns } from '@tortie/testbed';
import { CalcGraph } from '../src/calc/calc-graph';
import { linuxAclManager } from '../src/dataplane/acl';
import { policyWorld } from '../src/policy-world';
import { namespace, R, wep } from './calc-fixtures';
import { nodeNetns, podNetns } from './pod-netns';

const PORTS = [9000, 9001, 9002, 9003];
const PODS = {
  a: { ns: 'ns1', ip: '10.66.0.1', labels: { app: 'a' } },
  b: { ns: 'ns1', ip: '10.66.0.2', labels: { app: 'b' } },
  c: { ns: 'ns2', ip: '10.66.0.3', labels: { app: 'c' } },
} as const;
type Pod = keyof typeof PODS;

const k8sPolicy = convertK8sNetworkPolicy({
  metadata: { name: 'b-sctp-from-a', namespace: 'ns1' },
  spec: {
    podSelector: { matchLabels: { app: 'b' } },
    ingress: [
      {
        from: [{ podSelector: { matchLabels: { app: 'a' } } }],
        ports: [
          { protocol: 'SCTP', port: 9000 },
          { protocol: 'SCTP', port: 'sctp-x' },
        ],
      },
    ],
  },
});

const RESOURCES: Resource[] = [
  namespace('ns1'),
  namespace('ns2'),
  ...Object.entries(PODS).map(([name, p]) =>
    wep(p.ns, name, 'n1', p.ip, p.labels, {
      interfaceName: `calisctp0000${name}`,
      // b calls its SCTP port 9002 "sctp-x"
      ...(name === 'b' ? { ports: [{ name: 'sctp-x', protocol: 'SCTP', port: 9002 }] } : {}),
    }),
  ),
  R('NetworkPolicy', k8sPolicy.metadata.name, k8sPolicy.spec, { namespace: 'ns1' }),
  R('GlobalNetworkPolicy', 'c-sctp', {
    selector: "app == 'c'",
    ingress: [
      { action: 'Deny', protocol: 'SCTP', destination: { ports: [9001] } },
      { action: 'Allow', protocol: 'SCTP', destination: { notPorts: [9003] } },
    ],
  }),
];

// An SCTP server on every port (one-to-one style sockets, answering each message).
const SERVE = `
import socket, sys, threading
def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', port)); s.listen(16)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(c.recv(16))
        except OSError:
            pass
        c.close()
for p in ${JSON.stringify(PORTS)}:
    threading.Thread(target=serve, args=(p,), daemon=True).start()
print('ready', flush=True)
threading.Event().wait()
`;
// Connects to every [ip, port] of argv[1] at once; prints a JSON list of booleans.
const PROBE = `
import json, socket, sys, threading
targets = json.loads(sys.argv[1]); out = [False] * len(targets)
def probe(i, ip, port):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
        s.settimeout(2)
        s.connect((ip, port)); s.sendall(b'x'); out[i] = s.recv(16) == b'x'; s.close()
    except OSError:
        pass
ts = [threading.Thread(target=probe, args=(i, ip, port)) for i, (ip, port) in enumerate(targets)]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps(out))
`;

function suite(backend: 'legacy' | 'nft') {
  describeIf(
    ['root', 'netns', 'iptables', 'ipset', 'sctp'],
    `SCTP policy on the real kernel (iptables-${backend})`,
    () => {
      const tb = new Testbed();
      const pods = {} as Record<Pod, Netns>;
      let node: Netns;
      beforeAll(async () => {
        node = await nodeNetns(tb, `sctpnode${backend}`);
        // under emulation a python start costs seconds: the pods come up together
        await Promise.all(
          (Object.entries(PODS) as Array<[Pod, (typeof PODS)[Pod]]>).map(async ([name, p]) => {
            pods[name] = await podNetns(tb, node, `sctp${name}`, {
              iface: `calisctp0000${name}`,
              v4: p.ip,
            });
            // the interpreter itself, not a shim on PATH (pyenv's runs ~240 processes)
            const server = pods[name].spawn([python3(), '-c', SERVE]);
            await new Promise((r) => server.stdout!.once('data', r));
          }),
        );
        const acl = linuxAclManager({ netns: node.name, backend });
        const g = new CalcGraph({ nodeName: 'n1', sink: acl });
        g.onUpdates(RESOURCES.map((resource) => ({ type: 'set', resource })));
        g.onStatus('in-sync');
        await acl.apply();
        expect(acl.status().rejected).toEqual([]);
      }, 120_000 * SLOW);
      afterAll(() => tb.cleanup(), 60_000);

      test(
        'every SCTP association between the pods gets the evaluator verdict',
        async () => {
          const evaluator = new Evaluator(policyWorld(RESOURCES));
          const mismatches: string[] = [];
          const verdicts = new Set<boolean>();
          // every source probes at once (a denied association waits for its timeout)
          await Promise.all(
            (Object.keys(PODS) as Pod[]).map(async (src) => {
              const cells = (Object.keys(PODS) as Pod[])
                .filter((dst) => dst !== src)
                .flatMap((dst) => PORTS.map((port) => ({ dst, port })));
              // emulated python on a busy host: far above the 30 s default, still bounded
              // (and stretched by SLOW in the VM, which may share the host with the host tests)
              const out = await pods[src].exec(
                [
                  ...[python3(), '-c', PROBE],
                  JSON.stringify(cells.map((c) => [PODS[c.dst].ip, c.port])),
                ],
                { timeoutMs: 120_000 * SLOW },
              );
              (JSON.parse(out) as boolean[]).forEach((got, i) => {
                const { dst, port } = cells[i];
                const flow: Flow = {
                  srcIp: PODS[src].ip,
                  dstIp: PODS[dst].ip,
                  protocol: 'SCTP',
                  srcPort: 40000,
                  dstPort: port,
                };
                const want = evaluator.evaluate(flow).allowed;
                verdicts.add(want);
                if (got !== want)
                  mismatches.push(`${src} -> ${dst}:${port} sctp: got ${got}, evaluator ${want}`);
              });
            }),
          );
          expect(mismatches).toEqual([]);
          expect([...verdicts].sort()).toEqual([false, true]); // both kinds of cell exist
        },
        120_000 * SLOW,
      );
    },
  );
}

suite('legacy');
suite('nft');
