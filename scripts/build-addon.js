#!/usr/bin/env node
// usage: build-addon.js <package dir> <name> <who> <what is lost without it>
// Compiles <package>/native/<name>.c into <package>/dist/<name>.node with the system C
// compiler and Node's own headers (no node-gyp download). Without a compiler or headers
// it says so, naming what is lost, and exits 0: the package then works without it.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const [pkg, name, who, lost] = process.argv.slice(2);
if (!lost) {
  console.error('usage: build-addon.js <package dir> <name> <who> <what is lost without it>');
  process.exit(2);
}
const root = path.resolve(pkg);
const out = path.join(root, 'dist', `${name}.node`);
const src = path.join(root, 'native', `${name}.c`);
const candidates = [
  path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
  process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include', 'node'),
  '/usr/include/node',
].filter(Boolean);
const include = candidates.find((d) => fs.existsSync(path.join(d, 'node_api.h')));
if (!include) {
  console.warn(`${who}: Node headers (node_api.h) not found in ${candidates.join(', ')}; ${lost}`);
  process.exit(0);
}
if (fs.existsSync(out) && fs.statSync(out).mtimeMs > fs.statSync(src).mtimeMs) process.exit(0);
fs.mkdirSync(path.dirname(out), { recursive: true });
try {
  const flags = ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', `-I${include}`];
  execFileSync('cc', [...flags, src, '-o', out], { stdio: 'inherit' });
} catch (err) {
  console.warn(`${who}: could not compile ${src} (${err.message}); ${lost}`);
}
