#!/usr/bin/env node
// Compiles native/rtnl.c into dist/rtnl.node with the system C compiler and Node's own
// headers (no node-gyp download). Without a compiler or headers it says so and exits 0:
// the agent and the CNI plugin then say at startup that they use `ip` processes.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'dist', 'rtnl.node');
const src = path.join(root, 'native', 'rtnl.c');
const candidates = [
  path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
  process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include', 'node'),
  '/usr/include/node',
].filter(Boolean);
const include = candidates.find((d) => fs.existsSync(path.join(d, 'node_api.h')));
if (!include) {
  console.warn(
    `tortie-netlink: Node headers (node_api.h) not found in ${candidates.join(', ')}; routes and pod interfaces will use ip processes`,
  );
  process.exit(0);
}
if (fs.existsSync(out) && fs.statSync(out).mtimeMs > fs.statSync(src).mtimeMs) process.exit(0);
fs.mkdirSync(path.dirname(out), { recursive: true });
try {
  execFileSync(
    'cc',
    ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', `-I${include}`, src, '-o', out],
    {
      stdio: 'inherit',
    },
  );
} catch (err) {
  console.warn(
    `tortie-netlink: could not compile ${src} (${err.message}); routes and pod interfaces will use ip processes`,
  );
}
