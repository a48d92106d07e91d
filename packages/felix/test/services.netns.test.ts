// The service proxy (nftables) against the real kernel: two nodes, three pods, and a
// client outside the cluster behind node 1; only node 1 runs the proxy. Every service
// type is reached the way a user reaches it, and what answers is checked: which pod
// (the backends print their own name) and from which address the pod saw the client
// (source kept or masqueraded).
//
//   ext (172.31.0.2) --- n1 (172.31.0.1 / 192.168.90.1) --- n2 (192.168.90.2)
//                        pods a 10.65.0.2, b 10.65.0.3       pod c 10.65.1.2
import type { ChildProcess } from 'node:child_process';
import fc from 'fast-check';
import { Testbed, describeIf, link, type Netns } from '@tortie/testbed';
import {
  ServiceProxy,
  type EndpointSlice,
  type Service,
  type SliceEndpoint,
} from '../src/dataplane/services';
import { nodeNetns, podNetns } from './pod-netns';

const POD = { a: '10.65.0.2', b: '10.65.0.3', c: '10.65.1.2' } as const;
const POD6 = { a: 'fd65::2', b: 'fd65::3', c: 'fd65:1::2' } as const;
const EXT = '172.31.0.2';
const N1_EXT = '172.31.0.1';
const N1_CORE = '192.168.90.1';

// answers every connection with "<name> <client address>" (TCP and UDP)
const SERVE = `
const [name] = process.argv.slice(1);
const net = require('node:net'), dgram = require('node:dgram');
const tcp = net.createServer((c) => { c.on('error', () => {}); c.end(name + ' ' + c.remoteAddress.replace('::ffff:', '')); });
const udp = dgram.createSocket('udp6');
udp.on('message', (m, r) => udp.send(name + ' ' + r.address.replace('::ffff:', ''), r.port, r.address));
let up = 0; const ready = () => ++up === 2 && process.stdout.write('ready\\n');
tcp.listen(8080, '::', ready); udp.bind(8080, '::', ready);
`;
// argv: ip port count [udp]: one connection after the other; prints a JSON array of the
// answers, or of error codes ("ECONNREFUSED", "timeout")
const ASK = `
const [ip, port, count, proto] = process.argv.slice(1);
const net = require('node:net'), dgram = require('node:dgram');
const once = () => new Promise((done) => {
  const t = setTimeout(() => { done('timeout'); s.destroy?.(); s.close?.(); }, 1500);
  const end = (v) => { clearTimeout(t); done(v); };
  let s;
  if (proto === 'udp') {
    s = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4');
    s.on('message', (m) => { end(m.toString()); s.close(); });
    s.on('error', (e) => { end(e.code); s.close(); });
    s.connect(+port, ip, () => s.send('hi'));
  } else {
    let data = '';
    s = net.connect(+port, ip);
    s.on('data', (d) => (data += d));
    s.on('end', () => end(data));
    s.on('error', (e) => end(e.code));
  }
});
(async () => { const out = []; for (let i = 0; i < +count; i++) out.push(await once()); process.stdout.write(JSON.stringify(out)); })();
`;

// argv: ip port count: UDP datagrams from one fixed source port (one conntrack flow), one
// after the other; prints a JSON array of the answers ("timeout" when none)
const UDP_FLOW = `
const [ip, port, count] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
const once = () => new Promise((done) => {
  const t = setTimeout(() => { s.off('message', got); done('timeout'); }, 1000);
  const got = (m) => { clearTimeout(t); done(m.toString()); };
  s.once('message', got);
  s.send('hi', +port, ip);
});
s.bind(40053, async () => { const out = []; for (let i = 0; i < +count; i++) out.push(await once()); s.close(); process.stdout.write(JSON.stringify(out)); });
`;

const ep = (ip: string, nodeName: string, ready = true): SliceEndpoint => ({
  addresses: [ip],
  nodeName,
  ready,
});
const slice = (
  serviceName: string,
  endpoints: SliceEndpoint[],
  addressType: 'IPv4' | 'IPv6' = 'IPv4',
): EndpointSlice => ({
  namespace: 'default',
  serviceName,
  addressType,
  ports: [
    { name: 'http', port: 8080 },
    { name: 'dns', protocol: 'UDP', port: 8080 },
  ],
  endpoints,
});
const svc = (name: string, s: Partial<Service>): Service => ({
  namespace: 'default',
  name,
  ports: [{ name: 'http', port: 80 }],
  ...s,
});

describeIf(['netns', 'nft'], 'service proxy on nftables, real kernel', () => {
  const tb = new Testbed();
  let n1: Netns, n2: Netns, ext: Netns;
  const pods: Record<string, Netns> = {};
  let proxy: ServiceProxy;
  const services: Service[] = [
    svc('web', {
      type: 'NodePort',
      clusterIPs: ['10.96.0.10', 'fd96::10'],
      ports: [
        { name: 'http', port: 80, nodePort: 30080 },
        { name: 'dns', protocol: 'UDP', port: 53, nodePort: 30053 },
      ],
    }),
    svc('local', {
      type: 'LoadBalancer',
      clusterIPs: ['10.96.0.11'],
      externalIPs: ['192.0.2.10'],
      loadBalancerIPs: ['198.51.100.7'],
      ports: [{ name: 'http', port: 80, nodePort: 30081 }],
      externalTrafficPolicy: 'Local',
    }),
    svc('sticky', {
      clusterIPs: ['10.96.0.12'],
      sessionAffinity: 'ClientIP',
      affinityTimeoutSeconds: 300,
    }),
    svc('empty', { clusterIPs: ['10.96.0.13'] }),
    svc('self', { clusterIPs: ['10.96.0.14'] }),
    svc('lb', {
      type: 'LoadBalancer',
      clusterIPs: ['10.96.0.15'],
      loadBalancerIPs: ['198.51.100.8'],
      ports: [{ name: 'http', port: 80, nodePort: 30082 }],
    }),
  ];
  const all = [ep(POD.a, 'n1'), ep(POD.c, 'n2')];
  const slices = [
    slice('web', all),
    slice('web', [ep(POD6.a, 'n1'), ep(POD6.c, 'n2')], 'IPv6'),
    slice('local', all),
    slice('sticky', all),
    slice('self', [ep(POD.a, 'n1')]),
    slice('lb', all),
  ];

  const ask = async (from: Netns, ip: string, port: number, count = 1, udp = false) =>
    JSON.parse(
      await from.exec([
        process.execPath,
        '-e',
        ASK,
        ip,
        String(port),
        String(count),
        ...(udp ? ['udp'] : []),
      ]),
    ) as string[];
  const who = (answers: string[]) => [...new Set(answers.map((a) => a.split(' ')[0]))].sort();
  const seenAs = (answers: string[]) => [...new Set(answers.map((a) => a.split(' ')[1]))].sort();

  beforeAll(async () => {
    n1 = await nodeNetns(tb, 'svc-n1');
    n2 = await nodeNetns(tb, 'svc-n2');
    ext = await tb.netns('svc-ext');
    await link(ext, n1, { v4: [`${EXT}/24`, `${N1_EXT}/24`] });
    await ext.exec(['ip', 'route', 'add', 'default', 'via', N1_EXT]);
    await link(n1, n2, {
      v4: [`${N1_CORE}/24`, '192.168.90.2/24'],
      v6: ['fd90::1/64', 'fd90::2/64'],
    });
    await n1.exec(['ip', 'route', 'add', '10.65.1.0/24', 'via', '192.168.90.2']);
    await n1.exec(['ip', '-6', 'route', 'add', 'fd65:1::/64', 'via', 'fd90::2']);
    await n2.exec(['ip', 'route', 'add', 'default', 'via', N1_CORE]);
    await n2.exec(['ip', '-6', 'route', 'add', 'default', 'via', 'fd90::1']);
    // service addresses are not routed anywhere: a packet not translated leaves by the
    // default route, as on a real node
    const sink = await tb.netns('svc-sink'); // does not forward: the "rest of the network"
    await link(n1, sink, {
      v4: ['10.255.0.1/30', '10.255.0.2/30'],
      v6: ['fd99::1/64', 'fd99::2/64'],
    });
    await n1.exec(['ip', 'route', 'add', 'default', 'via', '10.255.0.2']);
    await n1.exec(['ip', '-6', 'route', 'add', 'default', 'via', 'fd99::2']);
    pods.a = await podNetns(tb, n1, 'svc-a', { iface: 'calia', v4: POD.a, v6: POD6.a });
    pods.b = await podNetns(tb, n1, 'svc-b', { iface: 'calib', v4: POD.b, v6: POD6.b });
    pods.c = await podNetns(tb, n2, 'svc-c', { iface: 'calic', v4: POD.c, v6: POD6.c });
    for (const name of ['a', 'c']) {
      const server: ChildProcess = pods[name].spawn([process.execPath, '-e', SERVE, name]);
      tb.onCleanup(async () => void server.kill());
      await new Promise<void>((ok, fail) => {
        server.stdout!.once('data', () => ok());
        server.once('exit', (code) => fail(new Error(`server ${name} exited ${code}`)));
      });
    }
    proxy = new ServiceProxy({
      nodeName: 'n1',
      families: [4, 6],
      clusterCidrs: { 4: ['10.65.0.0/16'], 6: ['fd65::/32'] },
      netns: n1.name,
    });
    proxy.setServices(services);
    proxy.setEndpointSlices(slices);
    await proxy.apply();
  }, 60_000);
  afterAll(() => tb.cleanup());

  test('ClusterIP from a pod: both endpoints, the pod address kept', async () => {
    const answers = await ask(pods.b, '10.96.0.10', 80, 30);
    expect(who(answers)).toEqual(['a', 'c']);
    expect(seenAs(answers)).toEqual([POD.b]);
  });

  test('ClusterIP over UDP, and over IPv6', async () => {
    expect(who(await ask(pods.b, '10.96.0.10', 53, 20, true))).toEqual(['a', 'c']);
    const v6 = await ask(pods.b, 'fd96::10', 80, 20);
    expect(who(v6)).toEqual(['a', 'c']);
    expect(seenAs(v6)).toEqual([POD6.b]);
  });

  test('ClusterIP from the node itself', async () => {
    expect(who(await ask(n1, '10.96.0.10', 80, 20))).toEqual(['a', 'c']);
  });

  test('hairpin: a pod reaches itself through its service', async () => {
    const answers = await ask(pods.a, '10.96.0.14', 80, 3);
    expect(who(answers)).toEqual(['a']);
    // masqueraded, or the pod would answer itself directly and drop the reply
    expect(seenAs(answers)).not.toContain(POD.a);
  });

  test('NodePort with externalTrafficPolicy Cluster: every endpoint, client masqueraded', async () => {
    const answers = await ask(ext, N1_EXT, 30080, 30);
    expect(who(answers)).toEqual(['a', 'c']);
    expect(seenAs(answers)).not.toContain(EXT);
    expect(who(await ask(ext, N1_EXT, 30053, 20, true))).toEqual(['a', 'c']);
  });

  test('LoadBalancer IP, Cluster policy', async () => {
    await ext.exec(['ip', 'route', 'add', '198.51.100.8/32', 'via', N1_EXT]);
    expect(who(await ask(ext, '198.51.100.8', 80, 20))).toEqual(['a', 'c']);
  });

  test('externalTrafficPolicy Local: node port, external IP and LB IP keep the client address, local endpoints only', async () => {
    await ext.exec(['ip', 'route', 'add', '192.0.2.10/32', 'via', N1_EXT]);
    await ext.exec(['ip', 'route', 'add', '198.51.100.7/32', 'via', N1_EXT]);
    for (const [ip, port] of [
      [N1_EXT, 30081],
      ['192.0.2.10', 80],
      ['198.51.100.7', 80],
    ] as const) {
      const answers = await ask(ext, ip, port, 20);
      expect({ ip, who: who(answers), seenAs: seenAs(answers) }).toEqual({
        ip,
        who: ['a'],
        seenAs: [EXT],
      });
    }
    // from a pod the same service reaches every endpoint
    expect(who(await ask(pods.b, '10.96.0.11', 80, 30))).toEqual(['a', 'c']);
  });

  test('sessionAffinity ClientIP: one client keeps its endpoint', async () => {
    const answers = await ask(pods.b, '10.96.0.12', 80, 20);
    expect(who(answers)).toHaveLength(1);
    const fromNode = await ask(n1, '10.96.0.12', 80, 20);
    expect(who(fromNode)).toHaveLength(1);
  });

  test('a service without endpoints refuses at once (ICMP port unreachable)', async () => {
    const t0 = Date.now();
    expect(await ask(pods.b, '10.96.0.13', 80, 2)).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
    expect(Date.now() - t0).toBeLessThan(1400); // not the client's 1.5 s timeout
  });

  test('an endpoint removed gets no new connections; the change touches only its service', async () => {
    proxy.setEndpointSlices(
      slices.map((s) =>
        s.serviceName === 'web' && s.addressType === 'IPv4'
          ? slice('web', [ep(POD.a, 'n1'), ep(POD.c, 'n2', false)])
          : s,
      ),
    );
    const [v4, v6] = await proxy.apply();
    expect(v6.lines).toBe(0);
    expect(v4.full).toBe(false);
    expect(v4.lines).toBeGreaterThan(0);
    expect(v4.lines).toBeLessThan(15);
    expect(who(await ask(pods.b, '10.96.0.10', 80, 20))).toEqual(['a']);
    expect(who(await ask(pods.b, '10.96.0.11', 80, 20))).toEqual(['a', 'c']);
    // the last one going turns the service into a refusal
    proxy.setEndpointSlices(
      slices.filter((s) => !(s.serviceName === 'web' && s.addressType === 'IPv4')),
    );
    await proxy.apply();
    expect(await ask(pods.b, '10.96.0.10', 80, 1)).toEqual(['ECONNREFUSED']);
    proxy.setEndpointSlices(slices);
    await proxy.apply();
    expect(who(await ask(pods.b, '10.96.0.10', 80, 30))).toEqual(['a', 'c']);
  });

  test('UDP: a flow whose endpoint goes moves to a live one (its conntrack entries are deleted), as kube-proxy', async () => {
    // one flow: the same source port every time, so conntrack keeps its translation
    const flow = async (count: number) =>
      JSON.parse(
        await pods.b.exec([process.execPath, '-e', UDP_FLOW, '10.96.0.10', '53', String(count)]),
      ) as string[];
    const first = who(await flow(5));
    expect(first).toHaveLength(1); // conntrack pins the flow to one endpoint
    const [pinned] = first;
    const other = pinned === 'a' ? 'c' : 'a';
    const keep = pinned === 'a' ? ep(POD.c, 'n2') : ep(POD.a, 'n1');
    proxy.setEndpointSlices(
      slices.map((s) =>
        s.serviceName === 'web' && s.addressType === 'IPv4' ? slice('web', [keep]) : s,
      ),
    );
    await proxy.apply();
    // the pinned endpoint's server still answers: without the flush the flow would stay on it
    expect(who(await flow(5))).toEqual([other]);
    proxy.setEndpointSlices(slices);
    await proxy.apply();
  });

  test('a table changed behind its back is rewritten whole on resync', async () => {
    await n1.exec(['nft', 'flush', 'map', 'ip', 'tortie-svc', 'service-ips']);
    expect(await ask(pods.b, '10.96.0.10', 80, 1)).toEqual(['timeout']);
    proxy.resync();
    const [v4] = await proxy.apply();
    expect(v4.full).toBe(true);
    expect(who(await ask(pods.b, '10.96.0.10', 80, 20))).toEqual(['a', 'c']);
  });
});

// Incremental transactions against the kernel: after any sequence of changes, the table
// holds exactly what a full rewrite of the last state gives (compared as nft's JSON, with
// rule handles dropped and elements sorted).
describeIf(['netns', 'nft'], 'service proxy transactions, random changes', () => {
  const tb = new Testbed();
  afterAll(() => tb.cleanup());

  const normalized = async (ns: Netns) => {
    const out = JSON.parse(await ns.exec(['nft', '-j', 'list', 'table', 'ip', 'tortie-svc']));
    const items: Record<string, unknown>[] = out.nftables.filter((o: object) => !('metainfo' in o));
    const rules = new Map<string, unknown[]>();
    const rest: string[] = [];
    for (const it of items) {
      if ('rule' in it) {
        const r = it.rule as { chain: string; expr: unknown };
        rules.set(r.chain, [...(rules.get(r.chain) ?? []), r.expr]);
      } else {
        const [kind, body] = Object.entries(it)[0] as [string, Record<string, unknown>];
        const { handle: _h, elem, ...keep } = body;
        void _h;
        const elems = Array.isArray(elem) ? elem.map((e) => JSON.stringify(e)).sort() : [];
        rest.push(JSON.stringify({ kind, keep, elems }));
      }
    }
    return { rest: rest.sort(), rules: [...rules.entries()].sort(([a], [b]) => (a < b ? -1 : 1)) };
  };

  test('incremental equals full after every step', async () => {
    const inc = await tb.netns('svc-inc');
    const full = await tb.netns('svc-full');
    const arb = fc.array(
      fc.record({
        svc: fc.integer({ min: 0, max: 3 }),
        endpoints: fc.subarray([2, 3, 4, 5], { minLength: 0 }),
        affinity: fc.boolean(),
        local: fc.boolean(),
        nodePort: fc.boolean(),
      }),
      { minLength: 1, maxLength: 6 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(arb, { minLength: 2, maxLength: 5 }), async (steps) => {
        const proxy = new ServiceProxy({
          nodeName: 'n1',
          families: [4],
          clusterCidrs: { 4: ['10.65.0.0/16'] },
          netns: inc.name,
        });
        const reference = new ServiceProxy({
          nodeName: 'n1',
          families: [4],
          clusterCidrs: { 4: ['10.65.0.0/16'] },
          netns: full.name,
        });
        for (const step of steps) {
          const byName = new Map(step.map((s) => [s.svc, s]));
          const services = [...byName.values()].map((s) =>
            svc(`s${s.svc}`, {
              type: s.nodePort ? 'NodePort' : 'ClusterIP',
              clusterIPs: [`10.96.0.${s.svc + 1}`],
              ports: [{ name: 'http', port: 80, nodePort: s.nodePort ? 30000 + s.svc : undefined }],
              sessionAffinity: s.affinity ? 'ClientIP' : 'None',
              externalTrafficPolicy: s.local ? 'Local' : 'Cluster',
            }),
          );
          const eps = [...byName.values()].map((s) =>
            slice(
              `s${s.svc}`,
              s.endpoints.map((n) => ep(`10.65.0.${n}`, n % 2 ? 'n1' : 'n2')),
            ),
          );
          for (const p of [proxy, reference]) {
            p.setServices(services);
            p.setEndpointSlices(eps);
          }
          await proxy.apply();
          reference.resync();
          await reference.apply();
          expect(await normalized(inc)).toEqual(await normalized(full));
        }
      }),
      { numRuns: Number(process.env.TORTIE_PROPERTY_RUNS ?? 15) },
    );
  }, 120_000);
});
