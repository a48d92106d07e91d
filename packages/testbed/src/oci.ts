// The tortie/node image as a container runtime runs it: an OCI layout unpacked by umoci
// into a bundle, and commands run in it by real `runc run` (as root). Each run gets its
// own container id and a config.json derived from the image's, with the extra mounts,
// environment, capabilities and namespaces asked for.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A host path mounted into the container. */
export interface OciMount {
  source: string;
  destination: string;
  readOnly?: boolean;
  /** rslave: mounts made under source on the host later appear (HostToContainer). */
  propagation?: 'rslave';
}

export interface OciRunOptions {
  env?: Record<string, string>;
  mounts?: OciMount[];
  /** Extra capabilities, e.g. CAP_NET_ADMIN (privileged: every capability). */
  capabilities?: string[];
  privileged?: boolean;
  /** Join this network namespace (a path such as /run/netns/x) instead of a new one. */
  netns?: string;
  timeoutMs?: number;
}

export interface OciRunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Linux capabilities by number (capability.h). */
const CAP_NAMES = [
  ...['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID'],
  ...['SETUID', 'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST'],
  ...['NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO'],
  ...['SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE'],
  ...['SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE'],
  ...['AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM'],
  ...['BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE'],
].map((c) => `CAP_${c}`);

/**
 * What a privileged container gets: every capability this process may pass on (its
 * bounding set), as a runtime does; asking for one outside it makes runc fail.
 */
function allCaps(): string[] {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  const bounding = BigInt(`0x${m?.[1] ?? '0'}`);
  return CAP_NAMES.filter((_, bit) => (bounding >> BigInt(bit)) & 1n);
}

/** A container left running: its runc id and the `runc run` process. */
export interface OciContainer {
  id: string;
  child: ChildProcess;
}

let seq = 0;

export class OciBundle {
  private readonly base: Record<string, unknown>;

  private constructor(readonly dir: string) {
    this.base = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  }

  /** Unpacks `image` (`<layout>:<tag>`) into `dir` (which must not exist) with umoci. */
  static unpack(image: string, dir: string): OciBundle {
    const r = spawnSync('umoci', ['unpack', '--image', image, dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`umoci unpack ${image}: ${r.stderr || r.error}`);
    return new OciBundle(dir);
  }

  /** The image's own command and environment (from the config umoci generated). */
  get process(): { args: string[]; env: string[]; cwd: string } {
    return this.base.process as { args: string[]; env: string[]; cwd: string };
  }

  /**
   * A fresh container of this bundle for `args`: its id and a bundle directory of its own
   * (runc reads config.json from the bundle), sharing the unpacked rootfs.
   */
  private prepare(args: string[], o: OciRunOptions): { id: string; bundle: string } {
    const id = `tt-oci-${process.pid}-${++seq}`;
    const config = structuredClone(this.base) as {
      process: Record<string, unknown> & { env: string[]; capabilities: Record<string, string[]> };
      mounts: Record<string, unknown>[];
      linux: { namespaces: { type: string; path?: string }[]; [k: string]: unknown };
    };
    config.process.terminal = false;
    config.process.args = args;
    config.process.env = [
      ...config.process.env,
      ...Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ];
    const caps = o.privileged
      ? allCaps()
      : [...config.process.capabilities.bounding, ...(o.capabilities ?? [])];
    for (const k of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'])
      config.process.capabilities[k] = [...new Set(caps)];
    if (o.privileged) {
      // as a privileged pod: /sys writable, no masked or read-only /proc paths
      config.mounts = config.mounts.map((m) =>
        m.destination === '/sys'
          ? { ...m, options: (m.options as string[]).filter((x) => x !== 'ro') }
          : m,
      );
      delete config.linux.maskedPaths;
      delete config.linux.readonlyPaths;
      delete config.linux.seccomp;
    }
    for (const m of o.mounts ?? [])
      config.mounts.push({
        destination: m.destination,
        type: 'bind',
        source: m.source,
        options: ['rbind', m.readOnly ? 'ro' : 'rw', ...(m.propagation ? [m.propagation] : [])],
      });
    if (o.netns)
      config.linux.namespaces = config.linux.namespaces.map((n) =>
        n.type === 'network' ? { type: 'network', path: o.netns } : n,
      );
    const bundle = path.join(path.dirname(this.dir), `${path.basename(this.dir)}-${id}`);
    fs.mkdirSync(bundle);
    fs.writeFileSync(
      path.join(bundle, 'config.json'),
      JSON.stringify({ ...config, root: { path: path.join(this.dir, 'rootfs'), readonly: false } }),
    );
    return { id, bundle };
  }

  /** Removes a container that ended (runc deletes one whose process exited; -f: any). */
  private static remove(id: string, bundle: string): void {
    spawnSync('runc', ['delete', '-f', id]);
    fs.rmSync(bundle, { recursive: true, force: true });
  }

  /**
   * Starts `args` in a fresh container and leaves it running, as a kubelet runs a pod's
   * container: `runc run` in the foreground, which passes signals on to the container's
   * process. The container is removed when it exits.
   */
  start(args: string[], o: Omit<OciRunOptions, 'timeoutMs'> = {}): OciContainer {
    const { id, bundle } = this.prepare(args, o);
    const child = spawn('runc', ['run', '--bundle', bundle, id], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.on('exit', () => OciBundle.remove(id, bundle));
    return { id, child };
  }

  /** Runs `args` in a fresh container of this bundle; resolves with its exit and output. */
  run(args: string[], o: OciRunOptions = {}): Promise<OciRunResult> {
    const { id, bundle } = this.prepare(args, o);
    return new Promise((resolve) => {
      const child = execFile(
        'runc',
        ['run', '--bundle', bundle, id],
        { timeout: o.timeoutMs ?? 60000, maxBuffer: 64 << 20 },
        (err, stdout, stderr) => {
          OciBundle.remove(id, bundle);
          const code = err ? ((err as { code?: unknown }).code ?? 1) : 0;
          resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
        },
      );
      child.stdin?.end();
    });
  }
}
