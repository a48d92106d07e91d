// The node agent's main loop: syncer -> calculation graph -> dataplane managers and BGP
// glue. Each stage is passed in behind a small interface, so the loop is tested with
// fakes and run with the real pieces by `tortie-node`.
//
// Ordering rules (Felix's): nothing is written before the syncer is in sync; changes
// are batched (every update of one syncer delivery, then one apply); a failed apply is
// retried with backoff and never leaves the previous state half-removed (each manager
// applies atomically per table/batch); a restart reads the kernel and converges, it
// does not flush.
import type { Resource } from '@tortie/api';
import type { SyncStatus, SyncUpdate } from '@tortie/datastore';
import type { Logger } from 'winston';
import type { AgentMetrics } from './ops/server';
import { allSettled } from './settle';
import type { BgpConfig, DataplaneSink, DataplaneUpdate } from './types';

/** The calculation graph as the loop sees it. */
export interface CalcGraphLike {
  onUpdates(updates: SyncUpdate[]): void;
  onStatus(status: SyncStatus): void;
}

/** A dataplane manager: takes updates, applies them in a batch, repairs drift on resync. */
export interface DataplaneManager extends DataplaneSink {
  readonly name: string;
  apply(): Promise<void>;
  resync(): Promise<void>;
}

export interface BgpLike {
  apply(cfg: BgpConfig): Promise<void>;
  stop(): Promise<void>;
}

export interface AgentParts {
  makeCalc(sink: DataplaneSink): CalcGraphLike;
  managers: DataplaneManager[];
  bgp?: BgpLike;
  logger: Logger;
  metrics?: AgentMetrics;
  /** Periodic read-back of the kernel (ms); 0 disables. */
  resyncIntervalMs?: number;
  /** Wait after a failed apply before the next try (doubles up to 30 s). */
  retryMs?: number;
}

export class Agent implements DataplaneSink {
  private readonly calc: CalcGraphLike;
  private inSync = false;
  private programmed = false;
  private dirty = false;
  private applying?: Promise<void>;
  private pendingBgp?: BgpConfig;
  private retryTimer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private failures = 0;
  private lastError?: string;
  private lastAppliedAt?: Date;
  private stopped = false;
  /** When each syncer delivery not yet programmed arrived (ms, performance.now()). */
  private unprogrammed: number[] = [];
  // Which workload interfaces are programmed with which addresses, for endpointProgrammed
  private readonly sentIfaces = new Map<string, { nets: string; gen: number }>();
  private readonly programmedIfaces = new Map<string, string>();
  private readonly endpointIfaces = new Map<string, string>();
  private readonly ifaceWaiters = new Map<string, Array<() => void>>();
  private generation = 0;

  constructor(private readonly parts: AgentParts) {
    this.calc = parts.makeCalc(this);
  }

  /** Syncer callbacks. */
  onUpdates = (updates: SyncUpdate[]): void => {
    // change -> programmed latency, once the dataplane is up (startup is readiness's)
    if (this.programmed) this.unprogrammed.push(performance.now());
    this.calc.onUpdates(updates);
    this.kick();
  };

  onStatus = (status: SyncStatus): void => {
    this.parts.logger.info('datastore sync status', { status });
    this.calc.onStatus(status);
    this.kick();
  };

  /** The calculation graph's output: fanned out to every manager; BGP to the glue. */
  send(u: DataplaneUpdate): void {
    if (u.type === 'in-sync') this.inSync = true;
    if (u.type === 'bgp-update') this.pendingBgp = u.bgp;
    if (u.type === 'workload-update') {
      const { id, ifaceName, ipv4Nets, ipv6Nets } = u.endpoint;
      this.endpointIfaces.set(id, ifaceName);
      this.sentIfaces.set(ifaceName, { nets: netsKey(ipv4Nets, ipv6Nets), gen: ++this.generation });
    }
    if (u.type === 'workload-remove') this.forgetEndpoint(u.id);
    for (const m of this.parts.managers) m.send(u);
    this.dirty = true;
  }

  /**
   * Resolves true once the dataplane has applied the endpoint on this interface (its
   * routes and policy are in place), false after `timeoutMs`. The CNI ADD waits on this so
   * a pod does not start talking before its policy is there.
   */
  endpointProgrammed(ifaceName: string, nets: string[], timeoutMs: number): Promise<boolean> {
    // the addresses tell this pod's endpoint from an earlier one on the same interface
    const want = netsKey(nets, []);
    const isProgrammed = () => this.programmedIfaces.get(ifaceName) === want;
    if (isProgrammed()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        const list = this.ifaceWaiters.get(ifaceName)?.filter((w) => w !== onApplied);
        if (list?.length) this.ifaceWaiters.set(ifaceName, list);
        else this.ifaceWaiters.delete(ifaceName);
        resolve(ok);
      };
      const onApplied = () => isProgrammed() && done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.ifaceWaiters.set(ifaceName, [...(this.ifaceWaiters.get(ifaceName) ?? []), onApplied]);
    });
  }

  /** Something outside the calculation graph changed desired state (BGP learned a route). */
  poke(): void {
    this.dirty = true;
    this.kick();
  }

  /** Ready once the dataplane was programmed from an in-sync view. */
  ready(): boolean {
    return this.programmed;
  }

  /** The apply loop's state, for the status endpoint. */
  status(): {
    programmed: boolean;
    inSync: boolean;
    consecutiveFailures: number;
    lastError?: string;
    lastAppliedAt?: string;
  } {
    return {
      programmed: this.programmed,
      inSync: this.inSync,
      consecutiveFailures: this.failures,
      ...(this.failures ? { lastError: this.lastError } : {}),
      ...(this.lastAppliedAt ? { lastAppliedAt: this.lastAppliedAt.toISOString() } : {}),
    };
  }

  start(): void {
    const every = this.parts.resyncIntervalMs ?? 0;
    if (every > 0) {
      this.resyncTimer = setInterval(() => void this.resync(), every);
      this.resyncTimer.unref();
    }
  }

  /**
   * Reads back the kernel and repairs drift (a flushed chain, a deleted route). Runs in
   * the same queue as apply: a manager never applies and resyncs at the same time.
   */
  async resync(): Promise<void> {
    if (!this.inSync || this.stopped) return;
    while (this.applying) await this.applying;
    this.applying = this.resyncAll().finally(() => {
      this.applying = undefined;
      this.kick(); // updates that arrived meanwhile
    });
    await this.applying;
  }

  private async resyncAll(): Promise<void> {
    for (const m of this.parts.managers) {
      try {
        await m.resync();
      } catch (e) {
        this.parts.logger.error('resync failed', { manager: m.name, error: (e as Error).message });
      }
    }
  }

  /** Waits until everything sent so far has been applied (tests, readiness). */
  async settled(): Promise<void> {
    while (this.applying || (this.dirty && this.inSync && !this.retryTimer)) {
      await (this.applying ?? new Promise((r) => setImmediate(r)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    clearTimeout(this.retryTimer);
    await this.applying;
    await this.parts.bgp?.stop();
  }

  /** Schedules one apply after the current syncer delivery (batching its updates). */
  private kick(): void {
    if (!this.inSync || !this.dirty || this.applying || this.retryTimer || this.stopped) return;
    this.applying = new Promise<void>((r) => setImmediate(r))
      .then(() => this.applyAll())
      .finally(() => {
        this.applying = undefined;
        this.kick(); // more arrived while applying
      });
  }

  private forgetEndpoint(id: string): void {
    // workload-remove names the endpoint id; the interface is found by the id's last update
    const iface = this.endpointIfaces.get(id);
    if (!iface) return;
    this.endpointIfaces.delete(id);
    this.sentIfaces.delete(iface);
    this.programmedIfaces.delete(iface);
  }

  /** After a successful apply: every interface sent up to `gen` is programmed. */
  private markProgrammed(gen: number): void {
    for (const [iface, sent] of this.sentIfaces) {
      if (sent.gen > gen) continue;
      this.sentIfaces.delete(iface);
      this.programmedIfaces.set(iface, sent.nets);
      for (const w of this.ifaceWaiters.get(iface) ?? []) w();
    }
  }

  private async applyAll(): Promise<void> {
    this.dirty = false;
    const gen = this.generation;
    const changes = this.unprogrammed.splice(0);
    const t0 = process.hrtime.bigint();
    try {
      // the managers own disjoint kernel state (routes, iptables/ipsets): one does not
      // wait for the other, and each converges on the next apply if the other failed
      await allSettled(this.parts.managers.map((m) => m.apply()));
      if (this.pendingBgp && this.parts.bgp) {
        const cfg = this.pendingBgp;
        this.pendingBgp = undefined;
        await this.parts.bgp.apply(cfg);
      }
      this.failures = 0;
      this.lastAppliedAt = new Date();
      const now = performance.now();
      for (const t of changes) this.parts.metrics?.programmedLatency.observe((now - t) / 1000);
      this.markProgrammed(gen);
      if (!this.programmed) this.parts.logger.info('dataplane programmed from an in-sync view');
      this.programmed = true;
      this.parts.metrics?.applyLatency.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    } catch (e) {
      // keep what is desired: mark dirty and try again later, with backoff
      this.dirty = true;
      this.unprogrammed.unshift(...changes);
      this.failures++;
      this.lastError = (e as Error).message;
      this.parts.metrics?.applyFailures.inc();
      const wait = Math.min(30_000, (this.parts.retryMs ?? 500) * 2 ** (this.failures - 1));
      this.parts.logger.error('dataplane apply failed; retrying', {
        error: (e as Error).message,
        retryInMs: wait,
      });
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.parts.metrics?.applyRetries.inc();
        this.kick();
      }, wait);
      this.retryTimer.unref();
    }
  }
}

/** Addresses as one comparable key, prefix lengths dropped (/32 and bare IP are equal). */
function netsKey(v4: string[], v6: string[]): string {
  return [...v4, ...v6]
    .map((n) => n.split('/')[0])
    .sort()
    .join(',');
}

/** The kinds the agent watches. */
export const AGENT_KINDS = [
  'Node',
  'WorkloadEndpoint',
  'HostEndpoint',
  'NetworkPolicy',
  'GlobalNetworkPolicy',
  'Tier',
  'Profile',
  'NetworkSet',
  'GlobalNetworkSet',
  'IPPool',
  'BlockAffinity',
  'IPAMBlock',
  'BGPConfiguration',
  'BGPPeer',
  'BGPFilter',
  'FelixConfiguration',
] as const satisfies ReadonlyArray<Resource['kind']>;

/**
 * Services in tortie's shape, for the service dataplane and the BGP glue: tortie's own
 * resources in etcd, the core Services and EndpointSlices in a Kubernetes datastore.
 */
export const SERVICE_KINDS = [
  'KubernetesService',
  'KubernetesEndpointSlice',
] as const satisfies ReadonlyArray<Resource['kind']>;
