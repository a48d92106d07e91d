// One iptables table of one family, kept equal to tortie's desired chains with one
// `iptables-restore --noflush` per apply. Only chains set or deleted since the last
// apply are compared (a resync re-reads the kernel and compares everything); after a
// successful restore the table knows what it wrote without reading it back.
//
// Failure isolation: when the kernel rejects a restore that writes policy chains, the
// table commits again with those chains failing closed (a single DROP), then brings them
// back by bisection: every commit is a complete, safe state (each chain real or closed),
// and in the end only the chains the kernel rejects stay closed. Everything else is
// programmed, and later applies go on. A rejected chain is tried again when its rules
// change and at every resync.
import { ruleHashes, type Chain } from './chain';
import { findFailing } from './find-failing';
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

/** Which chains can fail alone (policy and profile chains), and how they fail closed. */
export interface Isolation {
  isolable(chain: string): boolean;
  failClosed(chain: string): Chain;
}

/** A chain the kernel refused: it is programmed closed instead. */
export interface Rejection {
  chain: string;
  /** What iptables-restore said when this chain alone was written. */
  error: string;
  since: Date;
}

interface RejectionState extends Rejection {
  /** The rules that were refused (a changed chain is tried again). */
  signature: string;
  /** Tried again at the next write (after a resync). */
  retry: boolean;
}

const signature = (c: Chain) => ruleHashes(c).join(',');

export class IptablesTable {
  private readonly desired = new Map<string, Chain>();
  private actual: TableState = emptyState();
  private loaded = false;
  private readonly dirty = new Set<string>();
  private anyDeleted = false;
  private readonly rejected = new Map<string, RejectionState>();
  /** Rules written by the last apply (for metrics). */
  lastPlan?: RestorePlan;

  constructor(
    readonly table: string,
    private readonly runner: IptablesRunner,
    private readonly hooks: Hook[],
    private readonly isolation?: Isolation,
  ) {}

  /** Wants `c` (replacing a chain of that name); unchanged rules are not rewritten. */
  setChain(c: Chain): void {
    const old = this.desired.get(c.name);
    this.desired.set(c.name, c);
    if (old && old.rules.length === c.rules.length && old.rules.every((r, i) => r === c.rules[i]))
      return;
    this.dirty.add(c.name);
    const r = this.rejected.get(c.name);
    if (r && r.signature !== signature(c)) this.rejected.delete(c.name); // new rules: try them
  }

  deleteChain(name: string): void {
    if (this.desired.delete(name)) this.anyDeleted = true;
    this.dirty.delete(name);
    this.rejected.delete(name);
  }

  /** Chains programmed closed because the kernel refused them. */
  rejections(): Rejection[] {
    return [...this.rejected.values()].map(({ chain, error, since }) => ({ chain, error, since }));
  }

  /** The desired chains with the rejected ones closed. */
  private effective(): Map<string, Chain> {
    const closed = [...this.rejected.values()].filter((r) => !r.retry);
    if (!closed.length || !this.isolation) return this.desired;
    const m = new Map(this.desired);
    for (const r of closed) if (m.has(r.chain)) m.set(r.chain, this.isolation.failClosed(r.chain));
    return m;
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
    for (const r of this.rejected.values()) r.retry = true;
  }

  /** The restore input the next apply would write (for tests and dry runs). */
  plan(): RestorePlan {
    return planRestore(this.table, this.effective(), this.actual, this.hooks, this.dirty);
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
        return this.isolate(plan, e as Error);
      }
      this.committed(plan);
    }
    this.dirty.clear();
    this.anyDeleted = false;
    this.lastPlan = plan;
    return plan;
  }

  /** The kernel holds `plan` now. */
  private committed(plan: RestorePlan): void {
    this.actual = stateAfter(this.actual, plan, this.effective(), this.hooks);
    // chains tried again after a resync and written real are rejected no more
    for (const n of plan.written) if (this.rejected.get(n)?.retry) this.rejected.delete(n);
  }

  /** Plans and writes what is dirty; the error if the kernel refused it (nothing changed). */
  private async commit(): Promise<Error | undefined> {
    const plan = this.plan();
    if (plan.chunks) {
      try {
        await this.runner.restore(this.table, plan.chunks());
      } catch (e) {
        return e as Error;
      }
      this.committed(plan);
    }
    this.dirty.clear();
    this.anyDeleted = false;
    return undefined;
  }

  /** A refused restore: close its policy chains, then bring them back by bisection. */
  private async isolate(plan: RestorePlan, error: Error): Promise<RestorePlan> {
    const fail = () => {
      this.loaded = false; // re-read before the next attempt: we do not know what is there
      return error;
    };
    const isolable = this.isolation?.isolable;
    const suspects = isolable ? plan.written.filter((n) => isolable(n) && this.desired.has(n)) : [];
    if (!suspects.length) throw fail();
    const close = (names: string[]) => {
      for (const n of names) {
        const old = this.rejected.get(n);
        this.rejected.set(n, {
          chain: n,
          error: old?.error ?? '',
          since: old?.since ?? new Date(),
          signature: signature(this.desired.get(n)!),
          retry: false,
        });
        this.dirty.add(n);
      }
    };
    close(suspects);
    // all of them closed: if the kernel still refuses, the fault is not in a policy chain
    if (await this.commit()) {
      for (const n of suspects) this.rejected.delete(n);
      throw fail();
    }
    const failing = await findFailing(suspects, error, async (members) => {
      for (const n of members) {
        this.rejected.delete(n);
        this.dirty.add(n);
      }
      const e = await this.commit();
      if (e) close(members);
      return e;
    });
    for (const f of failing) this.rejected.get(f.item)!.error = f.error.message;
    const done = {
      written: plan.written,
      deleted: plan.deleted,
      hooksInserted: plan.hooksInserted,
    };
    this.lastPlan = done;
    return done;
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
