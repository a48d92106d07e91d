#!/usr/bin/env node
// Exits 0 when node_modules holds what package-lock.json says, 1 when `npm ci` is due.
// Compared by content, not by mtime: a checkout or a copied node_modules (cp -a keeps
// old mtimes) made the mtime test run a needless `npm ci`, which also pulls node_modules
// from under any test running from that tree. npm's hidden lockfile
// (node_modules/.package-lock.json) records each installed package as package-lock.json
// does; a locked package may be absent only when it is optional (another platform's).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const read = (f) => JSON.parse(fs.readFileSync(path.join(root, f), 'utf8')).packages ?? {};

function why() {
  let locked, installed;
  try {
    locked = read('package-lock.json');
    installed = read('node_modules/.package-lock.json');
  } catch (e) {
    return e.message;
  }
  for (const [name, entry] of Object.entries(locked)) {
    if (name === '') continue; // the root project itself
    if (!(name in installed)) {
      if (!entry.optional) return `${name} is not installed`;
    } else if (JSON.stringify(entry) !== JSON.stringify(installed[name])) {
      return `${name} differs from package-lock.json`;
    }
  }
  const extra = Object.keys(installed).find((name) => !(name in locked));
  return extra && `${extra} is installed but not in package-lock.json`;
}

const reason = why();
if (reason) {
  process.stderr.write(`node_modules is not current: ${reason}\n`);
  process.exit(1);
}
