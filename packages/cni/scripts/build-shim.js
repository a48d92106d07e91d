#!/usr/bin/env node
// Compiles native/cni-shim.c into dist/tortie-cni, the binary a container runtime execs
// (it forwards to the node agent and falls back to dist/cli.js with this Node binary).
// Without a C compiler it says so and exits 0: runtimes then exec dist/cli.js directly.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const src = path.join(root, 'native', 'cni-shim.c');
const out = path.join(root, 'dist', 'tortie-cni');
if (fs.existsSync(out) && fs.statSync(out).mtimeMs > fs.statSync(src).mtimeMs) process.exit(0);
fs.mkdirSync(path.dirname(out), { recursive: true });
const flags = ['-O2', '-Wall', '-Wextra', '-Werror', `-DNODE_BINARY="${process.execPath}"`];
// static, as a host's /opt/cni/bin binary should be (the host's libc is not ours to rely
// on); dynamic where no static libc is installed
try {
  execFileSync('cc', [...flags, '-static', src, '-o', out], { stdio: 'ignore' });
} catch {
  try {
    execFileSync('cc', [...flags, src, '-o', out], { stdio: 'inherit' });
  } catch (err) {
    console.warn(`tortie-cni: could not compile ${src} (${err.message}); use dist/cli.js`);
  }
}
