// `npm run lab` interrupted (SIGINT, SIGTERM) at several points leaves nothing behind: no
// namespace it created, no process it started. The lab runs in its own session, so every
// process it started (etcd, BIRD, agents, relays, controllers, pod servers) carries that
// session id; the namespaces it created are recorded through TORTIE_TESTBED_RECORD. Other
// runs on the machine keep theirs: only this lab's are looked at.
import path from 'node:path';
import { describeIf, runInterrupted } from '@tortie/testbed';

const CLI = path.resolve(__dirname, '../dist/cli.js');

const interruptLab = (signal: NodeJS.Signals, when: { text?: RegExp; afterMs?: number }) =>
  runInterrupted([process.execPath, CLI, '--nodes', '2'], signal, when);

describeIf(['netns', 'bird', 'etcd', 'iptables', 'ipset', 'nft'], 'lab interrupted', () => {
  const cases: Array<[string, NodeJS.Signals, { text?: RegExp; afterMs?: number }]> = [
    ['SIGINT while etcd and the fabric come up', 'SIGINT', { text: /etcd http/ }],
    ['SIGINT while the ToR and nodes are created', 'SIGINT', { text: /ToR: BIRD/ }],
    ['SIGTERM while pods are being added', 'SIGTERM', { text: /agents ready/ }],
    ['SIGINT during the policy demo', 'SIGINT', { text: /pod pairs reachable/ }],
  ];
  test.each(cases)(
    '%s: nothing it created is left',
    async (_what, signal, when) => {
      const r = await interruptLab(signal, when);
      // if the lab failed or finished before the signal, the case proves nothing
      expect(r.out).toContain(`<<< test: ${signal} >>>`);
      expect(r.out).toContain(`${signal}: tearing down everything this run created`);
      expect(r.created.length).toBeGreaterThan(0);
      expect(r.left).toEqual({ namespaces: [], processes: [] });
      expect([r.code, r.signal]).toEqual([signal === 'SIGINT' ? 130 : 143, null]);
      process.stdout.write(
        `${_what}: ${r.created.length} namespaces created, all removed; exit ${r.code}\n`,
      );
    },
    180_000,
  );
});
