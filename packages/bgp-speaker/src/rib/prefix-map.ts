// A Map keyed by prefixes, for the RIB's per-route tables (Adj-RIB-In, Loc-RIB). A
// JS Map with 1M string keys costs a hash-table entry and a key string per route
// (~70 B) and its lookups dominated ingest. Here an IPv4 prefix is held as numbers in
// an open-addressing table in one typed array (address; length and value id): 8 B per
// slot, no string, no object and no pointer per route, so the garbage collector has
// nothing to trace in it. Values are shared (a peer's routes point to one Path per attribute
// set): each distinct value gets a small id, counted by the slots that hold it, and
// is forgotten when the count drops to zero. Anything else (IPv6, or text not in
// canonical dotted-quad form) goes to an ordinary Map, so any Prefix string works as
// a key and comes back exactly as it was given.
//
// Linear probing with backward-shift deletion (no tombstones); the table doubles past
// 3/4 full and halves below 1/8. Iteration is in slot order, not insertion order, and
// the map must not be changed while it is iterated (except set() of a present key).
import type { Prefix } from '../types';

const MIN_CAPACITY = 16;

/** Set by parseV4: the prefix length of the last parsed key. */
let parsedLen = 0;
let lastKey: string | undefined;
let lastAddr = -1;
let lastLen = 0;

/**
 * The address of a canonical IPv4 prefix "a.b.c.d/len" (no leading zeros, len 0..32),
 * with its length in `parsedLen`; -1 for anything else. The last key's result is
 * remembered: the RIB looks the same prefix up in several tables in a row.
 */
function parseV4(p: string): number {
  if (p === lastKey) {
    parsedLen = lastLen;
    return lastAddr;
  }
  const n = p.length;
  let addr = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  for (; i < n; i++) {
    const c = p.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return -1; // leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46 /* . */ || c === 47 /* / */) {
      if (digits === 0) return -1;
      addr = addr * 256 + octet;
      octet = 0;
      digits = 0;
      if (c === 47) break;
      if (++dots > 3) return -1;
    } else return -1;
  }
  if (dots !== 3 || i >= n) return -1;
  let len = 0;
  digits = 0;
  for (i++; i < n; i++) {
    const c = p.charCodeAt(i);
    if (c < 48 || c > 57 || (digits === 1 && len === 0)) return -1;
    len = len * 10 + (c - 48);
    digits++;
  }
  if (digits === 0 || len > 32) return -1;
  lastKey = p;
  lastAddr = addr;
  lastLen = len;
  parsedLen = len;
  return addr;
}

function v4Text(addr: number, len: number): Prefix {
  return `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}/${len}`;
}

function hash(addr: number, len: number): number {
  let h = Math.imul(addr ^ (len << 27), 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

/** Distinct values with a reference count each, by small integer id. */
class ValueIds<V> {
  private readonly ids = new Map<V, number>();
  private values: V[] = [];
  private refs = new Int32Array(16);
  private readonly free: number[] = [];
  /** The last value held and its id: runs of routes share one value. */
  private last: V | undefined;
  private lastId = -1;

  /** The id of `v`, counted once more. */
  hold(v: V): number {
    let id = v === this.last ? this.lastId : this.ids.get(v);
    if (id === undefined) {
      id = this.free.pop() ?? this.values.length;
      if (id >= this.refs.length) {
        const refs = new Int32Array(this.refs.length * 2);
        refs.set(this.refs);
        this.refs = refs;
      }
      this.ids.set(v, id);
      this.values[id] = v;
    }
    this.last = v;
    this.lastId = id;
    this.refs[id]++;
    return id;
  }

  /** Counts `id` once less; at zero the value is forgotten and its id reused. */
  release(id: number): void {
    if (--this.refs[id] > 0) return;
    if (id === this.lastId) {
      this.last = undefined;
      this.lastId = -1;
    }
    this.ids.delete(this.values[id]);
    this.values[id] = undefined as V;
    this.free.push(id);
  }

  value(id: number): V {
    return this.values[id];
  }

  /** Distinct values held. */
  get size(): number {
    return this.ids.size;
  }
}

/** A slot's second word: (value id << 6) | (length + 1); 0 is a free slot. */
const meta = (vid: number, len: number) => ((vid << 6) | (len + 1)) >>> 0;
const MAX_VALUES = 1 << 26;

export class PrefixMap<V> {
  /** Two words per slot, side by side so a probe touches one cache line: address, meta. */
  private slots: Uint32Array;
  private mask: number;
  private v4 = 0;
  private vals = new ValueIds<V>();
  private readonly other = new Map<Prefix, V>();

  constructor() {
    this.slots = new Uint32Array(MIN_CAPACITY * 2);
    this.mask = MIN_CAPACITY - 1;
  }

  get size(): number {
    return this.v4 + this.other.size;
  }

  /** Distinct values held by IPv4 keys (for tests of the reference counts). */
  get distinctValues(): number {
    return this.vals.size;
  }

  /** Slot of addr/len, or -1. */
  private find(addr: number, len: number): number {
    const { slots, mask } = this;
    const tag = len + 1;
    for (let i = hash(addr, len) & mask; ; i = (i + 1) & mask) {
      const m = slots[2 * i + 1];
      if (m === 0) return -1;
      if ((m & 63) === tag && slots[2 * i] === addr) return i;
    }
  }

  get(key: Prefix): V | undefined {
    const addr = parseV4(key);
    if (addr < 0) return this.other.get(key);
    const i = this.find(addr, parsedLen);
    return i < 0 ? undefined : this.vals.value(this.slots[2 * i + 1] >>> 6);
  }

  has(key: Prefix): boolean {
    const addr = parseV4(key);
    if (addr < 0) return this.other.has(key);
    return this.find(addr, parsedLen) >= 0;
  }

  set(key: Prefix, value: V): this {
    this.swap(key, value);
    return this;
  }

  /** Sets `key` to `value` and returns what it was (undefined: absent): one lookup for both. */
  swap(key: Prefix, value: V): V | undefined {
    const addr = parseV4(key);
    if (addr < 0) {
      const old = this.other.get(key);
      this.other.set(key, value);
      return old;
    }
    const len = parsedLen;
    const tag = len + 1;
    const { slots, mask, vals } = this;
    let i = hash(addr, len) & mask;
    for (; ; i = (i + 1) & mask) {
      const m = slots[2 * i + 1];
      if (m === 0) break;
      if ((m & 63) === tag && slots[2 * i] === addr) {
        const oldId = m >>> 6;
        const old = vals.value(oldId);
        if (old !== value) {
          slots[2 * i + 1] = meta(this.hold(value), len);
          vals.release(oldId);
        }
        return old;
      }
    }
    slots[2 * i] = addr;
    slots[2 * i + 1] = meta(this.hold(value), len);
    if (++this.v4 > ((mask + 1) >>> 2) * 3) this.resize((mask + 1) * 2);
    return undefined;
  }

  private hold(value: V): number {
    const id = this.vals.hold(value);
    if (id >= MAX_VALUES) {
      this.vals.release(id);
      throw new Error(`PrefixMap: more than ${MAX_VALUES} distinct values`);
    }
    return id;
  }

  delete(key: Prefix): boolean {
    const addr = parseV4(key);
    if (addr < 0) return this.other.delete(key);
    let i = this.find(addr, parsedLen);
    if (i < 0) return false;
    const { slots, mask } = this;
    this.vals.release(slots[2 * i + 1] >>> 6);
    // backward shift: move later entries of the probe run into the hole, so lookups
    // never meet a gap before their entry
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const m = slots[2 * j + 1];
      if (m === 0) break;
      const home = hash(slots[2 * j], (m & 63) - 1) & mask;
      // the entry at j may move to i unless its home lies cyclically in (i, j]
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      slots[2 * i] = slots[2 * j];
      slots[2 * i + 1] = m;
      i = j;
    }
    slots[2 * i] = 0;
    slots[2 * i + 1] = 0;
    const cap = mask + 1;
    if (--this.v4 < cap >>> 3 && cap > MIN_CAPACITY) this.resize(cap >>> 1);
    return true;
  }

  clear(): void {
    this.other.clear();
    this.v4 = 0;
    this.slots = new Uint32Array(MIN_CAPACITY * 2);
    this.vals = new ValueIds<V>();
    this.mask = MIN_CAPACITY - 1;
  }

  *entries(): IterableIterator<[Prefix, V]> {
    const { slots, vals } = this;
    for (let i = 0; i < slots.length; i += 2) {
      const m = slots[i + 1];
      if (m !== 0) yield [v4Text(slots[i], (m & 63) - 1), vals.value(m >>> 6)];
    }
    yield* this.other.entries();
  }

  *keys(): IterableIterator<Prefix> {
    const { slots } = this;
    for (let i = 0; i < slots.length; i += 2) {
      const m = slots[i + 1];
      if (m !== 0) yield v4Text(slots[i], (m & 63) - 1);
    }
    yield* this.other.keys();
  }

  [Symbol.iterator](): IterableIterator<[Prefix, V]> {
    return this.entries();
  }

  /** Slots in the IPv4 table (for tests of growth and shrinking). */
  get capacity(): number {
    return this.mask + 1;
  }

  private resize(capacity: number): void {
    const old = this.slots;
    const cap = Math.max(MIN_CAPACITY, capacity);
    const mask = cap - 1;
    const slots = new Uint32Array(cap * 2);
    for (let s = 0; s < old.length; s += 2) {
      const m = old[s + 1];
      if (m === 0) continue;
      const addr = old[s];
      let i = hash(addr, (m & 63) - 1) & mask;
      while (slots[2 * i + 1] !== 0) i = (i + 1) & mask;
      slots[2 * i] = addr;
      slots[2 * i + 1] = m;
    }
    this.slots = slots;
    this.mask = mask;
  }
}

/**
 * `items` sorted by their prefix: IPv4 by address then length, then everything else by
 * its text. The tables iterate in hash order; listings (routes, tortie-bgp routes) use this.
 */
export function sortByPrefix<T>(items: T[], prefixOf: (item: T) => Prefix): T[] {
  const keyed = items.map((item) => {
    const p = prefixOf(item);
    const addr = parseV4(p);
    return { item, p, k: addr < 0 ? Infinity : addr * 64 + parsedLen };
  });
  keyed.sort((x, y) => x.k - y.k || (x.k === Infinity ? (x.p < y.p ? -1 : x.p > y.p ? 1 : 0) : 0));
  return keyed.map((x) => x.item);
}
