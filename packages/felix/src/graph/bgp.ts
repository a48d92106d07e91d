// This node's BGP peers, as Calico's confd computes them for BIRD: the node-to-node mesh
// (unless BGPConfiguration turns it off), global BGPPeers, BGPPeers for this node (by name
// or nodeSelector), peers picked by peerSelector, and the route-reflector role from the
// node's routeReflectorClusterID. Pure.
import type { Resource } from '@tortie/api';
import { matches, parseSelector } from '@tortie/policy';
import type { BgpPeer } from '../types';
import { nodeIpv4 } from './routes';

export interface BgpInputs {
  me: string;
  nodes: ReadonlyMap<string, Resource<'Node'>>;
  config?: Resource<'BGPConfiguration'>;
  peers: ReadonlyArray<Resource<'BGPPeer'>>;
}

export const DEFAULT_ASN = 64512;

export function nodeAsn(i: BgpInputs, n: Resource<'Node'> | undefined): number {
  return n?.spec.bgp?.asNumber ?? i.config?.spec.asNumber ?? DEFAULT_ASN;
}

const ipOrder = (ip: string) =>
  ip
    .split('.')
    .map((o) => o.padStart(3, '0'))
    .join('.');

/** "10.0.0.1", "10.0.0.1:1790", "[fd00::1]:1790" -> address and port. */
function splitPeerIp(text: string): { address: string; port?: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  return m ? { address: m[1], port: Number(m[2]) } : { address: text };
}

export function computePeers(i: BgpInputs): BgpPeer[] {
  const me = i.nodes.get(i.me);
  const myIp = nodeIpv4(me);
  if (!me || !myIp) return [];
  const myCluster = me.spec.bgp?.routeReflectorClusterID;
  const myLabels = me.metadata.labels ?? {};
  const peers = new Map<string, BgpPeer>();

  // the mesh: one session per pair, the node with the higher address waits
  if (i.config?.spec.nodeToNodeMeshEnabled !== false) {
    for (const n of i.nodes.values()) {
      const ip = nodeIpv4(n);
      if (n.metadata.name === i.me || !ip) continue;
      peers.set(ip, {
        name: `mesh-${ip}`,
        address: ip,
        asNumber: nodeAsn(i, n),
        passive: ipOrder(myIp) > ipOrder(ip),
      });
    }
  }

  for (const p of [...i.peers].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const s = p.spec;
    const forMe =
      s.node !== undefined
        ? s.node === i.me
        : s.nodeSelector === undefined || matches(parseSelector(s.nodeSelector), myLabels);
    if (!forMe) continue;
    const scope = s.node !== undefined || s.nodeSelector !== undefined ? 'node' : 'global';
    if (s.peerIP !== undefined) {
      const { address, port } = splitPeerIp(s.peerIP);
      if (address === myIp) continue;
      peers.set(address, {
        name: `${scope}-${p.metadata.name}`,
        address,
        ...(port ? { port } : {}),
        asNumber: s.asNumber ?? nodeAsn(i, me),
        ...(s.ttlSecurity !== undefined ? { ttlSecurity: s.ttlSecurity } : {}),
        ...(s.keepOriginalNextHop ? { keepOriginalNextHop: true } : {}),
      });
    } else if (s.peerSelector !== undefined) {
      const sel = parseSelector(s.peerSelector);
      for (const n of i.nodes.values()) {
        const ip = nodeIpv4(n);
        if (n.metadata.name === i.me || !ip || !matches(sel, n.metadata.labels ?? {})) continue;
        const theirCluster = n.spec.bgp?.routeReflectorClusterID;
        peers.set(ip, {
          name: `${scope}-${p.metadata.name}-${n.metadata.name}`,
          address: ip,
          asNumber: s.asNumber ?? nodeAsn(i, n),
          // a reflector reflects to selected nodes outside its cluster: its clients
          ...(myCluster !== undefined && theirCluster !== myCluster ? { rrClient: true } : {}),
          ...(s.ttlSecurity !== undefined ? { ttlSecurity: s.ttlSecurity } : {}),
        });
      }
    }
  }
  // the other direction, as Calico computes it: a BGPPeer whose peerSelector picks this
  // node makes us peer with every node its nodeSelector (or node) picks
  for (const p of i.peers) {
    const s = p.spec;
    if (s.peerSelector === undefined || !matches(parseSelector(s.peerSelector), myLabels)) continue;
    const from = (n: Resource<'Node'>) =>
      s.node !== undefined
        ? n.metadata.name === s.node
        : s.nodeSelector === undefined ||
          matches(parseSelector(s.nodeSelector), n.metadata.labels ?? {});
    for (const n of i.nodes.values()) {
      const ip = nodeIpv4(n);
      if (n.metadata.name === i.me || !ip || peers.has(ip) || !from(n)) continue;
      const theirCluster = n.spec.bgp?.routeReflectorClusterID;
      peers.set(ip, {
        name: `${s.node !== undefined || s.nodeSelector !== undefined ? 'node' : 'global'}-${p.metadata.name}-${n.metadata.name}`,
        address: ip,
        asNumber: nodeAsn(i, n),
        ...(myCluster !== undefined && theirCluster !== myCluster ? { rrClient: true } : {}),
        ...(s.ttlSecurity !== undefined ? { ttlSecurity: s.ttlSecurity } : {}),
      });
    }
  }
  return [...peers.values()].sort((a, b) => ipOrder(a.address).localeCompare(ipOrder(b.address)));
}
