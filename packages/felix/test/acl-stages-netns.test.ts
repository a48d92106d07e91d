// Untracked (doNotTrack, raw) and pre-DNAT (mangle) host endpoint policy against the
// real kernel, both iptables backends and the native nftables dataplane, IPv4 and IPv6:
// a "node" namespace whose uplink to
// an "outside" namespace is a host endpoint with policy in all three stages. Each flow's
// verdict must agree with the policy reference evaluator; the failsafe port stays open
// (the evaluator does not model failsafe ports); untracked traffic leaves no conntrack entry.
import { Evaluator, type Policy } from '@tortie/policy';
import { Testbed, describeIf, link, type Netns } from '@tortie/testbed';
import { linuxAclManager, type AclManager } from '../src/dataplane/acl/acl-manager';
import { chainName } from '../src/dataplane/acl/names';
import { linuxNftAclManager, type NftAclManager } from '../src/dataplane/nft-acl';
import type { DataplaneUpdate, HostEndpoint, TierInfo } from '../src/types';

const NODE = { 4: '192.168.78.1', 6: 'fd00:78::1' } as const;
const PEER = { 4: '192.168.78.2', 6: 'fd00:78::2' } as const;
const NODE_PORTS = [22, 7071, 7072, 7073, 7074, 7075, 7077];
const PEER_PORTS = [7076, 7078];

const LISTEN = `
let n = 0; const ports = JSON.parse(process.argv[1]);
for (const p of ports) require('node:net').createServer((c) => c.on('error', () => {}).end('hi')).listen(p, '::', () => ++n === ports.length && process.stdout.write('ready\\n'));
`;
// Connects to every [ip, port] of argv[1] at once; prints JSON true/false per target.
const CONNECT = `
const one = ([ip, port]) => new Promise((done) => {
  const s = require('node:net').connect(port, ip, () => { s.destroy(); done(true); });
  s.on('error', () => done(false));
  setTimeout(() => { s.destroy(); done(false); }, 800);
});
Promise.all(JSON.parse(process.argv[1]).map(one)).then((r) => process.stdout.write(JSON.stringify(r), () => process.exit(0)));
`;

// The policies as the user wrote them (GlobalNetworkPolicy specs) ...
const tcpTo = (action: 'Allow' | 'Deny', ports: number[]) => ({
  action,
  protocol: 'TCP' as const,
  destination: { ports },
});
const POLICIES: Policy[] = [
  {
    kind: 'GlobalNetworkPolicy',
    metadata: { name: 'dnt' },
    spec: {
      selector: "role == 'node'",
      doNotTrack: true,
      applyOnForward: true,
      ingress: [tcpTo('Deny', [7072]), tcpTo('Allow', [7071])],
      // untracked replies need their own rule: there is no conntrack entry to let them out
      egress: [
        tcpTo('Deny', [7076]),
        { action: 'Allow', protocol: 'TCP', source: { ports: [7071] } },
      ],
    },
  },
  {
    kind: 'GlobalNetworkPolicy',
    metadata: { name: 'pre' },
    spec: {
      selector: "role == 'node'",
      preDNAT: true,
      applyOnForward: true,
      types: ['Ingress'],
      ingress: [tcpTo('Deny', [22, 7073]), tcpTo('Allow', [7074, 7075])],
    },
  },
  {
    kind: 'GlobalNetworkPolicy',
    metadata: { name: 'normal' },
    spec: {
      selector: "role == 'node'",
      ingress: [tcpTo('Allow', [7072, 7073, 7075]), { action: 'Allow', protocol: 'ICMPv6' }],
      egress: [{ action: 'Allow' }],
    },
  },
];
// ... and as the calculation graph sends them
const ports = (ps: number[]) => ps.map((p) => ({ first: p, last: p }));
const UPDATES: DataplaneUpdate[] = [
  {
    type: 'policy-update',
    id: 'dnt',
    inbound: [
      { action: 'deny', protocol: 6, dstPorts: ports([7072]), ruleId: 'd0' },
      { action: 'allow', protocol: 6, dstPorts: ports([7071]), ruleId: 'd1' },
    ],
    outbound: [
      { action: 'deny', protocol: 6, dstPorts: ports([7076]), ruleId: 'd2' },
      { action: 'allow', protocol: 6, srcPorts: ports([7071]), ruleId: 'd3' },
    ],
  },
  {
    type: 'policy-update',
    id: 'pre',
    inbound: [
      { action: 'deny', protocol: 6, dstPorts: ports([22, 7073]), ruleId: 'p0' },
      { action: 'allow', protocol: 6, dstPorts: ports([7074, 7075]), ruleId: 'p1' },
    ],
    outbound: [],
  },
  {
    type: 'policy-update',
    id: 'normal',
    inbound: [
      { action: 'allow', protocol: 6, dstPorts: ports([7072, 7073, 7075]), ruleId: 'n0' },
      { action: 'allow', protocol: 58, ruleId: 'n1' },
    ],
    outbound: [{ action: 'allow', ruleId: 'n2' }],
  },
];
const tier = (ingress: string[], egress: string[] = []): TierInfo => ({
  name: 'default',
  defaultAction: 'deny',
  ingressPolicies: ingress,
  egressPolicies: egress,
});
const hep = (iface: string): HostEndpoint => ({
  id: 'node-uplink',
  ifaceName: iface,
  expectedIps: [NODE[4], NODE[6]],
  tiers: [tier(['normal'], ['normal'])],
  untrackedTiers: [tier(['dnt'], ['dnt'])],
  preDnatTiers: [tier(['pre'])],
  forwardTiers: [],
  profileIds: [],
});

const evaluator = new Evaluator({
  endpoints: [{ name: 'node-uplink', labels: { role: 'node' }, ips: [NODE[4], NODE[6]] }],
  policies: POLICIES,
});
/** Flows outside -> node (ingress at the host endpoint) and node -> outside (egress), both families. */
type Tcp = { src: string; dst: string; port: number };
const INGRESS: Tcp[] = ([4, 6] as const).flatMap((f) =>
  NODE_PORTS.filter((p) => p !== 22).map((port) => ({ src: PEER[f], dst: NODE[f], port })),
);
const EGRESS: Tcp[] = ([4, 6] as const).flatMap((f) =>
  PEER_PORTS.map((port) => ({ src: NODE[f], dst: PEER[f], port })),
);
const FLOWS = [...INGRESS, ...EGRESS];
const show = (x: Tcp, ok: boolean) => `${x.src} -> ${x.dst}:${x.port} ${ok ? 'ok' : 'fail'}`;
const verdict = (src: string, dst: string, dstPort: number) =>
  evaluator.evaluate({ srcIp: src, dstIp: dst, protocol: 'TCP', srcPort: 40000, dstPort }).allowed;

for (const backend of ['legacy', 'nft', 'nftables'] as const) {
  const iptables = backend !== 'nftables';
  describeIf(
    iptables ? ['root', 'netns', 'iptables', 'ipset'] : ['root', 'netns', 'nft'],
    iptables
      ? `untracked and pre-DNAT host endpoint policy (iptables-${backend})`
      : 'untracked and pre-DNAT host endpoint policy (native nftables)',
    () => {
      const tb = new Testbed();
      let node: Netns;
      let outside: Netns;
      let uplink: string;
      let acl: AclManager | NftAclManager;
      const nftTable = () => node.exec(['nft', 'list', 'table', 'inet', 'tortie']);

      const connect = async (from: Netns, targets: Array<[string, number]>) =>
        JSON.parse(
          await from.exec([process.execPath, '-e', CONNECT, JSON.stringify(targets)]),
        ) as boolean[];
      /** What the dataplane did with each flow. */
      const observe = async () => {
        const [ins, outs] = await Promise.all([
          connect(
            outside,
            INGRESS.map((x) => [x.dst, x.port]),
          ),
          connect(
            node,
            EGRESS.map((x) => [x.dst, x.port]),
          ),
        ]);
        const got = [...ins, ...outs];
        return FLOWS.map((x, i) => show(x, got[i]));
      };

      beforeAll(async () => {
        node = await tb.netns(`aclstg${backend}`);
        outside = await tb.netns(`aclstgout${backend}`);
        uplink = (
          await link(node, outside, {
            v4: [`${NODE[4]}/24`, `${PEER[4]}/24`],
            v6: [`${NODE[6]}/64`, `${PEER[6]}/64`],
          })
        ).ifA;
        for (const [ns, ps] of [
          [node, NODE_PORTS],
          [outside, PEER_PORTS],
        ] as const) {
          const srv = ns.spawn([process.execPath, '-e', LISTEN, JSON.stringify(ps)]);
          await new Promise((r) => srv.stdout!.once('data', r));
        }
        acl =
          backend === 'nftables'
            ? linuxNftAclManager({ netns: node.name })
            : linuxAclManager({ netns: node.name, backend, ipv6: true });
        const start: DataplaneUpdate[] = [
          ...UPDATES,
          { type: 'host-endpoint-update', endpoint: hep(uplink) },
          { type: 'in-sync' },
        ];
        start.forEach((u) => acl.send(u));
        await acl.apply();
      }, 60000);
      afterAll(async () => {
        if (acl && 'close' in acl) acl.close();
        await tb.cleanup();
      }, 30000);

      test('the evaluator says what the flows must do (an untracked or pre-DNAT Allow skips normal policy)', () => {
        expect(FLOWS.map((x) => show(x, verdict(x.src, x.dst, x.port)))).toEqual([
          `${PEER[4]} -> ${NODE[4]}:7071 ok`,
          `${PEER[4]} -> ${NODE[4]}:7072 fail`,
          `${PEER[4]} -> ${NODE[4]}:7073 fail`,
          `${PEER[4]} -> ${NODE[4]}:7074 ok`,
          `${PEER[4]} -> ${NODE[4]}:7075 ok`,
          `${PEER[4]} -> ${NODE[4]}:7077 fail`,
          `${PEER[6]} -> ${NODE[6]}:7071 ok`,
          `${PEER[6]} -> ${NODE[6]}:7072 fail`,
          `${PEER[6]} -> ${NODE[6]}:7073 fail`,
          `${PEER[6]} -> ${NODE[6]}:7074 ok`,
          `${PEER[6]} -> ${NODE[6]}:7075 ok`,
          `${PEER[6]} -> ${NODE[6]}:7077 fail`,
          `${NODE[4]} -> ${PEER[4]}:7076 fail`,
          `${NODE[4]} -> ${PEER[4]}:7078 ok`,
          `${NODE[6]} -> ${PEER[6]}:7076 fail`,
          `${NODE[6]} -> ${PEER[6]}:7078 ok`,
        ]);
      });

      test('traffic agrees with the reference evaluator over IPv4 and IPv6', async () => {
        expect(await observe()).toEqual(FLOWS.map((x) => show(x, verdict(x.src, x.dst, x.port))));
      }, 30000);

      test('the failsafe port stays open although pre-DNAT policy denies it', async () => {
        expect(verdict(PEER[4], NODE[4], 22)).toBe(false); // the evaluator knows no failsafe ports
        expect(
          await connect(outside, [
            [NODE[4], 22],
            [NODE[6], 22],
          ]),
        ).toEqual([true, true]);
      }, 30000);

      test('untracked traffic leaves no conntrack entry; tracked traffic does', async () => {
        expect(
          await connect(outside, [
            [NODE[4], 7071],
            [NODE[4], 7075],
          ]),
        ).toEqual([true, true]);
        const table = await node.exec(['cat', '/proc/net/nf_conntrack']).catch(() => undefined);
        // a kernel built without CONFIG_NF_CONNTRACK_PROCFS has no table to read: nothing to check
        if (table === undefined) return;
        const lines = table.split('\n');
        expect(lines.filter((l) => l.includes('dport=7071 '))).toEqual([]);
        expect(lines.filter((l) => l.includes('dport=7075 ')).length).toBeGreaterThan(0);
      }, 30000);

      test('a raw chain flushed by hand is repaired by resync', async () => {
        if (backend === 'nftables') {
          // the untracked (raw) chain of the host endpoint's ingress
          const fh = (acl as NftAclManager)
            .desiredChainList()
            .filter((c) => c.name.startsWith('fhu-'));
          expect(fh).toHaveLength(1);
          await node.exec(['nft', 'flush', 'chain', 'inet', 'tortie', fh[0].name]);
        } else {
          const fh = chainName.fromHost(uplink);
          await node.exec([`iptables-${backend}`, '-t', 'raw', '-F', fh]);
        }
        // the untracked stage is gone: 7071 is tracked now (normal policy denies it), 7072 reaches normal policy
        expect(
          await connect(outside, [
            [NODE[4], 7071],
            [NODE[4], 7072],
          ]),
        ).toEqual([false, true]);
        await acl.resync();
        expect(
          await connect(outside, [
            [NODE[4], 7071],
            [NODE[4], 7072],
          ]),
        ).toEqual([true, false]);
      }, 30000);

      const stagesGone = iptables ? test : () => undefined;
      const nftStagesGone = iptables ? () => undefined : test;
      nftStagesGone(
        'without such policy, no pre-DNAT chain and raw only the workload RPF check',
        async () => {
          const before = await nftTable();
          expect(before).toMatch(
            /chain predn-prerouting \{\s*type filter hook prerouting priority dstnat - 10;/,
          );
          expect(before).toMatch(/chain raw-prerouting \{[^}]*jump raw-from-hep-dispatch/);
          acl.send({
            type: 'host-endpoint-update',
            endpoint: { ...hep(uplink), untrackedTiers: [], preDnatTiers: [] },
          });
          await acl.apply();
          const after = await nftTable();
          expect(after).not.toMatch(/chain (predn-|raw-from-hep|raw-to-hep|raw-failsafe)/);
          expect(after).not.toContain(' notrack');
          expect(after).toMatch(
            /chain raw-prerouting \{[^}]*fib saddr . mark . iif oif missing counter[^}]*drop/,
          );
          expect(
            await connect(outside, [
              [NODE[4], 7071],
              [NODE[4], 7073],
            ]),
          ).toEqual([false, true]);
        },
        30000,
      );

      stagesGone(
        'without such policy, mangle holds nothing of ours and raw only the workload RPF check',
        async () => {
          const save = async (t: string) =>
            (await node.exec([`iptables-${backend}-save`, '-t', t])) +
            (await node.exec([`ip6tables-${backend}-save`, '-t', t]));
          expect(await save('raw')).toMatch(/-A PREROUTING .*-j tortie-PREROUTING/);
          expect(await save('mangle')).toMatch(/-A PREROUTING .*-j tortie-PREROUTING/);
          acl.send({
            type: 'host-endpoint-update',
            endpoint: { ...hep(uplink), untrackedTiers: [], preDnatTiers: [] },
          });
          await acl.apply();
          const raw = (await save('raw')).split('\n').filter((l) => l.includes('tortie'));
          expect(raw.filter((l) => l.startsWith('-A tortie-') && !/rpfilter|MARK/.test(l))).toEqual(
            [],
          );
          expect(raw.filter((l) => /rpfilter/.test(l))).toHaveLength(2); // IPv4 and IPv6
          expect(await save('mangle')).not.toContain('tortie');
          // only normal policy now: 7071 is denied, 7073 allowed
          expect(
            await connect(outside, [
              [NODE[4], 7071],
              [NODE[4], 7073],
            ]),
          ).toEqual([false, true]);
        },
        30000,
      );
    },
  );
}
