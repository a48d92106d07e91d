// Cluster-wide and per-node BGP settings from the BGPConfigurations, merged as confd
// merges them (confd/pkg/backends/calico/client.go updateBGPConfigCache,
// bgp_processor.go getNodeOrGlobalValue): "default" holds the cluster's AS number, the
// mesh switch and the service IPs; "node.<name>" may set that node's listenPort, which
// wins over the default's. Absent settings get confd's defaults (AS 64512, mesh on,
// port 179).
import type { Resource } from '@tortie/api';

export const DEFAULT_ASN = 64512;
export const BGP_PORT = 179;

export interface BgpSettings {
  asNumber: number;
  meshEnabled: boolean;
  /** Service cluster/external/LoadBalancer CIDRs to originate (empty entries skipped). */
  services: string[];
  /** The listen port BGPConfiguration sets for a node (its own, else the default's). */
  configuredPort(node: string): number | undefined;
  /** The port a node listens on, and that its peers dial. */
  listenPort(node: string): number;
}

type Config = Resource<'BGPConfiguration'>;

export function bgpSettings(configs: Iterable<Config>): BgpSettings {
  const byName = new Map<string, Config>();
  for (const c of configs) byName.set(c.metadata.name, c);
  const global = byName.get('default')?.spec;
  const own = (node: string) => byName.get(`node.${node}`)?.spec;
  const configuredPort = (node: string) => own(node)?.listenPort ?? global?.listenPort;
  return {
    asNumber: global?.asNumber ?? DEFAULT_ASN,
    meshEnabled: global?.nodeToNodeMeshEnabled !== false,
    services: [
      ...(global?.serviceClusterIPs ?? []),
      ...(global?.serviceExternalIPs ?? []),
      ...(global?.serviceLoadBalancerIPs ?? []),
    ].flatMap((s) => (s.cidr ? [s.cidr] : [])),
    configuredPort,
    listenPort: (node) => configuredPort(node) ?? BGP_PORT,
  };
}
