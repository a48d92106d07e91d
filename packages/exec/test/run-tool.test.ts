// runTool: tools run from the worker thread, with their exit status, output and stdin.
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
  let produced = 0;
  function* many() {
    for (let i = 0; i < 100_000; i++) {
      produced++;
      yield 'x'.repeat(1000) + '\n';
    }
  }
  const r = await runTool(
    ['sh', '-c', 'head -c 100 >/dev/null; echo bad input >&2; exit 3'],
    many(),
  );
  expect(r).toMatchObject({ code: 3, stderr: 'bad input\n' });
  await new Promise((res) => setTimeout(res, 50));
  expect(produced).toBeLessThan(100_000);
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

test('the main thread is not blocked while tools start', async () => {
  // the event loop keeps turning while 20 tools are being forked and run
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  await Promise.all(Array.from({ length: 20 }, () => runTool(['sleep', '0.05'])));
  clearInterval(timer);
  expect(ticks).toBeGreaterThan(5);
});
