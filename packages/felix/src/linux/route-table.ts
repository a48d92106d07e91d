// Kernel routes under one route protocol number, kept equal to a desired set with
// `ip -batch`: only what differs is written, and routes of other protocols (the
// system's, another tool's) are never touched. Startup reads what is there (a restart
// does not flush), and resync repairs routes someone deleted or changed.
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

/** Routes equal for our purposes (scope is implied by the kernel; compare the rest). */
export function sameRoute(a: KernelRoute, b: KernelRoute): boolean {
  return (
    a.type === b.type &&
    a.via === b.via &&
    (a.dev ?? '') === (b.dev ?? '') &&
    !!a.onlink === !!b.onlink
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

  /** `ip -batch` lines to go from the kernel's routes to the desired ones. */
  plan(): string[] {
    const lines: string[] = [];
    for (const [dst, r] of this.actual) {
      if (!this.desired.has(dst))
        lines.push(
          `route del ${r.type === 'blackhole' ? 'blackhole ' : ''}${dst} proto ${this.proto}`,
        );
    }
    for (const [dst, r] of this.desired) {
      const have = this.actual.get(dst);
      if (!have || !sameRoute(have, r)) lines.push(`route replace ${routeArgs(r, this.proto)}`);
    }
    return lines;
  }

  async apply(): Promise<number> {
    if (!this.loaded) await this.load();
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

  async resync(): Promise<number> {
    await this.load();
    return this.apply();
  }
}
