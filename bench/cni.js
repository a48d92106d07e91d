#!/usr/bin/env node
// CNI benchmarks (issue 5), as root, with a real etcd on loopback reached from a "node"
// namespace through the testbed's unix-socket relay. 200 pods, 16 at once:
//   - reference: the network setup alone, the same `ip -batch` commands run raw
//     (in the node namespace, like the plugin's own setup, so the two compare)
//   - tortie-cni binary ADD and DEL, end to end as a runtime sees them (process start,
//     config, IPAM on etcd, veth, endpoint write)
//   - the same through the node agent: tortie-node runs in the node namespace and the
//     binary forwards to its CNI socket; ADD returns once the agent has programmed the
//     pod's endpoint (routes, iptables), so that figure is "pod created -> policy enforced"
//   - the plugin's ADD and DEL in one process (the same code without process start)
//   - IPAM allocations per second on etcd
//   - pod ADD until its policy is programmed on a node that already has [busy] pods
// Prints one JSON line per figure. Usage: node bench/cni.js [pods] [parallel] [busy]
// (TORTIE_BENCH_ONLY=setup: only the in-process ADD/DEL and network setup figures, over
// netlink and over the ip -batch fallback; TORTIE_BENCH_ONLY=agent: only the figures
// through the node agent). TORTIE_BENCH_BACKEND=legacy|nft|nftables: the agent's policy
// dataplane (iptables-legacy, iptables-nft, native nftables: nftablesMode Enabled); unset,
// the agent's own choice. Every figure through the agent names the backend that
// programmed the busy node's endpoints. The agent's and etcd's CPU time is printed too.
'use strict';
const { timedPool: pool, printPercentiles: stats } = require('./lib/latency');
const { spawn } = require('node:child_process');
const path = require('node:path');
const {
  Testbed,
  Etcd,
  PortForward,
  waitUntil,
  teardownOnSignals,
  tearingDown,
} = require('../packages/testbed/dist');
// Ctrl-C or SIGTERM: every namespace, process and temp dir this run made goes
teardownOnSignals((l) => process.stderr.write(`${l}\n`));
const { EtcdDatastore } = require('../packages/datastore/dist');
const { IpamClient } = require('../packages/ipam/dist');
const { parseResource } = require('../packages/api/dist');

const PODS = Number(process.argv[2] ?? 200);
const PARALLEL = Number(process.argv[3] ?? 16);
/** Pods already on the node for the "policy enforced on a busy node" figures. */
const BUSY = Number(process.argv[4] ?? 1500);
const line = (o) => console.log(JSON.stringify(o));
const BACKEND = process.env.TORTIE_BENCH_BACKEND;
/** The agent's settings for each backend (FELIX_* env overrides FelixConfiguration). */
const BACKEND_ENV = {
  legacy: { FELIX_IPTABLESBACKEND: 'Legacy', FELIX_NFTABLESMODE: 'Disabled' },
  nft: { FELIX_IPTABLESBACKEND: 'NFT', FELIX_NFTABLESMODE: 'Disabled' },
  nftables: { FELIX_NFTABLESMODE: 'Enabled' },
};
if (BACKEND !== undefined && !BACKEND_ENV[BACKEND]) {
  console.error(`TORTIE_BENCH_BACKEND must be legacy, nft or nftables, not "${BACKEND}"`);
  process.exit(2);
}
/** user + system CPU seconds of a process so far (/proc/<pid>/stat, clock ticks of 1/100 s). */
const cpuSeconds = (pid) => {
  try {
    const f = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
};
const busyIface = (i) => `calib${i.toString(16).padStart(10, '0')}`;
const busyEndpoint = (i) =>
  parseResource({
    apiVersion: 'tortie.io/v1',
    kind: 'WorkloadEndpoint',
    metadata: {
      name: `bench--node-k8s-busy${i}-eth0`,
      namespace: 'bench',
      labels: { app: `app${i % 50}`, 'projectcalico.org/namespace': 'bench' },
    },
    spec: {
      node: 'bench-node',
      orchestrator: 'k8s',
      pod: `busy${i}`,
      endpoint: 'eth0',
      interfaceName: busyIface(i),
      ipNetworks: [`10.71.${i >> 8}.${i & 255}/32`],
      profiles: ['kns.bench'],
    },
  });
const PORT = 23792;
const CLI = path.resolve(__dirname, '../packages/cni/dist/cli.js');
const SHIM = path.resolve(__dirname, '../packages/cni/dist/tortie-cni');
const AGENT = path.resolve(__dirname, '../packages/felix/dist/cli.js');

function runIn(ns, argv, env, input) {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, ...argv], { env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(
            new Error(
              `${argv.slice(0, 3).join(' ')}: ${out}${err.trim().split('\n').slice(-5).join('\n')}`,
            ),
          ),
    );
    if (input !== undefined) p.stdin.end(input);
    else p.stdin.end();
  });
}

async function main() {
  const tb = new Testbed();
  try {
    const etcd = await Etcd.start(tb);
    const node = await tb.netns('bnode');
    await PortForward.start(tb, node, PORT, {
      host: '127.0.0.1',
      port: Number(new URL(etcd.endpoint).port),
    });
    const ds = new EtcdDatastore([etcd.endpoint]);
    await ds.create(
      parseResource({
        apiVersion: 'tortie.io/v1',
        kind: 'IPPool',
        metadata: { name: 'p' },
        spec: { cidr: '10.70.0.0/16' },
      }),
    );
    await ds.create(
      parseResource({
        apiVersion: 'tortie.io/v1',
        kind: 'Node',
        metadata: { name: 'bench-node' },
        spec: {},
      }),
    );
    const pods = [];
    for (let i = 0; i < PODS; i++) pods.push(await tb.netns(`bp${i}`));

    // TORTIE_BENCH_ONLY=setup: only the in-process figures (network setup per path);
    // =agent: only the figures through the node agent (16 at once, and pod created ->
    // policy programmed at BUSY pods), without 16 plugin processes each starting node and
    // dialling etcd, which at load 30+ misses etcd's 5 s deadline and ends the run
    const only = process.env.TORTIE_BENCH_ONLY;
    const onlySetup = only === 'setup';
    const onlyAgent = only === 'agent';
    // the binary, end to end
    const conf = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      type: 'tortie',
      nodename: 'bench-node',
      datastore_type: 'etcdv3',
      etcd_endpoints: `http://127.0.0.1:${PORT}`,
    });
    const env = (cmd, i) => ({
      PATH: process.env.PATH,
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: `bench${i}`,
      CNI_NETNS: `/var/run/netns/${pods[i].name}`,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-${i}`,
    });
    if (!onlySetup) {
      if (!onlyAgent) {
        const addBin = await pool(PODS, PARALLEL, (i) =>
          runIn(node.name, [process.execPath, CLI], env('ADD', i), conf),
        );
        stats('tortie-cni binary ADD, end to end', addBin);
        const delBin = await pool(PODS, PARALLEL, (i) =>
          runIn(node.name, [process.execPath, CLI], env('DEL', i), conf),
        );
        stats('tortie-cni binary DEL, end to end', delBin);
      }
      // through the node agent
      const socket = path.join(tb.tempDir('agent'), 'cni.sock');
      await node.exec(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
      await node.exec(['ip', 'addr', 'add', '192.168.77.1/24', 'dev', 'eth0']);
      await node.exec(['ip', 'link', 'set', 'eth0', 'up']);
      const agent = node.spawn([process.execPath, AGENT], {
        env: {
          PATH: process.env.PATH,
          NODENAME: 'bench-node',
          IP: '192.168.77.1/24',
          ETCD_ENDPOINTS: `http://127.0.0.1:${PORT}`,
          TORTIE_NETWORKING_BACKEND: 'none',
          TORTIE_CNI_SOCKET: socket,
          FELIX_HEALTHPORT: '9099',
          FELIX_LOGSEVERITYSCREEN: 'Warning',
          ...(BACKEND ? BACKEND_ENV[BACKEND] : {}),
        },
      });
      // which dataplane programmed the busy endpoints (set once they are programmed)
      let backend = BACKEND ?? 'auto';
      const cpu0 = {
        agent: cpuSeconds(agent.pid),
        etcd: cpuSeconds(etcd.pid),
        self: process.cpuUsage(),
      };
      let agentLog = '';
      agent.stderr.on('data', (d) => (agentLog += d));
      await waitUntil('the agent serves CNI', () => require('node:fs').existsSync(socket), 20000);
      // where the time goes: the agent's own histograms around the section (sum and count)
      const metrics = async () => {
        const text = await node.exec(['curl', '-s', 'http://127.0.0.1:9099/metrics']);
        const v = (n) =>
          Number(new RegExp(`^${n.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
        const phase = (p) => [
          v(`tortie_cni_add_phase_seconds_sum{phase="${p}"}`),
          v(`tortie_cni_add_phase_seconds_count{phase="${p}"}`),
        ];
        return {
          apply: [
            v('tortie_dataplane_apply_seconds_sum'),
            v('tortie_dataplane_apply_seconds_count'),
          ],
          ipam: phase('ipam'),
          setup: phase('setup'),
          endpoint: phase('endpoint'),
          policy: phase('policy'),
          prog: [
            v('tortie_dataplane_programmed_seconds_sum'),
            v('tortie_dataplane_programmed_seconds_count'),
          ],
        };
      };
      const split = (name, a, b, addMs) => {
        const mean = (k) =>
          +((1000 * (b[k][0] - a[k][0])) / Math.max(1, b[k][1] - a[k][1])).toFixed(1);
        line({
          figure: `  where ${name} goes (agent histograms, means)`,
          backend,
          add_p50_ms: addMs,
          dataplane_apply_ms: mean('apply'),
          applies: b.apply[1] - a.apply[1],
          endpoint_in_agent_to_programmed_ms: mean('prog'),
          add_ipam_ms: mean('ipam'),
          add_setup_ms: mean('setup'),
          add_endpoint_write_ms: mean('endpoint'),
          add_policy_wait_ms: mean('policy'),
        });
      };
      const viaAgent = JSON.stringify({
        ...JSON.parse(conf),
        agent_socket: socket,
        policy_setup_timeout_seconds: 10,
      });
      for (const [binary, argv] of [
        ['tortie-cni (C forwarder)', [SHIM]],
        ...(onlyAgent ? [] : [['cli.js', [process.execPath, CLI]]]),
      ]) {
        const b0 = binary.startsWith('tortie-cni') ? await metrics() : undefined;
        const addAgent = await pool(PODS, PARALLEL, (i) =>
          runIn(node.name, argv, env('ADD', i), viaAgent),
        );
        stats(`${binary} ADD through the agent, until the pod's policy is programmed`, addAgent, {
          parallel: PARALLEL,
          target_p99_ms: '< 100 (16 at once)',
          backend,
        });
        if (b0)
          split(
            `${PARALLEL} ADDs at once`,
            b0,
            await metrics(),
            [...addAgent].sort((x, y) => x - y)[addAgent.length >> 1],
          );
        const delAgent = await pool(PODS, PARALLEL, (i) =>
          runIn(node.name, argv, env('DEL', i), viaAgent),
        );
        stats(`${binary} DEL through the agent`, delAgent);
      }
      // the same on a node that already has BUSY pods (their endpoints in etcd, their
      // interfaces as bridges in the node namespace): pod created -> policy enforced
      await node.exec(['ip', '-batch', '-'], {
        input:
          Array.from({ length: BUSY }, (_, i) => `link add ${busyIface(i)} type bridge`).join(
            '\n',
          ) + '\n',
      });
      const written = process.hrtime.bigint();
      await pool(BUSY, 16, (i) => ds.create(busyEndpoint(i)));
      // busy endpoints the agent has programmed, per dataplane: their interfaces named in
      // iptables-legacy's or iptables-nft's chains, or in the nftables table's maps
      const programmed = async () => {
        const seen = {};
        for (const [name, argv] of [
          ['legacy', ['iptables-legacy-save', '-t', 'filter']],
          ['nft', ['iptables-nft-save', '-t', 'filter']],
          ['nftables', ['nft', 'list', 'table', 'inet', 'tortie']],
        ]) {
          const text = await node.exec(argv).catch(() => '');
          seen[name] = new Set(text.match(/calib[0-9a-f]{10}/g) ?? []).size;
        }
        return seen;
      };
      const chains = async () => {
        const seen = await programmed();
        const [best, n] = Object.entries(seen).sort((x, y) => y[1] - x[1])[0];
        if (n >= BUSY) backend = BACKEND === undefined ? `auto: ${best}` : best;
        return n;
      };
      await waitUntil(
        `the agent programs ${BUSY} endpoints`,
        async () => (await chains()) >= BUSY,
        // 120 s at a quiet load; a shared machine at load 30+ needs longer
        Math.max(120000, BUSY * 300),
        500,
      );
      if (BACKEND !== undefined && !backend.endsWith(BACKEND))
        throw new Error(`asked for ${BACKEND}, the agent programmed ${backend}`);
      line({
        figure: `${BUSY} endpoints written to etcd -> all programmed by the agent`,
        backend,
        ms: +(Number(process.hrtime.bigint() - written) / 1e6).toFixed(0),
      });
      const m0 = await metrics();
      const one = await pool(Math.min(50, PODS), 1, (i) =>
        runIn(node.name, [SHIM], env('ADD', i), viaAgent),
      );
      stats(
        `pod ADD until its policy is programmed, one at a time, on a node with ${BUSY} pods`,
        one,
        { target_p99_ms: '< 100', backend },
      );
      split(
        'one pod ADD at a time',
        m0,
        await metrics(),
        [...one].sort((x, y) => x - y)[one.length >> 1],
      );
      await pool(Math.min(50, PODS), 1, (i) => runIn(node.name, [SHIM], env('DEL', i), viaAgent));
      const burst = await pool(Math.min(48, PODS), 16, (i) =>
        runIn(node.name, [SHIM], env('ADD', i), viaAgent),
      );
      stats(
        `pod ADD until its policy is programmed, 16 at once, on a node with ${BUSY} pods`,
        burst,
        { backend },
      );
      await pool(Math.min(48, PODS), 16, (i) => runIn(node.name, [SHIM], env('DEL', i), viaAgent));
      const self = process.cpuUsage(cpu0.self);
      line({
        figure: 'CPU seconds over the runs through the agent',
        backend,
        agent_s: +(cpuSeconds(agent.pid) - cpu0.agent).toFixed(2),
        etcd_s: +(cpuSeconds(etcd.pid) - cpu0.etcd).toFixed(2),
        bench_s: +((self.user + self.system) / 1e6).toFixed(2),
        loadavg: require('node:os')
          .loadavg()
          .map((x) => +x.toFixed(1)),
      });
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
      if (agentLog.trim()) console.error(agentLog.trim().split('\n').slice(-5).join('\n'));

      if (!onlyAgent) {
        const start = await pool(20, 1, () =>
          runIn(
            node.name,
            [process.execPath, CLI],
            { PATH: process.env.PATH, CNI_COMMAND: 'VERSION' },
            '{"cniVersion":"1.0.0"}',
          ),
        );
        stats('tortie-cni process start + VERSION (no datastore)', start);
      }
    }
    // the plugin in one process (inside the node netns: a child that runs the same code)
    if (!onlyAgent) {
      const inproc = await runIn(
        node.name,
        [
          process.execPath,
          path.join(__dirname, 'lib/cni-inprocess.js'),
          String(PODS),
          String(PARALLEL),
          `http://127.0.0.1:${PORT}`,
          ...pods.map((p) => p.name),
        ],
        process.env,
      );
      process.stdout.write(inproc);
    }

    if (!onlySetup && !onlyAgent) {
      // IPAM alone
      const ipam = new IpamClient(ds);
      const t0 = process.hrtime.bigint();
      const lat = await pool(PODS, PARALLEL, (i) =>
        ipam.autoAssign({ handleId: `ipam-${i}`, node: 'bench-node', num4: 1 }),
      );
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      stats('ipam autoAssign on etcd', lat, { allocations_per_s: +(PODS / secs).toFixed(0) });
      await pool(PODS, PARALLEL, (i) => ipam.releaseByHandle(`ipam-${i}`));
    }
    await ds.close();
  } finally {
    await tb.cleanup();
  }
}

main().catch((e) => {
  if (tearingDown()) return; // the signal handler exits once all is removed
  console.error(e);
  process.exit(1);
});
