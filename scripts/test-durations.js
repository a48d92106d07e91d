#!/usr/bin/env node
// Refreshes scripts/test-durations.json (the order scripts/test-sequencer.js runs test
// files in) from jest --json reports:
//   npx jest --selectProjects host --json --outputFile=/tmp/host.json
//   node scripts/test-durations.js /tmp/host.json [more.json...] [--prune]
// Each file in a report gets its run time (rounded to 0.1 s); files not in the reports
// keep theirs; --prune drops files that no longer exist.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { LIST } = require('./test-sequencer');

const ROOT = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const prune = args.includes('--prune');
const reports = args.filter((a) => a !== '--prune');
if (!reports.length && !prune) {
  console.error('usage: node scripts/test-durations.js REPORT.json... [--prune]');
  process.exit(2);
}

const list = JSON.parse(fs.readFileSync(LIST, 'utf8'));
const seconds = { ...list.seconds };
for (const r of reports) {
  const report = JSON.parse(fs.readFileSync(r, 'utf8'));
  if (!Array.isArray(report.testResults))
    throw new Error(`${r}: not a jest --json report (no testResults)`);
  for (const t of report.testResults) {
    const p = t.perfStats;
    const ms = p?.runtime ?? (p && p.end - p.start);
    if (!(ms > 0)) continue;
    const rel = path.relative(ROOT, t.name).split(path.sep).join('/');
    seconds[rel] = Math.round(ms / 100) / 10;
  }
}
if (prune)
  for (const rel of Object.keys(seconds))
    if (!fs.existsSync(path.join(ROOT, rel))) delete seconds[rel];
const sorted = Object.fromEntries(Object.entries(seconds).sort(([a], [b]) => (a < b ? -1 : 1)));
fs.writeFileSync(LIST, JSON.stringify({ ...list, seconds: sorted }, null, 2) + '\n');
console.log(`${LIST}: ${Object.keys(sorted).length} files`);
