// Both ACL backends program only chains something jumps to: a policy or profile chain
// lives while some endpoint chain jumps to it, and (nftables) an endpoint chain shared
// by endpoints with the same policies lives while one of them uses it. RefCounts keeps
// such chains by name with how many users each has; its first use and last release are
// what a backend acts on (render the chain, delete it). rulesReferenced says which
// policy and profile chains one endpoint chain jumps to.
import type { TierInfo } from '../../types';
import { tierPolicies, type Direction } from './endpoint-chains';

export class RefCounts<V> {
  private readonly items = new Map<string, { value: V; count: number }>();

  /** One more user of `key`, its value made by `make` for the first: true for the first. */
  use(key: string, make: () => V): boolean {
    const e = this.items.get(key);
    if (e) {
      e.count++;
      return false;
    }
    this.items.set(key, { value: make(), count: 1 });
    return true;
  }

  /** One user fewer: the value when that was the last one (the key is gone), else undefined. */
  release(key: string): V | undefined {
    const e = this.items.get(key);
    if (!e || --e.count > 0) return undefined;
    this.items.delete(key);
    return e.value;
  }

  get(key: string): V | undefined {
    return this.items.get(key)?.value;
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  *entries(): IterableIterator<[string, V]> {
    for (const [k, e] of this.items) yield [k, e.value];
  }

  *values(): IterableIterator<V> {
    for (const e of this.items.values()) yield e.value;
  }
}

/** A policy or profile chain, by what it holds: the rules of one direction. */
export interface RulesRef {
  kind: 'policy' | 'profile';
  id: string;
  direction: Direction;
}

/**
 * The policy and profile chains one endpoint chain jumps to, in order: each tier's
 * policies of its direction, then its profiles when `withProfiles` (the normal stage:
 * forward, untracked and pre-DNAT chains apply no profiles, as in Felix).
 */
export function rulesReferenced(
  e: { tiers: TierInfo[]; profileIds: string[]; direction: Direction },
  withProfiles: boolean,
): RulesRef[] {
  const out: RulesRef[] = [];
  for (const t of e.tiers)
    for (const id of tierPolicies(t, e.direction))
      out.push({ kind: 'policy', id, direction: e.direction });
  if (withProfiles)
    for (const id of e.profileIds) out.push({ kind: 'profile', id, direction: e.direction });
  return out;
}
