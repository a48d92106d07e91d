#!/usr/bin/env node
// Route-reflector fan-out (TARGETS.md): N iBGP clients each announce their share of R
// routes; time until every client holds every other client's routes, each exactly once
// (lib/bgp-clients.js: a duplicate, a client's own route or a missing one fails the
// run), for tortie-rr and for BIRD as reflector with the same clients in the same run.
// Needs root.
//
//   node bench/rr-fanout.js [--clients 200] [--routes 100000] [--only tortie|bird]
//                           [--prof DIR]   (tortie-rr runs with --cpu-prof into DIR)
//
// Besides the time, each run reports the reflector's RSS once converged, and the CPU
// seconds the reflector and the client simulator spent from the first announcement to
// convergence (the simulator is the same for both reflectors and must stay well below
// either).
'use strict';
const path = require('node:path');
const { parseArgs } = require('node:util');
const fs = require('node:fs');
const {
  Testbed,
  Bird,
  link,
  skipReason,
  stopProcess,
  teardownOnSignals,
  tearingDown,
} = require('../packages/testbed/dist');
// Ctrl-C or SIGTERM: every namespace, process and temp dir this run made goes
teardownOnSignals((l) => process.stderr.write(`${l}\n`));
const { SpeakerProcess } = require('../packages/bgp-speaker/dist');

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    routes: { type: 'string', default: '100000' },
    only: { type: 'string' },
    prof: { type: 'string' },
  },
});
const reflectors = values.only ? [values.only] : ['tortie', 'bird'];
for (const r of reflectors)
  if (r !== 'tortie' && r !== 'bird') throw new Error(`--only ${r}: expected tortie or bird`);
const N = Number(values.clients);
const AS = 64512;
const RR = '10.98.0.1';
/** User + system CPU seconds of a process so far (clock ticks of 1/100 s). */
const cpuOf = (pid) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const clientIp = (i) => {
  const x = (10 << 24) + (98 << 16) + 10 + i;
  return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
};

let current;
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => Promise.resolve(current?.cleanup()).finally(() => process.exit(130)));

async function run(which) {
  const tb = new Testbed();
  current = tb;
  try {
    const rrNs = await tb.netns('rr');
    const cl = await tb.netns('clients');
    await link(rrNs, cl, { v4: [`${RR}/16`, `${clientIp(0)}/16`] });
    const veth = (await cl.exec(['ip', '-o', 'link', 'show', 'type', 'veth']))
      .split(':')[1]
      .trim()
      .split('@')[0];
    const adds = Array.from(
      { length: N - 1 },
      (_, i) => `addr add ${clientIp(i + 1)}/16 dev ${veth}`,
    );
    await cl.exec(['ip', '-batch', '-'], { input: adds.join('\n') + '\n' });
    const clients = Array.from({ length: N }, (_, i) => clientIp(i));
    /** The reflector's resident set size in bytes, read once converged. */
    let rss;
    let pid;
    let stop = async () => undefined;
    if (which === 'tortie') {
      const rr = await SpeakerProcess.start(
        (argv, o) => rrNs.spawn(argv, o),
        tb.tempDir('rr'),
        {
          asn: AS,
          routerId: RR,
          clusterId: RR,
          listen: { address: '0.0.0.0', port: 179 },
          clients: clients.map((address) => ({ address, passive: true, holdTime: 240 })),
          logLevel: 'warn',
        },
        {
          cli: path.resolve(__dirname, '../packages/route-reflector/dist/cli.js'),
          timeoutMs: 30000,
          nodeArgs: values.prof
            ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values.prof)}`]
            : [],
        },
      );
      rss = async () => (await rr.request('memory')).rss;
      pid = rr.proc.pid;
      // a clean exit writes the CPU profile
      stop = () => stopProcess(rr.proc, 10000);
    } else {
      const bird = await Bird.start(tb, rrNs, {
        routerId: RR,
        peers: clients.map((address, i) => ({
          name: `c${i}`,
          localAs: AS,
          neighbor: address,
          neighborAs: AS,
          families: ['ipv4'],
          passive: true,
          holdTime: 240,
          rrClient: true,
          clusterId: RR,
        })),
      });
      pid = bird.pid;
      rss = async () =>
        Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${bird.pid}/status`, 'utf8'))[1]) *
        1024;
    }
    const p = cl.spawn(
      [
        'node',
        path.join(__dirname, 'lib/bgp-clients.js'),
        '--rr',
        RR,
        '--count',
        String(N),
        '--routes',
        values.routes,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const result = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error(`${which}: no convergence in 300 s`)),
        300000,
      );
      let cpu0 = 0;
      let reflectorCpu;
      p.stdout.on('data', (d) => {
        out += d;
        const events = out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l));
        if (!cpu0 && events.some((e) => e.event === 'established')) cpu0 = cpuOf(pid);
        // CPU to convergence, read when the simulator says so (not after its settle time)
        if (reflectorCpu === undefined && events.some((e) => e.event === 'converged'))
          reflectorCpu = cpuOf(pid) - cpu0;
        const error = events.find((e) => e.event === 'error');
        const done = events.find((e) => e.event === 'result');
        if (error) reject(new Error(`${which}: ${error.message}`));
        else if (done) {
          clearTimeout(timer);
          resolve({ ...done, reflectorCpu });
        }
      });
      p.once('exit', (code) => reject(new Error(`clients exited (${code}): ${err}`)));
    });
    result.rss = await rss();
    await stop();
    return result;
  } finally {
    await tb.cleanup();
  }
}

async function main() {
  const why = skipReason(['netns', 'bird']);
  if (why) return console.log(JSON.stringify({ bench: 'rr-fanout', skipped: why }));
  const results = {};
  for (const which of reflectors) {
    const r = await run(which);
    results[which] = r;
    if (r.problem) console.log(JSON.stringify({ bench: 'rr-fanout', reflector: which, ...r }));
    // a reflector that sent something twice, or not at all, has not converged
    if (r.problem) throw new Error(`${which}: ${r.problem}`);
    console.log(
      JSON.stringify({
        bench: 'rr-fanout',
        reflector: which,
        clients: N,
        routes: Number(values.routes),
        seconds: r.seconds,
        updates_per_s: Math.round(r.updatesIn / r.seconds),
        // measured by the clients: distinct prefixes held, each expected one exactly once
        prefixes_reflected: r.prefixesReflected,
        prefixes_expected: r.expectedPrefixes,
        announcements_received: r.announcementsReceived,
        duplicates: r.duplicates,
        rss_mb: Math.round(r.rss / 1048576),
        reflector_cpu_s: Number(r.reflectorCpu.toFixed(2)),
        clients_cpu_s: Number(r.cpuSeconds.toFixed(2)),
      }),
    );
  }
  if (!results.tortie || !results.bird) return;
  console.log(
    JSON.stringify({
      bench: 'rr-fanout',
      clients: N,
      routes: Number(values.routes),
      figure: 'convergence_ratio_vs_bird',
      ratio: Number((results.tortie.seconds / results.bird.seconds).toFixed(2)),
      target: '<= 1',
    }),
  );
}

main().catch((e) => {
  if (tearingDown()) return; // the signal handler exits once all is removed
  console.error(e.message);
  process.exitCode = 1;
});
