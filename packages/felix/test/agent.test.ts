// The agent loop with a fake calculation graph and recording managers.
import { createLogger } from '@tortie/bgp-speaker';
import { Agent, type DataplaneManager } from '../src/agent';
import { agentMetrics } from '../src/ops/server';
import type { BgpConfig, DataplaneSink, DataplaneUpdate } from '../src/types';

const logger = createLogger('test', 'error');

/** Polls until `done` (the retries back off 5 ms, then 10 ms: a loaded machine needs longer). */
async function retried(done: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error('the failed apply was not retried');
    await new Promise((r) => setTimeout(r, 10));
  }
}

class RecordingManager implements DataplaneManager {
  received: DataplaneUpdate[] = [];
  applies: string[][] = [];
  resyncs = 0;
  failNext = 0;
  constructor(readonly name: string) {}
  send(u: DataplaneUpdate) {
    this.received.push(u);
  }
  async apply() {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('iptables-restore: exit status 4');
    }
    this.applies.push(this.received.splice(0).map((u) => u.type));
  }
  async resync() {
    this.resyncs++;
  }
}

const bgp: BgpConfig = {
  enabled: true,
  asNumber: 64512,
  listenPort: 179,
  peers: [],
  originate: [],
};

function setup(metrics?: ReturnType<typeof agentMetrics>) {
  let sink!: DataplaneSink;
  const m = new RecordingManager('acl');
  const bgpApplied: BgpConfig[] = [];
  const agent = new Agent({
    makeCalc: (s) => {
      sink = s;
      return {
        // the fake graph turns every syncer update into a route update
        onUpdates: (us) => {
          for (const u of us) {
            const name = u.type === 'set' ? u.resource.metadata.name : u.key.name;
            sink.send({ type: 'route-update', route: { dst: name, kind: 'local-block' } });
          }
        },
        onStatus: (s) => {
          if (s === 'in-sync') {
            sink.send({ type: 'bgp-update', bgp });
            sink.send({ type: 'in-sync' });
          }
        },
      };
    },
    managers: [m],
    bgp: { apply: async (c) => void bgpApplied.push(c), stop: async () => undefined },
    logger,
    metrics,
    retryMs: 5,
  });
  const set = (name: string) =>
    agent.onUpdates([{ type: 'set', resource: { kind: 'IPPool', metadata: { name } } as never }]);
  return { agent, m, bgpApplied, set };
}

describe('agent loop', () => {
  test('nothing is applied before in-sync; then one batch per delivery', async () => {
    const { agent, m, bgpApplied, set } = setup();
    set('a');
    set('b');
    await agent.settled();
    expect(m.applies).toEqual([]);
    expect(agent.ready()).toBe(false);
    agent.onStatus('in-sync');
    await agent.settled();
    expect(m.applies).toEqual([['route-update', 'route-update', 'bgp-update', 'in-sync']]);
    expect(bgpApplied).toEqual([bgp]);
    expect(agent.ready()).toBe(true);
    set('c');
    await agent.settled();
    expect(m.applies.at(-1)).toEqual(['route-update']);
    await agent.stop();
  });

  test('a failed apply keeps the desired state and is retried', async () => {
    const { agent, m, set } = setup();
    agent.onStatus('in-sync');
    await agent.settled();
    m.failNext = 2;
    const applied = m.applies.length;
    set('x');
    await retried(() => m.applies.length > applied);
    await agent.settled();
    expect(m.applies.at(-1)).toEqual(['route-update']);
    await agent.resync();
    expect(m.resyncs).toBe(1);
    await agent.stop();
  });

  test('metrics: failures, retries, and change -> programmed latency including the retries', async () => {
    const metrics = agentMetrics();
    const { agent, m, set } = setup(metrics);
    agent.onStatus('in-sync');
    await agent.settled();
    m.failNext = 2;
    const applied = m.applies.length;
    set('x');
    await retried(() => m.applies.length > applied);
    await agent.settled();
    const value = async (name: string) =>
      (await metrics.registry.getSingleMetric(name)!.get()).values;
    expect((await value('tortie_dataplane_apply_failures_total'))[0].value).toBe(2);
    expect((await value('tortie_dataplane_apply_retries_total'))[0].value).toBe(2);
    // one change, observed once, after the retries (5 ms, then 10 ms of backoff)
    const latency = (await value('tortie_dataplane_programmed_seconds')) as Array<{
      metricName?: string;
      value: number;
    }>;
    expect(latency.find((v) => v.metricName?.endsWith('_count'))!.value).toBe(1);
    expect(latency.find((v) => v.metricName?.endsWith('_sum'))!.value).toBeGreaterThan(0.015);
    expect(agent.status()).toEqual(
      expect.objectContaining({ programmed: true, consecutiveFailures: 0 }),
    );
    m.failNext = 1;
    set('y');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(agent.status()).toEqual(
      expect.objectContaining({
        consecutiveFailures: 1,
        lastError: 'iptables-restore: exit status 4',
      }),
    );
    await agent.stop();
  });

  test('endpointProgrammed resolves after the apply that programmed the interface and addresses', async () => {
    let sink!: DataplaneSink;
    const m = new RecordingManager('acl');
    const agent = new Agent({
      makeCalc: (s) => ((sink = s), { onUpdates: () => undefined, onStatus: () => undefined }),
      managers: [m],
      logger,
      retryMs: 5,
    });
    const wep = (ip: string): DataplaneUpdate => ({
      type: 'workload-update',
      endpoint: {
        id: 'default/p/eth0',
        ifaceName: 'cali0123456789a',
        ipv4Nets: [`${ip}/32`],
        ipv6Nets: [],
        tiers: [],
        profileIds: [],
      },
    });
    const waiting = agent.endpointProgrammed('cali0123456789a', ['10.0.0.5'], 2000);
    sink.send(wep('10.0.0.5'));
    m.failNext = 1; // the first apply fails: not programmed yet
    sink.send({ type: 'in-sync' });
    agent.onStatus('in-sync');
    await agent.settled();
    let settledEarly = false;
    void waiting.then(() => (settledEarly = true));
    await new Promise((r) => setImmediate(r));
    expect(settledEarly).toBe(false);
    await new Promise((r) => setTimeout(r, 50)); // the retry applies it
    await agent.settled();
    await expect(waiting).resolves.toBe(true);
    // already programmed: at once; another pod's addresses on the same interface: not
    await expect(agent.endpointProgrammed('cali0123456789a', ['10.0.0.5'], 10)).resolves.toBe(true);
    await expect(agent.endpointProgrammed('cali0123456789a', ['10.0.0.6'], 20)).resolves.toBe(
      false,
    );
    // removed: no longer programmed
    sink.send({ type: 'workload-remove', id: 'default/p/eth0' });
    agent.poke();
    await agent.settled();
    await expect(agent.endpointProgrammed('cali0123456789a', ['10.0.0.5'], 20)).resolves.toBe(
      false,
    );
    await agent.stop();
  });
});
