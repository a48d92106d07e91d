// Skips are visible and fail CI (src/jest.ts): the decision itself, the real allow-list,
// and a child jest over fixtures (test/fixtures/skips, two files in two worker
// processes, bird and gobgp off PATH) with and without CI=true.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ALLOWED_SKIPS_FILE,
  REPO_ROOT,
  decideSkip,
  onCi,
  readAllowedSkips,
  type AllowedSkip,
} from '../src/jest';

const FIXTURES = path.join(__dirname, 'fixtures', 'skips');

describe('decideSkip', () => {
  const allowed: AllowedSkip[] = [
    { file: 'a.test.ts', describe: 'ipip suite', missing: ['ipip'], reason: 'no module' },
  ];
  const base = { file: 'a.test.ts', name: 'ipip suite', ci: true, allowed: () => allowed };

  test('nothing missing: runs, on CI or not, without reading the allow-list', () => {
    const unread = () => {
      throw new Error('read');
    };
    expect(decideSkip({ ...base, why: undefined, missing: [], allowed: unread })).toEqual({
      action: 'run',
    });
  });

  test('off CI a missing need skips, listed or not', () => {
    const why = 'gobgpd not installed';
    expect(decideSkip({ ...base, name: 'other', ci: false, why, missing: ['gobgp'] })).toEqual({
      action: 'skip',
      why,
    });
  });

  test('on CI: a listed suite lacking only its listed needs skips, with the reason', () => {
    expect(decideSkip({ ...base, why: 'no ipip', missing: ['ipip'] })).toEqual({
      action: 'skip',
      why: 'no ipip',
      allowedBecause: 'no module',
    });
  });

  test('on CI: an unlisted suite, a suite in another file, or a listed one lacking more, fails', () => {
    const other = decideSkip({ ...base, name: 'other', why: 'no etcd', missing: ['etcd'] });
    expect(other).toMatchObject({ action: 'fail' });
    expect(other.action === 'fail' && other.message).toMatch(
      /"other" would skip under CI=true \(no etcd\).*list it in \.ci\/allowed-skips\.json/,
    );
    expect(
      decideSkip({ ...base, file: 'b.test.ts', why: 'no ipip', missing: ['ipip'] }),
    ).toMatchObject({ action: 'fail' });
    const more = decideSkip({ ...base, why: 'no ipip; no etcd', missing: ['ipip', 'etcd'] });
    expect(more.action === 'fail' && more.message).toMatch(/lack only ipip, not etcd/);
  });

  test('CI is on for CI=true or 1, off when unset, empty, 0 or false', () => {
    expect(['true', '1', 'yes'].map((CI) => onCi({ CI }))).toEqual([true, true, true]);
    expect([undefined, '', '0', 'false', 'FALSE'].map((CI) => onCi({ CI }))).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});

describe('the allow-list', () => {
  test('every entry names a describeIf suite that exists, the needs it may lack and a reason', () => {
    const entries = readAllowedSkips(ALLOWED_SKIPS_FILE);
    for (const e of entries) {
      const file = path.join(REPO_ROOT, e.file);
      expect(fs.existsSync(file)).toBe(true);
      const text = fs.readFileSync(file, 'utf8');
      expect(text).toContain(`'${e.describe}'`);
      expect(text).toContain('describeIf(');
      expect(e.reason.length).toBeGreaterThan(20);
    }
  });

  test('a malformed entry is refused, naming it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-skips-'));
    try {
      const file = path.join(dir, 'list.json');
      fs.writeFileSync(file, JSON.stringify({ allowed: [{ file: 'x', describe: 'y' }] }));
      expect(() => readAllowedSkips(file)).toThrow(/allowed\[0\]\.reason is missing/);
      fs.writeFileSync(
        file,
        JSON.stringify({ allowed: [{ file: 'x', describe: 'y', reason: 'z', missing: ['ipx'] }] }),
      );
      expect(() => readAllowedSkips(file)).toThrow(/unknown need ipx/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface JestJson {
  numFailedTests: number;
  numPassedTests: number;
  numPendingTests: number;
  testResults: Array<{
    assertionResults: Array<{ fullName: string; status: string; failureMessages: string[] }>;
  }>;
}

/** The fixtures through a child jest (two workers); bird and gobgp are off its PATH. */
async function runFixtures(env: Record<string, string>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-skips-'));
  try {
    const out = path.join(dir, 'result.json');
    const config = {
      rootDir: REPO_ROOT,
      roots: [FIXTURES],
      testMatch: ['**/*.fixture.ts'],
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' } } }] },
      cacheDirectory: path.join(dir, 'cache'), // no timings: jest uses its workers
    };
    const jest = require.resolve('jest/bin/jest');
    const args = ['--config', JSON.stringify(config), '--maxWorkers=2', '--json'];
    const child = spawn(process.execPath, [jest, ...args, '--outputFile', out], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PATH: '/nonexistent',
        TORTIE_ALLOWED_SKIPS: path.join(FIXTURES, 'allowed-skips.json'),
        CI: '',
        ...env,
      },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    const json = JSON.parse(fs.readFileSync(out, 'utf8')) as JestJson;
    const tests = new Map(
      json.testResults.flatMap((f) =>
        f.assertionResults.map((a) => [a.fullName, a] as [string, typeof a]),
      ),
    );
    const pids = [...stderr.matchAll(/fixture pid (\d+)/g)].map((m) => Number(m[1]));
    return { code, json, tests, stderr, pids, jestPid: child.pid };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('describeIf in a child jest, two files in parallel workers', () => {
  let off: Awaited<ReturnType<typeof runFixtures>>;
  let ci: Awaited<ReturnType<typeof runFixtures>>;
  beforeAll(async () => {
    [off, ci] = await Promise.all([runFixtures({}), runFixtures({ CI: 'true' })]);
  }, 60_000);

  test('off CI: the three suites skip with their reasons, the rest runs, the run passes', () => {
    expect(off.code).toBe(0);
    expect(off.json).toMatchObject({ numFailedTests: 0, numPassedTests: 1, numPendingTests: 3 });
    expect(off.stderr).toContain(
      'skipping "fixture: lacks gobgp, not listed": gobgpd, gobgp not installed',
    );
  });

  test('CI=true: each unlisted skip is a failing test saying why; the listed skip is allowed; the run fails', () => {
    expect(ci.code).toBe(1);
    // the fixtures ran in worker processes, not in the jest process
    expect(ci.pids).toHaveLength(2);
    expect(ci.pids).not.toContain(ci.jestPid);
    expect(ci.json).toMatchObject({ numFailedTests: 2, numPassedTests: 1, numPendingTests: 1 });
    const failed = [...ci.tests.values()].filter((t) => t.status === 'failed');
    expect(failed.map((t) => t.fullName).sort()).toEqual([
      'fixture: lacks bird and gobgp, listed for bird only runs under CI (it may not skip)',
      'fixture: lacks gobgp, not listed runs under CI (it may not skip)',
    ]);
    expect(failed.map((t) => t.failureMessages.join('')).join('\n')).toMatch(
      /"fixture: lacks gobgp, not listed" would skip under CI=true \(gobgpd, gobgp not installed/,
    );
    expect(
      ci.tests.get(
        'fixture: lacks bird and gobgp, listed for bird only runs under CI (it may not skip)',
      )?.failureMessages[0],
    ).toMatch(/lack only bird, not gobgp/);
    expect(ci.tests.get('fixture: lacks bird, listed never runs')?.status).toBe('pending');
    expect(ci.stderr).toContain(
      'skipping "fixture: lacks bird, listed": bird, birdc not installed (run scripts/install-deps.sh) (allowed on CI: the fixture\'s reason)',
    );
  });
});
