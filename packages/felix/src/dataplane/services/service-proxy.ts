// The service proxy: Services and EndpointSlices in, nftables programmed (a kube-proxy
// replacement). Each apply is one `nft -f` transaction per family with only what changed
// since the last successful one; after a failure, or when asked to resync, the whole
// table is rewritten (still one transaction, so traffic never sees a half-written table).
// Services and slices come in one by one (setService, setEndpointSlice), and each marks its
// service dirty: an apply plans, renders and diffs the dirty services only, so one change
// costs one service's work at any number of services.
import { runTool, type ToolInput, type ToolResult } from '@tortie/exec';
import {
  planServices,
  type EndpointSlice,
  type IpFamily,
  type Service,
  type ServicePortPlan,
} from './model';
import { changeScript, fullScript, sameItems } from './nft-diff';
import { renderPort, tableRef } from './nft-render';
import { NftTable } from './nft-table';

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

/** One service in one family: its plans, and the port keys its fragments are under. */
interface Rendered {
  plans: ServicePortPlan[];
}

/** One family: the table, which services to render again, and what was last applied. */
interface FamilyState {
  table: NftTable;
  rendered: Map<string, Rendered>;
  /** services to plan and render again; 'all' after the pod networks or port ranges changed */
  dirty: Set<string> | 'all';
  /** the kernel holds the table as of the last apply (false: the next one is full) */
  inSync: boolean;
  /** the UDP service ports as last programmed (stale conntrack entries); none yet: undefined */
  udpApplied: Map<string, UdpTarget> | undefined;
  /** the UDP service ports as rendered, and those that changed since the last apply */
  udpNow: Map<string, UdpTarget>;
  udpDirty: Set<string>;
}

/** A UDP service port as last programmed: where clients send, and its endpoints. */
interface UdpTarget {
  ips: string[];
  nodePort?: number;
  endpoints: Set<string>;
}

const svcKey = (namespace: string, name: string) => `${namespace}/${name}`;

export class ServiceProxy {
  /** namespace/name -> Service */
  private readonly services = new Map<string, Service>();
  /** slice id -> slice, and namespace/name of a service -> the ids of its slices */
  private readonly slices = new Map<string, EndpointSlice>();
  private readonly slicesOf = new Map<string, Set<string>>();
  private readonly families = new Map<IpFamily, FamilyState>();
  private readonly reported = new Set<string>();
  private readonly exec: NftExec;

  constructor(private readonly o: ServiceProxyOptions) {
    const prefix = o.netns ? ['ip', 'netns', 'exec', o.netns] : [];
    this.exec = o.exec ?? ((argv, stdin) => runTool([...prefix, ...argv], stdin));
    for (const f of o.families) this.families.set(f, this.freshFamily(f));
  }

  /** One Service added or replaced (the same object again: nothing to do). */
  setService(service: Service): void {
    const k = svcKey(service.namespace, service.name);
    if (this.services.get(k) === service) return;
    this.services.set(k, service);
    this.touch(k);
  }

  deleteService(namespace: string, name: string): void {
    const k = svcKey(namespace, name);
    if (this.services.delete(k)) this.touch(k);
  }

  /** One EndpointSlice under the caller's id: added, replaced or (undefined) removed. */
  setEndpointSlice(id: string, slice: EndpointSlice | undefined): void {
    const old = this.slices.get(id);
    if (old === slice) return;
    if (old) {
      const k = svcKey(old.namespace, old.serviceName);
      this.slicesOf.get(k)?.delete(id);
      if (this.slicesOf.get(k)?.size === 0) this.slicesOf.delete(k);
      this.touch(k);
    }
    if (slice) {
      const k = svcKey(slice.namespace, slice.serviceName);
      this.slices.set(id, slice);
      const ids = this.slicesOf.get(k) ?? new Set<string>();
      this.slicesOf.set(k, ids.add(id));
      this.touch(k);
    } else this.slices.delete(id);
  }

  /** One Service as last set (namespace/name). */
  service(key: string): Service | undefined {
    return this.services.get(key);
  }

  /** The EndpointSlices of one Service (namespace/name). */
  endpointSlicesOf(key: string): EndpointSlice[] {
    return [...(this.slicesOf.get(key) ?? [])].map((id) => this.slices.get(id)!);
  }

  /** Every Service at once: those not the same object as before are changed or removed. */
  setServices(services: Service[]): void {
    const next = new Map(services.map((s) => [svcKey(s.namespace, s.name), s]));
    for (const [k, s] of this.services) if (!next.has(k)) this.deleteService(s.namespace, s.name);
    for (const s of next.values()) this.setService(s);
  }

  /** Every EndpointSlice at once (ids by service and position in the list). */
  setEndpointSlices(slices: EndpointSlice[]): void {
    const next = new Map<string, EndpointSlice>();
    const n = new Map<string, number>();
    for (const s of slices) {
      const k = svcKey(s.namespace, s.serviceName);
      const i = n.get(k) ?? 0;
      n.set(k, i + 1);
      next.set(`${k}#${i}`, s);
    }
    for (const id of [...this.slices.keys()])
      if (!next.has(id)) this.setEndpointSlice(id, undefined);
    for (const [id, s] of next) this.setEndpointSlice(id, s);
  }

  /** The pod networks of one family (masquerade rules): every service renders again. */
  setClusterCidrs(family: IpFamily, cidrs: string[]): void {
    const old = this.o.clusterCidrs[family] ?? [];
    if (sameItems(old, cidrs)) return;
    this.o.clusterCidrs[family] = cidrs;
    // the fixed part changes too: the table is rewritten whole
    if (this.families.has(family)) this.families.set(family, this.freshFamily(family));
  }

  /** The node port ranges changed: every service renders again. */
  setNodePortRanges(ranges: Array<[number, number]>): void {
    if (JSON.stringify(ranges) === JSON.stringify(this.o.nodePortRanges)) return;
    this.o.nodePortRanges = ranges;
    for (const st of this.families.values()) st.dirty = 'all';
  }

  /** Forget what was applied: the next apply rewrites every table. */
  resync(): void {
    for (const st of this.families.values()) {
      st.inSync = false;
      st.table.forget();
    }
  }

  /** Programs the current Services; throws with nft's message when the kernel refuses. */
  async apply(): Promise<ApplyStats[]> {
    const stats: ApplyStats[] = [];
    for (const [family, st] of this.families) {
      this.render(family, st);
      const full = !st.inSync;
      const script = full ? fullScript(st.table.state()) : changeScript(family, st.table.changes());
      if (script !== '') {
        // unknown until nft says it took it
        st.inSync = false;
        st.table.forget();
        const r = await this.exec(['nft', '-f', '-'], script);
        if (r.code !== 0) {
          throw new Error(`nft refused the ${tableRef(family)} update: ${r.stderr.trim()}`);
        }
      }
      st.table.applied();
      st.inSync = true;
      await this.flushStaleUdp(family, st);
      stats.push({ family, lines: script === '' ? 0 : script.split('\n').length - 1, full });
    }
    return stats;
  }

  /** Removes the tables (the agent stopping with services turned off). */
  async remove(): Promise<void> {
    for (const [family, st] of this.families) {
      const t = tableRef(family);
      await this.exec(['nft', '-f', '-'], `add table ${t}\ndelete table ${t}\n`);
      st.inSync = false;
      st.table.forget();
    }
  }

  private freshFamily(family: IpFamily): FamilyState {
    const old = this.families.get(family);
    return {
      table: new NftTable(family, this.o.clusterCidrs[family] ?? [], (c) =>
        this.report([`two services claim ${c}`]),
      ),
      // what was rendered (the ports to take out when a service goes) and what conntrack
      // may still hold do not change with the table
      rendered: old?.rendered ?? new Map(),
      dirty: 'all',
      inSync: false,
      udpApplied: old?.udpApplied,
      udpNow: old?.udpNow ?? new Map(),
      udpDirty: old?.udpDirty ?? new Set(),
    };
  }

  private touch(k: string): void {
    for (const st of this.families.values()) if (st.dirty !== 'all') st.dirty.add(k);
  }

  /** Plans and renders the dirty services of one family into its table. */
  private render(family: IpFamily, st: FamilyState): void {
    const dirty =
      st.dirty === 'all' ? new Set([...st.rendered.keys(), ...this.services.keys()]) : st.dirty;
    st.dirty = new Set();
    if (dirty.size === 0) return;
    const opts = { family, clusterCidrs: this.o.clusterCidrs[family] ?? [] };
    for (const k of dirty) {
      const service = this.services.get(k);
      const old = st.rendered.get(k)?.plans ?? [];
      let plans: ServicePortPlan[] = [];
      if (service) {
        const slices = this.endpointSlicesOf(k);
        const r = planServices([service], slices, {
          nodeName: this.o.nodeName,
          family,
          nodePortRanges: this.o.nodePortRanges,
        });
        this.report(r.problems);
        plans = r.ports;
      }
      const keys = new Set(plans.map((p) => p.key));
      for (const p of old) if (!keys.has(p.key)) st.table.set(p.key, undefined, [k, 0]);
      plans.forEach((p, i) => st.table.set(p.key, renderPort(p, opts), [k, i]));
      if (plans.length > 0) st.rendered.set(k, { plans });
      else st.rendered.delete(k);
      this.udpChanges(st, old, plans);
    }
  }

  /** The UDP ports of one service rendered again. */
  private udpChanges(st: FamilyState, old: ServicePortPlan[], now: ServicePortPlan[]): void {
    for (const p of old) {
      if (p.protocol !== 'UDP') continue;
      st.udpNow.delete(p.key);
      st.udpDirty.add(p.key);
    }
    for (const p of now) {
      if (p.protocol !== 'UDP') continue;
      st.udpNow.set(p.key, {
        ips: [...p.clusterIPs, ...p.externalIPs],
        nodePort: p.nodePort,
        endpoints: new Set(p.endpoints.map((e) => e.ip)),
      });
      st.udpDirty.add(p.key);
    }
  }

  /**
   * As kube-proxy: UDP has no connection to end, so a conntrack entry keeps sending a
   * client's datagrams to an endpoint that is gone (until it times out, or for ever while
   * the client keeps sending). Entries towards removed endpoints are deleted, and when a
   * service port gets its first endpoint, the entries of its addresses (datagrams that
   * were refused) are.
   */
  private async flushStaleUdp(family: IpFamily, st: FamilyState): Promise<void> {
    const before = new Map<string, UdpTarget>();
    const now = new Map<string, UdpTarget>();
    for (const key of st.udpDirty) {
      const old = st.udpApplied?.get(key);
      const cur = st.udpNow.get(key);
      if (old) before.set(key, old);
      if (cur) now.set(key, cur);
    }
    st.udpDirty.clear();
    const first = st.udpApplied === undefined;
    st.udpApplied ??= new Map();
    for (const key of new Set([...before.keys(), ...now.keys()])) {
      const cur = now.get(key);
      if (cur) st.udpApplied.set(key, cur);
      else st.udpApplied.delete(key);
    }
    if (first) return; // nothing known to be stale on the first apply
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
