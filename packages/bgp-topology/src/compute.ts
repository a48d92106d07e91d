// This node's BGP configuration, as calico-node's confd derives BIRD's (bird.cfg for
// IPv4, bird6.cfg for IPv6): per family, the node-to-node mesh (mesh.ts) and the
// sessions of BGPPeers (bgp-peers.ts) between the nodes' addresses of that family; the
// node's AS, router id, listen port and log level (settings.ts); the route-reflector
// role from routeReflectorClusterID; the prefixes it originates. Pure.
import type { Resource } from '@tortie/api';
import { peerKey } from '@tortie/bgp-speaker';
import { compareIps, type Family } from './address';
import { communityRules } from './communities';
import { bgpPeerSessions } from './bgp-peers';
import { ipOf, type PeerContext } from './context';
import { activeLocalPeers, localWorkloadSessions, type LocalWorkload } from './local-workloads';
import { meshPeers } from './mesh';
import { bgpSettings, routerIdFor } from './settings';
import type { BgpConfig, BgpNode, BgpPeer } from './types';

export interface BgpWorld {
  me: string;
  nodes: ReadonlyMap<string, BgpNode>;
  /** The BGPConfigurations: "default" and any "node.<name>". */
  configs?: Iterable<Resource<'BGPConfiguration'>>;
  peers: Iterable<Resource<'BGPPeer'>>;
  /** The BGPFilters BGPPeers name in `filters`. */
  filters?: Iterable<Resource<'BGPFilter'>>;
  /** Blocks and borrowed /32s (service IPs are added here). */
  originate: Iterable<string>;
  /** False when the cluster runs without BGP (Calico's backend "vxlan" or "none"). */
  bgpEnabled?: boolean;
  /** CALICO_ROUTER_ID of this node: an IPv4 address, "hash", or unset. */
  routerId?: string;
  /** The workload endpoints on this node (for BGPPeer localWorkloadSelector). */
  localWorkloads?: Iterable<LocalWorkload>;
}

export function computeBgp(w: BgpWorld): BgpConfig {
  // read twice (settings, communities): an iterator would be spent by the first
  const configs = [...(w.configs ?? [])];
  const settings = bgpSettings(configs);
  const me = w.nodes.get(w.me);
  const myAsn = me?.asNumber ?? settings.asNumber;
  const myCluster = me?.rrClusterId;
  const routerId = routerIdFor(w.routerId, w.me, me?.ip);
  const enabled =
    me !== undefined && (me.ip ?? me.ipv6) !== undefined && !!routerId && w.bgpEnabled !== false;

  // read twice (sessions, local workloads): an iterator would be spent by the first
  const bgpPeers = [...w.peers];
  const workloads = new Map([...(w.localWorkloads ?? [])].map((l) => [l.id, l]));
  const active = me ? activeLocalPeers(me, bgpPeers, workloads.values()) : new Map();
  const peers: BgpPeer[] = [];
  if (enabled) {
    const nodes = [...w.nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
    const filters = new Map([...(w.filters ?? [])].map((f) => [f.metadata.name, f]));
    for (const family of [4, 6] as Family[]) {
      const myIp = ipOf(me, family);
      if (!myIp) continue;
      const c: PeerContext = { me, myAsn, myCluster, nodes, settings, family, myIp, filters };
      // explicit BGPPeers win over the mesh for the same address and port (confd would
      // run both as separate BIRD protocols to one neighbour)
      const seen = new Set<string>();
      const sessions = [
        ...bgpPeerSessions(c, bgpPeers),
        ...localWorkloadSessions(c, active, workloads),
        ...meshPeers(c),
      ];
      for (const p of sessions) {
        const key = peerKey(p.address, p.port);
        if (!seen.has(key)) peers.push(p);
        seen.add(key);
      }
    }
  }

  const originate = [...new Set([...w.originate, ...settings.services])].sort();
  const communities = communityRules(configs, w.me);
  return {
    enabled,
    asNumber: myAsn,
    ...(routerId ? { routerId } : {}),
    ...(me?.ip ? { ipv4Address: me.ip } : {}),
    ...(me?.ipv6 ? { ipv6Address: me.ipv6 } : {}),
    listenPort: settings.listenPort(w.me),
    logLevel: settings.logLevel(w.me),
    ...(myCluster !== undefined ? { routeReflectorClusterId: myCluster } : {}),
    ...(me?.subnet ? { localSubnet: me.subnet } : {}),
    peers: peers.sort((a, b) => compareIps(a.address, b.address) || a.port - b.port),
    originate,
    ...(communities.length ? { communities } : {}),
    ...(settings.normalRoutePriority ? { normalRoutePriority: settings.normalRoutePriority } : {}),
    ...(active.size
      ? {
          localWorkloadPeering: {
            ...(settings.localWorkloadPeeringIPv4
              ? { ipv4: settings.localWorkloadPeeringIPv4 }
              : {}),
            ...(settings.localWorkloadPeeringIPv6
              ? { ipv6: settings.localWorkloadPeeringIPv6 }
              : {}),
            endpoints: [...active.keys()].sort(),
          },
        }
      : {}),
  };
}
