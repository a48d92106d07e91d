// Path attributes (RFC 4271 §4.3/§5, RFC 1997, 4456, 4760, 6793, 8092) with the
// revised error handling of RFC 7606: each malformed attribute is handled by its own
// rule (treat-as-withdraw, attribute-discard or session-reset), and the UPDATE by the
// strongest rule any of its attributes calls for (§3(h)).
import { AS_TRANS, AttrFlag, AttrType, ErrorCode, UpdateSubcode } from '../constants';
import {
  formatIpv6,
  numberToIpv4,
  parseIpv6,
  ipv4ToNumber,
  isIpv4Host,
  isMulticastPrefix,
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
  value: Buffer;
}

const OPT = AttrFlag.OPTIONAL;
const TRANS = AttrFlag.TRANSITIVE;

/** RFC 7606 §2's approaches to a malformed attribute. */
type Approach = 'treat-as-withdraw' | 'attribute-discard' | 'session-reset';

interface AttributeRule {
  name: string;
  /** The Optional and Transitive bits it must carry. */
  flags: number;
  /** What a malformed one does to its UPDATE; wrong O/T flags are malformed too (§3(c)). */
  malformed: Approach;
  /** Meaningful only inside the AS: from an external peer it is discarded, whatever it holds. */
  internalOnly?: boolean;
}

const WITHDRAW: Approach = 'treat-as-withdraw';
const DISCARD: Approach = 'attribute-discard';

/** The attributes we interpret, each with its section of RFC 7606 (or its own RFC). */
const RULES: Record<number, AttributeRule> = {
  [AttrType.ORIGIN]: { name: 'ORIGIN', flags: TRANS, malformed: WITHDRAW }, // §7.1
  [AttrType.AS_PATH]: { name: 'AS_PATH', flags: TRANS, malformed: WITHDRAW }, // §7.2
  [AttrType.NEXT_HOP]: { name: 'NEXT_HOP', flags: TRANS, malformed: WITHDRAW }, // §7.3
  [AttrType.MULTI_EXIT_DISC]: { name: 'MULTI_EXIT_DISC', flags: OPT, malformed: WITHDRAW }, // §7.4
  [AttrType.LOCAL_PREF]: {
    name: 'LOCAL_PREF',
    flags: TRANS,
    malformed: WITHDRAW,
    internalOnly: true,
  }, // §7.5
  [AttrType.ATOMIC_AGGREGATE]: { name: 'ATOMIC_AGGREGATE', flags: TRANS, malformed: DISCARD }, // §7.6
  [AttrType.AGGREGATOR]: { name: 'AGGREGATOR', flags: OPT | TRANS, malformed: DISCARD }, // §7.7
  [AttrType.COMMUNITIES]: { name: 'COMMUNITIES', flags: OPT | TRANS, malformed: WITHDRAW }, // §7.8
  [AttrType.ORIGINATOR_ID]: {
    name: 'ORIGINATOR_ID',
    flags: OPT,
    malformed: WITHDRAW,
    internalOnly: true,
  }, // §7.9
  [AttrType.CLUSTER_LIST]: {
    name: 'CLUSTER_LIST',
    flags: OPT,
    malformed: WITHDRAW,
    internalOnly: true,
  }, // §7.10
  [AttrType.MP_REACH_NLRI]: { name: 'MP_REACH_NLRI', flags: OPT, malformed: 'session-reset' }, // §7.11
  [AttrType.MP_UNREACH_NLRI]: { name: 'MP_UNREACH_NLRI', flags: OPT, malformed: 'session-reset' }, // §7.12
  [AttrType.AS4_PATH]: { name: 'AS4_PATH', flags: OPT | TRANS, malformed: DISCARD }, // RFC 6793 §6
  [AttrType.AS4_AGGREGATOR]: { name: 'AS4_AGGREGATOR', flags: OPT | TRANS, malformed: DISCARD }, // RFC 6793 §6
  [AttrType.LARGE_COMMUNITIES]: {
    name: 'LARGE_COMMUNITIES',
    flags: OPT | TRANS,
    malformed: WITHDRAW,
  }, // RFC 8092 §6
};

export function attributeName(type: number): string {
  return RULES[type]?.name ?? `attribute ${type}`;
}

/** The whole attribute as it was on the wire: the data field of its NOTIFICATION. */
function wireOf(a: RawAttribute): Buffer {
  const ext = a.flags & AttrFlag.EXTENDED_LENGTH;
  const head = Buffer.alloc(ext ? 4 : 3);
  head[0] = a.flags;
  head[1] = a.type;
  if (ext) head.writeUInt16BE(a.value.length, 2);
  else head[2] = a.value.length;
  return Buffer.concat([head, a.value]);
}

/**
 * An error that makes the UPDATE treat-as-withdraw: `error` is the NOTIFICATION RFC 4271
 * would send for it, which we do send when the UPDATE has no reachable NLRI (RFC 7606 §5.2).
 */
export interface WithdrawError {
  /** The attribute it is about; unset for the framing errors of §4. */
  type?: number;
  error: BgpError;
}

export interface DecodedAttributes {
  attributes: PathAttributes;
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /** MP_REACH_NLRI of a family we do not carry, with NLRI in it (reachable NLRI all the same). */
  otherFamilyReach?: boolean;
  /** Errors whose approach is treat-as-withdraw, in the order found. */
  errors: WithdrawError[];
  /** Attributes dropped (attribute discard), for the log. */
  discarded: string[];
  /** Multicast prefixes left out of MP_REACH_NLRI (RFC 4271 §6.3), for the log. */
  ignored: Prefix[];
  /** Type codes present, to check for missing well-known attributes. */
  present: Set<number>;
}

const malformedList = (why: string) =>
  new BgpError(
    ErrorCode.UPDATE_MESSAGE,
    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
    Buffer.alloc(0),
    why,
  );

/**
 * Splits the attribute section into TLVs. RFC 7606 §4: when the last attribute's length
 * runs past the section, or too few octets are left for an attribute header, the UPDATE is
 * treat-as-withdraw and the NLRI is found by the Total Attribute Length all the same; we
 * return the attributes before it and `framing` says what went wrong. An MP_REACH_NLRI or
 * MP_UNREACH_NLRI cut short cannot be parsed, so that is a session reset (§3(j)).
 */
function splitAttributes(s: Buffer): { raw: RawAttribute[]; framing?: string } {
  const raw: RawAttribute[] = [];
  let off = 0;
  while (off < s.length) {
    const left = s.length - off;
    const flags = s[off];
    const type = left >= 2 ? s[off + 1] : undefined;
    const head = flags & AttrFlag.EXTENDED_LENGTH ? 4 : 3;
    let why: string | undefined;
    if (left < head) why = `${left} octet(s) after the last attribute, too few for one`;
    else {
      const len = head === 4 ? s.readUInt16BE(off + 2) : s[off + 2];
      if (off + head + len <= s.length) {
        raw.push({ flags, type: type!, value: s.subarray(off + head, off + head + len) });
        off += head + len;
        continue;
      }
      why = `${attributeName(type!)} length ${len} runs past the attribute section`;
    }
    if (type === AttrType.MP_REACH_NLRI || type === AttrType.MP_UNREACH_NLRI)
      throw malformedList(why);
    return { raw, framing: why };
  }
  return { raw };
}

/**
 * An AS_PATH (or AS4_PATH) as segments, or a sentence saying why it is malformed
 * (RFC 7606 §7.2: unknown segment type, overrun, a lone octet left, empty segment).
 */
function decodeAsPath(v: Buffer, asnSize: 2 | 4): AsPathSegment[] | string {
  const segments: AsPathSegment[] = [];
  let off = 0;
  while (off < v.length) {
    if (off + 2 > v.length) return 'a lone octet after the last segment';
    const type = v[off];
    const count = v[off + 1];
    off += 2;
    if (type < 1 || type > 4) return `unknown segment type ${type}`;
    if (count === 0) return 'a segment of length 0';
    if (off + count * asnSize > v.length) return `a segment of ${count} ASNs runs past the end`;
    const asns: number[] = new Array(count);
    for (let i = 0; i < count; i++, off += asnSize) {
      asns[i] = asnSize === 4 ? v.readUInt32BE(off) : v.readUInt16BE(off);
    }
    segments.push({ type, asns });
  }
  return segments;
}

const hasAs0 = (path: AsPathSegment[]) => path.some((s) => s.asns.includes(0));
const hasConfed = (path: AsPathSegment[]) =>
  path.some(
    (s) =>
      s.type === AsPathSegmentType.AS_CONFED_SEQUENCE || s.type === AsPathSegmentType.AS_CONFED_SET,
  );

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

/** RFC 4760 §7: an MP attribute we cannot read resets the session with Optional Attribute Error. */
function mpError(a: RawAttribute, why: string): BgpError {
  return new BgpError(
    ErrorCode.UPDATE_MESSAGE,
    UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
    wireOf(a),
    `${attributeName(a.type)} ${why}`,
  );
}

function readPrefixList(a: RawAttribute, start: number, afi: Afi): Prefix[] {
  return readNlriList(a.value, start, a.value.length, afi, (at) =>
    mpError(a, `has a malformed prefix at offset ${at + start}`),
  );
}

/** RFC 4271 §6.3: multicast prefixes are semantically incorrect NLRI, ignored (and logged). */
export function withoutMulticast(prefixes: Prefix[], ignored: Prefix[]): Prefix[] {
  if (!prefixes.some(isMulticastPrefix)) return prefixes;
  for (const p of prefixes) if (isMulticastPrefix(p)) ignored.push(p);
  return prefixes.filter((p) => !isMulticastPrefix(p));
}

/** undefined: a family we do not carry (`nlri` says whether it announced anything). */
function decodeMpReach(a: RawAttribute, ignored: Prefix[]): MpReach | { nlri: boolean } {
  const v = a.value;
  if (v.length < 5) throw mpError(a, `too short (${v.length} octets)`); // RFC 7606 §5.3
  const afi = v.readUInt16BE(0);
  const safi = v[2];
  const nhLen = v[3];
  if (4 + nhLen + 1 > v.length)
    throw mpError(a, `next hop length ${nhLen} runs past the attribute`);
  if (safi !== 1 || (afi !== AFI_IPV4 && afi !== AFI_IPV6))
    return { nlri: v.length > 4 + nhLen + 1 }; // not a family we carry
  const nh = decodeMpNextHop(afi, v.subarray(4, 4 + nhLen));
  if (!nh) throw mpError(a, `next hop length ${nhLen} is invalid for AFI ${afi}`); // §7.11
  const nlri = withoutMulticast(readPrefixList(a, 4 + nhLen + 1, afi), ignored);
  return { afi, safi, ...nh, nlri };
}

function decodeMpUnreach(a: RawAttribute): MpUnreach | undefined {
  const v = a.value;
  if (v.length < 3) throw mpError(a, `too short (${v.length} octets)`); // RFC 7606 §5.3
  const afi = v.readUInt16BE(0);
  const safi = v[2];
  if (safi !== 1 || (afi !== AFI_IPV4 && afi !== AFI_IPV6)) return undefined;
  return { afi, safi, withdrawn: readPrefixList(a, 3, afi) };
}

/** A list of 4-octet (or 12-octet) items, or undefined when the length is 0 or not a multiple. */
function items<T>(v: Buffer, size: number, read: (at: number) => T): T[] | undefined {
  if (v.length === 0 || v.length % size) return undefined;
  const out: T[] = [];
  for (let i = 0; i < v.length; i += size) out.push(read(i));
  return out;
}

/**
 * Decodes the attribute section of an UPDATE. Throws BgpError for session-reset errors;
 * returns treat-as-withdraw errors and discarded attributes on the result (RFC 7606), for
 * decodeUpdate to weigh against the NLRI the UPDATE carries.
 */
export function decodeAttributes(section: Buffer, ctx: CodecContext): DecodedAttributes {
  const { raw, framing } = splitAttributes(section);
  const attrs: PathAttributes = { origin: 0, asPath: [] };
  const out: DecodedAttributes = {
    attributes: attrs,
    errors: [],
    discarded: [],
    ignored: [],
    present: new Set(),
  };
  const u32 = (v: Buffer) => (v.length === 4 ? v.readUInt32BE(0) : undefined);
  /** `a` is malformed: handle it by its rule, with the NOTIFICATION RFC 4271 gives it. */
  const malformed = (a: RawAttribute, subcode: UpdateSubcode, why: string) => {
    // RFC 4271 §6.3: the data is the attribute, except for Malformed AS_PATH
    const data = subcode === UpdateSubcode.MALFORMED_AS_PATH ? Buffer.alloc(0) : wireOf(a);
    const error = new BgpError(ErrorCode.UPDATE_MESSAGE, subcode, data, why);
    const approach = RULES[a.type].malformed;
    if (approach === 'session-reset') throw error;
    if (approach === 'attribute-discard') out.discarded.push(why);
    else out.errors.push({ type: a.type, error });
  };
  const lengthError = (a: RawAttribute, expected: string) =>
    malformed(
      a,
      UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
      `${attributeName(a.type)} length ${a.value.length}, expected ${expected}`,
    );
  let as4Path: AsPathSegment[] | undefined;
  let as4Aggregator: { asn: number; address: string } | undefined;
  let asPathOk = false;
  for (const a of raw) {
    const rule = RULES[a.type];
    if (out.present.has(a.type)) {
      // RFC 7606 §3(g): a second MP attribute resets; any other repeat is dropped
      if (rule?.malformed === 'session-reset')
        throw malformedList(`${rule.name} appears more than once`);
      out.discarded.push(`duplicate ${attributeName(a.type)}`);
      continue;
    }
    out.present.add(a.type);
    const v = a.value;
    if (!rule) {
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
    if (rule.internalOnly && ctx.external) {
      out.discarded.push(`${rule.name} from an external peer`); // RFC 7606 §7.5, §7.9, §7.10
      continue;
    }
    // RFC 4271 §4.3: the Partial bit is 0 on well-known and optional non-transitive
    // attributes (only an optional transitive one passed on unrecognised may have it); a
    // set one conflicts with the type code as a wrong O/T bit does (§6.3), handled by the
    // attribute's own rule (RFC 7606 §3(c))
    const partialWrong = a.flags & AttrFlag.PARTIAL && rule.flags !== (OPT | TRANS);
    if ((a.flags & (OPT | TRANS)) !== rule.flags || partialWrong) {
      malformed(
        a,
        UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
        `${rule.name} has wrong flags 0x${a.flags.toString(16)}`,
      );
      continue;
    }
    switch (a.type) {
      case AttrType.ORIGIN:
        if (v.length !== 1) lengthError(a, '1');
        else if (v[0] > 2)
          malformed(a, UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE, `invalid ORIGIN value ${v[0]}`);
        else attrs.origin = v[0];
        break;
      case AttrType.AS_PATH: {
        const p = decodeAsPath(v, ctx.as4 ? 4 : 2);
        if (typeof p === 'string')
          malformed(a, UpdateSubcode.MALFORMED_AS_PATH, `malformed AS_PATH: ${p}`);
        else if (hasAs0(p)) malformed(a, UpdateSubcode.MALFORMED_AS_PATH, 'AS 0 in AS_PATH');
        // RFC 5065 §5: confederation segments from outside our confederation (we are in
        // none) make the AS_PATH malformed; checked on external peers, as BIRD and GoBGP do
        else if (ctx.external && hasConfed(p))
          malformed(a, UpdateSubcode.MALFORMED_AS_PATH, 'AS_CONFED segment from an external peer');
        else {
          attrs.asPath = p;
          asPathOk = true;
        }
        break;
      }
      case AttrType.NEXT_HOP: {
        if (v.length !== 4) {
          lengthError(a, '4');
          break;
        }
        // 0.0.0.0/8, multicast and class E are not host addresses: RFC 4271 §6.3 calls
        // that syntactically incorrect (Invalid NEXT_HOP), RFC 7606 §3(e) treat-as-withdraw
        if (!isIpv4Host(v.readUInt32BE(0)))
          malformed(
            a,
            UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE,
            `invalid NEXT_HOP ${ipv4At(v, 0)}`,
          );
        else attrs.nextHop = ipv4At(v, 0);
        break;
      }
      case AttrType.MULTI_EXIT_DISC:
        if (v.length !== 4) lengthError(a, '4');
        else attrs.med = u32(v);
        break;
      case AttrType.LOCAL_PREF:
        if (v.length !== 4) lengthError(a, '4');
        else attrs.localPref = u32(v);
        break;
      case AttrType.ATOMIC_AGGREGATE:
        if (v.length !== 0) lengthError(a, '0');
        else attrs.atomicAggregate = true;
        break;
      case AttrType.AGGREGATOR: {
        const size = ctx.as4 ? 8 : 6;
        if (v.length !== size) lengthError(a, String(size));
        else {
          const asn = ctx.as4 ? v.readUInt32BE(0) : v.readUInt16BE(0);
          if (asn === 0) malformed(a, UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'AS 0 in AGGREGATOR');
          else attrs.aggregator = { asn, address: ipv4At(v, size - 4) };
        }
        break;
      }
      case AttrType.COMMUNITIES: {
        const cs = items(v, 4, (i) => v.readUInt32BE(i));
        if (!cs) lengthError(a, 'a non-zero multiple of 4');
        else attrs.communities = cs;
        break;
      }
      case AttrType.ORIGINATOR_ID:
        if (v.length !== 4) lengthError(a, '4');
        else attrs.originatorId = ipv4At(v, 0);
        break;
      case AttrType.CLUSTER_LIST: {
        const ids = items(v, 4, (i) => ipv4At(v, i));
        if (!ids) lengthError(a, 'a non-zero multiple of 4');
        else attrs.clusterList = ids;
        break;
      }
      case AttrType.MP_REACH_NLRI: {
        const r = decodeMpReach(a, out.ignored);
        if ('afi' in r) out.mpReach = r;
        else out.otherFamilyReach = r.nlri;
        break;
      }
      case AttrType.MP_UNREACH_NLRI:
        out.mpUnreach = decodeMpUnreach(a);
        break;
      case AttrType.AS4_PATH: {
        if (ctx.as4) {
          out.discarded.push('AS4_PATH from a 4-octet-AS peer'); // RFC 6793 §6
          break;
        }
        const p = v.length === 0 ? 'empty' : decodeAsPath(v, 4);
        if (typeof p === 'string')
          malformed(a, UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, `malformed AS4_PATH: ${p}`);
        else if (hasAs0(p))
          malformed(a, UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'AS 0 in AS4_PATH');
        else {
          // RFC 6793 §6: confederation segments in AS4_PATH are dropped, the rest is used
          as4Path = p.filter(
            (s) => s.type === AsPathSegmentType.AS_SEQUENCE || s.type === AsPathSegmentType.AS_SET,
          );
          if (as4Path.length < p.length) out.discarded.push('confederation segments of AS4_PATH');
        }
        break;
      }
      case AttrType.AS4_AGGREGATOR:
        if (ctx.as4)
          out.discarded.push('AS4_AGGREGATOR from a 4-octet-AS peer'); // RFC 6793 §6
        else if (v.length !== 8) lengthError(a, '8');
        else if (v.readUInt32BE(0) === 0)
          malformed(a, UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, 'AS 0 in AS4_AGGREGATOR');
        else as4Aggregator = { asn: v.readUInt32BE(0), address: ipv4At(v, 4) };
        break;
      case AttrType.LARGE_COMMUNITIES: {
        const ls = items(v, 12, (i): [number, number, number] => [
          v.readUInt32BE(i),
          v.readUInt32BE(i + 4),
          v.readUInt32BE(i + 8),
        ]);
        if (!ls) lengthError(a, 'a non-zero multiple of 12');
        else attrs.largeCommunities = ls;
        break;
      }
    }
  }
  // RFC 6793 §4.2.3, from an OLD peer: an AGGREGATOR other than AS_TRANS means AS4_PATH and
  // AS4_AGGREGATOR are ignored; otherwise AS4_AGGREGATOR replaces it and the paths merge.
  if (!ctx.as4 && !(attrs.aggregator && attrs.aggregator.asn !== AS_TRANS)) {
    if (as4Aggregator && attrs.aggregator) attrs.aggregator = as4Aggregator;
    if (as4Path) attrs.asPath = mergeAs4Path(attrs.asPath, as4Path);
  }
  // RFC 4271 §6.3's optional leftmost-AS check on an external peer's path; RFC 7606 §7.2:
  // treat-as-withdraw
  if (ctx.firstAs !== undefined && asPathOk) {
    const first = attrs.asPath[0];
    if (first?.type !== AsPathSegmentType.AS_SEQUENCE || first.asns[0] !== ctx.firstAs) {
      out.errors.push({
        type: AttrType.AS_PATH,
        error: new BgpError(
          ErrorCode.UPDATE_MESSAGE,
          UpdateSubcode.MALFORMED_AS_PATH,
          Buffer.alloc(0),
          `AS_PATH does not start with the peer's AS ${ctx.firstAs}`,
        ),
      });
    }
  }
  if (framing) out.errors.push({ error: malformedList(framing) });
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
