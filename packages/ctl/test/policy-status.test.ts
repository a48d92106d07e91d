// tortiectl policy status: the report (pure) and the binary against a status socket.
// The agent's own socket is exercised end to end in e2e/cluster.test.ts.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { formatPolicyStatus, type AgentStatus } from '../src/policy-status';
import { ctl } from './run-ctl';

const failing: AgentStatus = {
  node: 'node1',
  ready: true,
  dataplane: { programmed: true, consecutiveFailures: 0, lastAppliedAt: '2026-12-04T21:07:09Z' },
  acl: {
    backend: 'legacy',
    rejected: [
      {
        kind: 'policy',
        id: 'default/prod/egress-except',
        direction: 'egress',
        family: 4,
        reason: 'the kernel refused it: iptables-restore failed (exit 2): invalid port',
        since: '2026-12-04T21:07:08.120Z',
      },
    ],
  },
};

test('the report: the dataplane state, then each policy failing closed and why', () => {
  expect(formatPolicyStatus(failing)).toEqual([
    'Node node1: dataplane programmed, last applied 21:07:09 UTC (iptables legacy)',
    '1 policy fails closed (what they decide is denied until fixed):',
    '+--------+----------------------------+-----------+----+---------------------+-----------------------------------------------------------------------+',
    '| KIND   | NAME                       | DIRECTION | IP | SINCE (UTC)         | REASON                                                                |',
    '+--------+----------------------------+-----------+----+---------------------+-----------------------------------------------------------------------+',
    '| policy | default/prod/egress-except | egress    | v4 | 2026-12-04 21:07:08 | the kernel refused it: iptables-restore failed (exit 2): invalid port |',
    '+--------+----------------------------+-----------+----+---------------------+-----------------------------------------------------------------------+',
  ]);
  expect(
    formatPolicyStatus({
      ...failing,
      dataplane: { programmed: true, consecutiveFailures: 2, lastError: 'ipset restore failed' },
      acl: { rejected: [] },
    }),
  ).toEqual([
    'Node node1: dataplane apply failing (2 in a row: ipset restore failed)',
    'Every policy is programmed.',
  ]);
});

test('the binary: exit 3 while policies fail closed, 0 when none do, 1 without an agent', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-pstatus-'));
  const socket = path.join(dir, 'status.sock');
  let doc: AgentStatus = failing;
  const server = http.createServer((req, res) => {
    res.writeHead(req.url === '/status' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(doc));
  });
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const r = await ctl(['policy', 'status', '--status-socket', socket]);
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/\| policy \| default\/prod\/egress-except \| egress +\| v4 \|/);
    const json = await ctl(['policy', 'status', '--status-socket', socket, '-o', 'json']);
    expect(JSON.parse(json.out)).toEqual(failing.acl.rejected);
    doc = { ...failing, acl: { rejected: [] } };
    const ok = await ctl(['policy', 'status', '--status-socket', socket]);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('Every policy is programmed.');
  } finally {
    await new Promise((r) => server.close(r));
  }
  const gone = await ctl(['policy', 'status', '--status-socket', socket]);
  expect(gone.code).toBe(1);
  expect(gone.err).toContain('tortie-node is not running or not reachable');
  fs.rmSync(dir, { recursive: true, force: true });
});
