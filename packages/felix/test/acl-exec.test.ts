// Streaming stdin to a tool: pieces arrive in order, and a tool that exits early (bad
// input) ends the run with its status instead of leaving the writer waiting.
import { runCommand } from '../src/dataplane/acl/exec';

function* pieces(n: number, size: number) {
  for (let i = 0; i < n; i++) yield `${String(i).padStart(8, '0')}${'x'.repeat(size - 9)}\n`;
}

test('streamed pieces reach the process whole and in order', async () => {
  const r = await runCommand(
    ['awk', '{ n += length($0) + 1; last = substr($0, 1, 8) } END { print n; print last }'],
    pieces(2000, 1000),
  );
  expect(r.code).toBe(0);
  expect(r.stdout.split('\n').slice(0, 2)).toEqual(['2000000', '00001999']);
});

test('a process that stops reading and fails reports its status (no hang)', async () => {
  const r = await runCommand(
    ['sh', '-c', 'head -c 100 >/dev/null; echo bad input >&2; exit 3'],
    pieces(5000, 1000),
  );
  expect(r.code).toBe(3);
  expect(r.stderr).toBe('bad input\n');
}, 10000);

test('a missing binary is an error naming it', async () => {
  await expect(runCommand(['tortie-no-such-tool'])).rejects.toThrow(/tortie-no-such-tool/);
});
