// `ipam check`: compares what IPAM holds with what exists. Pure: takes the listed
// resources, returns what does not add up. `gc` (in the client) acts on the report.
import type { Resource } from '@tortie/api';
import { allocationsOf, affineNode } from './block';

export interface LeakedHandle {
  handleId: string;
  ips: string[];
  namespace?: string;
  pod?: string;
  node?: string;
  /** When the oldest of its addresses was allocated (ISO time), if recorded. */
  allocatedAt?: string;
  reason: string;
}

export interface IpamReport {
  /** Allocations whose pod (or node, for node-level handles) no longer exists. */
  leakedHandles: LeakedHandle[];
  /** Addresses a block holds for a handle whose record is missing. */
  allocationsWithoutHandle: Array<{ ip: string; handleId?: string; allocatedAt?: string }>;
  /** Handle records counting more or fewer addresses than the blocks hold. */
  handleMismatches: Array<{ handleId: string; block: string; counted: number; found: number }>;
  /** Workload endpoints using an address IPAM does not hold for them. */
  endpointsWithoutAllocation: Array<{ endpoint: string; ip: string; heldBy?: string }>;
  /** Block affinities of nodes that do not exist. */
  orphanAffinities: Array<{ node: string; cidr: string }>;
  summary: { blocks: number; allocated: number; handles: number; endpoints: number };
}

export interface IpamWorld {
  blocks: Resource<'IPAMBlock'>[];
  handles: Resource<'IPAMHandle'>[];
  affinities: Resource<'BlockAffinity'>[];
  endpoints: Resource<'WorkloadEndpoint'>[];
  nodes: Resource<'Node'>[];
}

export function isClean(r: IpamReport): boolean {
  return (
    r.leakedHandles.length +
      r.allocationsWithoutHandle.length +
      r.handleMismatches.length +
      r.endpointsWithoutAllocation.length +
      r.orphanAffinities.length ===
    0
  );
}

export function checkIpam(w: IpamWorld): IpamReport {
  const nodes = new Set(w.nodes.map((n) => n.metadata.name));
  const handles = new Map(w.handles.map((h) => [h.spec.handleID, h]));
  // pods by namespace/pod, with their container ids when recorded
  const pods = new Map<string, Set<string | undefined>>();
  for (const e of w.endpoints) {
    const key = `${e.metadata.namespace ?? ''}/${e.spec.pod ?? e.spec.workload ?? e.metadata.name}`;
    pods.set(key, (pods.get(key) ?? new Set()).add(e.spec.containerID));
  }
  const podExists = (ns: string, pod: string, containerID?: string) => {
    const ids = pods.get(`${ns}/${pod}`);
    if (!ids) return false;
    // An endpoint without a recorded container id (mirrored from Kubernetes) matches any.
    return containerID === undefined || ids.has(undefined) || ids.has(containerID);
  };

  const report: IpamReport = {
    leakedHandles: [],
    allocationsWithoutHandle: [],
    handleMismatches: [],
    endpointsWithoutAllocation: [],
    orphanAffinities: [],
    summary: {
      blocks: w.blocks.length,
      allocated: 0,
      handles: w.handles.length,
      endpoints: w.endpoints.length,
    },
  };

  const holder = new Map<string, string | undefined>(); // ip -> handle
  const perHandle = new Map<
    string,
    { ips: string[]; attrs: Record<string, string>; blocks: Map<string, number> }
  >();
  for (const b of w.blocks) {
    for (const a of allocationsOf(b.spec)) {
      report.summary.allocated++;
      holder.set(a.ip, a.handleId);
      if (a.handleId === undefined || !handles.has(a.handleId)) {
        report.allocationsWithoutHandle.push({
          ip: a.ip,
          handleId: a.handleId,
          allocatedAt: a.attrs.timestamp,
        });
      }
      if (a.handleId === undefined) continue;
      const h = perHandle.get(a.handleId) ?? {
        ips: [] as string[],
        attrs: a.attrs,
        blocks: new Map<string, number>(),
      };
      h.ips.push(a.ip);
      h.blocks.set(b.spec.cidr, (h.blocks.get(b.spec.cidr) ?? 0) + 1);
      if ((a.attrs.timestamp ?? '') < (h.attrs.timestamp ?? '')) h.attrs = a.attrs;
      perHandle.set(a.handleId, h);
    }
  }

  for (const [handleId, h] of perHandle) {
    const { namespace, pod, node, containerID, timestamp } = h.attrs;
    let reason: string | undefined;
    if (namespace !== undefined && pod !== undefined) {
      if (!podExists(namespace, pod, containerID))
        reason = `pod ${namespace}/${pod} does not exist`;
    } else if (node !== undefined && !nodes.has(node)) {
      reason = `node ${node} does not exist`;
    }
    if (reason) {
      report.leakedHandles.push({
        handleId,
        ips: h.ips,
        namespace,
        pod,
        node,
        allocatedAt: timestamp,
        reason,
      });
    }
  }

  for (const h of w.handles) {
    const found = perHandle.get(h.spec.handleID)?.blocks ?? new Map<string, number>();
    const cidrs = new Set([...Object.keys(h.spec.block), ...found.keys()]);
    for (const cidr of cidrs) {
      const counted = h.spec.block[cidr] ?? 0;
      const n = found.get(cidr) ?? 0;
      if (counted !== n)
        report.handleMismatches.push({ handleId: h.spec.handleID, block: cidr, counted, found: n });
    }
  }

  for (const e of w.endpoints) {
    for (const net of e.spec.ipNetworks) {
      const ip = net.split('/')[0];
      const heldBy = holder.get(ip);
      if (!holder.has(ip)) {
        report.endpointsWithoutAllocation.push({ endpoint: endpointName(e), ip });
      } else {
        const h = heldBy === undefined ? undefined : perHandle.get(heldBy);
        const ns = h?.attrs.namespace;
        const pod = h?.attrs.pod;
        if (
          ns !== undefined &&
          pod !== undefined &&
          (ns !== e.metadata.namespace || pod !== (e.spec.pod ?? e.spec.workload))
        ) {
          report.endpointsWithoutAllocation.push({ endpoint: endpointName(e), ip, heldBy });
        }
      }
    }
  }

  for (const a of w.affinities) {
    if (!nodes.has(a.spec.node))
      report.orphanAffinities.push({ node: a.spec.node, cidr: a.spec.cidr });
  }
  for (const b of w.blocks) {
    const n = affineNode(b.spec);
    if (
      n !== undefined &&
      !nodes.has(n) &&
      !report.orphanAffinities.some((o) => o.cidr === b.spec.cidr)
    ) {
      report.orphanAffinities.push({ node: n, cidr: b.spec.cidr });
    }
  }
  return report;
}

function endpointName(e: Resource<'WorkloadEndpoint'>): string {
  return `${e.metadata.namespace ?? ''}/${e.metadata.name}`;
}
