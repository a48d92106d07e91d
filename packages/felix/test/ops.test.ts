// The agent's probe, metrics and status endpoints, on loopback and on a unix socket.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { PolicyFailure } from '../src/dataplane/acl';
import { agentMetrics, serveOps } from '../src/ops/server';

describe('ops endpoints', () => {
  test('liveness, readiness and Prometheus metrics', async () => {
    let ready = false;
    const m = agentMetrics();
    m.bgpSessions.set({ state: 'Established' }, 2);
    m.applyLatency.observe(0.004);
    const ops = await serveOps({ live: () => true, ready: () => ready }, m.registry, 0);
    try {
      const get = async (p: string) => {
        const r = await fetch(`http://127.0.0.1:${ops.port}${p}`);
        return { status: r.status, body: await r.text() };
      };
      expect(await get('/liveness')).toEqual({ status: 200, body: 'live\n' });
      expect((await get('/readiness')).status).toBe(503);
      ready = true;
      expect((await get('/readiness')).status).toBe(200);
      const metrics = await get('/metrics');
      expect(metrics.body).toContain('tortie_bgp_sessions{state="Established"} 2');
      expect(metrics.body).toContain('tortie_dataplane_apply_seconds_bucket{le="0.005"} 1');
      expect(metrics.body).toContain('tortie_process_resident_memory_bytes');
      expect((await get('/nope')).status).toBe(404);
    } finally {
      await ops.close();
    }
  });

  test('status on a 0600 unix socket; policies failing closed as a gauge', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-ops-'));
    const socket = path.join(dir, 'run', 'status.sock');
    const failing: PolicyFailure[] = [
      {
        kind: 'policy',
        id: 'default/ns/egress-block',
        direction: 'egress',
        family: 4,
        table: 'filter',
        chain: 'tortie-po-_x',
        reason: 'the kernel refused it: multiple -d flags not allowed',
        since: '2026-12-04T21:00:00.000Z',
      },
    ];
    const m = agentMetrics({ failClosed: () => failing });
    m.policyFailures.inc({
      kind: 'policy',
      policy: 'default/ns/egress-block',
      direction: 'egress',
    });
    const ops = await serveOps(
      { live: () => true, ready: () => true },
      m.registry,
      0,
      '127.0.0.1',
      {
        socket,
        status: () => ({ rejected: failing }),
      },
    );
    try {
      expect(fs.statSync(socket).mode & 0o777).toBe(0o600);
      const body = await new Promise<string>((resolve, reject) =>
        http
          .get({ socketPath: socket, path: '/status' }, (res) => {
            let b = '';
            res.on('data', (d) => (b += d));
            res.on('end', () => resolve(b));
          })
          .on('error', reject),
      );
      expect(JSON.parse(body)).toEqual({ rejected: failing });
      const metrics = await (await fetch(`http://127.0.0.1:${ops.port}/metrics`)).text();
      expect(metrics).toContain(
        'tortie_policies_fail_closed{kind="policy",policy="default/ns/egress-block",direction="egress",family="4"} 1',
      );
      expect(metrics).toContain(
        'tortie_policy_failures_total{kind="policy",policy="default/ns/egress-block",direction="egress"} 1',
      );
      failing.length = 0;
      expect(await (await fetch(`http://127.0.0.1:${ops.port}/metrics`)).text()).not.toContain(
        'tortie_policies_fail_closed{',
      );
    } finally {
      await ops.close();
      expect(fs.existsSync(socket)).toBe(false);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
