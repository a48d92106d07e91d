// Every test that needs Debian's kernel, in one VM boot (QEMU TCG: software emulation).
// Under emulation a boot costs ~10 s and a jest start ~35 s on a quiet machine (loading
// jest and swc over 9p), so the suites below share one boot and one jest
// start instead of paying both per file. Each listed suite still gets its own test here,
// which passes only when every one of its tests passed inside, and names the failing
// ones when not. Inside, timeouts and waits stretch by testbed's SLOW.
//
// What runs where: a file that needs a kernel feature (`needs`) runs in the VM only where
// this host's kernel lacks it, and on the host (required into this file) where it has
// it; a file without `needs` always runs in the VM (the BGP and VXLAN e2e, to show the
// harness is neutral: the same suites pass on a distribution kernel too). The inner files
// are named *.vmtest.ts so that jest's projects never pick them up by themselves.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  describeIf,
  runJestInVm,
  skipReason,
  type JestReport,
  type JestVmResult,
  type Need,
} from '@tortie/testbed';

const ROOT = path.resolve(__dirname, '..');

interface Inner {
  /** The test file, from the repository root. */
  file: string;
  /** Its suites (describe names) that run, each with its number of tests: all must pass. */
  suites: Record<string, number>;
  /** The kernel features it needs: in the VM only where this kernel lacks one. */
  needs?: Need[];
  /** Kernel modules loaded at boot (the kernel autoloads others as they are used). */
  modules: string[];
}

export const INNER: Inner[] = [
  {
    file: 'packages/testbed/test/fixtures/in-vm.vmtest.ts',
    suites: { 'VM runner: jest inside the VM': 2 },
    modules: ['ipip', 'sctp'],
  },
  {
    file: 'e2e/cluster.test.ts',
    suites: {
      'cluster: BGP full mesh with a BIRD top-of-rack router': 6,
      'cluster: VXLAN overlay (no BGP)': 3,
    },
    modules: ['vxlan', 'veth', 'bridge'],
  },
  {
    file: 'e2e/ipip.vmtest.ts',
    suites: { 'IPIP on a real kernel: three nodes in two subnets': 6 },
    needs: ['ipip'],
    modules: ['ipip', 'veth', 'bridge'],
  },
  {
    file: 'packages/felix/test/acl-sctp.vmtest.ts',
    suites: {
      'SCTP policy on the real kernel (iptables-legacy)': 1,
      'SCTP policy on the real kernel (iptables-nft)': 1,
    },
    needs: ['sctp'],
    modules: ['sctp', 'veth'],
  },
];

const onHost = INNER.filter((i) => i.needs && !skipReason(i.needs));
const inVm = INNER.filter((i) => !onHost.includes(i));
// where this kernel has what a file needs, its suites run here, as the file's own
for (const i of onHost) require(path.join(ROOT, i.file));

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const suiteNames = inVm.flatMap((i) => Object.keys(i.suites));
/** jest matches it against "<describe> <test>": only the listed suites' tests run. */
const PATTERN = `^(${suiteNames.map(escape).join('|')}) `;

/** Why `suite` of `file` did not pass inside, one line per failure; [] when it passed. */
export function suiteProblems(
  report: JestReport | undefined,
  file: string,
  suite: string,
  expected: number,
): string[] {
  if (!report) return ['the jest inside wrote no report (its stderr is above)'];
  const result = report.testResults.find((t) => t.name === path.join(ROOT, file));
  if (!result) return [`${file} did not run inside`];
  const tests = result.assertionResults.filter((a) => a.ancestorTitles[0] === suite);
  const firstLine = (m: string) => m.split('\n').find((l) => l.trim()) ?? '';
  const problems = tests
    .filter((a) => a.status === 'failed')
    .map((a) => `${a.fullName}: ${a.failureMessages.map(firstLine).join('; ')}`);
  const passed = tests.filter((a) => a.status === 'passed').length;
  if (passed !== expected) {
    const other = tests.filter((a) => a.status !== 'passed').map((a) => a.status);
    problems.push(`${passed} of ${expected} tests passed (others: ${other.join(', ') || 'none'})`);
    if (result.message && !tests.length) problems.push(result.message.slice(0, 4000));
  }
  return problems;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`.padStart(8);
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

/** Where the VM's time went: boot, jest start, each file (its hooks) and each test. */
export function timingTable(r: JestVmResult, startedAt: number): string {
  const lines = [`boot ${secs(r.bootMs ?? 0)}`];
  const report = r.report;
  if (report) {
    const commandAt = startedAt + (r.bootMs ?? 0);
    lines.push(`jest start ${secs(report.startTime - commandAt)} (command start to jest's run)`);
    for (const f of [...report.testResults].sort((a, b) => a.startTime - b.startTime)) {
      const ran = f.assertionResults.filter((a) => a.status === 'passed' || a.status === 'failed');
      const inTests = ran.reduce((s, a) => s + (a.duration ?? 0), 0);
      const file = path.relative(ROOT, f.name);
      const wall = f.endTime - f.startTime;
      lines.push(
        `${file} ${secs(wall)} (in tests ${secs(inTests)}, load/hooks ${secs(wall - inTests)})`,
      );
      for (const a of ran) lines.push(`  ${secs(a.duration ?? 0)}  ${a.status} ${a.fullName}`);
    }
    const last = Math.max(...report.testResults.map((f) => f.endTime));
    lines.push(`jest end to VM exit ${secs(startedAt + r.durationMs - last)}`);
  }
  lines.push(`total ${secs(r.durationMs)}`);
  return lines.join('\n');
}

describeIf(['root', 'vm'], 'kernel tests in one VM (Debian kernel under QEMU)', () => {
  let r: JestVmResult;
  beforeAll(async () => {
    const t0 = Date.now();
    const loadBefore = load();
    r = await runJestInVm(
      inVm.map((i) => path.join(ROOT, i.file)),
      {
        modules: [...new Set(inVm.flatMap((i) => i.modules))],
        memoryMb: 3072,
        cpus: 2,
        // a bound, not the expected time (~8 min on a quiet machine); at load 12-20, QEMU
        // getting half a core, the BGP/VXLAN part alone once took over 25 min
        timeoutMs: 3_600_000,
        jestArgs: ['--testNamePattern', PATTERN],
        onStdout: (d) => process.stdout.write(d),
        onStderr: process.env.TORTIE_VM_VERBOSE ? (d) => process.stderr.write(d) : undefined,
      },
    );
    // what CI's VM phase pays, and where, with the load it ran under
    process.stderr.write(
      `kernel.vm: load average ${loadBefore} before, ${load()} after\n${timingTable(r, t0)}\n`,
    );
    if (r.code !== 0 && !process.env.TORTIE_VM_VERBOSE) process.stderr.write(r.stderr.slice(-8000));
  }, 3_620_000);

  for (const i of inVm)
    for (const [suite, n] of Object.entries(i.suites))
      test(`${suite} (${i.file}): its ${n} tests pass inside`, () => {
        expect(suiteProblems(r.report, i.file, suite, n)).toEqual([]);
      });

  test('the jest inside exits 0 and runs no test of another suite', () => {
    const others = (r.report?.testResults ?? []).flatMap((f) =>
      f.assertionResults
        .filter((a) => a.status === 'passed' || a.status === 'failed')
        .filter((a) => !suiteNames.includes(a.ancestorTitles[0]))
        .map((a) => a.fullName),
    );
    expect(others).toEqual([]);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
  });
});

/** *.vmtest.ts files under `dir`. */
function vmTestFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === 'node_modules' || e.name === 'dist') return [];
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return vmTestFiles(p);
    return e.name.endsWith('.vmtest.ts') ? [path.relative(ROOT, p)] : [];
  });
}

test('every *.vmtest.ts file is listed here (nothing else runs them)', () => {
  const found = ['packages', 'e2e'].flatMap((d) => vmTestFiles(path.join(ROOT, d))).sort();
  const listed = INNER.map((i) => i.file).filter((f) => f.endsWith('.vmtest.ts'));
  expect(found).toEqual(listed.sort());
});
