// Prefixes: canonical text form (the RIB key), and the NLRI wire form of RFC 4271
// §4.3 (length in bits, then just enough octets). These run once per prefix on the
// ingest path, so they avoid regexes and intermediate arrays.
import { AFI_IPV4, AFI_IPV6, type Afi, type Prefix } from './types';

export function prefixAfi(p: Prefix): Afi {
  return p.includes(':') ? AFI_IPV6 : AFI_IPV4;
}

/** Parses dotted-quad IPv4 into an unsigned 32-bit number, or returns -1. */
export function ipv4ToNumber(s: string): number {
  let n = 0;
  let octet = -1;
  let dots = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (octet < 0 || dots === 3) return -1;
      n = n * 256 + octet;
      octet = -1;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // no leading zeros ("010" is ambiguous)
      octet = (octet < 0 ? 0 : octet * 10) + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || octet < 0) return -1;
  return n * 256 + octet;
}

export function numberToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * Whether an IPv4 address (as a number) can be a host's: not in 0.0.0.0/8 ("this network"),
 * 224.0.0.0/4 (multicast) or 240.0.0.0/4 (reserved, broadcast). RFC 4271 §6.3 asks that a
 * NEXT_HOP be "a valid IP host address".
 */
export function isIpv4Host(n: number): boolean {
  const first = n >>> 24;
  return first !== 0 && first < 224;
}

/** 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
export function isLoopback(addr: string): boolean {
  const v4 = ipv4ToNumber(addr.startsWith('::ffff:') ? addr.slice(7) : addr);
  if (v4 >= 0) return v4 >>> 24 === 127;
  const v6 = parseIpv6(addr);
  return v6 !== undefined && v6.subarray(0, 15).every((b) => b === 0) && v6[15] === 1;
}

/** Whether an address (IPv4 or IPv6 text) can be a host's: see isIpv4Host; IPv6 not :: nor ff00::/8. */
export function isHostAddress(addr: string): boolean {
  const v4 = ipv4ToNumber(addr);
  if (v4 >= 0) return isIpv4Host(v4);
  const v6 = parseIpv6(addr);
  return v6 !== undefined && v6[0] !== 0xff && v6.some((b) => b !== 0);
}

/**
 * Whether a canonical prefix lies inside 224.0.0.0/4 or ff00::/8: a multicast group, which
 * RFC 4271 §6.3 calls semantically incorrect in unicast NLRI. Cheap: it runs per prefix.
 */
export function isMulticastPrefix(p: Prefix): boolean {
  if (p.charCodeAt(0) === 50 /* 2 */ && p.charCodeAt(3) === 46 /* . */) {
    const first = (p.charCodeAt(1) - 48) * 10 + (p.charCodeAt(2) - 48) + 200;
    return first >= 224 && first <= 239 && Number(p.slice(p.lastIndexOf('/') + 1)) >= 4;
  }
  return (
    p.charCodeAt(0) === 102 /* f */ &&
    p.charCodeAt(1) === 102 &&
    p.charCodeAt(4) === 58 /* : */ &&
    Number(p.slice(p.lastIndexOf('/') + 1)) >= 8
  );
}

/** Is IPv4 `ip` inside `cidr` ("a.b.c.d/len")? False for anything that is not IPv4. */
export function inIpv4Subnet(ip: string, cidr: string): boolean {
  const [net, len] = cidr.split('/');
  const a = ipv4ToNumber(ip);
  const b = ipv4ToNumber(net);
  if (a < 0 || b < 0) return false;
  const bits = Number(len);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (a & mask) >>> 0 === (b & mask) >>> 0;
}

/** Parses an IPv6 address (RFC 4291 text, embedded IPv4 allowed) into 16 bytes, or undefined. */
export function parseIpv6(s: string): Buffer | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  // an IPv4 tail may only end the address ("0.0.0.0::1" is not one)
  const groups = (part: string, endsAddress: boolean): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i];
      if (endsAddress && i === items.length - 1 && g.includes('.')) {
        const v4 = ipv4ToNumber(g);
        if (v4 < 0) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? groups(halves[1], true) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const buf = Buffer.alloc(16);
  all.forEach((g, i) => buf.writeUInt16BE(g, i * 2));
  return buf;
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (>= 2) of zero groups as "::". */
export function formatIpv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] << 8) | b[i + 1]);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** Validates and canonicalises "addr/len" (host bits cleared). Throws naming the bad input. */
export function parsePrefix(text: string): Prefix {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? undefined : text.slice(slash + 1);
  if (lenText !== undefined && !/^(0|[1-9]\d{0,2})$/.test(lenText)) {
    throw new Error(`"${text}" is not a valid prefix: bad length "${lenText}"`);
  }
  const v4 = ipv4ToNumber(addr);
  if (v4 >= 0) {
    const len = lenText === undefined ? 32 : Number(lenText);
    if (len > 32) throw new Error(`"${text}" is not a valid prefix: IPv4 length ${len} > 32`);
    const masked = len === 0 ? 0 : (v4 & (0xffffffff << (32 - len))) >>> 0;
    return `${numberToIpv4(masked)}/${len}`;
  }
  const v6 = parseIpv6(addr);
  if (!v6) throw new Error(`"${text}" is not a valid prefix: "${addr}" is not an IP address`);
  const len = lenText === undefined ? 128 : Number(lenText);
  if (len > 128) throw new Error(`"${text}" is not a valid prefix: IPv6 length ${len} > 128`);
  maskBytes(v6, len);
  return `${formatIpv6(v6)}/${len}`;
}

function maskBytes(b: Buffer, len: number): void {
  for (let i = 0; i < b.length; i++) {
    const keep = len - i * 8;
    if (keep >= 8) continue;
    b[i] = keep <= 0 ? 0 : b[i] & (0xff << (8 - keep));
  }
}

/** Octets needed for a prefix of `len` bits. */
export function prefixBytes(len: number): number {
  return (len + 7) >> 3;
}

/** The wire size of a prefix in NLRI: one length octet plus the address octets. */
export function nlriSize(p: Prefix): number {
  const slash = p.lastIndexOf('/');
  return 1 + prefixBytes(Number(p.slice(slash + 1)));
}

/**
 * Writes one canonical prefix as NLRI at `off`; returns the next offset. Trusts that
 * `p` is canonical (from parsePrefix or the decoder).
 */
export function writeNlri(buf: Buffer, off: number, p: Prefix): number {
  const slash = p.lastIndexOf('/');
  const len = Number(p.slice(slash + 1));
  const nbytes = prefixBytes(len);
  buf[off++] = len;
  if (p.includes(':')) {
    const addr = parseIpv6(p.slice(0, slash))!;
    addr.copy(buf, off, 0, nbytes);
    return off + nbytes;
  }
  let octet = 0;
  let written = 0;
  for (let i = 0; i < slash && written < nbytes; i++) {
    const c = p.charCodeAt(i);
    if (c === 46) {
      buf[off + written++] = octet;
      octet = 0;
    } else octet = octet * 10 + (c - 48);
  }
  if (written < nbytes) buf[off + written++] = octet;
  return off + nbytes;
}

/**
 * Reads one NLRI prefix at `off` (bounded by `end`). Returns the canonical prefix and
 * the next offset, or undefined when the field is malformed (length too large, or
 * running past `end`): the caller decides which NOTIFICATION that is.
 */
export function readNlri(
  buf: Buffer,
  off: number,
  end: number,
  afi: Afi,
): { prefix: Prefix; next: number } | undefined {
  const len = buf[off];
  const max = afi === AFI_IPV4 ? 32 : 128;
  if (len > max) return undefined;
  const nbytes = (len + 7) >> 3;
  const start = off + 1;
  if (start + nbytes > end) return undefined;
  if (afi === AFI_IPV4) {
    // host bits beyond `len` in the last octet are ignored (RFC 4271 §4.3 "trailing bits")
    const mask = len & 7 ? (0xff << (8 - (len & 7))) & 0xff : 0xff;
    const o0 = nbytes > 0 ? buf[start] & (nbytes === 1 ? mask : 0xff) : 0;
    const o1 = nbytes > 1 ? buf[start + 1] & (nbytes === 2 ? mask : 0xff) : 0;
    const o2 = nbytes > 2 ? buf[start + 2] & (nbytes === 3 ? mask : 0xff) : 0;
    const o3 = nbytes > 3 ? buf[start + 3] & mask : 0;
    return { prefix: `${o0}.${o1}.${o2}.${o3}/${len}`, next: start + nbytes };
  }
  const addr = Buffer.alloc(16);
  buf.copy(addr, 0, start, start + nbytes);
  maskBytes(addr, len);
  return { prefix: `${formatIpv6(addr)}/${len}`, next: start + nbytes };
}

/**
 * Reads back-to-back NLRI prefixes in buf[start, end). A malformed one is reported by
 * `malformed(offset)`, which returns the error to throw: the NOTIFICATION differs by
 * field (RFC 4271 Invalid Network Field; RFC 4760 Optional Attribute Error).
 */
export function readNlriList(
  buf: Buffer,
  start: number,
  end: number,
  afi: Afi,
  malformed: (offset: number) => Error,
): Prefix[] {
  const out: Prefix[] = [];
  let off = start;
  if (afi === AFI_IPV4) {
    // readNlri inlined for IPv4, the bulk of a table: no result object per prefix
    while (off < end) {
      const len = buf[off];
      const nbytes = (len + 7) >> 3;
      const s = off + 1;
      if (len > 32 || s + nbytes > end) throw malformed(off - start);
      const mask = len & 7 ? (0xff << (8 - (len & 7))) & 0xff : 0xff;
      const o0 = nbytes > 0 ? buf[s] & (nbytes === 1 ? mask : 0xff) : 0;
      const o1 = nbytes > 1 ? buf[s + 1] & (nbytes === 2 ? mask : 0xff) : 0;
      const o2 = nbytes > 2 ? buf[s + 2] & (nbytes === 3 ? mask : 0xff) : 0;
      const o3 = nbytes > 3 ? buf[s + 3] & mask : 0;
      out.push(`${o0}.${o1}.${o2}.${o3}/${len}`);
      off = s + nbytes;
    }
    return out;
  }
  while (off < end) {
    const r = readNlri(buf, off, end, afi);
    if (!r) throw malformed(off - start);
    out.push(r.prefix);
    off = r.next;
  }
  return out;
}
