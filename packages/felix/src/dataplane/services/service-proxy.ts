// The service proxy: Services and EndpointSlices in, nftables programmed (a kube-proxy
// replacement). Each apply is one `nft -f` transaction per family with only what changed
// since the last successful one; after a failure, or when asked to resync, the whole
// table is rewritten (still one transaction, so traffic never sees a half-written table).
// A service whose Service and EndpointSlice objects are the same objects as last time is
// not planned or rendered again, so one change costs one service's work.
import { runTool, type ToolInput, type ToolResult } from '@tortie/exec';
import {
  planServices,
  type EndpointSlice,
  type IpFamily,
  type Service,
  type ServicePortPlan,
} from './model';
import { diffScript, fullScript, sameItems } from './nft-diff';
import { assemble, renderPort, tableRef, type Fragment, type NftState } from './nft-render';

export type NftExec = (argv: string[], stdin?: ToolInput) => Promise<ToolResult>;

export interface ServiceProxyOptions {
  nodeName: string;
  families: IpFamily[];
  /** per family, the pod networks (traffic from elsewhere to a cluster IP is masqueraded) */
  clusterCidrs: Partial<Record<IpFamily, string[]>>;
  /** runs nft; default: the real one, in `netns` when given */
  exec?: NftExec;
  netns?: string;
  onProblem?: (problem: string) => void;
  /** Node ports outside these are not programmed (default 30000-32767). */
  nodePortRanges?: Array<[number, number]>;
}

export interface ApplyStats {
  family: IpFamily;
  /** lines written in this transaction (0: nothing changed) */
  lines: number;
  full: boolean;
}

interface Rendered {
  service: Service;
  slices: EndpointSlice[];
  plans: ServicePortPlan[];
  ports: [string, Fragment][];
}

/** A UDP service port as last programmed: where clients send, and its endpoints. */
interface UdpTarget {
  ips: string[];
  nodePort?: number;
  endpoints: Set<string>;
}

export class ServiceProxy {
  private services: Service[] = [];
  private slices: EndpointSlice[] = [];
  /** what the kernel holds, per family; absent: unknown, the next apply is a full one */
  private applied = new Map<IpFamily, NftState>();
  /** per family, per service: what it rendered to, from which objects */
  private rendered = new Map<IpFamily, Map<string, Rendered>>();
  private readonly reported = new Set<string>();
  /** per family, the UDP service ports as last programmed (stale conntrack entries) */
  private udpApplied = new Map<IpFamily, Map<string, UdpTarget>>();
  private readonly exec: NftExec;

  constructor(private readonly o: ServiceProxyOptions) {
    const prefix = o.netns ? ['ip', 'netns', 'exec', o.netns] : [];
    this.exec = o.exec ?? ((argv, stdin) => runTool([...prefix, ...argv], stdin));
  }

  setServices(services: Service[]): void {
    this.services = services;
  }

  setEndpointSlices(slices: EndpointSlice[]): void {
    this.slices = slices;
  }

  /** The pod networks of one family (masquerade rules): every service renders again. */
  setClusterCidrs(family: IpFamily, cidrs: string[]): void {
    const old = this.o.clusterCidrs[family] ?? [];
    if (sameItems(old, cidrs)) return;
    this.o.clusterCidrs[family] = cidrs;
    this.rendered.delete(family);
  }

  /** The node port ranges changed: every service renders again. */
  setNodePortRanges(ranges: Array<[number, number]>): void {
    if (JSON.stringify(ranges) === JSON.stringify(this.o.nodePortRanges)) return;
    this.o.nodePortRanges = ranges;
    this.rendered.clear();
  }

  /** Forget what was applied: the next apply rewrites every table. */
  resync(): void {
    this.applied.clear();
  }

  /** Programs the current Services; throws with nft's message when the kernel refuses. */
  async apply(): Promise<ApplyStats[]> {
    const stats: ApplyStats[] = [];
    for (const family of this.o.families) {
      const next = this.render(family);
      const prev = this.applied.get(family);
      const script = prev ? diffScript(prev, next) : fullScript(next);
      if (script !== '') {
        this.applied.delete(family); // unknown until nft says it took it
        const r = await this.exec(['nft', '-f', '-'], script);
        if (r.code !== 0) {
          throw new Error(`nft refused the ${tableRef(family)} update: ${r.stderr.trim()}`);
        }
      }
      this.applied.set(family, next);
      await this.flushStaleUdp(family);
      stats.push({ family, lines: script === '' ? 0 : script.split('\n').length - 1, full: !prev });
    }
    return stats;
  }

  /** Removes the tables (the agent stopping with services turned off). */
  async remove(): Promise<void> {
    for (const family of this.o.families) {
      const t = tableRef(family);
      await this.exec(['nft', '-f', '-'], `add table ${t}\ndelete table ${t}\n`);
      this.applied.delete(family);
    }
  }

  private render(family: IpFamily): NftState {
    const cidrs = this.o.clusterCidrs[family] ?? [];
    const cache = this.rendered.get(family) ?? new Map<string, Rendered>();
    const slicesOf = new Map<string, EndpointSlice[]>();
    for (const s of this.slices) {
      const k = `${s.namespace}/${s.serviceName}`;
      const list = slicesOf.get(k);
      if (list) list.push(s);
      else slicesOf.set(k, [s]);
    }
    const next = new Map<string, Rendered>();
    const byKey = (a: Service, b: Service) => {
      const x = `${a.namespace}/${a.name}`;
      const y = `${b.namespace}/${b.name}`;
      return x < y ? -1 : x > y ? 1 : 0;
    };
    const fragments = new Map<string, Fragment>();
    for (const service of [...this.services].sort(byKey)) {
      const id = `${service.namespace}/${service.name}`;
      const slices = slicesOf.get(id) ?? [];
      let r = cache.get(id);
      if (!r || r.service !== service || !sameItems(r.slices, slices)) {
        const { ports, problems } = planServices([service], slices, {
          nodeName: this.o.nodeName,
          family,
          nodePortRanges: this.o.nodePortRanges,
        });
        this.report(problems);
        const opts = { family, clusterCidrs: cidrs };
        r = {
          service,
          slices,
          plans: ports,
          ports: ports.map((p) => [p.key, renderPort(p, opts)]),
        };
      }
      next.set(id, r);
      for (const [k, frag] of r.ports) fragments.set(k, frag);
    }
    this.rendered.set(family, next);
    const state = assemble(family, cidrs, fragments);
    this.report(state.conflicts.map((c) => `two services claim ${c}`));
    return state;
  }

  /**
   * As kube-proxy: UDP has no connection to end, so a conntrack entry keeps sending a
   * client's datagrams to an endpoint that is gone (until it times out, or for ever while
   * the client keeps sending). Entries towards removed endpoints are deleted, and when a
   * service port gets its first endpoint, the entries of its addresses (datagrams that
   * were refused) are.
   */
  private async flushStaleUdp(family: IpFamily): Promise<void> {
    const now = new Map<string, UdpTarget>();
    for (const r of this.rendered.get(family)?.values() ?? [])
      for (const p of r.plans)
        if (p.protocol === 'UDP')
          now.set(p.key, {
            ips: [...p.clusterIPs, ...p.externalIPs],
            nodePort: p.nodePort,
            endpoints: new Set(p.endpoints.map((e) => e.ip)),
          });
    const before = this.udpApplied.get(family);
    this.udpApplied.set(family, now);
    if (!before) return; // nothing known to be stale on the first apply
    const flushes: string[][] = [];
    const f = ['-f', family === 6 ? 'ipv6' : 'ipv4', '-p', 'udp'];
    for (const [key, old] of before) {
      const cur = now.get(key);
      for (const ep of old.endpoints) {
        if (cur?.endpoints.has(ep)) continue;
        for (const ip of old.ips) flushes.push([...f, '--orig-dst', ip, '--dst-nat', ep]);
        if (old.nodePort)
          flushes.push([...f, '--orig-port-dst', String(old.nodePort), '--dst-nat', ep]);
      }
    }
    for (const [key, cur] of now) {
      if (cur.endpoints.size === 0 || (before.get(key)?.endpoints.size ?? 0) > 0) continue;
      for (const ip of cur.ips) flushes.push([...f, '--orig-dst', ip]);
      if (cur.nodePort) flushes.push([...f, '--orig-port-dst', String(cur.nodePort)]);
    }
    for (const args of flushes) {
      // a flush that fails leaves entries to time out: reported, never failing the apply
      const r = await this.exec(['conntrack', '-D', ...args]).catch((e: Error) => ({
        code: -1,
        stdout: '',
        stderr: e.message,
      }));
      // exit 1 with "0 flow entries have been deleted": there was nothing to flush
      if (r.code !== 0 && !/0 flow entries/.test(r.stderr))
        this.report([`conntrack -D ${args.join(' ')} failed: ${r.stderr.trim()}`]);
    }
  }

  private report(problems: string[]): void {
    for (const p of problems) {
      if (this.reported.has(p)) continue;
      this.reported.add(p);
      this.o.onProblem?.(p);
    }
  }
}
