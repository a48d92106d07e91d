// How tortie talks to iptables: `IptablesRunner` for one family and backend
// (iptables-restore of a table's input, iptables-save of a table), the real one running
// the binaries (optionally inside a network namespace or under any argv prefix), and the
// backend detection of Felix's "Auto" mode.
import { runCommand, type Exec } from './exec';

/** Joins streamed restore input (for fakes and recorders). */
export const joinInput = (input: string | Iterable<string>) =>
  typeof input === 'string' ? input : [...input].join('');
import type { Family } from './names';

export type Backend = 'legacy' | 'nft';

export interface IptablesRunner {
  /** `input` may come in pieces, which are streamed to iptables-restore as they are made. */
  restore(table: string, input: string | Iterable<string>): Promise<void>;
  save(table: string): Promise<string>;
}

export function iptablesBinaries(backend: Backend, family: Family) {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  return { restore: `${base}-${backend}-restore`, save: `${base}-${backend}-save` };
}

export interface ProcessRunnerOptions {
  backend: Backend;
  family: Family;
  /** Run inside this network namespace (`ip netns exec <netns>`). */
  netns?: string;
  /** Or any argv prefix (e.g. nsenter ...). */
  prefix?: string[];
}

export const argvPrefix = (o: { netns?: string; prefix?: string[] }) =>
  o.prefix ?? (o.netns ? ['ip', 'netns', 'exec', o.netns] : []);

export class ProcessIptablesRunner implements IptablesRunner {
  private readonly bins: { restore: string; save: string };
  private readonly prefix: string[];

  constructor(
    opts: ProcessRunnerOptions,
    private readonly exec: Exec = runCommand,
  ) {
    this.bins = iptablesBinaries(opts.backend, opts.family);
    this.prefix = argvPrefix(opts);
  }

  async restore(_table: string, input: string | Iterable<string>): Promise<void> {
    // --wait: the xtables lock is shared by every namespace on the host
    const r = await this.exec(
      [...this.prefix, this.bins.restore, '--noflush', '--wait', '10'],
      input,
    );
    if (r.code !== 0)
      throw new Error(`${this.bins.restore} failed (exit ${r.code}): ${lastLines(r.stderr)}`);
  }

  private dump?: Promise<Map<string, string>>;

  /**
   * One table as iptables-save prints it. Reads asked for at once (the filter and nat
   * read-backs of a first apply) share one iptables-save of every table: one process
   * instead of one per table.
   */
  async save(table: string): Promise<string> {
    this.dump ??= this.saveAll().finally(() => (this.dump = undefined));
    return (await this.dump).get(table) ?? '';
  }

  private async saveAll(): Promise<Map<string, string>> {
    const r = await this.exec([...this.prefix, this.bins.save]);
    if (r.code !== 0)
      throw new Error(`${this.bins.save} failed (exit ${r.code}): ${lastLines(r.stderr)}`);
    return splitTables(r.stdout);
  }
}

/** iptables-save output of several tables, by table ("*filter" ... "COMMIT"). */
export function splitTables(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | undefined;
  let lines: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      name = line.slice(1).trim();
      lines = [];
    }
    if (name === undefined) continue;
    lines.push(line);
    if (line === 'COMMIT') {
      out.set(name, lines.join('\n') + '\n');
      name = undefined;
    }
  }
  return out;
}

/** The end of a tool's stderr on one line, without iptables' "Try `... -h'" advice. */
export const lastLines = (s: string) =>
  s
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('Try `'))
    .slice(-3)
    .join('; ');

/**
 * Felix's "Auto": the backend that already holds more rules wins (kube-proxy and
 * others programmed it), else what plain `iptables` is.
 */
export async function detectBackend(
  opts: { netns?: string; prefix?: string[] } = {},
  exec: Exec = runCommand,
): Promise<Backend> {
  const prefix = argvPrefix(opts);
  const count = async (b: Backend) => {
    let n = 0;
    for (const f of [4, 6] as Family[]) {
      const r = await exec([...prefix, iptablesBinaries(b, f).save]).catch(() => undefined);
      if (r && r.code === 0) n += r.stdout.split('\n').filter((l) => l.startsWith('-A ')).length;
    }
    return n;
  };
  const [legacy, nft] = [await count('legacy'), await count('nft')];
  if (legacy > nft) return 'legacy';
  if (nft > legacy) return 'nft';
  const v = await exec([...prefix, 'iptables', '--version']).catch(() => undefined);
  return v && /legacy/.test(v.stdout) ? 'legacy' : 'nft';
}
