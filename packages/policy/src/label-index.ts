// Which items (endpoints, network sets) each selector selects, kept up to date
// incrementally like Felix's label index: a label change re-checks only the selectors
// that read one of the changed keys, a selector change re-checks every item. This is
// what IP-set membership is computed from.
import {
  matches,
  parseSelector,
  selectorKeys,
  type Labels,
  type MatchContext,
  type Selector,
} from './selector';

export interface MatchEvents<S, I> {
  onMatchStarted?: (selector: S, item: I) => void;
  onMatchStopped?: (selector: S, item: I) => void;
}

export class LabelIndex<S = string, I = string> {
  private readonly selectors = new Map<S, { sel: Selector; keys: Set<string> }>();
  private readonly items = new Map<I, { labels: Labels; ctx: MatchContext }>();
  private readonly byKey = new Map<string, Set<S>>();
  /** Selectors that read no label (all(), global()): they depend only on the context. */
  private readonly keyless = new Set<S>();
  private readonly matching = new Map<S, Set<I>>();

  constructor(private readonly events: MatchEvents<S, I> = {}) {}

  updateSelector(id: S, text: string): void {
    this.deleteSelector(id);
    const sel = parseSelector(text);
    const keys = selectorKeys(sel);
    this.selectors.set(id, { sel, keys });
    if (keys.size === 0) this.keyless.add(id);
    for (const k of keys) {
      let set = this.byKey.get(k);
      if (!set) this.byKey.set(k, (set = new Set()));
      set.add(id);
    }
    this.matching.set(id, new Set());
    for (const [item, { labels, ctx }] of this.items)
      if (matches(sel, labels, ctx)) this.start(id, item);
  }

  deleteSelector(id: S): void {
    const s = this.selectors.get(id);
    if (!s) return;
    for (const item of [...(this.matching.get(id) ?? [])]) this.stop(id, item);
    for (const k of s.keys) this.byKey.get(k)?.delete(id);
    this.keyless.delete(id);
    this.selectors.delete(id);
    this.matching.delete(id);
  }

  updateLabels(item: I, labels: Labels, ctx: MatchContext = {}): void {
    const old = this.items.get(item);
    this.items.set(item, { labels, ctx });
    const candidates = new Set<S>();
    if (!old || old.ctx.global !== ctx.global) {
      for (const id of this.selectors.keys()) candidates.add(id);
    } else {
      for (const k of new Set([...Object.keys(old.labels), ...Object.keys(labels)])) {
        if (old.labels[k] === labels[k]) continue;
        for (const id of this.byKey.get(k) ?? []) candidates.add(id);
      }
    }
    for (const id of candidates) this.recheck(id, item, labels, ctx);
  }

  deleteLabels(item: I): void {
    if (!this.items.delete(item)) return;
    for (const [id, set] of this.matching) if (set.has(item)) this.stop(id, item);
  }

  /** Items a selector currently selects. */
  selected(id: S): ReadonlySet<I> {
    return this.matching.get(id) ?? new Set();
  }

  private recheck(id: S, item: I, labels: Labels, ctx: MatchContext): void {
    const now = matches(this.selectors.get(id)!.sel, labels, ctx);
    const was = this.matching.get(id)!.has(item);
    if (now && !was) this.start(id, item);
    else if (!now && was) this.stop(id, item);
  }

  private start(id: S, item: I): void {
    this.matching.get(id)!.add(item);
    this.events.onMatchStarted?.(id, item);
  }

  private stop(id: S, item: I): void {
    this.matching.get(id)!.delete(item);
    this.events.onMatchStopped?.(id, item);
  }
}
