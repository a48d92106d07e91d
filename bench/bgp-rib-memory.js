#!/usr/bin/env node
// Loc-RIB memory and insert rate (TARGETS.md: <= 120 B of RSS per route in Loc-RIB).
// One eBGP peer sends 1M IPv4 /24s, ~1,000 NLRI per UPDATE, ~1,000 distinct attribute
// sets. Every UPDATE goes the way the session sends it: decodeMessage() of the wire
// bytes, then Rib.applyUpdate(), then takePending() for the peer as a flush would.
// Figures are RSS and heap growth per route after a full GC, and prefixes/s.
//
//   npx tsc -b packages/bgp-speaker && node --expose-gc bench/bgp-rib-memory.js [--count N]
'use strict';
const { parseArgs } = require('node:util');
const { encodeUpdates, decodeMessage, Rib } = require('../packages/bgp-speaker/dist');

if (typeof global.gc !== 'function') {
  process.stderr.write('run with node --expose-gc\n');
  process.exit(2);
}
const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '1000000' },
    'per-update': { type: 'string', default: '1000' },
    // established peers the routes are exported to (each has an Adj-RIB-Out); the
    // TARGETS figure is for 0, as in bench/bgp-ingest.js
    receivers: { type: 'string', default: '0' },
  },
});
const COUNT = Number(values.count);
const PER_UPDATE = Number(values['per-update']);
const RECEIVERS = Number(values.receivers);
const TARGET_BYTES = 120;
const LOCAL_AS = 65000;
const PEER_AS = 65100;
const ctx = { as4: true };

function settle() {
  for (let i = 0; i < 3; i++) global.gc();
  return process.memoryUsage();
}

/** The wire bytes of every UPDATE, encoded up front so only decode + RIB are measured. */
function buildUpdates() {
  const out = [];
  for (let i = 0, set = 0; i < COUNT; i += PER_UPDATE, set++) {
    const nlri = [];
    for (let j = i; j < Math.min(COUNT, i + PER_UPDATE); j++) {
      const n = 0x0b000000 + j * 256; // 11.0.0.0/24 upwards: 1M /24s fit below 27.0.0.0
      nlri.push(`${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.0/24`);
    }
    const attributes = {
      origin: 0,
      asPath: [{ type: 2, asns: [PEER_AS, 4200000000 + (set % 1000)] }],
      nextHop: '10.0.0.1',
      med: set % 1000,
    };
    out.push(...encodeUpdates({ attributes, nlri }, ctx));
  }
  return out;
}

function main() {
  let messages = buildUpdates();
  const rib = new Rib({ localAsn: LOCAL_AS, routerId: '10.0.0.2' });
  const peer = {
    id: '10.0.0.1',
    address: '10.0.0.1',
    asn: PEER_AS,
    routerId: '10.0.0.1',
    localAsn: LOCAL_AS,
    localAddress: { ipv4: '10.0.0.2' },
    ibgp: false,
  };
  rib.addPeer(peer);
  const receivers = Array.from({ length: RECEIVERS }, (_, i) => {
    const address = `10.0.1.${i + 1}`;
    const info = { ...peer, id: address, address, routerId: address, asn: 65200 + i };
    rib.addPeer(info);
    return info.id;
  });
  let sent = 0;
  const before = settle();
  let decodeNs = 0n;
  const t0 = process.hrtime.bigint();
  for (const m of messages) {
    const d0 = process.hrtime.bigint();
    const u = decodeMessage(m, ctx);
    decodeNs += process.hrtime.bigint() - d0;
    rib.applyUpdate(peer.id, u.withdrawn, u.attributes, u.nlri);
    rib.takePending(peer.id);
    for (const id of receivers)
      for (const g of rib.takePending(id).announce) sent += g.prefixes.length;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const ribSeconds = seconds - Number(decodeNs) / 1e9;
  messages = null; // the wire bytes are not part of the RIB
  const after = settle();
  if (sent !== COUNT * RECEIVERS) throw new Error(`sent ${sent} prefixes to receivers`);
  if (rib.bestCount() !== COUNT)
    throw new Error(`Loc-RIB has ${rib.bestCount()} routes, expected ${COUNT}`);
  const figures = [
    ['bytes_per_route', Math.round((after.rss - before.rss) / COUNT), { target: TARGET_BYTES }],
    ['heap_bytes_per_route', Math.round((after.heapUsed - before.heapUsed) / COUNT), {}],
    ['insert_prefixes_per_s', Math.round(COUNT / seconds), { includes: 'decode+rib' }],
    ['rib_prefixes_per_s', Math.round(COUNT / ribSeconds), { includes: 'rib' }],
  ];
  for (const [figure, value, extra] of figures) {
    const line = { bench: 'bgp-rib', figure, value, ...extra, routes: COUNT, receivers: RECEIVERS };
    if (extra.target !== undefined) line.ratio = Number((value / extra.target).toFixed(2));
    console.log(JSON.stringify(line));
  }
  console.log(
    JSON.stringify({
      bench: 'bgp-rib',
      figure: 'attribute_sets',
      value: rib.attributeSetCount(),
      routes: COUNT,
    }),
  );
}

main();
