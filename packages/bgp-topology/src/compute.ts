// This node's BGP configuration, as Calico's confd derives BIRD's: the node-to-node
// mesh (unless BGPConfiguration "default" turns it off; one session per pair, the node
// with the higher address waits passively; two reflectors of one cluster do not mesh),
// global BGPPeers, BGPPeers for this node (by name or nodeSelector), nodes picked by a
// peerSelector (and, the other way round, the nodes whose BGPPeer picks us), the route
// reflector role from routeReflectorClusterID (nodes outside our cluster are our
// clients), and the prefixes we originate. Pure.
import type { Resource } from '@tortie/api';
import { parseIp } from '@tortie/ipam';
import { matches, parseSelector } from '@tortie/policy';
import type { BgpConfig, BgpNode, BgpPeer } from './types';

export const DEFAULT_ASN = 64512;

export interface BgpWorld {
  me: string;
  nodes: ReadonlyMap<string, BgpNode>;
  /** BGPConfiguration "default". */
  config?: Resource<'BGPConfiguration'>;
  peers: Iterable<Resource<'BGPPeer'>>;
  /** Blocks and borrowed /32s (service IPs are added here). */
  originate: Iterable<string>;
  /** False when the cluster runs without BGP (Calico's backend "vxlan" or "none"). */
  bgpEnabled?: boolean;
}

/** Numeric address order (v4 before v6). */
export function compareIps(a: string, b: string): number {
  const x = parseIp(a);
  const y = parseIp(b);
  if (x.version !== y.version) return x.version - y.version;
  return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

/** "10.0.0.1", "10.0.0.1:1790", "[fd00::1]:1790" -> address and port. */
export function splitPeerIp(text: string): { address: string; port?: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  return m ? { address: m[1], port: Number(m[2]) } : { address: text };
}

const selects = (text: string | undefined, labels: Record<string, string>) =>
  text === undefined || matches(parseSelector(text), labels);

export function computeBgp(w: BgpWorld): BgpConfig {
  const me = w.nodes.get(w.me);
  const defaultAsn = w.config?.spec.asNumber ?? DEFAULT_ASN;
  const asnOf = (n: BgpNode | undefined) => n?.asNumber ?? defaultAsn;
  const myAsn = asnOf(me);
  const myIp = me?.ip;
  const myCluster = me?.rrClusterId;
  const services = [
    ...(w.config?.spec.serviceClusterIPs ?? []),
    ...(w.config?.spec.serviceExternalIPs ?? []),
    ...(w.config?.spec.serviceLoadBalancerIPs ?? []),
  ].map((s) => s.cidr);
  const byIp = new Map<string, BgpNode>();
  for (const n of w.nodes.values()) if (n.ip) byIp.set(n.ip, n);

  const peers = new Map<string, BgpPeer>();
  // a reflector treats iBGP peers outside its cluster as clients
  const client = (asn: number, theirCluster: string | undefined) =>
    myCluster !== undefined && asn === myAsn && theirCluster !== myCluster
      ? { rrClient: true }
      : {};

  const enabled = myIp !== undefined && w.bgpEnabled !== false;
  if (me && myIp && enabled) {
    if (w.config?.spec.nodeToNodeMeshEnabled !== false) {
      for (const n of w.nodes.values()) {
        if (n.name === w.me || !n.ip || n.ip === myIp) continue;
        if (myCluster !== undefined && n.rrClusterId === myCluster) continue;
        peers.set(n.ip, {
          name: `mesh-${n.ip}`,
          address: n.ip,
          asNumber: asnOf(n),
          passive: compareIps(myIp, n.ip) > 0,
        });
      }
    }
    const sorted = [...w.peers].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const reverse: BgpPeer[] = [];
    for (const p of sorted) {
      const s = p.spec;
      const scope = s.node !== undefined || s.nodeSelector !== undefined ? 'node' : 'global';
      const ttl = s.ttlSecurity !== undefined ? { ttlSecurity: s.ttlSecurity } : {};
      const appliesToMe =
        s.node !== undefined ? s.node === w.me : selects(s.nodeSelector, me.labels);
      if (appliesToMe && s.peerIP !== undefined) {
        const { address, port } = splitPeerIp(s.peerIP);
        if (address === myIp) continue;
        const asn = s.asNumber ?? myAsn;
        peers.set(address, {
          name: `${scope}-${p.metadata.name}`,
          address,
          ...(port ? { port } : {}),
          asNumber: asn,
          ...client(asn, byIp.get(address)?.rrClusterId),
          ...ttl,
          ...(s.keepOriginalNextHop ? { keepOriginalNextHop: true } : {}),
        });
      }
      if (s.peerSelector === undefined) continue;
      const sel = parseSelector(s.peerSelector);
      const rrName = (n: BgpNode) =>
        myCluster !== undefined || n.rrClusterId !== undefined
          ? `rr-${n.ip}`
          : `${scope}-${p.metadata.name}-${n.name}`;
      if (appliesToMe) {
        for (const n of w.nodes.values()) {
          if (n.name === w.me || !n.ip || n.ip === myIp || !matches(sel, n.labels)) continue;
          const asn = s.asNumber ?? asnOf(n);
          peers.set(n.ip, {
            name: rrName(n),
            address: n.ip,
            asNumber: asn,
            ...client(asn, n.rrClusterId),
            ...ttl,
          });
        }
      }
      // the other end of someone else's peerSelector: we peer with the nodes it applies to
      if (matches(sel, me.labels)) {
        for (const n of w.nodes.values()) {
          if (n.name === w.me || !n.ip || n.ip === myIp) continue;
          const from = s.node !== undefined ? n.name === s.node : selects(s.nodeSelector, n.labels);
          if (!from) continue;
          const asn = asnOf(n);
          reverse.push({
            name: rrName(n),
            address: n.ip,
            asNumber: asn,
            ...client(asn, n.rrClusterId),
            ...ttl,
          });
        }
      }
    }
    for (const r of reverse) if (!peers.has(r.address)) peers.set(r.address, r);
  }

  return {
    enabled,
    asNumber: myAsn,
    ...(myIp ? { routerId: myIp } : {}),
    listenPort: w.config?.spec.listenPort ?? 179,
    ...(myCluster !== undefined ? { routeReflectorClusterId: myCluster } : {}),
    ...(me?.subnet ? { localSubnet: me.subnet } : {}),
    peers: [...peers.values()].sort((a, b) => compareIps(a.address, b.address)),
    originate: [...new Set([...w.originate, ...services])].sort(),
  };
}
