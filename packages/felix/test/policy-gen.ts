// Random clusters for property tests of the policy pipeline: namespaces with labels,
// service accounts, pods (workload endpoints with labels, named ports, v4 and v6
// addresses), network sets, tiers, Calico NetworkPolicy / GlobalNetworkPolicy specs and
// Kubernetes networking.k8s.io/v1 NetworkPolicies. A generated cluster becomes both the
// datastore resources the calculation graph reads (every one through parseResource) and
// the reference evaluator's world, so the same cluster can be rendered into iptables and
// judged by the evaluator.
//
// Only what both our API and Calico accept is generated (masked CIDRs, one IP family per
// rule, ICMP fields only with protocol ICMP/ICMPv6, ICMP type <= 254, no catch-all CIDR
// in notNets, K8s ipBlock except strictly inside the cidr, endPort only with a numeric
// port), except where asked for (`emptyLists`). Every resource goes through
// parseResource: an exception there is a generator bug. Pods are placed on fixed slots
// (address, interface, node) so that a test can wire real namespaces for them; the CIDR
// pools below are built around the slots' ranges 10.65.0.0/16 and fd00:65::/64.
import fc from 'fast-check';
import YAML from 'yaml';
import type { Resource } from '@tortie/api';
import {
  convertK8sNetworkPolicy,
  ipInNet,
  type EntityRule,
  type Endpoint,
  type K8sLabelSelector,
  type K8sNetworkPolicy,
  type K8sPeer,
  type K8sPort,
  type NamedPort,
  type NetworkSet,
  type Policy,
  type PolicySpec,
  type PolicyWorld,
  type Port,
  type Profile,
  type Protocol,
  type Rule,
  type Tier,
} from '@tortie/policy';
import { R } from './calc-fixtures';

// ---- the fixed frame: where pods live, what they may be called -----------------------

/** A place for a pod: its addresses, host-side interface and node. */
export interface PodSlot {
  v4: string;
  v6?: string;
  iface: string;
  node: string;
}

export interface GenOptions {
  slots: PodSlot[];
  minPods?: number;
  maxPods?: number;
  /** Calico policies (NetworkPolicy + GlobalNetworkPolicy) per cluster. */
  maxCalico?: number;
  /** Kubernetes NetworkPolicies per cluster. */
  maxK8s?: number;
  /** Rules per direction of a Calico policy. */
  maxRules?: number;
  /** A host endpoint on this node (its policies render into raw/mangle too). */
  hostEndpoint?: { node: string; iface: string; ip: string };
  /** Also `ports: []` / `nets: []` now and then (our API accepts them; Calico reads them as absent). */
  emptyLists?: boolean;
}

export const NAMESPACES = ['alpha', 'beta', 'gamma'] as const;
export const SERVICE_ACCOUNTS = ['default', 'sa-a', 'sa-b'] as const;
const APPS = ['web', 'db', 'cache'];
const ROLES = ['frontend', 'backend'];

/** Named ports a pod may declare (the same name with other protocols/ports on other pods). */
export const NAMED_PORTS: NamedPort[] = [
  { name: 'http', protocol: 'TCP', port: 80 },
  { name: 'http', protocol: 'TCP', port: 8080 },
  { name: 'web', protocol: 'TCP', port: 443 },
  { name: 'dns', protocol: 'UDP', port: 53 },
  { name: 'dns', protocol: 'TCP', port: 53 },
  { name: 'metrics', protocol: 'TCP', port: 9090 },
  { name: 'stream', protocol: 'UDP', port: 8080 },
  { name: 'assoc', protocol: 'SCTP', port: 7777 },
];
/** Named ports rules refer to ("nosuch" is declared by nobody). */
const PORT_NAMES = ['http', 'web', 'dns', 'metrics', 'stream', 'assoc', 'nosuch'];

// ---- CIDR pools --------------------------------------------------------------------------

const V4_NETS = [
  '10.65.0.0/16',
  '10.65.0.0/24',
  '10.65.0.0/29',
  '10.65.0.0/30',
  '10.65.0.4/30',
  '10.65.0.2/31',
  '10.65.1.0/24',
  '10.0.0.0/8',
  '0.0.0.0/4', // the ipBlock
  '0.0.0.0/1',
  '128.0.0.0/1',
  '192.0.2.0/24',
  '0.0.0.0/0',
];
const V6_NETS = [
  'fd00:65::/64',
  'fd00:65::/125',
  'fd00:65::/126',
  'fd00:65::4/126',
  'fd00::/8',
  '2001:db8::/32',
  '::/0',
];
const CATCH_ALL = new Set(['0.0.0.0/0', '::/0']);

function netPools(slots: PodSlot[]) {
  const v4 = [...V4_NETS, ...slots.map((s) => `${s.v4}/32`)];
  const v6 = [...V6_NETS, ...slots.flatMap((s) => (s.v6 ? [`${s.v6}/128`] : []))];
  return { 4: v4, 6: v6 } as const;
}

const prefixLen = (cidr: string) => Number(cidr.split('/')[1]);
/** `inner` lies strictly inside `outer` (Kubernetes' rule for ipBlock.except). */
const strictlyInside = (inner: string, outer: string) =>
  inner.includes(':') === outer.includes(':') &&
  prefixLen(inner) > prefixLen(outer) &&
  ipInNet(inner.split('/')[0], outer);

// ---- helpers -------------------------------------------------------------------------------

/** `arb` in `percent`% of the cases, else undefined. */
const maybe = <T>(arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | undefined> =>
  fc.oneof(
    { weight: percent, arbitrary: arb },
    { weight: 100 - percent, arbitrary: fc.constant(undefined) },
  );

const uniq = <T>(xs: T[]) => [...new Set(xs)];

/** The object without its undefined fields (what a manifest would hold). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ---- selectors ---------------------------------------------------------------------------

const LABEL_ATOMS = [
  'all()',
  "app == 'web'",
  "app == 'db'",
  "app != 'web'",
  'has(role)',
  '!has(role)',
  "app in {'web', 'cache'}",
  "app not in {'db'}",
  "role == 'frontend'",
  "example.com/tier == '1'",
  "app starts with 'ca'",
  "app contains 'e'",
  "projectcalico.org/namespace == 'beta'",
  "projectcalico.org/serviceaccount == 'sa-a'",
  "zone == 'int'", // network sets
  "zone in {'int', 'ext'}",
];
const NS_ATOMS = [
  'all()',
  "env == 'prod'",
  "env != 'prod'",
  'has(team)',
  "team in {'a'}",
  "projectcalico.org/name == 'beta'",
  "kubernetes.io/metadata.name == 'alpha'",
];

/** A selector over pod / network set labels: an atom, or one level of &&, ||, !. */
const selectorArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...LABEL_ATOMS) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...LABEL_ATOMS), fc.constantFrom(...LABEL_ATOMS), fc.nat(2))
      .map(([a, b, op]) => (op === 2 ? `!(${a})` : `(${a}) ${op ? '||' : '&&'} (${b})`)),
  },
);
/** Namespace selectors; `global()` (rules only) picks global network sets. */
const nsSelectorArb = (withGlobal: boolean): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...NS_ATOMS) },
    ...(withGlobal ? [{ weight: 1, arbitrary: fc.constant('global()') }] : []),
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...NS_ATOMS), fc.constantFrom(...NS_ATOMS))
        .map(([a, b]) => `${a} && ${b}`),
    },
  );
const saSelectorArb = fc.constantFrom("role == 'x'", "role != 'x'", 'has(role)');

// ---- ports -------------------------------------------------------------------------------

const numericPortArb: fc.Arbitrary<Port> = fc.oneof(
  fc.constantFrom<Port>(53, 80, 443, 8080, 9090, 22, 7777),
  fc.constantFrom<Port>('80', '8080'),
  fc.constantFrom<Port>('79:81', '1:1023', '8000:8100', '1024:65535', '20000:39999', '40000:59999'),
);
const portAtomArb: fc.Arbitrary<Port> = fc.oneof(
  { weight: 3, arbitrary: numericPortArb },
  { weight: 1, arbitrary: fc.constantFrom<Port>(...PORT_NAMES) },
);
/** More than multiport's 15 slots: numbers and ranges around the probed ports. */
const longPortListArb: fc.Arbitrary<Port[]> = fc
  .tuple(
    fc.uniqueArray(fc.integer({ min: 1000, max: 1200 }), { minLength: 14, maxLength: 22 }),
    fc.subarray<Port>([80, 8080, '440:450', 53, 'http']),
  )
  .map(([nums, extra]) => [...nums, ...extra]);
const portListArb = (emptyLists: boolean): fc.Arbitrary<Port[]> =>
  fc.oneof(
    { weight: 12, arbitrary: fc.array(portAtomArb, { minLength: 1, maxLength: 4 }) },
    { weight: 2, arbitrary: longPortListArb },
    ...(emptyLists ? [{ weight: 1, arbitrary: fc.constant<Port[]>([]) }] : []),
  );

// ---- Calico rules --------------------------------------------------------------------------

// Calico's validator: ports only with TCP, UDP or SCTP (UDPLite has none there)
const PORT_PROTOCOLS: Protocol[] = ['TCP', 'UDP', 'SCTP', 6, 17, 132];
const PROTOCOLS: Protocol[] = [
  'TCP',
  'UDP',
  'ICMP',
  'ICMPv6',
  'SCTP',
  'UDPLite',
  6,
  17,
  1,
  58,
  132,
  47,
];
const ICMP_TYPES = { 4: [0, 3, 8, 11], 6: [1, 128, 129, 135] } as const;
const icmpFamily = (p: Protocol | undefined): 4 | 6 | undefined =>
  p === 'ICMP' || p === 1 ? 4 : p === 'ICMPv6' || p === 58 ? 6 : undefined;

/** An entity rule's raw pieces (nets as indexes into the rule family's pool). */
interface EntityRaw {
  nets?: number[];
  notNets?: number[];
  selector?: string;
  notSelector?: string;
  namespaceSelector?: string;
  serviceAccounts?: { names?: string[]; selector?: string };
  ports?: Port[];
  notPorts?: Port[];
  /** Kubernetes' ipBlock shape instead of nets/notNets: [cidr pick, except count, except pick]. */
  ipBlock?: [number, number, number];
}

const entityRawArb = (emptyLists: boolean): fc.Arbitrary<EntityRaw> =>
  fc
    .record({
      nets: maybe(fc.array(fc.nat(), { minLength: emptyLists ? 0 : 1, maxLength: 4 }), 30),
      notNets: maybe(fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), 20),
      selector: maybe(selectorArb, 35),
      notSelector: maybe(selectorArb, 12),
      namespaceSelector: maybe(nsSelectorArb(true), 15),
      serviceAccounts: maybe(
        fc.oneof(
          fc.constantFrom<EntityRaw['serviceAccounts']>(
            { names: ['sa-a'] },
            { names: ['default', 'sa-b'] },
          ),
          saSelectorArb.map((selector) => ({ selector })),
          saSelectorArb.map((selector) => ({ names: ['sa-a', 'sa-b'], selector })),
        ),
        10,
      ),
      ports: maybe(portListArb(emptyLists), 35),
      notPorts: maybe(portListArb(false), 15),
      ipBlock: maybe(fc.tuple(fc.nat(), fc.constantFrom(1, 1, 2), fc.nat()), 10),
    })
    .map(defined);

interface RuleRaw {
  action: Rule['action'];
  protocol?: Protocol;
  notProtocol?: Protocol;
  ipVersion?: 4 | 6;
  family: 4 | 6;
  icmp?: [number, number | undefined];
  notICMP?: [number, number | undefined];
  portProtocol: Protocol;
  source?: EntityRaw;
  destination?: EntityRaw;
}

const icmpRawArb = fc.tuple(fc.nat(3), maybe(fc.constantFrom(0, 1, 3), 40));
const ruleRawArb = (emptyLists: boolean): fc.Arbitrary<RuleRaw> =>
  fc.record({
    action: fc.constantFrom<Rule['action']>(
      'Allow',
      'Allow',
      'Allow',
      'Deny',
      'Deny',
      'Pass',
      'Log',
    ),
    protocol: maybe(fc.constantFrom(...PROTOCOLS), 65),
    notProtocol: maybe(fc.constantFrom<Protocol>('TCP', 'UDP', 'ICMP', 17, 47), 12),
    ipVersion: maybe(fc.constantFrom<4 | 6>(4, 6), 15),
    family: fc.constantFrom<4 | 6>(4, 4, 4, 6),
    icmp: maybe(icmpRawArb, 60),
    notICMP: maybe(icmpRawArb, 20),
    portProtocol: fc.constantFrom<Protocol>('TCP', 'UDP', 'TCP', 'SCTP'),
    source: maybe(entityRawArb(emptyLists), 60),
    destination: maybe(entityRawArb(emptyLists), 60),
  });

type NetPools = ReturnType<typeof netPools>;

/** Makes the raw pieces a rule both our API and Calico accept. */
function buildRule(raw: RuleRaw, pools: NetPools): Rule {
  const r: Rule = { action: raw.action };
  let protocol = raw.protocol;
  const usesPorts = [raw.source, raw.destination].some(
    (e) => e?.ports !== undefined || e?.notPorts !== undefined,
  );
  const onlyNamed = [raw.source, raw.destination].every((e) =>
    [...(e?.ports ?? []), ...(e?.notPorts ?? [])].every(
      (p) => typeof p === 'string' && !/^\d/.test(p),
    ),
  );
  // ports need a protocol that has them; named ports alone may have none (Calico: each
  // endpoint port's own protocol)
  if (usesPorts && !PORT_PROTOCOLS.includes(protocol as Protocol))
    protocol = onlyNamed && protocol === undefined ? undefined : raw.portProtocol;
  if (protocol !== undefined) r.protocol = protocol;
  const icmpFam = icmpFamily(protocol);
  // one family per rule: ICMP's, else the ipVersion's, else a random one
  const family = icmpFam ?? raw.ipVersion ?? raw.family;
  if (raw.ipVersion !== undefined && (icmpFam === undefined || icmpFam === raw.ipVersion))
    r.ipVersion = raw.ipVersion;
  if (raw.notProtocol !== undefined) {
    const nf = icmpFamily(raw.notProtocol);
    if (nf === undefined || r.ipVersion === undefined || nf === r.ipVersion)
      r.notProtocol = raw.notProtocol;
  }
  // icmp only with protocol ICMP/ICMPv6 (Calico); notICMP with any protocol or none
  const types = ICMP_TYPES[icmpFam ?? family];
  const icmp = ([t, code]: [number, number | undefined]) => ({
    type: types[t % types.length],
    ...(code !== undefined ? { code } : {}),
  });
  if (raw.icmp && icmpFam !== undefined) r.icmp = icmp(raw.icmp);
  if (raw.notICMP) r.notICMP = icmp(raw.notICMP);
  const pool = pools[family];
  const notPool = pool.filter((n) => !CATCH_ALL.has(n)); // Calico rejects a catch-all notNet
  const entity = ({ ipBlock, ...e }: EntityRaw = {}): EntityRule | undefined => {
    const out: EntityRule = defined({
      ...e,
      nets: e.nets && uniq(e.nets.map((i) => pool[i % pool.length])),
      notNets: e.notNets && uniq(e.notNets.map((i) => notPool[i % notPool.length])),
      ...(ipBlock ? ipBlockNets(pool, ipBlock) : {}),
    });
    return Object.keys(out).length ? out : undefined;
  };
  const source = raw.source && entity(raw.source);
  const destination = raw.destination && entity(raw.destination);
  if (source) r.source = source;
  if (destination) r.destination = destination;
  return r;
}

/** One net and one or more notNets inside it, as a Kubernetes ipBlock converts. */
function ipBlockNets(pool: readonly string[], [c, n, e]: [number, number, number]) {
  const containers = pool.filter((x) => pool.some((y) => strictlyInside(y, x)));
  const cidr = containers[c % containers.length];
  const inside = pool.filter((y) => strictlyInside(y, cidr));
  return {
    nets: [cidr],
    notNets: uniq([0, 1].slice(0, n).map((k) => inside[(e + k) % inside.length])),
  };
}

// ---- Kubernetes NetworkPolicy ----------------------------------------------------------------

const k8sPodSelectorArb: fc.Arbitrary<K8sLabelSelector> = fc.oneof(
  fc.constant({}),
  fc.constantFrom(...APPS).map((app) => ({ matchLabels: { app } })),
  fc.constantFrom(...ROLES).map((role) => ({ matchLabels: { role } })),
  fc.constantFrom<K8sLabelSelector>(
    { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'db'] }] },
    { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] },
    { matchExpressions: [{ key: 'role', operator: 'Exists' }] },
    { matchExpressions: [{ key: 'role', operator: 'DoesNotExist' }] },
    {
      matchLabels: { app: 'web' },
      matchExpressions: [{ key: 'example.com/tier', operator: 'In', values: ['1'] }],
    },
  ),
);
const k8sNsSelectorArb: fc.Arbitrary<K8sLabelSelector> = fc.constantFrom<K8sLabelSelector>(
  {},
  { matchLabels: { env: 'prod' } },
  { matchLabels: { 'kubernetes.io/metadata.name': 'beta' } },
  { matchExpressions: [{ key: 'team', operator: 'Exists' }] },
  { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
);

/** ipBlock with 0, 1 or several except entries, each strictly inside the cidr. */
function ipBlockArb(pools: NetPools): fc.Arbitrary<K8sPeer> {
  const all = [...pools[4], ...pools[6]];
  const containers = all.filter((c) => all.some((n) => strictlyInside(n, c)));
  return fc
    .tuple(
      fc.constantFrom(...containers),
      fc.constantFrom(0, 1, 1, 2, 3),
      fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
    )
    .map(([cidr, n, picks]) => {
      const inside = all.filter((x) => strictlyInside(x, cidr));
      const except = uniq(picks.slice(0, n).map((i) => inside[i % inside.length]));
      return { ipBlock: except.length ? { cidr, except } : { cidr } };
    });
}

const k8sPortArb: fc.Arbitrary<K8sPort> = fc
  .record({
    protocol: maybe(fc.constantFrom<'TCP' | 'UDP' | 'SCTP'>('TCP', 'UDP', 'SCTP'), 70),
    port: maybe(
      fc.oneof(
        fc.constantFrom<number | string>(53, 80, 443, 8080, 9090, 1000),
        fc.constantFrom<number | string>('http', 'dns', 'web', 'stream', 'nosuch'),
      ),
      85,
    ),
    endPort: maybe(fc.constantFrom(80, 444, 8090, 9999), 25),
  })
  .map((p) => {
    // endPort: only after a numeric port, and not below it
    if (p.endPort !== undefined && (typeof p.port !== 'number' || p.endPort < p.port))
      p.endPort = undefined;
    return defined(p);
  });

interface K8sRaw {
  namespace: string;
  podSelector: K8sLabelSelector;
  policyTypes?: Array<'Ingress' | 'Egress'>;
  ingress?: Array<{ from?: K8sPeer[]; ports?: K8sPort[] }>;
  egress?: Array<{ to?: K8sPeer[]; ports?: K8sPort[] }>;
}

function k8sPolicyArb(pools: NetPools): fc.Arbitrary<K8sRaw> {
  const peer: fc.Arbitrary<K8sPeer> = fc.oneof(
    k8sPodSelectorArb.map((podSelector) => ({ podSelector })),
    k8sNsSelectorArb.map((namespaceSelector) => ({ namespaceSelector })),
    fc
      .tuple(k8sPodSelectorArb, k8sNsSelectorArb)
      .map(([podSelector, namespaceSelector]) => ({ podSelector, namespaceSelector })),
    ipBlockArb(pools),
    ipBlockArb(pools),
  );
  const peers = maybe(fc.array(peer, { minLength: 1, maxLength: 3 }), 75);
  const ports = maybe(fc.array(k8sPortArb, { minLength: 1, maxLength: 3 }), 50);
  return fc
    .record({
      namespace: fc.constantFrom<string>(...NAMESPACES),
      podSelector: k8sPodSelectorArb,
      policyTypes: fc.constantFrom<K8sRaw['policyTypes']>(
        undefined,
        ['Ingress'],
        ['Egress'],
        ['Ingress', 'Egress'],
      ),
      ingress: maybe(
        fc.array(fc.record({ from: peers, ports }).map(defined), { maxLength: 3 }),
        70,
      ),
      egress: maybe(fc.array(fc.record({ to: peers, ports }).map(defined), { maxLength: 3 }), 50),
    })
    .map(defined);
}

// ---- the cluster ---------------------------------------------------------------------------

export interface GenPod {
  slot: number;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  ports: NamedPort[];
}

export interface GenCalicoPolicy {
  kind: 'NetworkPolicy' | 'GlobalNetworkPolicy';
  name: string;
  namespace?: string;
  spec: PolicySpec;
}

export interface GenCluster {
  namespaces: Array<{ name: string; labels: Record<string, string> }>;
  serviceAccounts: Array<{ namespace: string; name: string; labels: Record<string, string> }>;
  pods: GenPod[];
  tiers: Tier[];
  networkSets: NetworkSet[];
  calico: GenCalicoPolicy[];
  k8s: K8sNetworkPolicy[];
}

const podLabelsArb: fc.Arbitrary<Record<string, string>> = fc
  .record({
    app: maybe(fc.constantFrom(...APPS), 80),
    role: maybe(fc.constantFrom(...ROLES), 50),
    'example.com/tier': maybe(fc.constantFrom('1', '2'), 30),
  })
  .map((l) => defined(l) as Record<string, string>);
const nsLabelsArb: fc.Arbitrary<Record<string, string>> = fc
  .record({
    env: maybe(fc.constantFrom('prod', 'dev'), 80),
    team: maybe(fc.constantFrom('a', 'b'), 50),
  })
  .map((l) => defined(l) as Record<string, string>);

interface CalicoRaw {
  global: boolean;
  namespace: string;
  tier: string;
  order?: number;
  selector: string;
  namespaceSelector?: string;
  serviceAccountSelector?: string;
  types?: Array<'Ingress' | 'Egress'>;
  ingress: Rule[];
  egress: Rule[];
  stage: 'normal' | 'forward' | 'preDNAT' | 'untracked';
}

export function clusterArb(o: GenOptions): fc.Arbitrary<GenCluster> {
  const pools = netPools(o.slots);
  const emptyLists = o.emptyLists ?? false;
  const rules = fc.array(
    ruleRawArb(emptyLists).map((raw) => buildRule(raw, pools)),
    { maxLength: o.maxRules ?? 3 },
  );
  const calicoPolicy: fc.Arbitrary<CalicoRaw> = fc.record({
    global: fc.boolean(),
    namespace: fc.constantFrom<string>(...NAMESPACES),
    tier: fc.constantFrom('default', 'default', 'security', 'platform'),
    order: maybe(fc.constantFrom(1, 10, 10, 100, 1000, 10.5), 70),
    selector: selectorArb,
    namespaceSelector: maybe(nsSelectorArb(false), 30),
    serviceAccountSelector: maybe(saSelectorArb, 15),
    types: fc.constantFrom<CalicoRaw['types']>(
      undefined,
      ['Ingress'],
      ['Egress'],
      ['Ingress', 'Egress'],
    ),
    ingress: rules,
    egress: rules,
    stage: fc.constantFrom<CalicoRaw['stage']>(
      'normal',
      'normal',
      'normal',
      'normal',
      'forward',
      'preDNAT',
      'untracked',
    ),
  });
  const netSet = fc.record({
    global: fc.boolean(),
    namespace: fc.constantFrom<string>(...NAMESPACES),
    zone: fc.constantFrom('int', 'ext'),
    nets: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
  });
  const nSa = NAMESPACES.length * SERVICE_ACCOUNTS.length;
  return fc
    .record({
      nsLabels: fc.array(nsLabelsArb, {
        minLength: NAMESPACES.length,
        maxLength: NAMESPACES.length,
      }),
      saRoles: fc.array(maybe(fc.constantFrom('x', 'y'), 60), { minLength: nSa, maxLength: nSa }),
      pods: fc.array(
        fc.record({
          namespace: fc.constantFrom<string>(...NAMESPACES),
          labels: podLabelsArb,
          serviceAccount: fc.constantFrom<string>(...SERVICE_ACCOUNTS),
          ports: fc.subarray(NAMED_PORTS, { maxLength: 3 }),
        }),
        {
          minLength: o.minPods ?? 2,
          maxLength: Math.min(o.maxPods ?? o.slots.length, o.slots.length),
        },
      ),
      securityDefault: fc.constantFrom<'Deny' | 'Pass'>('Deny', 'Pass'),
      platformOrder: maybe(fc.constant(50), 50),
      netSets: fc.array(netSet, { maxLength: 2 }),
      calico: fc.array(calicoPolicy, { maxLength: o.maxCalico ?? 4 }),
      k8s: fc.array(k8sPolicyArb(pools), { maxLength: o.maxK8s ?? 3 }),
    })
    .map((g): GenCluster => {
      const all = [...pools[4], ...pools[6]];
      return {
        namespaces: NAMESPACES.map((name, i) => ({ name, labels: g.nsLabels[i] })),
        serviceAccounts: NAMESPACES.flatMap((namespace, i) =>
          SERVICE_ACCOUNTS.map((name, j) => {
            const role = g.saRoles[i * SERVICE_ACCOUNTS.length + j];
            const labels: Record<string, string> = role ? { role } : {};
            return { namespace, name, labels };
          }),
        ),
        pods: g.pods.map((p, slot) => ({
          ...p,
          slot,
          name: `pod${slot}`,
          // one declaration per name and protocol, as a pod spec holds them
          ports: p.ports.filter(
            (x, i, xs) => xs.findIndex((y) => y.name === x.name && y.protocol === x.protocol) === i,
          ),
        })),
        tiers: [
          { name: 'security', order: 100, defaultAction: g.securityDefault },
          defined({ name: 'platform', order: g.platformOrder, defaultAction: 'Deny' as const }),
        ],
        networkSets: g.netSets.map((s, i) =>
          defined({
            name: `set${i}`,
            namespace: s.global ? undefined : s.namespace,
            labels: { zone: s.zone },
            nets: uniq(s.nets.map((n) => all[n % all.length])),
          }),
        ),
        calico: g.calico.map((p, i) => calicoPolicyOf(p, i, !!o.hostEndpoint)),
        k8s: g.k8s.map(({ namespace, ...spec }, i) => ({
          metadata: { name: `k8s${i}`, namespace },
          spec,
        })),
      };
    });
}

/** A Calico policy from its raw pieces; host endpoint stages only where a host endpoint exists. */
function calicoPolicyOf(p: CalicoRaw, i: number, withHostEndpoint: boolean): GenCalicoPolicy {
  const spec: PolicySpec = defined({
    // the default tier named or left out
    tier: p.tier !== 'default' || i % 2 ? p.tier : undefined,
    order: p.order,
    selector: p.selector,
    serviceAccountSelector: p.serviceAccountSelector,
    types: p.types,
    ingress: p.ingress.length ? p.ingress : undefined,
    egress: p.egress.length ? p.egress : undefined,
  });
  const name = `pol${i}`;
  if (!p.global) return { kind: 'NetworkPolicy', name, namespace: p.namespace, spec };
  if (p.namespaceSelector) spec.namespaceSelector = p.namespaceSelector;
  // Calico: preDNAT and doNotTrack need applyOnForward; preDNAT has no egress rules
  if (withHostEndpoint && p.stage !== 'normal') {
    spec.applyOnForward = true;
    if (p.stage === 'preDNAT') {
      spec.preDNAT = true;
      delete spec.egress;
      if (spec.types) spec.types = ['Ingress'];
    }
    if (p.stage === 'untracked') spec.doNotTrack = true;
  }
  return { kind: 'GlobalNetworkPolicy', name, spec };
}

// ---- the cluster as resources and as the evaluator's world ----------------------------------

export interface BuiltCluster {
  resources: Resource[];
  world: PolicyWorld;
  /** What a user would apply: Calico manifests and Kubernetes NetworkPolicies. */
  manifests: object[];
  /** Policy name as converted ("knp.default.<name>") -> the Kubernetes original. */
  k8sOrigin: Map<string, K8sNetworkPolicy>;
}

const prefixed = (prefix: string, labels: Record<string, string>) =>
  Object.fromEntries(Object.entries(labels).map(([k, v]) => [`${prefix}${k}`, v]));

export function buildCluster(c: GenCluster, o: GenOptions): BuiltCluster {
  const resources: Resource[] = [];
  const manifests: object[] = [];
  const profiles: Profile[] = [];
  const policies: Policy[] = [];
  const k8sOrigin = new Map<string, K8sNetworkPolicy>();

  // namespaces and service accounts as the Kubernetes backend mirrors them: profiles
  for (const ns of c.namespaces) {
    const labelsToApply = {
      'pcns.projectcalico.org/name': ns.name,
      ...prefixed('pcns.', ns.labels),
    };
    const spec = {
      ingress: [{ action: 'Allow' as const }],
      egress: [{ action: 'Allow' as const }],
    };
    resources.push(R('Profile', `kns.${ns.name}`, { ...spec, labelsToApply }));
    profiles.push({ name: `kns.${ns.name}`, labelsToApply, ...spec });
  }
  for (const sa of c.serviceAccounts) {
    const labelsToApply = {
      'pcsa.projectcalico.org/name': sa.name,
      ...prefixed('pcsa.', sa.labels),
    };
    const name = `ksa.${sa.namespace}.${sa.name}`;
    resources.push(R('Profile', name, { labelsToApply }));
    profiles.push({ name, labelsToApply });
  }
  const saLabels = (ns: string, sa: string) => ({
    'projectcalico.org/name': sa,
    ...c.serviceAccounts.find((x) => x.namespace === ns && x.name === sa)!.labels,
  });

  const endpoints: Endpoint[] = c.pods.map((p) => {
    const slot = o.slots[p.slot];
    const labels = {
      ...p.labels,
      'projectcalico.org/namespace': p.namespace,
      'projectcalico.org/orchestrator': 'k8s',
      'projectcalico.org/serviceaccount': p.serviceAccount,
    };
    const ips = [slot.v4, ...(slot.v6 ? [slot.v6] : [])];
    const profs = [`kns.${p.namespace}`, `ksa.${p.namespace}.${p.serviceAccount}`];
    const ports = p.ports.length ? p.ports : undefined;
    resources.push(
      R(
        'WorkloadEndpoint',
        `${slot.node}-k8s-${p.name}-eth0`,
        {
          node: slot.node,
          pod: p.name,
          endpoint: 'eth0',
          serviceAccountName: p.serviceAccount,
          ipNetworks: ips.map((ip) => `${ip}/${ip.includes(':') ? 128 : 32}`),
          interfaceName: slot.iface,
          profiles: profs,
          ...(ports ? { ports } : {}),
        },
        { namespace: p.namespace, labels },
      ),
    );
    return {
      name: p.name,
      namespace: p.namespace,
      labels,
      ips,
      ...(ports ? { ports } : {}),
      serviceAccount: p.serviceAccount,
      serviceAccountLabels: saLabels(p.namespace, p.serviceAccount),
      profiles: profs,
    };
  });

  if (o.hostEndpoint) {
    const h = o.hostEndpoint;
    resources.push(
      R(
        'HostEndpoint',
        'host-uplink',
        { node: h.node, interfaceName: h.iface, expectedIPs: [h.ip] },
        { labels: { role: 'frontend', app: 'web' } },
      ),
    );
  }

  for (const t of c.tiers) {
    const spec = {
      ...(t.order !== undefined ? { order: t.order } : {}),
      defaultAction: t.defaultAction,
    };
    resources.push(R('Tier', t.name, spec));
    manifests.push({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Tier',
      metadata: { name: t.name },
      spec,
    });
  }
  for (const s of c.networkSets) {
    const kind = s.namespace ? 'NetworkSet' : 'GlobalNetworkSet';
    const metadata = {
      name: s.name,
      labels: s.labels,
      ...(s.namespace ? { namespace: s.namespace } : {}),
    };
    resources.push(R(kind, s.name, { nets: s.nets }, metadata));
    manifests.push({ apiVersion: 'projectcalico.org/v3', kind, metadata, spec: { nets: s.nets } });
  }
  for (const p of c.calico) {
    const metadata = { name: p.name, ...(p.namespace ? { namespace: p.namespace } : {}) };
    resources.push(R(p.kind, p.name, p.spec, p.namespace ? { namespace: p.namespace } : {}));
    manifests.push({ apiVersion: 'projectcalico.org/v3', kind: p.kind, metadata, spec: p.spec });
    policies.push({ kind: p.kind, metadata, spec: p.spec });
  }
  for (const k of c.k8s) {
    const p = convertK8sNetworkPolicy(k);
    k8sOrigin.set(p.metadata.name, k);
    resources.push(
      R('NetworkPolicy', p.metadata.name, defined(p.spec), { namespace: p.metadata.namespace }),
    );
    manifests.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', ...k });
    policies.push(p);
  }

  const world: PolicyWorld = {
    endpoints,
    namespaces: c.namespaces.map((n) => ({
      name: n.name,
      labels: { 'projectcalico.org/name': n.name, ...n.labels },
    })),
    policies,
    tiers: c.tiers,
    profiles,
    networkSets: c.networkSets,
  };
  return { resources, world, manifests, k8sOrigin };
}

/** The cluster as a person reads it: pods, then every manifest, as YAML. */
export function clusterYaml(c: GenCluster, b: BuiltCluster, o: GenOptions): string {
  const pods = c.pods.map((p) => ({
    pod: `${p.namespace}/${p.name}`,
    ip: [o.slots[p.slot].v4, o.slots[p.slot].v6].filter(Boolean).join(' '),
    node: o.slots[p.slot].node,
    labels: p.labels,
    serviceAccount: p.serviceAccount,
    ...(p.ports.length ? { ports: p.ports.map((x) => `${x.name}=${x.protocol}/${x.port}`) } : {}),
  }));
  const ns = c.namespaces.map((n) => ({ namespace: n.name, labels: n.labels }));
  const sas = c.serviceAccounts
    .filter((s) => Object.keys(s.labels).length)
    .map((s) => ({ serviceAccount: `${s.namespace}/${s.name}`, labels: s.labels }));
  return [
    YAML.stringify({ namespaces: ns, serviceAccounts: sas, pods }),
    ...b.manifests.map((m) => YAML.stringify(m)),
  ].join('---\n');
}

// ---- coverage: what the generated clusters exercise ---------------------------------------

const isNamedPort = (p: Port) => typeof p === 'string' && !/^\d+(:\d+)?$/.test(p);
const portCost = (ps: Port[]) =>
  ps
    .filter((p) => !isNamedPort(p))
    .reduce<number>((n, p) => n + (String(p).includes(':') ? 2 : 1), 0);

/** Tags for the interesting parts of one Calico rule. */
export function ruleFeatures(r: Rule): string[] {
  const out: string[] = [r.action];
  if (r.protocol !== undefined) out.push(`protocol ${r.protocol}`);
  if (r.notProtocol !== undefined)
    out.push(r.protocol !== undefined ? 'protocol+notProtocol' : 'notProtocol');
  if (r.ipVersion) out.push('ipVersion');
  if (r.icmp) out.push(r.icmp.code !== undefined ? 'icmp type+code' : 'icmp type');
  if (r.protocol === undefined && [r.source, r.destination].some((e) => e?.ports || e?.notPorts))
    out.push('named ports without protocol');
  if (r.notICMP) out.push('notICMP');
  for (const e of [r.source, r.destination]) {
    if (!e) continue;
    if (e.nets)
      out.push(e.nets.length > 1 ? 'several nets' : e.nets.length ? 'one net' : 'nets: []');
    if (e.notNets) out.push(e.notNets.length > 1 ? 'several notNets' : 'one notNet');
    if (e.nets?.length === 1 && e.notNets?.length === 1) out.push('one net + one notNet (ipBlock)');
    if ([...(e.nets ?? []), ...(e.notNets ?? [])].some((n) => n.includes(':'))) out.push('v6 nets');
    if (e.selector) out.push('selector');
    if (e.notSelector) out.push('notSelector');
    if (e.namespaceSelector) out.push('namespaceSelector');
    if (e.serviceAccounts) out.push('serviceAccounts');
    if (e.ports) {
      out.push(e.ports.length ? 'ports' : 'ports: []');
      if (portCost(e.ports) > 15) out.push('ports over 15 slots');
      if (e.ports.some(isNamedPort)) out.push('named ports');
    }
    if (e.notPorts) {
      out.push('notPorts');
      if (portCost(e.notPorts) > 15) out.push('notPorts over 15 slots');
      if (e.notPorts.some(isNamedPort)) out.push('named notPorts');
    }
  }
  return out;
}

/** How many rules (and Kubernetes peers/ports) of the clusters show each feature. */
export function coverage(clusters: GenCluster[]): Record<string, number> {
  const n: Record<string, number> = {};
  const add = (tags: string[]) => {
    for (const t of new Set(tags)) n[t] = (n[t] ?? 0) + 1;
  };
  for (const c of clusters) {
    for (const p of c.calico) {
      add([
        p.kind,
        ...(p.spec.preDNAT ? ['preDNAT'] : []),
        ...(p.spec.doNotTrack ? ['doNotTrack'] : []),
      ]);
      for (const r of [...(p.spec.ingress ?? []), ...(p.spec.egress ?? [])]) add(ruleFeatures(r));
    }
    for (const k of c.k8s) {
      add(['K8s NetworkPolicy']);
      for (const r of [...(k.spec.ingress ?? []), ...(k.spec.egress ?? [])]) {
        const peers = 'from' in r ? r.from : (r as { to?: K8sPeer[] }).to;
        for (const p of peers ?? []) {
          const except = p.ipBlock?.except?.length ?? 0;
          if (p.ipBlock) add([`K8s ipBlock with ${except > 1 ? 'several' : except} except`]);
          else add([`K8s peer ${Object.keys(p).sort().join('+')}`]);
        }
        for (const p of r.ports ?? [])
          add([
            typeof p.port === 'string'
              ? 'K8s named port'
              : p.port === undefined
                ? 'K8s protocol only'
                : 'K8s port',
            ...(p.endPort !== undefined ? ['K8s endPort'] : []),
            ...(p.protocol === 'SCTP' ? ['K8s SCTP'] : []),
          ]);
      }
    }
  }
  return n;
}
