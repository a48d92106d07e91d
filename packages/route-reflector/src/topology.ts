// The reflector's BGP configuration from datastore resources, computed exactly as a
// node agent computes its own (@tortie/bgp-topology's computeBgp): its Node gives the
// AS (else BGPConfiguration's asNumber), router id and address (spec.bgp.ipv4Address) and
// cluster id (spec.bgp.routeReflectorClusterID); its clients and other peers come
// from the node mesh and BGPPeers (peerSelector / nodeSelector, both ways). A
// standalone reflector originates nothing. Pure.
import type { Resource } from '@tortie/api';
import { bgpNodeFacts, computeBgp, type BgpConfig, type BgpNode } from '@tortie/bgp-topology';

export interface ReflectorWorld {
  /** The reflector's Node name. */
  me: string;
  nodes: Iterable<Resource<'Node'>>;
  peers: Iterable<Resource<'BGPPeer'>>;
  filters?: Iterable<Resource<'BGPFilter'>>;
  /** BGPConfigurations: "default" and "node.<name>" (the reflector's, and its peers' ports). */
  bgpConfigurations?: Iterable<Resource<'BGPConfiguration'>>;
  /** CALICO_ROUTER_ID: an IPv4 address, "hash", or unset (the Node's IPv4 address). */
  routerId?: string;
}

/** The datastore does not (yet) describe a reflector; the message says what to fix. */
export class TopologyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TopologyError';
  }
}

/** The reflector's BGP configuration; throws TopologyError when its Node is unusable. */
export function reflectorTopology(w: ReflectorWorld): BgpConfig {
  const nodes = new Map<string, BgpNode>();
  for (const n of w.nodes) nodes.set(n.metadata.name, bgpNodeFacts(n));
  const me = nodes.get(w.me);
  const fix = 'tortie-rr needs spec.bgp.ipv4Address and spec.bgp.routeReflectorClusterID';
  if (!me) throw new TopologyError(`Node "${w.me}" is not in the datastore (${fix})`);
  if (!me.ip) throw new TopologyError(`Node "${w.me}" has no spec.bgp.ipv4Address (${fix})`);
  if (!me.rrClusterId) {
    throw new TopologyError(`Node "${w.me}" has no spec.bgp.routeReflectorClusterID (${fix})`);
  }
  const bgp = computeBgp({
    me: w.me,
    nodes,
    configs: w.bgpConfigurations,
    routerId: w.routerId,
    peers: w.peers,
    filters: w.filters,
    originate: [],
  });
  return { ...bgp, originate: [] };
}
