// Routes by destination, from several owners (a block, a node's tunnel, a local
// endpoint): when two owners want the same destination the most specific kind wins
// (a local pod's /32 over anything, a borrowed /32 over a tunnel address...), and
// only destinations whose winner changed are reported.
import type { RouteSpec } from '../types';
import { KeyedOutput } from './keyed-output';

const PRIORITY: Record<RouteSpec['kind'], number> = {
  'local-workload': 0,
  'remote-workload': 1,
  'remote-tunnel': 2,
  'local-block': 3,
  'remote-block': 4,
  // a static route to a BGP peer never displaces a route to a workload, block or tunnel
  'bgp-peer': 5,
};

export class RouteTable {
  private readonly byOwner = new Map<string, RouteSpec[]>();
  private readonly byDst = new Map<string, Map<string, RouteSpec>>();
  private readonly out = new KeyedOutput<RouteSpec>();

  /** Replaces every route of one owner. */
  setOwner(owner: string, routes: RouteSpec[]): void {
    const touched = new Set<string>();
    for (const r of this.byOwner.get(owner) ?? []) {
      const m = this.byDst.get(r.dst)!;
      m.delete(owner);
      if (m.size === 0) this.byDst.delete(r.dst);
      touched.add(r.dst);
    }
    if (routes.length) this.byOwner.set(owner, routes);
    else this.byOwner.delete(owner);
    for (const r of routes) {
      let m = this.byDst.get(r.dst);
      if (!m) this.byDst.set(r.dst, (m = new Map()));
      m.set(owner, r);
      touched.add(r.dst);
    }
    for (const dst of touched) this.out.set(dst, this.best(dst));
  }

  flush() {
    return this.out.flush();
  }

  private best(dst: string): RouteSpec | undefined {
    let best: [string, RouteSpec] | undefined;
    for (const [owner, r] of this.byDst.get(dst) ?? []) {
      if (
        !best ||
        PRIORITY[r.kind] < PRIORITY[best[1].kind] ||
        (PRIORITY[r.kind] === PRIORITY[best[1].kind] && owner < best[0])
      )
        best = [owner, r];
    }
    return best?.[1];
  }
}
