// nft scripts from what changed: each is one `nft -f` transaction, so the kernel sees all
// of it or none of it. Pure.
import { TABLE_REF as T } from './names';
import type { NftChain } from './chains';

export interface NftSetSpec {
  name: string;
  decl: string;
}

/** Members of one set: added, deleted, or (interval sets, which merge) written whole. */
export interface ElementChange {
  set: string;
  add: string[];
  del: string[];
  /** the whole content: the set is flushed and refilled */
  refill?: string[];
}

export interface MapChange {
  map: string;
  /** [interface, verdict: "jump <chain>" or "goto <chain>"] */
  add: Array<[string, string]>;
  del: string[];
}

export interface NftChanges {
  /** rewrite the whole table (first apply, resync, after a failure) */
  full: boolean;
  /** maps to declare (full: every map of the table; else those new since the last write) */
  maps: string[];
  addSets: NftSetSpec[];
  elements: ElementChange[];
  addChains: NftChain[];
  replaceChains: NftChain[];
  mapChanges: MapChange[];
  delChains: string[];
  delSets: string[];
}

const CHUNK = 500;
const quote = (iface: string) => `"${iface}"`;

function* elementLines(verb: 'add' | 'delete', set: string, items: string[]): Generator<string> {
  for (let i = 0; i < items.length; i += CHUNK)
    yield `${verb} element ${T} ${set} { ${items.slice(i, i + CHUNK).join(', ')} }\n`;
}

/** The transaction, as pieces (streamed to nft while it is produced). */
export function* nftScript(c: NftChanges): Generator<string> {
  yield `add table ${T}\n`;
  if (c.full) yield `delete table ${T}\nadd table ${T}\n`;
  for (const m of c.maps) yield `add map ${T} ${m} { type ifname : verdict; }\n`;
  for (const s of c.addSets) yield `add set ${T} ${s.name} { ${s.decl} }\n`;
  for (const ch of c.addChains)
    yield ch.hook ? `add chain ${T} ${ch.name} { ${ch.hook} }\n` : `add chain ${T} ${ch.name}\n`;
  for (const e of c.elements) {
    if (e.refill) {
      yield `flush set ${T} ${e.set}\n`;
      yield* elementLines('add', e.set, e.refill);
      continue;
    }
    yield* elementLines('delete', e.set, e.del);
    yield* elementLines('add', e.set, e.add);
  }
  for (const ch of c.replaceChains) yield `flush chain ${T} ${ch.name}\n`;
  for (const ch of [...c.addChains, ...c.replaceChains]) {
    let out = '';
    for (const r of ch.rules) out += `add rule ${T} ${ch.name} ${r}\n`;
    yield out;
  }
  for (const m of c.mapChanges) {
    yield* elementLines('delete', m.map, m.del.map(quote));
    yield* elementLines(
      'add',
      m.map,
      m.add.map(([k, v]) => `${quote(k)} : ${v}`),
    );
  }
  // emptied first: a chain still jumped to by another one going away cannot be deleted
  for (const n of c.delChains) yield `flush chain ${T} ${n}\n`;
  for (const n of c.delChains) yield `delete chain ${T} ${n}\n`;
  for (const n of c.delSets) yield `delete set ${T} ${n}\n`;
}

export const isEmpty = (c: NftChanges) =>
  !c.full &&
  !c.maps.length &&
  !c.addSets.length &&
  !c.elements.length &&
  !c.addChains.length &&
  !c.replaceChains.length &&
  !c.mapChanges.length &&
  !c.delChains.length &&
  !c.delSets.length;
