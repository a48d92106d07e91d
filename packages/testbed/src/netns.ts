// Network namespaces and veth links for tests, benchmarks and the lab. Everything a
// Testbed creates (namespaces, processes, temp dirs) is recorded and removed by
// cleanup(), also after a failure half-way; processes are killed by their own PID.
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SLOW } from './slow';

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with a message naming the command and its stderr. */
export function run(
  argv: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      argv[0],
      argv.slice(1),
      { timeout: opts.timeoutMs ?? 30000, maxBuffer: 256 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const detail = (stderr || err.message).trim().split('\n').slice(-5).join('\n');
          reject(new Error(`${argv.join(' ')}: ${detail}`));
        } else resolve({ stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Stops a process we started: SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
export function stopProcess(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export class Netns {
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(readonly name: string) {}

  /** Creates `tt-<tag>-<random>` with loopback up. */
  static async create(tag: string): Promise<Netns> {
    const name = `tt-${tag.replace(/[^a-zA-Z0-9]/g, '').slice(0, 12)}-${randomBytes(3).toString('hex')}`;
    record(`netns ${name}`);
    await run(['ip', 'netns', 'add', name]);
    const ns = new Netns(name);
    try {
      await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
    } catch (err) {
      await ns.destroy();
      throw err;
    }
    return ns;
  }

  exec(argv: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    return run(['ip', 'netns', 'exec', this.name, ...argv], opts).then((r) => r.stdout);
  }

  /** Starts a long-running process inside the namespace; it is stopped by destroy(). */
  spawn(argv: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, ...argv], { stdio: 'pipe', ...opts });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.children].map((c) => stopProcess(c)));
    await run(['ip', 'netns', 'del', this.name]).catch(() => undefined);
  }
}

let vethCounter = 0;

export interface LinkOptions {
  /** Address with prefix length for each end, e.g. ['10.0.0.1/24', '10.0.0.2/24']. */
  v4?: [string, string];
  v6?: [string, string];
  mtu?: number;
}

/**
 * A veth pair between two namespaces, created with both ends in place in one request
 * (no interface moves), addresses assigned (IPv6 without DAD), links up.
 */
export async function link(
  a: Netns,
  b: Netns,
  opts: LinkOptions = {},
): Promise<{ ifA: string; ifB: string }> {
  const id = `${process.pid % 10000}${vethCounter++}`;
  const ifA = `va${id}`.slice(0, 15);
  const ifB = `vb${id}`.slice(0, 15);
  await a.exec(['ip', 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', b.name]);
  for (const [ns, ifc, i] of [
    [a, ifA, 0],
    [b, ifB, 1],
  ] as const) {
    if (opts.mtu) await ns.exec(['ip', 'link', 'set', ifc, 'mtu', String(opts.mtu)]);
    if (opts.v4) await ns.exec(['ip', 'addr', 'add', opts.v4[i], 'dev', ifc]);
    if (opts.v6) await ns.exec(['ip', '-6', 'addr', 'add', opts.v6[i], 'dev', ifc, 'nodad']);
    await ns.exec(['ip', 'link', 'set', ifc, 'up']);
  }
  return { ifA, ifB };
}

/**
 * A Linux bridge inside its own namespace that several namespaces attach to: one
 * shared L2 segment, like a rack's switch.
 */
export class Fabric {
  private members = 0;
  /** The bridge port of each attached namespace, by namespace name. */
  private readonly ports = new Map<string, string>();

  private constructor(
    readonly ns: Netns,
    readonly bridge: string,
  ) {}

  static async create(tb: Testbed, tag = 'fabric'): Promise<Fabric> {
    const ns = await tb.netns(tag);
    await ns.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge']);
    await ns.exec(['ip', 'link', 'set', 'br0', 'up']);
    return new Fabric(ns, 'br0');
  }

  /** Plugs `member` into the bridge with the given addresses on its side; returns its interface. */
  async attach(
    member: Netns,
    opts: { v4?: string; v6?: string; mtu?: number; ifName?: string } = {},
  ): Promise<string> {
    const n = this.members++;
    const ifName = opts.ifName ?? 'eth0';
    const port = `p${n}`;
    await this.ns.exec([
      'ip',
      'link',
      'add',
      port,
      'type',
      'veth',
      'peer',
      'name',
      ifName,
      'netns',
      member.name,
    ]);
    await this.ns.exec(['ip', 'link', 'set', port, 'master', this.bridge]);
    await this.ns.exec(['ip', 'link', 'set', port, 'up']);
    this.ports.set(member.name, port);
    if (opts.mtu) await member.exec(['ip', 'link', 'set', ifName, 'mtu', String(opts.mtu)]);
    if (opts.v4) await member.exec(['ip', 'addr', 'add', opts.v4, 'dev', ifName]);
    if (opts.v6) await member.exec(['ip', '-6', 'addr', 'add', opts.v6, 'dev', ifName, 'nodad']);
    await member.exec(['ip', 'link', 'set', ifName, 'up']);
    return ifName;
  }

  /**
   * The switch stops forwarding `member`'s traffic (its port leaves the bridge). Its link
   * stays up with carrier: only a protocol's own liveness check (BFD, hold timers) sees it.
   */
  async cut(member: Netns): Promise<void> {
    await this.ns.exec(['ip', 'link', 'set', this.portOf(member), 'nomaster']);
  }

  /** Undoes cut(). */
  async mend(member: Netns): Promise<void> {
    await this.ns.exec(['ip', 'link', 'set', this.portOf(member), 'master', this.bridge]);
  }

  private portOf(member: Netns): string {
    const port = this.ports.get(member.name);
    if (!port) throw new Error(`${member.name} is not attached to this fabric`);
    return port;
  }
}

/** Tracks everything a test creates and removes it all in cleanup(). */
/**
 * With TORTIE_TESTBED_RECORD=<file>, each namespace a testbed creates is appended to the
 * file: a test that interrupts a run checks that exactly those are gone, while other runs
 * on the machine keep theirs.
 */
function record(line: string): void {
  const file = process.env.TORTIE_TESTBED_RECORD;
  if (file) fs.appendFileSync(file, `${line}\n`);
}

/** Every testbed of this process, for teardown on SIGINT/SIGTERM. */
const testbeds = new Set<Testbed>();

export class Testbed {
  private readonly namespaces: Netns[] = [];
  private readonly dirs: string[] = [];
  private readonly stoppers: Array<() => Promise<void>> = [];
  /** Set by abort(): whatever is created afterwards is removed at once. */
  private aborted = false;
  /** Namespaces being created: abort waits for them, so none appears after it. */
  private readonly creating = new Set<Promise<Netns>>();

  constructor() {
    testbeds.add(this);
  }

  async netns(tag: string): Promise<Netns> {
    this.refuseWhenAborted(`namespace ${tag}`);
    const creating = Netns.create(tag);
    this.creating.add(creating);
    const ns = await creating.finally(() => this.creating.delete(creating));
    if (this.aborted) {
      // created while an interrupt tore the rest down
      await ns.destroy();
      this.refuseWhenAborted(`namespace ${tag}`);
    }
    this.namespaces.push(ns);
    return ns;
  }

  tempDir(tag: string): string {
    this.refuseWhenAborted(`temp dir ${tag}`);
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `tortie-${tag}-`));
    this.dirs.push(d);
    return d;
  }

  /** Registers something to stop before namespaces go (daemons with their own stop()). */
  onCleanup(stop: () => Promise<void>): void {
    this.stoppers.push(stop);
    // registered while an interrupt tears down: stop it with the rest
    if (this.aborted) void this.cleanup();
  }

  async cleanup(): Promise<void> {
    for (const s of this.stoppers.splice(0).reverse()) await s().catch(() => undefined);
    await Promise.all(this.namespaces.splice(0).map((ns) => ns.destroy()));
    for (const d of this.dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }

  /** Tears everything down and refuses to create more (an interrupted run). */
  async abort(): Promise<void> {
    this.aborted = true;
    testbeds.delete(this);
    await Promise.allSettled([...this.creating]);
    await this.cleanup();
  }

  private refuseWhenAborted(what: string): void {
    if (this.aborted) throw new Error(`interrupted: not creating ${what}`);
  }
}

/**
 * On SIGINT or SIGTERM, tears down every testbed of this process (namespaces, the
 * processes in them, daemons, temp dirs), says so through `say`, and exits 130 (143).
 * For entry points that build things in namespaces: the lab and the benchmarks.
 */
let tearingDownNow = false;

/** A signal is tearing this run down: its errors (things vanishing under it) are expected. */
export function tearingDown(): boolean {
  return tearingDownNow;
}

export function teardownOnSignals(say: (line: string) => void = () => undefined): void {
  let started = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (started) {
      say(`${signal}: still tearing down`);
      return;
    }
    started = true;
    tearingDownNow = true;
    say(`${signal}: tearing down everything this run created`);
    void Promise.all([...testbeds].map((tb) => tb.abort().catch(() => undefined))).then(() => {
      say('all namespaces, processes and temp dirs removed');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15000,
  intervalMs = 100,
): Promise<T> {
  timeoutMs *= SLOW; // emulated in a VM: the same work takes longer
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError ? ` (last error: ${(lastError as Error).message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
