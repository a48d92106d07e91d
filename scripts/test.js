#!/usr/bin/env node
// `npm test` (and so CI): build, lint and type check at once (each is one thread, and
// none reads what another writes: lint and the type check read src, the build writes
// dist), then the unit tests, the host project, then the VM project, one after the
// other; stops at the first phase that fails and prints each phase's time and load
// average at the end.
//
// Why the host and VM phases run one after the other: overlapping the VM phase (QEMU
// emulating a CPU) with the host phase was tried on CI (2026-12-06, e21d9ee, a quiet
// 2-core machine): the host phase took 1596 s instead of ~830 s, the VM phase did not
// finish in 1791 s (~820 s alone), and a BFD test (100 ms x 3) saw a BGP session reset
// it never sees alone. Both phases are CPU-bound enough on two cores that overlapping
// them only stretched each.
// TORTIE_TEST_PARALLEL=1 still runs the VM phase alongside the unit and host phases, its lines
// prefixed "[vm] "; a failing foreground phase then stops it (QEMU included).
'use strict';
const { spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const JEST = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const parallel = ['1', 'true'].includes(process.env.TORTIE_TEST_PARALLEL ?? '');

const times = [];
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

/** Forwards `stream` to `out` line by line, each line prefixed (a partial line waits). */
function prefixed(stream, out, prefix) {
  let rest = '';
  stream.on('data', (d) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop();
    if (lines.length) out.write(lines.map((l) => `${prefix}${l}\n`).join(''));
  });
  stream.on('end', () => rest && out.write(`${prefix}${rest}\n`));
}

/**
 * Runs argv from the repo root in its own process group. Resolves with its exit code;
 * with `prefix`, its output is prefixed, else it inherits ours.
 */
function run(name, argv, prefix) {
  const t0 = Date.now();
  const child = spawn(argv[0], argv.slice(1), {
    cwd: ROOT,
    stdio: prefix ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    detached: true, // its own process group: stopping it stops its QEMU too
  });
  if (prefix) {
    prefixed(child.stdout, process.stdout, prefix);
    prefixed(child.stderr, process.stderr, prefix);
  }
  const done = new Promise((resolve) => {
    child.once('error', (e) => {
      process.stderr.write(`${name}: ${e.message}\n`);
      resolve(1);
    });
    child.once('close', (code, signal) => {
      const s = Math.round((Date.now() - t0) / 1000);
      times.push(`${name} ${s} s (exit ${code ?? signal}, load average ${load()})`);
      resolve(code ?? 1);
    });
  });
  return { child, done };
}

const children = new Set();
/** Stops a phase by its process group (ours alone: each phase is a group leader). */
function stop(child) {
  try {
    process.kill(-child.pid, 'SIGTERM');
    setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }, 5000).unref();
  } catch {
    // gone already
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    children.forEach(stop);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

async function phase(name, argv, prefix) {
  const p = run(name, argv, prefix);
  children.add(p.child);
  const code = await p.done;
  children.delete(p.child);
  return code;
}

/**
 * Runs phases at once, the first with our output and the others with their lines
 * prefixed by their name; resolves with the first failing exit code, else 0.
 */
async function together(list) {
  const codes = await Promise.all(
    list.map(([name, argv], i) => phase(name, argv, i === 0 ? undefined : `[${name}] `)),
  );
  return codes.find((c) => c !== 0) ?? 0;
}

function summary() {
  process.stderr.write(`\nnpm test phases:\n${times.map((t) => `  ${t}\n`).join('')}`);
}

async function main() {
  const t0 = Date.now();
  const checks = [
    ['build', [NPM, 'run', 'build', '--silent']],
    ['lint', [NPM, 'run', 'lint', '--silent']],
    ['typecheck', [NPM, 'run', 'typecheck', '--silent']],
  ];
  if ((await together(checks)) !== 0) return 1;
  const vmArgv = [process.execPath, JEST, '--runInBand', '--selectProjects', 'vm'];
  const vm = parallel ? run('vm', vmArgv, '[vm] ') : undefined;
  if (vm) children.add(vm.child);
  const foreground = [
    ['unit', [process.execPath, JEST, '--selectProjects', 'unit']],
    ['host', [process.execPath, JEST, '--selectProjects', 'host']],
  ];
  for (const [name, argv] of foreground) {
    if ((await phase(name, argv)) !== 0) {
      if (vm) {
        process.stderr.write(`${name} failed: stopping the VM phase\n`);
        stop(vm.child);
        await vm.done;
      }
      return 1;
    }
  }
  let vmCode;
  if (vm) {
    process.stderr.write('host phase done; waiting for the VM phase\n');
    vmCode = await vm.done;
    children.delete(vm.child);
  } else vmCode = await phase('vm', vmArgv);
  times.push(`total ${Math.round((Date.now() - t0) / 1000)} s`);
  return vmCode === 0 ? 0 : 1;
}

main().then(
  (code) => {
    summary();
    process.exit(code);
  },
  (e) => {
    process.stderr.write(`${e.stack ?? e}\n`);
    children.forEach(stop);
    process.exit(1);
  },
);
