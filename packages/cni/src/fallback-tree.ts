// The node fallback of tortie-cni on the host. The C forwarder installed as
// /opt/cni/bin/tortie-cni hands each command to the node agent; when no agent answers (the
// agent is starting, restarting or gone) it runs the TypeScript plugin itself. On the host
// that needs Node and the plugin with the packages it loads, none of which the host has, so
// install-cni copies them beside the forwarder:
//   tortie-cni.d/node      the Node binary install-cni itself runs on
//   tortie-cni.d/lib/      the shared libraries that Node loads, with the dynamic loader
//                          as tortie-cni.d/ld.so: the forwarder runs Node through it, so
//                          the host's own libc and libstdc++ (or their absence) do not matter
//   tortie-cni.d/cli.js    loads app/<the plugin's cli.js>
//   tortie-cni.d/app/      the plugin's package and its production dependencies, closed
//                          under package.json "dependencies"/"optionalDependencies", laid
//                          out as in the app root (so Node resolves them the same way)
// Workspace packages contribute only package.json and dist/.
import fs from 'node:fs';
import path from 'node:path';

export const FALLBACK_DIR = 'tortie-cni.d';

/** The directory whose node_modules holds @tortie/cni, from a directory inside the app. */
export function findAppRoot(from: string): string | undefined {
  for (let d = path.resolve(from); ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'node_modules', '@tortie', 'cni', 'package.json'))) return d;
    if (path.dirname(d) === d) return undefined;
  }
}

interface PackageJson {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** Where Node finds package `name` from a package whose real directory is `from`. */
function locate(name: string, from: string, root: string): string | undefined {
  for (let d = from; ; d = path.dirname(d)) {
    const candidate = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (d === root || path.dirname(d) === d) return undefined;
  }
}

/**
 * The paths (relative to root) to copy for the package at pkgDir: each package's location
 * and, for a symlinked one (a workspace), its real directory too. A required dependency
 * that is not installed is an error naming it; a missing optional one is skipped, as npm.
 */
export function packageClosure(root: string, pkgDir: string): string[] {
  const keep = new Set<string>();
  const seen = new Set<string>();
  const visit = (location: string) => {
    const real = fs.realpathSync(location);
    keep.add(path.relative(root, location));
    keep.add(path.relative(root, real));
    if (seen.has(real)) return;
    seen.add(real);
    const pkg = JSON.parse(fs.readFileSync(path.join(real, 'package.json'), 'utf8')) as PackageJson;
    for (const [deps, optional] of [
      [pkg.dependencies, false],
      [pkg.optionalDependencies, true],
    ] as const) {
      for (const name of Object.keys(deps ?? {})) {
        const found = locate(name, real, root);
        if (found) visit(found);
        else if (!optional)
          throw new Error(`install-cni: ${name}, a dependency of ${real}, is not installed`);
      }
    }
  };
  visit(pkgDir);
  for (const p of keep)
    if (p.startsWith('..') || path.isAbsolute(p))
      throw new Error(`install-cni: ${p} is outside the app root ${root}`);
  return [...keep].sort();
}

/**
 * Whether rel (relative to root) is copied: an ancestor of a kept path (the directory
 * itself, not its other entries) or inside one. Inside a workspace package (not under
 * node_modules) only package.json and dist/. Pure.
 */
export function copies(rel: string, keep: string[]): 'dir-only' | 'all' | false {
  if (rel === '') return 'dir-only';
  // type declarations and source maps are never loaded
  if (/\.(map|d\.[cm]?ts)$/.test(rel)) return false;
  for (const k of keep) {
    if (rel === k) return 'all';
    if (rel.startsWith(k + path.sep)) {
      if (k.split(path.sep).includes('node_modules')) return 'all';
      const first = rel.slice(k.length + 1).split(path.sep)[0];
      return first === 'package.json' || first === 'dist' ? 'all' : false;
    }
  }
  return keep.some((k) => k.startsWith(rel + path.sep)) ? 'dir-only' : false;
}

/**
 * The shared objects a Node binary loads, as this process loaded them (process.report; no
 * ldd in the image): the dynamic loader and the libraries. Pure over its input.
 */
export function sharedObjects(loaded: string[]): { loader?: string; libs: string[] } {
  const files = loaded.filter((f) => path.isAbsolute(f));
  const loader = files.find((f) => /^ld-(linux|musl)/.test(path.basename(f)));
  return { loader, libs: files.filter((f) => f !== loader) };
}

function loadedObjects(): string[] {
  const report = process.report?.getReport() as { sharedObjects?: string[] } | undefined;
  return report?.sharedObjects ?? [];
}

/** Copies the fallback into binDir/tortie-cni.d, replacing the old one whole; its path. */
export function installFallback(o: {
  root: string;
  binDir: string;
  node: string;
  cli: string;
  /** The shared objects o.node loads (default: this process's, which runs o.node). */
  loaded?: string[];
}): string {
  const keep = packageClosure(o.root, path.resolve(o.cli, '../..'));
  const target = path.join(o.binDir, FALLBACK_DIR);
  const fresh = `${target}.new-${process.pid}`;
  const old = `${target}.old-${process.pid}`;
  try {
    fs.rmSync(fresh, { recursive: true, force: true });
    fs.mkdirSync(fresh);
    fs.cpSync(o.root, path.join(fresh, 'app'), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (src) => copies(path.relative(o.root, src), keep) !== false,
    });
    fs.copyFileSync(o.node, path.join(fresh, 'node'));
    fs.chmodSync(path.join(fresh, 'node'), 0o755);
    const { loader, libs } = sharedObjects(o.loaded ?? loadedObjects());
    if (loader) {
      fs.mkdirSync(path.join(fresh, 'lib'));
      for (const lib of libs) fs.copyFileSync(lib, path.join(fresh, 'lib', path.basename(lib)));
      fs.copyFileSync(loader, path.join(fresh, 'ld.so'));
      fs.chmodSync(path.join(fresh, 'ld.so'), 0o755);
    }
    const rel = path.relative(o.root, o.cli).split(path.sep).join('/');
    fs.writeFileSync(path.join(fresh, 'cli.js'), `require('./app/${rel}');\n`);
    // a directory cannot be renamed over a full one: move the old aside first
    if (fs.existsSync(target)) fs.renameSync(target, old);
    fs.renameSync(fresh, target);
  } catch (err) {
    try {
      fs.rmSync(fresh, { recursive: true, force: true });
      if (fs.existsSync(old) && !fs.existsSync(target)) fs.renameSync(old, target);
    } catch {
      // the directory itself is unusable: the error below names it
    }
    throw new Error(
      `install-cni: cannot install ${target}: ${err instanceof Error ? err.message : String(err)}`,
    );
  } finally {
    try {
      fs.rmSync(old, { recursive: true, force: true });
    } catch {
      // nothing was moved aside (the error above says why)
    }
  }
  return target;
}
