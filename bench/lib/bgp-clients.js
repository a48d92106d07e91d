#!/usr/bin/env node
// N minimal iBGP clients of one route reflector, in one process: client i connects from
// its own address, announces its share of the prefixes (~1,000 per UPDATE), and keeps
// one bit per prefix of the run for what it holds. Converged means every client holds
// every other client's prefixes, each exactly once, and none of its own: a prefix
// announced again while held is a duplicate, its own prefix or one no client announced
// ends the run at once. Prints {"event":"converged","seconds"} at that moment (time since
// the first announcement), then after --settle ms (late duplicates still count) the
// result, with prefixes_reflected as measured (the distinct prefixes held) and this
// process's CPU time; duplicates, withdrawals or a shortfall exit 1. UPDATEs are walked
// as bytes, not decoded: the simulator must cost far less than the reflector it measures.
//
// usage: node bgp-clients.js --rr ADDR --asn 64512 --base 10.98.0.0 --count 200
//                            --routes 100000 [--settle 2000]
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
    settle: { type: 'string', default: '2000' },
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

const PREFIX_BASE = 0x140000; // 20.0.0.0 as the first three octets of a /24

/**
 * Walks an UPDATE's withdrawn routes and NLRI (RFC 4271 §4.3), calling `onPrefix(index,
 * withdrawn)` per prefix with the sim prefix's index (i * perClient + k), or -1 for
 * anything that is not one of ours. Returns false if the UPDATE carries MP_REACH or
 * MP_UNREACH (prefixes there would not be seen: the run must fail, not miss them).
 */
function walkUpdate(buf, onPrefix) {
  const walk = (off, end, withdrawn) => {
    while (off < end) {
      const len = buf[off];
      if (len === 24 && off + 3 < end) {
        const x = (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3];
        const index = x - PREFIX_BASE;
        onPrefix(index >= 0 && index < total ? index : -1, withdrawn);
      } else onPrefix(-1, withdrawn);
      off += 1 + ((len + 7) >> 3);
    }
  };
  const wlen = buf.readUInt16BE(19);
  walk(21, 21 + wlen, true);
  let a = 21 + wlen + 2;
  const attrsEnd = a + buf.readUInt16BE(21 + wlen);
  while (a < attrsEnd) {
    const flags = buf[a];
    const type = buf[a + 1];
    if (type === 14 || type === 15) return false;
    const extended = flags & 0x10;
    a += extended ? 4 + buf.readUInt16BE(a + 2) : 3 + buf[a + 2];
  }
  walk(attrsEnd, buf.length, false);
  return true;
}

/** Ends the run: the reflector sent something a correct one never sends. */
function fail(message) {
  process.stderr.write(`${message}\n`);
  process.stdout.write(JSON.stringify({ event: 'error', message }) + '\n');
  process.exit(1);
}

const expected = total - perClient; // every other client's prefixes, each exactly once
let established = 0;
let complete = 0;
let t0 = 0;
let cpu0;
let updatesIn = 0;
let prefixesIn = 0; // every announcement received, duplicates included
let duplicates = 0;
let withdrawals = 0;
let firstDuplicate;
const clients = [];
for (let i = 0; i < n; i++) {
  // one bit per prefix of the whole run: which of them this client holds now
  const c = { have: new Uint8Array(total), held: 0, complete: false };
  clients.push(c);
  const sock = net.connect({ host: values.rr, port: 179, localAddress: ipOf(i) });
  const frames = new Framer();
  const onPrefix = (index, withdrawn) => {
    if (index < 0) fail(`client ${i}: a prefix that no client announced`);
    if (withdrawn) {
      withdrawals++;
      if (c.have[index]) {
        c.have[index] = 0;
        c.held--;
      }
      return;
    }
    prefixesIn++;
    if (Math.floor(index / perClient) === i)
      fail(`client ${i}: the reflector sent its own routes back`);
    if (c.have[index]) {
      if (duplicates++ === 0)
        firstDuplicate = `client ${i}, prefix ${prefixOf(Math.floor(index / perClient), index % perClient)}`;
      return;
    }
    c.have[index] = 1;
    c.held++;
  };
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
        if (!walkUpdate(buf, onPrefix)) fail(`client ${i}: MP_REACH/MP_UNREACH for IPv4 unicast`);
        // complete: every expected prefix held (each counted once, none of its own)
        if (!c.complete && c.held === expected) {
          c.complete = true;
          if (++complete === n) converged();
        } else if (c.complete && c.held !== expected) {
          fail(`client ${i}: lost prefixes after it had them all`);
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
        fail(`client ${i}: NOTIFICATION ${m.code}/${m.subcode}`);
      }
    }
  });
  sock.on('error', (e) => fail(`client ${i}: ${e.message}`));
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

/**
 * Every client holds every other client's prefixes: says so at once (the driver reads
 * the reflector's CPU then), keeps counting for --settle ms (a late duplicate or
 * withdrawal still counts), then prints the result; duplicates fail the run.
 */
function converged() {
  const seconds = (Date.now() - t0) / 1000;
  const cpu = cpuSeconds(process.cpuUsage(cpu0));
  process.stdout.write(JSON.stringify({ event: 'converged', seconds }) + '\n');
  const keepalive = setInterval(
    () => clients.forEach((c) => c.sock.write(encodeMessage({ type: 'keepalive' }, ctx))),
    60000,
  );
  setTimeout(() => {
    const held = clients.reduce((a, c) => a + c.held, 0);
    const clean = !duplicates && !withdrawals && held === expected * n;
    const result = {
      event: 'result',
      seconds,
      updatesIn,
      // measured: the distinct prefixes the clients hold, each expected one exactly once
      prefixesReflected: held,
      expectedPrefixes: expected * n,
      announcementsReceived: prefixesIn,
      duplicates,
      ...(firstDuplicate ? { firstDuplicate } : {}),
      withdrawals,
      cpuSeconds: cpu,
      ...(clean
        ? {}
        : {
            problem: `not a clean fan-out: ${duplicates} duplicates (first: ${firstDuplicate}), ${withdrawals} withdrawals, ${held} of ${expected * n} prefixes held`,
          }),
    };
    process.stdout.write(JSON.stringify(result) + '\n');
    if (!clean) {
      clearInterval(keepalive);
      fail(result.problem);
    }
  }, Number(values.settle));
}
