#!/usr/bin/env node
// BGP ingest benchmark (TARGETS.md): one eBGP peer sends N IPv4 /24s, ~1,000 NLRI per
// UPDATE; we time from the first UPDATE until the router under test has all N routes
// in its RIB, for tortie and for BIRD, FRR and GoBGP fed the same bytes in the same run,
// and report RSS growth per route. Needs root (network namespaces).
//
//   node bench/bgp-ingest.js [--sizes 100000,1000000] [--routers tortie,bird,frr,gobgp]
//
// Prints one JSON line per (router, size) and one ratio line per reference router.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Testbed, Bird, Frr, GoBgp, link, skipReason } = require('../packages/testbed/dist');
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
      return { pid: s.proc.pid, count: () => s.routeCount() };
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
      return { pid: b.pid, count: () => b.routeCount('ipv4') };
    }
    case 'frr': {
      const f = await Frr.start(tb, ns, {
        asn: DUT_AS,
        routerId: DUT,
        neighbors: [{ address: FEED, remoteAs: FEED_AS, families: ['ipv4'], passive: true }],
      });
      return { pid: f.pid, count: () => f.routeCount('ipv4') };
    }
    case 'gobgp': {
      const g = await GoBgp.start(tb, ns, {
        asn: DUT_AS,
        routerId: DUT,
        neighbors: [{ address: FEED, peerAs: FEED_AS, families: ['ipv4'], passive: true }],
      });
      return { pid: g.pid, count: () => g.routeCount('ipv4') };
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

async function measure(name, count) {
  const tb = new Testbed();
  current = tb;
  try {
    const dut = await tb.netns('dut');
    const feed = await tb.netns('feed');
    await link(feed, dut, { v4: [`${FEED}/24`, `${DUT}/24`] });
    const router = await startRouter(name, tb, dut);
    const rssBefore = rssBytes(router.pid);
    const t0 = await startFeeder(feed, count);
    const deadline = Date.now() + 300_000;
    let n = 0;
    while ((n = await router.count()) < count) {
      if (Date.now() > deadline)
        throw new Error(`${name}: only ${n} of ${count} routes after 300 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 500)); // let the allocator settle before reading RSS
    const bytesPerRoute = (rssBytes(router.pid) - rssBefore) / count;
    return { seconds, bytesPerRoute };
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
          prefixes_per_s: Math.round(count / r.seconds),
          rss_bytes_per_route: Math.round(r.bytesPerRoute),
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
        target: 200,
      }),
    );
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exitCode = 1;
});
