// One iptables table of one family, kept equal to a desired set of tortie chains with
// `iptables-restore --noflush`: only chains whose rules changed are rewritten (declaring a
// chain in a restore flushes it, and the whole input commits atomically, so a rewrite
// never leaves a window of open traffic); chains no longer wanted are flushed then
// deleted after the chains that jumped to them; hooks from the built-in chains are
// inserted once. Rules carry a hash comment, so reading back `iptables-save` finds a
// chain someone flushed or edited, and the next apply repairs it. Foreign chains and
// rules are never touched.
import type { Chain, Family } from './iptables-render';
import { HOOKS, ruleHashes, withHashes } from './iptables-render';
import { mustRun, type CommandRunner } from './runner';

export type Backend = 'legacy' | 'nft';

export function binaries(backend: Backend, family: Family) {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  return { restore: `${base}-${backend}-restore`, save: `${base}-${backend}-save` };
}

/** Felix's "Auto": the backend that already holds rules, else what `iptables` is. */
export async function detectBackend(runner: CommandRunner): Promise<Backend> {
  const count = async (b: Backend) => {
    const r = await runner.run([binaries(b, 4).save]);
    return r.code === 0 ? r.stdout.split('\n').filter((l) => l.startsWith('-A ')).length : -1;
  };
  const [legacy, nft] = await Promise.all([count('legacy'), count('nft')]);
  if (legacy > nft) return 'legacy';
  if (nft > legacy) return 'nft';
  const v = await runner.run(['iptables', '--version']);
  return /legacy/.test(v.stdout) ? 'legacy' : 'nft';
}

interface Actual {
  /** tortie chains and the rule hashes they hold, in order */
  chains: Map<string, string[]>;
  /** hook comments present in built-in chains */
  hooks: Set<string>;
}

export function parseSave(text: string): Actual {
  const chains = new Map<string, string[]>();
  const hooks = new Set<string>();
  for (const line of text.split('\n')) {
    const decl = /^:(tortie-\S+) /.exec(line);
    if (decl) chains.set(decl[1], chains.get(decl[1]) ?? []);
    const rule = /^-A (\S+) (.*)$/.exec(line);
    if (!rule) continue;
    const h = /tortie-h:([A-Za-z0-9_-]+)/.exec(rule[2]);
    if (rule[1].startsWith('tortie-')) {
      const list = chains.get(rule[1]) ?? [];
      list.push(h ? h[1] : '?'); // a rule without our hash: someone added it
      chains.set(rule[1], list);
    } else if (h) hooks.add(`${rule[1]}:${h[1]}`);
  }
  return { chains, hooks };
}

const hookHash = (chain: string) => `hook-${chain}`;

export class IptablesTable {
  private desired = new Map<string, Chain>();
  private actual: Actual = { chains: new Map(), hooks: new Set() };
  private loaded = false;

  constructor(
    private readonly runner: CommandRunner,
    readonly table: 'filter' | 'nat',
    readonly family: Family,
    private readonly backend: Backend,
  ) {}

  setChains(chains: Chain[]): void {
    this.desired = new Map(chains.map((c) => [c.name, c]));
  }

  ruleCount(): number {
    let n = 0;
    for (const c of this.desired.values()) n += c.rules.length;
    return n;
  }

  /** Reads what the kernel has (at start, and on every resync). */
  async load(): Promise<void> {
    const out = await mustRun(this.runner, [
      binaries(this.backend, this.family).save,
      '-t',
      this.table,
    ]);
    this.actual = parseSave(out);
    this.loaded = true;
  }

  /** The restore input that makes the kernel match, or undefined when it already does. */
  plan(): string | undefined {
    const write: Chain[] = [];
    for (const c of this.desired.values()) {
      const have = this.actual.chains.get(c.name);
      if (!have || have.join() !== ruleHashes(c).join()) write.push(c);
    }
    const remove = [...this.actual.chains.keys()].filter((n) => !this.desired.has(n));
    const hooks = (HOOKS[this.table] ?? []).filter(
      (h) =>
        this.desired.has(h.target) && !this.actual.hooks.has(`${h.chain}:${hookHash(h.chain)}`),
    );
    if (!write.length && !remove.length && !hooks.length) return undefined;
    const lines = [`*${this.table}`];
    for (const c of [...write, ...remove.map((name) => ({ name, rules: [] }))])
      lines.push(`:${c.name} - [0:0]`);
    for (const c of write) lines.push(...withHashes(c));
    for (const h of hooks)
      lines.push(
        `-I ${h.chain} 1 -m comment --comment "tortie-h:${hookHash(h.chain)}" -j ${h.target}`,
      );
    for (const name of remove) lines.push(`-X ${name}`);
    lines.push('COMMIT', '');
    return lines.join('\n');
  }

  async ensureLoaded(): Promise<void> {
    if (!this.loaded) await this.load();
  }

  /** Writes what differs; returns how many chains were (re)written or removed. */
  async apply(): Promise<boolean> {
    if (!this.loaded) await this.load();
    const input = this.plan();
    if (!input) return false;
    await mustRun(this.runner, [binaries(this.backend, this.family).restore, '--noflush'], input);
    // what we wrote is now there
    const chains = new Map<string, string[]>();
    for (const c of this.desired.values()) chains.set(c.name, ruleHashes(c));
    const hooks = new Set(this.actual.hooks);
    for (const h of HOOKS[this.table] ?? [])
      if (this.desired.has(h.target)) hooks.add(`${h.chain}:${hookHash(h.chain)}`);
    this.actual = { chains, hooks };
    return true;
  }

  /** Re-reads the kernel and repairs whatever drifted. */
  async resync(): Promise<boolean> {
    await this.load();
    return this.apply();
  }
}
