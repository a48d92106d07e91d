// The message codec: byte-exact vectors laid out by hand from the RFCs, round-trip
// properties, the RFC 4271 §6 / RFC 7606 error cases, and a fuzz run.
import fc from 'fast-check';
import {
  BgpError,
  MessageReader,
  decodeMessage,
  describeNotification,
  encodeEndOfRib,
  encodeMessage,
  encodeUpdates,
  isEndOfRib,
} from '../src/codec';
import { isMulticastPrefix, parsePrefix } from '../src/prefix';
import type { OpenMessage, PathAttributes, UpdateMessage } from '../src/types';

const AS4 = { as4: true };
const AS2 = { as4: false };
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const MARKER = 'ffffffffffffffffffffffffffffffff';

describe('byte-exact vectors', () => {
  test('KEEPALIVE: 16-octet marker, length 19, type 4', () => {
    const wire = hex(`${MARKER} 0013 04`);
    expect(encodeMessage({ type: 'keepalive' }, AS4)).toEqual(wire);
    expect(decodeMessage(wire, AS4)).toEqual({ type: 'keepalive' });
  });

  test('OPEN with multiprotocol, route refresh and 4-octet AS capabilities', () => {
    const open: OpenMessage = {
      type: 'open',
      version: 4,
      myAs: 23456, // AS_TRANS: the real AS 4200000000 is in the capability
      holdTime: 90,
      routerId: '10.0.0.1',
      capabilities: [
        { code: 'multiprotocol', afi: 2, safi: 1 },
        { code: 'route-refresh' },
        { code: 'as4', asn: 4200000000 },
      ],
    };
    // version 4 | my AS 5ba0 | hold 005a | id 0a000001 | opt len 16
    // param type 2 len 14: cap 1 len 4 (afi 0002, res 00, safi 01), cap 2 len 0, cap 65 len 4 (fa56ea00)
    const wire = hex(
      `${MARKER} 002d 01  04 5ba0 005a 0a000001 10  02 0e 01 04 0002 00 01 02 00 41 04 fa56ea00`,
    );
    expect(encodeMessage(open, AS4)).toEqual(wire);
    expect(decodeMessage(wire, AS4)).toEqual(open);
  });

  test('UPDATE with ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, COMMUNITIES and two NLRI', () => {
    const attributes: PathAttributes = {
      origin: 0,
      asPath: [{ type: 2, asns: [65001, 65002] }],
      nextHop: '192.0.2.1',
      med: 10,
      localPref: 200,
      communities: [0xfde80064], // 65000:100
    };
    const [wire] = encodeUpdates({ attributes, nlri: ['10.1.0.0/16', '192.168.1.0/24'] }, AS4);
    const expected = hex(
      `${MARKER} 004b 02` +
        ' 0000' + // withdrawn routes length
        ' 002d' + // total path attribute length 45
        ' 40 01 01 00' + // ORIGIN IGP
        ' 40 02 0a 02 02 0000fde9 0000fdea' + // AS_PATH: AS_SEQUENCE of 2 four-octet ASNs
        ' 40 03 04 c0000201' + // NEXT_HOP 192.0.2.1
        ' 80 04 04 0000000a' + // MED 10
        ' 40 05 04 000000c8' + // LOCAL_PREF 200
        ' c0 08 04 fde80064' + // COMMUNITIES 65000:100
        ' 10 0a01' + // 10.1.0.0/16
        ' 18 c0a801', // 192.168.1.0/24
    );
    expect(wire).toEqual(expected);
    expect(decodeMessage(wire, AS4)).toEqual({
      type: 'update',
      withdrawn: [],
      attributes,
      nlri: ['10.1.0.0/16', '192.168.1.0/24'],
    });
  });

  test('IPv6 UPDATE carries the prefixes and next hop in MP_REACH_NLRI', () => {
    const attributes: PathAttributes = { origin: 0, asPath: [], nextHop: '2001:db8::1' };
    const [wire] = encodeUpdates({ attributes, nlri: ['2001:db8:1::/48'] }, AS4);
    const expected = hex(
      `${MARKER} 003e 02 0000 0027` +
        ' 90 0e 001c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001' + // MP_REACH_NLRI
        ' 40 01 01 00' + // ORIGIN
        ' 40 02 00', // empty AS_PATH
    );
    expect(wire).toEqual(expected);
    const m = decodeMessage(wire, AS4) as UpdateMessage;
    expect(m.mpReach).toEqual({
      afi: 2,
      safi: 1,
      nextHop: '2001:db8::1',
      nlri: ['2001:db8:1::/48'],
    });
  });

  test('a 4-octet ASN to an old (2-octet) peer: AS_TRANS in AS_PATH plus AS4_PATH', () => {
    const attributes: PathAttributes = {
      origin: 0,
      asPath: [{ type: 2, asns: [4200000000, 65001] }],
      nextHop: '192.0.2.1',
    };
    const [wire] = encodeUpdates({ attributes, nlri: ['10.0.0.0/8'] }, AS2);
    const body = wire.subarray(23).toString('hex');
    expect(body).toContain('400206' + '0202' + '5ba0' + 'fde9'); // AS_PATH, 2-octet, AS_TRANS first
    expect(body).toContain('c0110a' + '0202' + 'fa56ea00' + '0000fde9'); // AS4_PATH
    expect((decodeMessage(wire, AS2) as UpdateMessage).attributes!.asPath).toEqual(
      attributes.asPath,
    );
  });

  test('NOTIFICATION and ROUTE-REFRESH', () => {
    const n = hex(`${MARKER} 0017 03 06 02 0102`);
    expect(decodeMessage(n, AS4)).toEqual({
      type: 'notification',
      code: 6,
      subcode: 2,
      data: Buffer.from([1, 2]),
    });
    expect(
      encodeMessage({ type: 'notification', code: 6, subcode: 2, data: Buffer.from([1, 2]) }, AS4),
    ).toEqual(n);
    const rr = hex(`${MARKER} 0017 05 0001 00 01`);
    expect(decodeMessage(rr, AS4)).toEqual({ type: 'route-refresh', afi: 1, subtype: 0, safi: 1 });
    expect(encodeMessage({ type: 'route-refresh', afi: 1, subtype: 0, safi: 1 }, AS4)).toEqual(rr);
  });

  test('End-of-RIB markers (RFC 4724)', () => {
    expect(encodeEndOfRib(1, AS4)).toEqual(hex(`${MARKER} 0017 02 0000 0000`));
    for (const afi of [1, 2] as const) {
      expect(isEndOfRib(decodeMessage(encodeEndOfRib(afi, AS4), AS4) as UpdateMessage)).toBe(afi);
    }
  });

  test('describeNotification names code and subcode', () => {
    expect(describeNotification(6, 2)).toBe('Cease / Administrative Shutdown');
    expect(describeNotification(4, 0)).toBe('Hold Timer Expired');
    expect(describeNotification(3, 11)).toBe('UPDATE Message Error / Malformed AS_PATH');
  });
});

// ---------------------------------------------------------------------------------
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const prefix4 = fc
  .tuple(ipv4, fc.integer({ min: 0, max: 32 }))
  .map(([a, l]) => parsePrefix(`${a}/${l}`));
const ipv6 = fc
  .array(fc.nat(0xffff), { minLength: 8, maxLength: 8 })
  .map((g) => g.map((x) => x.toString(16)).join(':'));
const prefix6 = fc
  .tuple(ipv6, fc.integer({ min: 0, max: 128 }))
  .map(([a, l]) => parsePrefix(`${a}/${l}`));
const asn = fc.integer({ min: 1, max: 0xffffffff });
const u32 = fc.nat(0xffffffff);

const attributesArb = (nextHop: fc.Arbitrary<string>): fc.Arbitrary<PathAttributes> =>
  fc.record(
    {
      origin: fc.constantFrom(0, 1, 2),
      asPath: fc.array(
        fc.record({
          type: fc.constantFrom(1, 2),
          asns: fc.array(asn, { minLength: 1, maxLength: 8 }),
        }),
        { maxLength: 3 },
      ),
      nextHop,
      med: u32,
      localPref: u32,
      atomicAggregate: fc.constant(true),
      aggregator: fc.record({ asn, address: ipv4 }),
      communities: fc.array(u32, { minLength: 1, maxLength: 5 }),
      largeCommunities: fc.array(fc.tuple(u32, u32, u32), { minLength: 1, maxLength: 3 }),
      originatorId: ipv4,
      clusterList: fc.array(ipv4, { minLength: 1, maxLength: 3 }),
    },
    { requiredKeys: ['origin', 'asPath', 'nextHop'] },
  );

describe('round-trip properties', () => {
  test('OPEN', () => {
    fc.assert(
      fc.property(
        fc.record({
          myAs: fc.nat(0xffff),
          holdTime: fc.oneof(fc.constant(0), fc.integer({ min: 3, max: 0xffff })),
          routerId: ipv4.filter((a) => a !== '0.0.0.0'),
          capabilities: fc.array(
            fc.oneof(
              fc.record({
                code: fc.constant('multiprotocol' as const),
                afi: fc.nat(0xffff),
                safi: fc.nat(255),
              }),
              fc.constant({ code: 'route-refresh' as const }),
              fc.record({ code: fc.constant('as4' as const), asn: u32 }),
              fc.record({
                code: fc.constant('graceful-restart' as const),
                restarting: fc.boolean(),
                restartTime: fc.nat(0xfff),
                families: fc.array(
                  fc.record({
                    afi: fc.nat(0xffff),
                    safi: fc.nat(255),
                    forwardingPreserved: fc.boolean(),
                  }),
                  { maxLength: 3 },
                ),
              }),
            ),
            { maxLength: 6 },
          ),
        }),
        (o) => {
          const open: OpenMessage = { type: 'open', version: 4, ...o };
          expect(decodeMessage(encodeMessage(open, AS4), AS4)).toEqual(open);
        },
      ),
    );
  });

  test.each([
    ['4-octet', AS4],
    ['2-octet', AS2],
  ])('UPDATE attributes (%s AS session)', (_name, ctx) => {
    fc.assert(
      fc.property(
        attributesArb(ipv4.filter((a) => !a.startsWith('0.') && Number(a.split('.')[0]) < 224)),
        (attrs) => {
          const [wire] = encodeUpdates({ attributes: attrs, nlri: ['10.0.0.0/8'] }, ctx);
          const m = decodeMessage(wire, ctx) as UpdateMessage;
          expect(m.treatAsWithdraw).toBeUndefined();
          // RFC 6793 §4.2.3: from an OLD peer, an AGGREGATOR other than AS_TRANS means an
          // OLD speaker aggregated: AS4_PATH is ignored, the 2-octet AS_PATH is the path
          const agg = attrs.aggregator?.asn;
          const as4PathIgnored = !ctx.as4 && agg !== undefined && agg <= 0xffff && agg !== 23456;
          const asPath = as4PathIgnored
            ? attrs.asPath.map((s) => ({ ...s, asns: s.asns.map((a) => (a > 0xffff ? 23456 : a)) }))
            : attrs.asPath;
          expect(m.attributes).toEqual({ ...attrs, asPath });
        },
      ),
      { numRuns: 300 },
    );
  });

  test('packing: every prefix exactly once, every message within the size limit', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.oneof(prefix4, prefix6), { maxLength: 600 }),
        fc.uniqueArray(fc.oneof(prefix4, prefix6), { maxLength: 600 }),
        fc.integer({ min: 200, max: 4096 }),
        (nlri, withdrawn, maxSize) => {
          const attributes: PathAttributes = {
            origin: 0,
            asPath: [{ type: 2, asns: [65000] }],
            nextHop: '192.0.2.1',
          };
          const v6attrs = { ...attributes, nextHop: '2001:db8::1' };
          const msgs = [
            ...encodeUpdates({ withdrawn }, AS4, maxSize),
            ...encodeUpdates(
              { attributes, nlri: nlri.filter((p) => !p.includes(':')) },
              AS4,
              maxSize,
            ),
            ...encodeUpdates(
              { attributes: v6attrs, nlri: nlri.filter((p) => p.includes(':')) },
              AS4,
              maxSize,
            ),
          ];
          const seenNlri: string[] = [];
          const seenWithdrawn: string[] = [];
          for (const w of msgs) {
            expect(w.length).toBeLessThanOrEqual(maxSize);
            const m = decodeMessage(w, AS4) as UpdateMessage;
            seenNlri.push(...m.nlri, ...(m.mpReach?.nlri ?? []));
            seenWithdrawn.push(...m.withdrawn, ...(m.mpUnreach?.withdrawn ?? []));
          }
          // multicast prefixes are not unicast routes: ignored on receipt (RFC 4271 §6.3)
          expect(seenNlri.sort()).toEqual(nlri.filter((p) => !isMulticastPrefix(p)).sort());
          expect(seenWithdrawn.sort()).toEqual([...withdrawn].sort());
        },
      ),
      { numRuns: 100 },
    );
  });

  test('1,000 /24s pack into few full messages', () => {
    const nlri = Array.from({ length: 1000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    const msgs = encodeUpdates(
      { attributes: { origin: 0, asPath: [], nextHop: '192.0.2.1' }, nlri },
      AS4,
    );
    expect(msgs.length).toBe(1); // 4 octets per /24: 4,000 octets fit in one 4,096-octet UPDATE
    expect(msgs[0].length).toBeLessThanOrEqual(4096);
  });
});

// ---------------------------------------------------------------------------------
/** The error a message raises: [code, subcode, data hex]. */
function errorOf(wire: Buffer, ctx = AS4): [number, number, string] {
  try {
    new MessageReader(() => ctx).push(wire);
  } catch (err) {
    if (!(err instanceof BgpError)) throw err;
    return [err.code, err.subcode, err.data.toString('hex')];
  }
  throw new Error('no error raised');
}

function update(attrHex: string, nlriHex = '18 0a0000', withdrawnHex = ''): Buffer {
  const w = hex(withdrawnHex);
  const a = hex(attrHex);
  const n = hex(nlriHex);
  const len = 19 + 4 + w.length + a.length + n.length;
  return Buffer.concat([
    hex(MARKER),
    Buffer.from([len >> 8, len & 255, 2, w.length >> 8, w.length & 255]),
    w,
    Buffer.from([a.length >> 8, a.length & 255]),
    a,
    n,
  ]);
}

const GOOD = '40 01 01 00  40 02 00  40 03 04 c0000201';

describe('RFC 4271 §6 errors', () => {
  test.each([
    ['marker not all ones (1/1)', hex(`${MARKER.slice(2)}00 0013 04`), [1, 1, '']],
    ['length below 19 (1/2, data = length)', hex(`${MARKER} 0012 04`), [1, 2, '0012']],
    ['length above 4096 (1/2)', hex(`${MARKER} 1001 04`), [1, 2, '1001']],
    ['KEEPALIVE longer than 19 (1/2)', hex(`${MARKER} 0014 04 00`), [1, 2, '0014']],
    ['OPEN shorter than 29 (1/2)', hex(`${MARKER} 001c 01 04 fde8 005a 0a000001`), [1, 2, '001c']],
    ['unknown type (1/3, data = type)', hex(`${MARKER} 0013 09`), [1, 3, '09']],
  ])('header: %s', (_n, wire, want) => {
    expect(errorOf(wire)).toEqual(want);
  });

  test.each([
    ['unsupported version (2/1, data = our version)', `03 fde8 005a 0a000001 00`, [2, 1, '0004']],
    ['hold time 2 (2/6)', `04 fde8 0002 0a000001 00`, [2, 6, '']],
    ['BGP identifier 0.0.0.0 (2/3)', `04 fde8 005a 00000000 00`, [2, 3, '']],
    ['unsupported optional parameter (2/4)', `04 fde8 005a 0a000001 03 01 01 00`, [2, 4, '']],
  ])('OPEN: %s', (_n, body, want) => {
    const b = hex(body);
    const wire = Buffer.concat([hex(MARKER), Buffer.from([0, 19 + b.length, 1]), b]);
    expect(errorOf(wire)).toEqual(want);
  });

  test.each([
    ['withdrawn length overruns (3/1)', update('', '', '').fill(0xff, 19, 21), [3, 1, '']],
    [
      'unrecognized well-known attribute (3/2, data = attribute)',
      update(`${GOOD} 40 63 01 07`),
      [3, 2, '40630107'],
    ],
    ['NLRI prefix length 33 (3/10)', update(GOOD, '21 0a000000 00'), [3, 10, '']],
    ['NLRI runs past the message (3/10)', update(GOOD, '18 0a00'), [3, 10, '']],
    [
      'MP_REACH_NLRI next hop length overruns (3/9)',
      update(`${GOOD} 80 0e 05 0002 01 20 00`, ''),
      [3, 9, '800e050002012000'],
    ],
    ['duplicate MP_REACH_NLRI (3/1)', update(`80 0f 03 0002 01  80 0f 03 0002 01`, ''), [3, 1, '']],
  ])('UPDATE: %s', (_n, wire, want) => {
    expect(errorOf(wire)).toEqual(want);
  });
});

describe('RFC 7606 revised error handling', () => {
  const decode = (w: Buffer) => decodeMessage(w, AS4) as UpdateMessage;
  test.each([
    ['invalid ORIGIN value', update('40 01 01 07  40 02 00  40 03 04 c0000201')],
    ['ORIGIN with wrong length', update('40 01 02 0000  40 02 00  40 03 04 c0000201')],
    [
      'malformed AS_PATH (segment overruns)',
      update('40 01 01 00  40 02 04 02 05 0000  40 03 04 c0000201'),
    ],
    ['NEXT_HOP 0.0.0.0', update('40 01 01 00  40 02 00  40 03 04 00000000')],
    ['MED with wrong length', update(`${GOOD} 80 04 02 0000`)],
    ['COMMUNITIES not a multiple of 4', update(`${GOOD} c0 08 03 000000`)],
    ['ORIGIN with optional flag set', update('c0 01 01 00  40 02 00  40 03 04 c0000201')],
    ['missing NEXT_HOP', update('40 01 01 00  40 02 00')],
    ['missing AS_PATH', update('40 01 01 00  40 03 04 c0000201')],
  ])('treat-as-withdraw: %s', (_n, wire) => {
    const m = decode(wire);
    expect(m.treatAsWithdraw).toEqual(expect.any(String));
    expect(m.nlri).toEqual(['10.0.0.0/24']); // the prefixes are still reported, to be withdrawn
  });

  test.each([
    ['ATOMIC_AGGREGATE with a value', update(`${GOOD} 40 06 01 00`), 'ATOMIC_AGGREGATE'],
    ['AGGREGATOR with wrong length', update(`${GOOD} c0 07 03 000000`), 'AGGREGATOR'],
    [
      'duplicate MED',
      update(`${GOOD} 80 04 04 00000001 80 04 04 00000002`),
      'duplicate MULTI_EXIT_DISC',
    ],
  ])('attribute discard: %s', (_n, wire, what) => {
    const m = decode(wire);
    expect(m.treatAsWithdraw).toBeUndefined();
    expect(m.discarded?.join(' ')).toContain(what);
  });

  test('RFC 7606 §6: a malformed UPDATE keeps its whole bytes for the log, a good one does not', () => {
    const bad = update('40 01 01 03  40 02 00  40 03 04 c0000201'); // ORIGIN 3
    expect(decode(bad).raw).toEqual(bad);
    const discard = update(`${GOOD} 40 06 01 00`);
    expect(decode(discard).raw).toEqual(discard);
    expect(decode(update(GOOD)).raw).toBeUndefined();
    // a session-reset error carries the message it was found in
    const reset = update('40 01 01 00  40 02 00  40 03 04 c0000201', '21 0a000000 00'); // /33
    let raised: unknown;
    try {
      new MessageReader(() => AS4).push(reset);
    } catch (err) {
      raised = err;
    }
    expect(raised).toBeInstanceOf(BgpError);
    expect((raised as BgpError).raw).toEqual(reset);
  });

  test('an unknown optional transitive attribute is kept and passed on with the Partial bit', () => {
    const m = decode(update(`${GOOD} c0 63 02 abcd`));
    expect(m.attributes!.unknown).toEqual([
      { flags: 0xc0, typeCode: 0x63, value: Buffer.from([0xab, 0xcd]) },
    ]);
    const [again] = encodeUpdates({ attributes: m.attributes!, nlri: m.nlri }, AS4);
    expect(again.toString('hex')).toContain('e06302abcd');
  });

  test('an unknown optional non-transitive attribute is dropped quietly', () => {
    expect(decode(update(`${GOOD} 80 63 01 00`)).attributes!.unknown).toBeUndefined();
  });
});

describe('stream framing', () => {
  test('messages split at every byte boundary are reassembled', () => {
    const msgs = [
      encodeMessage({ type: 'keepalive' }, AS4),
      ...encodeUpdates(
        { attributes: { origin: 0, asPath: [], nextHop: '192.0.2.1' }, nlri: ['10.0.0.0/24'] },
        AS4,
      ),
      encodeMessage({ type: 'keepalive' }, AS4),
    ];
    const stream = Buffer.concat(msgs);
    for (let cut = 1; cut < stream.length; cut++) {
      const r = new MessageReader(() => AS4);
      const out = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))];
      expect(out.map((m) => m.type)).toEqual(['keepalive', 'update', 'keepalive']);
    }
  });
});

describe('fuzz', () => {
  /** A deterministic PRNG so a failure can be replayed. */
  function rng(seed: number) {
    return () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
  }

  test('100,000 random and mutated messages: only BgpError is ever thrown', () => {
    const rand = rng(42);
    const attrs: PathAttributes = {
      origin: 0,
      asPath: [{ type: 2, asns: [65001, 4200000000] }],
      nextHop: '192.0.2.1',
      med: 1,
      communities: [1, 2],
      largeCommunities: [[1, 2, 3]],
      originatorId: '1.1.1.1',
      clusterList: ['2.2.2.2'],
      aggregator: { asn: 65001, address: '1.1.1.1' },
    };
    const seeds = [
      ...encodeUpdates(
        {
          attributes: attrs,
          nlri: ['10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24'],
          withdrawn: ['10.9.0.0/16'],
        },
        AS4,
      ),
      ...encodeUpdates(
        { attributes: { ...attrs, nextHop: '2001:db8::1' }, nlri: ['2001:db8::/32'] },
        AS4,
      ),
      ...encodeUpdates({ withdrawn: ['2001:db8::/32'] }, AS4),
      encodeMessage(
        {
          type: 'open',
          version: 4,
          myAs: 65001,
          holdTime: 90,
          routerId: '1.1.1.1',
          capabilities: [
            { code: 'multiprotocol', afi: 1, safi: 1 },
            { code: 'as4', asn: 65001 },
          ],
        },
        AS4,
      ),
      encodeMessage({ type: 'notification', code: 6, subcode: 2, data: Buffer.alloc(0) }, AS4),
      encodeMessage({ type: 'route-refresh', afi: 1, subtype: 0, safi: 1 }, AS4),
    ];
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 100_000; i++) {
      let msg: Buffer;
      const kind = i % 4;
      if (kind === 0) {
        // random body behind a valid header
        const body = Buffer.from(
          Array.from({ length: Math.floor(rand() * 120) }, () => Math.floor(rand() * 256)),
        );
        const len = 19 + body.length;
        msg = Buffer.concat([
          hex(MARKER),
          Buffer.from([len >> 8, len & 255, 1 + Math.floor(rand() * 5)]),
          body,
        ]);
      } else {
        msg = Buffer.from(seeds[Math.floor(rand() * seeds.length)]);
        if (kind === 1) {
          const flips = 1 + Math.floor(rand() * 4);
          for (let f = 0; f < flips; f++)
            msg[19 + Math.floor(rand() * (msg.length - 19))] ^= 1 << Math.floor(rand() * 8);
        } else if (kind === 2) {
          // corrupt a length-looking octet inside the body
          const at = 19 + Math.floor(rand() * (msg.length - 19));
          msg[at] = Math.floor(rand() * 256);
        } else {
          // truncate, fixing the header length so the body is what is short
          const keep = 19 + Math.floor(rand() * (msg.length - 19));
          msg = msg.subarray(0, keep);
          msg.writeUInt16BE(keep, 16);
        }
      }
      for (const ctx of [AS4, AS2]) {
        try {
          new MessageReader(() => ctx).push(msg);
          decoded++;
        } catch (err) {
          if (!(err instanceof BgpError)) {
            throw new Error(`message ${msg.toString('hex')} threw ${String(err)}`);
          }
          rejected++;
        }
      }
    }
    expect(decoded + rejected).toBe(200_000);
    expect(rejected).toBeGreaterThan(1000);
    expect(decoded).toBeGreaterThan(1000);
  });
});
