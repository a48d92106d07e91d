#!/usr/bin/env node
// BGP ingest benchmark (TARGETS.md): one eBGP peer sends N IPv4 /24s, ~1,000 NLRI per
// UPDATE; we time from the first UPDATE until the router under test has all N routes
// in its RIB, for tortie and for BIRD, FRR and GoBGP fed the same bytes in the same run,
// and report the router's CPU seconds over the same span and its RSS growth per route.
// Needs root (network namespaces).
//
// Completion is detected the same way for every router (lib/rib-watch.js): one open
// connection to its own control interface, its cheapest count query every 20 ms, no
// process launched per poll. What a poll costs the router is measured after the run
// (back-to-back queries at the full table, the router's CPU time around them) and
// reported with the number of polls, so the share of the router's CPU that went into
// answering us is visible (poll_cpu_share).
//
//   node bench/bgp-ingest.js [--sizes 100000,1000000] [--routers tortie,bird,frr,gobgp]
//
// Prints one JSON line per (router, size) and one ratio line per reference router.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const {
  Testbed,
  Bird,
  Frr,
  GoBgp,
  link,
  skipReason,
  teardownOnSignals,
  tearingDown,
} = require('../packages/testbed/dist');
// Ctrl-C or SIGTERM: every namespace, process and temp dir this run made goes
teardownOnSignals((l) => process.stderr.write(`${l}\n`));
const { SpeakerProcess } = require('../packages/bgp-speaker/dist');

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100000' },
    routers: { type: 'string', default: 'tortie,bird,frr,gobgp' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const routers = values.routers.split(',');

const FEED = '10.0.0.1';
const DUT = '10.0.0.2';
const FEED_AS = 65100;
const DUT_AS = 65000;

/** User + system CPU seconds of a process so far, reaped threads included (1/100 s ticks). */
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

/** Starts a router under test in `ns`, passive, peering with the feeder. */
async function startRouter(name, tb, ns) {
  switch (name) {
    case 'tortie': {
      const s = await SpeakerProcess.start((argv, o) => ns.spawn(argv, o), tb.tempDir('dut'), {
        asn: DUT_AS,
        routerId: DUT,
        listen: { address: '0.0.0.0', port: 179 },
        peers: [{ address: FEED, asn: FEED_AS, passive: true, holdTime: 240 }],
        logLevel: 'warn',
      });
      return { pid: s.proc.pid, watch: ['--kind', 'tortie', '--target', s.socket] };
    }
    case 'bird': {
      const b = await Bird.start(tb, ns, {
        routerId: DUT,
        peers: [
          {
            name: 'feed',
            localAs: DUT_AS,
            neighbor: FEED,
            neighborAs: FEED_AS,
            families: ['ipv4'],
            passive: true,
            holdTime: 240,
          },
        ],
      });
      return { pid: b.pid, watch: ['--kind', 'bird', '--target', b.socket, '--protocol', 'feed'] };
    }
    case 'frr': {
      const f = await Frr.start(tb, ns, {
        asn: DUT_AS,
        routerId: DUT,
        neighbors: [{ address: FEED, remoteAs: FEED_AS, families: ['ipv4'], passive: true }],
      });
      return { pid: f.pid, watch: ['--kind', 'frr', '--target', f.vtySocket] };
    }
    case 'gobgp': {
      const g = await GoBgp.start(tb, ns, {
        asn: DUT_AS,
        routerId: DUT,
        neighbors: [{ address: FEED, peerAs: FEED_AS, families: ['ipv4'], passive: true }],
      });
      return { pid: g.pid, watch: ['--kind', 'gobgp', '--target', '127.0.0.1:50051'] };
    }
    default:
      throw new Error(`unknown router "${name}"`);
  }
}

/** Runs the feeder and resolves with the time it started sending UPDATEs. */
function startFeeder(ns, count) {
  const feeder = ns.spawn(
    [
      'node',
      path.join(__dirname, 'lib/bgp-feeder.js'),
      '--target',
      DUT,
      '--local',
      FEED,
      '--asn',
      String(FEED_AS),
      '--count',
      String(count),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  feeder.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    let out = '';
    feeder.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"established"'));
      if (line) resolve(JSON.parse(line).at);
    });
    feeder.once('exit', (code) => reject(new Error(`feeder exited (${code}): ${err}`)));
  });
}

let current; // the Testbed in use, for cleanup on Ctrl-C
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    Promise.resolve(current?.cleanup()).finally(() => process.exit(130));
  });
}

/**
 * The watcher in the router's namespace: `send(command)` ("start", "cost"), and
 * `next(event)` resolves with the next line of that event (or rejects on its error).
 */
function startWatch(ns, router, count) {
  const p = ns.spawn(
    ['node', path.join(__dirname, 'lib/rib-watch.js'), ...router.watch, '--count', String(count)],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  const taken = {}; // per event: how many lines of it were handed out
  const waiters = [];
  const check = () => {
    const events = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    const error = events.find((e) => e.event === 'error');
    for (const w of [...waiters]) {
      const e = events.filter((x) => x.event === w.event)[taken[w.event] ?? 0];
      if (!e && !error) continue;
      waiters.splice(waiters.indexOf(w), 1);
      if (!e) w.reject(new Error(`watcher: ${error.message}`));
      else {
        taken[w.event] = (taken[w.event] ?? 0) + 1;
        w.resolve(e);
      }
    }
  };
  p.stdout.on('data', (d) => {
    out += d;
    check();
  });
  p.stderr.on('data', (d) => (err += d));
  p.once('exit', (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`watcher exited (${code}): ${err}`));
  });
  const next = (event, timeoutMs) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${event} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      const done = (f) => (x) => {
        clearTimeout(timer);
        f(x);
      };
      waiters.push({ event, resolve: done(resolve), reject: done(reject) });
      check();
    });
  return { next, send: (command) => p.stdin.write(`${command}\n`) };
}

/** What one count query costs the router now: its CPU seconds around back-to-back queries. */
async function queryCost(pid, watch) {
  const cpu0 = cpuSeconds(pid);
  watch.send('cost');
  const c = await watch.next('cost', 300_000);
  return { ms: c.ms, cpu: (cpuSeconds(pid) - cpu0) / c.queries };
}

/**
 * Waits until the router has used at most one clock tick (10 ms) of CPU in 500 ms, and
 * resolves with the last moment it was seen using CPU (time and CPU seconds then).
 */
async function untilIdle(pid, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  const samples = [{ at: Date.now(), cpu: cpuSeconds(pid) }];
  let lastBusy = samples[0];
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const now = { at: Date.now(), cpu: cpuSeconds(pid) };
    if (now.cpu > samples[samples.length - 1].cpu) lastBusy = now;
    samples.push(now);
    const windowStart = samples.find((x) => x.at >= now.at - 500);
    if (now.at - samples[0].at >= 500 && now.cpu - windowStart.cpu <= 0.01) return lastBusy;
    if (now.at > deadline) return undefined;
  }
}

async function measure(name, count) {
  const tb = new Testbed();
  current = tb;
  try {
    const dut = await tb.netns('dut');
    const feed = await tb.netns('feed');
    await link(feed, dut, { v4: [`${FEED}/24`, `${DUT}/24`] });
    const router = await startRouter(name, tb, dut);
    const watch = startWatch(dut, router, count);
    await watch.next('ready', 30_000);
    const costEmpty = await queryCost(router.pid, watch);
    const rssBefore = rssBytes(router.pid);
    const cpuBefore = cpuSeconds(router.pid);
    watch.send('start');
    const t0 = await startFeeder(feed, count);
    const complete = await watch.next('complete', 300_000);
    const cpu = cpuSeconds(router.pid) - cpuBefore;
    const seconds = (complete.at - t0) / 1000;
    // some routers go on working once the count is reached (FRR's best-path queue)
    const idle = await untilIdle(router.pid);
    const bytesPerRoute = (rssBytes(router.pid) - rssBefore) / count;
    const costFull = await queryCost(router.pid, watch);
    // each poll cost what a query costs at the table's fill then (linear in between)
    const pollCpu =
      complete.polls * costEmpty.cpu + complete.filled * Math.max(0, costFull.cpu - costEmpty.cpu);
    return {
      seconds,
      cpu,
      untilIdle: idle && { seconds: (idle.at - t0) / 1000, cpu: idle.cpu - cpuBefore },
      bytesPerRoute,
      polls: complete.polls,
      queryMs: costFull.ms,
      queryCpu: costFull.cpu,
      pollCpu,
    };
  } finally {
    await tb.cleanup();
  }
}

async function main() {
  const why = skipReason(['netns', ...routers.filter((r) => r !== 'tortie')]);
  if (why) {
    console.log(JSON.stringify({ bench: 'bgp-ingest', skipped: why }));
    return;
  }
  for (const count of sizes) {
    const results = {};
    for (const name of routers) {
      const r = await measure(name, count);
      results[name] = r;
      console.log(
        JSON.stringify({
          bench: 'bgp-ingest',
          router: name,
          prefixes: count,
          seconds: Number(r.seconds.toFixed(3)),
          // the router's own CPU (user + system) over the same span, 10 ms resolution
          cpu_seconds: Number(r.cpu.toFixed(2)),
          prefixes_per_s: Math.round(count / r.seconds),
          rss_bytes_per_route: Math.round(r.bytesPerRoute),
          polls: r.polls,
          poll_query_ms: Number(r.queryMs.toFixed(3)),
          poll_query_cpu_ms: Number((r.queryCpu * 1000).toFixed(3)),
          // the router's CPU spent answering the polls (estimated from the query's cost
          // on the empty and the full table), as a share of cpu_seconds
          poll_cpu_share: r.cpu > 0 ? Number((r.pollCpu / r.cpu).toFixed(3)) : null,
          // until the router went idle (FRR works on after its count is complete)
          seconds_until_idle: r.untilIdle ? Number(r.untilIdle.seconds.toFixed(3)) : null,
          cpu_seconds_until_idle: r.untilIdle ? Number(r.untilIdle.cpu.toFixed(2)) : null,
        }),
      );
    }
    if (!results.tortie) continue;
    for (const ref of routers.filter((r) => r !== 'tortie')) {
      console.log(
        JSON.stringify({
          bench: 'bgp-ingest',
          figure: `time_ratio_vs_${ref}`,
          prefixes: count,
          // < 1: tortie is faster than the reference
          ratio: Number((results.tortie.seconds / results[ref].seconds).toFixed(2)),
          cpu_ratio:
            results[ref].cpu > 0
              ? Number((results.tortie.cpu / results[ref].cpu).toFixed(2))
              : null,
          ratio_until_idle:
            results.tortie.untilIdle && results[ref].untilIdle
              ? Number(
                  (results.tortie.untilIdle.seconds / results[ref].untilIdle.seconds).toFixed(2),
                )
              : null,
          memory_ratio: Number(
            (results.tortie.bytesPerRoute / results[ref].bytesPerRoute).toFixed(2),
          ),
        }),
      );
    }
    console.log(
      JSON.stringify({
        bench: 'bgp-ingest',
        figure: 'tortie_bytes_per_route',
        prefixes: count,
        value: Math.round(results.tortie.bytesPerRoute),
        target: 120, // TARGETS.md
      }),
    );
  }
}

main().catch((err) => {
  if (tearingDown()) return; // the signal handler exits once all is removed
  console.error(err.message);
  process.exitCode = 1;
});
