// The reference evaluator: is a flow allowed, and which tier/policy/rule decided.
// Pure and slow-but-obviously-right; it is the oracle for dataplane tests and the
// engine behind `tortiectl policy explain`.
//
// Semantics (Calico's): a flow needs egress allowed at its source endpoint (when the
// source is a known endpoint) and ingress allowed at its destination endpoint (when
// known). Per endpoint and direction, tiers apply in order; within a tier, the
// policies selecting the endpoint apply by order then name, and the first matching
// rule decides (Allow, Deny; Pass skips to the next tier; Log goes on). When policies
// of a tier select the endpoint but no rule matches, the tier's default action
// applies (Deny). With no policy in any tier, the endpoint's profiles decide, and
// with no matching profile rule the flow is denied.
import { ipInNet, ipVersion } from './cidr';
import {
  DEFAULT_TIER,
  policyTypes,
  protocolNumber,
  sideSelection,
  type Direction,
  type Endpoint,
  type EntityRule,
  type Flow,
  type Policy,
  type PolicyWorld,
  type Port,
  type Rule,
} from './model';
import { matches, parseSelector, replaceAll, type Labels, type Selector } from './selector';
import { serviceMatchKey, sliceAddresses, sliceIpPorts, sliceServiceKey } from './services';

export interface Step {
  tier?: string;
  policy?: string;
  profile?: string;
  rule?: number;
  action: string;
  note?: string;
}

export interface DirectionVerdict {
  endpoint: string;
  direction: Direction;
  allowed: boolean;
  /** The decisive step last. */
  steps: Step[];
}

export interface Verdict {
  allowed: boolean;
  egress?: DirectionVerdict;
  ingress?: DirectionVerdict;
  /** Checks at host endpoints the flow was forwarded through (Flow.via). */
  forwarded?: DirectionVerdict[];
}

/**
 * Host endpoint policy runs in stages, as Felix renders it: untracked (doNotTrack)
 * first, then pre-DNAT (ingress), then normal policy; only normal policy has an
 * end-of-tier deny and falls back to profiles.
 */
export type Stage = 'untracked' | 'preDNAT' | 'normal';

const selectorCache = new Map<string, Selector>();
function sel(text: string): Selector {
  let s = selectorCache.get(text);
  if (!s) {
    s = parseSelector(text);
    selectorCache.set(text, s);
  }
  return s;
}

function qualified(p: Policy): string {
  return p.metadata.namespace ? `${p.metadata.namespace}/${p.metadata.name}` : p.metadata.name;
}

/** Which policies take part in a stage (flags only mean something on host endpoints). */
export function inStage(p: Policy, ep: Endpoint, stage: Stage, forwarded: boolean): boolean {
  const hep = ep.namespace === undefined;
  const { doNotTrack = false, preDNAT = false, applyOnForward = false } = p.spec;
  if (stage === 'untracked') return hep && doNotTrack;
  if (stage === 'preDNAT') return hep && preDNAT;
  if (doNotTrack || preDNAT) return false;
  return !forwarded || applyOnForward;
}

/** Does policy `p` select endpoint `ep` (namespace, namespaceSelector, service account, selector)? */
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

export class Evaluator {
  private readonly nsLabels = new Map<string, Labels>();
  private readonly byIp = new Map<string, Endpoint>();

  private readonly world: PolicyWorld;

  constructor(world: PolicyWorld) {
    // Endpoints inherit their profiles' labelsToApply (Calico's namespace "pcns." and
    // service account "pcsa." labels arrive this way); their own labels win.
    const profiles = new Map((world.profiles ?? []).map((p) => [p.name, p]));
    const endpoints = world.endpoints.map((e) => {
      const inherited = (e.profiles ?? []).map((n) => profiles.get(n)?.labelsToApply ?? {});
      return inherited.length
        ? { ...e, labels: Object.assign({}, ...inherited, e.labels) as Labels }
        : e;
    });
    this.world = { ...world, endpoints };
    for (const e of endpoints) for (const ip of e.ips) if (!this.byIp.has(ip)) this.byIp.set(ip, e);
    for (const n of world.namespaces ?? []) {
      // Kubernetes labels every namespace with its name
      this.nsLabels.set(n.name, { 'kubernetes.io/metadata.name': n.name, ...n.labels });
    }
  }

  endpointByIp(ip: string): Endpoint | undefined {
    return this.byIp.get(ip);
  }

  evaluate(flow: Flow): Verdict {
    const src = this.endpointByIp(flow.srcIp);
    const dst = this.endpointByIp(flow.dstIp);
    const egress = src ? this.direction(src, 'Egress', flow, src, dst, false) : undefined;
    const ingress = dst ? this.direction(dst, 'Ingress', flow, src, dst, false) : undefined;
    const forwarded = (flow.via ?? []).map((v) => {
      const hep = this.world.endpoints.find(
        (e) => e.namespace === undefined && e.name === v.hostEndpoint,
      );
      if (!hep) throw new Error(`flow via unknown host endpoint "${v.hostEndpoint}"`);
      return this.direction(hep, v.direction, flow, src, dst, true);
    });
    const allowed =
      (egress?.allowed ?? true) && (ingress?.allowed ?? true) && forwarded.every((f) => f.allowed);
    return { allowed, egress, ingress, ...(forwarded.length ? { forwarded } : {}) };
  }

  /** Policies that select `ep` for `dir`, grouped by tier in tier order. */
  private applicable(
    ep: Endpoint,
    dir: Direction,
    stage: Stage,
    forwarded: boolean,
  ): Array<{ tier: string; defaultAction: 'Deny' | 'Pass'; policies: Policy[] }> {
    const tiers = new Map((this.world.tiers ?? []).map((t) => [t.name, t]));
    const byTier = new Map<string, Policy[]>();
    for (const p of this.world.policies) {
      if (!policyTypes(p.spec).includes(dir)) continue;
      if (!inStage(p, ep, stage, forwarded)) continue;
      if (!policySelects(p, ep, (ns) => this.namespaceLabels(ns))) continue;
      const tier = p.spec.tier ?? DEFAULT_TIER;
      byTier.set(tier, [...(byTier.get(tier) ?? []), p]);
    }
    // The default tier sorts last unless given an order (Calico gives it 1,000,000).
    const order = (t: string) => tiers.get(t)?.order ?? (t === DEFAULT_TIER ? 1e6 : Infinity);
    return [...byTier.keys()]
      .sort((a, b) => order(a) - order(b) || a.localeCompare(b))
      .map((t) => ({
        tier: t,
        defaultAction: tiers.get(t)?.defaultAction ?? 'Deny',
        policies: byTier
          .get(t)!
          .sort(
            (a, b) =>
              (a.spec.order ?? Infinity) - (b.spec.order ?? Infinity) ||
              qualified(a).localeCompare(qualified(b)),
          ),
      }));
  }

  private namespaceLabels(ns: string): Labels {
    return this.nsLabels.get(ns) ?? { 'kubernetes.io/metadata.name': ns };
  }

  private direction(
    ep: Endpoint,
    dir: Direction,
    flow: Flow,
    src: Endpoint | undefined,
    dst: Endpoint | undefined,
    forwarded: boolean,
  ): DirectionVerdict {
    const steps: Step[] = [];
    const done = (allowed: boolean) => ({
      endpoint: endpointName(ep),
      direction: dir,
      allowed,
      steps,
    });
    if (ep.namespace === undefined) {
      // untracked: an Allow skips all later policy. pre-DNAT (ingress): a Deny drops; an
      // Allow of traffic to the host itself skips normal policy too (Felix's filter INPUT
      // accepts what mangle accepted), forwarded traffic still meets applyOnForward policy
      const untracked = this.tiers(ep, dir, flow, src, dst, 'untracked', forwarded, steps);
      if (untracked !== 'none') return done(untracked === 'allow');
      if (dir === 'Ingress') {
        const pre = this.tiers(ep, dir, flow, src, dst, 'preDNAT', forwarded, steps);
        if (pre === 'deny') return done(false);
        if (pre === 'allow' && !forwarded) return done(true);
      }
    }
    const normal = this.tiers(ep, dir, flow, src, dst, 'normal', forwarded, steps);
    if (normal !== 'none') return done(normal === 'allow');
    if (forwarded) {
      steps.push({
        action: 'Allow',
        note: 'forwarded traffic with no applyOnForward policy is not policed here',
      });
      return done(true);
    }
    // No tier decided: the endpoint's profiles.
    for (const name of ep.profiles ?? []) {
      const profile = this.world.profiles?.find((x) => x.name === name);
      const rules = (dir === 'Ingress' ? profile?.ingress : profile?.egress) ?? [];
      for (let i = 0; i < rules.length; i++) {
        if (!this.ruleMatches(rules[i], flow, src, dst)) continue;
        steps.push({ profile: name, rule: i, action: rules[i].action });
        if (rules[i].action === 'Allow') return done(true);
        if (rules[i].action === 'Deny') return done(false);
      }
    }
    steps.push({
      action: 'Deny',
      note: steps.length
        ? 'passed through every tier; no profile allowed it'
        : 'no policy and no profile allowed it',
    });
    return done(false);
  }

  /**
   * The tiers of one stage: 'allow' or 'deny' when a rule (or, in the normal stage, a
   * tier's default action) decided, 'none' when the flow went through undecided.
   */
  private tiers(
    ep: Endpoint,
    dir: Direction,
    flow: Flow,
    src: Endpoint | undefined,
    dst: Endpoint | undefined,
    stage: Stage,
    forwarded: boolean,
    steps: Step[],
  ): 'allow' | 'deny' | 'none' {
    for (const t of this.applicable(ep, dir, stage, forwarded)) {
      let passed = false;
      for (const p of t.policies) {
        const rules = (dir === 'Ingress' ? p.spec.ingress : p.spec.egress) ?? [];
        for (let i = 0; i < rules.length; i++) {
          const r = rules[i];
          if (!this.ruleMatches(r, flow, src, dst, p)) continue;
          steps.push({
            tier: t.tier,
            policy: qualified(p),
            rule: i,
            action: r.action,
            ...(stage === 'normal' ? {} : { note: stage }),
          });
          if (r.action === 'Allow') return 'allow';
          if (r.action === 'Deny') return 'deny';
          if (r.action === 'Pass') {
            passed = true;
            break;
          }
        }
        if (passed) break;
      }
      if (passed || stage !== 'normal') continue;
      steps.push({
        tier: t.tier,
        action: t.defaultAction,
        note: `no rule matched in tier "${t.tier}"`,
      });
      if (t.defaultAction === 'Deny') return 'deny';
    }
    return 'none';
  }

  private ruleMatches(
    r: Rule,
    flow: Flow,
    src?: Endpoint,
    dst?: Endpoint,
    policy?: Policy,
  ): boolean {
    const proto = protocolNumber(flow.protocol);
    if (r.protocol !== undefined && protocolNumber(r.protocol) !== proto) return false;
    if (r.notProtocol !== undefined && protocolNumber(r.notProtocol) === proto) return false;
    if (r.ipVersion !== undefined && ipVersion(flow.dstIp) !== r.ipVersion) return false;
    if (r.icmp && !icmpMatches(r.icmp, flow)) return false;
    if (r.notICMP && icmpMatches(r.notICMP, flow)) return false;
    const ns = policy?.kind === 'NetworkPolicy' ? policy.metadata.namespace : undefined;
    return (
      this.entityMatches(r.source, flow.srcIp, flow.srcPort, src, proto, ns, 'source') &&
      this.entityMatches(r.destination, flow.dstIp, flow.dstPort, dst, proto, ns, 'destination')
    );
  }

  /**
   * One side of a rule. `policyNs` scopes selectors of namespaced policies to their own
   * namespace unless the rule names namespaces itself.
   */
  private entityMatches(
    e: EntityRule | undefined,
    ip: string,
    port: number | undefined,
    ep: Endpoint | undefined,
    proto: number,
    policyNs: string | undefined,
    side: 'source' | 'destination',
  ): boolean {
    if (!e) return true;
    if (e.services && !this.serviceMatches(e, ip, port, proto, policyNs, side)) return false;
    // an empty list is no constraint, as in Calico (not "matches nothing")
    if (e.nets?.length && !e.nets.some((n) => ipInNet(ip, n))) return false;
    if (e.notNets && e.notNets.some((n) => ipInNet(ip, n))) return false;
    if (e.ports?.length && !e.ports.some((p) => portMatches(p, port, ep, proto))) return false;
    if (e.notPorts && e.notPorts.some((p) => portMatches(p, port, ep, proto))) return false;
    return this.selectionMatches(e, ip, ep, policyNs);
  }

  /**
   * A side's `services`: the flow's address is an endpoint of the Service's EndpointSlices
   * and, in a destination, on one of the slice ports with its protocol (Felix's
   * hash:ip,port set); in a source, the address alone. A Service without slices (or one
   * named without a namespace in a global policy or profile) matches nothing.
   */
  private serviceMatches(
    e: EntityRule,
    ip: string,
    port: number | undefined,
    proto: number,
    policyNs: string | undefined,
    side: 'source' | 'destination',
  ): boolean {
    const key = serviceMatchKey(e.services, policyNs);
    const slices = (this.world.endpointSlices ?? []).filter((s) => sliceServiceKey(s) === key);
    const same = (a: string) => ipInNet(ip, `${a}/${a.includes(':') ? 128 : 32}`);
    if (side === 'source') return slices.some((s) => sliceAddresses(s).some(same));
    return slices.some((s) =>
      sliceIpPorts(s).some((m) => m.protocol === proto && m.port === port && same(m.ip)),
    );
  }

  /**
   * The selector fields of a rule side, as Calico's getEndpointSelector combines them
   * (libcalico-go updateprocessors/rules.go): the positive selection is the selector and
   * the service accounts, scoped to namespaces (the namespaceSelector, where all() means
   * any namespace; else a namespaced policy's own namespace) as soon as any selector
   * field is used, notSelector included; notSelector excludes what it picks in any
   * namespace. Both are about the things that hold the address: the endpoint there and
   * the network sets listing it.
   */
  private selectionMatches(
    e: EntityRule,
    ip: string,
    ep: Endpoint | undefined,
    policyNs: string | undefined,
  ): boolean {
    const sa = e.serviceAccounts;
    const { serviceAccounts: saUsed, positive } = sideSelection(e, policyNs);
    if (!positive && e.notSelector === undefined) return true;
    const holders: Array<{ labels: Labels; namespace?: string; ep?: Endpoint }> = [
      ...(ep ? [{ labels: ep.labels, namespace: ep.namespace, ep }] : []),
      ...(this.world.networkSets ?? []).filter((s) => s.nets.some((n) => ipInNet(ip, n))),
    ];
    const global = (h: { namespace?: string }) => ({ global: h.namespace === undefined });
    const nsSel =
      e.namespaceSelector === undefined
        ? undefined
        : replaceAll(sel(e.namespaceSelector), { op: 'has', key: NAMESPACED });
    const inScope = (namespace: string | undefined): boolean => {
      if (nsSel === undefined) return policyNs === undefined || namespace === policyNs;
      if (namespace === undefined) return matches(nsSel, {}, { global: true });
      return matches(nsSel, { ...this.namespaceLabels(namespace), [NAMESPACED]: '' });
    };
    const saMatches = (h: (typeof holders)[number]) =>
      !!h.ep?.serviceAccount &&
      (!sa?.names?.length || sa.names.includes(h.ep.serviceAccount)) &&
      (sa?.selector === undefined || matches(sel(sa.selector), h.ep.serviceAccountLabels ?? {}));
    const picked = (h: (typeof holders)[number]) =>
      inScope(h.namespace) &&
      (!saUsed || saMatches(h)) &&
      (e.selector === undefined || matches(sel(e.selector), h.labels, global(h)));
    if (positive && !holders.some(picked)) return false;
    if (e.notSelector !== undefined) {
      const not = sel(e.notSelector);
      if (holders.some((h) => matches(not, h.labels, global(h)))) return false;
    }
    return true;
  }
}

/** A label only namespaced things have (stands for has(projectcalico.org/namespace)). */
const NAMESPACED = '\u0000namespaced';

function icmpMatches(m: { type?: number; code?: number }, flow: Flow): boolean {
  if (m.type !== undefined && flow.icmpType !== m.type) return false;
  if (m.code !== undefined && flow.icmpCode !== m.code) return false;
  return true;
}

/** A port, a "from:to" range, or a named port resolved on the endpoint of that side. */
export function portMatches(
  p: Port,
  port: number | undefined,
  ep: Endpoint | undefined,
  proto: number,
): boolean {
  if (port === undefined) return false;
  if (typeof p === 'number') return p === port;
  const range = /^(\d+):(\d+)$/.exec(p);
  if (range) return port >= Number(range[1]) && port <= Number(range[2]);
  if (/^\d+$/.test(p)) return Number(p) === port;
  const named = ep?.ports?.find(
    (x) => x.name === p && protocolNumber(x.protocol ?? 'TCP') === proto,
  );
  return named !== undefined && named.port === port;
}

function endpointName(ep: Endpoint): string {
  return ep.namespace ? `${ep.namespace}/${ep.name}` : ep.name;
}

/** `tortiectl policy explain` text: the verdict and the chain of tiers/policies/rules behind it. */
export function explain(v: Verdict, flow: Flow): string {
  const lines = [
    `${flow.srcIp}${flow.srcPort ? `:${flow.srcPort}` : ''} -> ${flow.dstIp}${flow.dstPort ? `:${flow.dstPort}` : ''} ${flow.protocol}: ${v.allowed ? 'ALLOWED' : 'DENIED'}`,
  ];
  for (const d of [v.egress, ...(v.forwarded ?? []), v.ingress]) {
    if (!d) continue;
    const via = v.forwarded?.includes(d) ? ' (forwarded through)' : '';
    lines.push(
      `  ${d.direction.toLowerCase()} at ${d.endpoint}${via}: ${d.allowed ? 'allow' : 'deny'}`,
    );
    for (const s of d.steps) {
      const where = s.profile
        ? `profile ${s.profile}`
        : s.policy
          ? `tier ${s.tier} / policy ${s.policy}`
          : s.tier
            ? `tier ${s.tier}`
            : 'end of policy';
      const rule = s.rule !== undefined ? ` rule ${s.rule}` : '';
      lines.push(`    ${where}${rule}: ${s.action}${s.note ? ` (${s.note})` : ''}`);
    }
  }
  if (!v.egress) lines.push(`  egress: source ${flow.srcIp} is not a known endpoint (not checked)`);
  if (!v.ingress)
    lines.push(`  ingress: destination ${flow.dstIp} is not a known endpoint (not checked)`);
  return lines.join('\n');
}
