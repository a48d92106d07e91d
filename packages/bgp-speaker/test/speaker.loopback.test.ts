// Two of our speakers (and a raw scripted peer) talking over loopback: session setup,
// route exchange, collision resolution, timers and error handling, without root.
import net from 'node:net';
import { BgpSpeaker, type SpeakerConfigInput, parseSpeakerConfig } from '../src';
import { MessageReader, encodeMessage } from '../src/codec';
import { createLogger } from '../src/log';
import type { BgpMessage, NotificationMessage } from '../src/types';

const quiet = createLogger('test', 'error');

async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false,
  timeoutMs = 10000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function freePort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

const running: BgpSpeaker[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

async function speaker(cfg: SpeakerConfigInput): Promise<BgpSpeaker> {
  const s = new BgpSpeaker(parseSpeakerConfig(cfg), { logger: quiet });
  running.push(s);
  await s.start();
  return s;
}

const fast = { holdTime: 3, connectRetryTime: 0.2, errorWaitTime: [0.1, 0.5] as [number, number] };

async function pair(asA: number, asB: number, opts: { passiveB?: boolean } = {}) {
  const [pa, pb] = [await freePort('127.0.0.1'), await freePort('127.0.0.2')];
  const a = await speaker({
    asn: asA,
    routerId: '1.1.1.1',
    listen: { address: '127.0.0.1', port: pa },
    nextHop: { ipv4: '127.0.0.1' },
    peers: [{ address: '127.0.0.2', asn: asB, port: pb, localAddress: '127.0.0.1', ...fast }],
  });
  const b = await speaker({
    asn: asB,
    routerId: '2.2.2.2',
    listen: { address: '127.0.0.2', port: pb },
    nextHop: { ipv4: '127.0.0.2' },
    peers: [
      {
        address: '127.0.0.1',
        asn: asA,
        port: pa,
        localAddress: '127.0.0.2',
        passive: opts.passiveB,
        ...fast,
      },
    ],
  });
  return { a, b, pa, pb };
}

const up = (s: BgpSpeaker) => s.peerStatus().every((p) => p.state === 'Established');

describe('speaker over loopback', () => {
  test('iBGP: both sides active, one session survives the collision, routes flow both ways', async () => {
    const { a, b } = await pair(65000, 65000);
    await waitFor('Established', () => up(a) && up(b));
    a.originate('10.1.0.0/24', { med: 5 });
    b.originate('10.2.0.0/24');
    const r = await waitFor('route at B', () => b.routes().find((x) => x.prefix === '10.1.0.0/24'));
    expect(r).toMatchObject({
      nextHop: '127.0.0.1',
      asPath: '',
      origin: 'IGP',
      localPref: 100,
      med: 5,
      from: '127.0.0.1',
    });
    await waitFor('route at A', () => a.routes().find((x) => x.prefix === '10.2.0.0/24'));
    // exactly one connection won: each side reached Established once
    expect(a.peerStatus()[0].counters.establishedTransitions).toBe(1);
    expect(b.peerStatus()[0].counters.establishedTransitions).toBe(1);
    a.withdraw('10.1.0.0/24');
    await waitFor('withdrawal at B', () => !b.routes().some((x) => x.prefix === '10.1.0.0/24'));
  });

  test('eBGP: AS path prepended, next hop self, LOCAL_PREF not sent', async () => {
    const { a, b } = await pair(65001, 65002, { passiveB: true });
    a.originate('10.3.0.0/24', { localPref: 300 });
    const r = await waitFor('route at B', () => b.routes().find((x) => x.prefix === '10.3.0.0/24'));
    expect(r.asPath).toBe('65001');
    expect(r.nextHop).toBe('127.0.0.1');
    expect(r.attributes.localPref).toBeUndefined();
  });

  test('routes of a peer that goes away are withdrawn', async () => {
    const { a, b } = await pair(65000, 65000);
    a.originate('10.4.0.0/24');
    await waitFor('route at B', () => b.routes().find((x) => x.prefix === '10.4.0.0/24'));
    await a.stop();
    await waitFor('withdrawal at B', () => !b.routes().some((x) => x.prefix === '10.4.0.0/24'));
    expect(b.peerStatus()[0].lastNotification).toMatchObject({
      direction: 'received',
      code: 6,
      subcode: 2,
    });
  });

  test('max-prefix limit ceases the session with Cease/1', async () => {
    const { a, b } = await pair(65000, 65000);
    await waitFor('Established', () => up(a) && up(b));
    b.removePeer('127.0.0.1');
    // re-add with a limit of two prefixes
    b.addPeer({
      address: '127.0.0.1',
      asn: 65000,
      port: a.port,
      localAddress: '127.0.0.2',
      maxPrefixes: 2,
      ...fast,
    });
    for (const p of ['10.5.0.0/24', '10.5.1.0/24', '10.5.2.0/24']) a.originate(p);
    await waitFor('cease', () => b.peerStatus()[0].lastNotification?.subcode === 1);
    expect(b.peerStatus()[0].lastNotification).toMatchObject({
      direction: 'sent',
      code: 6,
      subcode: 1,
    });
  });
});

/** A scripted peer: accepts our connection, answers OPEN, then does what the test says. */
async function rawPeer(port: number, onOpen: (sock: net.Socket, msgs: BgpMessage[]) => void) {
  const received: BgpMessage[] = [];
  const server = net.createServer((sock) => {
    const reader = new MessageReader(() => ({ as4: true }));
    sock.on('data', (d) => {
      for (const m of reader.push(d)) {
        received.push(m);
        if (m.type === 'open') {
          sock.write(
            encodeMessage(
              {
                type: 'open',
                version: 4,
                myAs: 65009,
                holdTime: 3,
                routerId: '9.9.9.9',
                capabilities: [{ code: 'as4', asn: 65009 }],
              },
              { as4: true },
            ),
          );
          sock.write(encodeMessage({ type: 'keepalive' }, { as4: true }));
          onOpen(sock, received);
        }
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.2', () => r()));
  return { server, received };
}

describe('speaker against a scripted peer', () => {
  let server: net.Server | undefined;
  afterEach(() => server?.close());

  async function ourSpeaker(port: number) {
    return speaker({
      asn: 65000,
      routerId: '1.1.1.1',
      listen: false,
      peers: [{ address: '127.0.0.2', asn: 65009, port, localAddress: '127.0.0.1', ...fast }],
    });
  }

  test('hold timer expiry sends NOTIFICATION 4/0 when the peer goes silent', async () => {
    const port = await freePort('127.0.0.2');
    const p = await rawPeer(port, () => undefined); // never sends another KEEPALIVE
    server = p.server;
    const s = await ourSpeaker(port);
    const n = await waitFor('hold timer notification', () =>
      p.received.find((m): m is NotificationMessage => m.type === 'notification'),
    );
    expect([n.code, n.subcode]).toEqual([4, 0]);
    expect(s.peerStatus()[0].lastNotification).toMatchObject({
      direction: 'sent',
      meaning: expect.stringMatching(/hold/i),
    });
  });

  test('a garbled UPDATE gets an UPDATE Message Error and the process survives', async () => {
    const port = await freePort('127.0.0.2');
    const p = await rawPeer(port, (sock) => {
      // UPDATE whose total path attribute length overruns the message
      const body = Buffer.from([0, 0, 0, 200, 0x40, 1, 1, 0]);
      const hdr = Buffer.alloc(19, 0xff);
      hdr.writeUInt16BE(19 + body.length, 16);
      hdr[18] = 2;
      setTimeout(() => sock.write(Buffer.concat([hdr, body])), 100);
    });
    server = p.server;
    const s = await ourSpeaker(port);
    const n = await waitFor('update error', () =>
      p.received.find((m): m is NotificationMessage => m.type === 'notification'),
    );
    expect(n.code).toBe(3);
    expect(s.peerStatus()[0].state).not.toBe('Established');
  });
});
