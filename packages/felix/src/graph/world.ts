// Datastore resources as the policy model sees them (the same shapes the reference
// evaluator takes), so the calculation graph and the oracle agree on what an endpoint's
// labels, namespace labels and service-account labels are. Pure.
import type { Resource } from '@tortie/api';
import {
  protocolNumber,
  type Endpoint,
  type Labels,
  type NetworkSet,
  type Policy,
  type Profile,
  type Rule,
  type Tier,
} from '@tortie/policy';

const strip = (labels: Labels | undefined, prefix: string): Record<string, string> =>
  Object.fromEntries(
    Object.entries(labels ?? {})
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k.slice(prefix.length), v]),
  );

/** A namespace's labels, from its "kns.<ns>" profile (Kubernetes datastore) if any. */
export function namespaceLabels(ns: string, profiles: ReadonlyMap<string, Profile>): Labels {
  return {
    'kubernetes.io/metadata.name': ns,
    ...strip(profiles.get(`kns.${ns}`)?.labelsToApply, 'pcns.'),
  };
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
    ports: r.spec.ports?.map((p) => ({
      name: p.name,
      port: p.port,
      protocol: p.protocol as never,
    })),
    serviceAccount: sa,
    serviceAccountLabels: sa
      ? strip(profiles.get(`ksa.${ns}.${sa}`)?.labelsToApply, 'pcsa.')
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
    ports: r.spec.ports?.map((p) => ({
      name: p.name,
      port: p.port,
      protocol: p.protocol as never,
    })),
    profiles: r.spec.profiles ?? [],
  };
}

/** Calico's workload endpoint id: "<namespace>/<pod or workload>/<endpoint>". */
export function workloadId(r: Resource<'WorkloadEndpoint'>): string {
  return `${r.metadata.namespace ?? 'default'}/${r.spec.pod ?? r.spec.workload ?? r.metadata.name}/${r.spec.endpoint}`;
}

export function policyId(p: Policy): string {
  const tier = p.spec.tier ?? 'default';
  return p.metadata.namespace
    ? `${tier}/${p.metadata.namespace}/${p.metadata.name}`
    : `${tier}/${p.metadata.name}`;
}

export { protocolNumber };
