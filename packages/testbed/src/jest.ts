// jest glue, kept out of the library entry so the library does not need jest globals.
//
// Skips are visible, and under CI they fail. A suite whose needs this machine lacks is
// skipped with a one-line reason on stderr; but CI installs everything, so under CI=true
// a skip fails the run (a failing test stands in place of the suite and says what was
// missing), unless the suite is listed in .ci/allowed-skips.json with the needs it may
// lack and a written reason. Each jest worker decides for the files it collects, and
// the failure is an ordinary failing test, so this holds with any number of workers.
import fs from 'node:fs';
import path from 'node:path';
import { KNOWN_NEEDS, missingNeeds, skipReason, type Need } from './capabilities';

/** One entry of the allow-list: a suite that may skip under CI, and why. */
export interface AllowedSkip {
  /** The test file, relative to the repository root. */
  file: string;
  /** The name given to describeIf. */
  describe: string;
  /** The needs it may lack; lacking any other still fails. */
  missing: Need[];
  /** Why skipping is acceptable, for the person reading the CI log. */
  reason: string;
}

/** What describeIf does with a suite. */
export type SkipDecision =
  | { action: 'run' }
  | { action: 'skip'; why: string; allowedBecause?: string }
  | { action: 'fail'; why: string; message: string };

/** The repository root (this file is packages/testbed/{src,dist}/jest.*). */
export const REPO_ROOT = path.resolve(__dirname, '../../..');
export const ALLOWED_SKIPS_FILE = path.join(REPO_ROOT, '.ci', 'allowed-skips.json');

/** CI=true (or any value but '', '0' and 'false'), as CI systems set it. */
export function onCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** Reads and checks the allow-list: every entry names its file, suite, needs and reason. */
export function readAllowedSkips(
  file = process.env.TORTIE_ALLOWED_SKIPS ?? ALLOWED_SKIPS_FILE,
): AllowedSkip[] {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { allowed?: unknown };
  if (!Array.isArray(doc.allowed)) throw new Error(`${file}: "allowed" must be a list`);
  return doc.allowed.map((e: Partial<AllowedSkip>, i) => {
    const where = `${file}: allowed[${i}]`;
    for (const k of ['file', 'describe', 'reason'] as const)
      if (typeof e[k] !== 'string' || !e[k].trim()) throw new Error(`${where}.${k} is missing`);
    if (!Array.isArray(e.missing) || e.missing.length === 0)
      throw new Error(`${where}.missing must list the needs it may lack`);
    const unknown = e.missing.filter((n) => !KNOWN_NEEDS.includes(n));
    if (unknown.length) throw new Error(`${where}.missing: unknown need ${unknown.join(', ')}`);
    return e as AllowedSkip;
  });
}

/**
 * Run, skip or fail: a suite runs when nothing is missing; otherwise it is skipped,
 * except under CI, where only a listed suite lacking only listed needs may skip.
 */
export function decideSkip(o: {
  /** The test file relative to the repository root. */
  file: string;
  name: string;
  /** Why it cannot run (skipReason), or undefined. */
  why: string | undefined;
  missing: Need[];
  ci: boolean;
  allowed: () => AllowedSkip[];
}): SkipDecision {
  if (o.why === undefined) return { action: 'run' };
  if (!o.ci) return { action: 'skip', why: o.why };
  const entry = o.allowed().find((e) => e.file === o.file && e.describe === o.name);
  const unlisted = o.missing.filter((n) => !entry?.missing.includes(n));
  if (entry && unlisted.length === 0)
    return { action: 'skip', why: o.why, allowedBecause: entry.reason };
  const listHint = entry
    ? `.ci/allowed-skips.json lets it lack only ${entry.missing.join(', ')}, not ${unlisted.join(', ')}`
    : `if it truly cannot run on CI, list it in .ci/allowed-skips.json ({"file": "${o.file}", "describe": ..., "missing": [${o.missing.map((n) => `"${n}"`).join(', ')}], "reason": ...})`;
  return {
    action: 'fail',
    why: o.why,
    message: `"${o.name}" would skip under CI=true (${o.why}). CI installs everything, so this suite must run there; ${listHint}.`,
  };
}

/**
 * describe() when everything in `needs` is here; else describe.skip with the reason
 * printed once, or, under CI and not allowed to skip, a failing test in its place.
 */
export function describeIf(needs: Need[], name: string, fn: () => void): void {
  if ((globalThis as { __TORTIE_UNIT__?: boolean }).__TORTIE_UNIT__)
    throw new Error(
      `describeIf("${name}") in the unit project: jest.config.js puts a file that imports ` +
        'describeIf in the host project; import it directly (not through a helper) or keep ' +
        'the unit test free of root, daemons and the VM',
    );
  const why = skipReason(needs);
  const testPath = why === undefined ? '' : (expect.getState().testPath ?? '');
  const d = decideSkip({
    file: path.relative(REPO_ROOT, testPath),
    name,
    why,
    missing: why === undefined ? [] : missingNeeds(needs),
    ci: onCi(),
    allowed: () => readAllowedSkips(),
  });
  if (d.action === 'run') {
    describe(name, fn);
  } else if (d.action === 'skip') {
    const allowed = d.allowedBecause ? ` (allowed on CI: ${d.allowedBecause})` : '';
    process.stderr.write(`skipping "${name}": ${d.why}${allowed}\n`);
    describe.skip(name, fn);
  } else {
    process.stderr.write(`FAIL: ${d.message}\n`);
    describe(name, () => {
      test('runs under CI (it may not skip)', () => {
        throw new Error(d.message);
      });
    });
  }
}
