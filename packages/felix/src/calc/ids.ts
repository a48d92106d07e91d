// Identifiers the calculation graph hands to the dataplane. Pure.
import { createHash } from 'node:crypto';
import type { Resource } from '@tortie/api';

/** Internal key of a datastore resource: kind, namespace, name. */
export const resourceKey = (r: Resource): string =>
  `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;

export const DEFAULT_TIER = 'default';

/** Calico's workload endpoint id: "<namespace>/<pod or workload>/<endpoint>". */
export function workloadId(r: Resource<'WorkloadEndpoint'>): string {
  const ns = r.metadata.namespace ?? 'default';
  return `${ns}/${r.spec.pod ?? r.spec.workload ?? r.metadata.name}/${r.spec.endpoint}`;
}

/** "<tier>/<namespace>/<name>" for NetworkPolicy, "<tier>/<name>" for GlobalNetworkPolicy. */
export function policyId(r: Resource<'NetworkPolicy'> | Resource<'GlobalNetworkPolicy'>): string {
  const tier = r.spec.tier ?? DEFAULT_TIER;
  return r.kind === 'NetworkPolicy'
    ? `${tier}/${r.metadata.namespace ?? 'default'}/${r.metadata.name}`
    : `${tier}/${r.metadata.name}`;
}

/**
 * IP set id: 20 base64url chars of a SHA-224 (as Felix hashes selectors), so that
 * "tortie40s:<id>" stays within ipset's 31-character names.
 */
export function ipSetId(canonical: string): string {
  return createHash('sha224').update(canonical).digest('base64url').slice(0, 20);
}

/** Rule id (the iptables comment): policy, direction, index and content. */
export function ruleId(owner: string, direction: string, index: number, body: unknown): string {
  return createHash('sha224')
    .update(`${owner}|${direction}|${index}|${JSON.stringify(body)}`)
    .digest('base64url')
    .slice(0, 16);
}
