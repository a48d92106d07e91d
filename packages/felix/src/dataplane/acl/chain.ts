// A chain as tortie wants it: its name and rule specs (matches + target, without
// "-A <chain>"). Each rule is written with a leading comment "tortie:<hash>", the hash
// of (chain, previous rule's hash, rule) as Felix computes it, so a read-back finds a
// rule that was edited, removed, reordered or added by someone else. The hash only
// has to tell our own rules apart, not resist an adversary: a 64-bit non-cryptographic
// hash (two 32-bit multiply-xorshift lanes) is 4x cheaper than SHA-224 per rule, which
// matters at 100k rules.

export interface Chain {
  name: string;
  rules: string[];
  /** IP set names the rules refer to (they must exist before, and outlive, the rules). */
  ipsets?: string[];
}

export const RULE_HASH_LENGTH = 16;

/** 64 bits of hash of the strings (as if joined by NULs) as 16 hex characters. */
export function ruleHash(...parts: string[]): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (const s of parts) {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1, 2654435761);
    h2 = Math.imul(h2, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

const hashCache = new WeakMap<Chain, string[]>();

export function ruleHashes(c: Chain): string[] {
  let hs = hashCache.get(c);
  if (!hs) {
    let prev = '';
    hs = c.rules.map((r) => (prev = ruleHash(`${c.name}\u0000${prev}\u0000${r}`)));
    hashCache.set(c, hs);
  }
  return hs;
}

export const hashComment = (hash: string) => `-m comment --comment "tortie:${hash}"`;

/** The "-A" lines of a chain for iptables-restore. */
export function appendLines(c: Chain): string[] {
  const hs = ruleHashes(c);
  return c.rules.map((r, i) => `-A ${c.name} ${hashComment(hs[i])} ${r}`);
}

/** The hash in a rule line of iptables-save, quoted or not; undefined when it has none. */
export function hashOf(line: string): string | undefined {
  const m = /--comment "?tortie:([A-Za-z0-9_-]+)"?/.exec(line);
  return m ? m[1] : undefined;
}
