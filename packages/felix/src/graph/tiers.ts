// Which policies apply to an endpoint, grouped by tier in order: the same rules as the
// reference evaluator (packages/policy/src/evaluate.ts), so the dataplane and the oracle
// agree. Pure.
import {
  DEFAULT_TIER,
  matches,
  parseSelector,
  policyTypes,
  type Endpoint,
  type Labels,
  type Policy,
  type Selector,
  type Tier,
} from '@tortie/policy';
import type { TierInfo } from '../types';
import { policyId } from './world';

export type Stage = 'normal' | 'untracked' | 'preDNAT' | 'forward';

const cache = new Map<string, Selector>();
const sel = (t: string) => {
  let s = cache.get(t);
  if (!s) cache.set(t, (s = parseSelector(t)));
  return s;
};

export function policySelects(p: Policy, ep: Endpoint, nsLabels: (ns: string) => Labels): boolean {
  if (p.kind === 'NetworkPolicy' && p.metadata.namespace !== ep.namespace) return false;
  if (p.spec.namespaceSelector !== undefined) {
    if (ep.namespace === undefined) return false;
    if (!matches(sel(p.spec.namespaceSelector), nsLabels(ep.namespace))) return false;
  }
  if (p.spec.serviceAccountSelector !== undefined) {
    if (
      !ep.serviceAccount ||
      !matches(sel(p.spec.serviceAccountSelector), ep.serviceAccountLabels ?? {})
    )
      return false;
  }
  return matches(sel(p.spec.selector ?? 'all()'), ep.labels, {
    global: ep.namespace === undefined,
  });
}

function inStage(p: Policy, ep: Endpoint, stage: Stage): boolean {
  const hep = ep.namespace === undefined;
  const { doNotTrack = false, preDNAT = false, applyOnForward = false } = p.spec;
  if (stage === 'untracked') return hep && doNotTrack;
  if (stage === 'preDNAT') return hep && preDNAT;
  if (doNotTrack || preDNAT) return false;
  return stage === 'normal' || applyOnForward;
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
    if (!inStage(p, ep, stage) || !policySelects(p, ep, nsLabels)) continue;
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
