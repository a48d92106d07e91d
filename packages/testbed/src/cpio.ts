// A writer for the "newc" cpio format the kernel unpacks as an initramfs. Writing it
// here keeps the VM runner free of a cpio binary; an initramfs needs only directories,
// regular files and symlinks.

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** Zero bytes that bring `n` up to a multiple of 4 (newc aligns headers and data). */
function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

function header(ino: number, mode: number, size: number, name: string): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const hex = (v: number) => v.toString(16).padStart(8, '0');
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
  // rdevmajor, rdevminor, namesize, check
  const fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, nameBytes.length, 0];
  const head = Buffer.from(`070701${fields.map(hex).join('')}`);
  return Buffer.concat([head, nameBytes, pad4(head.length + nameBytes.length)]);
}

/** The archive holding `entries` (paths relative to the archive root, no leading '/'). */
export function cpioArchive(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((e, i) => {
    const name = e.path.replace(/^\/+/, '');
    let mode: number;
    let data: Buffer;
    if (e.type === 'dir') [mode, data] = [S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0)];
    else if (e.type === 'file') [mode, data] = [S_IFREG | (e.mode ?? 0o644), e.data];
    else [mode, data] = [S_IFLNK | 0o777, Buffer.from(e.target)];
    parts.push(header(i + 1, mode, data.length, name), data, pad4(data.length));
  });
  parts.push(header(0, 0, 0, 'TRAILER!!!'));
  return Buffer.concat(parts);
}
