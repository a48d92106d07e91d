// What Kubernetes' EndpointSlice controller does, for the lab (etcd mode has no
// controller manager): a Service's slice lists the ready pods in its namespace whose
// labels match its selector, with each service port's target port. Pure.
import type { Resource } from '@tortie/api';

type Service = Resource<'KubernetesService'>;
type Endpoint = Resource<'WorkloadEndpoint'>;

/** The IPv4 EndpointSlice of `svc` (named after it) over `endpoints`; undefined without a selector. */
export function endpointSliceFor(
  svc: Service,
  endpoints: readonly Endpoint[],
): Resource<'KubernetesEndpointSlice'> | undefined {
  const selector = svc.spec.selector;
  if (!selector) return undefined; // a service without selector has its slices written by hand
  const ns = svc.metadata.namespace ?? 'default';
  const picked = endpoints.filter(
    (e) =>
      (e.metadata.namespace ?? 'default') === ns &&
      Object.entries(selector).every(([k, v]) => e.metadata.labels?.[k] === v),
  );
  const ports = svc.spec.ports.map((p) => {
    const target = p.targetPort ?? p.port;
    if (typeof target === 'string') {
      // a named target port: the pod's port of that name (the lab's pods all agree on it)
      const named = picked.flatMap((e) => e.spec.ports ?? []).find((x) => x.name === target);
      if (!named)
        throw new Error(`service ${ns}/${svc.metadata.name}: no pod names a port "${target}"`);
      return { name: p.name, protocol: p.protocol, port: named.port };
    }
    return { name: p.name, protocol: p.protocol, port: target };
  });
  return {
    apiVersion: svc.apiVersion,
    kind: 'KubernetesEndpointSlice',
    metadata: { name: svc.metadata.name, namespace: ns },
    spec: {
      serviceName: svc.metadata.name,
      addressType: 'IPv4',
      ports,
      endpoints: picked
        .map((e) => ({
          addresses: e.spec.ipNetworks.filter((n) => !n.includes(':')).map((n) => n.split('/')[0]),
          nodeName: e.spec.node,
          conditions: { ready: true },
        }))
        .filter((e) => e.addresses.length > 0)
        .sort((a, b) => (a.addresses[0] < b.addresses[0] ? -1 : 1)),
    },
  };
}

/**
 * The discovery.k8s.io/v1 EndpointSlice for the Kubernetes API, as the EndpointSlice
 * controller writes it: named after its Service and labelled with it. Pure.
 */
export function k8sEndpointSlice(slice: Resource<'KubernetesEndpointSlice'>): object {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: slice.metadata.name,
      namespace: slice.metadata.namespace ?? 'default',
      labels: {
        'kubernetes.io/service-name': slice.spec.serviceName,
        'endpointslice.kubernetes.io/managed-by': 'tortie-lab',
      },
    },
    addressType: slice.spec.addressType,
    ports: slice.spec.ports,
    endpoints: slice.spec.endpoints,
  };
}
