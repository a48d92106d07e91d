#!/usr/bin/env node
// `npm test` (and so CI): build, then the VM project in the background while the unit
// tests, lint, type check and the host project run in the foreground; fails if any fails.
//
// Why in parallel: run one after the other, the host phase (~14 min) and the VM phase
// (~14 min, QEMU emulating a CPU) made CI take 30-33 min, and neither keeps both cores
// busy all the time: the tests (in the VM too) wait on timers, daemons and convergence.
// Overlapped, each uses what the other leaves idle. The host tests already have to pass
// at load 20-30 on the shared machine, far above what one QEMU adds, and the VM tests'
// bounds are stretched for emulation.
// CPU time per file, cpuacct cgroup at load 20-37 (it inflates under load): acl-netns
// 50 s, etcd-cluster 80 s, tortiectl more than 130 s, for 94, 59 and 115 s of wall time
// on a quiet CI. TORTIE_TEST_SERIAL=1 runs the VM phase last, alone.
//
// The VM project's output is streamed with a "[vm] " prefix on each line. A failing
// foreground phase stops the VM phase (its process group, QEMU included) and exits.
'use strict';
const { spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const JEST = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const serial = ['1', 'true'].includes(process.env.TORTIE_TEST_SERIAL ?? '');

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

function summary() {
  process.stderr.write(`\nnpm test phases:\n${times.map((t) => `  ${t}\n`).join('')}`);
}

async function main() {
  const t0 = Date.now();
  if ((await phase('build', [NPM, 'run', 'build', '--silent'])) !== 0) return 1;
  const vmArgv = [process.execPath, JEST, '--runInBand', '--selectProjects', 'vm'];
  const vm = serial ? undefined : run('vm', vmArgv, '[vm] ');
  if (vm) children.add(vm.child);
  const foreground = [
    ['unit', [process.execPath, JEST, '--selectProjects', 'unit']],
    ['lint', [NPM, 'run', 'lint', '--silent']],
    ['typecheck', [NPM, 'run', 'typecheck', '--silent']],
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
