// Calico's Kubernetes-datastore mapping of core objects to tortie resources (read-only
// views): Pods -> WorkloadEndpoints, Namespaces and ServiceAccounts -> Profiles whose
// labels endpoints inherit, networking.k8s.io NetworkPolicies -> NetworkPolicies.
// Pure functions over plain objects, so they are tested without an API server.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { API_VERSION, type Resource } from '@tortie/api';
import { convertK8sNetworkPolicy, type K8sNetworkPolicy } from '@tortie/policy';

export interface K8sObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  uid?: string;
  /** A string on the wire; the typed client turns it into a Date. */
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
}

export interface K8sPod {
  metadata: K8sObjectMeta;
  spec: {
    nodeName?: string;
    hostNetwork?: boolean;
    serviceAccountName?: string;
    containers: Array<{
      ports?: Array<{ name?: string; containerPort: number; protocol?: 'TCP' | 'UDP' | 'SCTP' }>;
    }>;
  };
  status?: { podIP?: string; podIPs?: Array<{ ip: string }>; phase?: string };
}

/** Calico's host-side interface name: "cali" + 11 hex chars of SHA-1("<namespace>.<pod>"). */
export function interfaceName(namespace: string, pod: string): string {
  return `cali${createHash('sha1').update(`${namespace}.${pod}`).digest('hex').slice(0, 11)}`;
}

/** Calico's workload endpoint name: node, orchestrator, pod, endpoint, dashes doubled. */
export function workloadEndpointName(node: string, pod: string, endpoint = 'eth0'): string {
  const esc = (s: string) => s.replace(/-/g, '--');
  return [node, 'k8s', pod, endpoint].map(esc).join('-');
}

function meta(m: K8sObjectMeta) {
  const out: Resource['metadata'] = { name: m.name };
  if (m.resourceVersion) out.resourceVersion = m.resourceVersion;
  if (m.uid) out.uid = m.uid;
  if (m.creationTimestamp) out.creationTimestamp = new Date(m.creationTimestamp).toISOString();
  return out;
}

/**
 * The annotations Calico's CNI plugin writes on the Pod in the Kubernetes datastore
 * (libcalico-go conversion.AnnotationPodIP/PodIPs/ContainerID): the pod's addresses as
 * CIDRs, at ADD, before the kubelet reports them in its status; "" after DEL.
 */
export const POD_IP_ANNOTATION = 'cni.projectcalico.org/podIP';
export const POD_IPS_ANNOTATION = 'cni.projectcalico.org/podIPs';
export const CONTAINER_ID_ANNOTATION = 'cni.projectcalico.org/containerID';

/**
 * The pod's addresses as Calico's getPodIPs takes them: status.podIPs, status.podIP, then
 * the CNI plugin's podIPs and podIP annotations (written at ADD, sooner than the kubelet).
 */
export function podAddresses(pod: K8sPod): string[] {
  const a = pod.metadata.annotations ?? {};
  if (pod.status?.podIPs?.length) return pod.status.podIPs.map((p) => p.ip);
  if (pod.status?.podIP) return [pod.status.podIP];
  if (a[POD_IPS_ANNOTATION]) return a[POD_IPS_ANNOTATION].split(',').map((x) => x.trim());
  if (a[POD_IP_ANNOTATION]) return [a[POD_IP_ANNOTATION].trim()];
  return [];
}

/**
 * A pod that no longer owns its addresses (Calico's IsFinished): Succeeded or Failed, or
 * being deleted after the CNI plugin's DEL emptied its podIP annotation.
 */
export function podFinished(pod: K8sPod): boolean {
  if (pod.metadata.deletionTimestamp && pod.metadata.annotations?.[POD_IP_ANNOTATION] === '')
    return true;
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** An address or CIDR as an ipNetworks entry: a bare address becomes /32 or /128. */
function ipNetwork(ip: string): string {
  return ip.includes('/') ? ip : `${ip}/${ip.includes(':') ? 128 : 32}`;
}

/**
 * The name of the endpoint a pod maps to whether or not it has addresses (for deletes);
 * undefined for an unscheduled or host-network pod.
 */
export function podEndpointName(pod: K8sPod): string | undefined {
  if (!pod.spec?.nodeName || pod.spec.hostNetwork) return undefined;
  return workloadEndpointName(pod.spec.nodeName, pod.metadata.name);
}

/**
 * The parts of a Calico workload endpoint name (node-orchestrator-workload-endpoint,
 * each part's dashes doubled), or undefined when it is not one.
 */
export function parseWorkloadEndpointName(
  name: string,
): { node: string; orchestrator: string; workload: string; endpoint: string } | undefined {
  // single dashes separate; a run of 2n dashes is n escaped dashes
  const parts: string[] = [''];
  for (const m of name.match(/-+|[^-]+/g) ?? []) {
    if (m[0] !== '-') parts[parts.length - 1] += m;
    else if (m.length % 2 === 0) parts[parts.length - 1] += '-'.repeat(m.length / 2);
    else {
      parts[parts.length - 1] += '-'.repeat((m.length - 1) / 2);
      parts.push('');
    }
  }
  if (parts.length !== 4 || parts.some((p) => p === '')) return undefined;
  const [node, orchestrator, workload, endpoint] = parts;
  return { node, orchestrator, workload, endpoint };
}

/**
 * The annotations the CNI plugin's endpoint write puts on its pod (Calico's
 * calcCNIAnnotations): the first address, all of them comma-separated, the container.
 */
export function podAnnotationsOf(wep: Resource<'WorkloadEndpoint'>): Record<string, string> {
  const ips = wep.spec.ipNetworks ?? [];
  if (ips.length === 0) return {};
  return {
    [POD_IP_ANNOTATION]: ips[0],
    [POD_IPS_ANNOTATION]: ips.join(','),
    ...(wep.spec.containerID ? { [CONTAINER_ID_ANNOTATION]: wep.spec.containerID } : {}),
  };
}

/**
 * The annotations of the CNI plugin's DEL (Calico's patchOutAnnotations): the addresses
 * emptied, the container ID kept so a repeated DEL still sees whose they were.
 */
export const POD_ANNOTATIONS_CLEARED: Record<string, string> = {
  [POD_IP_ANNOTATION]: '',
  [POD_IPS_ANNOTATION]: '',
};

/** A scheduled, addressed, non-host-network pod as its WorkloadEndpoint; otherwise undefined. */
export function podToWorkloadEndpoint(pod: K8sPod): Resource<'WorkloadEndpoint'> | undefined {
  const ns = pod.metadata.namespace ?? 'default';
  const node = pod.spec.nodeName;
  const ips = podAddresses(pod);
  if (!node || pod.spec.hostNetwork || ips.length === 0) return undefined;
  if (podFinished(pod)) return undefined;
  // a malformed address (a hand-edited annotation) makes no endpoint, as in Calico
  if (!ips.every((ip) => isIP(ip.split('/')[0]) !== 0)) return undefined;
  const containerID = pod.metadata.annotations?.[CONTAINER_ID_ANNOTATION];
  const sa = pod.spec.serviceAccountName ?? 'default';
  const ports = pod.spec.containers.flatMap((c) =>
    (c.ports ?? [])
      .filter((p) => p.name)
      .map((p) => ({ name: p.name!, protocol: p.protocol ?? 'TCP', port: p.containerPort })),
  );
  return {
    apiVersion: API_VERSION,
    kind: 'WorkloadEndpoint',
    metadata: {
      ...meta({ ...pod.metadata, name: workloadEndpointName(node, pod.metadata.name) }),
      namespace: ns,
      labels: {
        ...pod.metadata.labels,
        'projectcalico.org/namespace': ns,
        'projectcalico.org/orchestrator': 'k8s',
        'projectcalico.org/serviceaccount': sa,
      },
    },
    spec: {
      orchestrator: 'k8s',
      node,
      pod: pod.metadata.name,
      endpoint: 'eth0',
      serviceAccountName: sa,
      ipNetworks: ips.map(ipNetwork),
      ...(containerID ? { containerID } : {}),
      profiles: [`kns.${ns}`, `ksa.${ns}.${sa}`],
      interfaceName: interfaceName(ns, pod.metadata.name),
      ...(ports.length ? { ports } : {}),
    },
  };
}

function prefixed(prefix: string, labels: Record<string, string> = {}): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).map(([k, v]) => [`${prefix}${k}`, v]));
}

/** Namespace -> Profile "kns.<ns>": allow-all rules, namespace labels as "pcns.*". */
export function namespaceToProfile(ns: { metadata: K8sObjectMeta }): Resource<'Profile'> {
  return {
    apiVersion: API_VERSION,
    kind: 'Profile',
    metadata: meta({ ...ns.metadata, name: `kns.${ns.metadata.name}` }),
    spec: {
      ingress: [{ action: 'Allow' }],
      egress: [{ action: 'Allow' }],
      labelsToApply: {
        'pcns.projectcalico.org/name': ns.metadata.name,
        ...prefixed('pcns.', ns.metadata.labels),
      },
    },
  };
}

/** ServiceAccount -> Profile "ksa.<ns>.<sa>" with its labels as "pcsa.*". */
export function serviceAccountToProfile(sa: { metadata: K8sObjectMeta }): Resource<'Profile'> {
  const ns = sa.metadata.namespace ?? 'default';
  return {
    apiVersion: API_VERSION,
    kind: 'Profile',
    metadata: meta({ ...sa.metadata, name: `ksa.${ns}.${sa.metadata.name}` }),
    spec: {
      labelsToApply: {
        'pcsa.projectcalico.org/name': sa.metadata.name,
        ...prefixed('pcsa.', sa.metadata.labels),
      },
    },
  };
}

/** networking.k8s.io/v1 NetworkPolicy -> NetworkPolicy "knp.default.<name>". */
export function k8sNetworkPolicyToResource(
  np: K8sNetworkPolicy & { metadata: K8sObjectMeta },
): Resource<'NetworkPolicy'> {
  const p = convertK8sNetworkPolicy(np);
  return {
    apiVersion: API_VERSION,
    kind: 'NetworkPolicy',
    metadata: {
      ...meta({ ...np.metadata, name: p.metadata.name }),
      namespace: p.metadata.namespace,
    },
    spec: p.spec as Resource<'NetworkPolicy'>['spec'],
  };
}

export interface K8sNode {
  metadata: K8sObjectMeta & { annotations?: Record<string, string> };
  status?: { addresses?: Array<{ type: string; address: string }> };
}

type NodeSpec = Resource<'Node'>['spec'];

/**
 * The Node fields Calico keeps in the Kubernetes node's annotations in KDD mode
 * (libcalico-go's resources/node.go), each with where it lives in the Node spec.
 */
const NODE_ANNOTATIONS: Array<{
  key: string;
  get(s: NodeSpec): string | undefined;
  set(s: NodeSpec, v: string): void;
}> = [
  {
    key: 'projectcalico.org/IPv4Address',
    get: (s) => s.bgp?.ipv4Address,
    set: (s, v) => ((s.bgp ??= {}).ipv4Address = v),
  },
  {
    key: 'projectcalico.org/IPv6Address',
    get: (s) => s.bgp?.ipv6Address,
    set: (s, v) => ((s.bgp ??= {}).ipv6Address = v),
  },
  {
    key: 'projectcalico.org/ASNumber',
    get: (s) => (s.bgp?.asNumber !== undefined ? String(s.bgp.asNumber) : undefined),
    set: (s, v) => ((s.bgp ??= {}).asNumber = Number(v)),
  },
  {
    key: 'projectcalico.org/RouteReflectorClusterID',
    get: (s) => s.bgp?.routeReflectorClusterID,
    set: (s, v) => ((s.bgp ??= {}).routeReflectorClusterID = v),
  },
  {
    key: 'projectcalico.org/IPv4IPIPTunnelAddr',
    get: (s) => s.bgp?.ipv4IPIPTunnelAddr,
    set: (s, v) => ((s.bgp ??= {}).ipv4IPIPTunnelAddr = v),
  },
  {
    key: 'projectcalico.org/IPv4VXLANTunnelAddr',
    get: (s) => s.ipv4VXLANTunnelAddr,
    set: (s, v) => (s.ipv4VXLANTunnelAddr = v),
  },
  {
    key: 'projectcalico.org/VXLANTunnelMACAddr',
    get: (s) => s.vxlanTunnelMACAddr,
    set: (s, v) => (s.vxlanTunnelMACAddr = v),
  },
];

/**
 * The annotation changes that make a Kubernetes node carry `spec` (null: remove), as a
 * merge patch body's metadata.annotations.
 */
export function nodeAnnotationPatch(spec: NodeSpec): Record<string, string | null> {
  return Object.fromEntries(NODE_ANNOTATIONS.map((f) => [f.key, f.get(spec) ?? null]));
}

/** Node -> Node, with the fields Calico keeps in annotations (NODE_ANNOTATIONS). */
export function k8sNodeToNode(node: K8sNode): Resource<'Node'> {
  const a = node.metadata.annotations ?? {};
  const fromAnnotations: NodeSpec = {};
  for (const f of NODE_ANNOTATIONS) if (a[f.key]) f.set(fromAnnotations, a[f.key]);
  const bgp = fromAnnotations.bgp ?? {};
  const addresses = (node.status?.addresses ?? [])
    .filter((x) => x.type === 'InternalIP' || x.type === 'ExternalIP')
    .map((x) => ({ address: x.address, type: x.type as 'InternalIP' | 'ExternalIP' }));
  return {
    apiVersion: API_VERSION,
    kind: 'Node',
    metadata: {
      ...meta(node.metadata),
      ...(node.metadata.labels ? { labels: node.metadata.labels } : {}),
    },
    spec: {
      ...fromAnnotations,
      ...(Object.keys(bgp).length ? { bgp } : {}),
      ...(addresses.length ? { addresses } : {}),
      orchRefs: [{ orchestrator: 'k8s', nodeName: node.metadata.name }],
    },
  };
}

type ServiceSpec = Resource<'KubernetesService'>['spec'];
type SliceSpec = Resource<'KubernetesEndpointSlice'>['spec'];

/** core/v1 Service, the fields the service dataplane reads. */
export interface K8sService {
  metadata: K8sObjectMeta;
  spec?: Partial<Record<keyof ServiceSpec, unknown>>;
  status?: {
    loadBalancer?: { ingress?: Array<{ ip?: string }> };
    conditions?: K8sCondition[];
  };
}

/** metav1.Condition, as Service status keeps them. */
export interface K8sCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

/** discovery.k8s.io/v1 EndpointSlice. */
export interface K8sEndpointSlice {
  metadata: K8sObjectMeta;
  addressType: string;
  ports?: Array<{ name?: string; protocol?: string; port?: number }>;
  endpoints?: Array<{
    addresses: string[];
    nodeName?: string;
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  }>;
}

const SERVICE_FIELDS = [
  'type',
  'clusterIP',
  'clusterIPs',
  'externalIPs',
  'loadBalancerIP',
  'loadBalancerClass',
  'selector',
  'ports',
  'sessionAffinity',
  'sessionAffinityConfig',
  'externalTrafficPolicy',
  'internalTrafficPolicy',
  'healthCheckNodePort',
] as const;

/** Drops null/undefined fields (the API and typed client send both). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v != null)) as T;
}

/** Service -> KubernetesService of the same name (status.loadBalancer.ingress beside the spec). */
export function k8sServiceToResource(svc: K8sService): Resource<'KubernetesService'> {
  const spec: Record<string, unknown> = {};
  for (const f of SERVICE_FIELDS) if (svc.spec?.[f] != null) spec[f] = svc.spec[f];
  if (Array.isArray(spec.ports)) {
    spec.ports = (spec.ports as Array<Record<string, unknown>>).map((p) =>
      defined({
        name: p.name,
        protocol: p.protocol ?? 'TCP',
        port: p.port,
        targetPort: p.targetPort,
        nodePort: p.nodePort,
      }),
    );
  }
  const ingress = (svc.status?.loadBalancer?.ingress ?? []).filter((i) => i.ip);
  if (ingress.length) spec.loadBalancerIngress = ingress.map((i) => ({ ip: i.ip! }));
  // the conditions without their times: a write of the same condition is no change
  const conditions = (svc.status?.conditions ?? []).map((c) =>
    defined({ type: c.type, status: c.status, reason: c.reason, message: c.message || undefined }),
  );
  if (conditions.length) spec.conditions = conditions as ServiceSpec['conditions'];
  return {
    apiVersion: API_VERSION,
    kind: 'KubernetesService',
    metadata: {
      ...meta(svc.metadata),
      namespace: svc.metadata.namespace ?? 'default',
      // projectcalico.org/loadBalancerIPs asks load-balancer IPAM for addresses
      ...(svc.metadata.annotations ? { annotations: svc.metadata.annotations } : {}),
      ...(svc.metadata.labels ? { labels: svc.metadata.labels } : {}),
    },
    spec: spec as ServiceSpec,
  };
}

/** The fields of a KubernetesService that are the Service's status (the rest is its spec). */
export const SERVICE_STATUS_FIELDS = ['loadBalancerIngress', 'conditions'] as const;

/**
 * The merge patch of a Service's status for a KubernetesService write: the load-balancer
 * ingress and the conditions. A condition keeps its lastTransitionTime while its status
 * stays (as meta.SetStatusCondition); the API server requires reason and the time.
 */
export function serviceStatusPatch(
  spec: ServiceSpec,
  current: K8sService['status'],
  now: string,
): Record<string, unknown> {
  const before = new Map((current?.conditions ?? []).map((c) => [c.type, c]));
  return {
    loadBalancer: { ingress: spec.loadBalancerIngress?.map((i) => ({ ip: i.ip })) ?? null },
    conditions:
      spec.conditions?.map((c) => {
        const old = before.get(c.type);
        return {
          type: c.type,
          status: c.status,
          reason: c.reason ?? c.type,
          message: c.message ?? '',
          lastTransitionTime:
            old?.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : now,
        };
      }) ?? null,
  };
}

/** EndpointSlice -> KubernetesEndpointSlice; undefined without its service-name label. */
export function k8sEndpointSliceToResource(
  s: K8sEndpointSlice,
): Resource<'KubernetesEndpointSlice'> | undefined {
  const serviceName = s.metadata.labels?.['kubernetes.io/service-name'];
  if (!serviceName) return undefined;
  return {
    apiVersion: API_VERSION,
    kind: 'KubernetesEndpointSlice',
    metadata: { ...meta(s.metadata), namespace: s.metadata.namespace ?? 'default' },
    spec: {
      serviceName,
      addressType: s.addressType as SliceSpec['addressType'],
      // a port without a number means "all ports" (headless); the proxy has no use for it
      ports: (s.ports ?? [])
        .filter((p) => p.port != null)
        .map((p) =>
          defined({ name: p.name, protocol: (p.protocol ?? 'TCP') as 'TCP', port: p.port! }),
        ),
      endpoints: (s.endpoints ?? []).map((e) =>
        defined({
          addresses: e.addresses,
          nodeName: e.nodeName,
          conditions: e.conditions ? defined(e.conditions) : undefined,
        }),
      ),
    },
  };
}
