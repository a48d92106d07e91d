// Graceful restart between two of our speakers over loopback (no root): A helps, B
// restarts. B's routes stay in A's Loc-RIB, stale, while B is away; B's End-of-RIB
// flushes what it did not announce again; the restart timer, a Cease, and a return
// without graceful restart each flush at once.
import type { BgpSpeaker, SpeakerConfigInput } from '../src';
import { freePort, useSpeakers, waitFor } from './loopback-helpers';

const fast = { holdTime: 3, connectRetryTime: 0.2, errorWaitTime: [0.1, 0.3] as [number, number] };
const B_ROUTES = ['10.2.0.0/24', '10.3.0.0/24'];

const speaker = useSpeakers();

async function setup(bRestartTime = 120) {
  const [pa, pb] = [await freePort('127.0.0.1'), await freePort('127.0.0.2')];
  const a = await speaker({
    asn: 65000,
    routerId: '1.1.1.1',
    listen: { address: '127.0.0.1', port: pa },
    nextHop: { ipv4: '127.0.0.1' },
    gracefulRestart: { enabled: true },
    peers: [{ address: '127.0.0.2', asn: 65000, port: pb, localAddress: '127.0.0.1', ...fast }],
  });
  const bConfig = (gr: boolean): SpeakerConfigInput => ({
    asn: 65000,
    routerId: '2.2.2.2',
    listen: { address: '127.0.0.2', port: pb },
    nextHop: { ipv4: '127.0.0.2' },
    gracefulRestart: { enabled: gr, restartTimeS: bRestartTime, restarting: true },
    peers: [{ address: '127.0.0.1', asn: 65000, port: pa, localAddress: '127.0.0.2', ...fast }],
  });
  const b = await speaker(bConfig(true), B_ROUTES);
  await waitFor('A learns B_ROUTES', () => a.routes().length === 2);
  // every withdrawal A makes, to show that none happened while B restarted
  const withdrawn: string[] = [];
  a.on('bestPath', (cs) => {
    for (const c of cs) if (!c.best) withdrawn.push(c.prefix);
  });
  return {
    a,
    b,
    restartB: (originate: string[], gr = true) => speaker(bConfig(gr), originate),
    withdrawn,
  };
}

const aState = (a: BgpSpeaker) => a.peerStatus()[0].state;

test('B stops without NOTIFICATION: A keeps its routes stale; B back: refreshed, no withdrawal', async () => {
  const { a, b, restartB, withdrawn } = await setup();
  await b.stop({ graceful: true });
  await waitFor('A sees the session drop', () => aState(a) !== 'Established');
  expect(a.routes().map((r) => [r.prefix, r.stale])).toEqual(B_ROUTES.map((p) => [p, true]));
  expect(a.peerStatus()[0]).toMatchObject({ staleRoutes: 2 });
  const eor = new Promise((r) => a.once('endOfRib', r));
  await restartB(B_ROUTES);
  await eor;
  expect(a.routes().map((r) => [r.prefix, r.stale])).toEqual(B_ROUTES.map((p) => [p, undefined]));
  expect(withdrawn).toEqual([]);
});

test("B's End-of-RIB flushes the stale routes it did not announce again", async () => {
  const { a, b, restartB, withdrawn } = await setup();
  await b.stop({ graceful: true });
  await waitFor('A sees the session drop', () => aState(a) !== 'Established');
  await restartB([B_ROUTES[0]]);
  await waitFor('the stale route flushed', () => withdrawn.length > 0);
  expect(withdrawn).toEqual([B_ROUTES[1]]);
  expect(a.routes().map((r) => [r.prefix, r.stale])).toEqual([[B_ROUTES[0], undefined]]);
});

test('B does not come back within its restart time: its routes are flushed', async () => {
  const { a, b, withdrawn } = await setup(1);
  await b.stop({ graceful: true });
  await waitFor('A sees the session drop', () => aState(a) !== 'Established');
  expect(a.routes()).toHaveLength(2);
  await waitFor('restart timer expiry', () => a.routes().length === 0, 3000);
  expect(withdrawn.sort()).toEqual(B_ROUTES);
});

test('B stops with a Cease: A withdraws at once (RFC 4724: NOTIFICATION means normal procedures)', async () => {
  const { a, b } = await setup();
  await b.stop();
  await waitFor('routes withdrawn', () => a.routes().length === 0, 2000);
});

test('B comes back without graceful restart: the stale routes go when the session is up', async () => {
  const { a, b, restartB, withdrawn } = await setup();
  await b.stop({ graceful: true });
  await waitFor('A sees the session drop', () => aState(a) !== 'Established');
  await restartB(B_ROUTES, false);
  await waitFor('flushed', () => withdrawn.length === 2);
  // then B's new session announces them again, not stale
  await waitFor('relearned', () => a.routes().length === 2 && a.routes().every((r) => !r.stale));
});
