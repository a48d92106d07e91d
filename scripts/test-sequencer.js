// jest's testSequencer for this repo: test files longest first, by the durations
// committed in scripts/test-durations.json, so that the order is the same on a fresh
// clone (CI) as here. jest's own sequencer orders by the last run's durations from its
// cache and, with no cache, by file size, so on CI a 100 s netns file could start last
// on one of the two workers and stretch the host phase by its whole length.
// A file not in the list gets the list's median (a new file is neither started first nor
// left to the end); a file that failed in the last local run still goes first (jest's
// cache, absent on CI). Refresh the list with scripts/test-durations.js.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;

const ROOT = path.resolve(__dirname, '..');
const LIST = path.join(__dirname, 'test-durations.json');

/** The committed durations: repo-relative path -> seconds. */
function readDurations(file = LIST) {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  const out = new Map();
  for (const [p, s] of Object.entries(raw.seconds ?? {})) {
    if (typeof s !== 'number' || !(s >= 0))
      throw new Error(`${file}: duration of ${p} must be a number of seconds >= 0, got ${s}`);
    out.set(p, s);
  }
  return out;
}

/** The median of the listed durations: what a file not in the list is taken to need. */
function defaultSeconds(durations) {
  const s = [...durations.values()].sort((a, b) => a - b);
  if (!s.length) return 0;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Seconds expected for the test file at absolute `file`. */
function expectedSeconds(durations, file, fallback = defaultSeconds(durations)) {
  const rel = path.relative(ROOT, file).split(path.sep).join('/');
  return durations.get(rel) ?? fallback;
}

/** Absolute paths longest first; ties by path, so the order never depends on the machine. */
function order(durations, files) {
  const fallback = defaultSeconds(durations);
  const s = new Map(files.map((f) => [f, expectedSeconds(durations, f, fallback)]));
  return [...files].sort((a, b) => s.get(b) - s.get(a) || (a < b ? -1 : a > b ? 1 : 0));
}

class DurationSequencer extends Sequencer {
  sort(tests) {
    const durations = readDurations();
    const ordered = order(
      durations,
      tests.map((t) => t.path),
    );
    const rank = new Map(ordered.map((p, i) => [p, i]));
    return [...tests].sort((a, b) => {
      const fa = this.hasFailed(a);
      if (fa !== this.hasFailed(b)) return fa ? -1 : 1;
      return rank.get(a.path) - rank.get(b.path);
    });
  }
}

module.exports = DurationSequencer;
module.exports.readDurations = readDurations;
module.exports.defaultSeconds = defaultSeconds;
module.exports.expectedSeconds = expectedSeconds;
module.exports.order = order;
module.exports.LIST = LIST;
