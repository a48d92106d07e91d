// runTool: tools run from the worker thread, with their exit status, output and stdin.
import { spawn } from 'node:child_process';
import { runTool } from '../src';

function* pieces(n: number, size: number) {
  for (let i = 0; i < n; i++) yield `${String(i).padStart(8, '0')}${'x'.repeat(size - 9)}\n`;
}

test('exit code, stdout and stderr', async () => {
  expect(await runTool(['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({
    code: 3,
    stdout: 'out\n',
    stderr: 'err\n',
  });
});

test('a string on stdin, and streamed pieces reach the tool whole and in order', async () => {
  expect((await runTool(['cat'], 'one\ntwo\n')).stdout).toBe('one\ntwo\n');
  const r = await runTool(
    ['awk', '{ n += length($0) + 1; last = substr($0, 1, 8) } END { print n; print last }'],
    pieces(2000, 1000),
  );
  expect(r).toEqual({ code: 0, stdout: '2000000\n00001999\n', stderr: '' });
});

test('a tool that stops reading and fails reports its status; producing stops', async () => {
  // Producing stops once the tool's exit is known: nothing (but the piece in hand) is
  // produced after runTool resolved. 1 GB is on offer, more than can be produced in the
  // meantime. The old check (fewer than 100 MB produced 50 ms after the result) hung on
  // timing: a working runner had produced 31 MB by the result on a quiet machine, but
  // over 100 MB under load, and failed. Shown to fail against a broken build (the feed in
  // src/run-tool.ts without its finished check, locally, not committed): 244,860 pieces
  // at the result, 280,962 50 ms later; the working runner: 31,020, then 31,021.
  let produced = 0;
  function* many() {
    for (let i = 0; i < 1_000_000; i++) {
      produced++;
      yield 'x'.repeat(1000) + '\n';
    }
  }
  const r = await runTool(
    ['sh', '-c', 'head -c 100 >/dev/null; echo bad input >&2; exit 3'],
    many(),
  );
  expect(r).toMatchObject({ code: 3, stderr: 'bad input\n' });
  const atResult = produced;
  await new Promise((res) => setTimeout(res, 50));
  expect(produced).toBeLessThanOrEqual(atResult + 1);
  expect(produced).toBeLessThan(1_000_000);
}, 20000);

test('a missing binary is an error naming it; the runner keeps working', async () => {
  await expect(runTool(['tortie-no-such-tool', '-x'])).rejects.toThrow(/tortie-no-such-tool/);
  expect((await runTool(['true'])).code).toBe(0);
});

test('many at once all complete', async () => {
  const rs = await Promise.all(
    Array.from({ length: 50 }, (_, i) => runTool(['sh', '-c', `echo ${i}`])),
  );
  expect(rs.map((r) => Number(r.stdout))).toEqual(Array.from({ length: 50 }, (_, i) => i));
});

/** The longest the event loop went without running a 1 ms timer while `work` ran. */
async function longestStall(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 5));
  last = performance.now();
  longest = 0;
  await work();
  longest = Math.max(longest, performance.now() - last);
  clearInterval(timer);
  return longest;
}

/** `true` spawned from this thread, as runTool would if it spawned on the main thread. */
function spawnHere(): Promise<void> {
  return new Promise((resolve) => spawn('true').on('close', () => resolve()));
}

test('the main thread is not blocked while tools start', async () => {
  // spawn() blocks its thread until the child has exec'd. The reference is the same 50
  // tools spawned from this thread, in the same test: the event loop stalls for the
  // whole burst (1 ms or more per spawn). runTool spawns on its worker thread, so the main
  // thread only posts messages and must stall far less (best of three, against noise).
  // Shown to fail against a broken build: with runTool replaced by a plain spawn() on
  // the main thread (src/run-tool.ts, locally, not committed), the best of three stalls
  // was 723 ms against the reference's 1,224 ms (a loaded machine: ~25 ms per spawn) and
  // this test failed; the working build stalled 11-33 ms against 630-943 ms. The old check
  // (more than 5 ticks of a 1 ms timer) passed against that broken build (11 ticks).
  const N = 50;
  await runTool(['true']); // the worker thread exists before measuring
  const reference = await longestStall(() => Promise.all(Array.from({ length: N }, spawnHere)));
  const ours: number[] = [];
  for (let i = 0; i < 3; i++)
    ours.push(
      await longestStall(() => Promise.all(Array.from({ length: N }, () => runTool(['true'])))),
    );
  // the reference must block measurably, or this test could not tell the two apart
  expect(reference).toBeGreaterThan(20);
  expect(Math.min(...ours)).toBeLessThan(reference / 4);
});
