// BGP communities as text: "aa:nn" (RFC 1997 COMMUNITIES, two 16-bit halves) and
// "aa:nn:mm" (RFC 8092 LARGE_COMMUNITY, three 32-bit parts), as Calico writes them in
// BGPConfiguration prefixAdvertisements and BGPFilter rules. The one parser of the
// speaker's config, its filters, its control socket and its users; errors name the value.
// Also BIRD's `bgp_community.add` / `bgp_large_community.add` on attributes. Pure.
import type { PathAttributes } from './types';

export type Community = { standard: number } | { large: [number, number, number] };

const PART = /^\d{1,10}$/;

/**
 * Parses "aa:nn" or "aa:nn:mm"; throws an Error naming the value and what is wrong with
 * it. `kind` restricts it to one of the two forms.
 */
export function parseCommunity(value: string, kind?: 'standard' | 'large'): Community {
  const parts = typeof value === 'string' ? value.split(':') : [];
  const shape = kind === 'standard' ? 'aa:nn' : kind === 'large' ? 'aa:nn:mm' : 'aa:nn or aa:nn:mm';
  const want = kind === 'standard' ? [2] : kind === 'large' ? [3] : [2, 3];
  if (!want.includes(parts.length) || !parts.every((p) => PART.test(p)))
    throw new Error(`community ${JSON.stringify(value)} is not ${shape} (decimal numbers)`);
  const n = parts.map(Number);
  if (n.length === 2) {
    if (n.some((x) => x > 0xffff))
      throw new Error(`community "${value}": both halves of aa:nn must be 0-65535`);
    return { standard: n[0] * 0x10000 + n[1] };
  }
  if (n.some((x) => x > 0xffffffff))
    throw new Error(`large community "${value}": each part of aa:nn:mm must be 0-4294967295`);
  return { large: [n[0], n[1], n[2]] };
}

/** "aa:nn" as the 32-bit COMMUNITIES value. */
export function parseStandardCommunity(value: string): number {
  return (parseCommunity(value, 'standard') as { standard: number }).standard;
}

/** "aa:nn:mm" as the three LARGE_COMMUNITY numbers. */
export function parseLargeCommunity(value: string): [number, number, number] {
  return (parseCommunity(value, 'large') as { large: [number, number, number] }).large;
}

/** Whether `value` parses (either form). */
export function isCommunity(value: string): boolean {
  try {
    parseCommunity(value);
    return true;
  } catch {
    return false;
  }
}

export function formatCommunity(c: Community): string {
  return 'standard' in c ? `${c.standard >>> 16}:${c.standard & 0xffff}` : c.large.join(':');
}

export function hasCommunity(a: PathAttributes | undefined, c: Community): boolean {
  if ('standard' in c) return !!a?.communities?.includes(c.standard);
  const [x, y, z] = c.large;
  return !!a?.largeCommunities?.some(([p, q, r]) => p === x && q === y && r === z);
}

/**
 * BIRD's `bgp_community.add(...)` / `bgp_large_community.add(...)`: appended unless the
 * route already carries it. Returns `a` itself when nothing changed.
 */
export function withCommunities(a: PathAttributes, cs: readonly Community[]): PathAttributes {
  let out = a;
  for (const c of cs) {
    if (hasCommunity(out, c)) continue;
    if (out === a) out = { ...a };
    if ('standard' in c) out.communities = [...(out.communities ?? []), c.standard];
    else out.largeCommunities = [...(out.largeCommunities ?? []), c.large];
  }
  return out;
}
