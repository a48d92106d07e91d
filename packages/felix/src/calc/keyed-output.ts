// Desired values by key, diffed against what was last sent: flush() reports only keys
// whose value changed since, so re-deriving an unchanged value costs no update.
export class KeyedOutput<V> {
  private readonly desired = new Map<string, V>();
  private readonly sent = new Map<string, string>();
  private readonly dirty = new Set<string>();

  set(key: string, value: V | undefined): void {
    if (value === undefined) this.desired.delete(key);
    else this.desired.set(key, value);
    this.dirty.add(key);
  }

  get(key: string): V | undefined {
    return this.desired.get(key);
  }

  keys(): IterableIterator<string> {
    return this.desired.keys();
  }

  /** Changed values (sorted by key) and keys that went away. */
  flush(): { updates: V[]; removes: string[] } {
    const updates: V[] = [];
    const removes: string[] = [];
    for (const key of [...this.dirty].sort()) {
      const v = this.desired.get(key);
      if (v === undefined) {
        if (this.sent.delete(key)) removes.push(key);
        continue;
      }
      const json = JSON.stringify(v);
      if (this.sent.get(key) === json) continue;
      this.sent.set(key, json);
      updates.push(v);
    }
    this.dirty.clear();
    return { updates, removes };
  }
}
