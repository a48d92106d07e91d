// IP sets through `ipset restore`. A set written whole is filled under a temporary name
// and swapped in, so a rule never sees it half-filled; later changes are add/del deltas.
// Sets are destroyed only after the iptables rules that used them are gone (the manager
// applies: updates -> iptables -> removals). Every set id exists per family in use
// (tortie40s:<id>, tortie60s:<id>), each holding that family's members.
import type { IpSetType } from '../../types';
import { runCommand, type Exec } from './exec';
import { argvPrefix, lastLines } from './iptables-runner';
import { isTortieIpset, tempIpsetName, type Family } from './names';

export interface IpsetRunner {
  restore(input: string): Promise<void>;
  /** Names of every set in the namespace. */
  listNames(): Promise<string[]>;
}

export class ProcessIpsetRunner implements IpsetRunner {
  private readonly prefix: string[];
  constructor(
    opts: { netns?: string; prefix?: string[] } = {},
    private readonly exec: Exec = runCommand,
  ) {
    this.prefix = argvPrefix(opts);
  }

  async restore(input: string): Promise<void> {
    const r = await this.exec([...this.prefix, 'ipset', 'restore'], input);
    if (r.code !== 0)
      throw new Error(`ipset restore failed (exit ${r.code}): ${lastLines(r.stderr)}`);
  }

  async listNames(): Promise<string[]> {
    const r = await this.exec([...this.prefix, 'ipset', 'list', '-n']);
    if (r.code !== 0)
      throw new Error(`ipset list -n failed (exit ${r.code}): ${lastLines(r.stderr)}`);
    return r.stdout.split('\n').filter(Boolean);
  }
}

/** The family of a member: "10.0.0.0/24", "fd00::1", "10.0.0.1,tcp:80". */
export const memberFamily = (m: string): Family => (m.split(',')[0].includes(':') ? 6 : 4);

/** hash:net cannot hold a /0: split it in two halves, as Felix does. */
export function normalizeMember(m: string, type: IpSetType): string[] {
  if (type !== 'hash:net') return [m];
  if (m === '0.0.0.0/0') return ['0.0.0.0/1', '128.0.0.0/1'];
  if (m === '::/0') return ['::/1', '8000::/1'];
  return [m];
}

interface SetState {
  type: IpSetType;
  members: Set<string>;
}

const CREATE_OPTS = 'maxelem 1048576';

/** Work not yet written: sets to write whole, members to add and delete per set name. */
interface Pending {
  rewrite: Set<string>;
  adds: Map<string, Set<string>>;
  dels: Map<string, Set<string>>;
}

export class Ipsets {
  private readonly desired = new Map<string, SetState>();
  /** names of sets written whole at the next apply */
  private rewrite = new Set<string>();
  private adds = new Map<string, Set<string>>();
  private dels = new Map<string, Set<string>>();
  /** tortie sets in the kernel that nobody wants (destroyed once unreferenced) */
  private readonly stale = new Set<string>();
  /**
   * Sets the calculation graph removed. They keep their content (and pending writes) until
   * no desired rule names them: rules rendered before the removal still do, and must not
   * meet a missing or emptied set (an empty set in a negated match allows more).
   */
  private readonly unwanted = new Set<string>();
  private loaded = false;
  /** sets we know exist in the kernel (listed at load, or written since) */
  private readonly inKernel = new Set<string>();
  private readonly byId = new Map<string, IpSetType>();

  constructor(
    private readonly runner: IpsetRunner,
    /** (id, family) -> set name */
    private readonly nameOf: (id: string, family: Family) => string,
    private families: Family[] = [4],
  ) {}

  setFamilies(fs: Family[]): void {
    const added = fs.filter((f) => !this.families.includes(f));
    this.families = fs;
    for (const f of added) for (const [id] of this.byId) this.rewrite.add(this.nameOf(id, f));
  }

  /** The whole content of set `id`. */
  replace(id: string, type: IpSetType, members: Iterable<string>): void {
    this.byId.set(id, type);
    const per = new Map<Family, Set<string>>([
      [4, new Set()],
      [6, new Set()],
    ]);
    for (const m of members)
      for (const n of normalizeMember(m, type)) per.get(memberFamily(n))!.add(n);
    for (const f of [4, 6] as Family[]) {
      const name = this.nameOf(id, f);
      this.desired.set(name, { type, members: per.get(f)! });
      this.rewrite.add(name);
      this.adds.delete(name);
      this.dels.delete(name);
      this.stale.delete(name);
      this.unwanted.delete(name);
    }
  }

  delta(id: string, added: string[], removed: string[]): void {
    const type = this.byId.get(id);
    if (!type) throw new Error(`IP set ${id}: a delta arrived before the set itself`);
    const edit = (m: string, add: boolean) => {
      for (const n of normalizeMember(m, type)) {
        const name = this.nameOf(id, memberFamily(n));
        const s = this.desired.get(name)!;
        if (add) s.members.add(n);
        else s.members.delete(n);
        if (this.rewrite.has(name)) continue;
        const [into, from] = add ? [this.adds, this.dels] : [this.dels, this.adds];
        if (from.get(name)?.delete(n)) continue;
        let set = into.get(name);
        if (!set) into.set(name, (set = new Set()));
        set.add(n);
      }
    };
    for (const m of removed) edit(m, false);
    for (const m of added) edit(m, true);
  }

  /** The calculation graph no longer wants set `id`: it goes once no rule names it. */
  remove(id: string): void {
    if (!this.byId.delete(id)) return;
    for (const f of [4, 6] as Family[]) {
      const name = this.nameOf(id, f);
      if (this.desired.has(name)) this.unwanted.add(name);
    }
  }

  /** An empty set under `name` (a rule refers to a set nobody sent). */
  placeholder(name: string, type: IpSetType = 'hash:net'): void {
    this.desired.set(name, { type, members: new Set() });
    this.rewrite.add(name);
    this.stale.delete(name);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  members(name: string): string[] | undefined {
    const s = this.desired.get(name);
    return s && [...s.members];
  }

  async ensureLoaded(): Promise<void> {
    if (!this.loaded) await this.load();
  }

  /** Reads which tortie sets exist; anything unwanted becomes stale. */
  async load(): Promise<void> {
    for (const n of await this.runner.listNames()) {
      if (!isTortieIpset(n)) continue;
      this.inKernel.add(n);
      if (!this.desired.has(n)) this.stale.add(n);
    }
    this.loaded = true;
  }

  private active(name: string): boolean {
    return this.families.includes(Number(name[6]) as Family);
  }

  /** The restore input for creations, rewrites and deltas (pure view of pending work). */
  updateInput(): string {
    return this.inputFor(this.pending());
  }

  /** The pending work as it stands now. */
  private pending(): Pending {
    return { rewrite: this.rewrite, adds: this.adds, dels: this.dels };
  }

  private inputFor(p: Pending): string {
    const lines: string[] = [];
    for (const name of p.rewrite) {
      if (!this.active(name)) continue;
      const s = this.desired.get(name)!;
      const fam = name[6] === '6' ? 'inet6' : 'inet';
      const tmp = tempIpsetName(name);
      lines.push(`create ${tmp} ${s.type} family ${fam} ${CREATE_OPTS} -exist`, `flush ${tmp}`);
      for (const m of s.members) lines.push(`add ${tmp} ${m}`);
      lines.push(
        `create ${name} ${s.type} family ${fam} ${CREATE_OPTS} -exist`,
        `swap ${tmp} ${name}`,
        `destroy ${tmp}`,
      );
    }
    for (const [name, ms] of p.dels)
      if (this.active(name)) for (const m of ms) lines.push(`del ${name} ${m} -exist`);
    for (const [name, ms] of p.adds)
      if (this.active(name)) for (const m of ms) lines.push(`add ${name} ${m} -exist`);
    return lines.length ? lines.join('\n') + '\n' : '';
  }

  /**
   * Creates, fills and updates sets: before iptables refers to them (needs no load).
   * The pending work is taken as it stands when called: changes that arrive while the
   * restore runs stay pending for the next call (clearing them afterwards would lose
   * them, and a rule naming such a set would then meet "Set ... doesn't exist").
   */
  async applyUpdates(): Promise<number> {
    const work = this.pending();
    this.rewrite = new Set();
    this.adds = new Map();
    this.dels = new Map();
    const input = this.inputFor(work);
    if (input) {
      try {
        await this.runner.restore(input);
      } catch (e) {
        // we no longer know which sets are complete: write them all whole next time
        this.markAllDirty();
        throw e;
      }
    }
    for (const name of work.rewrite) {
      if (!this.active(name)) continue;
      this.inKernel.add(name);
      if (!this.desired.has(name)) this.stale.add(name); // removed while it was being written
    }
    return input ? input.split('\n').length - 1 : 0;
  }

  /** Destroys removed and stale sets that no desired rule refers to any more. */
  async applyRemovals(referenced: (name: string) => boolean): Promise<string[]> {
    for (const n of [...this.unwanted]) {
      if (referenced(n)) continue;
      this.unwanted.delete(n);
      this.desired.delete(n);
      this.rewrite.delete(n);
      this.adds.delete(n);
      this.dels.delete(n);
      if (this.inKernel.has(n)) this.stale.add(n);
    }
    const gone = [...this.stale].filter((n) => !referenced(n) && !this.desired.has(n));
    if (!gone.length) return [];
    const input = gone.map((n) => `destroy ${n}`).join('\n') + '\n';
    try {
      await this.runner.restore(input);
    } catch {
      // one by one: a set already gone (or held by a foreign rule) must not block the rest
      for (const n of gone) await this.runner.restore(`destroy ${n}\n`).catch(() => undefined);
    }
    for (const n of gone) {
      this.stale.delete(n);
      this.inKernel.delete(n);
    }
    return gone;
  }

  /** Rewrites every set whole at the next apply (resync, or after a failure). */
  markAllDirty(): void {
    for (const name of this.desired.keys()) this.rewrite.add(name);
    this.adds.clear();
    this.dels.clear();
    this.inKernel.clear();
    this.loaded = false;
  }

  /** Whether a set of this name exists, or will after the next updates. */
  exists(name: string): boolean {
    return (this.desired.has(name) && this.active(name)) || this.inKernel.has(name);
  }
}
