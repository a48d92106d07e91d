// BFD under BGP against BIRD's `bfd` protocol and FRR's bfdd: the real tortie-bgp daemon
// and the router each in a namespace on one bridge (a switch in its own namespace). The
// sessions come Up and agree on 100 ms × 3; then the switch stops forwarding (the port is
// taken off the bridge: no carrier loss, so only BFD can notice) and both sides must
// withdraw each other's routes long before the 90 s hold time. Forged BFD packets (TTL
// below 255, a bad length, unknown or spoofed discriminators) are dropped and counted.
import path from 'node:path';
import { Bird, Frr, Testbed, describeIf, waitUntil } from '@tortie/testbed';
import { speakerAndRouter, type Pair } from './netns-pair';

const US = '10.0.0.1';
const THEM = '10.0.0.2';
const SPOOF = '10.0.0.3';
const OUR_AS = 65000;
const THEIR_AS = 65001;
const OURS = '10.10.0.0/24';
const THEIRS = '10.20.0.0/24';
const HOLD_S = 90;
const FAST = { minTxMs: 100, minRxMs: 100, multiplier: 3 };

interface Router {
  /** The router's BFD session with us is Up, at the agreed interval (ms). */
  bfdUpAt(): Promise<number | undefined>;
  /** Prefixes it has from us. */
  learned(): Promise<string[]>;
  established(): Promise<boolean>;
}

type Setup = Pair & { tb: Testbed };

async function setup(tb: Testbed, bfd: object | undefined = FAST): Promise<Setup> {
  const pair = await speakerAndRouter(tb, {
    us: US,
    them: THEM,
    asn: OUR_AS,
    peer: {
      asn: THEIR_AS,
      holdTime: HOLD_S,
      errorWaitTime: [0.5, 2],
      ...(bfd ? { bfd } : {}),
    },
    originate: [OURS],
    logLevel: 'debug',
  });
  return { tb, ...pair };
}

async function ourBfd(s: Setup) {
  return (await s.speaker.peers()).find((p) => p.address === THEM)?.bfd;
}

async function waitBothUp(s: Setup, router: Router): Promise<void> {
  await waitUntil('BGP Established both ways', async () => {
    const p = (await s.speaker.peers()).find((x) => x.address === THEM);
    return p?.state === 'Established' && (await router.established());
  });
  await waitUntil('our BFD session Up at 100 ms', async () => {
    const b = await ourBfd(s);
    return b?.state === 'Up' && b.txIntervalMs === 100 && b.detectTimeMs === 300;
  });
  await waitUntil('their BFD session Up at 100 ms', async () => (await router.bfdUpAt()) === 100);
  await waitUntil('routes both ways', async () => {
    const ours = (await s.speaker.routes()).some((r) => r.prefix === THEIRS);
    return ours && (await router.learned()).includes(OURS);
  });
}

/** Takes our port off the switch's bridge; returns how long each side took to withdraw. */
async function cutAndMeasure(s: Setup, router: Router) {
  const t0 = Date.now();
  await s.fabric.cut(s.us);
  let ourMs: number | undefined;
  let theirMs: number | undefined;
  await waitUntil(
    'both sides withdraw after the cut',
    async () => {
      const now = Date.now() - t0;
      if (ourMs === undefined && !(await s.speaker.routes()).some((r) => r.prefix === THEIRS))
        ourMs = now;
      if (theirMs === undefined && !(await router.learned()).includes(OURS)) theirMs = now;
      return ourMs !== undefined && theirMs !== undefined;
    },
    30_000,
    10,
  );
  return { ourMs: ourMs!, theirMs: theirMs! };
}

/** Back after one cut, and staying up: one more BFD Up and BGP session each, no flapping. */
async function expectSettled(s: Setup): Promise<void> {
  await new Promise((r) => setTimeout(r, 1500));
  const p = (await s.speaker.peers()).find((x) => x.address === THEM)!;
  expect(p.bfd?.upTransitions).toBe(2);
  expect(p.counters.establishedTransitions).toBe(2);
}

async function rejoin(s: Setup): Promise<void> {
  await s.fabric.mend(s.us);
}

function report(name: string, m: { ourMs: number; theirMs: number }) {
  console.log(
    `${name}: link cut at 100 ms x 3 (detect 300 ms, hold ${HOLD_S} s): ` +
      `${name} withdrew our route after ${m.theirMs} ms, we withdrew its route after ${m.ourMs} ms`,
  );
  // an order of magnitude of slack over the detect time for a loaded machine; without
  // BFD nothing would go before the 90 s hold time
  expect(m.theirMs).toBeLessThan(3000);
  expect(m.ourMs).toBeLessThan(3000);
}

const birdRouter = (b: Bird): Router => ({
  async bfdUpAt() {
    const s = (await b.bfdSessions()).find((x) => x.address === US && x.state === 'Up');
    return s ? Math.round(s.interval * 1000) : undefined;
  },
  async learned() {
    return (await b.routes('ipv4')).filter((r) => r.protocol === 'tortie').map((r) => r.prefix);
  },
  async established() {
    return (await b.protocol('tortie'))?.info.startsWith('Established') ?? false;
  },
});

async function startBird(s: Setup): Promise<Bird> {
  return Bird.start(s.tb, s.them, {
    routerId: THEM,
    bfd: { minRxMs: 100, minTxMs: 100, multiplier: 3 },
    routes: [{ prefix: THEIRS }],
    peers: [
      {
        name: 'tortie',
        localAs: THEIR_AS,
        neighbor: US,
        neighborAs: OUR_AS,
        families: ['ipv4'],
        holdTime: HOLD_S,
        bfd: true,
      },
    ],
  });
}

/** A node program in the router's namespace that sends forged BFD packets to us. */
async function sendForged(
  s: Setup,
  packets: Array<{
    ttl: number;
    from: string;
    yourDiscr: number;
    tweak?: 'length' | 'version' | 'down';
  }>,
): Promise<void> {
  const codec = path.resolve(__dirname, '../../bfd/dist/codec.js');
  const script = `
    const dgram = require('node:dgram');
    const { encodeBfd } = require(${JSON.stringify(codec)});
    const packets = ${JSON.stringify(packets)};
    (async () => {
      for (const p of packets) {
        const sock = dgram.createSocket('udp4');
        await new Promise((ok) => sock.bind(0, p.from, ok));
        sock.setTTL(p.ttl);
        const b = encodeBfd({ diag: 0, state: 3, poll: false, final: false,
          controlPlaneIndependent: false, demand: false, detectMult: 3,
          myDiscriminator: 424242, yourDiscriminator: p.yourDiscr,
          desiredMinTxInterval: 100000, requiredMinRxInterval: 100000,
          requiredMinEchoRxInterval: 0 });
        if (p.tweak === 'length') b[3] = 40;
        if (p.tweak === 'version') b[0] = b[0] & 0x1f;
        if (p.tweak === 'down') b[1] = 1 << 6;
        await new Promise((ok) => sock.send(b, 3784, ${JSON.stringify(US)}, ok));
        sock.close();
      }
    })();`;
  await s.them.exec(['node', '-e', script]);
}

describeIf(['netns', 'bird', 'nft', 'root'], 'BFD with BIRD', () => {
  let tb: Testbed;
  beforeEach(() => {
    tb = new Testbed();
  });
  afterEach(() => tb.cleanup());

  test('comes Up at 100 ms x 3, and a cut link is withdrawn on both sides within the detect time', async () => {
    const s = await setup(tb);
    const bird = await startBird(s);
    const router = birdRouter(bird);
    await waitBothUp(s, router);
    report('BIRD', await cutAndMeasure(s, router));
    const down = await ourBfd(s);
    expect(down?.state).toBe('Down');
    expect(down?.diag).toBe('ControlDetectionTimeExpired');
    expect((await s.speaker.peers())[0].lastNotification?.meaning ?? '').toMatch(/BFD/);
    // the link back: BFD Up again, BGP re-established, the routes return
    await rejoin(s);
    await waitBothUp(s, router);
    await expectSettled(s);
  });

  test('forged packets are dropped and counted, and the session stays Up', async () => {
    const s = await setup(tb);
    await s.them.exec(['ip', 'addr', 'add', `${SPOOF}/24`, 'dev', 'eth0']);
    const router = birdRouter(await startBird(s));
    await waitBothUp(s, router);
    const mine = (await ourBfd(s))!.localDiscriminator;
    await sendForged(s, [
      // GTSM: a valid packet for our session, but from beyond the link
      { ttl: 64, from: THEM, yourDiscr: mine },
      { ttl: 64, from: THEM, yourDiscr: mine },
      // length field larger than the packet
      { ttl: 255, from: THEM, yourDiscr: mine, tweak: 'length' },
      { ttl: 255, from: THEM, yourDiscr: mine, tweak: 'version' },
      // no such session
      { ttl: 255, from: THEM, yourDiscr: mine ^ 0x5a5a },
      // our session's discriminator from another address
      { ttl: 255, from: SPOOF, yourDiscr: mine },
      // Your Discriminator 0 in state Up (only Down and AdminDown may carry 0)
      { ttl: 255, from: THEM, yourDiscr: 0 },
      // a Down with Your Discriminator 0 from an address we have no session with
      { ttl: 255, from: SPOOF, yourDiscr: 0, tweak: 'down' },
    ]);
    const b = await waitUntil('the drops counted', async () => {
      const x = await ourBfd(s);
      return x && Object.values(x.dropped).reduce((a, n) => a + (n ?? 0), 0) >= 8 ? x : undefined;
    });
    expect(b.dropped).toEqual({
      ttl: 2,
      length: 1,
      version: 1,
      'your-discriminator': 2,
      'source-address': 1,
      'unknown-peer': 1,
    });
    // a forged Up with a spoofed source did not touch the session
    expect(b.state).toBe('Up');
    expect(b.upTransitions).toBe(1);
    expect(b.remoteDiscriminator).not.toBe(424242);
  });
});

describeIf(['netns', 'frr', 'nft', 'root'], 'BFD with FRR bfdd', () => {
  let tb: Testbed;
  beforeEach(() => {
    tb = new Testbed();
  });
  afterEach(() => tb.cleanup());

  test('comes Up at 100 ms x 3, and a cut link is withdrawn on both sides within the detect time', async () => {
    const s = await setup(tb);
    const frr = await Frr.start(tb, s.them, {
      asn: THEIR_AS,
      routerId: THEM,
      networks: [THEIRS],
      timers: { keepalive: HOLD_S / 3, hold: HOLD_S },
      bfd: { receiveMs: 100, transmitMs: 100, multiplier: 3 },
      neighbors: [{ address: US, remoteAs: OUR_AS, families: ['ipv4'], bfd: true }],
    });
    const router: Router = {
      async bfdUpAt() {
        const p = (await frr.bfdPeers()).find((x) => x.peer === US && x.status === 'up');
        // the slower of its transmit interval and our receive interval
        return p && Math.max(p['transmit-interval'] ?? 0, p['remote-receive-interval'] ?? 0);
      },
      async learned() {
        return (await frr.routes('ipv4')).filter((r) => r.nextHop === US).map((r) => r.prefix);
      },
      async established() {
        return (await frr.neighborState(US)) === 'Established';
      },
    };
    await waitBothUp(s, router);
    report('FRR', await cutAndMeasure(s, router));
    await rejoin(s);
    await waitBothUp(s, router);
    await expectSettled(s);
  });
});
