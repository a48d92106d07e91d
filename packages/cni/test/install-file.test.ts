// install-cni's copy of tortie-cni into /opt/cni/bin, on the real filesystem in a temp dir.
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installFileAtomically, InstallError } from '../src';

describe('installFileAtomically', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tortie-install-'));
  });
  afterEach(async () => {
    await chmod(join(dir, 'bin'), 0o755).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  test('replaces the target with an executable copy and leaves no temp file', async () => {
    const src = join(dir, 'tortie-cni');
    await writeFile(src, 'new');
    const bin = join(dir, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'tortie-cni'), 'old');
    const target = await installFileAtomically(src, bin);
    expect(target).toBe(join(bin, 'tortie-cni'));
    expect(await readFile(target, 'utf8')).toBe('new');
    expect((await stat(target)).mode & 0o777).toBe(0o755);
    expect(await readdir(bin)).toEqual(['tortie-cni']);
  });

  test('a missing directory is an error naming the target path', async () => {
    const src = join(dir, 'tortie-cni');
    await writeFile(src, 'x');
    const missing = join(dir, 'nope');
    await expect(installFileAtomically(src, missing)).rejects.toThrow(
      `cannot install ${join(missing, 'tortie-cni')}: `,
    );
    await expect(installFileAtomically(src, missing)).rejects.toBeInstanceOf(InstallError);
  });
});
