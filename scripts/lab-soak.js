#!/usr/bin/env node
// The lab must never fail for a newcomer: run `npm run lab` N times back to back (default
// 20) with one core kept busy by a spinning process, and count the failures. Each run's
// namespaces are recorded (TORTIE_TESTBED_RECORD) and checked gone afterwards. Prints one
// line per run and a summary; exits 1 if any run failed or left something behind.
//   sudo node scripts/lab-soak.js [--runs N] [-- LAB ARGS...]   (after npm run build)
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const own = dash < 0 ? argv : argv.slice(0, dash);
const labArgs = dash < 0 ? [] : argv.slice(dash + 1);
const runsAt = own.indexOf('--runs');
const RUNS = runsAt < 0 ? 20 : Number(own[runsAt + 1]);
if (!Number.isInteger(RUNS) || RUNS < 1) {
  process.stderr.write(`--runs must be a positive whole number, got "${own[runsAt + 1]}"\n`);
  process.exit(2);
}
const LAB = path.resolve(__dirname, '../packages/lab/dist/cli.js');
if (!fs.existsSync(LAB)) {
  process.stderr.write(`${LAB} is missing: run "npm run build" first\n`);
  process.exit(2);
}

// the other core: a process that never sleeps
const busy = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
let current;
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    interrupted = true;
    busy.kill('SIGKILL');
    // the lab tears itself down on SIGINT (its own handler), then we exit
    if (current) current.kill('SIGINT');
    else process.exit(130);
  });
}

function namespaces() {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return new Set(
    r.stdout
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter(Boolean),
  );
}

function runLab(record) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let out = '';
    current = spawn(process.execPath, [LAB, ...labArgs], {
      env: { ...process.env, TORTIE_TESTBED_RECORD: record },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    current.stdout.on('data', (d) => (out += d));
    current.stderr.on('data', (d) => (out += d));
    current.on('close', (code) => {
      current = undefined;
      resolve({ code, ms: Date.now() - t0, out });
    });
  });
}

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-soak-'));
  const results = [];
  try {
    for (let i = 1; i <= RUNS && !interrupted; i++) {
      const record = path.join(dir, `run${i}.txt`);
      const r = await runLab(record);
      const created = fs.existsSync(record)
        ? fs
            .readFileSync(record, 'utf8')
            .split('\n')
            .filter((l) => l.startsWith('netns '))
            .map((l) => l.slice(6))
        : [];
      const now = namespaces();
      const left = created.filter((n) => now.has(n));
      const ok = r.code === 0 && left.length === 0;
      results.push({ ok, ms: r.ms });
      console.log(
        `run ${i}/${RUNS}: ${ok ? 'ok' : 'FAILED'} in ${(r.ms / 1000).toFixed(1)} s` +
          (r.code !== 0 ? ` (exit ${r.code})` : '') +
          (left.length ? ` (left behind: ${left.join(' ')})` : ''),
      );
      if (!ok) console.log(r.out.split('\n').slice(-25).join('\n'));
    }
  } finally {
    busy.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const failed = results.filter((r) => !r.ok).length;
  const secs = results.map((r) => r.ms / 1000).sort((a, b) => a - b);
  console.log(
    `lab soak: ${results.length} runs with one core busy, ${failed} failed; ` +
      `run time median ${secs[secs.length >> 1]?.toFixed(1)} s, longest ${secs[secs.length - 1]?.toFixed(1)} s`,
  );
  process.exitCode = failed || interrupted ? 1 : 0;
})();
