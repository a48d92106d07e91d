// Rules' `services` matches on the real kernel, through the whole pipeline: resources
// (pods, a namespace profile that allows everything, policies, an EndpointSlice) go
// through the CalcGraph into a real ACL dataplane in a "node" namespace, incrementally as
// the slice changes, on iptables (ipset hash:ip,port / hash:net) and on the native
// nftables dataplane (ipv4_addr . inet_proto . inet_service sets). Pods are namespaces
// wired as Calico wires them, each serving TCP on 8080 and 9090. Every probe's outcome
// must also be the reference evaluator's verdict for the same resources.
//
// - egress `destination: {services: {name: web}}` from client: web's endpoints on the
//   slice port (8080) only; not their other port, not a pod outside the slice;
// - an endpoint added to the slice becomes reachable, one removed stops being reachable;
// - ingress `source: {services: {name: web}}` at sink: only from the slice's endpoints;
// - a Deny of ICMP to the Service before the Allow matches nothing, as in Felix (the set
//   holds TCP/UDP/SCTP address-port pairs): the policy is not failed closed, a ping from
//   client to web1 is allowed by the ICMP Allow after it.
import { parseResource, type Resource } from '@tortie/api';
import { Evaluator } from '@tortie/policy';
import { Testbed, describeIf, type Netns } from '@tortie/testbed';
import { CalcGraph } from '../src/calc/calc-graph';
import { DataplaneState } from '../src/dataplane-state';
import { linuxAclManager } from '../src/dataplane/acl';
import { linuxNftAclManager } from '../src/dataplane/nft-acl';
import { policyWorld } from '../src/policy-world';
import { nodeNetns, podNetns } from './pod-netns';

const NODE = 'n1';
const PODS = {
  client: { v4: '10.65.0.1', iface: 'calisvcm0000001' },
  web1: { v4: '10.65.0.2', iface: 'calisvcm0000002' },
  web2: { v4: '10.65.0.3', iface: 'calisvcm0000003' },
  sink: { v4: '10.65.0.4', iface: 'calisvcm0000004' },
} as const;
type Pod = keyof typeof PODS;
const LABELS: Record<Pod, string> = { client: 'client', web1: 'web', web2: 'web', sink: 'sink' };

const SERVE = `
const net = require('node:net');
let n = 0;
for (const p of [8080, 9090])
  net.createServer((c) => { c.on('error', () => {}); c.once('data', (d) => c.end(d)); })
    .listen(p, '0.0.0.0', () => ++n === 2 && process.stdout.write('ready\\n'));
`;
// one TCP connect + echo per [ip, port] of argv[1], all at once; deadlines start once all
// are sent and decide after pending socket events (a loaded machine must not turn a reply
// into "denied")
const PROBE = `
const specs = JSON.parse(process.argv[1]), ms = Number(process.argv[2]);
const arms = [];
const one = ([ip, port]) => new Promise((done) => {
  let settled = false, t;
  const end = (ok) => { if (!settled) { settled = true; clearTimeout(t); done(ok); } };
  arms.push(() => { t = setTimeout(() => setImmediate(() => end(false)), ms); });
  const s = require('node:net').connect(port, ip, () => s.write('x'));
  s.on('data', () => { s.destroy(); end(true); });
  s.on('error', () => end(false));
});
const results = specs.map(one);
setImmediate(() => arms.forEach((arm) => arm()));
Promise.all(results).then((r) => process.stdout.write(JSON.stringify(r), () => process.exit(0)));
`;

const R = (kind: string, name: string, spec: object, meta: object = {}): Resource =>
  parseResource({ apiVersion: 'projectcalico.org/v3', kind, metadata: { name, ...meta }, spec });
const pod = (p: Pod) =>
  R(
    'WorkloadEndpoint',
    `${NODE}-k8s-${p}-eth0`,
    {
      node: NODE,
      pod: p,
      endpoint: 'eth0',
      ipNetworks: [`${PODS[p].v4}/32`],
      interfaceName: PODS[p].iface,
      profiles: ['kns.shop'],
    },
    {
      namespace: 'shop',
      labels: {
        'projectcalico.org/namespace': 'shop',
        'projectcalico.org/orchestrator': 'k8s',
        app: LABELS[p],
      },
    },
  );
const slice = (endpoints: Pod[]) =>
  R(
    'KubernetesEndpointSlice',
    'web-abcde',
    {
      serviceName: 'web',
      addressType: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      endpoints: endpoints.map((p) => ({ addresses: [PODS[p].v4], conditions: { ready: true } })),
    },
    { namespace: 'shop' },
  );
const BASE: Resource[] = [
  R('Profile', 'kns.shop', {
    ingress: [{ action: 'Allow' }],
    egress: [{ action: 'Allow' }],
    labelsToApply: { 'pcns.projectcalico.org/name': 'shop' },
  }),
  ...(Object.keys(PODS) as Pod[]).map(pod),
  // a Service of the same name elsewhere: not shop's
  R(
    'KubernetesEndpointSlice',
    'web-other',
    {
      serviceName: 'web',
      addressType: 'IPv4',
      ports: [{ protocol: 'TCP', port: 9090 }],
      endpoints: [{ addresses: [PODS.sink.v4] }],
    },
    { namespace: 'other' },
  ),
  R(
    'NetworkPolicy',
    'client-to-web',
    {
      selector: "app == 'client'",
      types: ['Egress'],
      egress: [
        { action: 'Deny', protocol: 'ICMP', destination: { services: { name: 'web' } } },
        { action: 'Allow', destination: { services: { name: 'web' } } },
        { action: 'Allow', protocol: 'ICMP' },
      ],
    },
    { namespace: 'shop' },
  ),
  R(
    'NetworkPolicy',
    'sink-from-web',
    {
      selector: "app == 'sink'",
      types: ['Ingress'],
      ingress: [{ action: 'Allow', source: { services: { name: 'web', namespace: 'shop' } } }],
    },
    { namespace: 'shop' },
  ),
];

type Probe = [from: Pod, to: Pod, port: number];
/** per backend, a tag for its namespaces' names */
const TAG = { legacy: 'leg', nftables: 'nft' } as const;

for (const backend of ['legacy', 'nftables'] as const) {
  const iptables = backend !== 'nftables';
  describeIf(
    iptables ? ['root', 'netns', 'iptables', 'ipset'] : ['root', 'netns', 'nft'],
    `rules' services matches on the real kernel (${iptables ? `iptables-${backend} + ipset` : 'nftables'})`,
    () => {
      const tb = new Testbed();
      let node: Netns;
      const ns = {} as Record<Pod, Netns>;

      beforeAll(async () => {
        node = await nodeNetns(tb, `svcm${TAG[backend]}`);
        for (const p of Object.keys(PODS) as Pod[]) {
          ns[p] = await podNetns(tb, node, `svcm${TAG[backend]}${p}`, PODS[p]);
          const srv = ns[p].spawn([process.execPath, '-e', SERVE]);
          await new Promise((r) => srv.stdout!.once('data', r));
        }
      }, 180000);
      afterAll(() => tb.cleanup(), 30000);

      /** Outcome of each probe; an expected-allowed one that failed is tried again, slower. */
      const probe = async (probes: Probe[], expected: boolean[]): Promise<boolean[]> => {
        const run = async (ps: Probe[], ms: number) => {
          const got = new Map<Probe, boolean>();
          await Promise.all(
            [...new Set(ps.map((x) => x[0]))].map(async (from) => {
              const mine = ps.filter((x) => x[0] === from);
              const spec = mine.map(([, to, port]) => [PODS[to].v4, port]);
              const out = await ns[from].exec(
                [process.execPath, '-e', PROBE, JSON.stringify(spec), String(ms)],
                { timeoutMs: 60000 },
              );
              (JSON.parse(out) as boolean[]).forEach((ok, i) => got.set(mine[i], ok));
            }),
          );
          return ps.map((x) => got.get(x)!);
        };
        const first = await run(probes, 1500);
        const doubt = probes.filter((_, i) => !first[i] && expected[i]);
        const again = doubt.length ? await run(doubt, 5000) : [];
        return probes.map((x, i) => (doubt.includes(x) ? again[doubt.indexOf(x)] : first[i]));
      };

      test('egress to a Service: its endpoints on the slice port; the set follows the slice; source-side match', async () => {
        const dp = new DataplaneState();
        const acl = iptables
          ? linuxAclManager({ netns: node.name, backend })
          : linuxNftAclManager({ netns: node.name });
        let sent = 0;
        const g = new CalcGraph({ nodeName: NODE, sink: dp });
        let resources = [...BASE, slice(['web1'])];
        const apply = async (rs: Resource[], deleted: Resource[] = []) => {
          g.onUpdates([
            ...rs.map((resource) => ({ type: 'set' as const, resource })),
            ...deleted.map((resource) => ({
              type: 'deleted' as const,
              resource,
              key: {
                kind: resource.kind,
                name: resource.metadata.name,
                namespace: resource.metadata.namespace,
              },
            })),
          ]);
          for (const u of dp.log.slice(sent)) acl.send(u);
          sent = dp.log.length;
          await acl.apply();
          expect(dp.errors).toEqual([]);
        };
        const check = async (what: string, probes: Probe[], expected: boolean[]) => {
          // the evaluator, on the same resources, says the same
          const evaluator = new Evaluator(policyWorld(resources));
          const verdicts = probes.map(
            ([from, to, port]) =>
              evaluator.evaluate({
                srcIp: PODS[from].v4,
                dstIp: PODS[to].v4,
                protocol: 'TCP',
                srcPort: 40000,
                dstPort: port,
              }).allowed,
          );
          expect({ what, evaluator: verdicts }).toEqual({ what, evaluator: expected });
          const got = await probe(probes, expected);
          expect({ what, probes, dataplane: got }).toEqual({ what, probes, dataplane: expected });
        };

        await apply(resources);
        g.onStatus('in-sync');
        for (const u of dp.log.slice(sent)) acl.send(u);
        sent = dp.log.length;
        await acl.apply();

        const egress: Probe[] = [
          ['client', 'web1', 8080],
          ['client', 'web1', 9090],
          ['client', 'web2', 8080],
          ['client', 'sink', 8080],
          ['client', 'sink', 9090],
        ];
        await check('web1 in the slice', egress, [true, false, false, false, false]);
        // ICMP: the Deny to the Service matches nothing, the ICMP Allow after it admits the ping
        const icmp = new Evaluator(policyWorld(resources)).evaluate({
          srcIp: PODS.client.v4,
          dstIp: PODS.web1.v4,
          protocol: 'ICMP',
          icmpType: 8,
          icmpCode: 0,
        }).allowed;
        expect({ icmp }).toEqual({ icmp: true });
        await ns.client.exec(['ping', '-c', '1', '-W', '10', PODS.web1.v4], { timeoutMs: 30000 });

        // an endpoint added to the EndpointSlice
        resources = [...BASE, slice(['web1', 'web2'])];
        await apply([slice(['web1', 'web2'])]);
        await check('web2 added', egress, [true, false, true, false, false]);

        // an endpoint removed from it
        resources = [...BASE, slice(['web2'])];
        await apply([slice(['web2'])]);
        await check('web1 removed', egress, [false, false, true, false, false]);

        // source side: sink admits only the Service's endpoints, on any port
        const ingress: Probe[] = [
          ['web2', 'sink', 8080],
          ['web2', 'sink', 9090],
          ['web1', 'sink', 8080],
        ];
        await check('sink from web (web2)', ingress, [true, true, false]);

        // the slice deleted: nothing is the Service any more
        resources = [...BASE];
        await apply([], [slice(['web2'])]);
        await check(
          'slice deleted',
          [...egress, ...ingress],
          [false, false, false, false, false, false, false, false],
        );
      }, 300000);
    },
  );
}
