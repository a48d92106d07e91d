// The worker thread's code, as a string (run with `eval: true`, so it works the same from
// dist/ and under jest's TypeScript transform). It spawns what the main thread asks for
// and answers with the exit code and output. Messages in: {t:'start', id, argv, stdin}
// (stdin: false = none, true = chunks follow), {t:'data', id, chunk}, {t:'end', id};
// out: {t:'done', id, code, stdout, stderr} or {t:'fail', id, message}.
export const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { spawn } = require('node:child_process');
const running = new Map();
parentPort.on('message', (m) => {
  if (m.t === 'start') {
    let p;
    try {
      p = spawn(m.argv[0], m.argv.slice(1), { stdio: [m.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    } catch (e) {
      parentPort.postMessage({ t: 'fail', id: m.id, message: e.message });
      return;
    }
    running.set(m.id, p);
    const out = [];
    const err = [];
    let failed = false;
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    p.on('error', (e) => {
      failed = true;
      running.delete(m.id);
      parentPort.postMessage({ t: 'fail', id: m.id, message: e.message });
    });
    p.on('close', (code) => {
      running.delete(m.id);
      if (failed) return;
      parentPort.postMessage({
        t: 'done',
        id: m.id,
        code: code === null ? 1 : code,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
    // a tool that exits before reading all its input: its exit status says what went wrong
    if (m.stdin) p.stdin.on('error', () => undefined);
  } else {
    const p = running.get(m.id);
    if (!p || !p.stdin || p.stdin.destroyed || p.stdin.writableEnded) return;
    if (m.t === 'data') p.stdin.write(m.chunk);
    else p.stdin.end();
  }
});
`;
