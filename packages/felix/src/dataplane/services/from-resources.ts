// KubernetesService / KubernetesEndpointSlice resources as the service plan's input. Pure.
import type { Resource } from '@tortie/api';
import type { EndpointSlice, Service } from './model';

export function serviceFromResource(r: Resource<'KubernetesService'>): Service {
  const s = r.spec;
  const clusterIPs = s.clusterIPs?.length ? s.clusterIPs : s.clusterIP ? [s.clusterIP] : [];
  return {
    namespace: r.metadata.namespace ?? 'default',
    name: r.metadata.name,
    type: s.type,
    clusterIPs,
    externalIPs: s.externalIPs,
    loadBalancerIPs: s.loadBalancerIngress?.map((i) => i.ip),
    ports: s.ports.map((p) => ({
      name: p.name,
      protocol: p.protocol,
      port: p.port,
      nodePort: p.nodePort,
    })),
    sessionAffinity: s.sessionAffinity,
    affinityTimeoutSeconds: s.sessionAffinityConfig?.clientIP?.timeoutSeconds,
    externalTrafficPolicy: s.externalTrafficPolicy,
    internalTrafficPolicy: s.internalTrafficPolicy,
    healthCheckNodePort: s.healthCheckNodePort,
  };
}

export function endpointSliceFromResource(r: Resource<'KubernetesEndpointSlice'>): EndpointSlice {
  const s = r.spec;
  return {
    namespace: r.metadata.namespace ?? 'default',
    serviceName: s.serviceName,
    addressType: s.addressType,
    ports: s.ports,
    endpoints: s.endpoints.map((e) => ({
      addresses: e.addresses,
      nodeName: e.nodeName,
      ready: e.conditions?.ready,
      serving: e.conditions?.serving,
      terminating: e.conditions?.terminating,
    })),
  };
}
