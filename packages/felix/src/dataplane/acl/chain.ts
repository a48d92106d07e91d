// A chain as tortie wants it: its name and rule specs (matches + target, without
// "-A <chain>"). Each rule is written with a leading comment "tortie:<hash>", the hash
// of (chain, previous rule's hash, rule) as Felix computes it, so a read-back finds a
// rule that was edited, removed, reordered or added by someone else.
import { shortHash } from './names';

export interface Chain {
  name: string;
  rules: string[];
  /** IP set names the rules refer to (they must exist before, and outlive, the rules). */
  ipsets?: string[];
}

export const RULE_HASH_LENGTH = 16;

const hashCache = new WeakMap<Chain, string[]>();

export function ruleHashes(c: Chain): string[] {
  let hs = hashCache.get(c);
  if (!hs) {
    let prev = '';
    hs = c.rules.map(
      (r) => (prev = shortHash(`${c.name}\u0000${prev}\u0000${r}`, RULE_HASH_LENGTH)),
    );
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
