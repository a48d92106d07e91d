// Policy, profile and endpoint chains, as Felix's rules/policy.go and endpoints.go. Pure.
//
// An endpoint chain clears the accept and pass bits, then walks its tiers: a tier with
// policies in this direction clears pass, jumps to each policy while pass is clear,
// RETURNs as soon as accept is set, and ends with the tier's default action (DROP when
// no policy passed the packet; nothing for a "pass" tier). Then the profiles, each
// followed by RETURN on accept, and a final DROP: an endpoint with no policy and no
// profile drops everything, as Calico. Forward (host endpoint) chains have no profiles
// and allow when no applyOnForward policy applies.
//
// Untracked (raw table) and pre-DNAT (mangle) chains, as Felix's chainTypeUntracked /
// chainTypePreDNAT: failsafe first, the tiers without an end-of-tier drop, no profiles,
// no final drop: a packet no rule decided returns unmarked and goes on to the next stage.
// In raw, an Allow also NOTRACKs the packet (Felix maps allow to "NOTRACK and ALLOW").
import type { DataplaneRule, TierInfo } from '../../types';
import type { Chain } from './chain';
import { chainName, type Family } from './names';
import { clearMark, markClear, markSet, setMark, type MarkBits } from './marks';
import { renderRule } from './rule-render';

export type Direction = 'ingress' | 'egress';

/** A policy's or profile's rules for one direction and family. */
export function rulesChain(
  name: string,
  rules: DataplaneRule[],
  family: Family,
  marks: MarkBits,
  onProblem: (why: string) => void = () => undefined,
): Chain {
  const out: string[] = [];
  const ipsets = new Set<string>();
  for (const r of rules) {
    const rendered = renderRule(r, family, marks);
    if (rendered.problem) onProblem(rendered.problem);
    out.push(...rendered.rules);
    for (const s of rendered.ipsets) ipsets.add(s);
  }
  return { name, rules: out, ipsets: [...ipsets] };
}

/**
 * A policy or profile chain that cannot be programmed (the kernel refused it, or a rule
 * cannot be rendered): it drops what reaches it. Traffic that an earlier policy decides
 * is unaffected; what this policy would have decided is denied, never allowed.
 */
export const failClosedChain = (name: string): Chain => ({ name, rules: ['-j DROP'] });

export const policyChainName = (id: string, d: Direction) =>
  d === 'ingress' ? chainName.policyIn(id) : chainName.policyOut(id);
export const profileChainName = (id: string, d: Direction) =>
  d === 'ingress' ? chainName.profileIn(id) : chainName.profileOut(id);

export const tierPolicies = (t: TierInfo, d: Direction) =>
  d === 'ingress' ? t.ingressPolicies : t.egressPolicies;

export type EndpointChainKind = 'normal' | 'forward' | 'untracked' | 'preDNAT';

/** The table an endpoint chain (and the policy chains it jumps to) lives in. */
export const tableOf = (kind: EndpointChainKind): 'filter' | 'raw' | 'mangle' =>
  kind === 'untracked' ? 'raw' : kind === 'preDNAT' ? 'mangle' : 'filter';

export interface EndpointChainSpec {
  name: string;
  tiers: TierInfo[];
  profileIds: string[];
  direction: Direction;
  /**
   * 'forward': host endpoint applyOnForward chain (no profiles, allow when no policy);
   * 'untracked' (raw) and 'preDNAT' (mangle): host endpoint stages that only decide on a match.
   */
  kind: EndpointChainKind;
  /** Host endpoints: failsafe chain jumped to first. */
  failsafeChain?: string;
}

// Endpoints with the same policies share one rule list (only the chain name differs).
const ruleCache = new Map<string, string[]>();

export function endpointChain(spec: EndpointChainSpec, marks: MarkBits): Chain {
  const key = JSON.stringify([
    spec.tiers,
    spec.profileIds,
    spec.direction,
    spec.kind,
    spec.failsafeChain,
    marks.all,
    marks.accept,
  ]);
  let rules = ruleCache.get(key);
  if (!rules) {
    if (ruleCache.size > 10_000) ruleCache.clear();
    ruleCache.set(key, (rules = endpointRules(spec, marks)));
  }
  return { name: spec.name, rules };
}

function endpointRules(spec: EndpointChainSpec, marks: MarkBits): string[] {
  const accepted = `${markSet(marks.accept)} -j RETURN`;
  const rules: string[] = [];
  if (spec.failsafeChain) rules.push(`-j ${spec.failsafeChain}`);
  rules.push(clearMark(marks.accept | marks.pass));
  const staged = spec.kind === 'untracked' || spec.kind === 'preDNAT';
  let applied = 0;
  for (const t of spec.tiers) {
    const ps = tierPolicies(t, spec.direction);
    if (ps.length === 0) continue;
    applied++;
    rules.push(clearMark(marks.pass));
    for (const p of ps) {
      rules.push(`${markClear(marks.pass)} -j ${policyChainName(p, spec.direction)}`);
      if (spec.kind === 'untracked') rules.push(`${markSet(marks.accept)} -j NOTRACK`);
      rules.push(accepted);
    }
    // untracked and pre-DNAT tiers never drop at their end: the normal stage decides then
    if (t.defaultAction === 'deny' && !staged) rules.push(`${markClear(marks.pass)} -j DROP`);
  }
  if (staged) return rules;
  if (spec.kind === 'forward') {
    if (applied === 0) rules.push(setMark(marks.accept), '-j RETURN');
    return rules;
  }
  for (const p of spec.profileIds) {
    rules.push(`-j ${profileChainName(p, spec.direction)}`);
    rules.push(accepted);
  }
  rules.push('-j DROP');
  return rules;
}
