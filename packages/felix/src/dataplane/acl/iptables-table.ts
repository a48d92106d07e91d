// One iptables table of one family, kept equal to tortie's desired chains with one
// `iptables-restore --noflush` per apply. Only chains set or deleted since the last
// apply are compared (a resync re-reads the kernel and compares everything); after a
// successful restore the table knows what it wrote without reading it back.
import type { Chain } from './chain';
import type { IptablesRunner } from './iptables-runner';
import {
  emptyState,
  parseSave,
  planRestore,
  stateAfter,
  type Hook,
  type RestorePlan,
  type TableState,
} from './restore-plan';

export class IptablesTable {
  private readonly desired = new Map<string, Chain>();
  private actual: TableState = emptyState();
  private loaded = false;
  private readonly dirty = new Set<string>();
  private anyDeleted = false;
  /** Rules written by the last apply (for metrics). */
  lastPlan?: RestorePlan;

  constructor(
    readonly table: string,
    private readonly runner: IptablesRunner,
    private readonly hooks: Hook[],
  ) {}

  /** Wants `c` (replacing a chain of that name); unchanged rules are not rewritten. */
  setChain(c: Chain): void {
    const old = this.desired.get(c.name);
    this.desired.set(c.name, c);
    if (old && old.rules.length === c.rules.length && old.rules.every((r, i) => r === c.rules[i]))
      return;
    this.dirty.add(c.name);
  }

  deleteChain(name: string): void {
    if (this.desired.delete(name)) this.anyDeleted = true;
    this.dirty.delete(name);
  }

  has(name: string): boolean {
    return this.desired.has(name);
  }

  chain(name: string): Chain | undefined {
    return this.desired.get(name);
  }

  chains(): IterableIterator<Chain> {
    return this.desired.values();
  }

  ruleCount(): number {
    let n = 0;
    for (const c of this.desired.values()) n += c.rules.length;
    return n;
  }

  /** Reads what the kernel has (before the first apply, and on every resync). */
  async load(): Promise<void> {
    this.actual = parseSave(await this.runner.save(this.table));
    this.loaded = true;
    for (const n of this.desired.keys()) this.dirty.add(n);
    this.anyDeleted = true;
  }

  /** The restore input the next apply would write (for tests and dry runs). */
  plan(): RestorePlan {
    return planRestore(this.table, this.desired, this.actual, this.hooks, this.dirty);
  }

  /** Reads the kernel's table unless it is known already. */
  async ensureLoaded(): Promise<void> {
    if (!this.loaded) await this.load();
  }

  /** The plan for what changed since the last write (the table must be loaded). */
  prepare(): RestorePlan {
    if (!this.dirty.size && !this.anyDeleted)
      return { written: [], deleted: [], hooksInserted: [] };
    return this.plan();
  }

  /** Writes a prepared plan in one restore; afterwards the table knows what it holds. */
  async write(plan: RestorePlan): Promise<RestorePlan> {
    if (plan.chunks) {
      try {
        await this.runner.restore(this.table, plan.chunks());
      } catch (e) {
        this.loaded = false; // re-read before the next attempt: we do not know what is there
        throw e;
      }
      this.actual = stateAfter(this.actual, plan, this.desired, this.hooks);
    }
    this.dirty.clear();
    this.anyDeleted = false;
    this.lastPlan = plan;
    return plan;
  }

  async apply(): Promise<RestorePlan> {
    await this.ensureLoaded();
    return this.write(this.prepare());
  }

  /** Re-reads the kernel and repairs whatever drifted. */
  async resync(): Promise<RestorePlan> {
    await this.load();
    return this.apply();
  }
}
