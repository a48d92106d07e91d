// Datastore resources as the policy model sees them (the shapes the reference evaluator
// takes): tests compare the dataplane's behaviour with the evaluator's verdicts on the
// same resources. Pure.
import {
  namespaceLabels as labelsOfNamespace,
  namedPorts,
  namespaceProfileName,
  serviceAccountLabels,
  serviceAccountProfileName,
  type Resource,
} from '@tortie/api';
import {
  type Endpoint,
  type Labels,
  type NetworkSet,
  type Policy,
  type PolicyWorld,
  type Profile,
  type Rule,
  type ServiceSlice,
  type Tier,
} from '@tortie/policy';

/** A namespace's labels, from its "kns.<ns>" profile (Kubernetes datastore) if any. */
export function namespaceLabels(ns: string, profiles: ReadonlyMap<string, Profile>): Labels {
  return labelsOfNamespace(ns, profiles.get(namespaceProfileName(ns))?.labelsToApply);
}

export function toProfile(r: Resource<'Profile'>): Profile {
  return {
    name: r.metadata.name,
    labelsToApply: r.spec.labelsToApply,
    ingress: r.spec.ingress as Rule[] | undefined,
    egress: r.spec.egress as Rule[] | undefined,
  };
}

export function toPolicy(r: Resource<'NetworkPolicy'> | Resource<'GlobalNetworkPolicy'>): Policy {
  return {
    kind: r.kind,
    metadata: { name: r.metadata.name, namespace: r.metadata.namespace },
    spec: r.spec as Policy['spec'],
  };
}

export function toTier(r: Resource<'Tier'>): Tier {
  return { name: r.metadata.name, order: r.spec.order, defaultAction: r.spec.defaultAction };
}

export function toNetworkSet(r: Resource<'NetworkSet'> | Resource<'GlobalNetworkSet'>): NetworkSet {
  return {
    name: r.metadata.name,
    namespace: r.kind === 'NetworkSet' ? r.metadata.namespace : undefined,
    labels: r.metadata.labels ?? {},
    nets: r.spec.nets,
  };
}

/** An EndpointSlice as rules' `services` matches read it. */
export function toServiceSlice(r: Resource<'KubernetesEndpointSlice'>): ServiceSlice {
  return {
    namespace: r.metadata.namespace ?? 'default',
    serviceName: r.spec.serviceName,
    ports: r.spec.ports,
    endpoints: r.spec.endpoints,
  };
}

/** Endpoint labels: its profiles' labelsToApply, overridden by its own labels. */
function effectiveLabels(
  own: Labels | undefined,
  profileNames: string[],
  profiles: ReadonlyMap<string, Profile>,
): Labels {
  const inherited = profileNames.map((n) => profiles.get(n)?.labelsToApply ?? {});
  return Object.assign({}, ...inherited, own ?? {}) as Labels;
}

export function workloadToEndpoint(
  r: Resource<'WorkloadEndpoint'>,
  profiles: ReadonlyMap<string, Profile>,
): Endpoint {
  const ns = r.metadata.namespace ?? 'default';
  const sa = r.spec.serviceAccountName;
  return {
    name: r.metadata.name,
    namespace: ns,
    labels: effectiveLabels(r.metadata.labels, r.spec.profiles, profiles),
    ips: r.spec.ipNetworks.map((n) => n.split('/')[0]),
    ports: policyPorts(r.spec.ports),
    serviceAccount: sa,
    serviceAccountLabels: sa
      ? serviceAccountLabels(profiles.get(serviceAccountProfileName(ns, sa))?.labelsToApply)
      : undefined,
    profiles: r.spec.profiles,
  };
}

export function hostToEndpoint(
  r: Resource<'HostEndpoint'>,
  profiles: ReadonlyMap<string, Profile>,
): Endpoint {
  return {
    name: r.metadata.name,
    labels: effectiveLabels(r.metadata.labels, r.spec.profiles ?? [], profiles),
    ips: r.spec.expectedIPs ?? [],
    ports: policyPorts(r.spec.ports),
    profiles: r.spec.profiles ?? [],
  };
}

function policyPorts(ports: Array<{ name?: string; port: number; protocol?: string }> | undefined) {
  return namedPorts(ports).map((p) => ({
    name: p.name,
    port: p.port,
    protocol: p.protocol as never,
  }));
}

/** The reference evaluator's world for a set of resources. */
export function policyWorld(resources: Resource[]): PolicyWorld {
  const of = <K extends Resource['kind']>(k: K) =>
    resources.filter((r) => r.kind === k) as Resource<K>[];
  const profiles = new Map(of('Profile').map((r) => [r.metadata.name, toProfile(r)]));
  return {
    endpoints: [
      ...of('WorkloadEndpoint').map((r) => workloadToEndpoint(r, profiles)),
      ...of('HostEndpoint').map((r) => hostToEndpoint(r, profiles)),
    ],
    policies: [...of('NetworkPolicy'), ...of('GlobalNetworkPolicy')].map((r) => toPolicy(r)),
    tiers: of('Tier').map(toTier),
    profiles: [...profiles.values()],
    networkSets: [...of('NetworkSet'), ...of('GlobalNetworkSet')].map((r) => toNetworkSet(r)),
    endpointSlices: of('KubernetesEndpointSlice').map(toServiceSlice),
  };
}
