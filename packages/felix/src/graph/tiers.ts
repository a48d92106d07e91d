// Which policies apply to an endpoint, grouped by tier in order: the same rules as the
// reference evaluator (packages/policy/src/evaluate.ts), so the dataplane and the oracle
// agree. Pure.
import {
  DEFAULT_TIER,
  inStage,
  policySelects,
  policyTypes,
  type Endpoint,
  type Labels,
  type Policy,
  type Tier,
} from '@tortie/policy';
import type { TierInfo } from '../types';
import { policyId } from './world';

export type Stage = 'normal' | 'untracked' | 'preDNAT' | 'forward';

/** Felix's stages: normal, and for host endpoints untracked, pre-DNAT and forwarded. */
function inStageOf(p: Policy, ep: Endpoint, stage: Stage): boolean {
  return stage === 'forward' ? inStage(p, ep, 'normal', true) : inStage(p, ep, stage, false);
}

const qualified = (p: Policy) =>
  p.metadata.namespace ? `${p.metadata.namespace}/${p.metadata.name}` : p.metadata.name;

export function tiersFor(
  ep: Endpoint,
  policies: Iterable<Policy>,
  tiers: ReadonlyMap<string, Tier>,
  nsLabels: (ns: string) => Labels,
  stage: Stage = 'normal',
): TierInfo[] {
  const byTier = new Map<string, Policy[]>();
  for (const p of policies) {
    if (!inStageOf(p, ep, stage) || !policySelects(p, ep, nsLabels)) continue;
    const t = p.spec.tier ?? DEFAULT_TIER;
    byTier.set(t, [...(byTier.get(t) ?? []), p]);
  }
  // the default tier sorts last unless given an order (Calico gives it 1,000,000)
  const order = (t: string) => tiers.get(t)?.order ?? (t === DEFAULT_TIER ? 1e6 : Infinity);
  return [...byTier.keys()]
    .sort((a, b) => order(a) - order(b) || a.localeCompare(b))
    .map((t) => {
      const ps = byTier
        .get(t)!
        .sort(
          (a, b) =>
            (a.spec.order ?? Infinity) - (b.spec.order ?? Infinity) ||
            qualified(a).localeCompare(qualified(b)),
        );
      return {
        name: t,
        defaultAction: (tiers.get(t)?.defaultAction ?? 'Deny') === 'Pass' ? 'pass' : 'deny',
        ingressPolicies: ps.filter((p) => policyTypes(p.spec).includes('Ingress')).map(policyId),
        egressPolicies: ps.filter((p) => policyTypes(p.spec).includes('Egress')).map(policyId),
      } satisfies TierInfo;
    });
}
