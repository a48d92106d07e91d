// Differential test of the whole policy pipeline against the reference evaluator: random
// clusters (policy-gen.ts: Calico and Kubernetes policies, pods in 2-3 namespaces with
// random labels, service accounts and named ports) go through the CalcGraph into a real
// AclManager in a "node" namespace; the pods are namespaces wired as Calico wires them
// (veth cali* on the host side, /32 and /128 addresses, host routes, proxy ARP, default
// route via 169.254.1.1), each running TCP and UDP echo servers. Every ordered pod pair is
// probed with TCP, UDP and ping (ICMP echo, type 8 / ICMPv6 128, code 0) over IPv4 and
// IPv6, all at once, and each probe's outcome must be the evaluator's verdict for that
// flow. A UDP probe counts as allowed when the echo came back. A probe that the evaluator
// allows but that failed is probed again (slower, from a fresh source port, judged for that
// port) before it counts as a mismatch.
//
// Under load the probes themselves used to fail (cluster 2 of the default seed, 270 probes,
// "denied" where both profiles allow, on nftables and on iptables): the probe process armed
// its deadlines and then spawned its pings, each spawn blocking its event loop, so 1 s
// deadlines fired 3.3-3.8 s late and, as expired timers run before sockets are polled,
// before the echo that was already there was read; the second try reused the source port
// (whatever the first left on it decided too). The table was right each time. See PROBE.
//
// On a mismatch the test prints the seed, the cluster as YAML, the flow, both verdicts,
// the evaluator's explanation and the chains the packet went through.
//
// The comparison is shown to fail when the dataplane is wrong ("catches a wrong
// dataplane" below, on the nftables backend; the comparison is the same code on each):
// the same pipeline with the AclManager's input altered (a namespace profile's allow
// dropped, a deny-all policy turned into allow-all) must be reported.
// Run by hand against the tree before the renderer rewrite (61df6b9, through
// `git archive` into a scratch directory), 10 of the first 12 clusters disagreed: a
// '-d A ! -d B' (or two -s, two -p) made the filter restore fail and left every pod open,
// and a Pass rule with a named notPort was dropped.
//
// TORTIE_DIFF_SEEDS=N runs N clusters per backend (default 4), TORTIE_DIFF_SEED another
// seed; a reported "cluster i" is reproduced by the same seed.
import fc from 'fast-check';
import type { Resource } from '@tortie/api';
import { Evaluator, explain, type Flow } from '@tortie/policy';
import { Testbed, describeIf, type Netns } from '@tortie/testbed';
import { CalcGraph } from '../src/calc/calc-graph';
import { DataplaneState } from '../src/dataplane-state';
import { chainName, linuxAclManager } from '../src/dataplane/acl';
import { linuxNftAclManager } from '../src/dataplane/nft-acl';
import type { DataplaneUpdate } from '../src/types';
import {
  buildCluster,
  clusterArb,
  clusterYaml,
  coverage,
  type GenCluster,
  type GenOptions,
} from './policy-gen';
import { nodeNetns, podNetns } from './pod-netns';

const SEEDS = Number(process.env.TORTIE_DIFF_SEEDS ?? 4);
const SEED = Number(process.env.TORTIE_DIFF_SEED ?? 8675309);
const NODE = 'n1';

const SLOTS = [0, 1, 2, 3, 4, 5].map((i) => ({
  v4: `10.65.0.${i + 1}`,
  v6: `fd00:65::${i + 1}`,
  iface: `calidiff0000${i}`,
  node: NODE,
}));
const GEN: GenOptions = {
  slots: SLOTS,
  minPods: 4,
  maxPods: 6,
  maxCalico: 5,
  maxK8s: 3,
  emptyLists: true,
};

// what every pod serves, and what is probed (named ports in policy-gen map onto these)
const TCP_PORTS = [80, 443, 8080, 9090];
const UDP_PORTS = [53, 8080];
type Proto = 'tcp' | 'udp' | 'ping';
const PROBES: Array<{ proto: Proto; family: 4 | 6; port: number }> = [
  { proto: 'tcp', family: 4, port: 80 },
  { proto: 'tcp', family: 4, port: 443 },
  { proto: 'tcp', family: 4, port: 8080 },
  { proto: 'udp', family: 4, port: 53 },
  { proto: 'udp', family: 4, port: 8080 },
  { proto: 'ping', family: 4, port: 0 },
  { proto: 'tcp', family: 6, port: 8080 },
  { proto: 'udp', family: 6, port: 53 },
  { proto: 'ping', family: 6, port: 0 },
];

// TCP servers answer once and close first (the client ends up without TIME_WAIT); UDP
// servers echo from the port they were asked on.
const ECHO = `
const net = require('node:net'), dgram = require('node:dgram');
const tcp = JSON.parse(process.argv[1]), udp = JSON.parse(process.argv[2]);
let n = 0; const up = () => ++n === tcp.length + 2 * udp.length && process.stdout.write('ready\\n');
for (const p of tcp)
  net.createServer((c) => { c.on('error', () => {}); c.once('data', (d) => c.end(d)); }).listen(p, '::', up);
for (const p of udp)
  for (const [type, any] of [['udp4', '0.0.0.0'], ['udp6', '::']]) {
    const u = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
    u.on('message', (m, r) => u.send(m, r.port, r.address));
    u.bind(p, any, up);
  }
`;
// Runs every probe of argv[1] (JSON [[proto, ip, port, sourcePort]]) at once, each with
// argv[2] ms, and prints JSON [ok, why, ms taken] per probe.
//
// Under load this process must not report a reply that arrived as a timeout: spawning ping
// blocks the event loop (each spawn is synchronous, ~0.3 s at load 30), and expired timers
// run before the sockets are polled, so a timer armed before the spawns fired with the echo
// already waiting (1 s deadlines fired after 3.3-3.8 s, each such probe "denied"). So the
// pings are spawned first, the deadlines start once everything is sent, and an expired
// deadline decides only after the sockets' pending events (setImmediate runs after the
// poll phase).
const PROBE = `
const { spawn } = require('node:child_process');
const net = require('node:net'), dgram = require('node:dgram');
const ms = Number(process.argv[2]);
const specs = JSON.parse(process.argv[1]);
const arms = [];
const one = ([proto, ip, port, sport]) => new Promise((done) => {
  let settled = false, t, at;
  const end = (ok, why) => {
    if (settled) return;
    settled = true; clearTimeout(t); done([ok, why, at === undefined ? -1 : Date.now() - at]);
  };
  arms.push(() => {
    at = Date.now();
    t = setTimeout(() => setImmediate(() => end(false, 'timeout')), proto === 'ping' ? ms + 1000 : ms);
  });
  if (proto === 'ping') {
    const p = spawn('ping', ['-c', '1', '-W', String(Math.ceil(ms / 1000)), ip], { stdio: 'ignore' });
    p.on('error', (e) => end(false, e.code));
    return p.on('exit', (code) => end(code === 0, 'ping exit ' + code));
  }
  if (proto === 'tcp') {
    const s = net.connect({ host: ip, port, localPort: sport }, () => s.write('x'));
    s.on('data', () => end(true, ''));
    s.on('error', (e) => end(false, e.code));
    return;
  }
  const u = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4');
  u.on('message', () => end(true, ''));
  u.on('error', (e) => end(false, e.code));
  u.bind(sport, () => u.send('x', port, ip));
});
const results = [];
const pingFirst = specs.map((s, i) => i).sort((a, b) => (specs[b][0] === 'ping') - (specs[a][0] === 'ping'));
for (const i of pingFirst) results[i] = one(specs[i]);
setImmediate(() => arms.forEach((arm) => arm()));
Promise.all(results).then((r) => process.stdout.write(JSON.stringify(r), () => process.exit(0)));
`;

/** One probe: from a pod to another pod's address, and the flow the evaluator judges. */
interface Cell {
  src: number; // slot
  dst: number;
  proto: Proto;
  family: 4 | 6;
  port: number;
  sport: number;
  flow: Flow;
}

/** Source ports of a round's second tries: above its first tries (at most 5 x 9 per pod). */
const RECHECK_PORT_OFFSET = 64;
const withSport = (x: Cell, sport: number): Cell =>
  x.proto === 'ping' ? { ...x } : { ...x, sport, flow: { ...x.flow, srcPort: sport } };

const podIp = (slot: number, family: 4 | 6) => (family === 4 ? SLOTS[slot].v4 : SLOTS[slot].v6);

/** Every ordered pair of the cluster's pods x every probe; source ports unique per round. */
function cells(c: GenCluster, round: number): Cell[] {
  const out: Cell[] = [];
  for (const s of c.pods)
    for (const d of c.pods) {
      if (s.slot === d.slot) continue;
      for (const p of PROBES) {
        // a fresh source port per probe and round: no conntrack entry of an earlier round applies
        const sport = 20000 + (round % 300) * 128 + out.filter((x) => x.src === s.slot).length;
        const [srcIp, dstIp] = [podIp(s.slot, p.family), podIp(d.slot, p.family)];
        const flow: Flow =
          p.proto === 'ping'
            ? {
                srcIp,
                dstIp,
                protocol: p.family === 4 ? 'ICMP' : 'ICMPv6',
                icmpType: p.family === 4 ? 8 : 128,
                icmpCode: 0,
              }
            : {
                srcIp,
                dstIp,
                protocol: p.proto === 'tcp' ? 'TCP' : 'UDP',
                srcPort: sport,
                dstPort: p.port,
              };
        out.push({ src: s.slot, dst: d.slot, ...p, sport, flow });
      }
    }
  return out;
}

const cellText = (c: GenCluster, x: Cell) => {
  const pod = (slot: number) => {
    const p = c.pods.find((q) => q.slot === slot)!;
    return `${p.namespace}/${p.name}`;
  };
  const what = x.proto === 'ping' ? (x.family === 4 ? 'ping' : 'ping6') : x.proto.toUpperCase();
  const dst = x.family === 6 ? `[${x.flow.dstIp}]` : x.flow.dstIp;
  const sport = x.proto === 'ping' ? '' : ` (source port ${x.sport})`;
  return `${pod(x.src)} -> ${pod(x.dst)}: ${what} ${x.flow.srcIp} -> ${dst}${x.proto === 'ping' ? '' : `:${x.port}`}${sport}`;
};

/** The calculation graph's output for the node (and what it complained about). */
function calculate(resources: Resource[]) {
  const dp = new DataplaneState();
  const g = new CalcGraph({ nodeName: NODE, sink: dp });
  g.onUpdates(resources.map((resource) => ({ type: 'set', resource })));
  g.onStatus('in-sync');
  return dp;
}

/** A policy-free copy of a cluster: namespace profiles allow everything. */
const withoutPolicy = (c: GenCluster): GenCluster => ({ ...c, calico: [], k8s: [] });

// iptables (both backends) and the native nftables dataplane ('nftables')
for (const backend of ['legacy', 'nft', 'nftables'] as const) {
  const iptables = backend !== 'nftables';
  const label = iptables ? `iptables-${backend}` : 'nftables';
  describeIf(
    iptables ? ['root', 'netns', 'iptables', 'ipset'] : ['root', 'netns', 'nft'],
    `policy differential: real probes vs the reference evaluator (${label})`,
    () => {
      const tb = new Testbed();
      let node: Netns;
      const pods: Netns[] = [];
      let round = 0;
      const lastWhy = new Map<Cell, string[]>();
      const clusters = fc.sample(clusterArb(GEN), { seed: SEED, numRuns: SEEDS });

      beforeAll(async () => {
        node = await nodeNetns(tb, `diff${backend}`);
        await Promise.all(
          SLOTS.map(async (slot, i) => {
            const ns = (pods[i] = await podNetns(tb, node, `diffpod${i}`, slot));
            const echo = ns.spawn([
              process.execPath,
              '-e',
              ECHO,
              JSON.stringify(TCP_PORTS),
              JSON.stringify(UDP_PORTS),
            ]);
            await new Promise((r) => echo.stdout!.once('data', r));
          }),
        );
      }, 180000);
      afterAll(() => tb.cleanup(), 30000);

      /** Runs the probes of `cs` (from their source pods, all at once); outcomes in order. */
      const probe = async (cs: Cell[], ms: number): Promise<boolean[]> => {
        const got = new Map<Cell, boolean>();
        const why = new Map<Cell, string>();
        await Promise.all(
          [...new Set(cs.map((x) => x.src))].map(async (src) => {
            const mine = cs.filter((x) => x.src === src);
            const spec = mine.map((x) => [x.proto, x.flow.dstIp, x.port, x.sport]);
            const out = await pods[src].exec(
              [process.execPath, '-e', PROBE, JSON.stringify(spec), String(ms)],
              { timeoutMs: 30000 },
            );
            (JSON.parse(out) as Array<[boolean, string, number]>).forEach(([ok, w, t], i) => {
              got.set(mine[i], ok);
              why.set(mine[i], `${w} after ${t} ms`);
            });
          }),
        );
        for (const x of cs)
          if (!got.get(x)) lastWhy.set(x, [...(lastWhy.get(x) ?? []), why.get(x)!]);
        return cs.map((x) => got.get(x)!);
      };

      /** The filter chains a probe went through (dispatch -> endpoint -> policy), for a report. */
      const chainsFor = async (x: Cell): Promise<string> => {
        if (!iptables) return node.exec(['nft', 'list', 'table', 'inet', 'tortie']);
        const save = await node.exec([
          `${x.family === 4 ? 'iptables' : 'ip6tables'}-${backend}-save`,
          '-t',
          'filter',
        ]);
        const lines = save.split('\n');
        const want = new Set([
          chainName.fromWorkload(SLOTS[x.src].iface),
          chainName.toWorkload(SLOTS[x.dst].iface),
        ]);
        // the policy and profile chains those jump to
        for (const l of lines)
          for (const c of [...want]) {
            const m = l.startsWith(`-A ${c} `) ? / -j (tortie-p\S+)/.exec(l) : null;
            if (m) want.add(m[1]);
          }
        return lines
          .filter((l) => [...want].some((c) => l.startsWith(`-A ${c} `)))
          .map((l) => l.replace(/-m comment --comment "?tortie:[\w-]+"? /, ''))
          .join('\n');
      };

      /**
       * One cluster through the pipeline and the probes; `alter` changes what the AclManager
       * is given (to show the comparison fails on a wrong dataplane). Returns the mismatches.
       */
      const runCluster = async (
        c: GenCluster,
        label: string,
        alter: (u: DataplaneUpdate) => DataplaneUpdate = (u) => u,
        // also ask failed probes the evaluator denies again (the self-test counts exactly)
        recheckAll = false,
      ) => {
        await resetKernel(node, backend);
        const built = buildCluster(c, GEN);
        const dp = calculate(built.resources);
        const acl = iptables
          ? linuxAclManager({ netns: node.name, backend, ipv6: true })
          : linuxNftAclManager({ netns: node.name });
        for (const u of dp.log) acl.send(alter(u));
        const failed = await acl.apply().then(
          () => undefined,
          (e: Error) => e.message,
        );
        const evaluator = new Evaluator(built.world);
        const all = cells(c, round++);
        const verdicts = all.map((x) => evaluator.evaluate(x.flow));
        const got = await probe(all, 1000);
        // a failed probe the evaluator allows may be a slow one: ask again, slower, from a
        // fresh source port (what the first try left, a TIME_WAIT on the client or a
        // conntrack entry on the node, must not decide the second), judged for that port
        const doubt = all.filter((_, i) => !got[i] && (verdicts[i].allowed || recheckAll));
        const redo = doubt.map((x) => withSport(x, x.sport + RECHECK_PORT_OFFSET));
        redo.forEach((x, i) => lastWhy.set(x, lastWhy.get(doubt[i]) ?? []));
        const again = redo.length ? await probe(redo, 3000) : [];
        const confirmed = new Map(
          doubt.map((x, i) => [
            x,
            { x: redo[i], got: again[i], verdict: evaluator.evaluate(redo[i].flow) },
          ]),
        );
        const bad = all
          .map((x, i) => confirmed.get(x) ?? { x, got: got[i], verdict: verdicts[i] })
          .filter((m) => m.got !== m.verdict.allowed);
        const allowed = verdicts.filter((v) => v.allowed).length;
        const summary = `${label}: ${all.length} probes, evaluator allows ${allowed}, ${bad.length} mismatches`;
        if (!bad.length && !failed) return { summary, mismatches: bad, report: undefined };
        const report = [
          `${label} (seed ${SEED}), ${label}: ${bad.length} of ${all.length} probes disagree with the evaluator`,
          ...(failed ? [`AclManager.apply() failed: ${failed}`] : []),
          ...(dp.errors.length
            ? [`calculation graph protocol errors: ${dp.errors.join('; ')}`]
            : []),
          ...bad
            .slice(0, 12)
            .map(
              (m) =>
                `  ${cellText(c, m.x)}: dataplane ${m.got ? 'ALLOWED' : 'DENIED'}, evaluator ${m.verdict.allowed ? 'ALLOWED' : 'DENIED'} [${(lastWhy.get(m.x) ?? []).join('; ')}]`,
            ),
          ...(bad.length > 12 ? [`  ... and ${bad.length - 12} more`] : []),
          ...(bad.length
            ? [
                'first mismatch, as the evaluator explains it:',
                explain(bad[0].verdict, bad[0].x.flow).replace(/^/gm, '  '),
                "the node's conntrack entries of the mismatched flows:",
                (
                  await conntrackOf(
                    node,
                    bad.map((m) => m.x),
                  )
                ).replace(/^/gm, '  '),
                'and the chains the packet goes through:',
                (await chainsFor(bad[0].x)).replace(/^/gm, '  '),
              ]
            : []),
          'the cluster:',
          clusterYaml(c, built, GEN).replace(/^/gm, '  '),
        ].join('\n');
        return { summary, mismatches: bad, report };
      };

      test('wiring: without policy every pod reaches every other (namespace profiles allow all)', async () => {
        const c = withoutPolicy(clusters[0]);
        const { mismatches, report } = await runCluster(c, 'no policy');
        expect(report).toBeUndefined();
        expect(mismatches).toEqual([]);
      }, 120000);

      // The comparison itself (probes, rechecks, verdicts) is the same code on every
      // backend; it is shown to catch a wrong dataplane on one (nftables), not three.
      const selfTest = backend === 'nftables' ? test : () => undefined;
      selfTest(
        'the comparison catches a wrong dataplane, in both directions',
        async () => {
          const base = withoutPolicy(clusters[0]);
          // 1. the dataplane denies what the evaluator allows: pod0's namespace profile loses its allow
          const ns = base.pods[0].namespace;
          const denying = await runCluster(base, 'profile allow dropped', (u) =>
            u.type === 'profile-update' && u.id === `kns.${ns}` ? { ...u, inbound: [] } : u,
          );
          const intoNs = (x: { dst: number }) =>
            base.pods.find((p) => p.slot === x.dst)!.namespace === ns;
          // every probe into that namespace, and nothing else
          expect(denying.mismatches.length).toBe(cells(base, 0).filter(intoNs).length);
          expect(denying.mismatches.every((m) => intoNs(m.x) && !m.got && m.verdict.allowed)).toBe(
            true,
          );
          // 2. the dataplane allows what the evaluator denies: a deny-all policy programmed as allow-all
          const denyAll: GenCluster = {
            ...base,
            calico: [
              {
                kind: 'GlobalNetworkPolicy',
                name: 'deny-all',
                spec: { selector: 'all()', ingress: [{ action: 'Deny' }] },
              },
            ],
          };
          const opening = await runCluster(
            denyAll,
            'deny-all programmed as allow-all',
            (u) =>
              u.type === 'policy-update'
                ? { ...u, inbound: u.inbound.map((r) => ({ ...r, action: 'allow' as const })) }
                : u,
            true,
          );
          expect(opening.mismatches.length).toBe(cells(denyAll, 0).length);
          expect(opening.mismatches.every((m) => m.got && !m.verdict.allowed)).toBe(true);
        },
        240000,
      );

      test(
        `${SEEDS} random clusters: every probe gets the evaluator's verdict`,
        async () => {
          const reports: string[] = [];
          for (const [i, c] of clusters.entries()) {
            const r = await runCluster(c, `cluster ${i}`);
            console.log(r.summary);
            if (r.report) reports.push(r.report);
          }
          const covered = Object.entries(coverage(clusters))
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([k, n]) => `${k}: ${n}`);
          console.log(`${label}, generated rules by feature: ${covered.join(', ')}`);
          expect(reports).toEqual([]);
        },
        60000 + SEEDS * 60000,
      );
    },
  );
}

/** The node's conntrack entries for these probes' flows (source address and port). */
async function conntrackOf(node: Netns, xs: Cell[]): Promise<string> {
  const all = await node.exec(['conntrack', '-L']).catch((e: Error) => e.message);
  const keys = xs.map((x) =>
    x.proto === 'ping'
      ? `src=${x.flow.srcIp} dst=${x.flow.dstIp} type=`
      : `src=${x.flow.srcIp} dst=${x.flow.dstIp} sport=${x.sport} `,
  );
  return all
    .split('\n')
    .filter((l) => keys.some((k) => l.includes(k)))
    .join('\n');
}

/** Flushes every table of both families and destroys every IP set: a clean slate per cluster. */
async function resetKernel(ns: Netns, backend: string): Promise<void> {
  if (backend === 'nftables') {
    await ns.exec(['nft', 'flush', 'ruleset']);
    return;
  }
  const empty = ['filter', 'nat', 'raw', 'mangle'].map((t) => `*${t}\nCOMMIT\n`).join('');
  for (const bin of ['iptables', 'ip6tables'])
    await ns.exec([`${bin}-${backend}-restore`], { input: empty });
  await ns.exec(['ipset', 'destroy']);
}
