// The VM runner: Debian's kernel under QEMU (software emulation: a few seconds a boot),
// so the checks that can share one boot do, and the two boots run at once. runJestInVm
// is shown by e2e/kernel.vm.test.ts, whose one boot runs this package's jest fixture
// (test/fixtures/in-vm.vmtest.ts) with the other kernel suites: a jest start costs ~35 s
// under emulation, too much to pay twice.
import { describeIf, python3, runInVm, type VmResult } from '../src';
import { cpioArchive } from '../src/cpio';

const SCRIPT = `
echo first
sleep 1
printf '[%s]' "$@"; echo
echo "cwd=$(pwd) foo=$FOO in_vm=$TORTIE_IN_VM"
echo to-stderr >&2
ip link add t0 type ipip local 10.0.0.1 remote 10.0.0.2 && echo ipip-ok
"$PY" -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()" && echo sctp-ok
ip netns add tt-vm && ip netns exec tt-vm ip link set lo up && ip netns del tt-vm && echo netns-ok
exit 7
`;

/** One line per run, so boot and jest-in-VM times show up in test logs. */
function report(what: string, r: VmResult): void {
  const jest = /^Time:\s+(.*)$/m.exec(r.stderr)?.[1];
  const inner = jest ? `, jest's own Time ${jest}` : '';
  process.stderr.write(`vm: ${what}: boot ${r.bootMs} ms, total ${r.durationMs} ms${inner}\n`);
}

describeIf(['root', 'vm'], 'VM runner', () => {
  let r: VmResult;
  let t: VmResult;
  let firstChunkAt = 0;
  let endedAt = 0;

  beforeAll(async () => {
    // the timeout check's VM runs alongside: its 10 s are then not added to the file's time
    const timeout = runInVm(['sleep', '600'], { timeoutMs: 10_000 });
    r = await runInVm(['sh', '-c', SCRIPT, 'sh', 'a b', "it's"], {
      modules: ['ipip', 'sctp'],
      cwd: '/usr/share',
      // the interpreter itself: a shim on PATH (pyenv's) costs seconds under emulation
      env: { FOO: 'bar baz', PY: python3() },
      timeoutMs: 120_000,
      onStdout: () => (firstChunkAt ||= Date.now()),
    });
    endedAt = Date.now();
    report('sh script', r);
    t = await timeout;
  }, 130_000);

  test('the exit code, stdout and stderr come back; argv, cwd and env go in', () => {
    expect(r).toMatchObject({ code: 7, timedOut: false, stderr: 'to-stderr\n' });
    expect(r.stdout).toContain("[a b][it's]\ncwd=/usr/share foo=bar baz in_vm=1\n");
  });

  test('output streams while the command runs', () => {
    expect(endedAt - firstChunkAt).toBeGreaterThanOrEqual(1000);
  });

  test('the loaded modules give ipip tunnels and SCTP sockets; namespaces work', () => {
    expect(r.stdout).toContain('ipip-ok\nsctp-ok\nnetns-ok\n');
  });

  test('a timeout kills the VM and says so', () => {
    expect(t).toMatchObject({ timedOut: true, code: null });
    expect(t.durationMs).toBeLessThan(20_000);
  });
});

test('cpio: newc headers, 4-byte alignment, the trailer last', () => {
  const a = cpioArchive([
    { type: 'dir', path: 'bin' },
    { type: 'file', path: '/bin/x', data: Buffer.from('hello'), mode: 0o755 },
    { type: 'symlink', path: 'sh', target: 'bin/x' },
  ]);
  const names: string[] = [];
  for (let at = 0; ;) {
    expect(a.toString('latin1', at, at + 6)).toBe('070701');
    const field = (i: number) =>
      parseInt(a.toString('latin1', at + 6 + i * 8, at + 14 + i * 8), 16);
    const [mode, size, nameSize] = [field(1), field(6), field(11)];
    const name = a.toString('latin1', at + 110, at + 110 + nameSize - 1);
    if (name === 'TRAILER!!!') break;
    names.push(`${name} ${(mode >> 12).toString(8)} ${size}`);
    const dataAt = Math.ceil((at + 110 + nameSize) / 4) * 4;
    at = Math.ceil((dataAt + size) / 4) * 4;
  }
  expect(names).toEqual(['bin 4 0', 'bin/x 10 5', 'sh 12 5']);
});
