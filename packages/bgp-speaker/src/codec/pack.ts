// UPDATE packing: many prefixes that share one attribute set go into as few UPDATEs
// as fit in the maximum message size (RFC 4271 §9.2), IPv4 in the classic fields and
// IPv6 in MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760).
import { HEADER_SIZE, MAX_MESSAGE_SIZE } from '../constants';
import { nlriSize, prefixAfi, writeNlri } from '../prefix';
import {
  AFI_IPV4,
  AFI_IPV6,
  type Afi,
  type CodecContext,
  type PathAttributes,
  type Prefix,
  type UpdateMessage,
} from '../types';
import { encodeAttributes, mpAttribute, mpReachHead, mpUnreachHead } from './attributes';
import { updateFromParts } from './messages';

/** UPDATE header + withdrawn length + attribute length. */
const UPDATE_OVERHEAD = HEADER_SIZE + 4;
/** MP attribute header with extended length. */
const MP_ATTR_HEADER = 4;

/** Splits prefixes into NLRI buffers of at most `room` octets each. */
function chunkNlri(prefixes: Prefix[], room: number): Buffer[] {
  if (room < 17) throw new Error(`path attributes leave only ${room} octets for NLRI`);
  const out: Buffer[] = [];
  let buf = Buffer.allocUnsafe(room);
  let off = 0;
  for (const p of prefixes) {
    if (off + nlriSize(p) > room) {
      out.push(buf.subarray(0, off));
      buf = Buffer.allocUnsafe(room);
      off = 0;
    }
    off = writeNlri(buf, off, p);
  }
  if (off > 0) out.push(buf.subarray(0, off));
  return out;
}

export interface UpdateContent {
  withdrawn?: Prefix[];
  attributes?: PathAttributes;
  nlri?: Prefix[];
}

/**
 * Encodes withdrawals and announcements (sharing `attributes`) into UPDATEs of at most
 * `maxSize` octets. Families never share a message.
 */
export function encodeUpdates(
  u: UpdateContent,
  ctx: CodecContext,
  maxSize = MAX_MESSAGE_SIZE,
): Buffer[] {
  const split = (ps: Prefix[] = []) => {
    const v4: Prefix[] = [];
    const v6: Prefix[] = [];
    for (const p of ps) (prefixAfi(p) === AFI_IPV4 ? v4 : v6).push(p);
    return { v4, v6 };
  };
  const w = split(u.withdrawn);
  const a = split(u.nlri);
  const out: Buffer[] = [];
  const empty = Buffer.alloc(0);
  for (const chunk of chunkNlri(w.v4, maxSize - UPDATE_OVERHEAD))
    out.push(updateFromParts(chunk, empty, empty));
  if (w.v6.length) {
    const head = mpUnreachHead(AFI_IPV6);
    for (const chunk of chunkNlri(w.v6, maxSize - UPDATE_OVERHEAD - MP_ATTR_HEADER - head.length)) {
      out.push(updateFromParts(empty, mpAttribute(15, head, chunk), empty));
    }
  }
  if ((a.v4.length || a.v6.length) && !u.attributes)
    throw new Error('announcing prefixes needs path attributes');
  if (a.v4.length) {
    if (!u.attributes!.nextHop) throw new Error('IPv4 announcement without a NEXT_HOP');
    const attrs = encodeAttributes(u.attributes!, ctx, true);
    for (const chunk of chunkNlri(a.v4, maxSize - UPDATE_OVERHEAD - attrs.length)) {
      out.push(updateFromParts(empty, attrs, chunk));
    }
  }
  if (a.v6.length) {
    const { nextHop, nextHopLinkLocal } = u.attributes!;
    if (!nextHop) throw new Error('IPv6 announcement without a next hop');
    const attrs = encodeAttributes(u.attributes!, ctx, false);
    const head = mpReachHead(AFI_IPV6, nextHop, nextHopLinkLocal);
    const room = maxSize - UPDATE_OVERHEAD - attrs.length - MP_ATTR_HEADER - head.length;
    for (const chunk of chunkNlri(a.v6, room)) {
      out.push(updateFromParts(empty, Buffer.concat([mpAttribute(14, head, chunk), attrs]), empty));
    }
  }
  return out;
}

/** RFC 4724 End-of-RIB: an empty UPDATE (IPv4) or one with an empty MP_UNREACH_NLRI. */
export function encodeEndOfRib(afi: Afi, _ctx: CodecContext): Buffer {
  const empty = Buffer.alloc(0);
  if (afi === AFI_IPV4) return updateFromParts(empty, empty, empty);
  return updateFromParts(empty, mpAttribute(15, mpUnreachHead(afi), empty), empty);
}

export function isEndOfRib(u: UpdateMessage): Afi | undefined {
  if (u.withdrawn.length || u.nlri.length || u.mpReach) return undefined;
  if (!u.attributes) return AFI_IPV4;
  if (u.mpUnreach && u.mpUnreach.withdrawn.length === 0) return u.mpUnreach.afi;
  return undefined;
}
