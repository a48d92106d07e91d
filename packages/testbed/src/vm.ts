// Runs one command inside a QEMU VM booting the installed Debian kernel, for tests that
// need kernel features this machine's kernel lacks (ipip, sctp, wireguard...). The VM
// sees the host's / read-only over virtio-9p (writes land in RAM) and has no NIC. The
// command's stdout, stderr and exit status come back on three virtio-serial ports,
// each a unix socket we listen on, so output streams as it comes and the exit code is
// reported by the guest, never guessed; the serial console carries kernel messages.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  BUSYBOX,
  PORTS,
  TAGS,
  bootImage,
  defaultCacheDir,
  findKernel,
  initramfs,
  isStaticElf,
  type Kernel,
} from './initramfs';
import { stopProcess } from './netns';

export { findKernel, type Kernel } from './initramfs';

const QEMU = 'qemu-system-x86_64';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface VmOptions {
  /** Working directory inside the VM (the host's paths are the VM's); default process.cwd(). */
  cwd?: string;
  /**
   * The command's environment (nothing is inherited from this process), over
   * PATH=<the usual dirs>, HOME=/root, LANG=C.UTF-8 and TORTIE_IN_VM=1.
   */
  env?: Record<string, string>;
  /** Kernel modules to load at boot (dependencies included), e.g. ['ipip', 'sctp']. */
  modules?: string[];
  /** QEMU is killed after this long; default 5 minutes. */
  timeoutMs?: number;
  /** Guest RAM (also holds every write, as the root is a tmpfs overlay); default 2048. */
  memoryMb?: number;
  /**
   * Guest CPUs; default 1. Under TCG a second vCPU did not pay: IPIs and TLB flushes
   * (every fork) cost more than it gives a single-threaded node (jest fixture: 50 s with
   * 1, 65 s with 2, on a busy 2-core host). Raise it for tests with many busy processes.
   */
  cpus?: number;
  /** Default: the newest /boot/vmlinuz-*-amd64 with its modules installed. */
  kernel?: Kernel;
  /**
   * Host directories the VM may write, shared read-write at the same path (created if
   * missing), e.g. a cache kept across runs. Everything else the VM writes stays in RAM.
   */
  writable?: string[];
  /** Where the kernel and initramfs images are cached; default $TMPDIR/tortie-vm-cache. */
  cacheDir?: string;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Kernel and init messages from the serial console. */
  onConsole?: (chunk: Buffer) => void;
}

export interface VmResult {
  /** The command's exit status; null only when timedOut. */
  code: number | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  console: string;
  /** From starting QEMU to the command starting (kernel boot + init), when it started. */
  bootMs?: number;
  /** From starting QEMU to the VM exiting. */
  durationMs: number;
}

/** Why the VM runner cannot work here, or undefined when it can. */
export function vmMissing(): string | undefined {
  const onPath = (bin: string) =>
    (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, bin)));
  const absent: string[] = [];
  const kernel = findKernel();
  if (!onPath(QEMU)) absent.push(`${QEMU} (qemu-system-x86)`);
  if (!kernel) absent.push('a /boot/vmlinuz-*-amd64 kernel (linux-image-amd64)');
  if (!isStaticElf(BUSYBOX)) absent.push(`a static ${BUSYBOX} (busybox-static)`);
  if (!onPath('modprobe')) absent.push('modprobe (kmod)');
  if (absent.length) return `${absent.join(', ')} not installed (run scripts/install-deps.sh)`;
  try {
    fs.accessSync(kernel!.image, fs.constants.R_OK);
  } catch {
    return `cannot read ${kernel!.image} (run as root)`;
  }
  return undefined;
}

/** Quotes `s` for sh: the VM gets the argv and env byte for byte. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The script stage 2 runs in an empty environment: env, cwd, then exec of the argv. */
function jobScript(argv: string[], cwd: string, env: Record<string, string>): string {
  const exports = Object.entries(env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment name "${k}"`);
    return `export ${shQuote(`${k}=${v}`)}`;
  });
  const lines = [
    ...exports,
    `cd ${shQuote(cwd)} || exit 126`,
    `exec ${argv.map(shQuote).join(' ')}`,
  ];
  return `${lines.join('\n')}\n`;
}

function qemuArgs(o: {
  image: string;
  initrd: string;
  dir: string;
  writable: string[];
  memoryMb: number;
  cpus: number;
}): string[] {
  const sock = (name: string) => path.join(o.dir, `${name}.sock`);
  const port = (id: string, name: string) => [
    ...['-chardev', `socket,id=${id},path=${sock(id)}`],
    ...['-device', `virtserialport,bus=ser.0,chardev=${id},name=${name}`],
  ];
  // QEMU's option syntax escapes a comma by doubling it
  const share = (id: string, dir: string, readonly = true) => [
    '-fsdev',
    `local,id=${id},path=${dir.replace(/,/g, ',,')},security_model=none,multidevs=remap` +
      (readonly ? ',readonly=on' : ''),
    ...['-device', `virtio-9p-pci,fsdev=${id},mount_tag=${id}`],
  ];
  return [
    ...['-nodefaults', '-no-user-config', '-no-reboot', '-nic', 'none', '-display', 'none'],
    // thread=multi: one host thread per vCPU (QEMU 7.2's default for x86 on x86, said
    // so that a QEMU defaulting to one thread for all vCPUs cannot undo -smp silently)
    ...['-machine', 'q35', '-accel', 'tcg,thread=multi', '-cpu', 'max'],
    ...['-smp', String(o.cpus), '-m', String(o.memoryMb)],
    ...['-kernel', o.image, '-initrd', o.initrd],
    // quiet: only errors on the console; panic=-1: a dying init resets, and QEMU exits;
    // mitigations=off: a VM with no network needs none, and boots faster under TCG;
    // no_timer_check: on a starved host (load 40) the kernel's IO-APIC timer check saw too
    // few ticks and panicked ("IO-APIC + timer doesn't work"), as virtualized guests do
    ...[
      '-append',
      'console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off no_timer_check rdinit=/init',
    ],
    ...['-chardev', `socket,id=con,path=${sock('con')}`, '-serial', 'chardev:con'],
    ...share(TAGS.root, '/'),
    ...share(TAGS.job, path.join(o.dir, 'job')),
    ...o.writable.flatMap((d, i) => share(`${TAGS.writable}${i}`, d, false)),
    ...['-device', 'virtio-serial-pci,id=ser'],
    ...port('stdout', PORTS.stdout),
    ...port('stderr', PORTS.stderr),
    ...port('status', PORTS.status),
  ];
}

interface Channel {
  server: net.Server;
  text: () => string;
  /** Resolves when QEMU closes its end (it has written everything). */
  closed: Promise<void>;
}

/** A unix socket QEMU connects to as a client when it starts. */
async function listen(file: string, onData?: (chunk: Buffer) => void): Promise<Channel> {
  const chunks: Buffer[] = [];
  let done!: () => void;
  const closed = new Promise<void>((r) => (done = r));
  const server = net.createServer((sock) => {
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      onData?.(d);
    });
    sock.on('close', done);
    sock.on('error', done);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, resolve);
  });
  return { server, closed, text: () => Buffer.concat(chunks).toString() };
}

/** QEMUs running now: killed by PID if this process exits first (e.g. jest gives up). */
const running = new Set<ChildProcess>();
process.on('exit', () => running.forEach((p) => p.kill('SIGKILL')));

interface Qemu {
  proc: ChildProcess;
  /** QEMU's own messages (bad options, missing files). */
  output: () => string;
  /** Resolves with QEMU's exit code once it has exited; rejects when it cannot start. */
  exit: Promise<number | null>;
}

function startQemu(args: string[]): Qemu {
  const proc = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let output = '';
  proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<number | null>((resolve, reject) => {
    proc.once('error', (e) => reject(new Error(`runInVm: cannot start ${QEMU}: ${e.message}`)));
    proc.once('exit', (code) => resolve(code));
  }).finally(() => running.delete(proc));
  return { proc, output: () => output, exit };
}

/** Waits for QEMU to exit, stopping it (by its PID) after `timeoutMs`. */
async function waitOrStop(
  qemu: Qemu,
  timeoutMs: number,
): Promise<{ code: number | null; timedOut: boolean }> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stopProcess(qemu.proc);
  }, timeoutMs);
  try {
    return { code: await qemu.exit, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/** Writes the job dir the guest mounts: the command's script and the writable shares. */
function writeJob(dir: string, argv: string[], opts: VmOptions, writable: string[]): void {
  const env = {
    PATH: DEFAULT_PATH,
    HOME: '/root',
    LANG: 'C.UTF-8',
    TORTIE_IN_VM: '1',
    ...opts.env,
  };
  fs.mkdirSync(path.join(dir, 'job'));
  fs.writeFileSync(path.join(dir, 'job/job.sh'), jobScript(argv, opts.cwd ?? process.cwd(), env));
  const mounts = writable.map((d, i) => `${TAGS.writable}${i} ${d}\n`).join('');
  fs.writeFileSync(path.join(dir, 'job/mounts'), mounts);
}

/** Runs `argv` in a fresh VM and returns its exit code and output. */
export async function runInVm(argv: string[], opts: VmOptions = {}): Promise<VmResult> {
  if (!argv.length) throw new Error('runInVm: empty argv');
  const kernel = opts.kernel ?? findKernel();
  if (!kernel) throw new Error(`runInVm: ${vmMissing()}`);
  const image = bootImage(kernel, opts.cacheDir);
  const initrd = initramfs(kernel, opts.modules ?? [], opts.cacheDir);
  const writable = (opts.writable ?? []).map((d) => path.resolve(d));
  for (const d of writable) fs.mkdirSync(d, { recursive: true });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-vm-'));
  const channels: Channel[] = [];
  let qemu: Qemu | undefined;
  try {
    writeJob(dir, argv, opts, writable);
    const started = Date.now();
    let bootMs: number | undefined;
    const status = await listen(path.join(dir, 'status.sock'), (d) => {
      if (bootMs === undefined && d.toString().startsWith('start')) bootMs = Date.now() - started;
    });
    const out = await listen(path.join(dir, 'stdout.sock'), opts.onStdout);
    const err = await listen(path.join(dir, 'stderr.sock'), opts.onStderr);
    const con = await listen(path.join(dir, 'con.sock'), opts.onConsole);
    channels.push(status, out, err, con);

    const { memoryMb = 2048, cpus = 1 } = opts;
    qemu = startQemu(qemuArgs({ image, initrd, dir, writable, memoryMb, cpus }));
    const { code: qemuCode, timedOut } = await waitOrStop(qemu, opts.timeoutMs ?? 300_000);
    // QEMU has exited: its sockets close once their last bytes are read
    await Promise.race([
      Promise.all(channels.map((c) => c.closed)),
      new Promise((r) => setTimeout(r, 2000).unref()),
    ]);

    const exit = /^exit (\d+)$/m.exec(status.text());
    const result: VmResult = {
      code: exit ? Number(exit[1]) : null,
      timedOut: timedOut && !exit,
      stdout: out.text(),
      stderr: err.text(),
      console: con.text(),
      bootMs,
      durationMs: Date.now() - started,
    };
    if (!exit && !timedOut) {
      const tail = `${result.console}\n${qemu.output()}`.trim().split('\n').slice(-30).join('\n');
      throw new Error(
        `runInVm: the VM stopped (qemu exit ${qemuCode}) without reporting the command's exit status:\n${tail}`,
      );
    }
    return result;
  } finally {
    if (qemu?.proc.pid) await stopProcess(qemu.proc);
    for (const c of channels) c.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The nearest directory at or above `from` holding a jest config. */
function jestRoot(from: string): string {
  for (let d = from; ; d = path.dirname(d)) {
    if (['jest.config.js', 'jest.config.ts'].some((f) => fs.existsSync(path.join(d, f)))) return d;
    if (d === path.dirname(d)) throw new Error(`no jest config above ${from}`);
  }
}

export interface JestInVmOptions extends VmOptions {
  /** Extra jest CLI arguments. */
  jestArgs?: string[];
  /**
   * jest's cache (transformed files, haste map), shared read-write so that the next
   * run skips transpiling and crawling again (tens of seconds under emulation).
   * Default $TMPDIR/tortie-vm-cache/jest; false: a fresh cache in the VM's RAM.
   */
  jestCacheDir?: string | false;
}

/** One test of jest's --json report (the fields we read). */
export interface JestAssertion {
  ancestorTitles: string[];
  title: string;
  fullName: string;
  status: 'passed' | 'failed' | 'pending' | 'skipped' | 'todo' | 'disabled' | 'focused';
  duration?: number | null;
  failureMessages: string[];
}

/** One test file of jest's --json report (the fields we read). */
export interface JestFileResult {
  name: string;
  status: 'passed' | 'failed';
  /** Why the file failed outside any test (a hook, a syntax error), if it did. */
  message: string;
  startTime: number;
  endTime: number;
  assertionResults: JestAssertion[];
}

/** jest's --json report (the fields we read). */
export interface JestReport {
  success: boolean;
  startTime: number;
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  testResults: JestFileResult[];
}

export interface JestVmResult extends VmResult {
  /** jest's own --json report, written by the jest inside; undefined if it wrote none. */
  report?: JestReport;
}

/**
 * Runs jest test files inside one VM (cwd: the nearest jest config's dir) with
 * TORTIE_IN_VM=1, in band (jest's worker processes cost seconds each to start under
 * emulation). The files need not match the config's testMatch (they are passed as the
 * only testMatch), so VM-only files can be named to stay out of host runs. Several
 * files share the boot and the jest start (about 35 s under emulation on a quiet
 * machine); jest's --json report comes back as `report`, for results per file and test.
 */
export async function runJestInVm(
  testFiles: string | string[],
  opts: JestInVmOptions = {},
): Promise<JestVmResult> {
  const files = (Array.isArray(testFiles) ? testFiles : [testFiles]).map((f) => path.resolve(f));
  if (!files.length) throw new Error('runJestInVm: no test file');
  const root = jestRoot(path.dirname(files[0]));
  const outside = files.filter((f) => jestRoot(path.dirname(f)) !== root);
  if (outside.length)
    throw new Error(`runJestInVm: ${outside.join(', ')} not under the jest config of ${root}`);
  const jest = require.resolve('jest/bin/jest', { paths: [root] });
  const cache =
    opts.jestCacheDir === false
      ? undefined
      : (opts.jestCacheDir ?? path.join(opts.cacheDir ?? defaultCacheDir(), 'jest'));
  // the one other host directory the VM writes: jest's report, read after the run
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-vm-jest-'));
  const reportFile = path.join(out, 'report.json');
  const argv = [process.execPath, jest, ...files, '--ci', '--runInBand'];
  argv.push(...files.map((f) => `--testMatch=${f}`), '--json', `--outputFile=${reportFile}`);
  if (cache) argv.push(`--cacheDirectory=${cache}`);
  try {
    const r = await runInVm([...argv, '--runTestsByPath', ...(opts.jestArgs ?? [])], {
      cwd: root,
      ...opts,
      writable: [...(cache ? [cache] : []), out, ...(opts.writable ?? [])],
      env: { PATH: process.env.PATH ?? DEFAULT_PATH, CI: 'true', ...opts.env },
    });
    const text = fs.existsSync(reportFile) ? fs.readFileSync(reportFile, 'utf8') : '';
    return { ...r, ...(text ? { report: JSON.parse(text) as JestReport } : {}) };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}
