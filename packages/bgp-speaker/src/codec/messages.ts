// BGP messages (RFC 4271 §4): decoding with binary-parser for the fixed layouts and
// TLV lists, encoding with Buffer writers. NLRI lists are read by a hand loop
// (prefix.ts readNlri): they are the hot path, ~1,000 per UPDATE, and a generated
// parser allocates an object and a Buffer per prefix where we need only the string.
import { Parser } from 'binary-parser';
import {
  BGP_VERSION,
  CapabilityCode,
  ErrorCode,
  HEADER_SIZE,
  HeaderSubcode,
  MAX_MESSAGE_SIZE,
  MessageType,
  MIN_LENGTH,
  OpenSubcode,
  UpdateSubcode,
} from '../constants';
import { numberToIpv4, ipv4ToNumber, readNlriList } from '../prefix';
import {
  AFI_IPV4,
  type BgpMessage,
  type Capability,
  type CodecContext,
  type NotificationMessage,
  type OpenMessage,
  type Prefix,
  type RouteRefreshMessage,
  type UpdateMessage,
} from '../types';
import { AttrType } from '../constants';
import type { Afi } from '../types';
import {
  decodeAttributes,
  withoutMulticast,
  encodeAttributes,
  encodeNlri,
  mpAttribute,
  mpReachHead,
  mpUnreachHead,
} from './attributes';
import { BgpError } from './errors';

const header = new Parser().buffer('marker', { length: 16 }).uint16be('length').uint8('type');

const openBody = new Parser()
  .uint8('version')
  .uint16be('myAs')
  .uint16be('holdTime')
  .uint32be('routerId')
  .uint8('optLen')
  .buffer('opt', { length: 'optLen' });

const tlv8 = new Parser().uint8('code').uint8('len').buffer('value', { length: 'len' });
const tlvList = new Parser().array('items', { type: tlv8, readUntil: 'eof' });

const notificationBody = new Parser()
  .uint8('code')
  .uint8('subcode')
  .buffer('data', { readUntil: 'eof' });

const routeRefreshBody = new Parser().uint16be('afi').uint8('subtype').uint8('safi');

const updateHead = new Parser().uint16be('withdrawnLen');

interface Tlv {
  code: number;
  len: number;
  value: Buffer;
}

/** Parses a list of (code, len, value) TLVs; undefined when one overruns the buffer. */
function parseTlvs(buf: Buffer): Tlv[] | undefined {
  let items: Tlv[];
  try {
    items = (tlvList.parse(buf) as { items: Tlv[] }).items;
  } catch {
    return undefined;
  }
  let consumed = 0;
  for (const t of items) {
    if (t.len === undefined || t.value.length !== t.len) return undefined;
    consumed += 2 + t.len;
  }
  return consumed === buf.length ? items : undefined;
}

const openError = (subcode: number, why: string, data = Buffer.alloc(0)) =>
  new BgpError(ErrorCode.OPEN_MESSAGE, subcode, data, why);

function decodeCapability(t: Tlv): Capability {
  const v = t.value;
  const bad = () => openError(0, `capability ${t.code} has invalid length ${t.len}`);
  switch (t.code) {
    case CapabilityCode.MULTIPROTOCOL:
      if (v.length !== 4) throw bad();
      return { code: 'multiprotocol', afi: v.readUInt16BE(0), safi: v[3] };
    case CapabilityCode.ROUTE_REFRESH:
      return { code: 'route-refresh' };
    case CapabilityCode.ENHANCED_ROUTE_REFRESH:
      return { code: 'enhanced-route-refresh' };
    case CapabilityCode.AS4:
      if (v.length !== 4) throw bad();
      return { code: 'as4', asn: v.readUInt32BE(0) };
    case CapabilityCode.GRACEFUL_RESTART: {
      if (v.length < 2 || (v.length - 2) % 4) throw bad();
      const w = v.readUInt16BE(0);
      const families = [];
      for (let i = 2; i < v.length; i += 4) {
        families.push({
          afi: v.readUInt16BE(i),
          safi: v[i + 2],
          forwardingPreserved: (v[i + 3] & 0x80) !== 0,
        });
      }
      return {
        code: 'graceful-restart',
        restarting: (w & 0x8000) !== 0,
        restartTime: w & 0xfff,
        families,
      };
    }
    case CapabilityCode.EXTENDED_NEXTHOP: {
      if (v.length % 6) throw bad();
      const entries = [];
      for (let i = 0; i < v.length; i += 6) {
        entries.push({
          afi: v.readUInt16BE(i),
          safi: v.readUInt16BE(i + 2),
          nextHopAfi: v.readUInt16BE(i + 4),
        });
      }
      return { code: 'extended-nexthop', entries };
    }
    default:
      return { code: 'unknown', type: t.code, value: Buffer.from(v) };
  }
}

function decodeOpen(body: Buffer): OpenMessage {
  const o = openBody.parse(body) as {
    version: number;
    myAs: number;
    holdTime: number;
    routerId: number;
    optLen: number;
    opt: Buffer;
  };
  if (o.version !== BGP_VERSION) {
    // data: the largest version we support (RFC 4271 §6.2)
    throw openError(
      OpenSubcode.UNSUPPORTED_VERSION,
      `unsupported BGP version ${o.version}`,
      Buffer.from([0, BGP_VERSION]),
    );
  }
  if (o.opt.length !== o.optLen || 10 + o.optLen !== body.length) {
    throw openError(0, `optional parameters length ${o.optLen} does not match the message`);
  }
  if (o.holdTime === 1 || o.holdTime === 2) {
    throw openError(
      OpenSubcode.UNACCEPTABLE_HOLD_TIME,
      `hold time ${o.holdTime}s is not acceptable`,
    );
  }
  if (o.routerId === 0) throw openError(OpenSubcode.BAD_BGP_IDENTIFIER, 'BGP identifier 0.0.0.0');
  const params = parseTlvs(o.opt);
  if (!params) throw openError(0, 'malformed optional parameters');
  const capabilities: Capability[] = [];
  for (const p of params) {
    if (p.code !== 2) {
      throw openError(
        OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
        `unsupported optional parameter ${p.code}`,
      );
    }
    const caps = parseTlvs(p.value);
    if (!caps) throw openError(0, 'malformed capabilities');
    for (const c of caps) capabilities.push(decodeCapability(c));
  }
  return {
    type: 'open',
    version: o.version,
    myAs: o.myAs,
    holdTime: o.holdTime,
    routerId: numberToIpv4(o.routerId),
    capabilities,
  };
}

function readIpv4Prefixes(buf: Buffer, start: number, end: number, field: string): Prefix[] {
  return readNlriList(
    buf,
    start,
    end,
    AFI_IPV4,
    (at) =>
      new BgpError(
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.INVALID_NETWORK_FIELD,
        Buffer.alloc(0),
        `${field}: malformed prefix at offset ${at}`,
      ),
  );
}

function decodeUpdate(body: Buffer, ctx: CodecContext): UpdateMessage {
  const malformed = (why: string) =>
    new BgpError(
      ErrorCode.UPDATE_MESSAGE,
      UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
      Buffer.alloc(0),
      why,
    );
  const { withdrawnLen } = updateHead.parse(body) as { withdrawnLen: number };
  // RFC 7606 §3(b): lengths that overrun the message reset the session
  if (2 + withdrawnLen + 2 > body.length)
    throw malformed(`withdrawn routes length ${withdrawnLen} overruns the message`);
  const attrLen = body.readUInt16BE(2 + withdrawnLen);
  const attrStart = 4 + withdrawnLen;
  if (attrStart + attrLen > body.length)
    throw malformed(`total path attribute length ${attrLen} overruns the message`);
  // §3(i), §3(j), §5.3: both prefix fields must parse, or nothing can be withdrawn
  const withdrawn = readIpv4Prefixes(body, 2, 2 + withdrawnLen, 'withdrawn routes');
  const announced = readIpv4Prefixes(body, attrStart + attrLen, body.length, 'NLRI');
  const ignored: Prefix[] = [];
  const nlri = withoutMulticast(announced, ignored);
  const msg: UpdateMessage = { type: 'update', withdrawn, attributes: null, nlri };
  if (ignored.length) msg.ignored = ignored;
  if (attrLen === 0) {
    if (announced.length) {
      msg.treatAsWithdraw = 'NLRI without path attributes (ORIGIN, AS_PATH, NEXT_HOP missing)';
    }
    return msg;
  }
  const d = decodeAttributes(body.subarray(attrStart, attrStart + attrLen), ctx);
  msg.attributes = d.attributes;
  if (d.mpReach) msg.mpReach = d.mpReach;
  if (d.mpUnreach) msg.mpUnreach = d.mpUnreach;
  const discarded = d.discarded;
  let errors = d.errors;
  if (announced.length === 0 && d.mpReach && errors.some((e) => e.type === AttrType.NEXT_HOP)) {
    // RFC 4760 §3: a NEXT_HOP beside MP_REACH_NLRI alone is ignored, errors and all
    discarded.push('NEXT_HOP of an UPDATE whose NLRI is all in MP_REACH_NLRI');
    errors = errors.filter((e) => e.type !== AttrType.NEXT_HOP);
  }
  if (discarded.length) msg.discarded = discarded;
  if (d.ignored.length) msg.ignored = [...ignored, ...d.ignored];
  const reachable = announced.length > 0 || !!d.mpReach?.nlri.length || !!d.otherFamilyReach;
  // RFC 7606 §5.2: attributes without reachable NLRI and an error other than attribute
  // discard: we cannot be sure the NLRI parsed, so the session is reset, with the
  // NOTIFICATION RFC 4271 gives the first such error
  if (errors.length && !reachable) throw errors[0].error;
  const why = errors.map((e) => e.error.message);
  // Missing well-known attributes (RFC 4271 §6.3, treat-as-withdraw per RFC 7606 §3(d)).
  if (reachable) {
    const missing: string[] = [];
    if (!d.present.has(AttrType.ORIGIN)) missing.push('ORIGIN');
    if (!d.present.has(AttrType.AS_PATH)) missing.push('AS_PATH');
    if (announced.length && !d.present.has(AttrType.NEXT_HOP)) missing.push('NEXT_HOP');
    if (missing.length) why.push(`missing well-known attribute ${missing.join(', ')}`);
  }
  if (why.length) msg.treatAsWithdraw = why.join('; ');
  return msg;
}

function decodeNotification(body: Buffer): NotificationMessage {
  const n = notificationBody.parse(body) as { code: number; subcode: number; data: Buffer };
  return { type: 'notification', code: n.code, subcode: n.subcode, data: Buffer.from(n.data) };
}

function decodeRouteRefresh(body: Buffer): RouteRefreshMessage {
  if (body.length !== 4) {
    throw new BgpError(
      ErrorCode.ROUTE_REFRESH,
      1,
      Buffer.alloc(0),
      `ROUTE-REFRESH length ${body.length + HEADER_SIZE} != 23`,
    );
  }
  const r = routeRefreshBody.parse(body) as { afi: number; subtype: number; safi: number };
  return { type: 'route-refresh', afi: r.afi, subtype: r.subtype, safi: r.safi };
}

const headerError = (subcode: number, data: Buffer, why: string) =>
  new BgpError(ErrorCode.MESSAGE_HEADER, subcode, data, why);

/** Validates a message header (RFC 4271 §6.1); returns (length, type). */
export function checkHeader(buf: Buffer): { length: number; type: number } {
  const h = header.parse(buf) as { marker: Buffer; length: number; type: number };
  for (let i = 0; i < 16; i++) {
    if (h.marker[i] !== 0xff)
      throw headerError(
        HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED,
        Buffer.alloc(0),
        'marker is not all ones',
      );
  }
  const lenData = Buffer.from([h.length >> 8, h.length & 255]);
  if (h.length < HEADER_SIZE || h.length > MAX_MESSAGE_SIZE) {
    throw headerError(
      HeaderSubcode.BAD_MESSAGE_LENGTH,
      lenData,
      `message length ${h.length} outside 19..4096`,
    );
  }
  const min = MIN_LENGTH[h.type];
  if (min === undefined)
    throw headerError(
      HeaderSubcode.BAD_MESSAGE_TYPE,
      Buffer.from([h.type]),
      `unknown message type ${h.type}`,
    );
  if (h.length < min || (h.type === MessageType.KEEPALIVE && h.length !== HEADER_SIZE)) {
    throw headerError(
      HeaderSubcode.BAD_MESSAGE_LENGTH,
      lenData,
      `message length ${h.length} is wrong for type ${h.type}`,
    );
  }
  return { length: h.length, type: h.type };
}

/** Decodes one whole message (header included). Throws BgpError for protocol errors. */
export function decodeMessage(buf: Buffer, ctx: CodecContext): BgpMessage {
  if (buf.length < HEADER_SIZE) {
    throw headerError(
      HeaderSubcode.BAD_MESSAGE_LENGTH,
      Buffer.from([0, buf.length]),
      `message of ${buf.length} octets is shorter than a header`,
    );
  }
  const { length, type } = checkHeader(buf);
  if (length !== buf.length) {
    throw headerError(
      HeaderSubcode.BAD_MESSAGE_LENGTH,
      Buffer.from([length >> 8, length & 255]),
      `header says ${length} octets, message has ${buf.length}`,
    );
  }
  const body = buf.subarray(HEADER_SIZE);
  switch (type as MessageType) {
    case MessageType.OPEN:
      return decodeOpen(body);
    case MessageType.UPDATE: {
      const u = decodeUpdate(body, ctx);
      // RFC 7606 §6: the whole UPDATE goes to the log when something in it was malformed
      if (u.treatAsWithdraw || u.discarded) u.raw = Buffer.from(buf);
      return u;
    }
    case MessageType.NOTIFICATION:
      return decodeNotification(body);
    case MessageType.KEEPALIVE:
      return { type: 'keepalive' };
    case MessageType.ROUTE_REFRESH:
      return decodeRouteRefresh(body);
  }
}

/**
 * Splits a TCP byte stream into messages. Keeps partial data between chunks; the codec
 * context is read per message because the OPEN exchange changes it (4-octet AS), which is
 * why `feed` decodes each message only when the caller asks for the next one.
 */
export class MessageReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly ctx: () => CodecContext) {}

  /** Every whole message so far, decoded one at a time as the caller iterates. */
  *feed(chunk: Buffer): Generator<BgpMessage, void, undefined> {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    try {
      while (this.pending.length >= HEADER_SIZE) {
        const { length } = checkHeader(this.pending);
        if (this.pending.length < length) break;
        const msg = this.pending.subarray(0, length);
        this.pending = this.pending.subarray(length);
        let decoded: BgpMessage;
        try {
          decoded = decodeMessage(msg, this.ctx());
        } catch (err) {
          if (err instanceof BgpError) err.raw = Buffer.from(msg); // for the log (RFC 7606 §6)
          throw err;
        }
        yield decoded;
      }
    } finally {
      // copy the tail so a large chunk is not kept alive by a few leftover bytes
      this.pending = Buffer.from(this.pending);
    }
  }

  push(chunk: Buffer): BgpMessage[] {
    return [...this.feed(chunk)];
  }
}

// ---------------------------------------------------------------------------------
// Encoding

function frame(type: MessageType, body: Buffer): Buffer {
  const len = HEADER_SIZE + body.length;
  if (len > MAX_MESSAGE_SIZE)
    throw new Error(`message of ${len} octets exceeds ${MAX_MESSAGE_SIZE}`);
  const h = Buffer.alloc(HEADER_SIZE, 0xff);
  h.writeUInt16BE(len, 16);
  h[18] = type;
  return Buffer.concat([h, body]);
}

function encodeCapability(c: Capability): Buffer {
  const cap = (code: number, value: Buffer) =>
    Buffer.concat([Buffer.from([code, value.length]), value]);
  switch (c.code) {
    case 'multiprotocol':
      return cap(CapabilityCode.MULTIPROTOCOL, Buffer.from([c.afi >> 8, c.afi & 255, 0, c.safi]));
    case 'route-refresh':
      return cap(CapabilityCode.ROUTE_REFRESH, Buffer.alloc(0));
    case 'enhanced-route-refresh':
      return cap(CapabilityCode.ENHANCED_ROUTE_REFRESH, Buffer.alloc(0));
    case 'as4': {
      const v = Buffer.alloc(4);
      v.writeUInt32BE(c.asn);
      return cap(CapabilityCode.AS4, v);
    }
    case 'graceful-restart': {
      const v = Buffer.alloc(2 + c.families.length * 4);
      v.writeUInt16BE((c.restarting ? 0x8000 : 0) | (c.restartTime & 0xfff), 0);
      c.families.forEach((f, i) => {
        v.writeUInt16BE(f.afi, 2 + i * 4);
        v[4 + i * 4] = f.safi;
        v[5 + i * 4] = f.forwardingPreserved ? 0x80 : 0;
      });
      return cap(CapabilityCode.GRACEFUL_RESTART, v);
    }
    case 'extended-nexthop': {
      const v = Buffer.alloc(c.entries.length * 6);
      c.entries.forEach((e, i) => {
        v.writeUInt16BE(e.afi, i * 6);
        v.writeUInt16BE(e.safi, i * 6 + 2);
        v.writeUInt16BE(e.nextHopAfi, i * 6 + 4);
      });
      return cap(CapabilityCode.EXTENDED_NEXTHOP, v);
    }
    case 'unknown':
      return cap(c.type, c.value);
  }
}

function encodeOpen(m: OpenMessage): Buffer {
  const caps = Buffer.concat(m.capabilities.map(encodeCapability));
  const opt = caps.length ? Buffer.concat([Buffer.from([2, caps.length]), caps]) : Buffer.alloc(0);
  const body = Buffer.alloc(10);
  body[0] = m.version;
  body.writeUInt16BE(m.myAs, 1);
  body.writeUInt16BE(m.holdTime, 3);
  const id = ipv4ToNumber(m.routerId);
  if (id < 0) throw new Error(`router id "${m.routerId}" is not an IPv4 address`);
  body.writeUInt32BE(id, 5);
  body[9] = opt.length;
  return frame(MessageType.OPEN, Buffer.concat([body, opt]));
}

/** An UPDATE from its three parts, already encoded. */
export function updateFromParts(withdrawn: Buffer, attributes: Buffer, nlri: Buffer): Buffer {
  const body = Buffer.alloc(4 + withdrawn.length + attributes.length + nlri.length);
  body.writeUInt16BE(withdrawn.length, 0);
  withdrawn.copy(body, 2);
  body.writeUInt16BE(attributes.length, 2 + withdrawn.length);
  attributes.copy(body, 4 + withdrawn.length);
  nlri.copy(body, 4 + withdrawn.length + attributes.length);
  return frame(MessageType.UPDATE, body);
}

export function encodeMessage(msg: BgpMessage, ctx: CodecContext): Buffer {
  switch (msg.type) {
    case 'open':
      return encodeOpen(msg);
    case 'keepalive':
      return frame(MessageType.KEEPALIVE, Buffer.alloc(0));
    case 'notification':
      return frame(
        MessageType.NOTIFICATION,
        Buffer.concat([Buffer.from([msg.code, msg.subcode]), msg.data]),
      );
    case 'route-refresh':
      return frame(
        MessageType.ROUTE_REFRESH,
        Buffer.from([msg.afi >> 8, msg.afi & 255, msg.subtype, msg.safi]),
      );
    case 'update': {
      // A single UPDATE exactly as given (the packer in pack.ts splits large ones).
      const v4Attrs = msg.attributes
        ? encodeAttributes(msg.attributes, ctx, msg.nlri.length > 0 || !msg.mpReach)
        : Buffer.alloc(0);
      const mp: Buffer[] = [];
      if (msg.mpReach) {
        mp.push(
          mpReachAttr(
            msg.mpReach.afi,
            msg.mpReach.nextHop,
            msg.mpReach.nextHopLinkLocal,
            msg.mpReach.nlri,
          ),
        );
      }
      if (msg.mpUnreach) mp.push(mpUnreachAttr(msg.mpUnreach.afi, msg.mpUnreach.withdrawn));
      return updateFromParts(
        encodeNlri(msg.withdrawn),
        Buffer.concat([...mp, v4Attrs]),
        encodeNlri(msg.nlri),
      );
    }
  }
}

export function mpReachAttr(
  afi: Afi,
  nextHop: string,
  nextHopLinkLocal: string | undefined,
  nlri: Prefix[],
): Buffer {
  return mpAttribute(
    AttrType.MP_REACH_NLRI,
    mpReachHead(afi, nextHop, nextHopLinkLocal),
    encodeNlri(nlri),
  );
}

export function mpUnreachAttr(afi: Afi, withdrawn: Prefix[]): Buffer {
  return mpAttribute(AttrType.MP_UNREACH_NLRI, mpUnreachHead(afi), encodeNlri(withdrawn));
}
