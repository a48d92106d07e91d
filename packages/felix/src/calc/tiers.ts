// An endpoint's ordered policy lists, from the policies that select it: grouped by tier
// (tier order, the default tier at 1,000,000 unless given one, tiers without an order
// last, then name), within a tier by policy order (none = last) then namespace/name,
// split by direction. Host endpoints have extra stages (untracked, pre-DNAT, forward)
// as the reference evaluator runs them. Pure.
import type { TierInfo } from '../types';
import { DEFAULT_TIER } from './ids';

export interface PolicyMeta {
  id: string;
  tier: string;
  order?: number;
  /** "<namespace>/<name>" or "<name>": the evaluator's tie-break. */
  sortName: string;
  ingress: boolean;
  egress: boolean;
  doNotTrack: boolean;
  preDNAT: boolean;
  applyOnForward: boolean;
}

export interface TierMeta {
  order?: number;
  defaultAction: 'deny' | 'pass';
}

export type Stage = 'normal' | 'untracked' | 'preDNAT' | 'forward';

export function inStage(p: PolicyMeta, stage: Stage): boolean {
  switch (stage) {
    case 'untracked':
      return p.doNotTrack;
    case 'preDNAT':
      return p.preDNAT;
    case 'normal':
      return !p.doNotTrack && !p.preDNAT;
    case 'forward':
      return !p.doNotTrack && !p.preDNAT && p.applyOnForward;
  }
}

export function tierOrder(name: string, t: TierMeta | undefined): number {
  return t?.order ?? (name === DEFAULT_TIER ? 1e6 : Infinity);
}

export function comparePolicies(a: PolicyMeta, b: PolicyMeta): number {
  return (a.order ?? Infinity) - (b.order ?? Infinity) || a.sortName.localeCompare(b.sortName);
}

export function tierList(
  policies: Iterable<PolicyMeta>,
  tiers: (name: string) => TierMeta | undefined,
  stage: Stage,
): TierInfo[] {
  const byTier = new Map<string, PolicyMeta[]>();
  for (const p of policies) {
    if (!inStage(p, stage)) continue;
    let list = byTier.get(p.tier);
    if (!list) byTier.set(p.tier, (list = []));
    list.push(p);
  }
  return [...byTier.keys()]
    .sort((a, b) => tierOrder(a, tiers(a)) - tierOrder(b, tiers(b)) || a.localeCompare(b))
    .map((name) => {
      const ps = byTier.get(name)!.sort(comparePolicies);
      return {
        name,
        defaultAction: tiers(name)?.defaultAction ?? 'deny',
        ingressPolicies: ps.filter((p) => p.ingress).map((p) => p.id),
        // pre-DNAT policy is ingress only (Calico rejects egress pre-DNAT rules)
        egressPolicies: stage === 'preDNAT' ? [] : ps.filter((p) => p.egress).map((p) => p.id),
      };
    })
    .filter((t) => t.ingressPolicies.length || t.egressPolicies.length);
}
