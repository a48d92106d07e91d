#!/usr/bin/env node
// N minimal iBGP clients of one route reflector, in one process: client i connects from
// its own address, announces its share of the prefixes (~1,000 per UPDATE), and counts
// the prefixes reflected to it. Prints one JSON line when every client has every other
// client's prefixes, with the time since the first announcement and this process's CPU
// time. UPDATEs are counted from their NLRI bytes, not decoded: the simulator must cost
// far less than the reflector it measures.
//
// usage: node bgp-clients.js --rr ADDR --asn 64512 --base 10.98.0.0 --count 200 --routes 100000
'use strict';
const net = require('node:net');
const { parseArgs } = require('node:util');
const { encodeMessage, encodeUpdates, decodeMessage } = require('../../packages/bgp-speaker/dist');

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

const UPDATE = 2;

/** Splits a TCP stream into whole BGP messages (views of the received chunks). */
class Framer {
  constructor() {
    this.tail = Buffer.alloc(0);
  }
  push(chunk) {
    let buf = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const out = [];
    while (buf.length >= 19) {
      const len = buf.readUInt16BE(16);
      if (buf.length < len) break;
      out.push(buf.subarray(0, len));
      buf = buf.subarray(len);
    }
    this.tail = buf;
    return out;
  }
}

/** Where an UPDATE's NLRI field (RFC 4271 §4.3) starts. */
const nlriStart = (buf) => {
  const off = 21 + buf.readUInt16BE(19);
  return off + 2 + buf.readUInt16BE(off);
};

/** IPv4 prefixes announced in an UPDATE, counted from the bytes. */
function countNlri(buf) {
  let off = nlriStart(buf);
  let n = 0;
  while (off < buf.length) {
    off += 1 + ((buf[off] + 7) >> 3);
    n++;
  }
  return n;
}

/** The client whose /24 is the UPDATE's first announced prefix (all share one originator). */
function ownerOfFirst(buf) {
  const off = nlriStart(buf);
  const x = ((buf[off + 1] << 24) | (buf[off + 2] << 16) | (buf[off + 3] << 8)) >>> 0;
  return Math.floor((x - 0x14000000) / 256 / perClient);
}

let established = 0;
let done = 0;
let t0 = 0;
let cpu0;
let updatesIn = 0;
const clients = [];
for (let i = 0; i < n; i++) {
  const c = { received: 0, complete: false };
  clients.push(c);
  const sock = net.connect({ host: values.rr, port: 179, localAddress: ipOf(i) });
  const frames = new Framer();
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
    for (const buf of frames.push(d)) {
      if (buf[18] === UPDATE) {
        updatesIn++;
        const count = countNlri(buf);
        if (count && ownerOfFirst(buf) === i) {
          process.stderr.write(`client ${i}: the reflector sent its own routes back\n`);
          process.exit(1);
        }
        c.received += count;
        if (!c.complete && c.received >= total - perClient) {
          c.complete = true;
          if (++done === n) finish();
        }
        continue;
      }
      const m = decodeMessage(buf, ctx);
      if (m.type === 'open') sock.write(encodeMessage({ type: 'keepalive' }, ctx));
      else if (m.type === 'keepalive' && !c.up) {
        c.up = true;
        c.sock = sock;
        if (++established === n) announceAll();
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
  cpu0 = process.cpuUsage();
  batches.forEach((msgs, i) => msgs.forEach((m) => clients[i].sock.write(m)));
}

const cpuSeconds = (u) => (u.user + u.system) / 1e6;

function finish() {
  const seconds = (Date.now() - t0) / 1000;
  process.stdout.write(
    JSON.stringify({
      event: 'converged',
      seconds,
      updatesIn,
      prefixesReflected: total * (n - 1),
      // more than every other client's prefixes: something was sent twice
      duplicates: clients.reduce((d, c) => d + c.received, 0) - total * (n - 1),
      cpuSeconds: cpuSeconds(process.cpuUsage(cpu0)),
    }) + '\n',
  );
  setInterval(
    () => clients.forEach((c) => c.sock.write(encodeMessage({ type: 'keepalive' }, ctx))),
    60000,
  );
}
