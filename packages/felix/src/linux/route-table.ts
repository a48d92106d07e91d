// Kernel routes under one route protocol number, kept equal to a desired set through
// netlink (one batch per apply) or, where the netlink addon cannot load, `ip -batch`:
// only what differs is written, and routes of other protocols (the system's, another
// tool's) are never touched. Startup reads what is there (a restart does not flush),
// and resync repairs routes someone deleted or changed.
import type { Rtnl, RouteOp } from '@tortie/netlink';
import { mustRun, type CommandRunner } from './runner';

/** Calico's felix routes use protocol 80; BIRD's are "bird" (12). */
export const PROTO_TORTIE = 80;
export const PROTO_TORTIE_BGP = 81;

export interface KernelRoute {
  dst: string;
  type?: 'blackhole';
  via?: string;
  dev?: string;
  onlink?: boolean;
  scopeLink?: boolean;
  /**
   * The route's metric (priority: lower wins). The kernel keys routes by destination
   * and metric, so a changed metric is a new route and the old one is deleted. Unset:
   * the kernel's default (0 for IPv4, 1024 for IPv6).
   */
  metric?: number;
}

/** The kernel's metric for a route without one. */
const defaultMetric = (dst: string) => (dst.includes(':') ? 1024 : 0);

/** The metric a route has in the kernel (pure). */
export const metricOf = (r: KernelRoute): number => r.metric ?? defaultMetric(r.dst);

/** `ip route replace` arguments of a route (pure). */
export function routeArgs(r: KernelRoute, proto: number): string {
  const parts = [r.type === 'blackhole' ? `blackhole ${r.dst}` : r.dst];
  if (r.via) parts.push(`via ${r.via}`);
  if (r.dev) parts.push(`dev ${r.dev}`);
  if (r.onlink) parts.push('onlink');
  if (r.scopeLink) parts.push('scope link');
  parts.push(`proto ${proto}`);
  if (r.metric !== undefined) parts.push(`metric ${r.metric}`);
  return parts.join(' ');
}

interface IpRouteJson {
  dst: string;
  type?: string;
  gateway?: string;
  dev?: string;
  flags?: string[];
  metric?: number;
}

/** What the kernel shows, in the same shape (for comparison). */
export function fromJson(j: IpRouteJson, v6: boolean): KernelRoute {
  const dst =
    j.dst === 'default'
      ? v6
        ? '::/0'
        : '0.0.0.0/0'
      : j.dst.includes('/')
        ? j.dst
        : `${j.dst}/${v6 ? 128 : 32}`;
  const r: KernelRoute = { dst };
  if (j.type === 'blackhole') r.type = 'blackhole';
  if (j.gateway) r.via = j.gateway;
  if (j.dev && j.type !== 'blackhole') r.dev = j.dev;
  if (j.flags?.includes('onlink')) r.onlink = true;
  // the default metric is left unset, as a desired route without one has it
  if (j.metric !== undefined && j.metric !== defaultMetric(dst)) r.metric = j.metric;
  return r;
}

/**
 * The kernel's route `have` is the desired `want` for our purposes: scope is implied,
 * and a gateway route without a device is the kernel's to resolve (it shows the one it
 * chose, which must not make every such route differ after a reload).
 */
export function sameRoute(have: KernelRoute, want: KernelRoute): boolean {
  return (
    have.type === want.type &&
    have.via === want.via &&
    ((want.via !== undefined && want.dev === undefined) || (have.dev ?? '') === (want.dev ?? '')) &&
    !!have.onlink === !!want.onlink &&
    metricOf(have) === metricOf(want)
  );
}

export class RouteTable {
  private desired = new Map<string, KernelRoute>();
  /**
   * The kernel's routes under our protocol by destination: usually one, more when the
   * kernel holds the same destination at several metrics (a metric change that was
   * half done, another agent's leftovers): the extra ones are deleted.
   */
  private actual = new Map<string, KernelRoute[]>();
  private loaded = false;
  /** Routes the kernel refused last time (e.g. the interface is not there yet): retried. */
  readonly failed = new Map<string, string>();

  constructor(
    private readonly runner: CommandRunner,
    readonly proto: number,
    /** When given, routes are read and written over this socket instead of with `ip`. */
    private readonly netlink?: Rtnl,
  ) {}

  set(r: KernelRoute): void {
    this.desired.set(r.dst, r);
  }

  delete(dst: string): void {
    this.desired.delete(dst);
  }

  setAll(routes: Iterable<KernelRoute>): void {
    this.desired = new Map([...routes].map((r) => [r.dst, r]));
  }

  /** The kernel's routes under our protocol, as last read or written. */
  async current(): Promise<KernelRoute[]> {
    if (!this.loaded) await this.load();
    return [...this.actual.values()].flat();
  }

  size(): number {
    return this.desired.size;
  }

  private record(r: KernelRoute): void {
    const list = (this.actual.get(r.dst) ?? []).filter((x) => metricOf(x) !== metricOf(r));
    this.actual.set(r.dst, [...list, r]);
  }

  private forget(dst: string, metric: number): void {
    const list = (this.actual.get(dst) ?? []).filter((x) => metricOf(x) !== metric);
    if (list.length) this.actual.set(dst, list);
    else this.actual.delete(dst);
  }

  async load(): Promise<void> {
    this.actual = new Map();
    if (this.netlink) {
      const routes = await this.netlink.listRoutes({ protocol: this.proto });
      for (const r of routes) {
        const k: KernelRoute = { dst: r.dst };
        if (r.type) k.type = r.type;
        if (r.via) k.via = r.via;
        if (r.dev) k.dev = r.dev;
        if (r.onlink) k.onlink = true;
        if (r.metric !== undefined && r.metric !== defaultMetric(r.dst)) k.metric = r.metric;
        this.record(k);
      }
      this.loaded = true;
      return;
    }
    const [v4, v6] = await Promise.all([
      mustRun(this.runner, [
        'ip',
        '-j',
        'route',
        'show',
        'table',
        'main',
        'proto',
        String(this.proto),
      ]),
      mustRun(this.runner, [
        'ip',
        '-j',
        '-6',
        'route',
        'show',
        'table',
        'main',
        'proto',
        String(this.proto),
      ]),
    ]);
    for (const [text, isV6] of [
      [v4, false],
      [v6, true],
    ] as const) {
      for (const j of text.trim() ? (JSON.parse(text) as IpRouteJson[]) : []) {
        this.record(fromJson(j, isV6));
      }
    }
    this.loaded = true;
  }

  /**
   * The changes that take the kernel's routes to the desired ones: deletions of
   * destinations no longer wanted first; a route whose metric changes is written at
   * its new metric before the old one is deleted (no moment without a route).
   */
  planOps(): RouteOp[] {
    const ops: RouteOp[] = [];
    const del = (r: KernelRoute): RouteOp => ({
      op: 'del',
      dst: r.dst,
      protocol: this.proto,
      type: r.type,
      // metric 0 is the kernel's "any" in a delete, and the first (lowest) it finds
      // then is the metric-0 route
      ...(metricOf(r) ? { metric: metricOf(r) } : {}),
    });
    for (const [dst, rs] of this.actual) if (!this.desired.has(dst)) ops.push(...rs.map(del));
    for (const [dst, r] of this.desired) {
      const have = this.actual.get(dst) ?? [];
      if (!have.some((h) => sameRoute(h, r)))
        ops.push({ op: 'replace', route: { ...r, protocol: this.proto } });
      ops.push(...have.filter((h) => metricOf(h) !== metricOf(r)).map(del));
    }
    return ops;
  }

  /** `ip -batch` lines of planOps(). */
  plan(): string[] {
    return this.planOps().map((o) =>
      o.op === 'del'
        ? `route del ${o.type === 'blackhole' ? 'blackhole ' : ''}${o.dst} proto ${this.proto}${o.metric !== undefined ? ` metric ${o.metric}` : ''}`
        : `route replace ${routeArgs(o.route, this.proto)}`,
    );
  }

  async apply(): Promise<number> {
    if (!this.loaded) await this.load();
    const ops = this.planOps();
    if (ops.length === 0) return 0;
    const errors = this.netlink ? await this.netlink.applyRoutes(ops) : await this.applyIp(ops);
    this.failed.clear();
    let done = 0;
    ops.forEach((o, i) => {
      const dst = o.op === 'del' ? o.dst : o.route.dst;
      const e = errors[i];
      // a delete of a route that is gone already (ESRCH) has its effect
      if (e && !(o.op === 'del' && e.code === 'ESRCH')) {
        this.failed.set(dst, e.message);
        return;
      }
      done++;
      if (o.op === 'del') this.forget(dst, o.metric ?? defaultMetric(dst));
      else this.record(this.desired.get(dst)!);
    });
    return done;
  }

  /** The `ip -force -batch` path: per op undefined or why it failed. */
  private async applyIp(
    ops: RouteOp[],
  ): Promise<Array<{ code?: string; message: string } | undefined>> {
    const lines = this.plan();
    // -force: one refused route (its device is not there yet) must not stop the others
    const res = await this.runner.run(['ip', '-force', '-batch', '-'], lines.join('\n') + '\n');
    const out: Array<{ code?: string; message: string } | undefined> = new Array(ops.length).fill(
      undefined,
    );
    for (const m of res.stderr.matchAll(/Command failed -:(\d+)/g))
      out[Number(m[1]) - 1] = { message: lines[Number(m[1]) - 1] };
    return out;
  }

  async resync(): Promise<number> {
    await this.load();
    return this.apply();
  }
}
