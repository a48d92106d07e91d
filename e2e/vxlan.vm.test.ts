// The VXLAN e2e (the `cluster: VXLAN overlay` suite of e2e/cluster.test.ts) run once in
// Debian's kernel under QEMU, so the overlay is shown on a distribution kernel as well as
// on this machine's (the VM harness is neutral: the same suite, unchanged, inside). Its
// timeouts stretch by testbed's SLOW inside the VM.
import path from 'node:path';
import { describeIf, runJestInVm } from '@tortie/testbed';

const SUITE = 'cluster: VXLAN overlay';

describeIf(['root', 'vm'], 'VXLAN end to end, in a VM (Debian kernel)', () => {
  test('the cluster VXLAN suite passes inside Debian kernel under QEMU', async () => {
    const r = await runJestInVm(path.join(__dirname, 'cluster.test.ts'), {
      modules: ['vxlan', 'veth', 'bridge'],
      memoryMb: 3072,
      cpus: 2,
      timeoutMs: 1_200_000,
      jestArgs: ['--testNamePattern', SUITE],
      onStdout: (d) => process.stdout.write(d),
      onStderr: process.env.TORTIE_VM_VERBOSE ? (d) => process.stderr.write(d) : undefined,
    });
    const summary = /Tests:.*$/m.exec(r.stderr)?.[0];
    if (r.code !== 0) process.stderr.write(r.stderr.slice(-6000));
    // the three VXLAN tests ran and passed inside; the file's other suites are filtered out
    expect(summary).toMatch(/Tests:\s+(\d+ skipped, )?3 passed, \d+ total/);
    expect(r.code).toBe(0);
  }, 1_220_000);
});
