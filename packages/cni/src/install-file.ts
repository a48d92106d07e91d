import { chmod, copyFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Raised when a file cannot be installed; names the path that failed. */
export class InstallError extends Error {
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(`cannot install ${path}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'InstallError';
  }
}

/**
 * Copies src into dir under name (default: src's base name) atomically: the copy is written to a
 * temporary file in the same directory and renamed over the target, so a kubelet running the
 * plugin concurrently sees either the old binary or the new one, never a half-written file.
 */
export async function installFileAtomically(
  src: string,
  dir: string,
  options: { name?: string; mode?: number } = {},
): Promise<string> {
  const target = join(dir, options.name ?? basename(src));
  const tmp = join(dir, `.${basename(target)}.tmp-${process.pid}`);
  try {
    await copyFile(src, tmp);
    await chmod(tmp, options.mode ?? 0o755);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new InstallError(target, err);
  }
  return target;
}

/** Writes content to file atomically (temp file in the same directory, then rename). */
export async function writeFileAtomically(file: string, content: string, mode = 0o644) {
  const tmp = join(dirname(file), `.${basename(file)}.tmp-${process.pid}`);
  try {
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new InstallError(file, err);
  }
}
