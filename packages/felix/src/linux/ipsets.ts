// IP sets through `ipset restore`: a new or rewritten set is filled under a temporary
// name and swapped in (so a rule never sees it half-filled), deltas are add/del, and
// sets are destroyed only after the iptables rules that used them are gone.
import { ipsetName, type Family } from './iptables-render';
import { mustRun, type CommandRunner } from './runner';

export type SetType = 'hash:net' | 'hash:ip,port';

interface SetState {
  type: SetType;
  members: Set<string>;
}

/** The family of a member ("10.0.0.1/32", "fd00::1,tcp:80"). */
export function memberFamily(m: string): Family {
  return m.split(',')[0].includes(':') ? 6 : 4;
}

const tempName = (id: string, family: Family) => `tortie${family}t:${id}`;

export class IpsetWriter {
  /** Sets by id; every set exists in both families (rules of each family use their own). */
  private readonly desired = new Map<string, SetState>();
  private readonly written = new Map<string, SetState>();
  private readonly dirtyWhole = new Set<string>();
  private readonly pendingAdd = new Map<string, Set<string>>();
  private readonly pendingDel = new Map<string, Set<string>>();
  private readonly toDestroy = new Set<string>();

  constructor(private readonly runner: CommandRunner) {}

  replace(id: string, type: SetType, members: Iterable<string>): void {
    this.desired.set(id, { type, members: new Set(members) });
    this.dirtyWhole.add(id);
    this.toDestroy.delete(id);
  }

  delta(id: string, added: string[], removed: string[]): void {
    const s = this.desired.get(id);
    if (!s) throw new Error(`IP set ${id}: delta before the set was created`);
    for (const m of removed) {
      s.members.delete(m);
      if (!this.dirtyWhole.has(id)) this.track(this.pendingDel, this.pendingAdd, id, m);
    }
    for (const m of added) {
      s.members.add(m);
      if (!this.dirtyWhole.has(id)) this.track(this.pendingAdd, this.pendingDel, id, m);
    }
  }

  private track(
    into: Map<string, Set<string>>,
    from: Map<string, Set<string>>,
    id: string,
    m: string,
  ) {
    if (from.get(id)?.delete(m)) return;
    let s = into.get(id);
    if (!s) into.set(id, (s = new Set()));
    s.add(m);
  }

  remove(id: string): void {
    this.desired.delete(id);
    this.dirtyWhole.delete(id);
    this.pendingAdd.delete(id);
    this.pendingDel.delete(id);
    if (this.written.has(id)) this.toDestroy.add(id);
  }

  has(id: string): boolean {
    return this.desired.has(id);
  }

  /** Creates, fills and updates sets (before iptables refers to them). */
  async applyUpdates(): Promise<void> {
    const lines: string[] = [];
    for (const id of this.dirtyWhole) {
      const s = this.desired.get(id)!;
      for (const family of [4, 6] as Family[]) {
        const fam = family === 4 ? 'inet' : 'inet6';
        const tmp = tempName(id, family);
        lines.push(`create ${tmp} ${s.type} family ${fam} maxelem 1048576 -exist`, `flush ${tmp}`);
        for (const m of s.members) if (memberFamily(m) === family) lines.push(`add ${tmp} ${m}`);
        lines.push(
          `create ${ipsetName(id, family)} ${s.type} family ${fam} maxelem 1048576 -exist`,
        );
        lines.push(`swap ${tmp} ${ipsetName(id, family)}`, `destroy ${tmp}`);
      }
    }
    for (const [id, ms] of this.pendingDel)
      for (const m of ms) lines.push(`del ${ipsetName(id, memberFamily(m))} ${m} -exist`);
    for (const [id, ms] of this.pendingAdd)
      for (const m of ms) lines.push(`add ${ipsetName(id, memberFamily(m))} ${m} -exist`);
    if (lines.length) await mustRun(this.runner, ['ipset', 'restore'], lines.join('\n') + '\n');
    for (const id of this.dirtyWhole) {
      const s = this.desired.get(id)!;
      this.written.set(id, { type: s.type, members: new Set(s.members) });
    }
    this.dirtyWhole.clear();
    this.pendingAdd.clear();
    this.pendingDel.clear();
  }

  /** Destroys sets no longer wanted (after iptables stopped using them). */
  async applyRemovals(): Promise<void> {
    if (this.toDestroy.size === 0) return;
    const lines = [...this.toDestroy].flatMap((id) =>
      [4, 6].map((f) => `destroy ${ipsetName(id, f as Family)}`),
    );
    // -exist is not accepted by destroy; a set already gone is fine: run one by one on failure
    const r = await this.runner.run(['ipset', 'restore'], lines.join('\n') + '\n');
    if (r.code !== 0) for (const l of lines) await this.runner.run(['ipset', ...l.split(' ')]);
    for (const id of this.toDestroy) this.written.delete(id);
    this.toDestroy.clear();
  }

  /** Rewrites every set whole on the next apply (resync after drift, or after a restart). */
  markAllDirty(): void {
    for (const id of this.desired.keys()) this.dirtyWhole.add(id);
  }
}
