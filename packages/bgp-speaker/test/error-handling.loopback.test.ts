// UPDATE error handling to the letter, end to end: RFC 7606 §3 (a)-(j), §4, §5, §7.1-7.12,
// RFC 7607 (AS 0), RFC 4271 §6.3's semantic checks and RFC 6608's FSM subcodes. A scripted
// peer sends our speaker (S) the exact bytes of each row; the reaction is read where it
// shows: the NOTIFICATION the scripted peer gets (code, subcode, data), or, for
// treat-as-withdraw, attribute discard and ignored routes, what S re-advertises to an
// observer (O, our speaker as S's route-reflector client, so it sees every attribute).
// README.md "UPDATE error handling" is this table in words.
import net from 'node:net';
import { type BgpSpeaker } from '../src';
import { checkHeader, decodeMessage } from '../src/codec';
import type { BgpMessage, NotificationMessage, PathAttributes } from '../src/types';
import { freePort, useSpeakers, waitFor } from './loopback-helpers';

const speaker = useSpeakers();

/** Hex to bytes; spaces are for the reader. */
function hex(s: string): Buffer {
  const h = s.replace(/\s+/g, '');
  if (h.length % 2 || /[^0-9a-f]/i.test(h)) throw new Error(`bad hex in the test: ${s}`);
  return Buffer.from(h, 'hex');
}

/** A whole message: marker, length, type, body. */
function message(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(19, 0xff);
  head.writeUInt16BE(19 + body.length, 16);
  head[18] = type;
  return Buffer.concat([head, body]);
}

/** An UPDATE from its three fields (hex), with the two length fields filled in. */
function update(attrs: string, nlri = '', withdrawn = ''): Buffer {
  const [w, a, n] = [hex(withdrawn), hex(attrs), hex(nlri)];
  const len = (b: Buffer) => Buffer.from([b.length >> 8, b.length & 255]);
  return message(2, Buffer.concat([len(w), w, len(a), a, n]));
}

const KEEPALIVE = message(4, Buffer.alloc(0));
const ROUTE_REFRESH = message(5, hex('0001 00 01'));

// ---------------------------------------------------------------------------------
// The three scripted peers, and well-formed attributes for each

type Kind = 'ebgp' | 'ibgp' | 'old';
const PEERS: Record<Kind, { address: string; asn: number; open: string }> = {
  // version 4, My AS, hold 30, BGP id, capabilities: IPv4 and IPv6 unicast, 4-octet AS
  ebgp: {
    address: '127.0.0.2',
    asn: 65002,
    open: '04 fdea 001e 02020202 14 0212 0104 00010001 0104 00020001 4104 0000fdea',
  },
  ibgp: {
    address: '127.0.0.4',
    asn: 65000,
    open: '04 fde8 001e 04040404 14 0212 0104 00010001 0104 00020001 4104 0000fde8',
  },
  // an OLD speaker (RFC 6793): no 4-octet AS capability, 2-octet AS_PATH
  old: { address: '127.0.0.5', asn: 65005, open: '04 fded 001e 05050505 08 0206 0104 00010001' },
};

const ORIGIN = '40 01 01 00'; // ORIGIN IGP
const EBGP_PATH = '40 02 06 02 01 0000fdea'; // AS_PATH: AS_SEQUENCE [65002]
const EBGP_NH = '40 03 04 7f000002'; // NEXT_HOP 127.0.0.2 (the peer's address)
const EBGP = `${ORIGIN} ${EBGP_PATH} ${EBGP_NH}`;
const IBGP = `${ORIGIN} 40 02 00 40 03 04 7f000004`; // empty AS_PATH, NEXT_HOP 127.0.0.4
const OLD_PATH = '40 02 06 02 02 fded 5ba0'; // 2-octet AS_SEQUENCE [65005, AS_TRANS]
const OLD = `${ORIGIN} ${OLD_PATH} 40 03 04 7f000005`;
const MED7 = '80 04 04 00000007'; // a well-formed MED, to show an UPDATE was used

const NH6 = { ebgp: '20010db8000000000000000000000002', ibgp: '20010db8000000000000000000000004' };
/** MP_REACH_NLRI, IPv6 unicast, next hop 2001:db8::2, NLRI 2001:db8:1::/48. */
const MP_REACH_Q = `80 0e 1c 0002 01 10 ${NH6.ebgp} 00 30 20010db80001`;

const P = '10.0.0.0/24';
const P_NLRI = '18 0a0000';
const Q = '2001:db8:1::/48';
const M_NLRI = '18 0aff00'; // the marker, 10.255.0.0/24

/** Announced before each row: P (and Q over the IPv6-capable sessions). */
const SETUP: Record<Kind, Buffer[]> = {
  ebgp: [update(EBGP, P_NLRI), update(`${MP_REACH_Q} ${ORIGIN} ${EBGP_PATH}`)],
  ibgp: [
    update(IBGP, P_NLRI),
    update(`80 0e 1c 0002 01 10 ${NH6.ibgp} 00 30 20010db80001 ${ORIGIN} 40 02 00`),
  ],
  old: [update(OLD, P_NLRI)],
};
const MARKER: Record<Kind, string> = { ebgp: EBGP, ibgp: IBGP, old: OLD };

// ---------------------------------------------------------------------------------
// What a row expects

type Reaction =
  /** Session reset: this NOTIFICATION (code, subcode, data in hex), every route gone. */
  | { reset: [number, number, string] }
  /** No NOTIFICATION; at O each prefix is absent (null) or present with these attributes. */
  | { routes: Record<string, null | Partial<PathAttributes>> };

const reset = (code: number, subcode: number, data = ''): Reaction => ({
  reset: [code, subcode, data.replace(/\s+/g, '')],
});
/** treat-as-withdraw (or an ignored route): P is no longer there. */
const WITHDRAWN: Reaction = { routes: { [P]: null } };
/** P is there, replaced by the UPDATE, with these attributes (a discarded one undefined). */
const kept = (attrs: Partial<PathAttributes>): Reaction => ({ routes: { [P]: attrs } });

interface Row {
  section: string;
  rule: string;
  from: Kind;
  send: Buffer;
  expect: Reaction;
}

const row = (section: string, rule: string, from: Kind, send: Buffer, expect: Reaction): Row => ({
  section,
  rule,
  from,
  send,
  expect,
});

const ROWS: Row[] = [
  // RFC 7606 §3(a): only session-reset errors send a NOTIFICATION; every treat-as-withdraw
  // and attribute-discard row below checks that none was sent and the session is up.
  row(
    '7606 §3(b)',
    'Withdrawn Routes Length overruns the message',
    'ebgp',
    message(2, hex('0064 0000')),
    reset(3, 1),
  ),
  row(
    '7606 §3(b)',
    'Total Path Attribute Length overruns the message',
    'ebgp',
    message(2, hex(`0000 00c8 ${ORIGIN}`)),
    reset(3, 1),
  ),

  row(
    '7606 §3(c), §7.1',
    'ORIGIN with the Optional bit',
    'ebgp',
    update(`c0 01 01 00 ${EBGP_PATH} ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '4271 §4.3, 7606 §3(c), §7.1',
    'ORIGIN (well-known) with the Partial bit',
    'ebgp',
    update(`60 01 01 00 ${EBGP_PATH} ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '4271 §4.3, 7606 §3(c), §7.4',
    'MULTI_EXIT_DISC (optional non-transitive) with the Partial bit',
    'ebgp',
    update(`${EBGP} a0 04 04 00000007`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '4271 §4.3, 7606 §3(c), §7.6',
    'ATOMIC_AGGREGATE with the Partial bit: its own rule, attribute discard',
    'ebgp',
    update(`${EBGP} 60 06 00 ${MED7}`, P_NLRI),
    kept({ med: 7, atomicAggregate: undefined }),
  ),
  row(
    '4271 §4.3',
    'COMMUNITIES (optional transitive) with the Partial bit: used',
    'ebgp',
    update(`${EBGP} e0 08 04 fdea0001`, P_NLRI),
    kept({ communities: [0xfdea0001] }),
  ),
  row(
    '7606 §3(c), §7.4',
    'MULTI_EXIT_DISC with the Transitive bit',
    'ebgp',
    update(`${EBGP} c0 04 04 00000007`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §3(c), §7.5',
    'LOCAL_PREF (internal peer) with the Optional bit',
    'ibgp',
    update(`${IBGP} c0 05 04 000001f4`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §3(c), §7.5',
    'LOCAL_PREF with wrong flags from an external peer: discarded all the same',
    'ebgp',
    update(`${EBGP} c0 05 04 000001f4 ${MED7}`, P_NLRI),
    kept({ med: 7, localPref: 100 }),
  ),
  row(
    '7606 §3(c), §7.6',
    'ATOMIC_AGGREGATE with the Optional bit: its own rule, attribute discard',
    'ebgp',
    update(`${EBGP} c0 06 00 ${MED7}`, P_NLRI),
    kept({ med: 7, atomicAggregate: undefined }),
  ),
  row(
    '7606 §3(c), §7.7',
    'AGGREGATOR without the Optional bit: attribute discard',
    'ebgp',
    update(`${EBGP} 40 07 08 0000fdea 7f000002 ${MED7}`, P_NLRI),
    kept({ med: 7, aggregator: undefined }),
  ),
  row(
    '7606 §3(c), §7.8',
    'COMMUNITIES without the Transitive bit',
    'ebgp',
    update(`${EBGP} 80 08 04 fdea0001`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §3(c), §7.9',
    'ORIGINATOR_ID (internal peer) with the Transitive bit',
    'ibgp',
    update(`${IBGP} c0 09 04 09090909`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §3(c), §7.10',
    'CLUSTER_LIST (internal peer) with the Transitive bit',
    'ibgp',
    update(`${IBGP} c0 0a 04 09090909`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §3(c), §5.3',
    'MP_REACH_NLRI with the Transitive bit',
    'ebgp',
    update(`c0${MP_REACH_Q.slice(2)} ${ORIGIN} ${EBGP_PATH}`),
    reset(3, 4, `c0${MP_REACH_Q.slice(2)}`),
  ),
  row(
    '7606 §3(c), §5.3',
    'MP_UNREACH_NLRI with the Transitive bit',
    'ebgp',
    update('c0 0f 03 0002 01'),
    reset(3, 4, 'c0 0f 03 0002 01'),
  ),
  row(
    '8092 §6, 7606 §3(c)',
    'LARGE_COMMUNITIES without the Transitive bit',
    'ebgp',
    update(`${EBGP} 80 20 0c 0000fdea 00000001 00000002`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '6793 §6, 7606 §3(c)',
    'AS4_PATH (from an OLD peer) without the Transitive bit: attribute discard',
    'old',
    update(`${OLD} 80 11 06 02 01 fa56ea00`, P_NLRI),
    kept({ asPath: [{ type: 2, asns: [65005, 23456] }] }),
  ),
  row(
    '6793 §6, 7606 §3(c)',
    'AS4_AGGREGATOR (from an OLD peer) without the Transitive bit: attribute discard',
    'old',
    update(`${OLD} c0 07 06 5ba0 7f000005 80 12 08 fa56ea00 7f000005`, P_NLRI),
    kept({ aggregator: { asn: 23456, address: '127.0.0.5' } }),
  ),

  row('7606 §3(d)', 'ORIGIN missing', 'ebgp', update(`${EBGP_PATH} ${EBGP_NH}`, P_NLRI), WITHDRAWN),
  row('7606 §3(d)', 'AS_PATH missing', 'ebgp', update(`${ORIGIN} ${EBGP_NH}`, P_NLRI), WITHDRAWN),
  row(
    '7606 §3(d)',
    'NEXT_HOP missing with NLRI in the NLRI field',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §3(d), 4760 §3',
    'no NEXT_HOP is needed when every NLRI is in MP_REACH_NLRI',
    'ebgp',
    update(`80 0e 1c 0002 01 10 ${NH6.ebgp} 00 30 20010db80002 ${ORIGIN} ${EBGP_PATH}`),
    { routes: { '2001:db8:2::/48': { nextHop: '2001:db8::2' } } },
  ),

  row(
    '7606 §3(g)',
    'MP_REACH_NLRI twice',
    'ebgp',
    update(`${MP_REACH_Q} ${MP_REACH_Q} ${ORIGIN} ${EBGP_PATH}`),
    reset(3, 1),
  ),
  row(
    '7606 §3(g)',
    'MP_UNREACH_NLRI twice',
    'ebgp',
    update('80 0f 03 0002 01 80 0f 03 0002 01'),
    reset(3, 1),
  ),
  row(
    '7606 §3(g)',
    'MULTI_EXIT_DISC twice: the first is used',
    'ebgp',
    update(`${EBGP} 80 04 04 00000001 80 04 04 00000002`, P_NLRI),
    kept({ med: 1 }),
  ),
  row(
    '7606 §3(g)',
    'ORIGIN twice, the second malformed: dropped unread',
    'ebgp',
    update(`40 01 01 02 40 01 01 07 ${EBGP_PATH} ${EBGP_NH}`, P_NLRI),
    kept({ origin: 2 }),
  ),
  row(
    '7606 §3(g)',
    'an unrecognized attribute twice: the first is passed on (Partial set)',
    'ebgp',
    update(`${EBGP} c0 63 02 aaaa c0 63 02 bbbb`, P_NLRI),
    kept({ unknown: [{ flags: 0xe0, typeCode: 0x63, value: hex('aaaa') }] }),
  ),

  row(
    '7606 §3(h)',
    'attribute discard and treat-as-withdraw: treat-as-withdraw',
    'ebgp',
    update(`${EBGP} 40 06 01 00 80 04 03 000007`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §3(h)',
    'treat-as-withdraw and session reset: session reset',
    'ebgp',
    update(`40 01 01 07 ${EBGP_PATH} 80 0e 11 0002 01 05 2001db8000 00 30 20010db80001`),
    reset(3, 9, '800e11 0002 01 05 2001db8000 00 30 20010db80001'),
  ),

  row(
    '7606 §3(i)',
    'Withdrawn Routes: a prefix of length 33',
    'ebgp',
    update(EBGP, P_NLRI, '21 0a000000 00'),
    reset(3, 10),
  ),
  row(
    '7606 §3(i)',
    'Withdrawn Routes: the last prefix runs past the field',
    'ebgp',
    update(EBGP, P_NLRI, '18 0a00'),
    reset(3, 10),
  ),
  row(
    '7606 §3(j)',
    'NLRI unparsable beside a treat-as-withdraw error: session reset',
    'ebgp',
    update(`40 01 01 07 ${EBGP_PATH} ${EBGP_NH}`, '21 0a000000 00'),
    reset(3, 10),
  ),
  row(
    '7606 §3(j), §5.3',
    'MP_REACH_NLRI with an IPv6 prefix of length 129',
    'ebgp',
    update(`80 0e 16 0002 01 10 ${NH6.ebgp} 00 81 ${ORIGIN} ${EBGP_PATH}`),
    reset(3, 9, `800e16 0002 01 10 ${NH6.ebgp} 00 81`),
  ),

  row(
    '7606 §4',
    "the last attribute's length overruns the Total Attribute Length",
    'ebgp',
    update(`${EBGP} 80 04 08 00000007`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §4',
    'two octets after the last attribute (fewer than three)',
    'ebgp',
    update(`${EBGP} 80 04`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §4',
    'one octet after the last attribute',
    'ebgp',
    update(`${EBGP} 80`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §4',
    'three octets after the last attribute, Extended Length set (fewer than four)',
    'ebgp',
    update(`${EBGP} 90 04 00`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §4, §5.2',
    'an overrunning last attribute in an UPDATE without NLRI: session reset',
    'ebgp',
    update(`${EBGP} 80 04 08 00000007`),
    reset(3, 1),
  ),
  row(
    '7606 §4, §3(j)',
    'MP_REACH_NLRI cut short by the Total Attribute Length: session reset',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH} 80 0e 1c 0002 01 10 2001`, P_NLRI),
    reset(3, 1),
  ),
  row(
    '7606 §4',
    'ORIGIN of length 0',
    'ebgp',
    update(`40 01 00 ${EBGP_PATH} ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §4',
    'NEXT_HOP of length 0',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH} 40 03 00`, P_NLRI),
    WITHDRAWN,
  ),
  row('7606 §4', 'COMMUNITIES of length 0', 'ebgp', update(`${EBGP} c0 08 00`, P_NLRI), WITHDRAWN),
  row(
    '7606 §4',
    'AGGREGATOR of length 0: attribute discard',
    'ebgp',
    update(`${EBGP} c0 07 00 ${MED7}`, P_NLRI),
    kept({ med: 7, aggregator: undefined }),
  ),
  row(
    '7606 §4',
    'AS_PATH and ATOMIC_AGGREGATE may be empty',
    'ibgp',
    update(`${IBGP} 40 06 00`, P_NLRI),
    kept({ asPath: [], atomicAggregate: true }),
  ),

  row(
    '7606 §5.1',
    'withdrawn routes, NLRI, MP_UNREACH_NLRI and MP_REACH_NLRI (last) in one UPDATE',
    'ebgp',
    update(
      `${EBGP} 80 0f 0a 0002 01 30 20010db80001 80 0e 1c 0002 01 10 ${NH6.ebgp} 00 30 20010db80002`,
      '18 0a0100',
      P_NLRI,
    ),
    {
      routes: {
        [P]: null,
        [Q]: null,
        '10.1.0.0/24': { med: undefined },
        '2001:db8:2::/48': { nextHop: '2001:db8::2' },
      },
    },
  ),

  row(
    '7606 §5.2',
    'malformed ORIGIN, no NLRI: session reset with Invalid ORIGIN',
    'ebgp',
    update(`40 01 01 07 ${EBGP_PATH} ${EBGP_NH}`),
    reset(3, 6, '40 01 01 07'),
  ),
  row(
    '7606 §5.2',
    'malformed MULTI_EXIT_DISC beside withdrawn routes only: session reset',
    'ebgp',
    update(`${EBGP} 80 04 03 000007`, '', P_NLRI),
    reset(3, 5, '80 04 03 000007'),
  ),
  row(
    '7606 §5.2',
    'MP_REACH_NLRI without NLRI and malformed COMMUNITIES: session reset',
    'ebgp',
    update(`80 0e 15 0002 01 10 ${NH6.ebgp} 00 ${ORIGIN} ${EBGP_PATH} c0 08 05 0000000001`),
    reset(3, 5, 'c0 08 05 0000000001'),
  ),
  row(
    '7606 §5.2',
    'NEXT_HOP 0.0.0.0, no NLRI: session reset with Invalid NEXT_HOP',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH} 40 03 04 00000000`),
    reset(3, 8, '40 03 04 00000000'),
  ),
  row(
    '7606 §5.2',
    'leftmost AS not the peer, no NLRI: session reset with Malformed AS_PATH',
    'ebgp',
    update(`${ORIGIN} 40 02 06 02 01 0000fde9 ${EBGP_NH}`),
    reset(3, 11),
  ),
  row(
    '7607 §2, 7606 §5.2',
    'AS 0 in AS_PATH, no NLRI: session reset with Malformed AS_PATH',
    'ebgp',
    update(`${ORIGIN} 40 02 0a 02 02 0000fdea 00000000 ${EBGP_NH}`),
    reset(3, 11),
  ),
  row(
    '7606 §5.2',
    'only an attribute-discard error, no NLRI: no reset',
    'ebgp',
    update(`${EBGP} 40 06 01 00`),
    kept({ med: undefined }),
  ),
  row(
    '7606 §5.2, 4724',
    'End-of-RIB, IPv4 (an empty UPDATE): no reset',
    'ebgp',
    update(''),
    kept({}),
  ),
  row(
    '7606 §5.2, 4724',
    'End-of-RIB, IPv6 (an empty MP_UNREACH_NLRI): no reset',
    'ebgp',
    update('80 0f 03 0002 01'),
    { routes: { [P]: {}, [Q]: {} } },
  ),
  row(
    '7606 §5.2, 4760 §3',
    'a malformed NEXT_HOP beside MP_REACH_NLRI alone is ignored',
    'ebgp',
    update(
      `80 0e 1c 0002 01 10 ${NH6.ebgp} 00 30 20010db80002 ${ORIGIN} ${EBGP_PATH} 40 03 04 00000000`,
    ),
    { routes: { '2001:db8:2::/48': { nextHop: '2001:db8::2' } } },
  ),

  row(
    '7606 §5.3',
    'IPv4 NLRI: a prefix of length 33',
    'ebgp',
    update(EBGP, '21 0a000000 00'),
    reset(3, 10),
  ),
  row(
    '7606 §5.3',
    'IPv4 NLRI: the last prefix runs past the message',
    'ebgp',
    update(EBGP, '18 0a00'),
    reset(3, 10),
  ),
  row(
    '7606 §5.3',
    'MP_UNREACH_NLRI shorter than 3 octets',
    'ebgp',
    update('80 0f 02 0002'),
    reset(3, 9, '80 0f 02 0002'),
  ),
  row(
    '7606 §5.3',
    'MP_REACH_NLRI shorter than 5 octets',
    'ebgp',
    update(`80 0e 04 0002 01 10 ${ORIGIN} ${EBGP_PATH}`),
    reset(3, 9, '80 0e 04 0002 01 10'),
  ),
  row(
    '7606 §5.3',
    'MP_UNREACH_NLRI: the last prefix runs past the attribute',
    'ebgp',
    update('80 0f 06 0002 01 30 2001'),
    reset(3, 9, '80 0f 06 0002 01 30 2001'),
  ),
  row(
    '7606 §5.3',
    'MP_REACH_NLRI (IPv4) with a prefix of length 33',
    'ebgp',
    update(`80 0e 0f 0001 01 04 7f000002 00 21 0a000000 00 ${ORIGIN} ${EBGP_PATH}`),
    reset(3, 9, '80 0e 0f 0001 01 04 7f000002 00 21 0a000000 00'),
  ),

  row(
    '7606 §7.1',
    'ORIGIN of length 2',
    'ebgp',
    update(`40 01 02 0000 ${EBGP_PATH} ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.1',
    'ORIGIN value 3 (undefined)',
    'ebgp',
    update(`40 01 01 03 ${EBGP_PATH} ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.2',
    'AS_PATH: unrecognized segment type 5',
    'ebgp',
    update(`${ORIGIN} 40 02 06 05 01 0000fdea ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.2',
    'AS_PATH: a segment overruns the attribute',
    'ebgp',
    update(`${ORIGIN} 40 02 06 02 02 0000fdea ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.2',
    'AS_PATH: a single octet after the last segment',
    'ebgp',
    update(`${ORIGIN} 40 02 07 02 01 0000fdea 02 ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.2',
    'AS_PATH: a segment of length 0',
    'ebgp',
    update(`${ORIGIN} 40 02 08 02 00 02 01 0000fdea ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.2, 4271 §6.3',
    "external peer: leftmost AS not the peer's AS",
    'ebgp',
    update(`${ORIGIN} 40 02 06 02 01 0000fde9 ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.2, 4271 §6.3',
    'external peer: the path starts with an AS_SET',
    'ebgp',
    update(`${ORIGIN} 40 02 06 01 01 0000fdea ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.2, 5065 §5',
    'external peer: an AS_CONFED_SEQUENCE after its AS (we are in no confederation)',
    'ebgp',
    update(`${ORIGIN} 40 02 0c 02 01 0000fdea 03 01 0000fde9 ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.2, 5065 §5, §5.2',
    'external peer: an AS_CONFED_SET, no NLRI: session reset with Malformed AS_PATH',
    'ebgp',
    update(`${ORIGIN} 40 02 0c 02 01 0000fdea 04 01 0000fde9 ${EBGP_NH}`, '', P_NLRI),
    reset(3, 11),
  ),
  row(
    '4271 §6.3',
    'internal peer: the leftmost AS is not checked',
    'ibgp',
    update(`${ORIGIN} 40 02 06 02 01 0000fde9 40 03 04 7f000004`, P_NLRI),
    kept({ asPath: [{ type: 2, asns: [65001] }] }),
  ),
  row(
    '7606 §7.3',
    'NEXT_HOP of length 5',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH} 40 03 05 7f00000200`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.4',
    'MULTI_EXIT_DISC of length 3',
    'ebgp',
    update(`${EBGP} 80 04 03 000007`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.5',
    'LOCAL_PREF from an external peer: attribute discard',
    'ebgp',
    update(`${EBGP} 40 05 04 000001f4 ${MED7}`, P_NLRI),
    kept({ med: 7, localPref: 100 }),
  ),
  row(
    '7606 §7.5',
    'LOCAL_PREF of length 2 from an external peer: attribute discard, not withdraw',
    'ebgp',
    update(`${EBGP} 40 05 02 01f4 ${MED7}`, P_NLRI),
    kept({ med: 7, localPref: 100 }),
  ),
  row(
    '7606 §7.5',
    'LOCAL_PREF of length 2 from an internal peer',
    'ibgp',
    update(`${IBGP} 40 05 02 01f4`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.5',
    'LOCAL_PREF from an internal peer is used',
    'ibgp',
    update(`${IBGP} 40 05 04 000001f4`, P_NLRI),
    kept({ localPref: 500 }),
  ),
  row(
    '7606 §7.6',
    'ATOMIC_AGGREGATE of length 1',
    'ebgp',
    update(`${EBGP} 40 06 01 00 ${MED7}`, P_NLRI),
    kept({ med: 7, atomicAggregate: undefined }),
  ),
  row(
    '7606 §7.7',
    'AGGREGATOR of length 6 on a 4-octet-AS session',
    'ebgp',
    update(`${EBGP} c0 07 06 fdea 7f000002 ${MED7}`, P_NLRI),
    kept({ med: 7, aggregator: undefined }),
  ),
  row(
    '7606 §7.7',
    'AGGREGATOR of length 8 on a 2-octet-AS session',
    'old',
    update(`${OLD} c0 07 08 0000fded 7f000005 ${MED7}`, P_NLRI),
    kept({ med: 7, aggregator: undefined }),
  ),
  row(
    '7606 §7.8',
    'COMMUNITIES of length 5',
    'ebgp',
    update(`${EBGP} c0 08 05 fdea000100`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.9',
    'ORIGINATOR_ID from an external peer: attribute discard',
    'ebgp',
    update(`${EBGP} 80 09 04 09090909`, P_NLRI),
    kept({ originatorId: undefined }),
  ),
  row(
    '7606 §7.9',
    'ORIGINATOR_ID of length 3 from an external peer: attribute discard',
    'ebgp',
    update(`${EBGP} 80 09 03 090909 ${MED7}`, P_NLRI),
    kept({ med: 7, originatorId: undefined }),
  ),
  row(
    '7606 §7.9',
    'ORIGINATOR_ID of length 3 from an internal peer',
    'ibgp',
    update(`${IBGP} 80 09 03 090909`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.10',
    'CLUSTER_LIST from an external peer: attribute discard',
    'ebgp',
    update(`${EBGP} 80 0a 04 09090909`, P_NLRI),
    kept({ clusterList: undefined }),
  ),
  row(
    '7606 §7.10',
    'CLUSTER_LIST of length 6 from an internal peer',
    'ibgp',
    update(`${IBGP} 80 0a 06 090909090909`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.10, 4456 §8',
    'CLUSTER_LIST from an internal peer is reflected with ours in front',
    'ibgp',
    update(`${IBGP} 80 0a 04 09090909`, P_NLRI),
    kept({ originatorId: '4.4.4.4', clusterList: ['1.1.1.1', '9.9.9.9'] }),
  ),
  row(
    '4456 §8',
    'ORIGINATOR_ID equal to our BGP identifier: route ignored',
    'ibgp',
    update(`${IBGP} 80 09 04 01010101`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '4456 §8',
    'our cluster id in CLUSTER_LIST: route ignored',
    'ibgp',
    update(`${IBGP} 80 0a 04 01010101`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7606 §7.11',
    'MP_REACH_NLRI next hop of length 5',
    'ebgp',
    update(`80 0e 11 0002 01 05 2001db8000 00 30 20010db80001 ${ORIGIN} ${EBGP_PATH}`),
    reset(3, 9, '800e11 0002 01 05 2001db8000 00 30 20010db80001'),
  ),
  row(
    '7606 §7.11',
    'MP_REACH_NLRI (IPv6) next hop of length 4',
    'ebgp',
    update(`80 0e 10 0002 01 04 7f000002 00 30 20010db80001 ${ORIGIN} ${EBGP_PATH}`),
    reset(3, 9, '800e10 0002 01 04 7f000002 00 30 20010db80001'),
  ),
  row(
    '7606 §7.12',
    'MP_UNREACH_NLRI needs no other attribute',
    'ebgp',
    update('80 0f 0a 0002 01 30 20010db80001'),
    { routes: { [Q]: null, [P]: {} } },
  ),

  row(
    '7607 §2',
    'AS 0 in AS_PATH: treat-as-withdraw',
    'ebgp',
    update(`${ORIGIN} 40 02 0a 02 02 0000fdea 00000000 ${EBGP_NH}`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '7607 §2, 7606 §7.7',
    'AS 0 in AGGREGATOR: attribute discard',
    'ebgp',
    update(`${EBGP} c0 07 08 00000000 7f000002 ${MED7}`, P_NLRI),
    kept({ med: 7, aggregator: undefined }),
  ),
  row(
    '7607 §2, 6793 §6',
    'AS 0 in AS4_PATH (OLD peer): attribute discard',
    'old',
    update(`${OLD} c0 11 06 02 01 00000000`, P_NLRI),
    kept({ asPath: [{ type: 2, asns: [65005, 23456] }] }),
  ),
  row(
    '6793 §4.2.3',
    'a well-formed AS4_PATH (OLD peer) is merged',
    'old',
    update(`${OLD} c0 11 06 02 01 fa56ea00`, P_NLRI),
    kept({
      asPath: [
        { type: 2, asns: [65005] },
        { type: 2, asns: [4200000000] },
      ],
    }),
  ),
  row(
    '7607 §2, 6793 §6',
    'AS 0 in AS4_AGGREGATOR (OLD peer): attribute discard',
    'old',
    update(`${OLD} c0 07 06 5ba0 7f000005 c0 12 08 00000000 7f000005`, P_NLRI),
    kept({ aggregator: { asn: 23456, address: '127.0.0.5' } }),
  ),

  row(
    '4271 §6.3',
    'NEXT_HOP is our own address: route ignored',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH} 40 03 04 7f000001`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '4271 §6.3, 7606 §3(e)',
    'NEXT_HOP 0.0.0.0: treat-as-withdraw',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH} 40 03 04 00000000`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '4271 §6.3, 7606 §3(e)',
    'NEXT_HOP multicast 224.0.0.5: treat-as-withdraw',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH} 40 03 04 e0000005`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '4271 §6.3, 7606 §3(e)',
    'NEXT_HOP 240.0.0.1 (reserved): treat-as-withdraw',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH} 40 03 04 f0000001`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '4271 §6.3',
    'external peer one hop away: NEXT_HOP neither its address nor in the shared subnet',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH} 40 03 04 c0000201`, P_NLRI),
    WITHDRAWN,
  ),
  row(
    '4271 §6.3',
    'external peer one hop away: a NEXT_HOP in the shared subnet is used',
    'ebgp',
    update(`${ORIGIN} ${EBGP_PATH} 40 03 04 7f000009`, P_NLRI),
    kept({ nextHop: '127.0.0.9' }),
  ),
  row(
    '4271 §6.3',
    'MP_REACH_NLRI next hop our own address: route ignored',
    'ebgp',
    update(
      `80 0e 1c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001 ${ORIGIN} ${EBGP_PATH}`,
    ),
    { routes: { [Q]: null } },
  ),
  row(
    '4271 §6.3',
    'MP_REACH_NLRI next hop :: : route ignored',
    'ebgp',
    update(
      `80 0e 1c 0002 01 10 00000000000000000000000000000000 00 30 20010db80001 ${ORIGIN} ${EBGP_PATH}`,
    ),
    { routes: { [Q]: null } },
  ),
  row(
    '4271 §6.3',
    'MP_REACH_NLRI next hop multicast ff02::1: route ignored',
    'ebgp',
    update(
      `80 0e 1c 0002 01 10 ff020000000000000000000000000001 00 30 20010db80001 ${ORIGIN} ${EBGP_PATH}`,
    ),
    { routes: { [Q]: null } },
  ),
  row(
    '4271 §6.3',
    'a multicast prefix in the NLRI is ignored, the others used',
    'ebgp',
    update(EBGP, `${P_NLRI} 18 e00000`),
    { routes: { [P]: {}, '224.0.0.0/24': null } },
  ),
  row(
    '4271 §6.3',
    'a multicast prefix in MP_REACH_NLRI is ignored, the others used',
    'ebgp',
    update(`80 0e 1f 0002 01 10 ${NH6.ebgp} 00 30 20010db80002 10 ff0e ${ORIGIN} ${EBGP_PATH}`),
    { routes: { '2001:db8:2::/48': {}, 'ff0e::/16': null } },
  ),
  row(
    '4271 §6.3, 7606 §5.2',
    'NLRI all multicast with a malformed attribute: parsed, so treat-as-withdraw',
    'ebgp',
    update(`40 01 01 07 ${EBGP_PATH} ${EBGP_NH}`, '18 e00000'),
    { routes: { [P]: {}, '224.0.0.0/24': null } },
  ),
];

// ---------------------------------------------------------------------------------
// The two speakers and the scripted sessions

interface Scripted {
  sock: net.Socket;
  messages: Array<{ raw: Buffer; msg: BgpMessage }>;
  notifications: NotificationMessage[];
}

/** Connects to S from a scripted peer's address and writes `first` (the OPEN unless told). */
function dial(port: number, kind: Kind, first: Buffer[]): Scripted {
  const s: Scripted = {
    sock: net.connect({ host: '127.0.0.1', port, localAddress: PEERS[kind].address }),
    messages: [],
    notifications: [],
  };
  let pending = Buffer.alloc(0);
  s.sock.on('connect', () => s.sock.write(Buffer.concat(first)));
  s.sock.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    while (pending.length >= 19 && pending.length >= checkHeader(pending).length) {
      const raw = pending.subarray(0, checkHeader(pending).length);
      pending = pending.subarray(raw.length);
      const msg = decodeMessage(raw, { as4: kind !== 'old' });
      s.messages.push({ raw, msg });
      if (msg.type === 'notification') s.notifications.push(msg);
    }
  });
  s.sock.on('error', () => undefined);
  return s;
}

const openOf = (kind: Kind) => message(1, hex(PEERS[kind].open));

describe('UPDATE error handling (RFC 7606, 7607, 4271 §6.3), observed end to end', () => {
  let s: BgpSpeaker;
  let o: BgpSpeaker;
  let port: number;
  const fast = { connectRetryTime: 0.2, errorWaitTime: [0.01, 0.01] as [number, number] };
  /** S waits for each of them (passive). */
  const peerOf = (kind: Kind | 'observer') => ({
    ...(kind === 'observer'
      ? { address: '127.0.0.3', asn: 65000 }
      : { address: PEERS[kind].address, asn: PEERS[kind].asn }),
    passive: true,
    ...fast,
  });
  const stateOf = (kind: Kind) =>
    s.peerStatus().find((p) => p.address === PEERS[kind].address)?.state;
  const at = (prefix: string) => o.routes().find((r) => r.prefix === prefix);

  beforeEach(async () => {
    port = await freePort('127.0.0.1');
    s = await speaker({
      asn: 65000,
      routerId: '1.1.1.1',
      clusterId: '1.1.1.1',
      listen: { address: '127.0.0.1', port },
      nextHop: { ipv4: '127.0.0.1', ipv6: '2001:db8::1' },
      peers: [
        { ...peerOf('ebgp'), families: ['ipv4', 'ipv6'], sharedSubnet: '127.0.0.0/24' },
        { ...peerOf('ibgp'), families: ['ipv4', 'ipv6'] },
        peerOf('old'),
        { ...peerOf('observer'), families: ['ipv4', 'ipv6'], routeReflectorClient: true },
      ],
    });
    o = await speaker({
      asn: 65000,
      routerId: '3.3.3.3',
      listen: false,
      nextHop: { ipv6: '2001:db8::3' },
      peers: [
        {
          address: '127.0.0.1',
          asn: 65000,
          port,
          localAddress: '127.0.0.3',
          families: ['ipv4', 'ipv6'],
          ...fast,
        },
      ],
    });
    await waitFor('observer session', () => o.peerStatus()[0].state === 'Established');
  });

  /** A scripted session up to Established, with P (and Q) announced and seen at O. */
  async function established(kind: Kind): Promise<Scripted> {
    const peer = dial(port, kind, [openOf(kind), KEEPALIVE]);
    await waitFor(`${kind} session`, () => stateOf(kind) === 'Established');
    peer.sock.write(Buffer.concat(SETUP[kind]));
    await waitFor('P at the observer', () => at(P));
    if (kind !== 'old') await waitFor('Q at the observer', () => at(Q));
    return peer;
  }

  test.each(ROWS.map((r) => [`RFC ${r.section}: ${r.rule}`, r] as const))(
    '%s',
    async (_name, r) => {
      const peer = await established(r.from);
      peer.sock.write(r.send);
      if ('reset' in r.expect) {
        const n = await waitFor('NOTIFICATION', () => peer.notifications[0]);
        expect([n.code, n.subcode, n.data.toString('hex')]).toEqual(r.expect.reset);
        await waitFor('the session routes gone at the observer', () => !at(P) && !at(Q));
      } else {
        // a marker announced then withdrawn after the row: once O saw both, it saw the row
        peer.sock.write(update(MARKER[r.from], M_NLRI));
        await waitFor('marker at the observer', () => at('10.255.0.0/24'));
        peer.sock.write(update('', '', M_NLRI));
        await waitFor('marker gone at the observer', () => !at('10.255.0.0/24'));
        expect(peer.notifications).toEqual([]);
        expect(stateOf(r.from)).toBe('Established');
        for (const [prefix, want] of Object.entries(r.expect.routes)) {
          if (want === null) expect(at(prefix)).toBeUndefined();
          else {
            const attrs = at(prefix)?.attributes as Record<string, unknown> | undefined;
            expect(attrs).toBeDefined();
            // toEqual, key by key: a discarded attribute must be absent
            for (const [key, value] of Object.entries(want)) expect(attrs?.[key]).toEqual(value);
          }
        }
      }
      peer.sock.destroy();
    },
  );

  test('RFC 7606 §5.1: each UPDATE we send carries one kind of NLRI field, MP attributes first', async () => {
    const peer = await established('ebgp');
    const updates = () =>
      peer.messages.flatMap(({ raw, msg }) => (msg.type === 'update' ? [{ raw, msg }] : []));
    const seen = (field: 'announced' | 'withdrawn') =>
      updates().flatMap(({ msg }) =>
        field === 'announced'
          ? [...msg.nlri, ...(msg.mpReach?.nlri ?? [])]
          : [...msg.withdrawn, ...(msg.mpUnreach?.withdrawn ?? [])],
      );
    const both = ['10.9.0.0/24', '2001:db8:9::/48'];
    both.forEach((p) => o.originate(p));
    await waitFor('both announced to the scripted peer', () =>
      both.every((p) => seen('announced').includes(p)),
    );
    both.forEach((p) => o.withdraw(p));
    await waitFor('both withdrawn', () => both.every((p) => seen('withdrawn').includes(p)));
    for (const { raw, msg } of updates()) {
      const fields = [msg.withdrawn.length, msg.nlri.length, msg.mpReach, msg.mpUnreach];
      expect(fields.filter(Boolean).length).toBeLessThanOrEqual(1);
      // the type code of the first attribute (no withdrawn routes in an MP UPDATE)
      if (msg.mpReach || msg.mpUnreach) expect([0x0e, 0x0f]).toContain(raw[19 + 4 + 1]);
    }
    peer.sock.destroy();
  });
});

// ---------------------------------------------------------------------------------
// RFC 6608 and RFC 7607's OPEN rule: NOTIFICATIONs of the session itself

describe('FSM and OPEN errors (RFC 6608 §4, RFC 7607 §2)', () => {
  const OPEN = openOf('ebgp');
  const UPDATE = update(EBGP, P_NLRI);
  const cases: Array<[string, Buffer[], [number, number, string]]> = [
    ['6608: KEEPALIVE in OpenSent', [KEEPALIVE], [5, 1, '04']],
    ['6608: UPDATE in OpenSent', [UPDATE], [5, 1, '02']],
    ['6608: ROUTE-REFRESH in OpenSent', [ROUTE_REFRESH], [5, 1, '05']],
    ['6608: UPDATE in OpenConfirm', [OPEN, UPDATE], [5, 2, '02']],
    ['6608: OPEN in OpenConfirm', [OPEN, OPEN], [5, 2, '01']],
    ['6608: ROUTE-REFRESH in OpenConfirm', [OPEN, ROUTE_REFRESH], [5, 2, '05']],
    ['6608: OPEN in Established', [OPEN, KEEPALIVE, OPEN], [5, 3, '01']],
    [
      '6608: a malformed OPEN (version 3) in Established',
      [OPEN, KEEPALIVE, message(1, hex('03 fdea 001e 02020202 00'))],
      [5, 3, '01'],
    ],
    [
      '7607: My Autonomous System 0',
      [message(1, hex('04 0000 001e 02020202 08 0206 4104 0000fdea'))],
      [2, 2, ''],
    ],
    [
      '7607: 4-octet AS capability with AS 0',
      [message(1, hex('04 fdea 001e 02020202 08 0206 4104 00000000'))],
      [2, 2, ''],
    ],
  ];

  test.each(cases)('RFC %s', async (_name, send, want) => {
    const port = await freePort('127.0.0.1');
    await speaker({
      asn: 65000,
      routerId: '1.1.1.1',
      listen: { address: '127.0.0.1', port },
      peers: [{ address: '127.0.0.2', asn: 65002, passive: true, errorWaitTime: [0.01, 0.01] }],
    });
    const peer = dial(port, 'ebgp', send);
    const n = await waitFor('NOTIFICATION', () => peer.notifications[0]);
    expect([n.code, n.subcode, n.data.toString('hex')]).toEqual(want);
    peer.sock.destroy();
  });
});
