// The ACL dataplane against the real kernel: a "node" namespace with three "pod"
// namespaces wired as Calico wires them (veth cali* on the host side, /32 addresses,
// host routes, proxy ARP, pod default route via 169.254.1.1), DataplaneUpdates for a
// small policy matrix fed straight into the AclManager, and real traffic (TCP, UDP,
// ping) checked against the expectation, over IPv4 (iptables) and IPv6 (ip6tables).
// Both iptables backends and the native nftables dataplane, each in its own namespaces
// (the tests that read iptables' own tables run on the iptables backends).
import type { ChildProcess } from 'node:child_process';
import { nftablesBatchAcked } from '@tortie/netlink';
import { Testbed, describeIf, link, waitUntil, type Netns } from '@tortie/testbed';
import { linuxAclManager } from '../src/dataplane/acl/acl-manager';
import { linuxNftAclManager, NFT_ACL_TABLE } from '../src/dataplane/nft-acl';
import { nftChain } from '../src/dataplane/nft-acl/names';
import { chainName } from '../src/dataplane/acl/names';
import type { DataplaneUpdate, WorkloadEndpoint } from '../src/types';
import { nodeNetns, podNetns } from './pod-netns';

const ECHO = `
const net = require('node:net'), dgram = require('node:dgram');
for (const p of [8080, 9090]) {
  net.createServer((c) => c.on('error', () => {}).pipe(c)).listen(p, '::');
  for (const [type, any] of [['udp4', '0.0.0.0'], ['udp6', '::']]) {
    const u = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
    u.on('message', (m, r) => u.send(m, r.port, r.address));
    u.bind(p, any);
  }
}
setTimeout(() => process.stdout.write('ready\\n'), 100);
`;
// Runs every probe of argv[1] (JSON [[proto, ip, port]]) at once, prints JSON results.
// As in policy-differential's PROBE: the pings are spawned first (each spawn blocks the
// event loop), the 800 ms deadlines start once everything is sent, and an expired deadline
// decides only after the sockets' pending events, so a loaded machine cannot turn a reply
// that arrived into "denied".
const PROBES = `
const { spawn } = require('node:child_process');
const specs = JSON.parse(process.argv[1]);
const arms = [];
const one = ([proto, ip, port]) => new Promise((done) => {
  let settled = false, t;
  const end = (ok) => { if (!settled) { settled = true; clearTimeout(t); done(ok); } };
  arms.push(() => { t = setTimeout(() => setImmediate(() => end(false)), proto === 'ping' ? 1800 : 800); });
  if (proto === 'ping') {
    const p = spawn('ping', ['-c', '1', '-W', '1', ip], { stdio: 'ignore' });
    p.on('error', () => end(false));
    return p.on('exit', (code) => end(code === 0));
  }
  if (proto === 'tcp') {
    const s = require('node:net').connect(port, ip, () => s.write('x'));
    s.on('data', () => { s.destroy(); end(true); }); s.on('error', () => end(false));
    return;
  }
  const u = require('node:dgram').createSocket(ip.includes(':') ? 'udp6' : 'udp4');
  u.on('message', () => { u.close(); end(true); });
  u.send('x', port, ip);
});
const results = [];
const pingFirst = specs.map((s, i) => i).sort((a, b) => (specs[b][0] === 'ping') - (specs[a][0] === 'ping'));
for (const i of pingFirst) results[i] = one(specs[i]);
setImmediate(() => arms.forEach((arm) => arm()));
Promise.all(results).then((r) => process.stdout.write(JSON.stringify(r), () => process.exit(0)));
`;
// Holds one TCP connection open; each stdin line sends a byte and prints ok/fail.
const HOLDER = `
const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]);
s.on('connect', () => process.stdout.write('connected\\n'));
s.on('error', () => process.stdout.write('fail\\n'));
let waiting;
s.on('data', () => { if (waiting) { clearTimeout(waiting); waiting = undefined; process.stdout.write('ok\\n'); } });
require('node:readline').createInterface({ input: process.stdin }).on('line', () => {
  waiting = setTimeout(() => { waiting = undefined; process.stdout.write('fail\\n'); }, 1500);
  s.write('x');
});
`;

// outside the pools: answers with the address the connection came from
const WHOAMI = `
require('node:net').createServer((c) => c.on('error', () => {}).end(c.remoteAddress)).listen(7070, '0.0.0.0', () => process.stdout.write('ready\\n'));
`;
const ASK = `
const s = require('node:net').connect(7070, process.argv[1]);
let got = ''; s.on('data', (d) => (got += d)); s.on('end', () => { process.stdout.write(got); process.exit(0); });
s.on('error', (e) => { process.stdout.write('error ' + e.message); process.exit(0); });
setTimeout(() => { process.stdout.write('timeout'); process.exit(0); }, 2000);
`;
const OUTSIDE = { node: '192.168.77.1', peer: '192.168.77.2' };
// host services on the node: a failsafe port and an ordinary one
const HOST_LISTEN = `
const net = require('node:net');
let n = 0;
for (const p of [22, 7071]) net.createServer((c) => c.on('error', () => {}).end('hi')).listen(p, '0.0.0.0', () => ++n === 2 && process.stdout.write('ready\\n'));
`;
const CONNECT = `
const s = require('node:net').connect(Number(process.argv[2]), process.argv[1], () => { process.stdout.write('ok'); process.exit(0); });
s.on('error', () => { process.stdout.write('fail'); process.exit(0); });
setTimeout(() => { process.stdout.write('fail'); process.exit(0); }, 800);
`;

const POD = { a: '10.65.0.1', b: '10.65.0.2', c: '10.65.0.3' } as const;
const POD6 = { a: 'fd00:65::1', b: 'fd00:65::2', c: 'fd00:65::3' } as const;
type Pod = keyof typeof POD;
const iface = (p: Pod) => `calitest0000${p}`;

const tier = (
  name: string,
  defaultAction: 'deny' | 'pass',
  ingress: string[],
  egress: string[],
) => ({
  name,
  defaultAction,
  ingressPolicies: ingress,
  egressPolicies: egress,
});
const wep = (p: Pod, tiers: WorkloadEndpoint['tiers']): WorkloadEndpoint => ({
  id: `ns/${p}/eth0`,
  ifaceName: iface(p),
  ipv4Nets: [`${POD[p]}/32`],
  ipv6Nets: [`${POD6[p]}/128`],
  tiers,
  profileIds: ['kns.ns'],
});

const POOL = {
  cidr: '10.65.0.0/16',
  ipip: 'Never' as const,
  vxlan: 'Never' as const,
  natOutgoing: true,
  disableBGPExport: false,
};

/** The matrix: b admits a on TCP 8080, ICMP and UDP 8080 (by a multi-net rule), c on its named port 9090; c may not send UDP to b. */
function updates(bAdmitsA = true): DataplaneUpdate[] {
  return [
    {
      type: 'ipset-update',
      id: 's:app-a',
      setType: 'hash:net',
      ipVersion: 4,
      members: [`${POD.a}/32`, `${POD6.a}/128`],
    },
    {
      type: 'ipset-update',
      id: 's:app-b',
      setType: 'hash:net',
      ipVersion: 4,
      members: [`${POD.b}/32`, `${POD6.b}/128`],
    },
    {
      type: 'ipset-update',
      id: 's:app-c',
      setType: 'hash:net',
      ipVersion: 4,
      members: [`${POD.c}/32`, `${POD6.c}/128`],
    },
    {
      type: 'ipset-update',
      id: 'n:b-metrics',
      setType: 'hash:ip,port',
      ipVersion: 4,
      members: [`${POD.b},tcp:9090`, `${POD6.b},tcp:9090`],
    },
    {
      type: 'profile-update',
      id: 'kns.ns',
      inbound: [{ action: 'allow', ruleId: 'pi' }],
      outbound: [{ action: 'allow', ruleId: 'po' }],
    },
    {
      type: 'policy-update',
      id: 'ns/b-ingress',
      inbound: bAdmitsA
        ? [
            {
              action: 'allow',
              protocol: 6,
              srcIpSetIds: ['s:app-a'],
              dstPorts: [{ first: 8080, last: 8080 }],
              ruleId: 'b1',
            },
            {
              action: 'allow',
              protocol: 1,
              srcIpSetIds: ['s:app-a'],
              icmp: { type: 8 },
              ruleId: 'b2',
            },
            {
              action: 'allow',
              protocol: 17,
              srcNets: [`${POD.a}/32`, '10.65.0.77/32'],
              dstPorts: [{ first: 8080, last: 8080 }],
              ruleId: 'b3',
            },
            {
              action: 'allow',
              protocol: 6,
              srcIpSetIds: ['s:app-c'],
              dstNamedPortIpSetIds: ['n:b-metrics'],
              ruleId: 'b4',
            },
          ]
        : [
            {
              action: 'allow',
              protocol: 6,
              srcIpSetIds: ['s:app-c'],
              dstNamedPortIpSetIds: ['n:b-metrics'],
              ruleId: 'b4',
            },
          ],
      outbound: [],
    },
    {
      type: 'policy-update',
      id: 'security/c-egress',
      inbound: [],
      outbound: [
        { action: 'deny', protocol: 17, dstIpSetIds: ['s:app-b'], ruleId: 'c1' },
        { action: 'pass', ruleId: 'c2' },
      ],
    },
    { type: 'pool-update', pool: POOL },
    { type: 'pool-update', pool: { ...POOL, cidr: 'fd00:65::/64' } },
    { type: 'workload-update', endpoint: wep('a', []) },
    {
      type: 'workload-update',
      endpoint: wep('b', [tier('default', 'deny', ['ns/b-ingress'], [])]),
    },
    {
      type: 'workload-update',
      endpoint: wep('c', [tier('security', 'deny', [], ['security/c-egress'])]),
    },
    { type: 'in-sync' },
  ];
}

type Probe = ['tcp' | 'udp' | 'ping', string, number];
const MATRIX: Array<[Pod, Probe, boolean]> = [
  ['a', ['tcp', POD.b, 8080], true],
  ['a', ['tcp', POD.b, 9090], false],
  ['a', ['udp', POD.b, 8080], true], // multi-net rule (scratch bits)
  ['a', ['udp', POD.b, 9090], false],
  ['a', ['ping', POD.b, 0], true],
  ['c', ['tcp', POD.b, 8080], false],
  ['c', ['tcp', POD.b, 9090], true], // named port
  ['c', ['ping', POD.b, 0], false],
  ['c', ['udp', POD.b, 8080], false], // c's egress denies
  ['c', ['udp', POD.a, 8080], true], // security tier passes, profile allows
  ['c', ['tcp', POD.a, 9090], true],
  ['b', ['tcp', POD.a, 8080], true],
  ['b', ['udp', POD.c, 9090], true],
  ['b', ['ping', POD.c, 0], true],
  // IPv6: the same policies through ip6tables and the tortie60 sets
  ['a', ['tcp', POD6.b, 8080], true],
  ['a', ['tcp', POD6.b, 9090], false],
  ['a', ['ping', POD6.b, 0], false], // b admits ICMP (v4) only
  ['a', ['udp', POD6.b, 8080], false], // the multi-net rule is v4 only
  ['c', ['tcp', POD6.b, 8080], false],
  ['c', ['tcp', POD6.b, 9090], true], // named port, v6 member
  ['c', ['udp', POD6.b, 8080], false],
  ['c', ['udp', POD6.a, 8080], true],
  ['b', ['tcp', POD6.a, 9090], true],
  ['b', ['ping', POD6.c, 0], true],
];

type Backend = 'legacy' | 'nft' | 'nftables';
const aclManager = (backend: Backend, netns: string) =>
  backend === 'nftables' ? linuxNftAclManager({ netns }) : linuxAclManager({ netns, backend });

for (const backend of ['legacy', 'nft', 'nftables'] as const) {
  const iptables = backend !== 'nftables';
  /** tests that read or edit iptables' own tables and counters */
  const iptablesTest = iptables ? test : () => undefined;
  describeIf(
    iptables ? ['root', 'netns', 'iptables', 'ipset'] : ['root', 'netns', 'nft'],
    iptables
      ? `ACL dataplane in network namespaces (iptables-${backend})`
      : 'ACL dataplane in network namespaces (native nftables)',
    () => {
      const tb = new Testbed();
      let node: Netns;
      const pods = {} as Record<Pod, Netns>;
      let acl: ReturnType<typeof aclManager>;
      let outside: Netns;
      let uplink: string;

      /** Packets counted by the rule of `chain` in inet tortie that `rule` matches. */
      const nftCounter = async (chain: string, rule: RegExp) => {
        const out = await node.exec(['nft', 'list', 'chain', ...NFT_ACL_TABLE.split(' '), chain]);
        const line = out
          .split('\n')
          .map((l) => l.trim())
          .find((l) => rule.test(l));
        const packets = line && /counter packets (\d+)/.exec(line)?.[1];
        if (!packets) throw new Error(`no counted rule ${rule} in ${chain}:\n${out}`);
        return Number(packets);
      };

      // every source pod's probes at once (each probe has its own socket, so one pod's
      // timeouts run alongside another's instead of after them)
      const run = async (matrix: Array<[Pod, Probe, boolean]>) => {
        const got = new Map<[Pod, Probe, boolean], boolean>();
        await Promise.all(
          (Object.keys(POD) as Pod[]).map(async (src) => {
            const mine = matrix.filter((m) => m[0] === src);
            if (!mine.length) return;
            const out = await pods[src].exec([
              process.execPath,
              '-e',
              PROBES,
              JSON.stringify(mine.map((m) => m[1])),
            ]);
            (JSON.parse(out) as boolean[]).forEach((ok, i) => got.set(mine[i], ok));
          }),
        );
        return matrix
          .filter((m) => got.get(m) !== m[2])
          .map(
            ([s, [p, ip, port], want]) =>
              `${s} -> ${p} ${ip}:${port}: want ${want ? 'allowed' : 'denied'}`,
          );
      };

      beforeAll(async () => {
        node = await nodeNetns(tb, `aclnode${backend}`);
        await Promise.all(
          (Object.keys(POD) as Pod[]).map(async (p) => {
            const ns = (pods[p] = await podNetns(tb, node, `aclpod${p}`, {
              iface: iface(p),
              v4: POD[p],
              v6: POD6[p],
            }));
            const echo = ns.spawn([process.execPath, '-e', ECHO]);
            await new Promise((r) => echo.stdout!.once('data', r));
          }),
        );
        // a network outside every pool, reached through the node
        outside = await tb.netns('acloutside');
        uplink = (await link(node, outside, { v4: [`${OUTSIDE.node}/24`, `${OUTSIDE.peer}/24`] }))
          .ifA;
        const who = outside.spawn([process.execPath, '-e', WHOAMI]);
        await new Promise((r) => who.stdout!.once('data', r));
        acl = aclManager(backend, node.name);
        updates().forEach((u) => acl.send(u));
        await acl.apply();
        // namespaces, veths and servers for every pod: minutes when the machine is loaded
      }, 180000);
      afterAll(async () => {
        // acl is unset when the setup failed
        if (acl && 'close' in acl) acl.close();
        await tb.cleanup();
      }, 30000);

      // test timeouts: each test starts a dozen processes, seconds apiece at load 30-40
      test('TCP, UDP and ping between the pods match the policy matrix', async () => {
        expect(await run(MATRIX)).toEqual([]);
      }, 60000);

      test('a pod removed and added back while the dataplane runs: dropped while gone, the matrix back after (nftables: element-only transactions, over netlink)', async () => {
        const cAddrs = [`${POD.c}/32`, `${POD6.c}/128`];
        const cWep = updates().find(
          (u): u is Extract<DataplaneUpdate, { type: 'workload-update' }> =>
            u.type === 'workload-update' && u.endpoint.ifaceName === iface('c'),
        )!;
        // a second endpoint with c's policies (its interface need not exist), so c's
        // endpoint chains stay while c is gone: each step below changes elements only
        const twin = { ...cWep.endpoint, id: 'ns/c-twin/eth0', ifaceName: 'calitwin0' };
        const netlink = () =>
          iptables ? 0 : (acl.status() as { netlinkTransactions: number }).netlinkTransactions;
        const before = netlink();
        acl.send({ type: 'workload-update', endpoint: twin });
        await acl.apply();
        acl.send({ type: 'workload-remove', id: cWep.endpoint.id });
        acl.send({ type: 'ipset-delta', id: 's:app-c', added: [], removed: cAddrs });
        await acl.apply();
        // an interface with no endpoint is dropped both ways; c's address left b's rule b4
        expect(
          await run([
            ['c', ['udp', POD.a, 8080], false],
            ['c', ['tcp', POD6.a, 9090], false],
            ['a', ['tcp', POD.b, 8080], true],
          ]),
        ).toEqual([]);
        acl.send(cWep);
        acl.send({ type: 'ipset-delta', id: 's:app-c', added: cAddrs, removed: [] });
        await acl.apply();
        acl.send({ type: 'workload-remove', id: twin.id });
        await acl.apply();
        expect(await run(MATRIX)).toEqual([]);
        // kernels before 6.10 do not acknowledge an nftables batch: nft writes them there
        if (!iptables) expect(netlink() - before).toBe(nftablesBatchAcked() ? 4 : 0);
      }, 60000);

      test('a pod sending from an address that is not its own is dropped in raw (RPF), IPv4 and IPv6', async () => {
        const dropped = async (v6: boolean) => {
          // nftables: one inet rule (fib) serves both families
          if (!iptables) return nftCounter('raw-prerouting', /fib saddr/);
          const out = await node.exec([
            ...[`${v6 ? 'ip6tables' : 'iptables'}-${backend}`, '-w', '-t', 'raw'],
            ...['-L', 'tortie-PREROUTING', '-v', '-n', '-x'],
          ]);
          const rule = out.split('\n').find((l) => l.includes('rpfilter'));
          if (!rule) throw new Error(`no RPF rule in raw tortie-PREROUTING:\n${out}`);
          return Number(rule.trim().split(/\s+/)[0]);
        };
        /** Echo requests b's kernel received (its own per-namespace counters). */
        const echoes = async (v6: boolean) => {
          if (v6) {
            const snmp6 = await pods.b.exec(['cat', '/proc/net/snmp6']);
            return Number(/^Icmp6InEchos\s+(\d+)/m.exec(snmp6)?.[1]);
          }
          const icmp = (await pods.b.exec(['cat', '/proc/net/snmp']))
            .split('\n')
            .filter((l) => l.startsWith('Icmp:'));
          return Number(icmp[1].split(/\s+/)[icmp[0].split(/\s+/).indexOf('InEchos')]);
        };
        const ping = (from: string, to: string) =>
          pods.a
            .exec(['ping', '-n', '-c', '2', '-i', '0.2', '-W', '1', '-I', from, to])
            .catch(() => '');
        // a second address on a's eth0 the node does not route back to a
        await pods.a.exec(['ip', 'addr', 'add', '10.65.0.99/32', 'dev', 'eth0']);
        await pods.a.exec(['ip', 'addr', 'add', 'fd00:65::99/128', 'dev', 'eth0', 'nodad']);
        try {
          for (const [v6, spoofed, dst] of [
            [false, '10.65.0.99', POD.b],
            [true, 'fd00:65::99', POD6.b],
          ] as const) {
            const [before, heard] = [await dropped(v6), await echoes(v6)];
            await ping(spoofed, dst);
            expect((await dropped(v6)) - before).toBeGreaterThanOrEqual(2);
            expect(await echoes(v6)).toBe(heard); // b never got them
            const own = await dropped(v6);
            await ping(v6 ? POD6.a : POD.a, dst); // its own address passes the check
            expect(await dropped(v6)).toBe(own);
            // b's policy admits ICMP from a over IPv4 only (the matrix), so over IPv6 only the
            // RPF counter shows that a's own address passes
            if (!v6) expect(await echoes(v6)).toBe(heard + 2);
          }
        } finally {
          await pods.a.exec(['ip', 'addr', 'del', '10.65.0.99/32', 'dev', 'eth0']);
          await pods.a.exec(['ip', 'addr', 'del', 'fd00:65::99/128', 'dev', 'eth0']);
        }
      }, 60000);

      test('a pod may not send IP-in-IP or VXLAN of its own: dropped and counted, never delivered', async () => {
        // what the outside's kernel got: UDP to a closed port, and protocol 4 it has no
        // handler for (this kernel has no ipip), from its own per-namespace counters
        const delivered = async () => {
          const snmp = (await outside.exec(['cat', '/proc/net/snmp'])).split('\n');
          const field = (proto: string, name: string) => {
            const [head, vals] = snmp.filter((l) => l.startsWith(`${proto}:`));
            return Number(vals.split(/\s+/)[head.split(/\s+/).indexOf(name)]);
          };
          return { udp: field('Udp', 'NoPorts'), proto4: field('Ip', 'InUnknownProtos') };
        };
        const drops = async () => {
          if (!iptables)
            return {
              udp: await nftCounter('forward', /^iifname "cali\*" udp dport 4789 counter/),
              proto4: await nftCounter('forward', /^iifname "cali\*" .*l4proto ipencap counter/),
            };
          const out = await node.exec([
            ...[`iptables-${backend}`, '-w', '-L', 'tortie-FORWARD', '-v', '-n', '-x'],
          ]);
          const count = (re: RegExp) => {
            const rule = out.split('\n').find((l) => re.test(l) && l.includes('cali+'));
            if (!rule) throw new Error(`no rule ${re} in tortie-FORWARD:\n${out}`);
            return Number(rule.trim().split(/\s+/)[0]);
          };
          return { udp: count(/DROP\s+(17|udp)\s.*dpt:4789/), proto4: count(/DROP\s+4\s/) };
        };
        const send = (proto: 'udp' | 'ipip', port = 4789) =>
          pods.a.exec([
            'python3',
            '-c',
            [
              'import socket,sys',
              proto === 'udp'
                ? 's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)'
                : 's=socket.socket(socket.AF_INET,socket.SOCK_RAW,4)',
              // an inner IPv4 header (a -> b, ICMP) is all a forged tunnel needs
              `p=bytes.fromhex('4500001c00000000400100000a41000${'1'}0a410002'+'0800f7ff00000000')`,
              `[s.sendto(p,('${OUTSIDE.peer}',${proto === 'udp' ? port : 0})) for _ in range(3)]`,
            ].join('\n'),
          ]);
        const [d0, k0] = [await delivered(), await drops()];
        await send('udp');
        await send('ipip');
        const [d1, k1] = [await delivered(), await drops()];
        expect(k1.udp - k0.udp).toBe(3);
        expect(k1.proto4 - k0.proto4).toBe(3);
        expect(d1).toEqual(d0); // the outside never got them
        // the same UDP to another port does arrive: the counters do see what passes
        await send('udp', 4790);
        expect((await delivered()).udp - d1.udp).toBe(3);
      }, 60000);

      test('natOutgoing: traffic leaving the pools is masqueraded to the node address, and stops being so with the flag', async () => {
        expect(await pods.a.exec([process.execPath, '-e', ASK, OUTSIDE.peer])).toBe(OUTSIDE.node);
        // the pool stops asking for it: the pod's own address leaves, and the outside has no route back
        acl.send({ type: 'pool-update', pool: { ...POOL, natOutgoing: false } });
        await acl.apply();
        expect(await pods.a.exec([process.execPath, '-e', ASK, OUTSIDE.peer])).toBe('timeout');
        acl.send({ type: 'pool-update', pool: POOL });
        await acl.apply();
        expect(await pods.a.exec([process.execPath, '-e', ASK, OUTSIDE.peer])).toBe(OUTSIDE.node);
      }, 60000);

      // on nftables too: a host endpoint created while the dataplane runs is enforced
      test('a host endpoint without policy denies all but the failsafe ports; forwarding is policed only by applyOnForward policy', async () => {
        const svc = node.spawn([process.execPath, '-e', HOST_LISTEN]);
        await new Promise((r) => svc.stdout!.once('data', r));
        const connect = (from: Netns, ip: string, port: number) =>
          from.exec([process.execPath, '-e', CONNECT, ip, String(port)]);
        expect(await connect(outside, OUTSIDE.node, 7071)).toBe('ok');
        const hep: DataplaneUpdate = {
          type: 'host-endpoint-update',
          endpoint: {
            id: 'node/uplink',
            ifaceName: uplink,
            expectedIps: [OUTSIDE.node],
            tiers: [],
            untrackedTiers: [],
            preDnatTiers: [],
            forwardTiers: [],
            profileIds: [],
          },
        };
        acl.send(hep);
        await acl.apply();
        expect(await connect(outside, OUTSIDE.node, 22)).toBe('ok'); // failsafe in
        expect(await connect(outside, OUTSIDE.node, 7071)).toBe('fail'); // default deny
        expect(await connect(node, OUTSIDE.peer, 7070)).toBe('fail'); // out: default deny too
        expect(await pods.a.exec([process.execPath, '-e', ASK, OUTSIDE.peer])).toBe(OUTSIDE.node);
        // applyOnForward policy that allows nothing out of the uplink: forwarding denied
        const fwdTier = (egress: string[]) => ({
          name: 'default',
          defaultAction: 'deny' as const,
          ingressPolicies: [],
          egressPolicies: egress,
        });
        acl.send({ type: 'policy-update', id: 'hep-fwd', inbound: [], outbound: [] });
        acl.send({
          ...hep,
          endpoint: { ...hep.endpoint, forwardTiers: [fwdTier(['hep-fwd'])] },
        } as DataplaneUpdate);
        await acl.apply();
        expect(await pods.a.exec([process.execPath, '-e', ASK, OUTSIDE.peer])).toBe('timeout');
        expect(await connect(outside, OUTSIDE.node, 22)).toBe('ok'); // failsafe still
        acl.send({
          type: 'policy-update',
          id: 'hep-fwd',
          inbound: [],
          outbound: [{ action: 'allow', ruleId: 'f0' }],
        });
        await acl.apply();
        expect(await pods.a.exec([process.execPath, '-e', ASK, OUTSIDE.peer])).toBe(OUTSIDE.node);
        expect(await connect(outside, OUTSIDE.node, 7071)).toBe('fail'); // normal policy unchanged
        acl.send({ type: 'host-endpoint-remove', id: 'node/uplink' });
        await acl.apply();
        expect(await connect(outside, OUTSIDE.node, 7071)).toBe('ok');
        svc.kill();
      }, 60000);

      iptablesTest('the tables hold our hooks first and only referenced chains', async () => {
        const save = await node.exec([`iptables-${backend}-save`, '-t', 'filter']);
        expect(save).toMatch(/-A FORWARD -m comment --comment "?tortie:[\w-]+"? -j tortie-FORWARD/);
        expect(save).toContain(`:${chainName.policyOut('security/c-egress')} `);
        expect(save).not.toContain(`:${chainName.policyIn('security/c-egress')} `); // nobody jumps to it
        const sets = await node.exec(['ipset', 'list', '-n']);
        expect(
          sets
            .split('\n')
            .filter((n) => n.startsWith('tortie'))
            .sort(),
        ).toEqual([
          'tortie40all-ipam-pools',
          'tortie40masq-ipam-pools',
          'tortie40s:n:b-metrics',
          'tortie40s:s:app-a',
          'tortie40s:s:app-b',
          'tortie40s:s:app-c',
          'tortie60all-ipam-pools',
          'tortie60masq-ipam-pools',
          'tortie60s:n:b-metrics',
          'tortie60s:s:app-a',
          'tortie60s:s:app-b',
          'tortie60s:s:app-c',
        ]);
        const save6 = await node.exec([`ip6tables-${backend}-save`, '-t', 'filter']);
        expect(save6).toMatch(
          /-A FORWARD -m comment --comment "?tortie:[\w-]+"? -j tortie-FORWARD/,
        );
      });

      test('a policy the kernel refuses fails closed; the rest of the batch is programmed; later changes apply', async () => {
        const policy = (id: string) =>
          updates().find(
            (u): u is Extract<DataplaneUpdate, { type: 'policy-update' }> =>
              u.type === 'policy-update' && u.id === id,
          )!;
        const bIngress = policy('ns/b-ingress');
        const cEgress = policy('security/c-egress');
        // a port iptables refuses (the API never lets one through: this stands for any
        // rule the kernel refuses), and in the same batch an unrelated change: c's egress
        // now also denies UDP to a
        acl.send({
          ...bIngress,
          inbound: [
            { action: 'deny', protocol: 6, dstPorts: [{ first: 70000, last: 70000 }], ruleId: 'x' },
            ...bIngress.inbound,
          ],
        });
        acl.send({
          ...cEgress,
          outbound: [
            { action: 'deny', protocol: 17, dstIpSetIds: ['s:app-a'], ruleId: 'c0' },
            ...cEgress.outbound,
          ],
        });
        await acl.apply(); // resolves: the refusal is isolated
        expect(acl.status().rejected).toEqual(
          [4, 6].map((family) =>
            expect.objectContaining({
              kind: 'policy',
              id: 'ns/b-ingress',
              direction: 'ingress',
              family,
              reason: expect.stringContaining(
                iptables ? "invalid port/service `70000' specified" : 'Service out of range',
              ),
            }),
          ),
        );
        if (iptables) {
          const save = await node.exec([`iptables-${backend}-save`, '-t', 'filter']);
          expect(save).toMatch(
            new RegExp(
              `-A ${chainName.policyIn('ns/b-ingress')} -m comment --comment "?tortie:\\w+"? -j DROP`,
            ),
          );
        } else {
          const table = await node.exec([
            'nft',
            'list',
            'chain',
            'inet',
            'tortie',
            nftChain.policyIn('ns/b-ingress'),
          ]);
          expect(table).toMatch(/\{\s*drop\s*\}/);
        }
        // b fails closed; c's new rule is in; the rest of the matrix is as before
        const changed = (m: [Pod, Probe, boolean]): [Pod, Probe, boolean] => {
          const [src, [proto, ip]] = m;
          if (ip === POD.b || ip === POD6.b) return [m[0], m[1], false];
          if (src === 'c' && proto === 'udp' && (ip === POD.a || ip === POD6.a))
            return [m[0], m[1], false];
          return m;
        };
        expect(await run(MATRIX.map(changed))).toEqual([]);
        // a later change applies without retrying the refused chain
        acl.send(cEgress);
        await acl.apply();
        expect(await run([['c', ['udp', POD.a, 8080], true]])).toEqual([]);
        // the user fixes the policy: programmed again, the matrix is back
        acl.send(bIngress);
        await acl.apply();
        expect(acl.status().rejected).toEqual([]);
        expect(await run(MATRIX)).toEqual([]);
      }, 60000);

      iptablesTest(
        'a chain flushed by hand fails closed, and resync repairs it',
        async () => {
          const tw = chainName.toWorkload(iface('b'));
          await node.exec([`iptables-${backend}`, '-F', tw]);
          // the emptied chain returns without the accept bit: dropped, never open
          expect(
            await run([
              ['a', ['tcp', POD.b, 8080], false],
              ['c', ['tcp', POD.b, 8080], false],
            ]),
          ).toEqual([]);
          await acl.resync();
          expect(await run(MATRIX.filter((m) => m[1][1] === POD.b))).toEqual([]);
          const rules = (await node.exec([`iptables-${backend}-save`, '-t', 'filter']))
            .split('\n')
            .filter((l) => l.startsWith(`-A ${tw} `));
          expect(rules.length).toBeGreaterThan(5);
        },
        60000,
      );

      iptablesTest('a deleted hook is put back by resync', async () => {
        const save = await node.exec([`iptables-${backend}-save`, '-t', 'filter']);
        const hook = save
          .split('\n')
          .find((l) => l.startsWith('-A FORWARD ') && l.includes('tortie-FORWARD'))!;
        await node.exec([
          `iptables-${backend}`,
          '-t',
          'filter',
          ...splitArgs(hook.replace('-A FORWARD', '-D FORWARD')),
        ]);
        await acl.resync();
        const after = await node.exec([`iptables-${backend}-save`, '-t', 'filter']);
        expect(after.split('\n').filter((l) => l.startsWith('-A FORWARD '))[0]).toContain(
          '-j tortie-FORWARD',
        );
      });

      test('an established TCP connection survives an AclManager restart, even one that now denies new connections', async () => {
        const holder: ChildProcess = pods.a.spawn([process.execPath, '-e', HOLDER, POD.b, '8080']);
        const lines: string[] = [];
        holder.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().trim().split('\n')));
        await waitUntil('the connection', () => lines.includes('connected'), 5000);
        const roundTrip = async () => {
          const n = lines.length;
          holder.stdin!.write('go\n');
          return waitUntil(
            'an answer',
            () => (lines.length > n ? lines[lines.length - 1] : undefined),
            5000,
          );
        };
        expect(await roundTrip()).toBe('ok');
        // a new agent instance on the same namespace: reads the tables, writes only what differs
        if ('close' in acl) acl.close();
        acl = aclManager(backend, node.name);
        updates().forEach((u) => acl.send(u));
        await acl.apply();
        if (iptables) expect(acl.status().chainsWritten).toBe(0);
        expect(await roundTrip()).toBe('ok');
        // and another that no longer admits a: new connections are refused, the old one lives on
        if ('close' in acl) acl.close();
        acl = aclManager(backend, node.name);
        updates(false).forEach((u) => acl.send(u));
        await acl.apply();
        expect(await run([['a', ['tcp', POD.b, 8080], false]])).toEqual([]);
        expect(await roundTrip()).toBe('ok');
        holder.kill();
      }, 60000);
    },
  );
}

/** iptables-save prints quoted comments; split a rule line back into argv. */
function splitArgs(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}
