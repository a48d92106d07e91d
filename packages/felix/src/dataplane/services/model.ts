// What the service proxy reads: Kubernetes Services and EndpointSlices (the fields a
// kube-proxy uses), and the plan computed from them for one node and one IP family.
// Pure: no kernel here. The plan is what kube-proxy's proxier derives before writing rules:
// per service port, its frontends (cluster IPs, node port, external and load-balancer IPs)
// and the endpoints traffic may go to.
import { formatIp, ipInNet, ipVersionOf, parseIp } from '@tortie/netaddr';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type IpFamily = 4 | 6;

export interface ServicePort {
  name?: string;
  protocol?: Protocol;
  port: number;
  nodePort?: number;
}

export interface Service {
  namespace: string;
  name: string;
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  /** spec.clusterIPs (or spec.clusterIP); "None" is a headless service */
  clusterIPs?: string[];
  externalIPs?: string[];
  /** status.loadBalancer.ingress[].ip */
  loadBalancerIPs?: string[];
  ports: ServicePort[];
  sessionAffinity?: 'None' | 'ClientIP';
  /** sessionAffinityConfig.clientIP.timeoutSeconds; Kubernetes' default is 10800 */
  affinityTimeoutSeconds?: number;
  externalTrafficPolicy?: 'Cluster' | 'Local';
  internalTrafficPolicy?: 'Cluster' | 'Local';
  /** served with the local endpoint count (Local LoadBalancer Services) */
  healthCheckNodePort?: number;
}

export interface SliceEndpoint {
  addresses: string[];
  nodeName?: string;
  /** conditions; an absent ready means ready, as the EndpointSlice API says */
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export interface EndpointSlice {
  namespace: string;
  /** the kubernetes.io/service-name label */
  serviceName: string;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  ports: { name?: string; protocol?: Protocol; port: number }[];
  endpoints: SliceEndpoint[];
}

export interface PlannedEndpoint {
  ip: string;
  port: number;
  local: boolean;
}

/** One service port as the dataplane programs it, in one family. */
export interface ServicePortPlan {
  /** namespace/name/protocol/port-name: stable while the service port exists */
  key: string;
  protocol: Protocol;
  port: number;
  clusterIPs: string[];
  nodePort?: number;
  /** external IPs and load-balancer ingress IPs: reached like a node port */
  externalIPs: string[];
  /** every usable endpoint (ready ones; when none is ready, serving terminating ones) */
  endpoints: PlannedEndpoint[];
  affinitySeconds?: number;
  externalLocal: boolean;
  internalLocal: boolean;
}

export interface PlanContext {
  nodeName: string;
  family: IpFamily;
  /** Node ports outside these are not programmed (FelixConfiguration kubeNodePortRanges). */
  nodePortRanges?: ReadonlyArray<readonly [number, number]>;
}

/** Kubernetes' default --service-node-port-range, and Calico's kubeNodePortRanges default. */
export const DEFAULT_NODE_PORT_RANGES: ReadonlyArray<readonly [number, number]> = [[30000, 32767]];

const familyOf = (ip: string): IpFamily | undefined => ipVersionOf(ip) || undefined;

/** Canonical text of an address, so that one address is one element however it was written. */
function canonical(ip: string): string {
  const { version, value } = parseIp(ip);
  return formatIp(version, value);
}

/**
 * The service ports to program for one node and family. A service without a usable
 * address in the family, headless services and ExternalName services have none. An
 * address that does not parse is left out and reported in `problems`.
 */
export function planServices(
  services: readonly Service[],
  slices: readonly EndpointSlice[],
  ctx: PlanContext,
): { ports: ServicePortPlan[]; problems: string[] } {
  const problems: string[] = [];
  const inFamily = (what: string, ips: readonly string[] = []) =>
    ips.filter((ip) => {
      const f = familyOf(ip);
      if (f === undefined) problems.push(`${what}: "${ip}" is not an IP address`);
      return f === ctx.family;
    });
  const slicesBySvc = new Map<string, EndpointSlice[]>();
  const wantType = ctx.family === 6 ? 'IPv6' : 'IPv4';
  for (const s of slices) {
    if (s.addressType !== wantType) continue;
    const k = `${s.namespace}/${s.serviceName}`;
    const list = slicesBySvc.get(k);
    if (list) list.push(s);
    else slicesBySvc.set(k, [s]);
  }
  const ports: ServicePortPlan[] = [];
  for (const svc of services) {
    if (svc.type === 'ExternalName') continue;
    const id = `${svc.namespace}/${svc.name}`;
    const clusterIPs = inFamily(
      `service ${id} clusterIP`,
      (svc.clusterIPs ?? []).filter((ip) => ip !== 'None' && ip !== ''),
    );
    const nodePorts = svc.type === 'NodePort' || svc.type === 'LoadBalancer';
    const externalIPs = [
      ...inFamily(`service ${id} externalIP`, svc.externalIPs),
      ...(svc.type === 'LoadBalancer'
        ? inFamily(`service ${id} load balancer IP`, svc.loadBalancerIPs)
        : []),
    ].map(canonical);
    if (clusterIPs.length === 0) continue; // headless, or not in this family
    const ranges = ctx.nodePortRanges ?? DEFAULT_NODE_PORT_RANGES;
    for (const sp of svc.ports) {
      let nodePort = nodePorts && sp.nodePort ? sp.nodePort : undefined;
      if (
        nodePort !== undefined &&
        !ranges.some(([lo, hi]) => nodePort! >= lo && nodePort! <= hi)
      ) {
        problems.push(
          `service ${id} port ${sp.name ?? sp.port}: node port ${nodePort} is outside kubeNodePortRanges ${ranges.map(([lo, hi]) => (lo === hi ? lo : `${lo}:${hi}`)).join(',')}; not programmed`,
        );
        nodePort = undefined;
      }
      const protocol = sp.protocol ?? 'TCP';
      const endpoints = endpointsFor(slicesBySvc.get(id) ?? [], sp, ctx.nodeName);
      ports.push({
        key: `${id}/${protocol.toLowerCase()}/${sp.name ?? ''}`,
        protocol,
        port: sp.port,
        clusterIPs: clusterIPs.map(canonical),
        nodePort,
        externalIPs: [...new Set(externalIPs)],
        endpoints,
        affinitySeconds:
          svc.sessionAffinity === 'ClientIP' ? (svc.affinityTimeoutSeconds ?? 10800) : undefined,
        externalLocal: svc.externalTrafficPolicy === 'Local',
        internalLocal: svc.internalTrafficPolicy === 'Local',
      });
    }
  }
  ports.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { ports, problems };
}

/**
 * The endpoints of one service port, matched by port name and protocol as kube-proxy
 * matches them: ready ones, or when none is ready the serving terminating ones (so a
 * rolling update does not drop connections that could still be served).
 */
function endpointsFor(slices: EndpointSlice[], sp: ServicePort, node: string): PlannedEndpoint[] {
  const protocol = sp.protocol ?? 'TCP';
  const ready: PlannedEndpoint[] = [];
  const terminating: PlannedEndpoint[] = [];
  const seen = new Set<string>();
  for (const slice of slices) {
    const port = slice.ports.find(
      (p) => (p.name ?? '') === (sp.name ?? '') && (p.protocol ?? 'TCP') === protocol,
    );
    if (!port) continue;
    for (const ep of slice.endpoints) {
      const ip = ep.addresses[0];
      if (ip === undefined || familyOf(ip) === undefined) continue;
      const e = { ip: canonical(ip), port: port.port, local: ep.nodeName === node };
      const k = `${e.ip}:${e.port}`;
      if (seen.has(k)) continue;
      if (ep.ready !== false) {
        seen.add(k);
        ready.push(e);
      } else if (ep.serving && ep.terminating) {
        seen.add(k);
        terminating.push(e);
      }
    }
  }
  const chosen = ready.length > 0 ? ready : terminating;
  return chosen.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port));
}

/**
 * The host routes this node advertises for Services with `externalTrafficPolicy: Local`,
 * as Calico does: each of their cluster, external and load-balancer addresses inside one
 * of the advertised service ranges, as a /32 (/128), only while this node has a ready
 * endpoint of the service. (The ranges themselves come from every node.)
 */
export function localServiceRoutes(
  services: Iterable<Service>,
  slices: Iterable<EndpointSlice>,
  nodeName: string,
  ranges: readonly string[],
): string[] {
  if (ranges.length === 0) return [];
  const withLocal = localReadyEndpoints(slices, nodeName);
  const out = new Set<string>();
  for (const svc of services) {
    if (svc.externalTrafficPolicy !== 'Local') continue;
    if (!withLocal.has(`${svc.namespace}/${svc.name}`)) continue;
    const ips = [
      ...(svc.clusterIPs ?? []),
      ...(svc.externalIPs ?? []),
      ...(svc.loadBalancerIPs ?? []),
    ];
    for (const ip of ips) {
      if (familyOf(ip) === undefined) continue;
      const host = canonical(ip);
      if (ranges.some((r) => ipInNet(host, r))) out.add(`${host}/${familyOf(ip) === 6 ? 128 : 32}`);
    }
  }
  return [...out].sort();
}

/**
 * Per service ("namespace/name"), the addresses of its ready endpoints on this node:
 * what decides the Local host routes and the health check answers.
 */
export function localReadyEndpoints(
  slices: Iterable<EndpointSlice>,
  nodeName: string,
): Map<string, Set<string>> {
  const local = new Map<string, Set<string>>();
  for (const s of slices) {
    for (const e of s.endpoints) {
      if (e.nodeName !== nodeName || e.ready === false || !e.addresses[0]) continue;
      const k = `${s.namespace}/${s.serviceName}`;
      local.set(k, (local.get(k) ?? new Set()).add(e.addresses[0]));
    }
  }
  return local;
}
