// nft scripts from service states: the whole table (first apply, after a failure, or when
// the pod networks change), or only what changed between two states. Each script is one
// `nft -f` transaction, so the kernel sees all of it or none of it. Pure.
import type { IpFamily } from './model';
import { staticPart, tableRef, type Fragment, type NftSet, type NftState } from './nft-render';
import type { Slot, TableChanges } from './nft-table';

const element = (k: string, v: string | undefined) => (v === undefined ? k : `${k} : ${v}`);

/** Rewrites the whole table atomically (the `add table` makes the delete safe when absent). */
export function fullScript(next: NftState): string {
  const t = tableRef(next.family);
  const out = [
    `add table ${t}`,
    `delete table ${t}`,
    ...staticPart(next.family, next.clusterCidrs),
  ];
  for (const frag of next.fragments.values()) {
    for (const [name, set] of frag.sets) out.push(`add set ${t} ${name} { ${set.decl} }`);
    for (const name of frag.chains.keys()) out.push(`add chain ${t} ${name}`);
  }
  for (const frag of next.fragments.values()) {
    for (const [name, rules] of frag.chains) {
      for (const r of rules) out.push(`add rule ${t} ${name} ${r}`);
    }
  }
  for (const [map, els] of next.elements) {
    for (const [k, v] of els) out.push(`add element ${t} ${map} { ${element(k, v)} }`);
  }
  return out.join('\n') + '\n';
}

/** The same items in the same order (===). */
export function sameItems<T>(a: readonly T[] | undefined, b: readonly T[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}
const EMPTY: Fragment = { chains: new Map(), sets: new Map(), elements: [] };

/**
 * Only what changed between two whole states: the fragments that are not the same object,
 * and every element. A change of the pod networks (the fixed part) is a full rewrite.
 * Returns '' when nothing changed.
 */
export function diffScript(prev: NftState, next: NftState): string {
  if (!sameItems(prev.clusterCidrs, next.clusterCidrs)) return fullScript(next);
  const fragments: TableChanges['fragments'] = [];
  for (const [key, frag] of next.fragments) {
    const old = prev.fragments.get(key);
    if (old !== frag) fragments.push([old, frag]);
  }
  for (const [key, frag] of prev.fragments)
    if (!next.fragments.has(key)) fragments.push([frag, undefined]);
  const elements: TableChanges['elements'] = [];
  const slot = (els: Map<string, string | undefined> | undefined, k: string): Slot =>
    els?.has(k) ? { v: els.get(k) } : undefined;
  for (const map of new Set([...prev.elements.keys(), ...next.elements.keys()])) {
    const a = prev.elements.get(map);
    const b = next.elements.get(map);
    for (const k of new Set([...(a?.keys() ?? []), ...(b?.keys() ?? [])]))
      elements.push([map, k, slot(a, k), slot(b, k)]);
  }
  return changeScript(next.family, { fragments, elements });
}

/**
 * The transaction for a set of changes: replaced fragments are compared chain by chain (a
 * changed chain is flushed and refilled), elements are deleted and added one by one, and
 * what is gone is removed once nothing refers to it. Returns '' when nothing changed.
 */
export function changeScript(family: IpFamily, changes: TableChanges): string {
  const t = tableRef(family);
  const addedChains: string[] = [];
  const changedChains: string[] = [];
  /** the rules of every added or changed chain */
  const fill = new Map<string, string[]>();
  const removedChains: string[] = [];
  const addedSets: [string, NftSet][] = [];
  const changedSets: [string, NftSet][] = [];
  const removedSets: string[] = [];
  const compare = (a: Fragment, b: Fragment) => {
    const reset = new Set<string>();
    for (const [name, set] of b.sets) {
      const old = a.sets.get(name);
      if (!old) addedSets.push([name, set]);
      else if (old.decl !== set.decl) {
        changedSets.push([name, set]);
        reset.add(name);
      }
    }
    for (const name of a.sets.keys()) if (!b.sets.has(name)) removedSets.push(name);
    const mentions = (rules: string[]) =>
      [...reset].some((s) => rules.some((r) => r.includes(`@${s} `)));
    for (const [name, rules] of b.chains) {
      if (!a.chains.has(name)) addedChains.push(name);
      else if (!sameItems(a.chains.get(name), rules) || mentions(rules)) changedChains.push(name);
      else continue;
      fill.set(name, rules);
    }
    for (const name of a.chains.keys()) if (!b.chains.has(name)) removedChains.push(name);
  };
  for (const [old, frag] of changes.fragments) compare(old ?? EMPTY, frag ?? EMPTY);

  const out: string[] = [];
  for (const n of addedChains) out.push(`add chain ${t} ${n}`);
  for (const [n, set] of addedSets) out.push(`add set ${t} ${n} { ${set.decl} }`);
  for (const n of [...changedChains, ...removedChains]) out.push(`flush chain ${t} ${n}`);
  const elementAdds: string[] = [];
  for (const [map, k, was, now] of changes.elements) {
    if (was?.v === now?.v && (was === undefined) === (now === undefined)) continue;
    if (was) out.push(`delete element ${t} ${map} { ${k} }`);
    if (now) elementAdds.push(`add element ${t} ${map} { ${element(k, now.v)} }`);
  }
  for (const n of [...removedSets, ...changedSets.map(([s]) => s)])
    out.push(`delete set ${t} ${n}`);
  for (const [n, set] of changedSets) out.push(`add set ${t} ${n} { ${set.decl} }`);
  for (const [n, rules] of fill) for (const r of rules) out.push(`add rule ${t} ${n} ${r}`);
  out.push(...elementAdds);
  for (const n of removedChains) out.push(`delete chain ${t} ${n}`);
  return out.length === 0 ? '' : out.join('\n') + '\n';
}
