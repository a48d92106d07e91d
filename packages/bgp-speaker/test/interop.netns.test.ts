// Our speaker (the real tortie-bgp daemon) against BIRD 2, FRR and GoBGP, each in its
// own network namespace joined to ours by a veth. Per daemon, iBGP and eBGP scenarios
// each run an IPv4 and an IPv6 session at once, one with us active and one with us
// passive (and again swapped, so all eight combinations run), and check routes both
// ways, attributes, and withdrawals through the daemons' own CLIs.
import {
  Bird,
  Frr,
  GoBgp,
  Testbed,
  describeIf,
  link,
  waitUntil,
  type Netns,
} from '@tortie/testbed';
import type { SpeakerConfigInput } from '../src/config';
import { SpeakerProcess, type RouteRow } from '../src/speaker-process';

const US = { v4: '10.0.0.1', v6: 'fd00::1' };
const THEM = { v4: '10.0.0.2', v6: 'fd00::2' };
const OUR_AS = 65000;

/** Our daemon inside a namespace, plus the waits the scenarios need. */
class OurSpeaker {
  private constructor(private readonly p: SpeakerProcess) {}

  static async start(tb: Testbed, ns: Netns, config: SpeakerConfigInput): Promise<OurSpeaker> {
    const p = await SpeakerProcess.start(
      (argv, opts) => ns.spawn(argv, opts),
      tb.tempDir('us'),
      config,
      {
        logLevel: 'debug',
      },
    );
    return new OurSpeaker(p);
  }

  peers = () => this.p.peers();
  routes = () => this.p.routes();
  originate = (prefix: string, extra: { communities?: string[]; med?: number } = {}) =>
    this.p.originate(prefix, extra);
  withdraw = (prefix: string) => this.p.withdraw(prefix);
  log = () => this.p.log();

  async waitEstablished(address: string): Promise<void> {
    await waitUntil(`our session to ${address}`, async () =>
      (await this.p.peers()).find((p) => p.address === address && p.state === 'Established'),
    );
  }
  async route(prefix: string): Promise<RouteRow> {
    return waitUntil(`${prefix} in our Loc-RIB`, async () =>
      (await this.p.routes()).find((r) => r.prefix === prefix),
    );
  }
  async gone(prefix: string): Promise<void> {
    await waitUntil(`${prefix} withdrawn from our Loc-RIB`, async () =>
      (await this.p.routes()).every((r) => r.prefix !== prefix),
    );
  }
}

async function twoNamespaces(tb: Testbed) {
  const us = await tb.netns('us');
  const them = await tb.netns('peer');
  await link(us, them, {
    v4: [`${US.v4}/24`, `${THEM.v4}/24`],
    v6: [`${US.v6}/64`, `${THEM.v6}/64`],
  });
  return { us, them };
}

function ourConfig(theirAs: number, v4Passive: boolean): SpeakerConfigInput & { peers: object[] } {
  const timers = { holdTime: 9, connectRetryTime: 1, errorWaitTime: [0.5, 2] as [number, number] };
  return {
    asn: OUR_AS,
    routerId: US.v4,
    listen: { address: '::', port: 179 },
    nextHop: { ipv4: US.v4, ipv6: US.v6 },
    peers: [
      {
        address: THEM.v4,
        asn: theirAs,
        passive: v4Passive,
        families: ['ipv4' as const],
        ...timers,
      },
      {
        address: THEM.v6,
        asn: theirAs,
        passive: !v4Passive,
        families: ['ipv6' as const],
        ...timers,
      },
    ],
  };
}

/** Routes a daemon shows, in a common shape. */
interface DaemonRoute {
  prefix: string;
  nextHop?: string;
  asPath: number[];
  med?: number;
  communities: string[];
}

interface Daemon {
  name: string;
  start(tb: Testbed, ns: Netns, theirAs: number, v4Passive: boolean): Promise<DaemonDriver>;
}
interface DaemonDriver {
  waitEstablished(): Promise<void>;
  routes(family: 'ipv4' | 'ipv6'): Promise<DaemonRoute[]>;
  announce(prefix: string): Promise<void>;
  withdraw(prefix: string): Promise<void>;
}

const V4_OURS = '10.10.0.0/24';
const V6_OURS = '2001:db8:10::/48';
const V4_THEIRS = '10.20.0.0/24';
const V6_THEIRS = '2001:db8:20::/48';

const bird: Daemon = {
  name: 'BIRD 2',
  async start(tb, ns, theirAs, v4Passive) {
    const common = { localAs: theirAs, neighborAs: OUR_AS, holdTime: 9 };
    const b = await Bird.start(tb, ns, {
      routerId: THEM.v4,
      peers: [
        { name: 'us4', neighbor: US.v4, families: ['ipv4'], passive: !v4Passive, ...common },
        { name: 'us6', neighbor: US.v6, families: ['ipv6'], passive: v4Passive, ...common },
      ],
    });
    let routes: Array<{ prefix: string }> = [];
    return {
      waitEstablished: async () => {
        await b.waitEstablished('us4');
        await b.waitEstablished('us6');
      },
      routes: async (f) => (await b.routes(f)).filter((r) => r.protocol.startsWith('us')),
      announce: async (p) => {
        routes = [...routes, { prefix: p }];
        await b.setRoutes(
          routes.map((r) => ({ ...r, communities: [[theirAs, 200]] as Array<[number, number]> })),
        );
      },
      withdraw: async (p) => {
        routes = routes.filter((r) => r.prefix !== p);
        await b.setRoutes(routes);
      },
    };
  },
};

const frr: Daemon = {
  name: 'FRR',
  async start(tb, ns, theirAs, v4Passive) {
    const f = await Frr.start(tb, ns, {
      asn: theirAs,
      routerId: THEM.v4,
      neighbors: [
        { address: US.v4, remoteAs: OUR_AS, families: ['ipv4'], passive: !v4Passive },
        { address: US.v6, remoteAs: OUR_AS, families: ['ipv6'], passive: v4Passive },
      ],
    });
    return {
      waitEstablished: async () => {
        await f.waitEstablished(US.v4);
        await f.waitEstablished(US.v6);
      },
      // the detailed per-prefix view has communities; the table view does not
      routes: async (fam) => {
        const learned = (await f.routes(fam)).filter(
          (r) => r.nextHop !== '0.0.0.0' && r.nextHop !== '::',
        );
        const detailed = await Promise.all(learned.map((r) => f.route(r.prefix, fam)));
        return detailed.filter((r): r is NonNullable<typeof r> => r !== undefined);
      },
      announce: (p) => f.announce(p, { communities: [`${theirAs}:200`] }),
      withdraw: (p) => f.withdraw(p),
    };
  },
};

const gobgp: Daemon = {
  name: 'GoBGP',
  async start(tb, ns, theirAs, v4Passive) {
    const g = await GoBgp.start(tb, ns, {
      asn: theirAs,
      routerId: THEM.v4,
      neighbors: [
        { address: US.v4, peerAs: OUR_AS, families: ['ipv4'], passive: !v4Passive },
        { address: US.v6, peerAs: OUR_AS, families: ['ipv6'], passive: v4Passive },
      ],
    });
    return {
      waitEstablished: async () => {
        await g.waitEstablished(US.v4);
        await g.waitEstablished(US.v6);
      },
      routes: async (fam) =>
        (await g.routes(fam)).filter((r) => r.prefix === V4_OURS || r.prefix === V6_OURS),
      announce: (p) => g.announce(p, 'community', `${theirAs}:200`),
      withdraw: (p) => g.withdraw(p),
    };
  },
};

const needs = { 'BIRD 2': 'bird', FRR: 'frr', GoBGP: 'gobgp' } as const;

for (const daemon of [bird, frr, gobgp]) {
  describeIf(
    ['netns', needs[daemon.name as keyof typeof needs], 'root'],
    `interop with ${daemon.name}`,
    () => {
      let tb: Testbed;
      beforeEach(() => {
        tb = new Testbed();
      });
      afterEach(async () => {
        await tb.cleanup();
      });

      test.each([
        // with the two rows per mode, every (mode, family, active/passive) combination runs
        { mode: 'iBGP', theirAs: OUR_AS, v4Passive: false },
        { mode: 'iBGP', theirAs: OUR_AS, v4Passive: true },
        { mode: 'eBGP', theirAs: 65100, v4Passive: true },
        { mode: 'eBGP', theirAs: 65100, v4Passive: false },
      ])(
        '$mode, IPv4 session passive=$v4Passive, IPv6 the other way: routes both ways, withdrawals',
        async ({ mode, theirAs, v4Passive }) => {
          const { us, them } = await twoNamespaces(tb);
          const d = await daemon.start(tb, them, theirAs, v4Passive);
          const s = await OurSpeaker.start(tb, us, ourConfig(theirAs, v4Passive));
          try {
            await d.waitEstablished();
            await s.waitEstablished(THEM.v4);
            await s.waitEstablished(THEM.v6);

            // ours -> theirs, with attributes
            await s.originate(V4_OURS, { communities: ['65000:100'], med: 50 });
            await s.originate(V6_OURS, { communities: ['65000:100'] });
            const ebgp = mode === 'eBGP';
            const r4 = await waitUntil(`${V4_OURS} at ${daemon.name}`, async () =>
              (await d.routes('ipv4')).find((r) => r.prefix === V4_OURS),
            );
            expect(r4.nextHop).toBe(US.v4);
            expect(r4.asPath).toEqual(ebgp ? [OUR_AS] : []);
            expect(r4.communities).toContain('65000:100');
            expect(r4.med).toBe(50);
            const r6 = await waitUntil(`${V6_OURS} at ${daemon.name}`, async () =>
              (await d.routes('ipv6')).find((r) => r.prefix === V6_OURS),
            );
            expect(r6.nextHop).toBe(US.v6);
            expect(r6.asPath).toEqual(ebgp ? [OUR_AS] : []);

            // theirs -> ours
            await d.announce(V4_THEIRS);
            await d.announce(V6_THEIRS);
            const t4 = await s.route(V4_THEIRS);
            expect(t4).toMatchObject({
              nextHop: THEM.v4,
              asPath: ebgp ? String(theirAs) : '',
              from: THEM.v4,
            });
            expect(t4.communities).toContain(`${theirAs}:200`);
            const t6 = await s.route(V6_THEIRS);
            expect(t6).toMatchObject({ nextHop: THEM.v6, from: THEM.v6 });

            // withdrawals both ways
            await s.withdraw(V4_OURS);
            await s.withdraw(V6_OURS);
            await waitUntil(`${V4_OURS} withdrawn at ${daemon.name}`, async () =>
              (await d.routes('ipv4')).every((r) => r.prefix !== V4_OURS),
            );
            await waitUntil(`${V6_OURS} withdrawn at ${daemon.name}`, async () =>
              (await d.routes('ipv6')).every((r) => r.prefix !== V6_OURS),
            );
            await d.withdraw(V4_THEIRS);
            await d.withdraw(V6_THEIRS);
            await s.gone(V4_THEIRS);
            await s.gone(V6_THEIRS);
          } catch (err) {
            process.stderr.write(
              `--- our log (${daemon.name} ${mode}) ---\n${s.log().slice(-4000)}\n`,
            );
            throw err;
          }
        },
        60000,
      );
    },
  );
}

describeIf(['netns', 'bird', 'root'], 'session failures against BIRD', () => {
  let tb: Testbed;
  beforeEach(() => {
    tb = new Testbed();
  });
  afterEach(async () => {
    await tb.cleanup();
  });

  async function setup(holdTime = 9) {
    const { us, them } = await twoNamespaces(tb);
    const b = await Bird.start(tb, them, {
      routerId: THEM.v4,
      routes: [{ prefix: V4_THEIRS }],
      peers: [
        {
          name: 'us4',
          localAs: 65100,
          neighbor: US.v4,
          neighborAs: OUR_AS,
          families: ['ipv4'],
          holdTime,
        },
      ],
    });
    const config = ourConfig(65100, false);
    config.peers = [{ ...config.peers[0], holdTime } as (typeof config.peers)[0]];
    const s = await OurSpeaker.start(tb, us, config);
    await s.waitEstablished(THEM.v4);
    await s.route(V4_THEIRS);
    return { b, s, them };
  }

  test('a NOTIFICATION from BIRD is logged with its decoded meaning and the session recovers', async () => {
    const { b, s } = await setup();
    await b.birdc('disable us4');
    const p = await waitUntil('notification recorded', async () =>
      (await s.peers()).find((x) => x.lastNotification?.direction === 'received'),
    );
    expect(p.lastNotification).toMatchObject({
      code: 6,
      meaning: expect.stringMatching(/^Cease \/ /),
    });
    const logged = s
      .log()
      .split('\n')
      .find((l) => l.includes('"message":"notification received"'));
    expect(logged).toContain('"meaning":"Cease / ');
    await s.gone(V4_THEIRS);
    await b.birdc('enable us4');
    await s.waitEstablished(THEM.v4);
    await s.route(V4_THEIRS);
  }, 60000);

  test('BIRD restart is detected; the session and its routes come back', async () => {
    const { b, s } = await setup();
    await b.restart();
    await waitUntil(
      'session reset seen',
      async () =>
        (await s.peers()).some((x) => x.state !== 'Established') ||
        s.log().includes('session down'),
    );
    await s.waitEstablished(THEM.v4);
    await s.route(V4_THEIRS);
    await b.waitEstablished('us4');
  }, 60000);

  test('hold timer expiry: a frozen BIRD gets NOTIFICATION 4/0, routes are withdrawn, then it recovers', async () => {
    const { b, s } = await setup(3);
    const pid = b.pid;
    process.kill(pid, 'SIGSTOP');
    try {
      const p = await waitUntil(
        'hold timer expiry',
        async () => (await s.peers()).find((x) => x.lastNotification?.code === 4),
        15000,
      );
      expect(p.lastNotification).toMatchObject({ direction: 'sent', code: 4, subcode: 0 });
      await s.gone(V4_THEIRS);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await s.waitEstablished(THEM.v4);
    await s.route(V4_THEIRS);
  }, 60000);
});

interface Syn {
  from: string;
  to: string;
  ttl: number;
}

/**
 * tcpdump in `ns`, started before the test's traffic: the TCP SYNs (no ACK) to port 179
 * it sees, each with its IP TTL. Stopped with the namespace.
 */
async function captureSyns(ns: Netns): Promise<() => Syn[]> {
  const filter = 'tcp dst port 179 and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn';
  const p = ns.spawn(['tcpdump', '-i', 'any', '-n', '-l', '-v', filter]);
  let out = '';
  p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    p.once('exit', (code) => reject(new Error(`tcpdump exited (${code}): ${err}`)));
  });
  // -v: "IP (tos 0x0, ttl 64, ...)" then "    10.0.0.1.41234 > 10.0.0.2.179: Flags [S], ..."
  const re = /\bttl (\d+),[^\n]*\n\s+([\d.]+)\.\d+ > ([\d.]+)\.179: Flags \[S\]/g;
  return () => [...out.matchAll(re)].map((m) => ({ from: m[2], to: m[3], ttl: Number(m[1]) }));
}

describeIf(['netns', 'frr', 'root', 'tcpdump'], 'TTL security (GTSM, RFC 5082) against FRR', () => {
  let tb: Testbed;
  beforeEach(() => {
    tb = new Testbed();
  });
  afterEach(async () => {
    await tb.cleanup();
  });

  /** FRR (ttl-security hops 1, passive) and our speaker dialling it; SYNs seen at FRR. */
  async function run(ttlSecurity: number | undefined) {
    const { us, them } = await twoNamespaces(tb);
    const syns = await captureSyns(them);
    const f = await Frr.start(tb, them, {
      asn: 65100,
      routerId: THEM.v4,
      networks: [V4_THEIRS],
      neighbors: [
        {
          address: US.v4,
          remoteAs: OUR_AS,
          families: ['ipv4'],
          passive: true,
          ttlSecurityHops: 1,
        },
      ],
    });
    const config = ourConfig(65100, false);
    config.peers = [{ ...config.peers[0], ttlSecurity } as (typeof config.peers)[0]];
    const s = await OurSpeaker.start(tb, us, config);
    return { f, s, syns };
  }

  test('with ttlSecurity 1 we send TTL 255: FRR (ttl-security hops 1) establishes and we learn its route', async () => {
    const { f, s, syns } = await run(1);
    await f.waitEstablished(US.v4);
    await s.waitEstablished(THEM.v4);
    await s.route(V4_THEIRS);
    const ours = syns().filter((x) => x.from === US.v4 && x.to === THEM.v4);
    expect(ours.length).toBeGreaterThan(0);
    expect(new Set(ours.map((x) => x.ttl))).toEqual(new Set([255]));
  }, 60000);

  test('without it our packets (TTL 64) are dropped by FRR: it never establishes or sends us its route', async () => {
    // The session must fail because FRR drops what we send, not because we never sent:
    // tcpdump at FRR's end sees our speaker's connection attempts, with TTL 64.
    // Shown to fail against a broken build: with the speaker never dialling (connectOut
    // in src/session/peer.ts returning at once, locally, not committed), no SYN arrived
    // and this test failed on the SYN count; the old test, state checks only, passed.
    const { f, s, syns } = await run(undefined);
    // FRR applies its minimum TTL to an accepted socket a moment after accepting it, so
    // an early segment may slip through; the session itself must never come up there.
    // Watched until FRR has had three of our SYNs (a dial a second: two tries that got
    // nowhere before the third), at most 6 s.
    const states = new Set<string | undefined>();
    const ours = () => syns().filter((x) => x.from === US.v4 && x.to === THEM.v4);
    for (let i = 0; i < 30 && ours().length < 3; i++) {
      states.add(await f.neighborState(US.v4));
      await new Promise((r) => setTimeout(r, 200));
    }
    states.add(await f.neighborState(US.v4));
    expect(states.has('Established')).toBe(false);
    expect((await s.routes()).some((r) => r.prefix === V4_THEIRS)).toBe(false);
    expect(ours().length).toBeGreaterThan(0);
    expect(new Set(ours().map((x) => x.ttl))).toEqual(new Set([64]));
  }, 60000);
});

describeIf(['netns', 'bird', 'root'], 'eBGP multihop TTL through a router', () => {
  let tb: Testbed;
  beforeEach(() => {
    tb = new Testbed();
  });
  afterEach(async () => {
    await tb.cleanup();
  });

  /** us (10.0.1.1) -- router -- BIRD (10.0.2.2, multihop 2): the peer is two IP hops away. */
  async function run(ttl: number) {
    const us = await tb.netns('us');
    const router = await tb.netns('rtr');
    const them = await tb.netns('peer');
    await link(us, router, { v4: ['10.0.1.1/24', '10.0.1.254/24'] });
    await link(router, them, { v4: ['10.0.2.254/24', '10.0.2.2/24'] });
    await router.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await us.exec(['ip', 'route', 'add', 'default', 'via', '10.0.1.254']);
    await them.exec(['ip', 'route', 'add', 'default', 'via', '10.0.2.254']);
    const b = await Bird.start(tb, them, {
      routerId: '10.0.2.2',
      routes: [{ prefix: V4_THEIRS }],
      peers: [
        {
          name: 'tortie',
          localAs: 65100,
          neighbor: '10.0.1.1',
          neighborAs: OUR_AS,
          families: ['ipv4'],
          passive: true,
          multihop: 2,
        },
      ],
    });
    const s = await OurSpeaker.start(tb, us, {
      asn: OUR_AS,
      routerId: '10.0.1.1',
      nextHop: { ipv4: '10.0.1.1' },
      peers: [
        {
          address: '10.0.2.2',
          asn: 65100,
          ttl,
          holdTime: 9,
          connectRetryTime: 1,
          errorWaitTime: [0.5, 1],
        },
      ],
    });
    return { b, s, router };
  }

  test('ttl 2 reaches a peer two hops away', async () => {
    const { b, s } = await run(2);
    await b.waitEstablished('tortie');
    await s.waitEstablished('10.0.2.2');
  }, 60000);

  test('ttl 1 expires at the router: no session', async () => {
    const { b, s, router } = await run(1);
    // our connection attempts reach the router and expire there: it sends ICMP time
    // exceeded for them (its own counter; rate-limited to about one a second)
    const timeExceeded = async () => {
      const icmp = (await router.exec(['cat', '/proc/net/snmp']))
        .split('\n')
        .filter((l) => l.startsWith('Icmp:'));
      return Number(icmp[1].split(/\s+/)[icmp[0].split(/\s+/).indexOf('OutTimeExcds')]);
    };
    await waitUntil(
      'two of our SYNs expired at the router',
      async () => (await timeExceeded()) >= 2,
    );
    expect((await b.protocol('tortie'))?.info).not.toMatch(/Established/);
    expect((await s.peers())[0].state).not.toBe('Established');
  }, 60000);
});
