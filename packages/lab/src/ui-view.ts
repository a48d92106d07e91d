// What the lab's web page shows (npm run lab -- --keep --ui), gathered from the running
// lab: the topology (nodes, ToR, reflectors, every BGP session with its state), pods per
// node, a live connectivity matrix from real pings, and events as they happen (a session
// going up or down, a policy written and how long until each node had programmed it, a
// matrix cell changing). Read-only: it only asks the agents, the ToR and etcd.
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { Kind, Resource } from '@tortie/api';
import { controlRequest } from '@tortie/bgp-speaker';
import { loadPolicyWorld, peerType, type PeerStatus } from '@tortie/ctl';
import type { Watch } from '@tortie/datastore';
import { Evaluator, explain, type Flow, type Step } from '@tortie/policy';
import type { Cluster } from './cluster';
import { CLUSTER_AS } from './bgp-lab';

export interface UiSession {
  peer: string;
  type: string;
  state: string;
  up: boolean;
}

export interface UiState {
  nodes: Array<{
    name: string;
    ip: string;
    asn: number;
    reflector: boolean;
    pods: Array<{ name: string; namespace: string; ip: string }>;
    sessions: UiSession[];
  }>;
  tor?: { kind: string; address: string; asn: number; sessions: UiSession[] };
  /** Pod names, in matrix order. */
  pods: string[];
  /** from -> to -> reachable (ping), by pod name. */
  matrix: Record<string, Record<string, boolean>>;
  matrixAt?: string;
}

export interface UiEvent {
  at: string;
  kind: 'session' | 'policy' | 'matrix';
  text: string;
}

export interface Explanation {
  from: string;
  to: string;
  allowed: boolean;
  /** The step that decided, and where: "ingress at default/db2: policy default/x: Deny". */
  deciding?: { direction: string; endpoint: string; where: string; action: string };
  text: string;
}

/** Session changes between two looks at one router's sessions, as event texts. Pure. */
export function sessionChanges(who: string, before: UiSession[], after: UiSession[]): string[] {
  const was = new Map(before.map((s) => [s.peer, s.up]));
  return after
    .filter((s) => (was.has(s.peer) ? was.get(s.peer) !== s.up : s.up))
    .map((s) => `${who}: session with ${s.peer} (${s.type}) ${s.up ? 'up' : `down (${s.state})`}`);
}

/** Cells that changed between two matrices, as event texts. Pure. */
export function matrixChanges(before: UiState['matrix'], after: UiState['matrix']): string[] {
  const out: string[] = [];
  for (const [from, row] of Object.entries(after))
    for (const [to, ok] of Object.entries(row))
      if (before[from]?.[to] !== undefined && before[from][to] !== ok)
        out.push(`${from} -> ${to} now ${ok ? 'reachable' : 'blocked'}`);
  return out;
}

/** The step that decided a verdict: the denying direction's last step, else ingress's. Pure. */
export function decidingStep(
  v: ReturnType<Evaluator['evaluate']>,
): Explanation['deciding'] | undefined {
  const d = [v.egress, v.ingress].find((x) => x && !x.allowed) ?? v.ingress ?? v.egress;
  const s: Step | undefined = d?.steps[d.steps.length - 1];
  if (!d || !s) return undefined;
  const where = s.profile
    ? `profile ${s.profile}`
    : s.policy
      ? `policy ${s.policy}${s.rule !== undefined ? ` rule ${s.rule}` : ''} (tier ${s.tier})`
      : s.tier
        ? `end of tier ${s.tier}${s.note ? ` (${s.note})` : ''}`
        : 'end of policy';
  return { direction: d.direction.toLowerCase(), endpoint: d.endpoint, where, action: s.action };
}

const POLICY_KINDS: Kind[] = ['NetworkPolicy', 'GlobalNetworkPolicy'];

export class LabView extends EventEmitter {
  state: UiState = { nodes: [], pods: [], matrix: {} };
  readonly events: UiEvent[] = [];
  private stopped = false;
  private readonly watches: Watch[] = [];
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly c: Cluster) {
    super();
  }

  async start(): Promise<void> {
    await this.refreshTopology();
    for (const kind of POLICY_KINDS) {
      const { revision } = await this.c.ds.list({ kind });
      this.watches.push(
        this.c.ds.watch(kind, revision, (e) => {
          if (e.type === 'added' || e.type === 'modified' || e.type === 'deleted')
            void this.policyChanged(e.resource, e.type);
        }),
      );
    }
    const loop = (what: () => Promise<void>, gapMs: number) => {
      const step = async () => {
        if (this.stopped) return;
        await what().catch(() => undefined); // a namespace going away at teardown
        if (!this.stopped) this.timers.push(setTimeout(step, gapMs));
      };
      void step();
    };
    loop(() => this.refreshTopology(), 1000);
    // a round of pings every 2 s: live enough, and light on a busy machine
    loop(() => this.refreshMatrix(), 2000);
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watches) w.stop();
    for (const t of this.timers) clearTimeout(t);
  }

  private emitEvent(kind: UiEvent['kind'], text: string): void {
    const e = { at: new Date().toISOString(), kind, text };
    this.events.push(e);
    if (this.events.length > 500) this.events.shift();
    this.emit('event', e);
  }

  private async nodeSessions(socket: string): Promise<UiSession[]> {
    const peers = (await controlRequest(socket, { cmd: 'peers' }, 3000).catch(
      () => [],
    )) as PeerStatus[];
    return peers.map((p) => ({
      peer: p.address,
      type: peerType(p.description),
      state: p.state,
      up: p.state === 'Established',
    }));
  }

  async refreshTopology(): Promise<void> {
    const c = this.c;
    const nodes = await Promise.all(
      c.nodes.map(async (n, i) => ({
        name: n.name,
        ip: n.ip,
        asn: CLUSTER_AS,
        reflector: c.opts.clusterIds?.[i] !== undefined,
        pods: c.pods
          .filter((p) => p.node === n)
          .map((p) => ({ name: p.name, namespace: p.namespace, ip: p.ip })),
        sessions: c.opts.backend === 'vxlan' ? [] : await this.nodeSessions(n.bgpSocket),
      })),
    );
    const t = c.torRouter;
    const tor = t && {
      kind: t.kind,
      address: t.address,
      asn: t.asn,
      sessions: (await t.sessions().catch(() => [])).map((s) => ({
        peer: s.peer,
        type: 'eBGP',
        state: s.state,
        up: s.established,
      })),
    };
    for (const n of nodes) {
      const before = this.state.nodes.find((x) => x.name === n.name)?.sessions ?? [];
      for (const e of sessionChanges(n.name, before, n.sessions)) this.emitEvent('session', e);
    }
    if (tor)
      for (const e of sessionChanges(
        `ToR (${tor.kind})`,
        this.state.tor?.sessions ?? [],
        tor.sessions,
      ))
        this.emitEvent('session', e);
    this.state = { ...this.state, nodes, ...(tor ? { tor } : {}), pods: c.pods.map((p) => p.name) };
    this.emit('state', this.state);
  }

  async refreshMatrix(): Promise<void> {
    const pods = [...this.c.pods];
    const matrix: UiState['matrix'] = {};
    await Promise.all(
      pods.map(async (a) => {
        matrix[a.name] = {};
        for (const b of pods) if (a !== b) matrix[a.name][b.name] = await this.c.ping(a, b.ip, 1);
      }),
    );
    for (const e of matrixChanges(this.state.matrix, matrix)) this.emitEvent('matrix', e);
    this.state = { ...this.state, matrix, matrixAt: new Date().toISOString() };
    this.emit('state', this.state);
  }

  /** A policy was written: say so, then how long until each node's agent applied it. */
  private async policyChanged(r: Resource, type: string): Promise<void> {
    const t0 = Date.now();
    const name = r.metadata.namespace
      ? `${r.metadata.namespace}/${r.metadata.name}`
      : r.metadata.name;
    this.emitEvent('policy', `${r.kind} ${name} ${type}`);
    const times = await Promise.all(
      this.c.nodes.map(async (n) => {
        for (let waited = 0; waited < 10_000 && !this.stopped; waited = Date.now() - t0) {
          const at = await agentAppliedAt(n.statusSocket);
          if (at !== undefined && at >= t0) return `${n.name} ${at - t0} ms`;
          await new Promise((r) => setTimeout(r, 50));
        }
        return `${n.name} not within 10 s`;
      }),
    );
    this.emitEvent('policy', `${r.kind} ${name} programmed: ${times.join(', ')}`);
  }

  /** tortiectl policy explain's evaluator for a ping from one pod to another. */
  async explain(from: string, to: string): Promise<Explanation> {
    const a = this.c.pods.find((p) => p.name === from);
    const b = this.c.pods.find((p) => p.name === to);
    if (!a || !b) throw new Error(`no pod "${!a ? from : to}" in this lab`);
    const world = await loadPolicyWorld(this.c.ds);
    const flow: Flow = { srcIp: a.ip, dstIp: b.ip, protocol: 'ICMP' };
    const v = new Evaluator(world).evaluate(flow);
    return { from, to, allowed: v.allowed, deciding: decidingStep(v), text: explain(v, flow) };
  }
}

/** When node's agent last applied its dataplane (ms since the epoch), from its status socket. */
function agentAppliedAt(socket: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: '/status', timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        try {
          const at = (JSON.parse(body) as { dataplane?: { lastAppliedAt?: string } }).dataplane
            ?.lastAppliedAt;
          resolve(at ? Date.parse(at) : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}
