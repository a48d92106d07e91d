// The VM runner's boot files: the installed Debian kernel, and an initramfs made of
// busybox-static, the modules the VM needs (9p over virtio, virtio-serial, overlayfs,
// plus what the caller asks for, with their dependencies resolved by modprobe) and two
// init scripts. Initramfs images are cached by kernel version + module list + scripts.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpioArchive, type CpioEntry } from './cpio';

export interface Kernel {
  /** e.g. 6.1.0-57-amd64 */
  version: string;
  /** /boot/vmlinuz-<version> */
  image: string;
}

export const BUSYBOX = '/bin/busybox';

/** 9p tags and virtio-serial port names shared by the init scripts and the runner. */
export const TAGS = { root: 'hostroot', job: 'tortiejob', writable: 'tortierw' } as const;
export const PORTS = {
  stdout: 'tortie.stdout',
  stderr: 'tortie.stderr',
  status: 'tortie.status',
} as const;
/** Where the job dir (the command's script) is mounted inside the VM. */
export const JOB_DIR = '/run/tortie/job';

/** What the VM itself needs: PCI virtio, 9p, the output ports, a writable root. */
const BASE_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'virtio_console', 'overlay'];

/** The newest Debian kernel (`/boot/vmlinuz-*-amd64` whose modules are installed). */
export function findKernel(): Kernel | undefined {
  const files = fs.existsSync('/boot') ? fs.readdirSync('/boot') : [];
  const versions = files
    .map((f) => /^vmlinuz-(.+-amd64)$/.exec(f)?.[1])
    .filter((v): v is string => !!v && fs.existsSync(`/lib/modules/${v}/modules.dep`));
  const byVersion = new Intl.Collator('en', { numeric: true }).compare;
  const version = versions.sort(byVersion).pop();
  return version ? { version, image: `/boot/vmlinuz-${version}` } : undefined;
}

/** True when `file` is an ELF executable without an interpreter (it runs in an empty initramfs). */
export function isStaticElf(file: string): boolean {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return false;
  }
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) return false; // ELF, 64-bit
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (buf.readUInt32LE(phoff + i * phentsize) === 3) return false; // PT_INTERP
  }
  return true;
}

/** The .ko files (with options) that load `modules` in dependency order; builtins are skipped. */
export function resolveModules(kernel: Kernel, modules: string[]): string[] {
  const lines: string[] = [];
  for (const m of modules) {
    const r = spawnSync('modprobe', ['-S', kernel.version, '--show-depends', m], {
      encoding: 'utf8',
    });
    if (r.error) throw new Error(`modprobe: ${r.error.message} (install kmod)`);
    if (r.status !== 0) {
      throw new Error(`kernel module "${m}" not found for ${kernel.version}: ${r.stderr.trim()}`);
    }
    for (const line of r.stdout.split('\n')) {
      const insmod = /^insmod (\S+)\s*(.*)$/.exec(line.trim());
      if (insmod) lines.push(`${insmod[1]} ${insmod[2]}`.trim());
    }
  }
  return [...new Set(lines)];
}

// Stage 1 (/init in the initramfs): load the modules, build the root (the host's /
// read-only over 9p under a tmpfs overlay, fresh /run, /dev, /proc, /sys), then
// switch_root to it so the stage-2 shell is PID 1 on the host's files and the kernel's
// module autoloading runs the host's modprobe with the host's /lib/modules.
const STAGE1 = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
die() { echo "tortie-vm: $*"; reboot -f; }
while read -r ko opts; do
  insmod "$ko" $opts || echo "tortie-vm: insmod $ko failed"
done < /modules.list
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 ${TAGS.root} /lower ||
  die "cannot mount the host root over 9p"
mount -t tmpfs -o mode=755 rw /rw && mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work root /newroot ||
  die "cannot mount the overlay root"
mount -t tmpfs -o mode=755 run /newroot/run
mkdir -p /newroot/run/lock /newroot/run/netns /newroot${JOB_DIR}
mount -t 9p -o trans=virtio,version=9p2000.L,ro ${TAGS.job} /newroot${JOB_DIR} ||
  die "cannot mount the job dir"
for d in /dev /proc /sys; do mount --move $d /newroot$d; done
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup
cp /bin/busybox /stage2 /newroot/run/tortie/
exec switch_root /newroot /run/tortie/busybox sh /run/tortie/stage2
`;

// Stage 2, PID 1 on the host root: mount the caller's writable host dirs (listed in
// the job dir: they vary per run, the initramfs does not), run the job with
// stdout/stderr on their virtio ports, report "start" and "exit <code>" on the status
// port, then reset (QEMU runs with -no-reboot, so it exits). The job runs under the
// host's /bin/sh: Debian's busybox sh would run its own applets (ip, mount...) instead
// of the host's tools on PATH.
const STAGE2 = `bb=/run/tortie/busybox
port() {
  for d in /sys/class/virtio-ports/*; do
    [ "$($bb cat "$d/name" 2>/dev/null)" = "$1" ] && echo "/dev/\${d##*/}"
  done
}
for i in $($bb seq 100); do
  out=$(port ${PORTS.stdout}) err=$(port ${PORTS.stderr}) status=$(port ${PORTS.status})
  [ -c "$out" ] && [ -c "$err" ] && [ -c "$status" ] && break
  $bb sleep 0.1
done
[ -c "$status" ] || { echo "tortie-vm: virtio-serial ports missing"; $bb reboot -f; }
$bb hostname tortie-vm
$bb ip link set lo up
while read -r tag dir; do
  $bb mkdir -p "$dir" && $bb mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "$tag" "$dir" ||
    echo "tortie-vm: cannot mount $dir"
done < ${JOB_DIR}/mounts
exec 3>"$status"
echo start >&3
$bb env -i /bin/sh ${JOB_DIR}/job.sh </dev/null >"$out" 2>"$err" 3>&-
echo "exit $?" >&3
$bb reboot -f
`;

export function defaultCacheDir(): string {
  return path.join(os.tmpdir(), 'tortie-vm-cache');
}

/** Writes `data` to `file` through a temp name, so parallel runs never read half a file. */
function writeAtomic(file: string, data: Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** The uncompressed ELF inside a bzImage, or undefined (Debian compresses it with xz). */
function extractVmlinux(image: string): Buffer | undefined {
  const bz = fs.readFileSync(image);
  const at = bz.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])); // xz magic
  if (at < 0) return undefined;
  // xz complains about the bytes after the stream yet has written the whole kernel
  const r = spawnSync('xz', ['-dc'], { input: bz.subarray(at), maxBuffer: 1 << 30 });
  const elf = r.stdout;
  return elf?.length > 4 && elf.readUInt32BE(0) === 0x7f454c46 ? elf : undefined;
}

/**
 * What QEMU should boot: the kernel's uncompressed ELF, started at its PVH entry point
 * (no firmware, no decompression: about 4 s less under TCG), cached under `cacheDir`;
 * the bzImage itself when the kernel has no PVH entry or cannot be unpacked.
 */
export function bootImage(kernel: Kernel, cacheDir = defaultCacheDir()): string {
  const config = `/boot/config-${kernel.version}`;
  const pvh = fs.existsSync(config) && /^CONFIG_PVH=y$/m.test(fs.readFileSync(config, 'utf8'));
  if (!pvh) return kernel.image;
  const st = fs.statSync(kernel.image);
  const file = path.join(
    cacheDir,
    `vmlinux-${kernel.version}-${st.size}-${Math.trunc(st.mtimeMs)}`,
  );
  if (fs.existsSync(file)) return file;
  const elf = extractVmlinux(kernel.image);
  if (!elf) return kernel.image;
  writeAtomic(file, elf);
  return file;
}

/**
 * The initramfs for `kernel` with `modules` (plus the VM's own), built on first use and
 * cached under `cacheDir`.
 */
export function initramfs(kernel: Kernel, modules: string[], cacheDir = defaultCacheDir()): string {
  const kos = resolveModules(kernel, [...BASE_MODULES, ...modules]);
  const bb = fs.statSync(BUSYBOX);
  const key = createHash('sha256')
    .update(JSON.stringify([kernel.version, kos, STAGE1, STAGE2, bb.size, bb.mtimeMs]))
    .digest('hex')
    .slice(0, 16);
  const file = path.join(cacheDir, `initramfs-${kernel.version}-${key}.cpio`);
  if (fs.existsSync(file)) return file;

  writeAtomic(file, cpioArchive(initramfsEntries(kos)));
  return file;
}

function initramfsEntries(kos: string[]): CpioEntry[] {
  const dirs = new Set(['bin', 'dev', 'proc', 'sys']);
  for (const ko of kos) {
    // every parent directory of each module, shallowest first
    const parts = path.dirname(ko.split(' ')[0]).split('/').filter(Boolean);
    parts.forEach((_, i) => dirs.add(parts.slice(0, i + 1).join('/')));
  }
  const sorted = [...dirs].sort((a, b) => a.split('/').length - b.split('/').length);
  return [
    ...sorted.map((d): CpioEntry => ({ type: 'dir', path: d })),
    { type: 'file', path: 'bin/busybox', data: fs.readFileSync(BUSYBOX), mode: 0o755 },
    { type: 'file', path: 'init', data: Buffer.from(STAGE1), mode: 0o755 },
    { type: 'file', path: 'stage2', data: Buffer.from(STAGE2), mode: 0o644 },
    { type: 'file', path: 'modules.list', data: Buffer.from(kos.map((k) => `${k}\n`).join('')) },
    ...kos.map((k): CpioEntry => {
      const ko = k.split(' ')[0];
      return { type: 'file', path: ko, data: fs.readFileSync(ko) };
    }),
  ];
}
