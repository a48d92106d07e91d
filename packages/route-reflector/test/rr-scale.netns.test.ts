// One tortie-rr with 1,000 clients x 3 prefixes (simulated in one process in their own
// namespace, src/client-sim.ts): every client converges to the 2,997 prefixes of the
// others, reflected routes carry the originator's next hop and ORIGINATOR_ID and the
// reflector's CLUSTER_LIST, and each client gets them packed: one UPDATE per
// originating client (the most packing allows: its prefixes share attributes), not one
// per prefix.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { SpeakerProcess } from '@tortie/bgp-speaker';
import { Testbed, describeIf, link, stopProcess } from '@tortie/testbed';
import { simPrefixIndex, type ClientSimResult } from '../src';

const RR_CLI = path.resolve(__dirname, '../dist/cli.js');
const SIM_CLI = path.resolve(__dirname, '../dist/client-sim-cli.js');
const AS = 64512;
const N = 1000;
const K = 3;
const RR = '10.98.0.1';
const CLUSTER = '10.98.0.1';
const FIRST = 10 * 2 ** 24 + 98 * 2 ** 16 + 10; // 10.98.0.10
const ipText = (x: number) => `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
const clientIp = (i: number) => ipText(FIRST + i);

/** The sim's JSON lines until "converged" (or its error). */
function simResult(p: ChildProcess, timeoutMs: number): Promise<ClientSimResult> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`no convergence in ${timeoutMs} ms`)),
      timeoutMs,
    );
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        const e = JSON.parse(line) as { event: string; message?: string } & ClientSimResult;
        if (e.event === 'converged' || e.event === 'error') {
          clearTimeout(timer);
          if (e.event === 'error') reject(new Error(`client sim: ${e.message}`));
          else resolve(e);
          return;
        }
      }
    });
    p.once('exit', (code) => reject(new Error(`client sim exited (${code}): ${err}`)));
  });
}

describeIf(['netns', 'root'], `tortie-rr with ${N} clients`, () => {
  const tb = new Testbed();
  afterAll(() => tb.cleanup());

  test(`${N} clients x ${K} prefixes converge, stamped and packed`, async () => {
    const rrNs = await tb.netns('rr');
    const cl = await tb.netns('clients');
    const { ifB } = await link(rrNs, cl, { v4: [`${RR}/16`, `${clientIp(0)}/16`] });
    const adds = Array.from(
      { length: N - 1 },
      (_, i) => `addr add ${clientIp(i + 1)}/16 dev ${ifB}`,
    );
    await cl.exec(['ip', '-batch', '-'], { input: adds.join('\n') + '\n' });

    const rr = await SpeakerProcess.start(
      (argv, o) => rrNs.spawn(argv, o),
      tb.tempDir('rr'),
      {
        asn: AS,
        routerId: RR,
        clusterId: CLUSTER,
        listen: { address: '0.0.0.0', port: 179 },
        clients: Array.from({ length: N }, (_, i) => ({
          address: clientIp(i),
          passive: true,
          holdTime: 240,
        })),
        logLevel: 'warn',
      },
      { cli: RR_CLI, timeoutMs: 30000 },
    );
    const sim = cl.spawn(
      [
        'node',
        SIM_CLI,
        '--rr',
        RR,
        '--first',
        clientIp(0),
        '--count',
        String(N),
        '--prefixes',
        String(K),
        '--cluster',
        CLUSTER,
        '--sample',
        `0,${N / 2},${N - 1}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    tb.onCleanup(() => stopProcess(sim));
    const t0 = Date.now();
    const result = await simResult(sim, 45000);
    const others = (N - 1) * K;

    expect(result).toMatchObject({ clients: N, expectedPerClient: others, wrong: 0 });
    expect(await rr.routeCount()).toBe(N * K);
    // the sample: routes of many originators as three clients saw them
    expect(result.sample.length).toBeGreaterThan(20);
    for (const r of result.sample) {
      const owner = Math.floor(simPrefixIndex(r.prefix) / K);
      expect(r).toMatchObject({
        nextHop: clientIp(owner),
        originatorId: clientIp(owner),
        clusterList: [CLUSTER],
      });
      expect(r.client).not.toBe(clientIp(owner));
    }
    // packing: an originator's prefixes share attributes (NEXT_HOP, ORIGINATOR_ID), so
    // the fewest UPDATEs possible is one per originating client, N - 1; unpacked, K times that
    expect(result.updates.max).toBeLessThanOrEqual(N - 1);
    process.stderr.write(
      `rr-scale: ${N} clients x ${K}: converged ${result.seconds} s after the announcements ` +
        `(${(Date.now() - t0) / 1000} s with session setup); UPDATEs per client ` +
        `${result.updates.min}..${result.updates.max} for ${others} prefixes\n`,
    );
  }, 60000);
});
