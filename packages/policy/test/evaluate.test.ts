// Calico semantics of the evaluator beyond Kubernetes policy: tiers and their order,
// Pass, policy order, global policies, profiles, network sets, and the explanation.
import {
  Evaluator,
  explain,
  type Endpoint,
  type Policy,
  type PolicyWorld,
  type Rule,
} from '../src';

const web: Endpoint = {
  name: 'web',
  namespace: 'prod',
  labels: { app: 'web' },
  ips: ['10.1.0.1'],
  profiles: ['allow-all'],
  ports: [{ name: 'http', port: 8080 }],
};
const db: Endpoint = {
  name: 'db',
  namespace: 'prod',
  labels: { app: 'db' },
  ips: ['10.1.0.2'],
  profiles: ['allow-all'],
};
const dev: Endpoint = {
  name: 'tool',
  namespace: 'dev',
  labels: { app: 'tool' },
  ips: ['10.2.0.1'],
  profiles: ['allow-all'],
};
const host: Endpoint = { name: 'node1-eth0', labels: { role: 'node' }, ips: ['192.168.0.10'] };

function world(policies: Policy[], extra: Partial<PolicyWorld> = {}): Evaluator {
  return new Evaluator({
    endpoints: [web, db, dev, host],
    namespaces: [
      { name: 'prod', labels: { env: 'prod' } },
      { name: 'dev', labels: { env: 'dev' } },
    ],
    profiles: [
      { name: 'allow-all', ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] },
    ],
    policies,
    ...extra,
  });
}

const gnp = (name: string, spec: Policy['spec']): Policy => ({
  kind: 'GlobalNetworkPolicy',
  metadata: { name },
  spec,
});
const np = (name: string, namespace: string, spec: Policy['spec']): Policy => ({
  kind: 'NetworkPolicy',
  metadata: { name, namespace },
  spec,
});
const toDb = { srcIp: '10.1.0.1', dstIp: '10.1.0.2', protocol: 'TCP' as const, dstPort: 5432 };

describe('Calico semantics', () => {
  test('the first matching rule by policy order decides', () => {
    const e = world([
      np('deny', 'prod', { selector: "app == 'db'", order: 20, ingress: [{ action: 'Deny' }] }),
      np('allow', 'prod', {
        selector: "app == 'db'",
        order: 10,
        ingress: [{ action: 'Allow', source: { selector: "app == 'web'" } }],
      }),
    ]);
    expect(e.evaluate(toDb).allowed).toBe(true);
    expect(e.evaluate({ ...toDb, srcIp: '10.2.0.1' }).allowed).toBe(false);
  });

  test('a tier with no matching rule denies; Pass hands over to the next tier', () => {
    const tiers = [
      { name: 'security', order: 100 },
      { name: 'platform', order: 200 },
    ];
    const security = (action: 'Pass' | 'Allow') =>
      gnp('security.gate', {
        tier: 'security',
        selector: 'all()',
        ingress: [{ action, source: { namespaceSelector: "env == 'prod'" } }],
      });
    const platform = gnp('platform.db', {
      tier: 'platform',
      selector: "app == 'db'",
      ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [5432] } }],
    });
    // Pass from prod goes on to the platform tier, which denies 5432
    expect(world([security('Pass'), platform], { tiers }).evaluate(toDb).allowed).toBe(false);
    // Allow in the first tier ends evaluation
    expect(world([security('Allow'), platform], { tiers }).evaluate(toDb).allowed).toBe(true);
    // traffic from dev matches no rule in the security tier: its default action denies
    const v = world([security('Pass'), platform], { tiers }).evaluate({
      ...toDb,
      srcIp: '10.2.0.1',
    });
    expect(v.allowed).toBe(false);
    expect(v.ingress!.steps.at(-1)).toMatchObject({ tier: 'security', action: 'Deny' });
  });

  test('a tier whose default action is Pass lets unmatched traffic through to the profiles', () => {
    const tiers = [{ name: 'observe', order: 1, defaultAction: 'Pass' as const }];
    const e = world(
      [gnp('observe.log', { tier: 'observe', selector: 'all()', ingress: [{ action: 'Log' }] })],
      { tiers },
    );
    const v = e.evaluate(toDb);
    expect(v.allowed).toBe(true);
    expect(v.ingress!.steps.map((s) => s.action)).toEqual(['Log', 'Pass', 'Allow']);
  });

  test('a namespaced policy applies only in its namespace, and its rule selectors too', () => {
    const e = world([
      np('db-from-tool', 'prod', {
        selector: "app == 'db'",
        ingress: [{ action: 'Allow', source: { selector: "app == 'tool'" } }],
      }),
    ]);
    // tool lives in dev: the selector is scoped to prod, so it does not match
    expect(e.evaluate({ ...toDb, srcIp: '10.2.0.1' }).allowed).toBe(false);
    const e2 = world([
      np('db-from-tool', 'prod', {
        selector: "app == 'db'",
        ingress: [
          {
            action: 'Allow',
            source: { selector: "app == 'tool'", namespaceSelector: "env == 'dev'" },
          },
        ],
      }),
    ]);
    expect(e2.evaluate({ ...toDb, srcIp: '10.2.0.1' }).allowed).toBe(true);
  });

  test('a global policy selects across namespaces and host endpoints with global()', () => {
    const e = world([
      gnp('hosts', {
        selector: 'global()',
        ingress: [
          { action: 'Deny', protocol: 'TCP', destination: { ports: ['22'] } },
          { action: 'Allow' },
        ],
      }),
    ]);
    expect(
      e.evaluate({ srcIp: '10.1.0.1', dstIp: '192.168.0.10', protocol: 'TCP', dstPort: 22 })
        .allowed,
    ).toBe(false);
    expect(
      e.evaluate({ srcIp: '10.1.0.1', dstIp: '192.168.0.10', protocol: 'TCP', dstPort: 443 })
        .allowed,
    ).toBe(true);
    expect(e.evaluate(toDb).allowed).toBe(true); // pods are not global(): profile allows
  });

  test('named ports, port ranges, notPorts, notNets, notProtocol, ICMP type', () => {
    const rules = (r: Policy['spec']['ingress']) =>
      world([np('p', 'prod', { selector: "app == 'web'", ingress: r })]);
    const toWeb = (port: number, extra = {}) => ({
      srcIp: '10.1.0.2',
      dstIp: '10.1.0.1',
      protocol: 'TCP' as const,
      dstPort: port,
      ...extra,
    });
    expect(
      rules([{ action: 'Allow', protocol: 'TCP', destination: { ports: ['http'] } }]).evaluate(
        toWeb(8080),
      ).allowed,
    ).toBe(true);
    expect(
      rules([{ action: 'Allow', protocol: 'TCP', destination: { ports: ['http'] } }]).evaluate(
        toWeb(80),
      ).allowed,
    ).toBe(false);
    expect(
      rules([
        { action: 'Allow', destination: { ports: ['8000:8100'], notPorts: [8080] } },
      ]).evaluate(toWeb(8080)).allowed,
    ).toBe(false);
    expect(
      rules([
        { action: 'Allow', destination: { ports: ['8000:8100'], notPorts: [8080] } },
      ]).evaluate(toWeb(8081)).allowed,
    ).toBe(true);
    expect(
      rules([
        { action: 'Allow', source: { nets: ['10.1.0.0/16'], notNets: ['10.1.0.2/32'] } },
      ]).evaluate(toWeb(1)).allowed,
    ).toBe(false);
    expect(rules([{ action: 'Allow', notProtocol: 'UDP' }]).evaluate(toWeb(1)).allowed).toBe(true);
    const ping = {
      srcIp: '10.1.0.2',
      dstIp: '10.1.0.1',
      protocol: 'ICMP' as const,
      icmpType: 8,
      icmpCode: 0,
    };
    expect(
      rules([{ action: 'Allow', protocol: 'ICMP', icmp: { type: 8 } }]).evaluate(ping).allowed,
    ).toBe(true);
    expect(
      rules([{ action: 'Allow', protocol: 'ICMP', icmp: { type: 0 } }]).evaluate(ping).allowed,
    ).toBe(false);
  });

  test('an empty list is no constraint, as in Calico (not "matches nothing")', () => {
    const w = (r: Rule) => world([np('p', 'prod', { selector: "app == 'web'", ingress: [r] })]);
    const flow = { srcIp: '10.1.0.2', dstIp: '10.1.0.1', protocol: 'TCP' as const, dstPort: 80 };
    for (const side of [{ ports: [] }, { nets: [] }, { notNets: [] }, { notPorts: [] }])
      expect(
        w({ action: 'Allow', protocol: 'TCP', destination: side }).evaluate(flow).allowed,
      ).toBe(true);
  });

  test('a network set stands for its addresses in a selector', () => {
    const e = world(
      [
        gnp('web-from-partners', {
          selector: "app == 'web'",
          ingress: [{ action: 'Allow', source: { selector: "kind == 'partner'" } }],
        }),
      ],
      {
        networkSets: [{ name: 'partners', labels: { kind: 'partner' }, nets: ['203.0.113.0/24'] }],
      },
    );
    const from = (ip: string) =>
      e.evaluate({ srcIp: ip, dstIp: '10.1.0.1', protocol: 'TCP', dstPort: 443 }).allowed;
    expect(from('203.0.113.9')).toBe(true);
    expect(from('198.51.100.1')).toBe(false);
  });

  test("a rule side's selector fields combine as Calico's getEndpointSelector", () => {
    const partners = { name: 'partners', labels: { app: 'tool' }, nets: ['203.0.113.0/24'] };
    const toWeb = (e: Evaluator, srcIp: string) =>
      e.evaluate({ srcIp, dstIp: '10.1.0.1', protocol: 'TCP', dstPort: 80 }).allowed;
    const only = (source: Rule['source'], namespaced = true) =>
      world(
        [
          namespaced
            ? np('p', 'prod', { selector: "app == 'web'", ingress: [{ action: 'Allow', source }] })
            : gnp('p', { selector: "app == 'web'", ingress: [{ action: 'Allow', source }] }),
        ],
        { networkSets: [partners] },
      );
    // notSelector alone in a namespaced policy: its own namespace only, minus what it picks
    const notDb = only({ notSelector: "app == 'db'" });
    expect(toWeb(notDb, '10.1.0.2')).toBe(false); // db: picked by notSelector
    expect(toWeb(notDb, '10.2.0.1')).toBe(false); // dev/tool: other namespace
    expect(toWeb(notDb, '192.0.2.1')).toBe(false); // not an endpoint of prod
    // ... in a global policy: everything but what it picks, network sets included
    const notTool = only({ notSelector: "app == 'tool'" }, false);
    expect(toWeb(notTool, '192.0.2.1')).toBe(true);
    expect(toWeb(notTool, '10.2.0.1')).toBe(false);
    expect(toWeb(notTool, '203.0.113.5')).toBe(false); // the network set is picked too
    // namespaceSelector all(): any namespace, not global network sets or host endpoints
    const anyNs = only({ namespaceSelector: 'all()' }, false);
    expect(toWeb(anyNs, '10.2.0.1')).toBe(true);
    expect(toWeb(anyNs, '203.0.113.5')).toBe(false);
    expect(toWeb(anyNs, '192.168.0.10')).toBe(false);
    // service accounts alone in a namespaced policy: scoped to its namespace
    const sa = new Evaluator({
      endpoints: [web, { ...db, serviceAccount: 'sa1' }, { ...dev, serviceAccount: 'sa1' }],
      profiles: [
        { name: 'allow-all', ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] },
      ],
      policies: [
        np('p', 'prod', {
          selector: "app == 'web'",
          ingress: [{ action: 'Allow', source: { serviceAccounts: { names: ['sa1'] } } }],
        }),
      ],
    });
    expect(toWeb(sa, '10.1.0.2')).toBe(true);
    expect(toWeb(sa, '10.2.0.1')).toBe(false);
  });

  test('service accounts by name and selector', () => {
    const withSa = { ...web, serviceAccount: 'frontend', serviceAccountLabels: { team: 'a' } };
    const e = new Evaluator({
      endpoints: [withSa, db],
      profiles: [
        { name: 'allow-all', ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] },
      ],
      policies: [
        np('db', 'prod', {
          selector: "app == 'db'",
          ingress: [
            {
              action: 'Allow',
              source: { serviceAccounts: { names: ['frontend'], selector: "team == 'a'" } },
            },
          ],
        }),
      ],
    });
    expect(e.evaluate(toDb).allowed).toBe(true);
  });

  test('without policy or profile, traffic is denied', () => {
    const lonely: Endpoint = { name: 'x', namespace: 'prod', labels: {}, ips: ['10.9.0.1'] };
    const e = new Evaluator({ endpoints: [lonely], policies: [] });
    expect(
      e.evaluate({ srcIp: '1.1.1.1', dstIp: '10.9.0.1', protocol: 'TCP', dstPort: 1 }).allowed,
    ).toBe(false);
  });

  test('explain names the deciding tier, policy and rule', () => {
    const e = world([
      np('db', 'prod', {
        selector: "app == 'db'",
        order: 5,
        ingress: [{ action: 'Deny', source: { selector: "app == 'tool'" } }, { action: 'Allow' }],
      }),
    ]);
    const text = explain(e.evaluate(toDb), toDb);
    expect(text).toContain('10.1.0.1 -> 10.1.0.2:5432 TCP: ALLOWED');
    expect(text).toContain('egress at prod/web: allow');
    expect(text).toContain('profile allow-all rule 0: Allow');
    expect(text).toContain('ingress at prod/db: allow');
    expect(text).toContain('tier default / policy prod/db rule 1: Allow');
  });

  test('evaluation does not depend on the order policies are given in', () => {
    const ps = [
      np('a', 'prod', {
        selector: 'all()',
        order: 1,
        ingress: [{ action: 'Pass', source: { selector: "app == 'web'" } }],
      }),
      np('b', 'prod', { selector: 'all()', order: 1, ingress: [{ action: 'Deny' }] }),
      gnp('c', { tier: 't2', selector: 'all()', ingress: [{ action: 'Allow' }] }),
    ];
    const tiers = [
      { name: 'default', order: 1 },
      { name: 't2', order: 2 },
    ];
    const flows = [
      toDb,
      { ...toDb, srcIp: '10.2.0.1' },
      { ...toDb, dstIp: '10.1.0.1', srcIp: '10.1.0.2' },
    ];
    const a = flows.map((f) => world(ps, { tiers }).evaluate(f).allowed);
    const b = flows.map((f) => world([...ps].reverse(), { tiers }).evaluate(f).allowed);
    expect(b).toEqual(a);
    expect(a).toEqual([true, false, false]);
  });
});

describe('host endpoints: applyOnForward, preDNAT, doNotTrack', () => {
  // node1-eth0 (192.168.0.10) is a host endpoint; web (10.1.0.1) is a pod behind it.
  const fromOutside = (dstIp: string, port: number, srcIp = '198.51.100.7') => ({
    srcIp,
    dstIp,
    protocol: 'TCP' as const,
    dstPort: port,
    via:
      dstIp === '192.168.0.10'
        ? undefined
        : [{ hostEndpoint: 'node1-eth0', direction: 'Ingress' as const }],
  });
  const hostPolicies = (extra: Policy[]) =>
    world([
      gnp('host-allow', {
        selector: "role == 'node'",
        order: 100,
        ingress: [{ action: 'Allow' }],
        egress: [{ action: 'Allow' }],
      }),
      ...extra,
    ]);

  test('normal host policy polices traffic to the host, not traffic forwarded through it', () => {
    const e = hostPolicies([
      gnp('no-ssh', {
        selector: "role == 'node'",
        order: 1,
        ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [22] } }],
      }),
    ]);
    expect(e.evaluate(fromOutside('192.168.0.10', 22)).allowed).toBe(false);
    expect(e.evaluate(fromOutside('10.1.0.1', 22)).allowed).toBe(true);
  });

  test('applyOnForward policy also polices forwarded traffic', () => {
    const e = hostPolicies([
      gnp('no-ssh-fwd', {
        selector: "role == 'node'",
        order: 1,
        applyOnForward: true,
        ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [22] } }],
      }),
    ]);
    const v = e.evaluate(fromOutside('10.1.0.1', 22));
    expect(v.allowed).toBe(false);
    expect(v.forwarded![0]).toMatchObject({ endpoint: 'node1-eth0', allowed: false });
    expect(explain(v, fromOutside('10.1.0.1', 22))).toContain(
      'ingress at node1-eth0 (forwarded through): deny',
    );
  });

  test('preDNAT: a Deny drops before anything else; an Allow to the host skips normal policy, forwarded it does not', () => {
    const deny = hostPolicies([
      gnp('block-net', {
        selector: "role == 'node'",
        preDNAT: true,
        applyOnForward: true,
        ingress: [{ action: 'Deny', source: { nets: ['198.51.100.0/24'] } }],
      }),
    ]);
    expect(deny.evaluate(fromOutside('10.1.0.1', 80)).allowed).toBe(false);
    expect(deny.evaluate(fromOutside('192.168.0.10', 80)).allowed).toBe(false);
    expect(deny.evaluate(fromOutside('10.1.0.1', 80, '203.0.113.1')).allowed).toBe(true);
    const allowThenNormalDeny = world([
      gnp('pre-allow', {
        selector: "role == 'node'",
        preDNAT: true,
        applyOnForward: true,
        ingress: [{ action: 'Allow' }],
      }),
      gnp('normal-deny', {
        selector: "role == 'node'",
        applyOnForward: true,
        ingress: [{ action: 'Deny' }],
      }),
    ]);
    // to the host: accepted at pre-DNAT (as Felix: filter INPUT accepts what mangle accepted)
    expect(allowThenNormalDeny.evaluate(fromOutside('192.168.0.10', 80)).allowed).toBe(true);
    // forwarded to a pod: applyOnForward normal policy still applies
    expect(allowThenNormalDeny.evaluate(fromOutside('10.1.0.1', 80)).allowed).toBe(false);
  });

  test('doNotTrack: an Allow skips normal policy entirely', () => {
    const e = world([
      gnp('untracked-80', {
        selector: "role == 'node'",
        doNotTrack: true,
        applyOnForward: true,
        ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [80] } }],
      }),
      gnp('normal-deny', { selector: "role == 'node'", ingress: [{ action: 'Deny' }] }),
    ]);
    const v = e.evaluate(fromOutside('192.168.0.10', 80));
    expect(v.allowed).toBe(true);
    expect(v.ingress!.steps).toEqual([
      expect.objectContaining({ policy: 'untracked-80', action: 'Allow', note: 'untracked' }),
    ]);
    expect(e.evaluate(fromOutside('192.168.0.10', 81)).allowed).toBe(false);
  });

  test('preDNAT and doNotTrack policies do not apply to workload endpoints', () => {
    const e = world([
      gnp('pre', {
        selector: 'all()',
        preDNAT: true,
        applyOnForward: true,
        ingress: [{ action: 'Deny' }],
      }),
    ]);
    expect(e.evaluate(toDb).allowed).toBe(true);
  });
});

test('profile labelsToApply are inherited, so pcns./pcsa. selectors work as in Calico', () => {
  const ep: Endpoint = {
    name: 'api',
    namespace: 'prod',
    labels: { app: 'api' },
    ips: ['10.3.0.1'],
    profiles: ['kns.prod', 'ksa.prod.default'],
  };
  const e = new Evaluator({
    endpoints: [ep, web],
    profiles: [
      {
        name: 'kns.prod',
        labelsToApply: { 'pcns.env': 'prod' },
        ingress: [{ action: 'Allow' }],
        egress: [{ action: 'Allow' }],
      },
      { name: 'ksa.prod.default', labelsToApply: { 'pcsa.name': 'default' } },
      { name: 'allow-all', ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] },
    ],
    policies: [
      gnp('env', {
        selector: "pcns.env == 'prod' && pcsa.name == 'default'",
        ingress: [{ action: 'Deny' }],
      }),
    ],
  });
  expect(
    e.evaluate({ srcIp: '10.1.0.1', dstIp: '10.3.0.1', protocol: 'TCP', dstPort: 1 }).allowed,
  ).toBe(false);
  expect(
    e.evaluate({ srcIp: '10.3.0.1', dstIp: '10.1.0.1', protocol: 'TCP', dstPort: 1 }).allowed,
  ).toBe(true);
});

describe('rule nets read addresses as @tortie/netaddr does (issue 17, one way to read an address)', () => {
  const web6: Endpoint = {
    name: 'web6',
    namespace: 'prod',
    labels: { app: 'web6' },
    ips: ['fd00::1'],
  };
  const allowFrom = (net: string) =>
    new Evaluator({
      endpoints: [web6],
      namespaces: [{ name: 'prod', labels: {} }],
      profiles: [],
      policies: [
        np('p', 'prod', {
          selector: "app == 'web6'",
          ingress: [{ action: 'Allow', source: { nets: [net] } }],
        }),
      ],
    });
  test.each([
    // the evaluator once said the first is outside: it read the dotted tail as hex groups
    ['::ffff:a00:0/120', '::ffff:10.0.0.1', true],
    ['::ffff:10.0.0.0/120', '::ffff:a00:1', true],
    ['::ffff:a00:0/120', '::ffff:10.0.1.1', false],
    ['fd00:0000::0/64', 'FD00::5', true], // leading zeros in a group, zero-compressed, upper case
    ['fd00::/64', 'fd00:0:0:0:0:0:0:5', true],
    ['fd00::/64', 'fd01::5', false],
  ])('source %s, from %s: allowed %s', (net, srcIp, allowed) => {
    const flow = { srcIp, dstIp: 'fd00::1', protocol: 'TCP' as const, dstPort: 80 };
    expect(allowFrom(net).evaluate(flow).allowed).toBe(allowed);
  });
});

describe("rules' services match (Calico's ServiceMatch, resolved through EndpointSlices)", () => {
  // Service prod/web: endpoint web (10.1.0.1) on TCP 8080 and UDP 53; a second slice adds
  // db (10.1.0.2) in IPv6 form too; dev/web is another Service of the same name
  const slices: PolicyWorld['endpointSlices'] = [
    {
      namespace: 'prod',
      serviceName: 'web',
      ports: [{ port: 8080 }, { protocol: 'UDP', port: 53 }],
      endpoints: [{ addresses: ['10.1.0.1'] }],
    },
    {
      namespace: 'dev',
      serviceName: 'web',
      ports: [{ protocol: 'TCP', port: 9090 }],
      endpoints: [{ addresses: ['10.2.0.1'] }],
    },
  ];
  // db may send only to Service web; everything else is denied by the policy's tier
  const egressToWeb = (services: { name: string; namespace?: string }) =>
    world(
      [
        np('db-out', 'prod', {
          selector: "app == 'db'",
          egress: [{ action: 'Allow', destination: { services } }],
        }),
      ],
      { endpointSlices: slices },
    );
  const fromDb = (e: Evaluator, dstIp: string, protocol: 'TCP' | 'UDP', dstPort: number) =>
    e.evaluate({ srcIp: '10.1.0.2', dstIp, protocol, dstPort }).allowed;

  test('destination: the endpoints on their slice ports, each with its protocol', () => {
    const e = egressToWeb({ name: 'web' });
    expect(fromDb(e, '10.1.0.1', 'TCP', 8080)).toBe(true);
    expect(fromDb(e, '10.1.0.1', 'UDP', 53)).toBe(true);
    // another port, a port of another protocol, another address: not the Service
    expect(fromDb(e, '10.1.0.1', 'TCP', 80)).toBe(false);
    expect(fromDb(e, '10.1.0.1', 'TCP', 53)).toBe(false);
    expect(fromDb(e, '10.1.0.1', 'UDP', 8080)).toBe(false);
    expect(fromDb(e, '10.2.0.1', 'TCP', 9090)).toBe(false);
  });

  test("without a namespace, the policy's own; with one, that namespace's Service", () => {
    const e = egressToWeb({ name: 'web', namespace: 'dev' });
    expect(fromDb(e, '10.2.0.1', 'TCP', 9090)).toBe(true);
    expect(fromDb(e, '10.1.0.1', 'TCP', 8080)).toBe(false);
    // a global policy naming no namespace (Calico's validator refuses it) matches nothing
    const g = world(
      [
        gnp('out', {
          selector: "app == 'db'",
          egress: [{ action: 'Allow', destination: { services: { name: 'web' } } }],
        }),
      ],
      { endpointSlices: slices },
    );
    expect(fromDb(g, '10.1.0.1', 'TCP', 8080)).toBe(false);
  });

  test('endpoints follow the slices: none, added, IPv6 text forms', () => {
    const policy = np('db-out', 'prod', {
      selector: "app == 'db'",
      egress: [{ action: 'Allow', destination: { services: { name: 'web' } } }],
    });
    expect(fromDb(world([policy]), '10.1.0.1', 'TCP', 8080)).toBe(false);
    const v6 = { ...dev, name: 'v6', ips: ['fd00::a'] };
    const e = new Evaluator({
      endpoints: [web, db, v6],
      profiles: [
        { name: 'allow-all', ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] },
      ],
      policies: [policy],
      endpointSlices: [
        ...slices!,
        {
          namespace: 'prod',
          serviceName: 'web',
          ports: [{ port: 8080 }],
          endpoints: [{ addresses: ['fd00:0::000a', 'web.example'] }],
        },
      ],
    });
    expect(
      e.evaluate({ srcIp: '10.1.0.2', dstIp: 'fd00::a', protocol: 'TCP', dstPort: 8080 }).allowed,
    ).toBe(true);
  });

  test('ICMP to a Service matches nothing (as Felix): a Deny of it leaves the rules after it', () => {
    // the Service's (ip, protocol, port) hold TCP/UDP/SCTP only: no ICMP packet is in them
    const e = world(
      [
        np('db-out', 'prod', {
          selector: "app == 'db'",
          egress: [
            { action: 'Deny', protocol: 'ICMP', destination: { services: { name: 'web' } } },
            { action: 'Allow', destination: { services: { name: 'web' } } },
            { action: 'Allow', protocol: 'ICMP' },
          ],
        }),
      ],
      { endpointSlices: slices },
    );
    expect(
      e.evaluate({ srcIp: '10.1.0.2', dstIp: '10.1.0.1', protocol: 'ICMP', icmpType: 8 }).allowed,
    ).toBe(true);
    expect(fromDb(e, '10.1.0.1', 'TCP', 8080)).toBe(true);
    // and an Allow of it admits no ICMP
    const allowOnly = world(
      [
        np('db-out', 'prod', {
          selector: "app == 'db'",
          egress: [
            { action: 'Allow', protocol: 'ICMP', destination: { services: { name: 'web' } } },
          ],
        }),
      ],
      { endpointSlices: slices },
    );
    expect(
      allowOnly.evaluate({ srcIp: '10.1.0.2', dstIp: '10.1.0.1', protocol: 'ICMP', icmpType: 8 })
        .allowed,
    ).toBe(false);
  });

  test('source: the endpoint addresses, any port', () => {
    const e = world(
      [
        np('db-in', 'prod', {
          selector: "app == 'db'",
          ingress: [
            {
              action: 'Allow',
              protocol: 'TCP',
              source: { services: { name: 'web' } },
              destination: { ports: [5432] },
            },
          ],
        }),
      ],
      { endpointSlices: slices },
    );
    const toDb = (srcIp: string, dstPort: number) =>
      e.evaluate({ srcIp, dstIp: '10.1.0.2', protocol: 'TCP', srcPort: 40000, dstPort }).allowed;
    expect(toDb('10.1.0.1', 5432)).toBe(true);
    expect(toDb('10.1.0.1', 5433)).toBe(false);
    expect(toDb('10.2.0.1', 5432)).toBe(false);
  });
});
