// Running `nft`: the one place the nftables ACL dataplane starts processes, and the
// version check at startup.
//
// A new nft process reads the table's objects before each transaction (its cache): with
// a few thousand rules that costs ~100 ms on a loaded machine, whatever the transaction's
// size. One long-lived `nft -i` keeps its cache between transactions (5-40 ms for a pod
// add), so NftSession sends each transaction as one line (commands joined by "; ", which
// nft commits as one batch) followed by a command that must fail with a known message
// (`list table inet tortie-sentinel-<n>`): everything nft says before that message is the
// transaction's own error output. Large writes (a whole table) go through `nft -f`
// (@tortie/exec, input streamed as it is produced).
//
// A transaction of set elements only (a pod add or removal: its verdict-map entries and
// its addresses in the selector sets) skips nft when the caller gives it as elements too:
// NftSession commits those over netlink (@tortie/netlink NfTables), one batch, no nft
// cache to refresh. nft itself dumps every chain and set and each touched set's elements
// before each transaction (after a commit its cache is stale), which at 10,000 pods costs
// more than the transaction.
import { spawn, type ChildProcess } from 'node:child_process';
import { runTool, type ToolInput, type ToolResult } from '@tortie/exec';
import { NfTables, type NftElementOp, type NftFamily } from '@tortie/netlink';
import { argvPrefix, lastLines } from '../acl/iptables-runner';

export type NftExec = (argv: string[], stdin?: ToolInput) => Promise<ToolResult>;

/** The same transaction as set element changes only (the netlink fast path). */
export interface NftElementBatch {
  family: NftFamily;
  table: string;
  ops: NftElementOp[];
}

export interface NftRunner {
  /**
   * Runs a script as one transaction; rejects with nft's message when it is refused.
   * `elements`, when given, is the same transaction as set element changes: a runner
   * may commit those instead of the script, and then says 'netlink'.
   */
  run(script: ToolInput, elements?: NftElementBatch): Promise<void | 'netlink'>;
  /** Checks a script against the kernel without committing it (`nft -c`). */
  check(script: string): Promise<string | undefined>;
}

export class ProcessNftRunner implements NftRunner {
  private readonly prefix: string[];
  constructor(
    opts: { netns?: string; prefix?: string[] } = {},
    private readonly exec: NftExec = runTool,
  ) {
    this.prefix = argvPrefix(opts);
  }

  async run(script: ToolInput): Promise<void> {
    const r = await this.exec([...this.prefix, 'nft', '-f', '-'], script);
    if (r.code !== 0) throw new Error(`nft -f failed (exit ${r.code}): ${lastLines(r.stderr)}`);
  }

  async check(script: string): Promise<string | undefined> {
    const r = await this.exec([...this.prefix, 'nft', '-c', '-f', '-'], script);
    return r.code === 0 ? undefined : lastLines(r.stderr) || `exit ${r.code}`;
  }
}

/** Above this many characters a transaction goes through `nft -f` instead of the session. */
const SESSION_MAX = 1 << 16;
const IDLE_MS = 30_000;

/**
 * Transactions through one long-lived `nft -i` (see above); whole tables through `nft -f`;
 * element-only transactions over netlink when it can be had (a namespace by name, no
 * command prefix, a kernel that acknowledges nftables batches, the addon built).
 */
export class NftSession implements NftRunner {
  private readonly prefix: string[];
  private readonly oneShot: ProcessNftRunner;
  private nl?: NfTables;
  /** why the netlink path is not used (undefined: not tried yet or in use) */
  private nlProblem?: string;
  private readonly netlinkWanted: boolean;
  private readonly netns?: string;
  /** transactions committed over netlink (tests, the benchmark) */
  netlinkCommits = 0;
  private proc?: ChildProcess;
  private err = '';
  private seq = 0;
  private waiting?: {
    sentinel: string;
    resolve: (out: string) => void;
    reject: (e: Error) => void;
  };
  private queue: Promise<unknown> = Promise.resolve();
  private idle?: NodeJS.Timeout;

  constructor(
    opts: { netns?: string; prefix?: string[]; netlink?: boolean } = {},
    exec: NftExec = runTool,
  ) {
    this.prefix = argvPrefix(opts);
    this.oneShot = new ProcessNftRunner(opts, exec);
    this.netns = opts.netns;
    this.netlinkWanted = opts.netlink ?? (exec === runTool && !opts.prefix?.length);
    if (!this.netlinkWanted) this.nlProblem = 'not asked for';
  }

  /** Why element transactions go through nft rather than netlink (undefined: netlink). */
  netlinkProblem(): string | undefined {
    this.netlink();
    return this.nlProblem;
  }

  private netlink(): NfTables | undefined {
    if (this.nl || this.nlProblem) return this.nl;
    try {
      this.nl = NfTables.open(this.netns);
    } catch (e) {
      this.nlProblem = (e as Error).message;
    }
    return this.nl;
  }

  run(script: ToolInput, elements?: NftElementBatch): Promise<void | 'netlink'> {
    const nl =
      elements && NfTables.fits(elements.family, elements.table, elements.ops) && this.netlink();
    if (nl && elements) {
      const next = this.queue.then(() => {
        nl.commitElements(elements.family, elements.table, elements.ops);
        this.netlinkCommits++;
        return 'netlink' as const;
      });
      this.queue = next.catch(() => undefined);
      return next;
    }
    const text = typeof script === 'string' ? script : [...script].join('');
    if (text.length > SESSION_MAX) return this.oneShot.run(text);
    const line = text.trim().split('\n').join('; ');
    const next = this.queue.then(() => this.send(line));
    this.queue = next.catch(() => undefined);
    return next;
  }

  check(script: string): Promise<string | undefined> {
    return this.oneShot.check(script);
  }

  /** Ends the nft process (it also ends by itself after 30 s without work). */
  close(): void {
    this.nl?.close();
    this.nl = undefined;
    clearTimeout(this.idle);
    this.proc?.stdin?.end();
    this.proc = undefined;
  }

  private start(): ChildProcess {
    const [cmd, ...args] = [...this.prefix, 'nft', '-i'];
    // a long-lived process is not what @tortie/exec's one-shot runTool is for
    const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    p.stderr!.setEncoding('utf8');
    p.stderr!.on('data', (d: string) => {
      this.err += d;
      const w = this.waiting;
      if (!w) return;
      const at = this.err.indexOf(w.sentinel);
      if (at < 0) return;
      const out = this.err.slice(0, at);
      this.err = '';
      this.waiting = undefined;
      w.resolve(out);
    });
    const gone = (why: string) => {
      if (this.proc === p) this.proc = undefined;
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(new Error(`nft -i ended: ${why}`));
    };
    p.on('error', (e) => gone(e.message));
    p.on('exit', (code) => gone(`exit ${code}`));
    p.stdin!.on('error', () => undefined); // reported through 'exit'
    this.hold(p, false);
    return p;
  }

  /** Only a transaction in flight keeps the event loop (and the program) alive. */
  private hold(p: ChildProcess, on: boolean): void {
    for (const s of [p, p.stdin, p.stderr] as unknown as Array<{ ref?(): void; unref?(): void }>)
      if (on) s?.ref?.();
      else s?.unref?.();
  }

  private async send(line: string): Promise<void> {
    clearTimeout(this.idle);
    const p = (this.proc ??= this.start());
    const sentinel = `tortie-sentinel-${++this.seq}`;
    this.hold(p, true);
    const out = await new Promise<string>((resolve, reject) => {
      this.waiting = { sentinel: `list table inet ${sentinel}`, resolve, reject };
      p.stdin!.write(`${line}\nlist table inet ${sentinel}\n`);
    }).finally(() => this.hold(p, false));
    this.idle = setTimeout(() => this.close(), IDLE_MS);
    this.idle.unref();
    // what nft said before the sentinel's own "Error: No such file or directory" line,
    // without the caret line left over from the previous sentinel
    const lines = out.split('\n').filter((l) => l.trim() !== '' && !/^[\s^~]+$/.test(l));
    lines.pop(); // the sentinel's own error line ("Error: No such file or directory")
    if (lines.some((l) => l.startsWith('Error') || l.includes(': Error'))) {
      throw new Error(`nft refused the transaction: ${lines.slice(-3).join('; ').slice(0, 2000)}`);
    }
  }
}

/** The oldest nft the dataplane accepts (verdict maps on ifname, fib, th, inet nat). */
export const MIN_NFT_VERSION: [number, number, number] = [1, 0, 0];

/** "nftables v1.0.6 (Lester Gooch #5)" -> [1, 0, 6]; undefined when it says no version. */
export function parseNftVersion(text: string): [number, number, number] | undefined {
  const m = /v(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

const older = (a: number[], b: number[]) => {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
};

/**
 * Whether this host's nft can run the dataplane: undefined when it can, otherwise why
 * not, naming the binary and its version (missing, unreadable or too old), or what the
 * kernel said when nft cannot use nf_tables there (no nf_tables, no CAP_NET_ADMIN in the
 * namespace): without this check such an agent would pick nftables and fail every apply.
 */
export async function nftProblem(
  opts: { netns?: string; prefix?: string[] } = {},
  exec: NftExec = runTool,
): Promise<string | undefined> {
  let r: ToolResult;
  try {
    r = await exec([...argvPrefix(opts), 'nft', '--version']);
  } catch (e) {
    return `the nft binary cannot be run: ${(e as Error).message}`;
  }
  if (r.code !== 0)
    return `the nft binary is missing or failed (nft --version: exit ${r.code}${r.stderr ? `, ${lastLines(r.stderr)}` : ''}); install Debian's nftables`;
  const v = parseNftVersion(r.stdout);
  if (!v) return `nft --version printed no version: "${r.stdout.trim()}"`;
  if (older(v, MIN_NFT_VERSION))
    return `nft ${v.join('.')} is too old: the nftables dataplane needs ${MIN_NFT_VERSION.join('.')} or newer`;
  let l: ToolResult;
  try {
    l = await exec([...argvPrefix(opts), 'nft', 'list', 'tables']);
  } catch (e) {
    return `nft ${v.join('.')} cannot be run: ${(e as Error).message}`;
  }
  if (l.code !== 0)
    return `nft ${v.join('.')} cannot use the kernel's nf_tables (nft list tables: exit ${l.code}${l.stderr ? `, ${lastLines(l.stderr)}` : ''})`;
  return undefined;
}
