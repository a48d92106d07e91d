// TCP-MD5 (RFC 2385) against BIRD and FRR: the real tortie-bgp daemon and the router each
// in a namespace on one switch. With the same key on both ends the session comes up and
// routes flow, whichever end dials; with another key, or a key on one end only, the
// kernel drops the segments and the session never comes up. That both "one end only"
// cases fail is what shows that we sign our segments and that we check theirs.
import { Bird, Frr, Testbed, describeIf, waitUntil } from '@tortie/testbed';
import { speakerAndRouter, type Pair } from './netns-pair';

const US = '10.0.0.1';
const THEM = '10.0.0.2';
const OUR_AS = 65000;
const THEIR_AS = 65001;
const OURS = '10.10.0.0/24';
const THEIRS = '10.20.0.0/24';
const KEY = 'tortie-md5-key';
/** Long enough for several connection attempts each way (both retry every second). */
const NEVER_MS = 8000;

type Setup = Pair & { tb: Testbed };

async function setup(tb: Testbed, peer: { password?: string; passive?: boolean }): Promise<Setup> {
  const pair = await speakerAndRouter(tb, {
    us: US,
    them: THEM,
    asn: OUR_AS,
    peer: { asn: THEIR_AS, holdTime: 9, errorWaitTime: [0.5, 1], ...peer },
    originate: [OURS],
  });
  return { tb, ...pair };
}

/** A testbed for one setup, cleaned up (namespaces, daemons) also when the setup fails. */
async function withTestbed(fn: (tb: Testbed) => Promise<void>): Promise<void> {
  const tb = new Testbed();
  try {
    await fn(tb);
  } finally {
    await tb.cleanup();
  }
}

/**
 * Runs setups side by side (the never-up waits overlap) and waits for all of them, so
 * each has cleaned up before the test ends, even when one failed; then throws the first
 * failure.
 */
async function together(...runs: Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(runs)).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

async function ourState(s: Setup): Promise<string | undefined> {
  return (await s.speaker.peers()).find((p) => p.address === THEM)?.state;
}

interface Router {
  established(): Promise<boolean>;
  learned(): Promise<string[]>;
}

async function expectUp(s: Setup, router: Router): Promise<void> {
  await waitUntil('Established both ways', async () => {
    return (await ourState(s)) === 'Established' && (await router.established());
  });
  await waitUntil('routes both ways', async () => {
    const ours = (await s.speaker.routes()).some((r) => r.prefix === THEIRS);
    return ours && (await router.learned()).includes(OURS);
  });
}

async function expectNeverUp(s: Setup, router: Router): Promise<void> {
  const until = Date.now() + NEVER_MS;
  while (Date.now() < until) {
    expect(await ourState(s)).not.toBe('Established');
    expect(await router.established()).toBe(false);
    await new Promise((r) => setTimeout(r, 250));
  }
  const p = (await s.speaker.peers()).find((x) => x.address === THEM)!;
  expect(p.counters.establishedTransitions).toBe(0);
}

describeIf(['netns', 'bird', 'root'], 'TCP-MD5 with BIRD', () => {
  const bird = (b: Bird): Router => ({
    async established() {
      return (await b.protocol('tortie'))?.info.startsWith('Established') ?? false;
    },
    async learned() {
      return (await b.routes('ipv4')).filter((r) => r.protocol === 'tortie').map((r) => r.prefix);
    },
  });
  const startBird = (s: Setup, opts: { password?: string; passive?: boolean }) =>
    Bird.start(s.tb, s.them, {
      routerId: THEM,
      routes: [{ prefix: THEIRS }],
      peers: [
        {
          name: 'tortie',
          localAs: THEIR_AS,
          neighbor: US,
          neighborAs: OUR_AS,
          families: ['ipv4'],
          ...opts,
        },
      ],
    });

  test('the same key: up when we dial (our SYN signed) and when BIRD dials (our listener keyed)', async () => {
    await together(
      withTestbed(async (tb) => {
        // BIRD waits: only our signed connection can bring the session up
        const a = await setup(tb, { password: KEY });
        const b1 = await startBird(a, { password: KEY, passive: true });
        await expectUp(a, bird(b1));
      }),
      withTestbed(async (tb) => {
        // we wait: BIRD's signed SYN reaches our listener, which has the key for it
        const a = await setup(tb, { password: KEY, passive: true });
        const b1 = await startBird(a, { password: KEY });
        await expectUp(a, bird(b1));
      }),
    );
  }, 90_000);

  test('another key, or a key on one end only: never up', async () => {
    // the three watch their NEVER_MS at once, each in its own namespaces (was 3 x 8 s)
    await together(
      withTestbed(async (tb) => {
        const a = await setup(tb, { password: 'not-the-key' });
        await expectNeverUp(a, bird(await startBird(a, { password: KEY })));
      }),
      withTestbed(async (tb) => {
        // we sign, BIRD expects nothing: BIRD's kernel drops our signed segments
        const a = await setup(tb, { password: KEY });
        await expectNeverUp(a, bird(await startBird(a, {})));
      }),
      withTestbed(async (tb) => {
        // BIRD signs, we have no key: our kernel drops them, and BIRD drops our unsigned ones
        const a = await setup(tb, {});
        await expectNeverUp(a, bird(await startBird(a, { password: KEY })));
      }),
    );
  }, 120_000);
});

describeIf(['netns', 'frr', 'root'], 'TCP-MD5 with FRR', () => {
  const frrRouter = (f: Frr): Router => ({
    async established() {
      return (await f.neighborState(US)) === 'Established';
    },
    async learned() {
      return (await f.routes('ipv4')).filter((r) => r.nextHop === US).map((r) => r.prefix);
    },
  });
  const startFrr = (s: Setup, password?: string) =>
    Frr.start(s.tb, s.them, {
      asn: THEIR_AS,
      routerId: THEM,
      networks: [THEIRS],
      neighbors: [
        { address: US, remoteAs: OUR_AS, families: ['ipv4'], ...(password ? { password } : {}) },
      ],
    });

  test('the same key: up, routes both ways', async () => {
    await withTestbed(async (tb) => {
      const a = await setup(tb, { password: KEY });
      await expectUp(a, frrRouter(await startFrr(a, KEY)));
    });
  }, 90_000);

  test('another key: never up', async () => {
    await withTestbed(async (tb) => {
      const a = await setup(tb, { password: 'not-the-key' });
      await expectNeverUp(a, frrRouter(await startFrr(a, KEY)));
    });
  }, 90_000);
});
