// BGP peering with local workloads (BGPPeer localWorkloadSelector), as Calico splits it:
// felix's ActiveBGPPeerCalculator (felix/calc/active_bpgpeer_calculator.go) picks, for
// each workload endpoint on this node, its active BGPPeer: the first by name among the
// BGPPeers that apply to this node (node, else nodeSelector; neither: every node) whose
// localWorkloadSelector matches the endpoint's labels (profile labels included). confd
// (client.go localBGPPeerDataAsBGPPeers) then peers with the workload's first IPv4 and
// first IPv6 address: passive (the workload dials the node's localWorkloadPeeringIP),
// no source address, in the BGPPeer's asNumber, with its localASNumber and filters only.
import type { Resource } from '@tortie/api';
import { matches, parseSelector } from '@tortie/policy';
import { canonicalIp } from './address';
import { type PeerContext } from './context';
import { filterRules } from './filters';
import { DEFAULT_RESTART_S } from './settings';
import type { BgpNode, BgpPeer } from './types';

type Peer = Resource<'BGPPeer'>;

/** A workload endpoint on this node, as the local-peer rules read it. */
export interface LocalWorkload {
  /** The endpoint's id ("<namespace>/<pod>/<endpoint>"). */
  id: string;
  /** Its labels, with those its profiles give it (namespace, service account). */
  labels: Record<string, string>;
  /** Its first IPv4 and IPv6 addresses, without prefix. */
  ipv4?: string;
  ipv6?: string;
}

/** felix's bgpPeerSelectsLocalNode: node, else nodeSelector ("" or absent: all nodes). */
function selectsNode(p: Peer, me: BgpNode): boolean {
  if (p.spec.node) return p.spec.node === me.name;
  const sel = p.spec.nodeSelector;
  return !sel || matches(parseSelector(sel), me.labels);
}

/** Each local endpoint's active BGPPeer (id -> BGPPeer), as felix computes it. */
export function activeLocalPeers(
  me: BgpNode,
  peers: Iterable<Peer>,
  workloads: Iterable<LocalWorkload>,
): Map<string, Peer> {
  const candidates = [...peers]
    .filter((p) => p.spec.localWorkloadSelector && selectsNode(p, me))
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
    .map((p) => ({ p, sel: parseSelector(p.spec.localWorkloadSelector!) }));
  const out = new Map<string, Peer>();
  if (!candidates.length) return out;
  for (const w of workloads) {
    const hit = candidates.find((c) => matches(c.sel, w.labels));
    if (hit) out.set(w.id, hit.p);
  }
  return out;
}

/** The sessions with local workloads in this context's family, by endpoint id. */
export function localWorkloadSessions(
  c: PeerContext,
  active: ReadonlyMap<string, Peer>,
  workloads: ReadonlyMap<string, LocalWorkload>,
): BgpPeer[] {
  const out: BgpPeer[] = [];
  for (const [id, p] of [...active].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const w = workloads.get(id);
    const text = c.family === 4 ? w?.ipv4 : w?.ipv6;
    const address = text ? canonicalIp(text) : undefined;
    if (!address) continue;
    const s = p.spec;
    out.push({
      name: `local-workload-${p.metadata.name}-${id.replace(/\//g, '.')}`,
      address,
      port: 179,
      asNumber: s.asNumber!,
      ...(s.localASNumber !== undefined ? { localAsNumber: s.localASNumber } : {}),
      passive: true,
      ...filterRules(c, s.filters),
      restartTimeS: DEFAULT_RESTART_S,
    });
  }
  return out;
}
