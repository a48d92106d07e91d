#!/usr/bin/env node
// N minimal iBGP clients of one route reflector, in one process: client i connects from
// its own address, announces its share of the prefixes (~1,000 per UPDATE), and counts
// the prefixes reflected to it. Prints one JSON line when every client has every other
// client's prefixes, with the time since the first announcement.
//
// usage: node bgp-clients.js --rr ADDR --asn 64512 --base 10.98.0.0 --count 200 --routes 100000
'use strict';
const net = require('node:net');
const { parseArgs } = require('node:util');
const { encodeMessage, encodeUpdates, MessageReader } = require('../../packages/bgp-speaker/dist');

const { values } = parseArgs({
  options: {
    rr: { type: 'string' },
    asn: { type: 'string', default: '64512' },
    base: { type: 'string', default: '10.98.0.0' },
    count: { type: 'string', default: '200' },
    routes: { type: 'string', default: '100000' },
  },
});
const asn = Number(values.asn);
const n = Number(values.count);
const perClient = Math.floor(Number(values.routes) / n);
const total = perClient * n;
const ctx = { as4: true };
const baseNum = values.base.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const ipOf = (i) => {
  const x = baseNum + 10 + i;
  return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
};
/** Client i's k-th /24, from 20.0.0.0/8 upwards. */
const prefixOf = (i, k) => {
  const x = 0x14000000 + (i * perClient + k) * 256;
  return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.0/24`;
};

let established = 0;
let done = 0;
let t0 = 0;
let updatesIn = 0;
const clients = [];
for (let i = 0; i < n; i++) {
  const c = { received: 0, complete: false };
  clients.push(c);
  const sock = net.connect({ host: values.rr, port: 179, localAddress: ipOf(i) });
  const reader = new MessageReader(() => ctx);
  sock.on('connect', () =>
    sock.write(
      encodeMessage(
        {
          type: 'open',
          version: 4,
          myAs: asn,
          holdTime: 240,
          routerId: ipOf(i),
          capabilities: [
            { code: 'multiprotocol', afi: 1, safi: 1 },
            { code: 'as4', asn },
          ],
        },
        ctx,
      ),
    ),
  );
  sock.on('data', (d) => {
    for (const m of reader.push(d)) {
      if (m.type === 'open') sock.write(encodeMessage({ type: 'keepalive' }, ctx));
      else if (m.type === 'keepalive' && !c.up) {
        c.up = true;
        c.sock = sock;
        if (++established === n) announceAll();
      } else if (m.type === 'update') {
        updatesIn++;
        c.received += m.nlri.length;
        if (!c.complete && c.received >= total - perClient) {
          c.complete = true;
          if (++done === n) finish();
        }
      } else if (m.type === 'notification') {
        process.stderr.write(`client ${i}: NOTIFICATION ${m.code}/${m.subcode}\n`);
        process.exit(1);
      }
    }
  });
  sock.on('error', (e) => {
    process.stderr.write(`client ${i}: ${e.message}\n`);
    process.exit(1);
  });
}

function announceAll() {
  const batches = clients.map((c, i) => {
    const nlri = Array.from({ length: perClient }, (_, k) => prefixOf(i, k));
    return encodeUpdates(
      { attributes: { origin: 0, asPath: [], nextHop: ipOf(i), localPref: 100 }, nlri },
      ctx,
    );
  });
  process.stdout.write(JSON.stringify({ event: 'established', clients: n }) + '\n');
  t0 = Date.now();
  batches.forEach((msgs, i) => msgs.forEach((m) => clients[i].sock.write(m)));
}

function finish() {
  const seconds = (Date.now() - t0) / 1000;
  process.stdout.write(
    JSON.stringify({ event: 'converged', seconds, updatesIn, prefixesReflected: total * (n - 1) }) +
      '\n',
  );
  setInterval(
    () => clients.forEach((c) => c.sock.write(encodeMessage({ type: 'keepalive' }, ctx))),
    60000,
  );
}
