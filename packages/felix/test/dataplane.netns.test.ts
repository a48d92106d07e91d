// The dataplane against the real kernel: a node namespace with three pod namespaces
// wired as the CNI plugin wires them, resources through the calculation graph into the
// ACL and route managers (iptables, ipset, ip in the node namespace), and real traffic
// (TCP, UDP, ping) compared with the policy reference evaluator. Both iptables backends;
// routes over netlink, as the agent programs them when its addon loads.
import { parseResource, type Resource } from '@tortie/api';
import { hostBatch, podBatch } from '@tortie/cni';
import { Evaluator, type Flow } from '@tortie/policy';
import { Testbed, describeIf, link, waitUntil, type Netns } from '@tortie/testbed';
import { CalcGraph } from '../src/calc';
import { policyWorld } from '../src/policy-world';
import { linuxAclManager, type AclManager } from '../src/dataplane/acl';
import { NetManager } from '../src/linux/net-manager';
import { ProcessRunner, type CommandRunner } from '../src/linux/runner';
import { Rtnl } from '@tortie/netlink';
import type { DataplaneUpdate } from '../src/types';

const R = (kind: string, name: string, spec: object, meta: object = {}): Resource =>
  parseResource({ apiVersion: 'tortie.io/v1', kind, metadata: { name, ...meta }, spec });

// a TCP+UDP echo listener inside a pod namespace
const LISTENER = `
const net = require('node:net'), dgram = require('node:dgram');
for (const p of [8080, 9090]) {
  net.createServer((c) => c.pipe(c)).listen(p, '0.0.0.0');
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(m, r.port, r.address));
  u.bind(p, '0.0.0.0');
}
setTimeout(() => process.stdout.write('ready\\n'), 100);
`;
// one probe: prints ok or fail
const PROBE = `
const [proto, host, port] = process.argv.slice(1);
const done = (ok) => { process.stdout.write(ok ? 'ok' : 'fail'); process.exit(0); };
setTimeout(() => done(false), 700);
if (proto === 'TCP') {
  const s = require('node:net').connect(Number(port), host, () => s.write('x'));
  s.on('data', () => done(true)); s.on('error', () => done(false));
} else {
  const u = require('node:dgram').createSocket('udp4');
  u.on('message', () => done(true));
  u.send('x', Number(port), host);
}
`;

const PODS = [
  { name: 'a', ip: '10.65.0.1', labels: { app: 'a' } },
  { name: 'b', ip: '10.65.0.2', labels: { app: 'b' } },
  { name: 'c', ip: '10.65.0.3', labels: { app: 'c' } },
];

const iface = (pod: string) => `calitest${pod}`.padEnd(11, '0');

function resources(): Resource[] {
  return [
    R('Node', 'n1', { bgp: { ipv4Address: '192.168.90.1/24' } }),
    R('IPPool', 'p', { cidr: '10.65.0.0/24' }),
    R('Profile', 'kns.ns', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }),
    ...PODS.map((p) =>
      R(
        'WorkloadEndpoint',
        `n1-k8s-${p.name}-eth0`,
        {
          node: 'n1',
          pod: p.name,
          ipNetworks: [`${p.ip}/32`],
          interfaceName: iface(p.name),
          profiles: ['kns.ns'],
        },
        { namespace: 'ns', labels: { ...p.labels, 'projectcalico.org/namespace': 'ns' } },
      ),
    ),
    // b: ingress only from a, TCP 8080
    R(
      'NetworkPolicy',
      'b-from-a',
      {
        selector: "app == 'b'",
        types: ['Ingress'],
        ingress: [
          {
            action: 'Allow',
            protocol: 'TCP',
            source: { selector: "app == 'a'" },
            destination: { ports: [8080] },
          },
        ],
      },
      { namespace: 'ns' },
    ),
    // c: egress denied to b over UDP, everything else passes to the profile (allow)
    R('Tier', 'security', { order: 10, defaultAction: 'Pass' }),
    R('GlobalNetworkPolicy', 'security.c-no-udp-to-b', {
      tier: 'security',
      selector: "app == 'c'",
      types: ['Egress'],
      egress: [
        { action: 'Deny', protocol: 'UDP', destination: { selector: "app == 'b'" } },
        { action: 'Pass' },
      ],
    }),
  ];
}

for (const backend of ['legacy', 'nft'] as const) {
  describeIf(
    ['root', 'netns', 'iptables', 'ipset'],
    `dataplane in network namespaces (iptables-${backend})`,
    () => {
      const tb = new Testbed();
      let node: Netns;
      const pods = new Map<string, Netns>();
      let acl: AclManager;
      let net: NetManager;
      let runner: CommandRunner;
      let nl: Rtnl | undefined;
      /** The processes the route manager started (with the netlink socket: none). */
      const ran: string[][] = [];

      const feed = (managers: Array<{ send(u: DataplaneUpdate): void }>) => {
        const g = new CalcGraph({
          nodeName: 'n1',
          sink: { send: (u) => managers.forEach((m) => m.send(u)) },
        });
        g.onUpdates(resources().map((resource) => ({ type: 'set', resource })));
        g.onStatus('in-sync');
        return g;
      };

      beforeAll(async () => {
        node = await tb.netns('node');
        const real = new ProcessRunner(node.name);
        runner = { run: (argv, stdin) => (ran.push(argv), real.run(argv, stdin)) };
        for (const p of PODS) {
          const ns = await tb.netns(`pod${p.name}`);
          pods.set(p.name, ns);
          const a = {
            hostIface: iface(p.name),
            podIface: 'eth0',
            podMac: `02:00:00:00:00:0${PODS.indexOf(p) + 1}`,
            netns: `/var/run/netns/${ns.name}`,
            ipv4: [p.ip],
            ipv6: [],
          };
          await node.exec(['ip', '-batch', '-'], { input: hostBatch(a, 1500).join('\n') + '\n' });
          await node.exec([
            'sh',
            '-c',
            `echo 1 > /proc/sys/net/ipv4/conf/${a.hostIface}/proxy_arp; echo 0 > /proc/sys/net/ipv4/neigh/${a.hostIface}/proxy_delay`,
          ]);
          await ns.exec(['ip', '-batch', '-'], { input: podBatch(a).join('\n') + '\n' });
          const l = ns.spawn([process.execPath, '-e', LISTENER]);
          await new Promise((r) => l.stdout!.once('data', r));
        }
        acl = linuxAclManager({ netns: node.name, backend });
        nl = Rtnl.open(node.name);
        net = new NetManager(runner, nl);
        feed([acl, net]);
        await net.apply();
        await acl.apply();
      });
      afterAll(async () => {
        nl?.close();
        await tb.cleanup();
      });

      const probe = (from: string, proto: 'TCP' | 'UDP', ip: string, port: number) =>
        pods.get(from)!.exec([process.execPath, '-e', PROBE, proto, ip, String(port)]);

      test('routes: one /32 per pod via its veth, under our route protocol; interface sysctls', async () => {
        const routes = await node.exec(['ip', 'route', 'show', 'proto', '80']);
        for (const p of PODS) expect(routes).toContain(`${p.ip} dev ${iface(p.name)} scope link`);
        const get = (k: string) => node.exec(['sysctl', '-n', k]).then((v) => v.trim());
        expect(await get(`net.ipv4.conf.${iface('a')}.rp_filter`)).toBe('1');
        expect(await get(`net.ipv4.conf.${iface('a')}.proxy_arp`)).toBe('1');
        expect(await get('net.ipv4.ip_forward')).toBe('1');
        // over the netlink socket and /proc/sys in its namespace: no process per pod
        // (no `sysctl`, no `ip`)
        expect(ran).toEqual([]);
      });

      test('TCP and UDP between every pod pair match the reference evaluator', async () => {
        // the same resources, as the reference evaluator sees them
        const ev = new Evaluator(policyWorld(resources()));
        const mismatches: string[] = [];
        let allowed = 0;
        for (const src of PODS) {
          for (const dst of PODS) {
            if (src === dst) continue;
            for (const [proto, port] of [
              ['TCP', 8080],
              ['TCP', 9090],
              ['UDP', 8080],
            ] as const) {
              const flow: Flow = {
                srcIp: src.ip,
                dstIp: dst.ip,
                protocol: proto,
                srcPort: 40000,
                dstPort: port,
              };
              const want = ev.evaluate(flow).allowed;
              const got = (await probe(src.name, proto, dst.ip, port)) === 'ok';
              if (want) allowed++;
              if (want !== got)
                mismatches.push(
                  `${src.name} -> ${dst.name} ${proto}/${port}: kernel ${got ? 'allowed' : 'denied'}, reference ${want ? 'allows' : 'denies'}`,
                );
            }
          }
        }
        expect(mismatches).toEqual([]);
        // the matrix is not trivial: some flows pass, some do not
        expect(allowed).toBeGreaterThan(3);
        expect(allowed).toBeLessThan(18);
      });

      test('a flushed tortie chain is repaired by one resync, and stays closed meanwhile', async () => {
        expect(await probe('c', 'TCP', '10.65.0.2', 8080)).toBe('fail');
        const iptables = `iptables-${backend}`;
        await node.exec([iptables, '-F', `tortie-tw-${iface('b')}`]);
        // an emptied endpoint chain returns without the accept mark: still no access
        expect(await probe('c', 'TCP', '10.65.0.2', 8080)).toBe('fail');
        await node.exec([iptables, '-F', 'tortie-FORWARD']);
        await acl.resync();
        const save = await node.exec([`${iptables}-save`, '-t', 'filter']);
        expect(save).toContain(`-A tortie-tw-${iface('b')}`);
        expect(await probe('a', 'TCP', '10.65.0.2', 8080)).toBe('ok');
        expect(await probe('c', 'TCP', '10.65.0.2', 8080)).toBe('fail');
      });

      test('a new agent instance converges without dropping an established TCP flow', async () => {
        // a long-lived connection a -> b:8080 (allowed), kept open across the restart
        const client = pods.get('a')!.spawn([
          process.execPath,
          '-e',
          `const s = require('node:net').connect(8080, '10.65.0.2');
         process.stdin.on('data', (d) => s.write(d)); s.on('data', (d) => process.stdout.write(d));
         s.on('close', () => process.stdout.write('CLOSED'));`,
        ]);
        let out = '';
        client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        client.stdin!.write('one\n');
        await waitUntil('echo before restart', () => out.includes('one'));
        const acl2 = linuxAclManager({ netns: node.name, backend });
        const net2 = new NetManager(runner, nl);
        feed([acl2, net2]);
        await net2.apply();
        await acl2.apply();
        client.stdin!.write('two\n');
        await waitUntil('echo after restart', () => out.includes('two'), 3000);
        expect(out).not.toContain('CLOSED');
        client.kill();
      });
    },
  );
}

describeIf(
  ['root', 'netns', 'iptables', 'ipset'],
  'host endpoints in a network namespace (failsafe ports, policy)',
  () => {
    const tb = new Testbed();
    let node: Netns;
    let client: Netns;
    const TCP_LISTENER = `
const net = require('node:net');
for (const p of [22, 8080, 9090]) net.createServer((c) => c.pipe(c)).listen(p, '0.0.0.0');
setTimeout(() => process.stdout.write('ready\\n'), 100);
`;
    beforeAll(async () => {
      node = await tb.netns('hepnode');
      client = await tb.netns('hepclient');
      await link(node, client, { v4: ['192.168.91.1/24', '192.168.91.2/24'] }).then(
        async ({ ifA }) => {
          await node.exec(['ip', 'link', 'set', ifA, 'name', 'eth0']).catch(async () => {
            // the link is up already: rename needs it down
            await node.exec(['ip', 'link', 'set', ifA, 'down']);
            await node.exec(['ip', 'link', 'set', ifA, 'name', 'eth0']);
            await node.exec(['ip', 'link', 'set', 'eth0', 'up']);
          });
        },
      );
      const l = node.spawn([process.execPath, '-e', TCP_LISTENER]);
      await new Promise((r) => l.stdout!.once('data', r));
      const acl = linuxAclManager({ netns: node.name, backend: 'nft' });
      const g = new CalcGraph({ nodeName: 'n1', sink: acl });
      g.onUpdates(
        [
          R('Node', 'n1', { bgp: { ipv4Address: '192.168.91.1/24' } }),
          R(
            'HostEndpoint',
            'n1-eth0',
            { node: 'n1', interfaceName: 'eth0', expectedIPs: ['192.168.91.1'] },
            { labels: { role: 'host' } },
          ),
          R('GlobalNetworkPolicy', 'host-8080-only', {
            selector: "role == 'host'",
            types: ['Ingress', 'Egress'],
            ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [8080] } }],
            egress: [{ action: 'Allow' }],
          }),
        ].map((resource) => ({ type: 'set' as const, resource })),
      );
      g.onStatus('in-sync');
      await acl.apply();
    });
    afterAll(() => tb.cleanup());

    const tcp = (port: number) =>
      client.exec([process.execPath, '-e', PROBE, 'TCP', '192.168.91.1', String(port)]);

    test('policy allows 8080, denies 9090; the failsafe SSH port stays open', async () => {
      expect(await tcp(8080)).toBe('ok');
      expect(await tcp(9090)).toBe('fail');
      expect(await tcp(22)).toBe('ok'); // failsafe: no policy locks the operator out
      const save = await node.exec(['iptables-nft-save', '-t', 'filter']);
      expect(save).toMatch(/-A tortie-from-host-endpoint -i eth0 .*tortie-fh-eth0/);
      expect(save).toMatch(/-A tortie-failsafe-in .*-p tcp .*22.*-j ACCEPT/);
    });
  },
);

describeIf(['root', 'netns', 'iptables', 'ipset'], 'natOutgoing in a network namespace', () => {
  const tb = new Testbed();
  let node: Netns;
  let pod: Netns;
  let outside: Netns;
  let acl: AclManager;
  let g: CalcGraph;
  let nl: Rtnl | undefined;
  const pool = (natOutgoing: boolean) => R('IPPool', 'p', { cidr: '10.66.0.0/24', natOutgoing });
  beforeAll(async () => {
    node = await tb.netns('natnode');
    pod = await tb.netns('natpod');
    outside = await tb.netns('natout');
    // the outside world knows the node, not the pod network
    await link(node, outside, { v4: ['192.168.93.1/24', '192.168.93.2/24'] });
    const a = {
      hostIface: 'calinat0000001',
      podIface: 'eth0',
      podMac: '02:00:00:00:01:01',
      netns: `/var/run/netns/${pod.name}`,
      ipv4: ['10.66.0.5'],
      ipv6: [],
    };
    await node.exec(['ip', '-batch', '-'], { input: hostBatch(a, 1500).join('\n') + '\n' });
    await pod.exec(['ip', '-batch', '-'], { input: podBatch(a).join('\n') + '\n' });
    acl = linuxAclManager({ netns: node.name, backend: 'legacy' });
    nl = Rtnl.open(node.name);
    const net = new NetManager(new ProcessRunner(node.name), nl);
    g = new CalcGraph({ nodeName: 'n1', sink: { send: (u) => (acl.send(u), net.send(u)) } });
    g.onUpdates(
      [
        R('Node', 'n1', { bgp: { ipv4Address: '192.168.93.1/24' } }),
        pool(true),
        R('Profile', 'kns.ns', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }),
        R(
          'WorkloadEndpoint',
          'n1-k8s-p-eth0',
          {
            node: 'n1',
            pod: 'p',
            ipNetworks: ['10.66.0.5/32'],
            interfaceName: a.hostIface,
            profiles: ['kns.ns'],
          },
          { namespace: 'ns' },
        ),
      ].map((resource) => ({ type: 'set' as const, resource })),
    );
    g.onStatus('in-sync');
    await net.apply();
    await acl.apply();
  });
  afterAll(async () => {
    nl?.close();
    await tb.cleanup();
  });

  const ping = () =>
    pod.exec(['ping', '-c', '1', '-W', '1', '192.168.93.2']).then(
      () => true,
      () => false,
    );

  test('a pool with natOutgoing reaches outside (masqueraded); without it, it does not', async () => {
    expect(await ping()).toBe(true);
    expect(await node.exec(['iptables-legacy-save', '-t', 'nat'])).toContain('MASQUERADE');
    g.onUpdates([{ type: 'set', resource: pool(false) }]);
    await acl.apply();
    await node.exec(['conntrack', '-F']).catch(() => undefined);
    expect(await ping()).toBe(false);
  });
});
