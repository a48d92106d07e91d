// The agent's probe and metrics endpoints, on loopback.
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
});
