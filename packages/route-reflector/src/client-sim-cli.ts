#!/usr/bin/env node
// Runs a ClientSim (run it inside the clients' network namespace) and prints JSON lines:
// {"event":"established",...} once every session is up, {"event":"converged",...} with
// the result once every client has every other client's prefixes, or
// {"event":"error","message":...} and exit 1. Stays up (keepalives) until SIGTERM.
//
//   node client-sim-cli.js --rr ADDR --first 10.98.0.10 --count 1000 --prefixes 3
//                          --cluster 10.98.0.1 [--asn 64512] [--sample 0,500]
import { parseArgs } from 'node:util';
import { ClientSim } from './client-sim';

const ipText = (x: number) => `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;

function print(o: object): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rr: { type: 'string' },
      asn: { type: 'string', default: '64512' },
      first: { type: 'string' },
      count: { type: 'string', default: '100' },
      prefixes: { type: 'string', default: '3' },
      cluster: { type: 'string' },
      sample: { type: 'string', default: '0' },
    },
  });
  if (!values.rr || !values.first || !values.cluster) {
    throw new Error('usage: client-sim-cli --rr ADDR --first IP --cluster ID [--count N] ...');
  }
  const first = values.first.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const addresses = Array.from({ length: Number(values.count) }, (_, i) => ipText(first + i));
  const sim = new ClientSim({
    rr: values.rr,
    asn: Number(values.asn),
    addresses,
    prefixesPerClient: Number(values.prefixes),
    clusterList: values.cluster.split(','),
    sampleClients: values.sample.split(',').map(Number),
  });
  const t0 = Date.now();
  await sim.start();
  print({ event: 'established', clients: addresses.length, seconds: (Date.now() - t0) / 1000 });
  print({ event: 'converged', ...(await sim.announce()) });
  process.on('SIGTERM', () => {
    sim.close();
    process.exit(0);
  });
}

main().catch((err: Error) => {
  print({ event: 'error', message: err.message });
  process.exit(1);
});
