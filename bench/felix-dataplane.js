#!/usr/bin/env node
// Node agent dataplane benchmarks (issue 7), as root, in throwaway network namespaces:
//   - one pod added (calc graph -> routes + rules ready) on a node that already has 1,500,
//     iptables-legacy and -nft
//   - 10,000 routes through the route table, over netlink and over its `ip -batch`
//     fallback, vs one raw `ip -batch` of the same routes, in the same run
//     (TORTIE_BENCH_ONLY=routes runs only these rows)
//   - the native nftables dataplane: one pod added at 1,500 and 10,000 pods, and 1,000
//     endpoints x 100 policies programmed, each vs a raw `nft -f` of the same script
//     (TORTIE_BENCH_ONLY=nftables runs only these rows; =nftables-pods, =nftables-policy or
//     =nftables-commit one kind; TORTIE_BENCH_PODS=1500 only that pod count); and the
//     kernel's commit of one set member, verdict-map and data-map element at 1k-10k
//     interfaces (what a pod add's transaction costs the kernel)
// (1,000 endpoints x 100 policies vs raw iptables-restore: bench/felix-iptables.js)
// Prints one JSON line per figure. Usage: node bench/felix-dataplane.js [policies]
'use strict';
const { createHash } = require('node:crypto');
const { parseResource } = require('../packages/api/dist');
const felix = require('../packages/felix/dist');
const { Rtnl, netlinkAvailability } = require('../packages/netlink/dist');
const { Testbed, teardownOnSignals, tearingDown } = require('../packages/testbed/dist');
// Ctrl-C or SIGTERM: every namespace, process and temp dir this run made goes
teardownOnSignals((l) => process.stderr.write(`${l}\n`));

const POLICIES = Number(process.argv[2] ?? 100);
const R = (kind, name, spec, meta = {}) =>
  parseResource({ apiVersion: 'tortie.io/v1', kind, metadata: { name, ...meta }, spec });
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const line = (o) => console.log(JSON.stringify(o));
// interface names as the CNI plugin makes them: cali + 11 hex chars of a hash
const iface = (i) => `cali${createHash('sha1').update(`bench.pod${i}`).digest('hex').slice(0, 11)}`;

function world(n, policies) {
  const rs = [
    R('Node', 'n1', { bgp: { ipv4Address: '192.168.100.1/24' } }),
    R('IPPool', 'p', { cidr: '10.80.0.0/16' }),
  ];
  rs.push(
    R('Profile', 'kns.bench', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }),
  );
  for (let i = 0; i < n; i++) rs.push(wep(i));
  for (let i = 0; i < policies; i++) {
    rs.push(
      R(
        'NetworkPolicy',
        `pol${i}`,
        {
          order: i,
          selector: `app == 'app${i % 50}'`,
          ingress: [
            {
              action: 'Allow',
              protocol: 'TCP',
              source: { selector: `app == 'app${(i + 1) % 50}'` },
              destination: { ports: [80 + (i % 10), 8080] },
            },
            { action: 'Deny', protocol: 'UDP', source: { nets: ['192.0.2.0/24'] } },
          ],
          egress: [{ action: 'Allow', destination: { selector: `tier == 't${i % 5}'` } }],
        },
        { namespace: 'bench' },
      ),
    );
  }
  return rs;
}

function wep(i) {
  return R(
    'WorkloadEndpoint',
    `n1-k8s-pod${i}-eth0`,
    {
      node: 'n1',
      pod: `pod${i}`,
      ipNetworks: [`10.80.${i >> 8}.${i & 255}/32`],
      interfaceName: iface(i),
      profiles: ['kns.bench'],
    },
    { namespace: 'bench', labels: { app: `app${i % 50}`, tier: `t${i % 5}` } },
  );
}

async function agentIn(ns, backend = 'legacy') {
  const runner = new felix.ProcessRunner(ns.name);
  // the real iptables runner, recording what it restores (the reference replays it)
  const restores = [];
  const acl = new felix.AclManager({
    iptables: (b, family) => {
      const real = new felix.ProcessIptablesRunner({ backend: b, family, netns: ns.name });
      return {
        restore: (table, input) => {
          const text = typeof input === 'string' ? input : [...input].join('');
          restores.push({ family, table, text });
          return real.restore(table, text);
        },
        save: (table) => real.save(table),
      };
    },
    ipsets: new felix.ProcessIpsetRunner({ netns: ns.name }),
    detectBackend: async () => backend,
    backend,
  });
  // routes over netlink as the agent does when the addon loads (TORTIE_NETLINK=off: ip)
  const net = new felix.NetManager(
    runner,
    netlinkAvailability().available ? Rtnl.open(ns.name) : undefined,
  );
  const graph = new felix.CalcGraph({
    nodeName: 'n1',
    sink: { send: (u) => (acl.send(u), net.send(u)) },
  });
  return { acl, net, graph, restores };
}

async function podAdd(tb, backend) {
  const big = await tb.netns(`fbig${backend}`);
  const b = await agentIn(big, backend);
  const N = 1500;
  await big.exec(['ip', '-batch', '-'], {
    input:
      Array.from(
        { length: N + 1 },
        (_, i) => `link add ${iface(i)} type bridge\nlink set ${iface(i)} up`,
      ).join('\n') + '\n',
  });
  b.graph.onUpdates(world(N, POLICIES).map((resource) => ({ type: 'set', resource })));
  b.graph.onStatus('in-sync');
  await Promise.all([b.net.apply(), b.acl.apply()]);
  const samples = [];
  for (let k = 0; k < 5; k++) {
    const i = N; // add, measure, remove, repeat
    const t0 = process.hrtime.bigint();
    b.graph.onUpdates([{ type: 'set', resource: wep(i) }]);
    await Promise.all([b.net.apply(), b.acl.apply()]); // as the agent applies them
    samples.push(ms(t0));
    const r = wep(i);
    b.graph.onUpdates([
      {
        type: 'deleted',
        resource: r,
        key: { kind: r.kind, name: r.metadata.name, namespace: r.metadata.namespace },
      },
    ]);
    await Promise.all([b.net.apply(), b.acl.apply()]); // as the agent applies them
  }
  samples.sort((x, y) => x - y);
  // the reference: the iptables part alone, the same restore input our last add wrote,
  // replayed raw into the same 1,500-pod ruleset (and the removal after it, untimed)
  const tool = `iptables-${backend}-restore`;
  const removal = b.restores.at(-1);
  b.graph.onUpdates([{ type: 'set', resource: wep(N) }]);
  await Promise.all([b.net.apply(), b.acl.apply()]);
  const addition = b.restores.at(-1);
  const raw = async (r) => big.exec([tool, '--noflush'], { input: r.text });
  await raw(removal); // back to 1,500
  const floor = [];
  for (let k = 0; k < 5; k++) {
    const t0 = process.hrtime.bigint();
    await raw(addition);
    floor.push(ms(t0));
    await raw(removal);
  }
  floor.sort((x, y) => x - y);
  line({
    figure: `one pod added on a node with ${N} pods (routes + rules ready), iptables-${backend}`,
    p50_ms: +samples[2].toFixed(1),
    max_ms: +samples[4].toFixed(1),
    restore_lines: addition.text.split('\n').length,
    reference_raw_restore_of_the_same_input_ms: +floor[2].toFixed(1),
    ratio: +(samples[2] / floor[2]).toFixed(2),
    target_ms: '< 100',
  });
}

/**
 * The native nftables dataplane with a runner that records each transaction's script and
 * times the runner (nft, or netlink for element-only transactions, as the agent runs it).
 */
function nftAgentIn(ns, { netlink } = {}) {
  const runner = new felix.NftSession({ netns: ns.name, netlink });
  const scripts = [];
  let nftMs = 0;
  // CPU time of this process over the transaction: over netlink the commit is a system
  // call on this thread, so this is the kernel's work without the waits for a CPU
  let nftCpuMs = 0;
  // the main thread's scheduler figures over the transaction (/proc/<pid>/task/<pid>/
  // schedstat: time on a CPU, time runnable but waiting for one): wall minus both is time
  // asleep (a lock, an RCU grace period in the kernel, another thread's work)
  let nftWaitMs = 0;
  const acl = new felix.NftAclManager({
    runner: {
      run: async (script, elements) => {
        const text = typeof script === 'string' ? script : [...script].join('');
        scripts.push(text);
        const t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        const s0 = schedstat();
        const how = await runner.run(text, elements);
        const c = process.cpuUsage(c0);
        nftWaitMs += (schedstat().waitNs - s0.waitNs) / 1e6;
        nftMs += ms(t0);
        nftCpuMs += (c.user + c.system) / 1000;
        return how;
      },
      check: (s) => runner.check(s),
    },
  });
  // routes over netlink as the agent does when the addon loads (TORTIE_NETLINK=off: ip)
  const net = new felix.NetManager(
    new felix.ProcessRunner(ns.name),
    netlinkAvailability().available ? Rtnl.open(ns.name) : undefined,
  );
  const graph = new felix.CalcGraph({
    nodeName: 'n1',
    sink: { send: (u) => (acl.send(u), net.send(u)) },
  });
  return {
    acl,
    net,
    graph,
    scripts,
    runner,
    nftMs: () => nftMs,
    nftCpuMs: () => nftCpuMs,
    nftWaitMs: () => nftWaitMs,
    close: () => runner.close(),
  };
}

/** CPU time so far (ms): this process's (every thread), and its reaped children's. */
function cpuNow() {
  const c = process.cpuUsage();
  // /proc/self/stat: cutime and cstime are fields 16 and 17, in clock ticks (1/100 s)
  const stat = require('node:fs').readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { own: (c.user + c.system) / 1000, children: (Number(f[13]) + Number(f[14])) * 10 };
}

/** The main thread's run-queue wait so far (Linux schedstat, nanoseconds). */
function schedstat() {
  const [, waitNs] = require('node:fs')
    .readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8')
    .split(' ')
    .map(Number);
  return { waitNs };
}

const nftRaw = (ns, text) => ns.exec(['nft', '-f', '-'], { input: text });
const p50 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return +s[s.length >> 1].toFixed(2);
};
const max = (xs) => +Math.max(...xs).toFixed(1);

/**
 * One pod added on a node with N pods, native nftables: the dataplane's transaction
 * (netlink: the agent's path; and, in the same run, through nft as without the netlink
 * fast path), the ACL manager's whole apply, calc, routes, and the same script replayed
 * raw with nft -f.
 */
async function podAddNft(tb, N) {
  const big = await tb.netns(`fnft${N}`);
  // 10,000 bridges take minutes to create on a loaded machine
  await big.exec(['ip', '-batch', '-'], {
    input:
      Array.from(
        { length: N + 1 },
        (_, i) => `link add ${iface(i)} type bridge\nlink set ${iface(i)} up`,
      ).join('\n') + '\n',
    timeoutMs: 900_000,
  });
  const r = wep(N);
  const del = {
    type: 'deleted',
    resource: r,
    key: { kind: r.kind, name: r.metadata.name, namespace: r.metadata.namespace },
  };
  const ROUNDS = 15;
  const out = {};
  // the agent's path (netlink for element-only transactions), then nft only (the
  // fallback on kernels before 6.10), each from a fresh table
  for (const netlink of [true, false]) {
    await big.exec(['nft', 'flush', 'ruleset']);
    const b = nftAgentIn(big, { netlink });
    b.graph.onUpdates(world(N, POLICIES).map((resource) => ({ type: 'set', resource })));
    b.graph.onStatus('in-sync');
    await Promise.all([b.net.apply(), b.acl.apply()]);
    const t = { total: [], calc: [], acl: [], tx: [], txCpu: [], txWait: [], routes: [] };
    const commits0 = b.runner.netlinkCommits;
    for (let k = 0; k < ROUNDS; k++) {
      const t0 = process.hrtime.bigint();
      const n0 = b.nftMs();
      const cpu0 = b.nftCpuMs();
      const wait0 = b.nftWaitMs();
      b.graph.onUpdates([{ type: 'set', resource: wep(N) }]);
      t.calc.push(ms(t0));
      // one after the other (the agent runs them concurrently), so neither's figure
      // holds the other's process starts and event-loop time
      const t1 = process.hrtime.bigint();
      await b.acl.apply();
      t.acl.push(ms(t1));
      t.tx.push(b.nftMs() - n0);
      t.txCpu.push(b.nftCpuMs() - cpu0);
      t.txWait.push(b.nftWaitMs() - wait0);
      const t2 = process.hrtime.bigint();
      await b.net.apply();
      t.routes.push(ms(t2));
      t.total.push(ms(t0));
      b.graph.onUpdates([del]);
      await Promise.all([b.net.apply(), b.acl.apply()]);
    }
    out[netlink ? 'netlink' : 'nft'] = {
      ...t,
      viaNetlink: b.runner.netlinkCommits - commits0,
      addition: b.scripts.at(-2),
      removal: b.scripts.at(-1),
      problem: b.runner.netlinkProblem(),
    };
    b.close();
  }
  // the reference: the same add and removal scripts replayed raw with nft -f
  const { addition, removal } = out.netlink;
  const floor = [];
  for (let k = 0; k < 7; k++) {
    const t0 = process.hrtime.bigint();
    await nftRaw(big, addition);
    floor.push(ms(t0));
    await nftRaw(big, removal);
  }
  const a = out.netlink;
  const n = out.nft;
  line({
    figure: `one pod added on a node with ${N} pods, nftables`,
    dataplane_transaction_p50_ms: p50(a.tx),
    dataplane_transaction_max_ms: max(a.tx),
    dataplane_transaction_cpu_p50_ms: p50(a.txCpu),
    dataplane_transaction_cpu_max_ms: max(a.txCpu),
    dataplane_transaction_waiting_for_a_cpu_p50_ms: p50(a.txWait),
    transactions_over_netlink: `${a.viaNetlink} of ${2 * ROUNDS}${a.problem ? ` (${a.problem})` : ''}`,
    acl_apply_p50_ms: p50(a.acl),
    calc_p50_ms: p50(a.calc),
    routes_p50_ms: p50(a.routes),
    total_p50_ms: p50(a.total),
    total_max_ms: max(a.total),
    nft_session_transaction_p50_ms: p50(n.tx),
    nft_session_total_p50_ms: p50(n.total),
    script_lines: addition.trim().split('\n').length,
    reference_raw_nft_f_of_the_same_script_ms: p50(floor),
    ratio: +(p50(a.tx) / p50(floor)).toFixed(3),
    rounds: ROUNDS,
    load_average: require('node:os')
      .loadavg()
      .map((x) => +x.toFixed(1)),
    target_ms: '< 10 (dataplane)',
  });
}

/**
 * The kernel's commit of one element over netlink (no nft, no agent), at N interfaces in
 * two verdict maps as the dataplane has them (endpoint chains jumping to policy chains):
 * a plain set member, a verdict-map element (`jump`), and a data-map element (a mark).
 * Adding a jump makes the kernel validate the table's jumps at the commit, which walks
 * every element of every verdict map reachable from a base chain; the other two don't.
 * CPU time of this process (the commit is a system call on its main thread), p50 of 200.
 */
async function commitCostNft(tb, counts) {
  const { NfTables, nftKey } = require('../packages/netlink/dist');
  const ns = await tb.netns('fnftcommit');
  const ifn = (i) => `cali${i.toString(16).padStart(11, '0')}`;
  const nl = NfTables.open(ns.name);
  try {
    for (const N of counts) {
      let s = 'flush ruleset\ntable inet t {\n';
      for (let p = 0; p < 100; p++)
        s += ` chain pi-${p} {\n  ip saddr 10.0.${p}.0/24 tcp dport 80 accept\n  ip saddr 10.1.${p}.0/24 drop\n }\n`;
      for (let c = 0; c < 50; c++) {
        s += ` chain tw-${c} {\n`;
        for (let p = 0; p < 20; p++) s += `  jump pi-${(c + p) % 100}\n`;
        s += '  drop\n }\n';
      }
      s += ' set s4 { type ipv4_addr; }\n map from-wl { type ifname : verdict; }\n';
      s += ' map to-wl { type ifname : verdict; }\n map d { type ifname : mark; }\n';
      s += ' chain forward {\n  type filter hook forward priority filter;\n';
      s +=
        '  iifname vmap @from-wl\n  oifname vmap @to-wl\n  meta mark set iifname map @d\n }\n}\n';
      const els = [];
      for (let i = 0; i < N; i++)
        els.push(
          `add element inet t from-wl { "${ifn(i)}" : jump tw-${i % 50} }`,
          `add element inet t to-wl { "${ifn(i)}" : jump tw-${(i + 1) % 50} }`,
          `add element inet t d { "${ifn(i)}" : ${i % 50} }`,
          `add element inet t s4 { 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} }`,
        );
      await ns.exec(['nft', '-f', '-'], { input: `${s}${els.join('\n')}\n`, timeoutMs: 600_000 });
      const key = nftKey.ifname(ifn(N + 1));
      const time = (add, del) => {
        const cpu = [];
        const wall = [];
        for (let k = 0; k < 200; k++) {
          const c0 = process.cpuUsage();
          const t0 = process.hrtime.bigint();
          nl.commitElements('inet', 't', [add]);
          wall.push(ms(t0));
          const c = process.cpuUsage(c0);
          cpu.push((c.user + c.system) / 1000);
          nl.commitElements('inet', 't', [del]);
        }
        return { cpu_p50_ms: p50(cpu), wall_p50_ms: p50(wall) };
      };
      const addr = nftKey.addr('10.200.0.1');
      line({
        figure: `kernel commit of one element at ${N} interfaces (two verdict maps), nftables`,
        set_member: time(
          { op: 'add', set: 's4', key: addr, text: '10.200.0.1' },
          { op: 'del', set: 's4', key: addr, text: '10.200.0.1' },
        ),
        verdict_map_jump: time(
          { op: 'add', set: 'from-wl', key, verdict: { code: 'jump', chain: 'tw-3' }, text: 'x' },
          { op: 'del', set: 'from-wl', key, text: 'x' },
        ),
        data_map_mark: time(
          { op: 'add', set: 'd', key, data: Buffer.from(new Uint32Array([3]).buffer), text: 'x' },
          { op: 'del', set: 'd', key, text: 'x' },
        ),
        load_average: require('node:os')
          .loadavg()
          .map((x) => +x.toFixed(1)),
      });
    }
  } finally {
    nl.close();
  }
}

/** 1,000 endpoints x 100 policies programmed from nothing vs a raw nft -f of the same ruleset. */
async function policyNft(tb, endpoints = 1000, policies = 100) {
  const ns = await tb.netns('fnftpol');
  const ref = await tb.netns('fnftref');
  const resources = world(endpoints, policies);
  const ours = [];
  const nftPart = [];
  const raw = [];
  // CPU time: this process (render, all threads) and its children (nft), reaped ones
  const oursCpu = [];
  const rawCpu = [];
  let script = '';
  // three rounds, each from an empty ruleset, ours and the reference alternating
  for (let k = 0; k < 3; k++) {
    await ns.exec(['nft', 'flush', 'ruleset']);
    await ref.exec(['nft', 'flush', 'ruleset']);
    const b = nftAgentIn(ns);
    b.graph.onUpdates(resources.map((resource) => ({ type: 'set', resource })));
    b.graph.onStatus('in-sync');
    const c0 = cpuNow();
    const t0 = process.hrtime.bigint();
    await b.acl.apply();
    ours.push(ms(t0));
    const c1 = cpuNow();
    oursCpu.push({ own: c1.own - c0.own, nft: c1.children - c0.children });
    nftPart.push(b.nftMs());
    b.close();
    script = b.scripts.at(-1);
    const t1 = process.hrtime.bigint();
    await nftRaw(ref, script);
    raw.push(ms(t1));
    rawCpu.push(cpuNow().children - c1.children);
  }
  for (const xs of [ours, nftPart, raw]) xs.sort((x, y) => x - y);
  const med = (xs) => +[...xs].sort((x, y) => x - y)[xs.length >> 1].toFixed(0);
  line({
    figure: `policy programming, ${endpoints} endpoints x ${policies} policies, nftables`,
    tortie_ms: +ours[1].toFixed(1),
    of_which_nft_ms: +nftPart[1].toFixed(1),
    reference_raw_nft_f_ms: +raw[1].toFixed(1),
    ratio: +(ours[1] / raw[1]).toFixed(2),
    tortie_cpu_ms: `${med(oursCpu.map((c) => c.own + c.nft))} (render ${med(oursCpu.map((c) => c.own))}, nft ${med(oursCpu.map((c) => c.nft))})`,
    reference_cpu_ms: med(rawCpu),
    cpu_ratio: +(med(oursCpu.map((c) => c.own + c.nft)) / Math.max(1, med(rawCpu))).toFixed(2),
    script_lines: script.trim().split('\n').length,
    load_average: require('node:os')
      .loadavg()
      .map((x) => +x.toFixed(1)),
    target: '<= 1.0',
  });
}

async function main() {
  const tb = new Testbed();
  const only = process.env.TORTIE_BENCH_ONLY;
  try {
    // the native nftables dataplane (TORTIE_BENCH_ONLY=nftables: only these rows)
    const pods = (process.env.TORTIE_BENCH_PODS ?? '1500,10000').split(',').map(Number);
    if (only === undefined || only === 'nftables' || only === 'nftables-commit')
      await commitCostNft(tb, [1000, 5000, 10000]);
    if (only === undefined || only === 'nftables' || only === 'nftables-policy')
      await policyNft(tb);
    if (only === undefined || only === 'nftables' || only === 'nftables-pods')
      for (const n of pods) await podAddNft(tb, n);
    if (only?.startsWith('nftables')) return;
    // one more pod on a node with 1,500: calc + routes + rules ready
    // TORTIE_BENCH_ONLY=routes: only the routes rows
    if (only !== 'routes') for (const backend of ['legacy', 'nft']) await podAdd(tb, backend);

    // 10,000 routes: the route table over netlink (the agent's path when the addon
    // loads), over `ip -batch` (its fallback), and one raw `ip -batch` of the same
    // routes; each into a fresh namespace, three rounds interleaved, medians reported
    const routes = Array.from({ length: 10000 }, (_, i) => ({
      dst: `10.${100 + (i >> 10)}.${(i >> 2) & 255}.${(i & 3) * 64}/26`,
      via: `192.168.200.${2 + (i % 200)}`,
    }));
    const fresh = async (name) => {
      const x = await tb.netns(name);
      await x.exec(['ip', 'link', 'add', 'fabric0', 'type', 'bridge']);
      await x.exec(['ip', 'addr', 'add', '192.168.200.1/24', 'dev', 'fabric0']);
      await x.exec(['ip', 'link', 'set', 'fabric0', 'up']);
      return x;
    };
    const inKernel = async (x) =>
      (await x.exec(['ip', 'route', 'show', 'proto', '80'])).trim().split('\n').length;
    const times = { netlink: [], ip: [], raw: [] };
    const counts = { netlink: 0, ip: 0, raw: 0 };
    for (let round = 0; round < 3; round++) {
      for (const mode of ['raw', 'netlink', 'ip']) {
        const x = await fresh(`fr${mode}${round}`);
        let t0;
        if (mode === 'raw') {
          t0 = process.hrtime.bigint();
          await x.exec(['ip', '-batch', '-'], {
            input:
              routes.map((r) => `route replace ${r.dst} via ${r.via} proto 80`).join('\n') + '\n',
          });
        } else {
          const nl = mode === 'netlink' ? Rtnl.open(x.name) : undefined;
          const table = new felix.RouteTable(
            new felix.ProcessRunner(x.name),
            felix.PROTO_TORTIE,
            nl,
          );
          table.setAll(routes);
          t0 = process.hrtime.bigint();
          await table.apply();
          nl?.close();
        }
        times[mode].push(ms(t0));
        counts[mode] = await inKernel(x);
      }
    }
    const med = (a) => [...a].sort((p, q) => p - q)[1];
    const raw = med(times.raw);
    for (const [mode, figure] of [
      ['netlink', '10,000 routes programmed (netlink)'],
      ['ip', '10,000 routes programmed (ip -batch fallback)'],
    ]) {
      line({
        figure,
        tortie_ms: +med(times[mode]).toFixed(1),
        reference_ip_batch_ms: +raw.toFixed(1),
        ratio: +(med(times[mode]) / raw).toFixed(2),
        rounds_ms: times[mode].map((t) => +t.toFixed(1)),
        reference_rounds_ms: times.raw.map((t) => +t.toFixed(1)),
        routes_in_kernel: counts[mode],
        target: '<= 1.0',
      });
    }
  } finally {
    await tb.cleanup();
  }
}

main().catch((e) => {
  if (tearingDown()) return; // the signal handler exits once all is removed
  console.error(e);
  process.exit(1);
});
