// Our route reflector (the tortie-rr daemon) with BIRD, FRR and our own speaker as
// clients on one fabric: client routes reach every other client with ORIGINATOR_ID and
// CLUSTER_LIST as RFC 4456 says (checked in the daemons' own CLIs), a client's own route
// is never sent back to it (seen by a client that filters nothing), and a reflector
// restart reconverges.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { SpeakerProcess } from '@tortie/bgp-speaker';
import { Bird, Fabric, Frr, Testbed, describeIf, waitUntil, type Netns } from '@tortie/testbed';
import { reflectorSpeakerConfig } from '../src';

const RR_CLI = path.resolve(__dirname, '../dist/cli.js');
const OBSERVER = path.resolve(__dirname, 'fixtures/bgp-observer.js');
const AS = 64512;
const RR = '10.99.0.254';
const CLUSTER = '224.0.0.1';
const BIRD = { ip: '10.99.0.11', prefix: '10.201.0.0/24' };
const FRR = { ip: '10.99.0.12', prefix: '10.202.0.0/24' };
const US = { ip: '10.99.0.13', prefix: '10.203.0.0/24' };
/** A client that filters nothing (fixtures/bgp-observer.js) and the route it announces. */
const OBS = { ip: '10.99.0.14', prefix: '10.204.0.0/24' };
/** Announced by our client once the reflector has the observer's route. */
const MARKER = '10.205.0.0/24';

const TIMERS = { holdTime: 9, connectRetryTime: 1, errorWaitTime: [0.5, 1] as [number, number] };

const rrConfig = {
  asn: AS,
  routerId: RR,
  clusterId: CLUSTER,
  listen: { address: '0.0.0.0', port: 179 },
  clients: [
    ...[BIRD, FRR, US].map((c) => ({ address: c.ip, ...TIMERS })),
    { address: OBS.ip, passive: true, ...TIMERS },
  ],
};

/** A fresh Testbed per test, cleaned up after it. */
function useTestbed(): () => Testbed {
  let tb: Testbed;
  beforeEach(() => {
    tb = new Testbed();
  });
  afterEach(async () => {
    await tb.cleanup();
  });
  return () => tb;
}

/** A namespace plugged into the fabric with one address. */
async function host(tb: Testbed, fabric: Fabric, tag: string, ip: string): Promise<Netns> {
  const n = await tb.netns(tag);
  await fabric.attach(n, { v4: `${ip}/24` });
  return n;
}

function startReflector(tb: Testbed, ns: Netns, config: object): Promise<SpeakerProcess> {
  return SpeakerProcess.start((argv, o) => ns.spawn(argv, o), tb.tempDir('rr'), config, {
    cli: RR_CLI,
  });
}

interface Observed {
  event: string;
  nlri?: string[];
  withdrawn?: string[];
  originatorId?: string;
  why?: string;
}

/** The observer in `ns`, dialling `rr` and announcing `c.prefix`; resolves once established. */
async function startObserver(
  ns: Netns,
  c: { ip: string; prefix: string },
  rr: string,
): Promise<() => Observed[]> {
  const argv = ['node', OBSERVER, '--peer', rr, '--local', c.ip, '--asn', String(AS)];
  const p: ChildProcess = ns.spawn([...argv, '--prefix', c.prefix]);
  let out = '';
  let err = '';
  const events = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Observed);
  await new Promise<void>((resolve, reject) => {
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const e = events();
      if (e.some((x) => x.event === 'established')) resolve();
      const closed = e.find((x) => x.event === 'closed');
      if (closed) reject(new Error(`observer: ${closed.why}`));
    });
    p.once('exit', (code) => reject(new Error(`observer exited (${code}): ${err}`)));
  });
  return events;
}

/** A tortie speaker that originates one prefix and peers with the given reflectors. */
function startClient(
  tb: Testbed,
  ns: Netns,
  c: { ip: string; prefix: string },
  reflectors: string[],
) {
  return SpeakerProcess.start((argv, o) => ns.spawn(argv, o), tb.tempDir('client'), {
    asn: AS,
    routerId: c.ip,
    nextHop: { ipv4: c.ip },
    listen: false,
    peers: reflectors.map((address) => ({ address, asn: AS, ...TIMERS })),
    originate: [{ prefix: c.prefix }],
  });
}

describeIf(['netns', 'bird', 'frr', 'root'], 'tortie-rr with BIRD, FRR and tortie clients', () => {
  const testbed = useTestbed();

  test('the config maps clients to RR-client iBGP peers and refuses eBGP clients', () => {
    const c = reflectorSpeakerConfig(rrConfig);
    expect(c.clusterId).toBe(CLUSTER);
    expect(c.peers.every((p) => p.routeReflectorClient && p.asn === AS)).toBe(true);
    expect(() =>
      reflectorSpeakerConfig({ ...rrConfig, clients: [{ address: '10.0.0.1', asn: 65000 }] }),
    ).toThrow(/clients must be iBGP/);
  });

  test('client routes are reflected to every other client with ORIGINATOR_ID and CLUSTER_LIST; restart reconverges', async () => {
    const tb = testbed();
    const fabric = await Fabric.create(tb);
    const ns = (tag: string, ip: string) => host(tb, fabric, tag, ip);
    const rrNs = await ns('rr', RR);
    const startRr = () => startReflector(tb, rrNs, rrConfig);
    let rr = await startRr();
    const bird = await Bird.start(tb, await ns('bird', BIRD.ip), {
      routerId: BIRD.ip,
      routes: [{ prefix: BIRD.prefix }],
      peers: [
        {
          name: 'reflector',
          localAs: AS,
          neighbor: RR,
          neighborAs: AS,
          families: ['ipv4'],
          holdTime: 9,
        },
      ],
    });
    const frr = await Frr.start(tb, await ns('frr', FRR.ip), {
      asn: AS,
      routerId: FRR.ip,
      networks: [FRR.prefix],
      neighbors: [{ address: RR, remoteAs: AS, families: ['ipv4'] }],
    });
    const us = await startClient(tb, await ns('us', US.ip), US, [RR]);
    const observed = await startObserver(await ns('obs', OBS.ip), OBS, RR);

    // FRR learns BIRD's and our routes through the reflector, stamped
    const atFrr = await waitUntil('BIRD route at FRR', () => frr.route(BIRD.prefix));
    expect(atFrr).toMatchObject({
      nextHop: BIRD.ip,
      originatorId: BIRD.ip,
      clusterList: [CLUSTER],
      asPath: [],
    });
    const oursAtFrr = await waitUntil('our route at FRR', () => frr.route(US.prefix));
    expect(oursAtFrr).toMatchObject({
      nextHop: US.ip,
      originatorId: US.ip,
      clusterList: [CLUSTER],
    });
    // BIRD learns FRR's route, stamped
    const atBird = await waitUntil('FRR route at BIRD', async () =>
      (await bird.routes()).find((r) => r.prefix === FRR.prefix),
    );
    expect(atBird).toMatchObject({ nextHop: FRR.ip, originatorId: FRR.ip, clusterList: [CLUSTER] });
    // our client learns both
    await waitUntil('routes at our client', async () => {
      const got = (await us.routes()).map((r) => `${r.prefix} via ${r.nextHop}`);
      return (
        got.includes(`${BIRD.prefix} via ${BIRD.ip}`) && got.includes(`${FRR.prefix} via ${FRR.ip}`)
      );
    });
    // A client's own route is not reflected back to it. BIRD cannot show this (it drops a
    // route whose ORIGINATOR_ID is its own router id without a word), so it is observed at
    // a client that filters nothing: the observer's route reaches FRR (the reflector has
    // processed it), then a route our client announces after that reaches the observer
    // (the reflector's messages to it arrive in order, so anything it sent about the
    // observer's route is in by then); the observer never got its own route.
    // Shown to fail against a broken build: with the update groups' split horizon removed
    // (the route's source member not skipped, packages/bgp-speaker/src/rib/update-group.ts,
    // locally, not committed), the observer received its own 10.204.0.0/24 back with
    // ORIGINATOR_ID 10.99.0.14 and this test failed; the BIRD check it replaces passed.
    await waitUntil('the observer route at FRR', () => frr.route(OBS.prefix));
    await us.originate(MARKER);
    await waitUntil('the marker at the observer', async () =>
      observed().some((e) => e.nlri?.includes(MARKER)),
    );
    const received = observed().flatMap((e) => e.nlri ?? []);
    expect(received).toEqual(expect.arrayContaining([BIRD.prefix, FRR.prefix, US.prefix]));
    expect(
      observed().filter((e) => e.nlri?.includes(OBS.prefix) || e.originatorId === OBS.ip),
    ).toEqual([]);

    // restart the reflector: routes go, then come back
    rr.proc.kill('SIGTERM');
    await waitUntil(
      'routes withdrawn at FRR',
      async () => (await frr.route(BIRD.prefix)) === undefined,
    );
    rr = await startRr();
    await waitUntil('BIRD route at FRR again', () => frr.route(BIRD.prefix));
    await waitUntil('FRR route at our client again', async () =>
      (await us.routes()).some((r) => r.prefix === FRR.prefix),
    );
  }, 90000);
});

describeIf(['netns', 'bird', 'root'], 'BIRD as route reflector with tortie clients', () => {
  const testbed = useTestbed();

  test("one client's route reaches the other with BIRD's ORIGINATOR_ID and CLUSTER_LIST stamps", async () => {
    const tb = testbed();
    const fabric = await Fabric.create(tb);
    const ns = (tag: string, ip: string) => host(tb, fabric, tag, ip);
    const clients = [
      { ip: '10.99.0.21', prefix: '10.211.0.0/24' },
      { ip: '10.99.0.22', prefix: '10.212.0.0/24' },
    ];
    await Bird.start(tb, await ns('birdrr', RR), {
      routerId: RR,
      peers: clients.map((c, i) => ({
        name: `client${i}`,
        localAs: AS,
        neighbor: c.ip,
        neighborAs: AS,
        families: ['ipv4' as const],
        holdTime: 9,
        rrClient: true,
        clusterId: CLUSTER,
      })),
    });
    const speakers: SpeakerProcess[] = [];
    for (const c of clients)
      speakers.push(await startClient(tb, await ns('client', c.ip), c, [RR]));
    const got = await waitUntil('reflected route at client 1', async () =>
      (await speakers[1].routes()).find((r) => r.prefix === clients[0].prefix),
    );
    expect(got).toMatchObject({
      nextHop: clients[0].ip,
      originatorId: clients[0].ip,
      clusterList: [CLUSTER],
      from: RR,
    });
    await waitUntil('reflected route at client 0', async () =>
      (await speakers[0].routes()).some((r) => r.prefix === clients[1].prefix),
    );
  }, 60000);
});

describeIf(['netns', 'root'], 'redundant tortie reflectors in one cluster', () => {
  const testbed = useTestbed();

  test('losing one of two reflectors keeps every route reachable', async () => {
    const tb = testbed();
    const fabric = await Fabric.create(tb);
    const ns = (tag: string, ip: string) => host(tb, fabric, tag, ip);
    const rrIps = ['10.99.0.251', '10.99.0.252'];
    const clients = [
      { ip: '10.99.0.31', prefix: '10.231.0.0/24' },
      { ip: '10.99.0.32', prefix: '10.232.0.0/24' },
    ];
    const reflectors: SpeakerProcess[] = [];
    for (const ip of rrIps) {
      const n = await ns('rr', ip);
      const config = {
        asn: AS,
        routerId: ip,
        clusterId: CLUSTER,
        listen: { address: '0.0.0.0', port: 179 },
        clients: clients.map((c) => ({ address: c.ip, ...TIMERS })),
        // the other reflector of the cluster is a non-client iBGP peer
        peers: rrIps.filter((x) => x !== ip).map((x) => ({ address: x, ...TIMERS })),
      };
      reflectors.push(await startReflector(tb, n, config));
    }
    const speakers: SpeakerProcess[] = [];
    for (const c of clients)
      speakers.push(await startClient(tb, await ns('client', c.ip), c, rrIps));
    const reachable = async () => {
      const a = (await speakers[0].routes()).some(
        (r) => r.prefix === clients[1].prefix && r.nextHop === clients[1].ip,
      );
      const b = (await speakers[1].routes()).some(
        (r) => r.prefix === clients[0].prefix && r.nextHop === clients[0].ip,
      );
      return a && b;
    };
    await waitUntil(
      'routes through both reflectors',
      async () =>
        (await reachable()) && (await speakers[0].peers()).every((p) => p.state === 'Established'),
    );
    reflectors[0].proc.kill('SIGKILL');
    await waitUntil(
      'the dead reflector noticed',
      async () => (await speakers[0].peers()).some((p) => p.state !== 'Established'),
      15000,
    );
    expect(await reachable()).toBe(true);
  }, 60000);
});
