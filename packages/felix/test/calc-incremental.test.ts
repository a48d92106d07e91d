// Calculation graph, incrementality: (1) a change costs what it touches, proven by
// counting selector evaluations, endpoint recomputations and messages in a world of
// 1,000 endpoints x 100 policies; (2) any sequence of sets and deletes ending in a
// world gives the same accumulated dataplane state as computing that world from
// scratch (fast-check).
import fc from 'fast-check';
import type { Resource } from '@tortie/api';
import { block, gnp, harness, namespace, node, np, pool, R, tier, wep } from './calc-fixtures';

describe('calc graph: work is bounded by the change', () => {
  const POLICIES = 100;
  const ENDPOINTS = 1000;
  const ROLES = 10;
  const world = (): Resource[] => {
    const rs: Resource[] = [
      node('n1', '10.0.0.1/24'),
      node('n2', '10.0.0.2/24'),
      namespace('prod'),
    ];
    for (let i = 0; i < ENDPOINTS; i++) {
      const local = i < POLICIES; // 100 local pods (one per policy), 900 elsewhere
      const ip = `10.${local ? 244 : 245}.${Math.floor(i / 250)}.${i % 250}`;
      rs.push(
        wep('prod', `pod${i}`, local ? 'n1' : 'n2', ip, {
          app: `app${i % POLICIES}`,
          role: `r${i % ROLES}`,
        }),
      );
    }
    for (let p = 0; p < POLICIES; p++)
      rs.push(
        np('prod', `pol${p}`, {
          selector: `app == 'app${p}'`,
          ingress: [{ action: 'Allow', source: { selector: `role == 'r${p % ROLES}'` } }],
          egress: [
            { action: 'Allow', destination: { selector: `app == 'app${(p + 1) % POLICIES}'` } },
          ],
        }),
      );
    return rs;
  };

  test('1,000 endpoints x 100 policies: one label change, one pod add, one pod delete', () => {
    const h = harness('n1');
    h.set(...world());
    h.sync();
    const { g, dp } = h;
    const roleSet = (r: number) =>
      dp.policies.get(`default/prod/pol${r}`)!.inbound[0].srcIpSetIds![0];
    expect(dp.workloads.size).toBe(100);
    expect(dp.policies.size).toBe(100); // every policy selects a local pod
    expect(g.stats().rulesRendered).toBe(POLICIES + 1); // each active policy and kns.prod, once
    const initial = g.stats().selectorEvaluations;
    // From scratch this is about (sets + policies) x endpoints, which the changes below must not approach.
    expect(initial).toBeGreaterThan(100_000);

    // A remote pod changes role r3 -> r4: the sets reading "role" (10) are re-checked, nothing else.
    let s0 = g.stats();
    h.set(wep('prod', 'pod113', 'n2', '10.245.0.113', { app: 'app13', role: 'r4' }));
    let s1 = g.stats();
    expect(s1.selectorEvaluations - s0.selectorEvaluations).toBeLessThanOrEqual(ROLES);
    expect(s1.endpointsResolved - s0.endpointsResolved).toBe(0);
    expect(h.fresh()).toEqual([
      { type: 'ipset-delta', id: roleSet(3), added: [], removed: ['10.245.0.113/32'] },
      { type: 'ipset-delta', id: roleSet(4), added: ['10.245.0.113/32'], removed: [] },
    ]);

    // A local pod changes app: the policies and sets reading "app" are re-checked, and
    // that one pod's lists recomputed.
    s0 = g.stats();
    h.set(wep('prod', 'pod20', 'n1', '10.244.0.20', { app: 'app21', role: 'r0' }));
    s1 = g.stats();
    expect(s1.selectorEvaluations - s0.selectorEvaluations).toBeLessThanOrEqual(2 * POLICIES);
    expect(s1.endpointsResolved - s0.endpointsResolved).toBe(1);
    expect(s1.rulesRendered - s0.rulesRendered).toBe(0);
    const out = h.fresh();
    // pod20 leaves "app == 'app20'" (pol19's egress set); pol20 selects no local pod any
    // more, so it goes, and with it its own egress set
    expect(out.map((u) => u.type)).toEqual([
      'ipset-delta',
      'workload-update',
      'policy-remove',
      'ipset-remove',
    ]);
    expect(dp.workloads.get('prod/pod20/eth0')!.tiers[0].ingressPolicies).toEqual([
      'default/prod/pol21',
    ]);

    // A new remote pod is checked once against each active set; a deleted one costs nothing.
    s0 = g.stats();
    const extra = wep('prod', 'extra', 'n2', '10.245.9.9', { app: 'app5', role: 'r5' });
    h.set(extra);
    s1 = g.stats();
    expect(s1.selectorEvaluations - s0.selectorEvaluations).toBeLessThanOrEqual(POLICIES + ROLES);
    expect(h.fresh()).toHaveLength(2); // into the "role r5" set and the "app5" set
    s0 = g.stats();
    h.del(extra);
    expect(g.stats().selectorEvaluations - s0.selectorEvaluations).toBe(0);
    expect(h.fresh()).toHaveLength(2);
    expect(dp.errors).toEqual([]);
  });
});

// ---- incremental = from scratch -------------------------------------------------------

/** One identity per slot: every version of a slot is the same resource (name, namespace). */
const same = (rs: Resource[]): Resource[] =>
  rs.map((r) => ({ ...r, metadata: { ...r.metadata, name: rs[0].metadata.name } }));

/** Every resource slot with the versions it can take; an op sets one version or deletes. */
const SLOTS: Resource[][] = [
  [
    node('n1', '10.0.0.1/24', {}, { rack: 'a' }),
    node('n1', '10.0.0.1/16', { routeReflectorClusterID: '1.1.1.1' }, { rr: 'y' }),
  ],
  [
    node(
      'n2',
      '10.0.0.2/24',
      {},
      {},
      { ipv4VXLANTunnelAddr: '10.244.2.0', vxlanTunnelMACAddr: 'ee:00:00:00:00:02' },
    ),
    node('n2', '10.1.0.2/24', { asNumber: 65002 }, { rr: 'y' }),
  ],
  [node('n3', '10.0.0.3/24', { routeReflectorClusterID: '1.1.1.1' }), node('n3', '10.2.0.3/24')],
  [namespace('prod', { env: 'a' }), namespace('prod', { env: 'b' })],
  [namespace('dev', { env: 'a' }), namespace('dev')],
  [R('Profile', 'ksa.prod.api', { labelsToApply: { 'pcsa.team': 'core' } })],
  same([
    wep('prod', 'e1', 'n1', '10.244.1.1', { app: 'a', role: 'x' }),
    wep('prod', 'e1', 'n1', '10.244.1.1', { app: 'b', role: 'y' }),
    wep('prod', 'e1', 'n1', '10.244.1.9', { app: 'a' }, { serviceAccountName: 'api' }),
  ]),
  same([
    wep('prod', 'e2', 'n2', '10.244.2.1', { app: 'a', role: 'y' }),
    wep('prod', 'e2', 'n1', '10.244.2.1', { app: 'b', role: 'x' }),
    wep(
      'prod',
      'e2',
      'n2',
      '10.244.2.1',
      { app: 'a' },
      { ports: [{ name: 'http', protocol: 'TCP', port: 80 }] },
    ),
  ]),
  same([
    wep('dev', 'e3', 'n3', '10.244.3.1', { app: 'b' }),
    wep('dev', 'e3', 'n1', '10.244.3.1', { app: 'a', role: 'x' }, { serviceAccountName: 'api' }),
  ]),
  [
    R(
      'HostEndpoint',
      'h1',
      { node: 'n1', interfaceName: 'eth0', expectedIPs: ['10.0.0.1'] },
      { labels: { host: 'y' } },
    ),
    R('HostEndpoint', 'h1', { node: 'n1', expectedIPs: ['10.0.0.1'] }, { labels: { app: 'a' } }),
  ],
  [
    np('prod', 'p1', {
      selector: "app == 'a'",
      ingress: [{ action: 'Allow', source: { selector: "role == 'x'" } }],
    }),
    np('prod', 'p1', {
      tier: 't1',
      order: 5,
      selector: 'all()',
      types: ['Ingress', 'Egress'],
      ingress: [{ action: 'Deny', source: { namespaceSelector: "env == 'a'" } }],
      egress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['http', 443] } }],
    }),
  ],
  [
    gnp('g1', {
      selector: "app == 'b'",
      ingress: [{ action: 'Allow', source: { selector: "role == 'x'" } }],
    }),
    gnp('g1', {
      selector: 'has(host) || app == "a"',
      doNotTrack: true,
      applyOnForward: true,
      ingress: [{ action: 'Allow', source: { serviceAccounts: { selector: "team == 'core'" } } }],
    }),
    gnp('g1', {
      tier: 't1',
      namespaceSelector: "env == 'a'",
      ingress: [
        { action: 'Pass', source: { notSelector: "role == 'y'", selector: "zone == 'z'" } },
      ],
    }),
  ],
  [tier('t1', 10, 'Pass'), tier('t1')],
  [
    R(
      'NetworkSet',
      'ns1',
      { nets: ['198.51.100.0/24'] },
      { namespace: 'prod', labels: { zone: 'z' } },
    ),
    R(
      'NetworkSet',
      'ns1',
      { nets: ['198.51.100.0/25'] },
      { namespace: 'prod', labels: { role: 'x' } },
    ),
  ],
  [
    R(
      'GlobalNetworkSet',
      'gs1',
      { nets: ['203.0.113.0/24'] },
      { labels: { zone: 'z', role: 'x' } },
    ),
    R(
      'GlobalNetworkSet',
      'gs1',
      { nets: ['203.0.113.0/24', '10.244.2.1/32'] },
      { labels: { zone: 'z' } },
    ),
  ],
  [
    pool('p', '10.244.0.0/16'),
    pool('p', '10.244.0.0/16', { ipipMode: 'CrossSubnet', natOutgoing: true }),
    pool('p', '10.244.0.0/16', { vxlanMode: 'Always' }),
  ],
  [
    block('10.244.1.0/26', 'n1'),
    block('10.244.1.0/26', 'n1', [
      [9, 'n1'],
      [10, 'n3'],
    ]),
  ],
  [block('10.244.2.0/26', 'n2', [[3, 'n1']]), block('10.244.2.0/26', 'n3')],
  [
    R('BlockAffinity', 'n1-10-244-4-0-26', {
      state: 'confirmed',
      node: 'n1',
      cidr: '10.244.4.0/26',
    }),
  ],
  [
    R('BGPConfiguration', 'default', {
      nodeToNodeMeshEnabled: false,
      serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
    }),
  ],
  [
    R('BGPPeer', 'rr', { nodeSelector: 'all()', peerSelector: "rr == 'y'" }),
    R('BGPPeer', 'rr', { peerIP: '10.0.0.254', asNumber: 65100 }),
  ],
  [R('FelixConfiguration', 'default', { ipipMTU: 1400 })],
];

type Op = { slot: number; version: number | null };
const op = fc.record({
  slot: fc.nat(SLOTS.length - 1),
  version: fc.option(fc.nat(2), { nil: null }),
});

function applyOps(h: ReturnType<typeof harness>, ops: Op[]): void {
  for (const o of ops) {
    const versions = SLOTS[o.slot];
    if (o.version === null) h.del(versions[0]);
    else h.set(versions[o.version % versions.length]);
  }
}

/** The world the ops end in: for each slot, its last version (or absent). */
function finalWorld(ops: Op[]): Resource[] {
  const last = new Map<number, number | null>();
  for (const o of ops) last.set(o.slot, o.version);
  const out: Resource[] = [];
  for (const [slot, v] of [...last].sort(([a], [b]) => a - b))
    if (v !== null) out.push(SLOTS[slot][v % SLOTS[slot].length]);
  return out;
}

describe('calc graph: incremental = from scratch', () => {
  test('any sequence of sets/deletes (before and after in-sync) ends in the same dataplane state', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 15 }),
        fc.array(op, { minLength: 1, maxLength: 40 }),
        (before, after) => {
          const inc = harness('n1');
          applyOps(inc, before);
          inc.g.onStatus('in-sync');
          applyOps(inc, after);
          const scratch = harness('n1');
          scratch.set(...finalWorld([...before, ...after]));
          scratch.g.onStatus('in-sync');
          expect(inc.dp.errors).toEqual([]);
          expect(scratch.dp.errors).toEqual([]);
          expect(inc.dp.snapshot()).toEqual(scratch.dp.snapshot());
        },
      ),
      { numRuns: Number(process.env.CALC_RUNS ?? 300) },
    );
  });
});
