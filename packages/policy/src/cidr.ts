// Address-in-network checks for IPv4 and IPv6 (bigint for v6: rare in hot paths here).
import { isIP } from 'node:net';

function v4(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function v6(a: string): bigint {
  const [head, tail = ''] = a.includes('::') ? a.split('::') : [a, undefined as unknown as string];
  const parse = (s: string | undefined) => (s ? s.split(':').filter(Boolean) : []);
  const h = parse(head);
  const t = a.includes('::') ? parse(tail) : [];
  const groups = [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) + BigInt(parseInt(g, 16)), 0n);
}

/** Validates "addr/len" (or a bare address); returns undefined or the reason it is invalid. */
export function cidrProblem(cidr: string): string | undefined {
  const [addr, len, extra] = cidr.split('/');
  const fam = isIP(addr);
  if (!fam || extra !== undefined) return `"${cidr}" is not a valid CIDR`;
  if (len === undefined) return undefined;
  const n = Number(len);
  if (!/^\d+$/.test(len) || n > (fam === 4 ? 32 : 128)) return `"${cidr}" is not a valid CIDR`;
  return undefined;
}

export function ipInNet(ip: string, cidr: string): boolean {
  const [addr, lenText] = cidr.split('/');
  const fam = isIP(addr);
  if (fam !== isIP(ip) || fam === 0) return false;
  if (fam === 4) {
    const len = lenText === undefined ? 32 : Number(lenText);
    if (len === 0) return true;
    const mask = (0xffffffff << (32 - len)) >>> 0;
    return (v4(ip) & mask) >>> 0 === (v4(addr) & mask) >>> 0;
  }
  const len = BigInt(lenText === undefined ? 128 : Number(lenText));
  const shift = 128n - len;
  return v6(ip) >> shift === v6(addr) >> shift;
}

export function ipVersion(ip: string): 4 | 6 | 0 {
  return isIP(ip) as 4 | 6 | 0;
}
