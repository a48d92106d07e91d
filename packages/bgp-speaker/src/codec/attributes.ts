// Path attributes (RFC 4271 §4.3/§5, RFC 1997, 4456, 4760, 6793, 8092) with the
// revised error handling of RFC 7606: each malformed attribute is classified as
// treat-as-withdraw, attribute-discard or session-reset.
import { Parser } from 'binary-parser';
import { AS_TRANS, AttrFlag, AttrType, ErrorCode, UpdateSubcode } from '../constants';
import {
  formatIpv6,
  numberToIpv4,
  parseIpv6,
  ipv4ToNumber,
  readNlriList,
  writeNlri,
  nlriSize,
} from '../prefix';
import {
  AFI_IPV4,
  AFI_IPV6,
  AsPathSegmentType,
  type Afi,
  type AsPathSegment,
  type CodecContext,
  type MpReach,
  type MpUnreach,
  type PathAttributes,
  type Prefix,
  type UnknownAttribute,
} from '../types';
import { BgpError } from './errors';

interface RawAttribute {
  flags: number;
  type: number;
  len: number;
  value: Buffer;
}

/** One path attribute TLV; the length field is 1 or 2 octets per the Extended Length bit. */
const attributeTlv = new Parser()
  .uint8('flags')
  .uint8('type')
  .choice('len', {
    tag: function (this: { flags: number }) {
      return this.flags & AttrFlag.EXTENDED_LENGTH ? 1 : 0;
    },
    choices: { 0: 'uint8', 1: 'uint16be' },
  })
  .buffer('value', { length: 'len' });

const attributeList = new Parser().array('attrs', { type: attributeTlv, readUntil: 'eof' });

const OPT = AttrFlag.OPTIONAL;
const TRANS = AttrFlag.TRANSITIVE;

/** Expected Optional/Transitive bits of each attribute we interpret. */
const EXPECTED_FLAGS: Record<number, number> = {
  [AttrType.ORIGIN]: TRANS,
  [AttrType.AS_PATH]: TRANS,
  [AttrType.NEXT_HOP]: TRANS,
  [AttrType.MULTI_EXIT_DISC]: OPT,
  [AttrType.LOCAL_PREF]: TRANS,
  [AttrType.ATOMIC_AGGREGATE]: TRANS,
  [AttrType.AGGREGATOR]: OPT | TRANS,
  [AttrType.COMMUNITIES]: OPT | TRANS,
  [AttrType.ORIGINATOR_ID]: OPT,
  [AttrType.CLUSTER_LIST]: OPT,
  [AttrType.MP_REACH_NLRI]: OPT,
  [AttrType.MP_UNREACH_NLRI]: OPT,
  [AttrType.AS4_PATH]: OPT | TRANS,
  [AttrType.AS4_AGGREGATOR]: OPT | TRANS,
  [AttrType.LARGE_COMMUNITIES]: OPT | TRANS,
};

const ATTR_NAMES: Record<number, string> = {
  1: 'ORIGIN',
  2: 'AS_PATH',
  3: 'NEXT_HOP',
  4: 'MULTI_EXIT_DISC',
  5: 'LOCAL_PREF',
  6: 'ATOMIC_AGGREGATE',
  7: 'AGGREGATOR',
  8: 'COMMUNITIES',
  9: 'ORIGINATOR_ID',
  10: 'CLUSTER_LIST',
  14: 'MP_REACH_NLRI',
  15: 'MP_UNREACH_NLRI',
  17: 'AS4_PATH',
  18: 'AS4_AGGREGATOR',
  32: 'LARGE_COMMUNITIES',
};

export function attributeName(type: number): string {
  return ATTR_NAMES[type] ?? `attribute ${type}`;
}

/** The whole attribute as it was on the wire: the data field of its NOTIFICATION. */
function wireOf(a: RawAttribute): Buffer {
  const ext = a.flags & AttrFlag.EXTENDED_LENGTH;
  const head = Buffer.alloc(ext ? 4 : 3);
  head[0] = a.flags;
  head[1] = a.type;
  if (ext) head.writeUInt16BE(a.len, 2);
  else head[2] = a.len;
  return Buffer.concat([head, a.value]);
}

export interface DecodedAttributes {
  attributes: PathAttributes;
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /** Set when an error requires every announced prefix to be treated as withdrawn. */
  treatAsWithdraw?: string;
  discarded: string[];
  /** Type codes present, to check for missing well-known attributes. */
  present: Set<number>;
}

/** Splits the attribute section into TLVs; an overrun is a Malformed Attribute List. */
function splitAttributes(section: Buffer): RawAttribute[] {
  const malformed = (why: string) =>
    new BgpError(
      ErrorCode.UPDATE_MESSAGE,
      UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
      Buffer.alloc(0),
      why,
    );
  let raw: RawAttribute[];
  try {
    raw = (attributeList.parse(section) as { attrs: RawAttribute[] }).attrs;
  } catch {
    throw malformed('path attribute header runs past the attribute section');
  }
  // binary-parser truncates a value that overruns its buffer: check every length.
  let consumed = 0;
  for (const a of raw) {
    if (a.value.length !== a.len || a.len === undefined) {
      throw malformed(`${attributeName(a.type)} length ${a.len} runs past the attribute section`);
    }
    consumed += (a.flags & AttrFlag.EXTENDED_LENGTH ? 4 : 3) + a.len;
  }
  if (consumed !== section.length)
    throw malformed('path attribute header runs past the attribute section');
  return raw;
}

function decodeAsPath(v: Buffer, asnSize: 2 | 4): AsPathSegment[] | undefined {
  const segments: AsPathSegment[] = [];
  let off = 0;
  while (off < v.length) {
    if (off + 2 > v.length) return undefined;
    const type = v[off];
    const count = v[off + 1];
    off += 2;
    if (type < 1 || type > 4 || count === 0 || off + count * asnSize > v.length) return undefined;
    const asns: number[] = new Array(count);
    for (let i = 0; i < count; i++, off += asnSize) {
      asns[i] = asnSize === 4 ? v.readUInt32BE(off) : v.readUInt16BE(off);
    }
    segments.push({ type, asns });
  }
  return segments;
}

/** RFC 6793 §4.2.3: rebuild the 4-octet path from AS_PATH (2-octet) and AS4_PATH. */
export function mergeAs4Path(asPath: AsPathSegment[], as4Path: AsPathSegment[]): AsPathSegment[] {
  const count = (p: AsPathSegment[]) =>
    p.reduce(
      (n, s) =>
        n +
        (s.type === AsPathSegmentType.AS_SEQUENCE
          ? s.asns.length
          : s.type === AsPathSegmentType.AS_SET
            ? 1
            : 0),
      0,
    );
  const n = count(asPath);
  const m = count(as4Path);
  if (n < m) return asPath; // AS4_PATH is longer: ignore it
  let keep = n - m;
  const out: AsPathSegment[] = [];
  for (const s of asPath) {
    if (
      s.type === AsPathSegmentType.AS_CONFED_SEQUENCE ||
      s.type === AsPathSegmentType.AS_CONFED_SET
    ) {
      out.push(s);
      continue;
    }
    if (keep <= 0) break;
    if (s.type === AsPathSegmentType.AS_SET) {
      out.push(s);
      keep--;
    } else {
      const take = Math.min(keep, s.asns.length);
      out.push({ type: s.type, asns: s.asns.slice(0, take) });
      keep -= take;
    }
  }
  return [...out, ...as4Path];
}

function ipv4At(v: Buffer, off: number): string {
  return numberToIpv4(v.readUInt32BE(off));
}

function decodeMpNextHop(
  afi: Afi,
  nh: Buffer,
): { nextHop: string; nextHopLinkLocal?: string } | undefined {
  if (afi === AFI_IPV4 && nh.length === 4) return { nextHop: ipv4At(nh, 0) };
  if (nh.length === 16) return { nextHop: formatIpv6(nh) };
  if (nh.length === 32)
    return {
      nextHop: formatIpv6(nh.subarray(0, 16)),
      nextHopLinkLocal: formatIpv6(nh.subarray(16)),
    };
  return undefined;
}

function readPrefixList(v: Buffer, start: number, afi: Afi, what: string): Prefix[] {
  return readNlriList(
    v,
    start,
    v.length,
    afi,
    (at) =>
      new BgpError(
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
        Buffer.alloc(0),
        `${what}: malformed prefix at offset ${at + start}`,
      ),
  );
}

function decodeMpReach(a: RawAttribute): MpReach | undefined {
  const v = a.value;
  const fail = (why: string) =>
    new BgpError(
      ErrorCode.UPDATE_MESSAGE,
      UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
      wireOf(a),
      `MP_REACH_NLRI ${why}`,
    );
  if (v.length < 5) throw fail(`too short (${v.length} octets)`);
  const afi = v.readUInt16BE(0);
  const safi = v[2];
  const nhLen = v[3];
  if (4 + nhLen + 1 > v.length) throw fail(`next hop length ${nhLen} runs past the attribute`);
  if (safi !== 1 || (afi !== AFI_IPV4 && afi !== AFI_IPV6)) return undefined; // not a family we carry
  const nh = decodeMpNextHop(afi, v.subarray(4, 4 + nhLen));
  if (!nh) throw fail(`next hop length ${nhLen} is invalid for AFI ${afi}`);
  const nlri = readPrefixList(v, 4 + nhLen + 1, afi, 'MP_REACH_NLRI');
  return { afi, safi, ...nh, nlri };
}

function decodeMpUnreach(a: RawAttribute): MpUnreach | undefined {
  const v = a.value;
  if (v.length < 3) {
    throw new BgpError(
      ErrorCode.UPDATE_MESSAGE,
      UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
      wireOf(a),
      `MP_UNREACH_NLRI too short (${v.length} octets)`,
    );
  }
  const afi = v.readUInt16BE(0);
  const safi = v[2];
  if (safi !== 1 || (afi !== AFI_IPV4 && afi !== AFI_IPV6)) return undefined;
  return { afi, safi, withdrawn: readPrefixList(v, 3, afi, 'MP_UNREACH_NLRI') };
}

/**
 * Decodes the attribute section of an UPDATE. Throws BgpError for session-reset errors;
 * records treat-as-withdraw and attribute-discard cases on the result (RFC 7606).
 */
export function decodeAttributes(section: Buffer, ctx: CodecContext): DecodedAttributes {
  const raw = splitAttributes(section);
  const attrs: PathAttributes = { origin: 0, asPath: [] };
  const out: DecodedAttributes = { attributes: attrs, discarded: [], present: new Set() };
  const withdraw = (why: string) => {
    out.treatAsWithdraw ??= why;
  };
  let as4Path: AsPathSegment[] | undefined;
  let as4Aggregator: { asn: number; address: string } | undefined;
  for (const a of raw) {
    if (out.present.has(a.type)) {
      if (a.type === AttrType.MP_REACH_NLRI || a.type === AttrType.MP_UNREACH_NLRI) {
        throw new BgpError(
          ErrorCode.UPDATE_MESSAGE,
          UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
          Buffer.alloc(0),
          `${attributeName(a.type)} appears more than once`,
        );
      }
      out.discarded.push(`duplicate ${attributeName(a.type)}`); // RFC 7606 §3g: keep the first
      continue;
    }
    out.present.add(a.type);
    const v = a.value;
    const expected = EXPECTED_FLAGS[a.type];
    if (expected === undefined) {
      if (!(a.flags & OPT)) {
        throw new BgpError(
          ErrorCode.UPDATE_MESSAGE,
          UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
          wireOf(a),
          `unrecognized well-known attribute type ${a.type}`,
        );
      }
      if (a.flags & TRANS) {
        (attrs.unknown ??= []).push({ flags: a.flags, typeCode: a.type, value: Buffer.from(v) });
      }
      continue;
    }
    const name = attributeName(a.type);
    if ((a.flags & (OPT | TRANS)) !== expected) {
      if (a.type === AttrType.MP_REACH_NLRI || a.type === AttrType.MP_UNREACH_NLRI) {
        throw new BgpError(
          ErrorCode.UPDATE_MESSAGE,
          UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
          wireOf(a),
          `${name} has wrong flags 0x${a.flags.toString(16)}`,
        );
      }
      withdraw(`${name} has wrong flags 0x${a.flags.toString(16)}`);
      continue;
    }
    switch (a.type) {
      case AttrType.ORIGIN:
        if (v.length !== 1) withdraw(`ORIGIN length ${v.length} != 1`);
        else if (v[0] > 2) withdraw(`invalid ORIGIN value ${v[0]}`);
        else attrs.origin = v[0];
        break;
      case AttrType.AS_PATH: {
        const p = decodeAsPath(v, ctx.as4 ? 4 : 2);
        if (!p) withdraw('malformed AS_PATH');
        else attrs.asPath = p;
        break;
      }
      case AttrType.NEXT_HOP: {
        if (v.length !== 4) {
          withdraw(`NEXT_HOP length ${v.length} != 4`);
          break;
        }
        const nh = v.readUInt32BE(0);
        // 0.0.0.0 and class D/E are semantically invalid (RFC 4271 §6.3: ignore the route)
        if (nh === 0 || nh >>> 28 >= 0xe) withdraw(`invalid NEXT_HOP ${ipv4At(v, 0)}`);
        else attrs.nextHop = ipv4At(v, 0);
        break;
      }
      case AttrType.MULTI_EXIT_DISC:
        if (v.length !== 4) withdraw(`MULTI_EXIT_DISC length ${v.length} != 4`);
        else attrs.med = v.readUInt32BE(0);
        break;
      case AttrType.LOCAL_PREF:
        if (v.length !== 4) withdraw(`LOCAL_PREF length ${v.length} != 4`);
        else attrs.localPref = v.readUInt32BE(0);
        break;
      case AttrType.ATOMIC_AGGREGATE:
        if (v.length !== 0) out.discarded.push(`ATOMIC_AGGREGATE length ${v.length} != 0`);
        else attrs.atomicAggregate = true;
        break;
      case AttrType.AGGREGATOR: {
        const size = ctx.as4 ? 8 : 6;
        if (v.length !== size) out.discarded.push(`AGGREGATOR length ${v.length} != ${size}`);
        else
          attrs.aggregator = ctx.as4
            ? { asn: v.readUInt32BE(0), address: ipv4At(v, 4) }
            : { asn: v.readUInt16BE(0), address: ipv4At(v, 2) };
        break;
      }
      case AttrType.COMMUNITIES:
        if (v.length === 0 || v.length % 4)
          withdraw(`COMMUNITIES length ${v.length} is not a multiple of 4`);
        else {
          const cs: number[] = [];
          for (let i = 0; i < v.length; i += 4) cs.push(v.readUInt32BE(i));
          attrs.communities = cs;
        }
        break;
      case AttrType.ORIGINATOR_ID:
        if (v.length !== 4) withdraw(`ORIGINATOR_ID length ${v.length} != 4`);
        else attrs.originatorId = ipv4At(v, 0);
        break;
      case AttrType.CLUSTER_LIST:
        if (v.length === 0 || v.length % 4)
          withdraw(`CLUSTER_LIST length ${v.length} is not a multiple of 4`);
        else {
          const ids: string[] = [];
          for (let i = 0; i < v.length; i += 4) ids.push(ipv4At(v, i));
          attrs.clusterList = ids;
        }
        break;
      case AttrType.MP_REACH_NLRI:
        out.mpReach = decodeMpReach(a);
        break;
      case AttrType.MP_UNREACH_NLRI:
        out.mpUnreach = decodeMpUnreach(a);
        break;
      case AttrType.AS4_PATH: {
        const p = decodeAsPath(v, 4);
        if (!p) out.discarded.push('malformed AS4_PATH');
        else as4Path = p;
        break;
      }
      case AttrType.AS4_AGGREGATOR:
        if (v.length !== 8) out.discarded.push(`AS4_AGGREGATOR length ${v.length} != 8`);
        else as4Aggregator = { asn: v.readUInt32BE(0), address: ipv4At(v, 4) };
        break;
      case AttrType.LARGE_COMMUNITIES:
        if (v.length === 0 || v.length % 12)
          withdraw(`LARGE_COMMUNITIES length ${v.length} is not a multiple of 12`);
        else {
          const ls: Array<[number, number, number]> = [];
          for (let i = 0; i < v.length; i += 12)
            ls.push([v.readUInt32BE(i), v.readUInt32BE(i + 4), v.readUInt32BE(i + 8)]);
          attrs.largeCommunities = ls;
        }
        break;
    }
  }
  // RFC 6793: a NEW speaker ignores AS4_* from a NEW peer; from an OLD peer it merges them.
  if (!ctx.as4) {
    if (as4Path) attrs.asPath = mergeAs4Path(attrs.asPath, as4Path);
    if (as4Aggregator && attrs.aggregator?.asn === AS_TRANS) attrs.aggregator = as4Aggregator;
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Encoding

function attrHeader(flags: number, type: number, len: number): Buffer {
  if (len > 255) {
    const h = Buffer.alloc(4);
    h[0] = flags | AttrFlag.EXTENDED_LENGTH;
    h[1] = type;
    h.writeUInt16BE(len, 2);
    return h;
  }
  return Buffer.from([flags, type, len]);
}

function tlv(flags: number, type: number, value: Buffer): Buffer {
  return Buffer.concat([attrHeader(flags, type, value.length), value]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function ipv4Bytes(a: string): Buffer {
  const n = ipv4ToNumber(a);
  if (n < 0) throw new Error(`"${a}" is not an IPv4 address`);
  return u32(n);
}

function encodeAsPath(segments: AsPathSegment[], asnSize: 2 | 4): Buffer {
  const parts: Buffer[] = [];
  for (const s of segments) {
    // a segment holds at most 255 ASNs; split longer ones
    for (let i = 0; i < s.asns.length || (i === 0 && s.asns.length === 0); i += 255) {
      const chunk = s.asns.slice(i, i + 255);
      if (chunk.length === 0) break;
      const b = Buffer.alloc(2 + chunk.length * asnSize);
      b[0] = s.type;
      b[1] = chunk.length;
      chunk.forEach((asn, j) => {
        if (asnSize === 4) b.writeUInt32BE(asn, 2 + j * 4);
        else b.writeUInt16BE(asn > 0xffff ? AS_TRANS : asn, 2 + j * 2);
      });
      parts.push(b);
    }
  }
  return Buffer.concat(parts);
}

/**
 * Encodes the attributes shared by every prefix of an UPDATE, in type-code order,
 * without NEXT_HOP when `withNextHop` is false (IPv6-only UPDATEs carry it in MP_REACH).
 * MP attributes are appended by the packer.
 */
export function encodeAttributes(
  a: PathAttributes,
  ctx: CodecContext,
  withNextHop: boolean,
): Buffer {
  const parts: Buffer[] = [];
  parts.push(tlv(TRANS, AttrType.ORIGIN, Buffer.from([a.origin])));
  parts.push(tlv(TRANS, AttrType.AS_PATH, encodeAsPath(a.asPath, ctx.as4 ? 4 : 2)));
  if (withNextHop && a.nextHop) parts.push(tlv(TRANS, AttrType.NEXT_HOP, ipv4Bytes(a.nextHop)));
  if (a.med !== undefined) parts.push(tlv(OPT, AttrType.MULTI_EXIT_DISC, u32(a.med)));
  if (a.localPref !== undefined) parts.push(tlv(TRANS, AttrType.LOCAL_PREF, u32(a.localPref)));
  if (a.atomicAggregate) parts.push(tlv(TRANS, AttrType.ATOMIC_AGGREGATE, Buffer.alloc(0)));
  if (a.aggregator) {
    const { asn, address } = a.aggregator;
    const v = ctx.as4
      ? Buffer.concat([u32(asn), ipv4Bytes(address)])
      : Buffer.concat([
          Buffer.from([
            (asn > 0xffff ? AS_TRANS : asn) >> 8,
            (asn > 0xffff ? AS_TRANS : asn) & 255,
          ]),
          ipv4Bytes(address),
        ]);
    parts.push(tlv(OPT | TRANS, AttrType.AGGREGATOR, v));
  }
  if (a.communities?.length)
    parts.push(tlv(OPT | TRANS, AttrType.COMMUNITIES, Buffer.concat(a.communities.map(u32))));
  if (a.originatorId) parts.push(tlv(OPT, AttrType.ORIGINATOR_ID, ipv4Bytes(a.originatorId)));
  if (a.clusterList?.length)
    parts.push(tlv(OPT, AttrType.CLUSTER_LIST, Buffer.concat(a.clusterList.map(ipv4Bytes))));
  if (!ctx.as4) {
    // An OLD peer gets the true path in AS4_PATH when it does not fit in 2 octets.
    const big = (s: AsPathSegment) => s.asns.some((x) => x > 0xffff);
    const plain = a.asPath.filter(
      (s) => s.type === AsPathSegmentType.AS_SEQUENCE || s.type === AsPathSegmentType.AS_SET,
    );
    if (a.asPath.some(big)) parts.push(tlv(OPT | TRANS, AttrType.AS4_PATH, encodeAsPath(plain, 4)));
    if (a.aggregator && a.aggregator.asn > 0xffff) {
      parts.push(
        tlv(
          OPT | TRANS,
          AttrType.AS4_AGGREGATOR,
          Buffer.concat([u32(a.aggregator.asn), ipv4Bytes(a.aggregator.address)]),
        ),
      );
    }
  }
  if (a.largeCommunities?.length) {
    parts.push(
      tlv(
        OPT | TRANS,
        AttrType.LARGE_COMMUNITIES,
        Buffer.concat(a.largeCommunities.flat().map(u32)),
      ),
    );
  }
  for (const u of a.unknown ?? []) {
    // RFC 4271 §5: an unrecognised optional transitive attribute is passed on with Partial set.
    parts.push(tlv((u.flags & ~AttrFlag.EXTENDED_LENGTH) | AttrFlag.PARTIAL, u.typeCode, u.value));
  }
  return Buffer.concat(parts);
}

/** MP_REACH_NLRI header (everything before the NLRI) for an IPv6 (or IPv4) next hop. */
export function mpReachHead(afi: Afi, nextHop: string, nextHopLinkLocal?: string): Buffer {
  let nh: Buffer;
  if (afi === AFI_IPV4) nh = ipv4Bytes(nextHop);
  else {
    const g = parseIpv6(nextHop);
    if (!g) throw new Error(`"${nextHop}" is not an IPv6 next hop`);
    const ll = nextHopLinkLocal ? parseIpv6(nextHopLinkLocal) : undefined;
    nh = ll ? Buffer.concat([g, ll]) : g;
  }
  const head = Buffer.alloc(4);
  head.writeUInt16BE(afi, 0);
  head[2] = 1;
  head[3] = nh.length;
  return Buffer.concat([head, nh, Buffer.from([0])]);
}

export function mpAttribute(
  type: AttrType.MP_REACH_NLRI | AttrType.MP_UNREACH_NLRI,
  head: Buffer,
  nlri: Buffer,
): Buffer {
  const len = head.length + nlri.length;
  // MP attributes always use the extended length so the packer can size them up front
  const h = Buffer.alloc(4);
  h[0] = OPT | AttrFlag.EXTENDED_LENGTH;
  h[1] = type;
  h.writeUInt16BE(len, 2);
  return Buffer.concat([h, head, nlri]);
}

export function mpUnreachHead(afi: Afi): Buffer {
  return Buffer.from([afi >> 8, afi & 255, 1]);
}

/** Encodes prefixes back to back as NLRI. */
export function encodeNlri(prefixes: Prefix[]): Buffer {
  let size = 0;
  for (const p of prefixes) size += nlriSize(p);
  const buf = Buffer.alloc(size);
  let off = 0;
  for (const p of prefixes) off = writeNlri(buf, off, p);
  return buf;
}

export type { UnknownAttribute };
