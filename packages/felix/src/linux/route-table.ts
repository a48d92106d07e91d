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
}

/** `ip route replace` arguments of a route (pure). */
export function routeArgs(r: KernelRoute, proto: number): string {
  const parts = [r.type === 'blackhole' ? `blackhole ${r.dst}` : r.dst];
  if (r.via) parts.push(`via ${r.via}`);
  if (r.dev) parts.push(`dev ${r.dev}`);
  if (r.onlink) parts.push('onlink');
  if (r.scopeLink) parts.push('scope link');
  parts.push(`proto ${proto}`);
  return parts.join(' ');
}

interface IpRouteJson {
  dst: string;
  type?: string;
  gateway?: string;
  dev?: string;
  flags?: string[];
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
    !!have.onlink === !!want.onlink
  );
}

export class RouteTable {
  private desired = new Map<string, KernelRoute>();
  private actual = new Map<string, KernelRoute>();
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
    return [...this.actual.values()];
  }

  size(): number {
    return this.desired.size;
  }

  async load(): Promise<void> {
    if (this.netlink) {
      const routes = await this.netlink.listRoutes({ protocol: this.proto });
      this.actual = new Map(
        routes.map((r) => {
          const k: KernelRoute = { dst: r.dst };
          if (r.type) k.type = r.type;
          if (r.via) k.via = r.via;
          if (r.dev) k.dev = r.dev;
          if (r.onlink) k.onlink = true;
          return [r.dst, k];
        }),
      );
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
    this.actual = new Map();
    for (const [text, isV6] of [
      [v4, false],
      [v6, true],
    ] as const) {
      for (const j of text.trim() ? (JSON.parse(text) as IpRouteJson[]) : []) {
        const r = fromJson(j, isV6);
        this.actual.set(r.dst, r);
      }
    }
    this.loaded = true;
  }

  /** The changes that take the kernel's routes to the desired ones: deletions first. */
  planOps(): RouteOp[] {
    const ops: RouteOp[] = [];
    for (const [dst, r] of this.actual) {
      if (!this.desired.has(dst)) ops.push({ op: 'del', dst, protocol: this.proto, type: r.type });
    }
    for (const [dst, r] of this.desired) {
      const have = this.actual.get(dst);
      if (!have || !sameRoute(have, r))
        ops.push({ op: 'replace', route: { ...r, protocol: this.proto } });
    }
    return ops;
  }

  /** `ip -batch` lines to go from the kernel's routes to the desired ones. */
  plan(): string[] {
    return this.planOps().map((o) =>
      o.op === 'del'
        ? `route del ${o.type === 'blackhole' ? 'blackhole ' : ''}${o.dst} proto ${this.proto}`
        : `route replace ${routeArgs(o.route, this.proto)}`,
    );
  }

  async apply(): Promise<number> {
    if (!this.loaded) await this.load();
    if (this.netlink) return this.applyNetlink();
    const lines = this.plan();
    if (lines.length === 0) return 0;
    // -force: one refused route (its device is not there yet) must not stop the others
    const res = await this.runner.run(['ip', '-force', '-batch', '-'], lines.join('\n') + '\n');
    const bad = new Set<number>();
    for (const m of res.stderr.matchAll(/Command failed -:(\d+)/g)) bad.add(Number(m[1]) - 1);
    this.failed.clear();
    lines.forEach((l, i) => {
      const dst = l.split(' ')[2] === 'blackhole' ? l.split(' ')[3] : l.split(' ')[2];
      if (bad.has(i)) {
        this.failed.set(dst, l);
        return;
      }
      if (l.startsWith('route del')) this.actual.delete(dst);
      else this.actual.set(dst, this.desired.get(dst)!);
    });
    return lines.length - bad.size;
  }

  private async applyNetlink(): Promise<number> {
    const ops = this.planOps();
    if (ops.length === 0) return 0;
    const errors = await this.netlink!.applyRoutes(ops);
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
      if (o.op === 'del') this.actual.delete(dst);
      else this.actual.set(dst, this.desired.get(dst)!);
    });
    return done;
  }

  async resync(): Promise<number> {
    await this.load();
    return this.apply();
  }
}
