#!/usr/bin/env node
// Pod-to-pod TCP throughput across two nodes (issue 14), iperf3 (Debian) in four setups:
//   bare   pod to pod wired as the cluster wires them (veth to the node, the fabric, veth
//          to the pod, routed at each node) but without tortie: static routes, no
//          iptables, no conntrack (the row every other row is compared with)
//   bgp    pod to pod, tortie's BGP mesh: routed, no tunnel
//   ipip   pod to pod, pool in ipipMode Always: IP-in-IP over tunl0
//   vxlan  pod to pod, pool in vxlanMode Always: VXLAN over vxlan.tortie
// Each with 64-byte and 64 KiB writes (iperf3 -l), pod MTU = 1500 minus the tunnel's
// overhead (1500, 1480, 1450), as Calico sets it. Figures: Gbit/s, and CPU seconds per GB
// moved: the whole machine's busy time (/proc/stat, every CPU: both ends share one kernel
// here, and encapsulation runs in softirq, outside any one process) and iperf3's own
// (sender, receiver). Prints one JSON line per row, with `vs_bare` (throughput ratio).
//
// usage: node bench/throughput.js [--seconds N] [--setups bare,bgp,ipip,vxlan] [--vm]
// --vm runs it inside Debian's kernel under QEMU (the testbed's VM runner), where ipip
// exists; on a host kernel without ipip that row is reported as skipped.
'use strict';
const fs = require('node:fs');
const { parseArgs } = require('node:util');
const {
  SLOW,
  Testbed,
  Fabric,
  link,
  runInVm,
  skipReason,
  vmMissing,
  waitUntil,
  teardownOnSignals,
  tearingDown,
} = require('../packages/testbed/dist');
// Ctrl-C or SIGTERM: every namespace, process and temp dir this run made goes
teardownOnSignals((l) => process.stderr.write(`${l}\n`));
const { Cluster } = require('../packages/lab/dist');

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    setups: { type: 'string', default: 'bare,bgp,ipip,vxlan' },
    vm: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const SETUPS = values.setups.split(',');
const WRITES = [64, 65536];
const MTU = { bare: 1500, bgp: 1500, ipip: 1480, vxlan: 1450 };
const line = (o) => console.log(JSON.stringify(o));

/** Busy and total jiffies of all CPUs together (/proc/stat's first line). */
function cpuTicks() {
  const f = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const idle = f[3] + f[4]; // idle + iowait
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}
const TICK = 100; // USER_HZ on Linux

/** One iperf3 run from `client` to `serverIp` (server already listening in its netns). */
async function iperf(client, serverIp, write) {
  const before = cpuTicks();
  const out = await client.exec(
    ['iperf3', '-c', serverIp, '-t', String(SECONDS), '-l', String(write), '-J'],
    { timeoutMs: (SECONDS + 60) * 1000 * SLOW },
  );
  const after = cpuTicks();
  const r = JSON.parse(out);
  if (r.error) throw new Error(`iperf3: ${r.error}`);
  const bytes = r.end.sum_received.bytes;
  const secs = r.end.sum_received.seconds;
  const gb = bytes / 1e9;
  const cpu = r.end.cpu_utilization_percent;
  return {
    gbit_s: +((bytes * 8) / secs / 1e9).toFixed(3),
    cpu_s_per_gb: +((after.busy - before.busy) / TICK / gb).toFixed(3),
    sender_cpu_s_per_gb: +(((cpu.host_total / 100) * secs) / gb).toFixed(3),
    receiver_cpu_s_per_gb: +(((cpu.remote_total / 100) * secs) / gb).toFixed(3),
    retransmits: r.end.sum_sent.retransmits,
  };
}

async function serve(ns) {
  const p = ns.spawn(['iperf3', '-s', '--forceflush']);
  await new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => /listening/i.test(`${d}`) && resolve());
    p.once('exit', (code) => reject(new Error(`iperf3 -s exited ${code}`)));
  });
  return p;
}

/** The two ends of a setup: client and server namespaces and the server's address. */
async function endsOf(setup) {
  if (setup === 'bare') {
    // the same wiring as the cluster's (pod -veth- node -fabric- node -veth- pod, routed
    // hop by hop), without tortie: no iptables, no conntrack, static routes
    const tb = new Testbed();
    try {
      const fabric = await Fabric.create(tb, 'tpfab');
      const ends = [];
      for (const i of [1, 2]) {
        const node = await tb.netns(`tpnode${i}`);
        await fabric.attach(node, { v4: `10.99.0.1${i}/24` });
        await node.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
        const pod = await tb.netns(`tppod${i}`);
        await link(node, pod, { v4: [`10.250.${i}.1/30`, `10.250.${i}.2/30`] });
        await pod.exec(['ip', 'route', 'add', 'default', 'via', `10.250.${i}.1`]);
        ends.push({ node, pod });
      }
      await ends[0].node.exec(['ip', 'route', 'add', '10.250.2.0/30', 'via', '10.99.0.12']);
      await ends[1].node.exec(['ip', 'route', 'add', '10.250.1.0/30', 'via', '10.99.0.11']);
      return {
        client: ends[0].pod,
        server: ends[1].pod,
        ip: '10.250.2.2',
        stop: () => tb.cleanup(),
      };
    } catch (e) {
      await tb.cleanup();
      throw e;
    }
  }
  const pool = { cidr: '10.244.0.0/16' };
  if (setup === 'ipip') pool.ipipMode = 'Always';
  if (setup === 'vxlan') pool.vxlanMode = 'Always';
  const c = await Cluster.start({
    nodes: 2,
    backend: setup === 'vxlan' ? 'vxlan' : 'bgp',
    pool,
    podMtu: MTU[setup],
  });
  try {
    // 120 s, as e2e's VXLAN suite: agents under emulation (--vm) take minutes with VXLAN
    await Promise.all([0, 1].map((i) => c.ready(i, 120_000)));
    const a = await c.addPod(0, 'tpa');
    const b = await c.addPod(1, 'tpb');
    await waitUntil('a reaches b', () => c.ping(a, b.ip), 30_000, 200);
    return { client: a.ns, server: b.ns, ip: b.ip, stop: () => c.stop() };
  } catch (e) {
    await c.stop();
    throw e;
  }
}

async function main() {
  if (values.vm) {
    const why = vmMissing();
    if (why) throw new Error(`--vm: ${why}`);
    const argv = process.argv.slice(2).filter((a) => a !== '--vm');
    const r = await runInVm([process.execPath, __filename, ...argv], {
      modules: ['ipip', 'vxlan', 'veth', 'bridge'],
      memoryMb: 3072,
      cpus: 2,
      timeoutMs: 40 * 60_000,
      env: { PATH: process.env.PATH },
      onStdout: (d) => process.stdout.write(d),
      onStderr: (d) => process.stderr.write(d),
    });
    process.exitCode = r.code ?? 1;
    return;
  }
  const missing = skipReason(['root', 'netns', 'etcd', 'iptables', 'ipset', 'nft']);
  if (missing) throw new Error(missing);
  if (!fs.existsSync('/usr/bin/iperf3'))
    throw new Error('iperf3 not installed (scripts/install-deps.sh)');
  const where = process.env.TORTIE_IN_VM === '1' ? 'vm (TCG)' : 'host';
  const bare = {};
  for (const setup of SETUPS) {
    const lacking = setup === 'ipip' ? skipReason(['ipip']) : undefined;
    if (lacking) {
      line({ bench: 'throughput', where, setup, skipped: lacking });
      continue;
    }
    const ends = await endsOf(setup);
    try {
      const server = await serve(ends.server);
      for (const write of WRITES) {
        const r = await iperf(ends.client, ends.ip, write);
        if (setup === 'bare') bare[write] = r.gbit_s;
        const vs = bare[write] ? +(r.gbit_s / bare[write]).toFixed(3) : undefined;
        line({ bench: 'throughput', where, setup, write, mtu: MTU[setup], ...r, vs_bare: vs });
      }
      server.kill('SIGTERM');
    } finally {
      await ends.stop();
    }
  }
}

main().catch((e) => {
  if (tearingDown()) return; // the signal handler exits once all is removed
  console.error(`throughput: ${e.message}`);
  process.exitCode = 1;
});
