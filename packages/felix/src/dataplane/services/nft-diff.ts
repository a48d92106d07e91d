// nft scripts from service states: the whole table (first apply, and after a failure),
// or only what changed between two states. Each script is one `nft -f` transaction, so
// the kernel sees all of it or none of it. Pure.
import { staticPart, tableRef, type NftState } from './nft-render';

/** Rewrites the whole table atomically (the `add table` makes the delete safe when absent). */
export function fullScript(next: NftState): string {
  const t = tableRef(next.family);
  const out = [`add table ${t}`, `delete table ${t}`, ...staticPart(next.family)];
  for (const [name, set] of next.sets) out.push(`add set ${t} ${name} { ${set.decl} }`);
  for (const name of next.chains.keys()) out.push(`add chain ${t} ${name}`);
  for (const [name, rules] of next.chains)
    for (const r of rules) out.push(`add rule ${t} ${name} ${r}`);
  for (const [map, els] of next.elements) {
    for (const [k, v] of els) out.push(`add element ${t} ${map} { ${k} : ${v} }`);
  }
  return out.join('\n') + '\n';
}

const sameRules = (a: string[] | undefined, b: string[]) =>
  a !== undefined && a.length === b.length && a.every((r, i) => r === b[i]);

/**
 * Only what changed: a chain whose rules differ is flushed and refilled, map elements are
 * deleted and added one by one, and what is gone is removed once nothing refers to it.
 * Returns '' when nothing changed.
 */
export function diffScript(prev: NftState, next: NftState): string {
  const t = tableRef(next.family);
  const changedSets = new Set<string>();
  for (const [name, set] of next.sets) {
    const old = prev.sets.get(name);
    if (old && old.decl !== set.decl) changedSets.add(name);
  }
  const removedSets = [...prev.sets.keys()].filter((n) => !next.sets.has(n));
  const mentions = (rules: string[], sets: Iterable<string>) =>
    [...sets].some((s) => rules.some((r) => r.includes(`@${s} `) || r.endsWith(`@${s}`)));

  const added: string[] = [];
  const changed: string[] = [];
  for (const [name, rules] of next.chains) {
    if (!prev.chains.has(name)) added.push(name);
    else if (!sameRules(prev.chains.get(name), rules) || mentions(rules, changedSets)) {
      changed.push(name);
    }
  }
  const removed = [...prev.chains.keys()].filter((n) => !next.chains.has(n));

  const out: string[] = [];
  for (const n of added) out.push(`add chain ${t} ${n}`);
  for (const n of [...next.sets.keys()].filter((s) => !prev.sets.has(s))) {
    out.push(`add set ${t} ${n} { ${next.sets.get(n)!.decl} }`);
  }
  for (const n of [...changed, ...removed]) out.push(`flush chain ${t} ${n}`);

  const elementAdds: string[] = [];
  for (const [map, els] of next.elements) {
    const old = prev.elements.get(map) ?? new Map<string, string>();
    for (const [k, v] of old) {
      if (els.get(k) !== v) out.push(`delete element ${t} ${map} { ${k} }`);
    }
    for (const [k, v] of els) {
      if (old.get(k) !== v) elementAdds.push(`add element ${t} ${map} { ${k} : ${v} }`);
    }
  }
  for (const n of [...removedSets, ...changedSets]) out.push(`delete set ${t} ${n}`);
  for (const n of changedSets) out.push(`add set ${t} ${n} { ${next.sets.get(n)!.decl} }`);
  for (const n of [...added, ...changed]) {
    for (const r of next.chains.get(n)!) out.push(`add rule ${t} ${n} ${r}`);
  }
  out.push(...elementAdds);
  for (const n of removed) out.push(`delete chain ${t} ${n}`);
  return out.length === 0 ? '' : out.join('\n') + '\n';
}
