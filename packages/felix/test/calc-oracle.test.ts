// Calculation graph vs the reference evaluator: for random clusters (namespaces with
// labels, service accounts, named ports, network sets, tiers with Deny/Pass defaults,
// namespaced and global policies with every kind of selector), the graph's output of
// each node, read the way the dataplane renders it (tiers, pass, end-of-tier action,
// profiles, IP set membership), allows exactly the flows the evaluator allows.
import fc from 'fast-check';
import type { Resource } from '@tortie/api';
import {
  Evaluator,
  ipInNet,
  type Direction,
  type EntityRule,
  type Port,
  type Endpoint,
  type Flow,
  type NetworkSet,
  type Policy,
  type Profile,
  type Rule,
} from '@tortie/policy';
import type { DataplaneRule, PortRange, TierInfo } from '../src/types';
import { DataplaneState } from '../src/dataplane-state';
import { gnp, harness, np, R, tier } from './calc-fixtures';

// ---- the dataplane, read as the iptables renderer programs it -------------------------

const inRanges = (p: number | undefined, rs: PortRange[]) =>
  p !== undefined && rs.some((r) => p >= r.first && p <= r.last);
const inSet = (dp: DataplaneState, id: string, member: string) =>
  [...(dp.ipsets.get(id) ?? [])].some((m) => (m.includes(',') ? m === member : ipInNet(member, m)));

function sideMatches(
  dp: DataplaneState,
  ip: string,
  port: number | undefined,
  proto: number,
  nets?: string[],
  notNets?: string[],
  sets?: string[],
  notSets?: string[],
  ports?: PortRange[],
  named?: string[],
  notPorts?: PortRange[],
  notNamed?: string[],
): boolean {
  if (nets && !nets.some((n) => ipInNet(ip, n))) return false;
  if (notNets && notNets.some((n) => ipInNet(ip, n))) return false;
  if (sets && !sets.every((s) => inSet(dp, s, ip))) return false;
  if (notSets && notSets.some((s) => inSet(dp, s, ip))) return false;
  if (ports || named) {
    const member = `${ip},${proto === 17 ? 'udp' : 'tcp'}:${port}`;
    if (!inRanges(port, ports ?? []) && !(named ?? []).some((s) => inSet(dp, s, member)))
      return false;
  }
  if (notPorts && inRanges(port, notPorts)) return false;
  const member = `${ip},${proto === 17 ? 'udp' : 'tcp'}:${port}`;
  if (notNamed && notNamed.some((s) => inSet(dp, s, member))) return false;
  return true;
}

function ruleMatches(dp: DataplaneState, r: DataplaneRule, f: Flow): boolean {
  const proto = f.protocol as number;
  if (r.protocol !== undefined && r.protocol !== proto) return false;
  if (r.notProtocol !== undefined && r.notProtocol === proto) return false;
  return (
    sideMatches(
      dp,
      f.srcIp,
      f.srcPort,
      proto,
      r.srcNets,
      r.notSrcNets,
      r.srcIpSetIds,
      r.notSrcIpSetIds,
      r.srcPorts,
      r.srcNamedPortIpSetIds,
      r.notSrcPorts,
      r.notSrcNamedPortIpSetIds,
    ) &&
    sideMatches(
      dp,
      f.dstIp,
      f.dstPort,
      proto,
      r.dstNets,
      r.notDstNets,
      r.dstIpSetIds,
      r.notDstIpSetIds,
      r.dstPorts,
      r.dstNamedPortIpSetIds,
      r.notDstPorts,
      r.notDstNamedPortIpSetIds,
    )
  );
}

function direction(
  dp: DataplaneState,
  tiers: TierInfo[],
  profiles: string[],
  dir: 'inbound' | 'outbound',
  f: Flow,
): boolean {
  for (const t of tiers) {
    const ps = dir === 'inbound' ? t.ingressPolicies : t.egressPolicies;
    if (ps.length === 0) continue;
    let passed = false;
    for (const id of ps) {
      for (const r of dp.policies.get(id)![dir]) {
        if (!ruleMatches(dp, r, f)) continue;
        if (r.action === 'allow') return true;
        if (r.action === 'deny') return false;
        if (r.action === 'pass') {
          passed = true;
          break;
        }
      }
      if (passed) break;
    }
    if (!passed && t.defaultAction === 'deny') return false;
  }
  for (const id of profiles)
    for (const r of dp.profiles.get(id)![dir]) {
      if (!ruleMatches(dp, r, f)) continue;
      if (r.action === 'allow') return true;
      if (r.action === 'deny') return false;
    }
  return false;
}

// ---- random clusters ------------------------------------------------------------------

const NAMESPACES = ['a', 'b'];
const SELECTORS = ['all()', "app == 'web'", "app == 'db'", 'has(app)', "app != 'web'"];
const NS_SELECTORS = ["env == 'x'", "env == 'y'", 'all()', "projectcalico.org/name == 'b'"];

const entity: fc.Arbitrary<EntityRule> = fc.oneof(
  fc.constantFrom(...SELECTORS).map((selector) => ({ selector })),
  fc.constantFrom(...NS_SELECTORS).map((namespaceSelector) => ({ namespaceSelector })),
  fc
    .tuple(fc.constantFrom(...SELECTORS), fc.constantFrom(...NS_SELECTORS))
    .map(([selector, namespaceSelector]) => ({ selector, namespaceSelector })),
  fc.constantFrom<EntityRule>(
    { serviceAccounts: { names: ['sa1'] } },
    { serviceAccounts: { selector: "team == 't1'" } },
  ),
  fc.constantFrom(...SELECTORS.slice(1)).map((notSelector) => ({ notSelector })),
  fc.constant<EntityRule>({ selector: "zone == 'ext'" }),
  fc.constant<EntityRule>({ nets: ['10.0.1.0/30'] }),
);
const rule = fc
  .record({
    action: fc.constantFrom('Allow', 'Deny', 'Pass'),
    source: fc.option(entity, { nil: undefined }),
    destination: fc.option(entity, { nil: undefined }),
    ports: fc.constantFrom<Port[] | undefined>(undefined, [80], ['http'], ['http', 8080]),
    notPorts: fc.constantFrom<Port[] | undefined>(undefined, undefined, ['http'], [8080]),
  })
  .map(({ action, source, destination, ports, notPorts }) => {
    const r: Rule = { action: action as Rule['action'] };
    if (source) r.source = source;
    if (ports || notPorts) {
      r.protocol = 'TCP';
      r.destination = {
        ...(destination ?? {}),
        ...(ports ? { ports } : {}),
        ...(notPorts ? { notPorts } : {}),
      };
    } else if (destination) r.destination = destination;
    return r;
  });
const policy = fc.record({
  global: fc.boolean(),
  ns: fc.constantFrom(...NAMESPACES),
  tier: fc.constantFrom('default', 't1'),
  order: fc.option(fc.constantFrom(1, 2), { nil: undefined }),
  selector: fc.constantFrom(...SELECTORS),
  namespaceSelector: fc.option(fc.constantFrom(...NS_SELECTORS), { nil: undefined }),
  serviceAccountSelector: fc.option(fc.constant("team == 't2'"), { nil: undefined }),
  types: fc.constantFrom<Direction[] | undefined>(
    undefined,
    ['Ingress'],
    ['Egress'],
    ['Ingress', 'Egress'],
  ),
  ingress: fc.array(rule, { maxLength: 2 }),
  egress: fc.array(rule, { maxLength: 2 }),
});
const endpoint = fc.record({
  ns: fc.constantFrom(...NAMESPACES),
  node: fc.constantFrom('n1', 'n2'),
  app: fc.constantFrom('web', 'db', undefined),
  sa: fc.constantFrom('sa1', 'sa2', undefined),
  http: fc.constantFrom(80, 8080, undefined),
});
const cluster = fc.record({
  env: fc.tuple(fc.constantFrom('x', 'y'), fc.constantFrom('x', 'y')),
  endpoints: fc.array(endpoint, { minLength: 2, maxLength: 5 }),
  policies: fc.array(policy, { maxLength: 4 }),
  tierDefault: fc.constantFrom('Deny', 'Pass'),
  profileAllowsB: fc.boolean(),
});
type Cluster = typeof cluster extends fc.Arbitrary<infer T> ? T : never;

/** The cluster as datastore resources (as the Kubernetes backend mirrors it) and as the evaluator's world. */
function build(c: Cluster) {
  const rs: Resource[] = [tier('t1', 10, c.tierDefault as 'Deny' | 'Pass')];
  const profiles: Profile[] = [];
  NAMESPACES.forEach((ns, i) => {
    const allow = ns === 'a' || c.profileAllowsB ? [{ action: 'Allow' as const }] : [];
    const labelsToApply = { 'pcns.projectcalico.org/name': ns, 'pcns.env': c.env[i] };
    rs.push(R('Profile', `kns.${ns}`, { ingress: allow, egress: allow, labelsToApply }));
    profiles.push({ name: `kns.${ns}`, labelsToApply, ingress: allow, egress: allow });
    for (const [sa, team] of [
      ['sa1', 't1'],
      ['sa2', 't2'],
    ]) {
      const l = { 'pcsa.projectcalico.org/name': sa, 'pcsa.team': team };
      rs.push(R('Profile', `ksa.${ns}.${sa}`, { labelsToApply: l }));
      profiles.push({ name: `ksa.${ns}.${sa}`, labelsToApply: l });
    }
  });
  const endpoints: Endpoint[] = c.endpoints.map((e, i) => {
    const ip = `10.0.1.${i + 1}`;
    const labels: Record<string, string> = {
      'projectcalico.org/namespace': e.ns,
      ...(e.app ? { app: e.app } : {}),
    };
    const profs = [`kns.${e.ns}`, ...(e.sa ? [`ksa.${e.ns}.${e.sa}`] : [])];
    const ports = e.http ? [{ name: 'http', protocol: 'TCP' as const, port: e.http }] : undefined;
    rs.push(
      R(
        'WorkloadEndpoint',
        `${e.node}-k8s-p${i}-eth0`,
        {
          node: e.node,
          pod: `p${i}`,
          ipNetworks: [`${ip}/32`],
          interfaceName: `calip${i}`,
          profiles: profs,
          ...(e.sa ? { serviceAccountName: e.sa } : {}),
          ...(ports ? { ports } : {}),
        },
        { namespace: e.ns, labels },
      ),
    );
    return {
      name: `p${i}`,
      namespace: e.ns,
      labels,
      ips: [ip],
      ...(ports ? { ports } : {}),
      ...(e.sa
        ? {
            serviceAccount: e.sa,
            serviceAccountLabels: {
              'projectcalico.org/name': e.sa,
              team: e.sa === 'sa1' ? 't1' : 't2',
            },
          }
        : {}),
      profiles: profs,
    };
  });
  const networkSets: NetworkSet[] = [
    { name: 'ext', labels: { zone: 'ext' }, nets: ['192.0.2.0/24'] },
  ];
  rs.push(R('GlobalNetworkSet', 'ext', { nets: ['192.0.2.0/24'] }, { labels: { zone: 'ext' } }));
  const policies: Policy[] = c.policies.map((p, i) => {
    const spec = {
      tier: p.tier,
      ...(p.order !== undefined ? { order: p.order } : {}),
      selector: p.selector,
      ...(p.global && p.namespaceSelector ? { namespaceSelector: p.namespaceSelector } : {}),
      ...(p.serviceAccountSelector ? { serviceAccountSelector: p.serviceAccountSelector } : {}),
      ...(p.types ? { types: p.types } : {}),
      ingress: p.ingress,
      egress: p.egress,
    };
    rs.push(p.global ? gnp(`pol${i}`, spec) : np(p.ns, `pol${i}`, spec));
    return p.global
      ? { kind: 'GlobalNetworkPolicy', metadata: { name: `pol${i}` }, spec }
      : { kind: 'NetworkPolicy', metadata: { name: `pol${i}`, namespace: p.ns }, spec };
  });
  const evaluator = new Evaluator({
    endpoints,
    namespaces: NAMESPACES.map((ns, i) => ({
      name: ns,
      labels: { 'projectcalico.org/name': ns, env: c.env[i] },
    })),
    policies,
    tiers: [{ name: 't1', order: 10, defaultAction: c.tierDefault as 'Deny' | 'Pass' }],
    profiles,
    networkSets,
  });
  return { rs, endpoints, evaluator };
}

describe('calc graph vs the reference evaluator', () => {
  test('every flow between pods (and from a network set) gets the evaluator verdict', () => {
    fc.assert(
      fc.property(cluster, (c) => {
        const { rs, endpoints, evaluator } = build(c);
        const dps = new Map<string, DataplaneState>();
        for (const n of ['n1', 'n2']) {
          const h = harness(n);
          h.set(...rs);
          h.g.onStatus('in-sync');
          expect(h.dp.errors).toEqual([]);
          dps.set(n, h.dp);
        }
        const at = (ip: string) => {
          const i = endpoints.findIndex((e) => e.ips[0] === ip);
          if (i < 0) return undefined;
          const dp = dps.get(c.endpoints[i].node)!;
          return { dp, w: dp.workloads.get(`${c.endpoints[i].ns}/p${i}/eth0`)! };
        };
        const ips = ['192.0.2.5', ...endpoints.map((e) => e.ips[0])];
        for (const src of ips)
          for (const dst of endpoints.map((e) => e.ips[0])) {
            if (src === dst) continue;
            for (const dstPort of [80, 8080]) {
              const f: Flow = { srcIp: src, dstIp: dst, protocol: 6, srcPort: 40000, dstPort };
              const s = at(src);
              const d = at(dst)!;
              const allowed =
                (!s || direction(s.dp, s.w.tiers, s.w.profileIds, 'outbound', f)) &&
                direction(d.dp, d.w.tiers, d.w.profileIds, 'inbound', f);
              const want = evaluator.evaluate(f).allowed;
              if (allowed !== want)
                throw new Error(`${src} -> ${dst}:${dstPort}: graph ${allowed}, evaluator ${want}`);
            }
          }
      }),
      { numRuns: Number(process.env.CALC_RUNS ?? 150) },
    );
  });
});
