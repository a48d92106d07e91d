// A benchmark interrupted (SIGINT, SIGTERM) leaves nothing behind: bench/cni.js creating
// its pod namespaces is stopped part way, and every namespace it recorded is gone, with no
// process of its session left (an interrupted run used to leave 200 pod namespaces).
import path from 'node:path';
import { describeIf, runInterrupted } from '@tortie/testbed';

const CNI_BENCH = path.resolve(__dirname, '../bench/cni.js');

describeIf(['netns', 'etcd', 'iptables', 'ipset'], 'benchmarks interrupted', () => {
  test.each([
    ['SIGINT', 12],
    ['SIGTERM', 30],
  ] as const)(
    'bench/cni.js: %s after %i namespaces: nothing it created is left',
    async (signal, after) => {
      const r = await runInterrupted([process.execPath, CNI_BENCH, '40', '8', '0'], signal, {
        namespaces: after,
      });
      expect(r.out).toContain(`<<< test: ${signal} >>>`);
      expect(r.created.length).toBeGreaterThanOrEqual(after);
      expect(r.left).toEqual({ namespaces: [], processes: [] });
      expect([r.code, r.signal]).toEqual([signal === 'SIGINT' ? 130 : 143, null]);
      process.stdout.write(
        `bench/cni.js ${signal}: ${r.created.length} namespaces created, all removed; exit ${r.code}\n`,
      );
    },
    120_000,
  );
});
