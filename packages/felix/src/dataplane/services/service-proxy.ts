// The service proxy: Services and EndpointSlices in, nftables programmed (a kube-proxy
// replacement). Each apply is one `nft -f` transaction per family with only what changed
// since the last successful one; after a failure, or when asked to resync, the whole
// table is rewritten (still one transaction, so traffic never sees a half-written table).
import { runTool, type ToolInput, type ToolResult } from '@tortie/exec';
import { planServices, type EndpointSlice, type IpFamily, type Service } from './model';
import { diffScript, fullScript } from './nft-diff';
import { renderServices, tableRef, type NftState } from './nft-render';

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
}

export interface ApplyStats {
  family: IpFamily;
  /** lines written in this transaction (0: nothing changed) */
  lines: number;
  full: boolean;
}

export class ServiceProxy {
  private services: Service[] = [];
  private slices: EndpointSlice[] = [];
  /** what the kernel holds, per family; absent: unknown, the next apply is a full one */
  private applied = new Map<IpFamily, NftState>();
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

  /** Forget what was applied: the next apply rewrites every table. */
  resync(): void {
    this.applied.clear();
  }

  /** Programs the current Services; throws with nft's message when the kernel refuses. */
  async apply(): Promise<ApplyStats[]> {
    const stats: ApplyStats[] = [];
    for (const family of this.o.families) {
      const { ports, problems } = planServices(this.services, this.slices, {
        nodeName: this.o.nodeName,
        family,
      });
      for (const p of problems) this.o.onProblem?.(p);
      const next = renderServices(ports, {
        family,
        clusterCidrs: this.o.clusterCidrs[family] ?? [],
      });
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
}
