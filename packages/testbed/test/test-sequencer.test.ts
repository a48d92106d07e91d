// scripts/test-sequencer.js, the order jest runs test files in: longest first by the
// committed scripts/test-durations.json, the same on a fresh clone as here, and every
// host file either listed or given the list's median.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
const seq = require(path.join(ROOT, 'scripts/test-sequencer.js'));
const jestConfig = require(path.join(ROOT, 'jest.config.js'));

/** The host project's files, as jest.config.js selects them (its ignore patterns). */
function hostFiles(): string[] {
  const host = jestConfig.projects.find((p: { displayName: string }) => p.displayName === 'host');
  const ignore = (host.testPathIgnorePatterns as string[]).map((p) => new RegExp(p));
  const walk = (dir: string, inTest: boolean): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      if (e.name === 'node_modules' || e.name === 'dist') return [];
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return walk(p, inTest || e.name === 'test');
      return inTest && e.name.endsWith('.test.ts') ? [p] : [];
    });
  return [...walk(path.join(ROOT, 'packages'), false), ...walk(path.join(ROOT, 'e2e'), true)]
    .filter((f) => !ignore.some((r) => r.test(f)))
    .sort();
}

describe('test sequencer', () => {
  test('jest.config uses it', () => {
    expect(jestConfig.testSequencer).toBe(path.join(ROOT, 'scripts/test-sequencer.js'));
  });

  test('longest first, unlisted files at the median, ties by path', () => {
    const d = new Map([
      ['e2e/a.test.ts', 10],
      ['e2e/b.test.ts', 100],
      ['e2e/c.test.ts', 30],
    ]);
    expect(seq.defaultSeconds(d)).toBe(30);
    const abs = (r: string) => path.join(ROOT, r);
    const files = ['e2e/a.test.ts', 'e2e/new.test.ts', 'e2e/b.test.ts', 'e2e/c.test.ts'].map(abs);
    expect(seq.order(d, files).map((f: string) => path.relative(ROOT, f))).toEqual([
      'e2e/b.test.ts',
      'e2e/c.test.ts', // 30 s, and new.test.ts gets the median, 30 s: by path
      'e2e/new.test.ts',
      'e2e/a.test.ts',
    ]);
  });

  test('a bad duration is refused, naming the file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-seq-'));
    try {
      const f = path.join(dir, 'd.json');
      fs.writeFileSync(f, JSON.stringify({ seconds: { 'e2e/x.test.ts': 'long' } }));
      expect(() => seq.readDurations(f)).toThrow(/e2e\/x\.test\.ts must be a number/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every host file has a sane expected duration; the list names no missing file', () => {
    const d: Map<string, number> = seq.readDurations();
    const files = hostFiles();
    expect(files.length).toBeGreaterThan(40);
    const median = seq.defaultSeconds(d);
    expect(median).toBeGreaterThan(0);
    for (const f of files) {
      const s = seq.expectedSeconds(d, f);
      expect([f, s > 0 && s < 600]).toEqual([f, true]);
    }
    // a new host file gets the median until the list is refreshed; more than a few means
    // the list is stale (node scripts/test-durations.js REPORT.json)
    const unlisted = files.filter((f) => !d.has(path.relative(ROOT, f)));
    expect(unlisted.length).toBeLessThanOrEqual(5);
    const missing = [...d.keys()].filter((r) => !fs.existsSync(path.join(ROOT, r)));
    expect(missing).toEqual([]); // node scripts/test-durations.js --prune
  });
});
