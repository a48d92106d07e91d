// Two of our speakers (and a raw scripted peer) talking over loopback: session setup,
// route exchange, collision resolution, timers and error handling, without root.
import net from 'node:net';
import { peerKey, type BgpSpeaker } from '../src';
import { MessageReader, encodeMessage } from '../src/codec';
import { freePort, useSpeakers, waitFor } from './loopback-helpers';
import type { BgpMessage, NotificationMessage } from '../src/types';

const speaker = useSpeakers();

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
  test('iBGP: both sides active, exactly one session, routes flow both ways', async () => {
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

  test('without a configured next hop, eBGP next-hop-self uses the session address', async () => {
    const [pa, pb] = [await freePort('127.0.0.1'), await freePort('127.0.0.2')];
    const a = await speaker({
      asn: 65001,
      routerId: '1.1.1.1',
      listen: { address: '127.0.0.1', port: pa },
      peers: [{ address: '127.0.0.2', asn: 65002, port: pb, localAddress: '127.0.0.1', ...fast }],
    });
    const b = await speaker({
      asn: 65002,
      routerId: '2.2.2.2',
      listen: { address: '127.0.0.2', port: pb },
      peers: [
        {
          address: '127.0.0.1',
          asn: 65001,
          port: pa,
          localAddress: '127.0.0.2',
          passive: true,
          ...fast,
        },
      ],
    });
    a.originate('10.6.0.0/24');
    const r = await waitFor('route at B', () => b.routes().find((x) => x.prefix === '10.6.0.0/24'));
    expect(r.nextHop).toBe('127.0.0.1');
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

  test('a passive peer never dials, also after its connect-retry time (as BIRD and FRR)', async () => {
    const [pa, pb] = [await freePort('127.0.0.1'), await freePort('127.0.0.2')];
    const conf = (me: string, port: number, them: string, theirPort: number) => ({
      asn: 65000,
      routerId: me === '127.0.0.1' ? '1.1.1.1' : '2.2.2.2',
      listen: { address: me, port },
      peers: [
        { address: them, asn: 65000, port: theirPort, localAddress: me, passive: true, ...fast },
      ],
    });
    const a = await speaker(conf('127.0.0.1', pa, '127.0.0.2', pb));
    const b = await speaker(conf('127.0.0.2', pb, '127.0.0.1', pa));
    await new Promise((r) => setTimeout(r, 1500)); // several connect-retry times (0.2 s)
    expect([a, b].map((s) => s.peerStatus()[0].state)).toEqual(['Active', 'Active']);
    expect(await a.listenerConnections()).toBe(0);
    expect(await b.listenerConnections()).toBe(0);
    // one side active: one session
    b.removePeer(peerKey('127.0.0.1', pa));
    b.addPeer({ ...conf('127.0.0.2', pb, '127.0.0.1', pa).peers[0], passive: false });
    await waitFor('Established', () => up(a) && up(b));
  });

  test('two peers at one address on two ports are two sessions (keyed by address and port)', async () => {
    const [pa, pb, pc] = [
      await freePort('127.0.0.1'),
      await freePort('127.0.0.2'),
      await freePort('127.0.0.2'),
    ];
    const other = (asn: number, port: number, prefix: string) =>
      speaker(
        {
          asn,
          routerId: `2.2.2.${asn % 256}`,
          listen: { address: '127.0.0.2', port },
          peers: [
            { address: '127.0.0.1', asn: 65000, port: pa, localAddress: '127.0.0.2', ...fast },
          ],
        },
        [prefix],
      );
    const a = await speaker({
      asn: 65000,
      routerId: '1.1.1.1',
      listen: { address: '127.0.0.1', port: pa },
      peers: [
        { address: '127.0.0.2', asn: 65001, port: pb, localAddress: '127.0.0.1', ...fast },
        { address: '127.0.0.2', asn: 65002, port: pc, localAddress: '127.0.0.1', ...fast },
      ],
    });
    const b = await other(65001, pb, '10.7.1.0/24');
    const c = await other(65002, pc, '10.7.2.0/24');
    await waitFor('both sessions', () => up(a) && up(b) && up(c));
    expect(a.peerStatus().map((p) => [p.address, p.port, p.asn])).toEqual([
      ['127.0.0.2', pb, 65001],
      ['127.0.0.2', pc, 65002],
    ]);
    await waitFor('both routes at A', () => a.routes().length === 2);
    // removing one leaves the other
    a.removePeer(peerKey('127.0.0.2', pb));
    await waitFor('B gone', () => a.routes().every((r) => r.prefix !== '10.7.1.0/24'));
    expect(a.peerStatus().map((p) => [p.port, p.state])).toEqual([[pc, 'Established']]);
  });

  test('max-prefix limit ceases the session with Cease/1', async () => {
    const { a, b } = await pair(65000, 65000);
    await waitFor('Established', () => up(a) && up(b));
    b.removePeer(peerKey('127.0.0.1', a.port));
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

describe('session-level fuzz', () => {
  test('300 sessions that send garbage after the OPEN exchange: no crash, no leaked connection', async () => {
    const port = await freePort('127.0.0.1');
    const s = await speaker({
      asn: 65000,
      routerId: '1.1.1.1',
      listen: { address: '127.0.0.1', port },
      peers: [
        { address: '127.0.0.2', asn: 65009, passive: true, ...fast, errorWaitTime: [0.01, 0.01] },
      ],
    });
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const ctx = { as4: true };
    const open = encodeMessage(
      {
        type: 'open',
        version: 4,
        myAs: 65009,
        holdTime: 3,
        routerId: '9.9.9.9',
        capabilities: [{ code: 'as4', asn: 65009 }],
      },
      ctx,
    );
    const valid = encodeMessage({ type: 'keepalive' }, ctx);
    const update = Buffer.from(
      'ffffffffffffffffffffffffffffffff0031020000001540010100400206020100000fde94003040a000001' +
        '180a0000',
      'hex',
    );
    let closedByUs = 0;
    for (let i = 0; i < 300; i++) {
      const garbage = Buffer.from(i % 2 ? update : valid);
      for (let f = 0; f < 3; f++)
        garbage[Math.floor(rand() * garbage.length)] ^= 1 << Math.floor(rand() * 8);
      const tail = Buffer.from(
        Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)),
      );
      await new Promise<void>((resolve) => {
        const sock = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
        const done = setTimeout(() => sock.destroy(), 500);
        sock.on('connect', () => sock.write(Buffer.concat([open, valid, garbage, tail])));
        sock.on('data', () => undefined);
        sock.on('error', () => undefined);
        sock.on('end', () => closedByUs++);
        sock.on('close', () => {
          clearTimeout(done);
          resolve();
        });
      });
    }
    expect(closedByUs).toBeGreaterThan(100); // most garbage was answered by a NOTIFICATION and a close
    await waitFor('no open connections', async () => (await s.listenerConnections()) === 0, 5000);
    expect(await s.listenerConnections()).toBe(0);
    expect(s.peerStatus()).toHaveLength(1);
  }, 60000);
});

describe('connection collision (RFC 4271 §6.8)', () => {
  /**
   * Our speaker connects to a scripted peer while the peer connects to us; the peer
   * answers OPEN on both and holds its KEEPALIVEs until both OPENs are out. Returns
   * which connection got Cease / Connection Collision Resolution.
   */
  async function collide(
    peerRouterId: string,
  ): Promise<{ closed: string[]; established: boolean }> {
    const [pa, pb] = [await freePort('127.0.0.1'), await freePort('127.0.0.2')];
    const ctx = { as4: true };
    const open = encodeMessage(
      {
        type: 'open',
        version: 4,
        myAs: 65009,
        holdTime: 9,
        routerId: peerRouterId,
        capabilities: [{ code: 'as4', asn: 65009 }],
      },
      ctx,
    );
    const closed: string[] = [];
    const socks: net.Socket[] = [];
    const script = (sock: net.Socket, name: string) => {
      socks.push(sock);
      const reader = new MessageReader(() => ctx);
      sock.on('data', (d) => {
        for (const m of reader.push(d)) {
          if (m.type === 'open') {
            sock.write(open);
            setTimeout(
              () => sock.writable && sock.write(encodeMessage({ type: 'keepalive' }, ctx)),
              300,
            );
          }
          if (m.type === 'notification' && m.code === 6 && m.subcode === 7) closed.push(name);
        }
      });
      sock.on('error', () => undefined);
    };
    const server = net.createServer((sock) => {
      script(sock, 'initiated-by-us');
      script(
        net.connect({ host: '127.0.0.1', port: pa, localAddress: '127.0.0.2' }),
        'initiated-by-peer',
      );
    });
    await new Promise<void>((r) => server.listen(pb, '127.0.0.2', () => r()));
    try {
      const s = await speaker({
        asn: 65000,
        routerId: '1.1.1.1',
        listen: { address: '127.0.0.1', port: pa },
        peers: [
          {
            address: '127.0.0.2',
            asn: 65009,
            port: pb,
            localAddress: '127.0.0.1',
            ...fast,
            holdTime: 9,
          },
        ],
      });
      await waitFor('collision resolved', () => closed.length > 0);
      await waitFor('established', () => s.peerStatus()[0].state === 'Established');
      await new Promise((r) => setTimeout(r, 400));
      return { closed, established: s.peerStatus()[0].counters.establishedTransitions === 1 };
    } finally {
      socks.forEach((x) => x.destroy());
      server.close();
    }
  }

  test('our BGP identifier is lower: the connection we initiated is closed', async () => {
    expect(await collide('9.9.9.9')).toEqual({ closed: ['initiated-by-us'], established: true });
  });

  test('our BGP identifier is higher: the connection the peer initiated is closed', async () => {
    expect(await collide('0.0.0.9')).toEqual({ closed: ['initiated-by-peer'], established: true });
  });
});
