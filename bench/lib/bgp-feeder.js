#!/usr/bin/env node
// A minimal eBGP peer that feeds a router under test: it connects, exchanges OPENs,
// then sends N IPv4 /24s packed ~1,000 per UPDATE, then End-of-RIB, and keeps the
// session alive with KEEPALIVEs until killed. The UPDATEs are encoded before the
// session comes up, so every router under test receives the same bytes at wire speed.
//
// usage: node bgp-feeder.js --target ADDR --port 179 --local ADDR --asn 65100 \
//          --peer-asn 65000 --count 100000 [--per-update 1000]
// Prints one JSON line to stdout when the last UPDATE was handed to the kernel.
'use strict';
const net = require('node:net');
const { parseArgs } = require('node:util');
const {
  encodeMessage,
  encodeUpdates,
  encodeEndOfRib,
  MessageReader,
} = require('../../packages/bgp-speaker/dist');

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    port: { type: 'string', default: '179' },
    local: { type: 'string' },
    asn: { type: 'string', default: '65100' },
    'peer-asn': { type: 'string' },
    count: { type: 'string', default: '100000' },
    'per-update': { type: 'string', default: '1000' },
    'router-id': { type: 'string', default: '192.0.2.250' },
  },
});

const asn = Number(values.asn);
const count = Number(values.count);
const perUpdate = Number(values['per-update']);
const ctx = { as4: true };

/** The i-th /24 of 10.0.0.0/8 upwards, skipping nothing: 16M /24s are available. */
function prefixAt(i) {
  const n = 0x0a000000 + i * 256;
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.0/24`;
}

function buildFeed() {
  const messages = [];
  for (let start = 0; start < count; start += perUpdate) {
    const nlri = [];
    for (let i = start; i < Math.min(count, start + perUpdate); i++) nlri.push(prefixAt(i));
    // a different MED per batch keeps attribute sets distinct, as a real table has many
    const attributes = {
      origin: 0,
      asPath: [{ type: 2, asns: [asn, 64999] }],
      nextHop: values.local,
      med: start / perUpdate,
    };
    messages.push(...encodeUpdates({ attributes, nlri }, ctx));
  }
  messages.push(encodeEndOfRib(1, ctx));
  return messages;
}

const feed = buildFeed();
const sock = net.connect({
  host: values.target,
  port: Number(values.port),
  localAddress: values.local,
});
const reader = new MessageReader(() => ctx);
let started = false;
let holdTime = 240;
sock.on('connect', () => {
  sock.write(
    encodeMessage(
      {
        type: 'open',
        version: 4,
        myAs: asn,
        holdTime: 240,
        routerId: values['router-id'],
        capabilities: [
          { code: 'multiprotocol', afi: 1, safi: 1 },
          { code: 'as4', asn },
        ],
      },
      ctx,
    ),
  );
});
sock.on('data', (d) => {
  for (const m of reader.push(d)) {
    if (m.type === 'open') {
      holdTime = Math.min(holdTime, m.holdTime);
      sock.write(encodeMessage({ type: 'keepalive' }, ctx));
      // keep the session up at the negotiated hold time, also while UPDATEs are queued
      if (holdTime > 0)
        setInterval(
          () => sock.write(encodeMessage({ type: 'keepalive' }, ctx)),
          (holdTime * 1000) / 3,
        );
    }
    if (m.type === 'notification') {
      process.stderr.write(`feeder: NOTIFICATION ${m.code}/${m.subcode}\n`);
      process.exit(1);
    }
    if (m.type === 'keepalive' && !started) {
      started = true;
      const t0 = Date.now();
      let i = 0;
      const pump = () => {
        while (i < feed.length) {
          if (!sock.write(feed[i++])) return void sock.once('drain', pump);
        }
        process.stdout.write(
          JSON.stringify({
            sent: count,
            messages: feed.length,
            startedAt: t0,
            sentMs: Date.now() - t0,
          }) + '\n',
        );
      };
      process.stdout.write(JSON.stringify({ event: 'established', at: t0 }) + '\n');
      pump();
    }
  }
});
sock.on('error', (e) => {
  process.stderr.write(`feeder: ${e.message}\n`);
  process.exit(1);
});
sock.on('close', () => process.exit(0));
