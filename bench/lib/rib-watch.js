#!/usr/bin/env node
// Watches a router's RIB fill up with the same kind of signal for every router: one
// connection to the router's own control interface, opened once, and its cheapest
// count query sent every --interval ms, or less often when a query is slow (at most a
// tenth of the time goes into answering us) (no CLI process per poll: launching birdc,
// vtysh or gobgp every 20 ms costs more CPU than some of these routers spend on the
// routes, on the same two cores). The queries:
//   tortie  its control socket (newline JSON):  {"cmd":"count"}        Loc-RIB size
//   bird    its control socket (birdc's):       show protocols all <p>  "Routes: N imported"
//   frr     bgpd's vty socket (vtysh's):        show bgp ipv4 unicast summary json  ribCount
//   gobgp   its gRPC API over HTTP/2:           GobgpApi/GetTable (global, ipv4)  num_destination
// Prints {"event":"ready"} once connected, then follows commands on stdin: "start"
// polls until the count reaches --count and prints {"event":"complete","at","polls",
// "filled"} (filled: the sum of the table's fill, 0..1, over the polls); "cost" times
// back-to-back queries (at least --cost of them and one second) and prints
// {"event":"cost","queries","ms"}; the driver reads the router's CPU time around them,
// on the empty and on the full table, for what the polls cost the router.
//
//   node rib-watch.js --kind bird --target /tmp/x/bird.ctl --count 100000 [--protocol feed]
'use strict';
const http2 = require('node:http2');
const net = require('node:net');
const readline = require('node:readline');
const { parseArgs } = require('node:util');

const { values } = parseArgs({
  options: {
    kind: { type: 'string' },
    target: { type: 'string' },
    count: { type: 'string' },
    protocol: { type: 'string', default: 'feed' },
    interval: { type: 'string', default: '20' },
    cost: { type: 'string', default: '50' },
  },
});
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');

/** Request/response over one stream socket: `send` writes, `done(buf)` says where a reply ends. */
function streamClient(path, done, greeting) {
  const sock = net.connect(path);
  let buf = Buffer.alloc(0);
  let waiting;
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    const end = done(buf);
    if (end < 0 || !waiting) return;
    const reply = buf.subarray(0, end);
    buf = buf.subarray(end);
    const w = waiting;
    waiting = undefined;
    w.resolve(reply.toString());
  });
  sock.on('error', (e) => waiting?.reject(e));
  const ask = (bytes) =>
    new Promise((resolve, reject) => {
      waiting = { resolve, reject };
      if (bytes !== undefined) sock.write(bytes);
    });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.once('connect', async () => {
      if (greeting) await ask(undefined); // the banner
      resolve(ask);
    });
  });
}

/** A protobuf varint field reader for the few numbers we need. */
function varintFields(b) {
  const out = {};
  let i = 0;
  while (i < b.length) {
    const key = b[i++];
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const byte = b[i++];
      v |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if (!(byte & 0x80)) break;
    }
    if ((key & 7) !== 0) throw new Error('unexpected non-varint field');
    out[key >> 3] = Number(v);
  }
  return out;
}

/** A function that resolves with the router's route count, over one open connection. */
async function connect(kind, target) {
  switch (kind) {
    case 'tortie': {
      const ask = await streamClient(target, (b) => b.indexOf(10) + 1 || -1);
      const q = JSON.stringify({ cmd: 'count' }) + '\n';
      return async () => JSON.parse(await ask(q)).result.routes;
    }
    case 'bird': {
      // birdc's protocol: numbered lines, a reply ends with a line "0000 ..." (or an error)
      const end = (b) => {
        const m = /(^|\n)(0000|[89]\d\d\d)[ -][^\n]*\n/.exec(b.toString());
        return m ? m.index + m[0].length : -1;
      };
      const banner = (b) => (b.indexOf(10) >= 0 ? b.indexOf(10) + 1 : -1);
      let first = true;
      const ask = await streamClient(target, (b) => (first ? banner(b) : end(b)), true);
      first = false;
      const q = `show protocols all ${values.protocol}\n`;
      return async () => {
        const m = /Routes:\s+(\d+) imported/.exec(await ask(q));
        return m ? Number(m[1]) : 0;
      };
    }
    case 'frr': {
      // vtysh's protocol: a command ends with NUL; a reply ends with three NULs and a status
      const ask = await streamClient(target, (b) => {
        for (let i = 0; i + 3 < b.length; i++)
          if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 0) return i + 4;
        return -1;
      });
      const q = Buffer.from('show bgp ipv4 unicast summary json\0');
      return async () => {
        const text = (await ask(q)).replace(/\0[\s\S]*$/, '');
        return JSON.parse(text).ribCount ?? 0;
      };
    }
    case 'gobgp': {
      // gRPC unary call by hand over HTTP/2: GetTableRequest{family: {afi: 1, safi: 1}}
      const session = http2.connect(`http://${target}`);
      await new Promise((resolve, reject) => {
        session.once('connect', resolve);
        session.once('error', reject);
      });
      const message = Buffer.from([0x12, 0x04, 0x08, 0x01, 0x10, 0x01]);
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
      return () =>
        new Promise((resolve, reject) => {
          const req = session.request({
            ':method': 'POST',
            ':path': '/apipb.GobgpApi/GetTable',
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          const chunks = [];
          req.on('data', (d) => chunks.push(d));
          req.on('error', reject);
          req.on('end', () => {
            const body = Buffer.concat(chunks);
            if (body.length < 5) return reject(new Error('GetTable: empty reply'));
            const fields = varintFields(body.subarray(5, 5 + body.readUInt32BE(1)));
            resolve(fields[1] ?? 0); // num_destination
          });
          req.end(frame);
        });
    }
    default:
      throw new Error(`--kind ${kind}: expected tortie, bird, frr or gobgp`);
  }
}

/** The driver's commands, one line each on stdin. */
const commands = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Back-to-back queries, at least --cost of them and one second (the CPU clock ticks every 10 ms). */
async function cost(count) {
  const t0 = process.hrtime.bigint();
  const elapsedMs = () => Number(process.hrtime.bigint() - t0) / 1e6;
  let queries = 0;
  while (queries < Number(values.cost) || elapsedMs() < 1000) {
    await count();
    queries++;
  }
  return { queries, ms: elapsedMs() / queries };
}

async function main() {
  const count = await connect(values.kind, values.target);
  const want = Number(values.count);
  const interval = Number(values.interval);
  await count();
  print({ event: 'ready' });
  for (;;) {
    const { value: cmd, done } = await commands.next();
    if (done) process.exit(0);
    if (cmd === 'cost') {
      print({ event: 'cost', ...(await cost(count)) });
      continue;
    }
    if (cmd !== 'start') throw new Error(`unknown command ${cmd}`);
    let polls = 0;
    let filled = 0; // the sum over polls of the table's fill (0..1): what polls cost scales with
    for (;;) {
      const t = Date.now();
      polls++;
      const n = await count();
      filled += Math.min(1, n / want);
      if (n >= want) break;
      // a query that costs the router time (GoBGP counts its whole table) is sent less
      // often: at most a tenth of the wall time goes into answering us
      const took = Date.now() - t;
      await new Promise((r) => setTimeout(r, Math.max(interval - took, 9 * took)));
    }
    print({ event: 'complete', at: Date.now(), polls, filled });
  }
}

main().catch((e) => {
  print({ event: 'error', message: e.message });
  process.exit(1);
});
