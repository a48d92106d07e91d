#!/usr/bin/env node
// npm run image: builds the tortie/node OCI image on this machine with no container
// engine and no registry. The rootfs is assembled from this checkout and this host:
//   /opt/tortie        the built packages (dist only) and production-only node_modules
//                      (npm ci --omit=dev of the workspaces the entry points need)
//   /usr/bin/node      this Node binary (the CNI forwarder execs it by that path)
//   the kernel tools   ip, iptables/ip6tables legacy and nft, ipset, nft, nsenter,
//                      sysctl, modprobe, each with the shared libraries ldd names (and
//                      the iptables extensions it dlopens)
// then packed with umoci into an OCI layout, tagged tortie/node:<lerna version>.
// No shell, compiler, npm or dev dependency goes in. deploy/image/Containerfile builds
// the same image with docker/podman/buildah.
//
//   node deploy/image/build.js [--out DIR]   (default DIR: .image in the checkout)
// Prints the layout, tag, compressed and unpacked sizes and how long it took.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '../..');
const VERSION = JSON.parse(fs.readFileSync(path.join(REPO, 'lerna.json'), 'utf8')).version;
const TAG = `tortie/node:${VERSION}`;
const APP = '/opt/tortie';

/** The workspaces the entry points need, and each entry point's script. */
const WORKSPACES = ['felix', 'cni', 'ctl', 'route-reflector'];
const ENTRY_POINTS = {
  'tortie-node': 'packages/felix/dist/cli.js',
  'install-cni': 'packages/cni/dist/install-cni-cli.js',
  'tortie-rr': 'packages/route-reflector/dist/cli.js',
  tortiectl: 'packages/ctl/dist/cli.js',
  'tortie-cni': 'packages/cni/dist/tortie-cni',
};

/** Kernel tools the agent runs (by name on PATH), and the Debian package of each. */
const TOOLS = {
  ip: 'iproute2',
  ipset: 'ipset',
  nft: 'nftables',
  // the service proxy deletes stale UDP conntrack entries, as kube-proxy
  conntrack: 'conntrack',
  nsenter: 'util-linux',
  sysctl: 'procps',
  modprobe: 'kmod',
  env: 'coreutils',
  ...Object.fromEntries(
    ['iptables', 'ip6tables'].flatMap((base) =>
      ['', '-legacy', '-nft'].flatMap((b) =>
        ['', '-save', '-restore'].map((op) => [`${base}${b}${op}`, 'iptables']),
      ),
    ),
  ),
};
/** Loaded with dlopen, so ldd of the binaries does not name them. */
const PLUGIN_DIRS = ['/usr/lib/x86_64-linux-gnu/xtables'];
/** Small data files the tools read. */
const DATA = ['/etc/protocols', '/etc/services', '/etc/ethertypes', '/etc/iproute2'];

function die(msg) {
  console.error(`npm run image: ${msg}`);
  process.exit(1);
}

function which(bin) {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(d, bin);
    if (d && fs.existsSync(p)) return p;
  }
  return undefined;
}

function parseArgs(argv) {
  const o = { out: path.join(REPO, '.image') };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') o.out = path.resolve(argv[++i] ?? die('--out needs a directory'));
    else if (argv[i] === '--help') {
      console.log('usage: node deploy/image/build.js [--out DIR]');
      process.exit(0);
    } else die(`unknown argument ${argv[i]} (usage: node deploy/image/build.js [--out DIR])`);
  }
  return o;
}

/** Copies host paths into a rootfs: symlink chains kept, libraries of ELF files added. */
class Rootfs {
  constructor(root) {
    this.root = root;
    this.done = new Set();
    // merged /usr, as on the host: /bin/ip and /usr/bin/ip are one file
    fs.mkdirSync(path.join(root, 'usr'), { recursive: true });
    for (const d of ['bin', 'sbin', 'lib', 'lib64']) {
      fs.mkdirSync(path.join(root, 'usr', d), { recursive: true });
      fs.symlinkSync(`usr/${d}`, path.join(root, d));
    }
    for (const d of ['tmp', 'etc', 'run', 'var/run', 'usr/local/bin'])
      fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  }

  /** The host path with its directory resolved (so /bin/x lands in /usr/bin/x). */
  canonical(p) {
    return path.join(fs.realpathSync(path.dirname(p)), path.basename(p));
  }

  add(hostPath, where = hostPath) {
    const p = this.canonical(hostPath);
    if (this.done.has(p)) return;
    this.done.add(p);
    const dest = path.join(this.root, where === hostPath ? p : where);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(p);
      fs.symlinkSync(target, dest);
      this.add(path.resolve(path.dirname(p), target));
    } else if (st.isDirectory()) {
      fs.mkdirSync(dest, { recursive: true });
      for (const e of fs.readdirSync(p)) this.add(path.join(p, e));
    } else {
      fs.copyFileSync(p, dest);
      fs.chmodSync(dest, st.mode & 0o7777);
      if (isElf(p)) for (const lib of libraries(p)) this.add(lib);
    }
  }
}

function isElf(p) {
  const fd = fs.openSync(p, 'r');
  const b = Buffer.alloc(4);
  fs.readSync(fd, b, 0, 4, 0);
  fs.closeSync(fd);
  return b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
}

/** The shared libraries (and the loader) ldd says an ELF file needs. */
function libraries(file) {
  const r = spawnSync('ldd', [file], { encoding: 'utf8' });
  if (r.status !== 0) return []; // static, or not an executable/library
  const libs = [];
  for (const line of r.stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  } catch (err) {
    const stderr = err.stderr?.toString().trim();
    die(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`);
  }
}

function du(dir) {
  let total = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) total += fs.statSync(p).size;
    }
  };
  walk(dir);
  return total;
}

/** Files of a built package the runtime needs: package.json and dist without maps/types. */
function copyPackage(dir, dest) {
  fs.mkdirSync(dest, { recursive: true });
  fs.copyFileSync(path.join(dir, 'package.json'), path.join(dest, 'package.json'));
  const dist = path.join(dir, 'dist');
  if (!fs.existsSync(dist)) return;
  fs.cpSync(dist, path.join(dest, 'dist'), {
    recursive: true,
    filter: (src) => !/\.(d\.ts|map|tsbuildinfo)$/.test(src),
  });
}

/** Removes what node never loads from node_modules (source maps, type declarations, docs). */
function prune(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) prune(p);
    else if (e.isFile() && /\.(map|d\.ts|d\.mts|d\.cts|md|markdown)$/i.test(e.name)) fs.rmSync(p);
  }
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const umoci = which('umoci');
  if (!umoci) die('umoci is not installed: run scripts/install-deps.sh (Debian package umoci)');
  const missing = Object.entries(TOOLS).filter(([bin]) => !which(bin));
  if (missing.length)
    die(
      `missing ${missing.map(([b, pkg]) => `${b} (Debian package ${pkg})`).join(', ')}: ` +
        'run scripts/install-deps.sh',
    );
  for (const [name, rel] of Object.entries(ENTRY_POINTS))
    if (!fs.existsSync(path.join(REPO, rel)))
      die(`${rel} (${name}) is not built: run npm run build first`);

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-image-'));
  try {
    const layout = path.join(opts.out, 'oci');
    fs.rmSync(opts.out, { recursive: true, force: true });
    fs.mkdirSync(opts.out, { recursive: true });
    run('umoci', ['init', '--layout', layout]);
    run('umoci', ['new', '--image', `${layout}:${TAG}`]);
    const bundle = path.join(work, 'bundle');
    run('umoci', ['unpack', '--image', `${layout}:${TAG}`, bundle]);
    const root = path.join(bundle, 'rootfs');
    const fsys = new Rootfs(root);

    // the application: every workspace's package.json (npm ci checks them against the
    // lock), dist of the workspaces the entry points need and of their dependencies
    const app = path.join(root, APP.slice(1));
    fs.mkdirSync(app, { recursive: true });
    for (const f of ['package.json', 'package-lock.json', 'lerna.json'])
      fs.copyFileSync(path.join(REPO, f), path.join(app, f));
    for (const p of fs.readdirSync(path.join(REPO, 'packages'))) {
      const pkg = path.join(REPO, 'packages', p);
      fs.mkdirSync(path.join(app, 'packages', p), { recursive: true });
      fs.copyFileSync(
        path.join(pkg, 'package.json'),
        path.join(app, 'packages', p, 'package.json'),
      );
    }
    run(
      'npm',
      [
        ...['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'],
        ...WORKSPACES.flatMap((w) => ['-w', `@tortie/${w}`]),
      ],
      { cwd: app },
    );
    // the workspaces npm linked are the ones needed at run time
    const linked = fs.readdirSync(path.join(app, 'node_modules', '@tortie'));
    for (const p of linked)
      if (p !== 'testbed')
        copyPackage(path.join(REPO, 'packages', p), path.join(app, 'packages', p));
    prune(path.join(app, 'node_modules'));

    fsys.add(fs.realpathSync(process.execPath), '/usr/bin/node');
    for (const bin of Object.keys(TOOLS)) fsys.add(which(bin));
    for (const d of PLUGIN_DIRS.concat(DATA)) if (fs.existsSync(d)) fsys.add(d);
    for (const [name, rel] of Object.entries(ENTRY_POINTS)) {
      fs.chmodSync(path.join(app, rel), 0o755);
      fs.symlinkSync(path.join(APP, rel), path.join(root, 'usr/local/bin', name));
    }
    for (const f of ['lerna.json', 'package-lock.json']) fs.rmSync(path.join(app, f));
    const unpacked = du(root);

    run('umoci', ['repack', '--image', `${layout}:${TAG}`, bundle]);
    run('umoci', [
      ...['config', '--image', `${layout}:${TAG}`],
      ...['--config.env', 'PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...['--config.workingdir', APP],
      ...['--config.cmd', 'tortie-node'],
      ...['--author', 'tortie', '--history.created_by', 'deploy/image/build.js'],
    ]);
    run('umoci', ['gc', '--layout', layout]);
    const blobs = du(path.join(layout, 'blobs'));
    const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
    console.log(
      JSON.stringify({
        image: TAG,
        layout,
        compressed: mb(blobs),
        unpacked: mb(unpacked),
        seconds: +((Date.now() - started) / 1000).toFixed(1),
      }),
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) main();
module.exports = { ENTRY_POINTS, TAG };
