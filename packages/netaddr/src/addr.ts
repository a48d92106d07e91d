// Address arithmetic for IPv4 and IPv6 on bigints: parse, format (RFC 5952 for v6),
// contain, split a pool into blocks, index addresses inside a block. The one reader of
// addresses for every package but the BGP speaker's hot path (bgp-speaker/src/prefix.ts,
// whose test checks that it agrees with this one). Pure functions.
//
// Textual forms, as Go's net.ParseIP / ParseCIDR read them (Calico and Kubernetes are Go):
// dotted quads without leading zeros ("010.0.0.1" is refused: octal to some readers);
// IPv6 with "::" compression and an IPv4 tail ("::ffff:10.0.0.1" is the same address as
// "::ffff:a00:1"); no zone ("fe80::1%eth0" is refused). A CIDR's host bits are cleared
// ("10.0.0.5/24" is 10.0.0.0/24: Calico's rule nets and Kubernetes' ipBlock read it so).
import { isIP } from 'node:net';

export type IpVersion = 4 | 6;

export interface Cidr {
  version: IpVersion;
  /** The network address (host bits cleared). */
  base: bigint;
  prefix: number;
}

const BITS = { 4: 32, 6: 128 } as const;

export function bitsOf(v: IpVersion): number {
  return BITS[v];
}

/** The IP version of an address text, 0 when it is not one (see the forms above). */
export function ipVersionOf(text: string): 0 | IpVersion {
  return text.includes('%') ? 0 : (isIP(text) as 0 | IpVersion);
}

export function parseIp(text: string): { version: IpVersion; value: bigint } {
  const version = ipVersionOf(text);
  if (version === 4) {
    const value = text.split('.').reduce((n, o) => (n << 8n) + BigInt(Number(o)), 0n);
    return { version, value };
  }
  if (version === 6) {
    if (text.includes('.')) {
      // IPv4-mapped / embedded tail: a:b::1.2.3.4
      const i = text.lastIndexOf(':');
      const v4 = parseIp(text.slice(i + 1)).value;
      const hi = (v4 >> 16n).toString(16);
      const lo = (v4 & 0xffffn).toString(16);
      return parseIp(`${text.slice(0, i + 1)}${hi}:${lo}`);
    }
    const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
    return { version, value: groups.reduce((n, g) => (n << 16n) + BigInt(parseInt(g, 16)), 0n) };
  }
  throw new Error(`"${text}" is not an IP address`);
}

export function formatIp(version: IpVersion, value: bigint): string {
  if (version === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(Number((value >> s) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Parses "addr/len" (or a bare address as a host route); throws naming the bad text. */
export function parseCidr(text: string): Cidr {
  const [addr, lenText, extra] = text.split('/');
  if (!ipVersionOf(addr)) throw new Error(`"${text}" is not a valid CIDR`);
  const { version, value } = parseIp(addr);
  const bits = BITS[version];
  const prefix = lenText === undefined ? bits : Number(lenText);
  // a prefix length is decimal digits without a leading zero ("/" alone is not /0)
  const badLen = lenText !== undefined && !/^(0|[1-9]\d{0,2})$/.test(lenText);
  if (extra !== undefined || badLen || prefix > bits) {
    throw new Error(`"${text}" is not a valid CIDR`);
  }
  return { version, base: value & netMask(version, prefix), prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.version, c.base)}/${c.prefix}`;
}

function netMask(version: IpVersion, prefix: number): bigint {
  const bits = BigInt(BITS[version]);
  const all = (1n << bits) - 1n;
  return (all >> BigInt(prefix)) ^ all;
}

export function size(c: Cidr): bigint {
  return 1n << BigInt(BITS[c.version] - c.prefix);
}

export function containsIp(c: Cidr, version: IpVersion, value: bigint): boolean {
  return version === c.version && value >= c.base && value < c.base + size(c);
}

/** True when `inner` lies entirely inside `outer`. */
export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && containsIp(outer, inner.version, inner.base);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return containsCidr(a, b) || containsCidr(b, a);
}

/** How many blocks of `blockPrefix` a pool holds. */
export function blockCount(pool: Cidr, blockPrefix: number): bigint {
  return 1n << BigInt(blockPrefix - pool.prefix);
}

/** The i-th block of `blockPrefix` inside the pool. */
export function nthBlock(pool: Cidr, blockPrefix: number, i: bigint): Cidr {
  return {
    version: pool.version,
    base: pool.base + i * (1n << BigInt(BITS[pool.version] - blockPrefix)),
    prefix: blockPrefix,
  };
}

/** The block of `blockPrefix` containing an address. */
export function blockOf(version: IpVersion, value: bigint, blockPrefix: number): Cidr {
  return { version, base: value & netMask(version, blockPrefix), prefix: blockPrefix };
}

/** Address at ordinal `n` of a block, and back. */
export function ipAt(block: Cidr, n: number): string {
  return formatIp(block.version, block.base + BigInt(n));
}

export function ordinalOf(block: Cidr, ip: string): number | undefined {
  const { version, value } = parseIp(ip);
  return containsIp(block, version, value) ? Number(value - block.base) : undefined;
}

/** Why `text` is not an address or address/prefix, or undefined when it is one. */
export function cidrProblem(text: string): string | undefined {
  try {
    parseCidr(text);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Whether address `ip` lies in `cidr` (a bare address is a host); false for bad text. */
export function ipInNet(ip: string, cidr: string): boolean {
  try {
    const a = parseIp(ip);
    return containsIp(parseCidr(cidr), a.version, a.value);
  } catch {
    return false;
  }
}
