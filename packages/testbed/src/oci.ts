// The tortie/node image as a container runtime runs it: an OCI layout unpacked by umoci
// into a bundle, and commands run in it by real `runc run` (as root). Each run gets its
// own container id and a config.json derived from the image's, with the extra mounts,
// environment, capabilities and namespaces asked for.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A host path mounted into the container. */
export interface OciMount {
  source: string;
  destination: string;
  readOnly?: boolean;
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

const ALL_CAPS = [
  ...['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID'],
  ...['SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW'],
  ...['IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE'],
  ...['SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'MKNOD', 'AUDIT_WRITE', 'SETFCAP'],
].map((c) => `CAP_${c}`);

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

  /** Runs `args` in a fresh container of this bundle; resolves with its exit and output. */
  run(args: string[], o: OciRunOptions = {}): Promise<OciRunResult> {
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
      ? ALL_CAPS
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
        options: ['rbind', m.readOnly ? 'ro' : 'rw'],
      });
    if (o.netns)
      config.linux.namespaces = config.linux.namespaces.map((n) =>
        n.type === 'network' ? { type: 'network', path: o.netns } : n,
      );
    // runc reads config.json from the bundle: one bundle per run, sharing the rootfs
    const bundle = path.join(path.dirname(this.dir), `${path.basename(this.dir)}-${id}`);
    fs.mkdirSync(bundle);
    fs.writeFileSync(
      path.join(bundle, 'config.json'),
      JSON.stringify({ ...config, root: { path: path.join(this.dir, 'rootfs'), readonly: false } }),
    );
    return new Promise((resolve) => {
      const child = execFile(
        'runc',
        ['run', '--bundle', bundle, id],
        { timeout: o.timeoutMs ?? 60000, maxBuffer: 64 << 20 },
        (err, stdout, stderr) => {
          // runc deletes a container whose process exited; -f also covers a timeout
          spawnSync('runc', ['delete', '-f', id]);
          fs.rmSync(bundle, { recursive: true, force: true });
          const code = err ? ((err as { code?: unknown }).code ?? 1) : 0;
          resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
        },
      );
      child.stdin?.end();
    });
  }
}
