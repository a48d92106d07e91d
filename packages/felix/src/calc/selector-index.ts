// Which items each selector selects, kept up to date incrementally (Felix's label
// index). A label change re-checks only the selectors that read a changed key; a new
// item is checked against every selector and a new selector against every item (both
// unavoidable); a deleted item costs only the selectors that matched it. `evaluations`
// counts selector evaluations, so tests can prove work is bounded by the change.
import { matches, selectorKeys, type Labels, type Selector } from '@tortie/policy';

export interface IndexEvents<S, I> {
  started(selector: S, item: I): void;
  stopped(selector: S, item: I): void;
}

interface Item {
  labels: Labels;
  global: boolean;
}

export class SelectorIndex<S, I> {
  /** Selector evaluations so far. */
  evaluations = 0;
  private readonly selectors = new Map<S, { sel: Selector; keys: Set<string> }>();
  private readonly items = new Map<I, Item>();
  private readonly byKey = new Map<string, Set<S>>();
  private readonly bySelector = new Map<S, Set<I>>();
  private readonly byItem = new Map<I, Set<S>>();

  constructor(private readonly events: IndexEvents<S, I>) {}

  setSelector(id: S, sel: Selector): void {
    this.deleteSelector(id);
    const keys = selectorKeys(sel);
    this.selectors.set(id, { sel, keys });
    for (const k of keys) {
      let set = this.byKey.get(k);
      if (!set) this.byKey.set(k, (set = new Set()));
      set.add(id);
    }
    this.bySelector.set(id, new Set());
    for (const [item, it] of this.items) if (this.eval(sel, it)) this.start(id, item);
  }

  deleteSelector(id: S): void {
    const s = this.selectors.get(id);
    if (!s) return;
    for (const item of [...this.bySelector.get(id)!]) this.stop(id, item);
    for (const k of s.keys) {
      const set = this.byKey.get(k)!;
      set.delete(id);
      if (set.size === 0) this.byKey.delete(k);
    }
    this.selectors.delete(id);
    this.bySelector.delete(id);
  }

  hasSelector(id: S): boolean {
    return this.selectors.has(id);
  }

  setItem(id: I, labels: Labels, global: boolean): void {
    const old = this.items.get(id);
    const it = { labels, global };
    this.items.set(id, it);
    let candidates: Iterable<S>;
    if (!old || old.global !== global) {
      candidates = this.selectors.keys();
    } else {
      const changed = new Set<S>();
      for (const k of new Set([...Object.keys(old.labels), ...Object.keys(labels)])) {
        if (old.labels[k] === labels[k] && hasKey(old.labels, k) === hasKey(labels, k)) continue;
        for (const s of this.byKey.get(k) ?? []) changed.add(s);
      }
      candidates = changed;
    }
    for (const s of candidates) {
      const now = this.eval(this.selectors.get(s)!.sel, it);
      const was = this.bySelector.get(s)!.has(id);
      if (now && !was) this.start(s, id);
      else if (!now && was) this.stop(s, id);
    }
  }

  deleteItem(id: I): void {
    if (!this.items.delete(id)) return;
    for (const s of [...(this.byItem.get(id) ?? [])]) this.stop(s, id);
  }

  /** Items a selector selects now. */
  selected(id: S): ReadonlySet<I> {
    return this.bySelector.get(id) ?? EMPTY;
  }

  /** Selectors that select an item now. */
  selectorsOf(id: I): ReadonlySet<S> {
    return this.byItem.get(id) ?? EMPTY;
  }

  private eval(sel: Selector, it: Item): boolean {
    this.evaluations++;
    return matches(sel, it.labels, { global: it.global });
  }

  private start(s: S, i: I): void {
    this.bySelector.get(s)!.add(i);
    let set = this.byItem.get(i);
    if (!set) this.byItem.set(i, (set = new Set()));
    set.add(s);
    this.events.started(s, i);
  }

  private stop(s: S, i: I): void {
    this.bySelector.get(s)!.delete(i);
    const set = this.byItem.get(i);
    set?.delete(s);
    if (set?.size === 0) this.byItem.delete(i);
    this.events.stopped(s, i);
  }
}

const EMPTY: ReadonlySet<never> = new Set();
const hasKey = (l: Labels, k: string) => Object.prototype.hasOwnProperty.call(l, k);
