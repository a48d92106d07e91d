// Calculation graph, policy side: endpoints and their tiers, active policies and
// profiles, IP sets (sharing, deltas, namespaces, service accounts, named ports,
// network sets), nothing before in-sync, removals leave nothing behind.
import { gnp, harness, namespace, np, ofType, R, tier, wep } from './calc-fixtures';

const web = (node = 'n1', labels: Record<string, string> = { app: 'web' }) =>
  wep('prod', 'web', node, '10.244.1.2', labels);

describe('calc graph: policy', () => {
  test('nothing before in-sync, then the whole state in Felix order, then in-sync', () => {
    const { dp, set, sync } = harness();
    set(
      namespace('prod'),
      web(),
      np('prod', 'allow-db', {
        selector: "app == 'web'",
        ingress: [{ action: 'Allow', source: { selector: "role == 'db'" } }],
      }),
      wep('prod', 'db', 'n2', '10.244.2.7', { role: 'db' }),
    );
    expect(dp.log).toEqual([]);
    const out = sync();
    expect(out.map((u) => u.type)).toEqual([
      'ipset-update',
      'policy-update',
      'profile-update',
      'workload-update',
      'config-update',
      'host-update',
      'host-addresses',
      'route-update',
      'bgp-update',
      'in-sync',
    ]);
    expect(dp.errors).toEqual([]);
    // a second in-sync (after a datastore reconnect) sends nothing again
    const again = harness();
    again.g.onStatus('in-sync');
    again.g.onStatus('resyncing');
    again.g.onStatus('in-sync');
    expect(ofType(again.dp.log, 'in-sync')).toHaveLength(1);
  });

  test('a namespaced and a global policy in two tiers select a local pod: exact lists and rules', () => {
    const { dp, set, sync } = harness();
    set(
      namespace('prod'),
      tier('security', 100, 'Pass'),
      web(),
      np('prod', 'web-in', {
        order: 10,
        selector: "app == 'web'",
        ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [80, '8000:8080'] } }],
      }),
      gnp('block-bad', {
        tier: 'security',
        order: 1,
        selector: 'all()',
        types: ['Ingress', 'Egress'],
        ingress: [{ action: 'Deny', source: { nets: ['192.0.2.0/24'] } }],
        egress: [{ action: 'Pass' }],
      }),
      gnp('other-ns', { namespaceSelector: "team == 'x'", ingress: [{ action: 'Deny' }] }),
    );
    const out = sync();
    const [w] = ofType(out, 'workload-update');
    expect(w.endpoint).toEqual({
      id: 'prod/web/eth0',
      ifaceName: 'caliweb',
      ipv4Nets: ['10.244.1.2/32'],
      ipv6Nets: [],
      tiers: [
        {
          name: 'security',
          defaultAction: 'pass',
          ingressPolicies: ['security/block-bad'],
          egressPolicies: ['security/block-bad'],
        },
        {
          name: 'default',
          defaultAction: 'deny',
          ingressPolicies: ['default/prod/web-in'],
          egressPolicies: [],
        },
      ],
      profileIds: ['kns.prod'],
    });
    const policies = ofType(out, 'policy-update');
    expect(policies.map((p) => p.id).sort()).toEqual(['default/prod/web-in', 'security/block-bad']);
    const webIn = policies.find((p) => p.id === 'default/prod/web-in')!;
    expect(webIn.outbound).toEqual([]);
    expect(webIn.inbound).toEqual([
      {
        action: 'allow',
        protocol: 6,
        dstPorts: [
          { first: 80, last: 80 },
          { first: 8000, last: 8080 },
        ],
        ruleId: expect.stringMatching(/^[\w-]{16}$/),
      },
    ]);
    const bad = policies.find((p) => p.id === 'security/block-bad')!;
    expect(bad.inbound).toMatchObject([{ action: 'deny', srcNets: ['192.0.2.0/24'] }]);
    expect(bad.outbound).toMatchObject([{ action: 'pass' }]);
    // the policy selecting other namespaces is not sent
    expect(policies.find((p) => p.id === 'default/other-ns')).toBeUndefined();
    expect(dp.snapshot().profiles['kns.prod'].inbound).toMatchObject([{ action: 'allow' }]);
  });

  test('policy and tier order: order then name, tiers without order last, default tier at 1e6', () => {
    const { dp, set, sync } = harness();
    const allow = [{ action: 'Allow' }];
    set(
      web(),
      tier('zeta', 5),
      tier('late'),
      tier('alpha'),
      gnp('b', { order: 1, ingress: allow }),
      gnp('a', { order: 1, ingress: allow }),
      gnp('c', { order: 0.5, ingress: allow }),
      gnp('none', { ingress: allow }),
      gnp('z1', { tier: 'zeta', ingress: allow }),
      gnp('l1', { tier: 'late', ingress: allow }),
      gnp('a1', { tier: 'alpha', ingress: allow }),
    );
    sync();
    const w = dp.workloads.get('prod/web/eth0')!;
    expect(w.tiers.map((t) => [t.name, t.ingressPolicies])).toEqual([
      ['zeta', ['zeta/z1']],
      ['default', ['default/c', 'default/a', 'default/b', 'default/none']],
      ['alpha', ['alpha/a1']],
      ['late', ['late/l1']],
    ]);
  });

  test('two rules with the same selector (written differently) share one IP set', () => {
    const { dp, set, sync } = harness();
    set(
      web(),
      wep('prod', 'db1', 'n2', '10.244.2.7', { role: 'db', tier: 'back' }),
      wep('prod', 'db2', 'n3', '10.244.3.9', { role: 'db', tier: 'front' }),
      np('prod', 'p1', {
        selector: "app == 'web'",
        ingress: [{ action: 'Allow', source: { selector: "role == 'db' && tier == 'back'" } }],
      }),
      np('prod', 'p2', {
        selector: "app == 'web'",
        ingress: [
          { action: 'Allow', source: { selector: '(tier == "back") && role == \'db\'' } },
          { action: 'Deny', source: { selector: "role == 'db'" } },
        ],
      }),
    );
    const out = sync();
    const sets = ofType(out, 'ipset-update');
    expect(sets).toHaveLength(2);
    const p1 = dp.policies.get('default/prod/p1')!;
    const p2 = dp.policies.get('default/prod/p2')!;
    expect(p1.inbound[0].srcIpSetIds).toEqual(p2.inbound[0].srcIpSetIds);
    const shared = p1.inbound[0].srcIpSetIds![0];
    expect(shared).toMatch(/^[\w-]{20}$/);
    expect(sets.find((s) => s.id === shared)).toEqual({
      type: 'ipset-update',
      id: shared,
      setType: 'hash:net',
      ipVersion: 4,
      members: ['10.244.2.7/32'],
    });
    const all = p2.inbound[1].srcIpSetIds![0];
    expect([...dp.ipsets.get(all)!].sort()).toEqual(['10.244.2.7/32', '10.244.3.9/32']);
  });

  test('a label change moves a remote pod in and out of a set: exact deltas, no workload-update', () => {
    const { dp, set, sync, fresh } = harness();
    set(
      web(),
      np('prod', 'p', {
        selector: "app == 'web'",
        ingress: [{ action: 'Allow', source: { selector: "role == 'db'" } }],
      }),
      wep('prod', 'db', 'n2', '10.244.2.7', { role: 'db' }),
    );
    sync();
    const id = dp.policies.get('default/prod/p')!.inbound[0].srcIpSetIds![0];
    set(wep('prod', 'db', 'n2', '10.244.2.7', { role: 'cache' }));
    expect(fresh()).toEqual([{ type: 'ipset-delta', id, added: [], removed: ['10.244.2.7/32'] }]);
    set(wep('prod', 'other', 'n3', '10.244.3.3', { role: 'db' }));
    expect(fresh()).toEqual([{ type: 'ipset-delta', id, added: ['10.244.3.3/32'], removed: [] }]);
    // an unrelated label: nothing at all
    set(wep('prod', 'other', 'n3', '10.244.3.3', { role: 'db', version: '2' }));
    expect(fresh()).toEqual([]);
    expect(dp.workloads.size).toBe(1);
  });

  test('namespace labels come from the kns profile; a namespace relabel moves its pods', () => {
    const { dp, set, sync, fresh } = harness();
    set(
      namespace('prod'),
      namespace('dev', { env: 'dev' }),
      namespace('qa', { env: 'qa' }),
      web(),
      wep('dev', 'a', 'n2', '10.244.2.1'),
      wep('qa', 'b', 'n2', '10.244.2.2'),
      np('prod', 'from-dev', {
        selector: "app == 'web'",
        ingress: [{ action: 'Allow', source: { namespaceSelector: "env == 'dev'" } }],
      }),
    );
    sync();
    const id = dp.policies.get('default/prod/from-dev')!.inbound[0].srcIpSetIds![0];
    expect([...dp.ipsets.get(id)!]).toEqual(['10.244.2.1/32']);
    set(namespace('qa', { env: 'dev' }));
    expect(fresh()).toEqual([{ type: 'ipset-delta', id, added: ['10.244.2.2/32'], removed: [] }]);
  });

  test('a selector in a namespaced policy means its own namespace; with namespaceSelector, those namespaces', () => {
    const { dp, set, sync } = harness();
    set(
      namespace('prod'),
      namespace('dev'),
      web(),
      wep('prod', 'x', 'n2', '10.244.2.1', { role: 'db' }),
      wep('dev', 'y', 'n2', '10.244.2.2', { role: 'db' }),
      R('GlobalNetworkSet', 'dbs', { nets: ['198.51.100.0/24'] }, { labels: { role: 'db' } }),
      np('prod', 'p', {
        selector: "app == 'web'",
        ingress: [
          { action: 'Allow', source: { selector: "role == 'db'" } },
          { action: 'Allow', source: { selector: "role == 'db'", namespaceSelector: 'all()' } },
        ],
      }),
      gnp('g', {
        selector: 'all()',
        ingress: [{ action: 'Allow', source: { selector: "role == 'db'" } }],
      }),
    );
    sync();
    const [own, any] = dp.policies.get('default/prod/p')!.inbound.map((r) => r.srcIpSetIds![0]);
    const global = dp.policies.get('default/g')!.inbound[0].srcIpSetIds![0];
    expect([...dp.ipsets.get(own)!]).toEqual(['10.244.2.1/32']);
    expect([...dp.ipsets.get(any)!].sort()).toEqual(['10.244.2.1/32', '10.244.2.2/32']);
    // namespaceSelector all() is "any namespace" (Calico): global things are left out,
    // which a global policy's unscoped selector picks
    expect(global).not.toBe(any);
    expect([...dp.ipsets.get(global)!].sort()).toEqual([
      '10.244.2.1/32',
      '10.244.2.2/32',
      '198.51.100.0/24',
    ]);
  });

  test('service accounts: names and selector on the ksa profile labels', () => {
    const { dp, set, sync } = harness();
    set(
      R('Profile', 'ksa.prod.api', { labelsToApply: { 'pcsa.team': 'core' } }),
      web(),
      wep('prod', 'a', 'n2', '10.244.2.1', {}, { serviceAccountName: 'api' }),
      wep('prod', 'b', 'n2', '10.244.2.2', {}, { serviceAccountName: 'batch' }),
      np('prod', 'p', {
        selector: "app == 'web'",
        ingress: [
          { action: 'Allow', source: { serviceAccounts: { names: ['api', 'batch'] } } },
          { action: 'Allow', source: { serviceAccounts: { selector: "team == 'core'" } } },
        ],
      }),
    );
    sync();
    const [byName, bySel] = dp.policies
      .get('default/prod/p')!
      .inbound.map((r) => r.srcIpSetIds![0]);
    expect([...dp.ipsets.get(byName)!].sort()).toEqual(['10.244.2.1/32', '10.244.2.2/32']);
    expect([...dp.ipsets.get(bySel)!]).toEqual(['10.244.2.1/32']);
  });

  test('policy serviceAccountSelector and GNP namespaceSelector choose the endpoints', () => {
    const { dp, set, sync } = harness();
    set(
      namespace('prod', { env: 'prod' }),
      R('Profile', 'ksa.prod.web', { labelsToApply: { 'pcsa.kind': 'frontend' } }),
      wep('prod', 'web', 'n1', '10.244.1.2', { app: 'web' }, { serviceAccountName: 'web' }),
      wep('prod', 'job', 'n1', '10.244.1.3', { app: 'job' }),
      np('prod', 'sa', {
        serviceAccountSelector: "kind == 'frontend'",
        ingress: [{ action: 'Allow' }],
      }),
      gnp('ns', { namespaceSelector: "env == 'prod'", ingress: [{ action: 'Allow' }] }),
    );
    sync();
    const lists = (id: string) => dp.workloads.get(id)!.tiers.flatMap((t) => t.ingressPolicies);
    expect(lists('prod/web/eth0')).toEqual(['default/ns', 'default/prod/sa']);
    expect(lists('prod/job/eth0')).toEqual(['default/ns']);
  });

  test('named ports become hash:ip,port sets of the selected endpoints', () => {
    const { dp, set, sync, fresh } = harness();
    const ports = (p: number) => ({
      ports: [
        { name: 'http', protocol: 'TCP', port: p },
        { name: 'dns', protocol: 'UDP', port: 53 },
      ],
    });
    set(
      web(),
      wep('prod', 'a', 'n2', '10.244.2.1', { app: 'api' }, ports(8080)),
      wep('prod', 'b', 'n2', '10.244.2.2', { app: 'other' }, ports(9090)),
      np('prod', 'p', {
        selector: "app == 'web'",
        types: ['Egress'],
        egress: [
          {
            action: 'Allow',
            protocol: 'TCP',
            destination: { selector: "app == 'api'", ports: ['http', 443] },
          },
          { action: 'Allow', protocol: 'UDP', destination: { ports: ['dns'] } },
        ],
      }),
    );
    sync();
    const [http, dns] = dp.policies.get('default/prod/p')!.outbound;
    expect(http.dstPorts).toEqual([{ first: 443, last: 443 }]);
    expect(http.dstNamedPortIpSetIds).toHaveLength(1);
    const httpSet = http.dstNamedPortIpSetIds![0];
    expect(dp.log.find((u) => u.type === 'ipset-update' && u.id === httpSet)).toMatchObject({
      setType: 'hash:ip,port',
      members: ['10.244.2.1,tcp:8080'],
    });
    expect([...dp.ipsets.get(dns.dstNamedPortIpSetIds![0])!].sort()).toEqual([
      '10.244.2.1,udp:53',
      '10.244.2.2,udp:53',
    ]);
    // the port number changes: the member follows
    fresh();
    set(wep('prod', 'a', 'n2', '10.244.2.1', { app: 'api' }, ports(8081)));
    expect(ofType(fresh(), 'ipset-delta')).toEqual([
      {
        type: 'ipset-delta',
        id: httpSet,
        added: ['10.244.2.1,tcp:8081'],
        removed: ['10.244.2.1,tcp:8080'],
      },
    ]);
  });

  test("named ports and notPorts without a protocol take each port's own; empty lists are no constraint", () => {
    const { dp, set, sync } = harness();
    set(
      web(),
      wep(
        'prod',
        'a',
        'n2',
        '10.244.2.1',
        { app: 'api' },
        {
          ports: [
            { name: 'svc', protocol: 'TCP', port: 8080 },
            { name: 'svc', protocol: 'UDP', port: 5353 },
          ],
        },
      ),
      np('prod', 'p', {
        selector: "app == 'web'",
        types: ['Egress'],
        egress: [
          { action: 'Allow', destination: { ports: ['svc'] } },
          { action: 'Deny', destination: { notPorts: ['svc'], nets: [] } },
          { action: 'Allow', protocol: 'TCP', source: { ports: [], notNets: [] } },
        ],
      }),
    );
    sync();
    const [any, not, empty] = dp.policies.get('default/prod/p')!.outbound;
    expect(any.protocol).toBeUndefined();
    expect([...dp.ipsets.get(any.dstNamedPortIpSetIds![0])!].sort()).toEqual([
      '10.244.2.1,tcp:8080',
      '10.244.2.1,udp:5353',
    ]);
    expect(not.notDstNamedPortIpSetIds).toEqual(any.dstNamedPortIpSetIds); // one shared set
    expect(not.dstNets).toBeUndefined();
    expect(empty).toEqual({ action: 'allow', protocol: 6, ruleId: empty.ruleId });
  });

  test('network sets: their nets join sets whose selector picks them (in scope)', () => {
    const { dp, set, sync } = harness();
    set(
      web(),
      R('GlobalNetworkSet', 'corp', { nets: ['198.51.100.0/24'] }, { labels: { zone: 'corp' } }),
      R(
        'NetworkSet',
        'partners',
        { nets: ['203.0.113.0/25'] },
        { namespace: 'prod', labels: { zone: 'corp' } },
      ),
      R(
        'NetworkSet',
        'elsewhere',
        { nets: ['203.0.113.128/25'] },
        { namespace: 'dev', labels: { zone: 'corp' } },
      ),
      np('prod', 'p', {
        selector: "app == 'web'",
        ingress: [{ action: 'Allow', source: { selector: "zone == 'corp'" } }],
      }),
      // global() only in a namespaceSelector, as Calico's validation allows it
      gnp('g', {
        ingress: [
          {
            action: 'Allow',
            source: { namespaceSelector: 'global()', selector: "zone == 'corp'" },
          },
        ],
      }),
    );
    sync();
    const own = dp.policies.get('default/prod/p')!.inbound[0].srcIpSetIds![0];
    const glob = dp.policies.get('default/g')!.inbound[0].srcIpSetIds![0];
    expect([...dp.ipsets.get(own)!]).toEqual(['203.0.113.0/25']);
    expect([...dp.ipsets.get(glob)!]).toEqual(['198.51.100.0/24']);
  });

  test('notSelector: a negated set of whatever it picks, in any namespace; in a namespaced policy the side is also scoped to its namespace (Calico)', () => {
    const { dp, set, sync } = harness();
    set(
      web(),
      wep('prod', 'bad', 'n2', '10.244.2.66', { quarantine: 'yes' }),
      wep('prod', 'ok', 'n2', '10.244.2.67'),
      wep('dev', 'other', 'n2', '10.244.3.1'),
      R(
        'GlobalNetworkSet',
        'quarantined',
        { nets: ['198.51.100.0/24'] },
        { labels: { quarantine: 'yes' } },
      ),
      np('prod', 'p', {
        selector: "app == 'web'",
        ingress: [{ action: 'Allow', source: { notSelector: 'has(quarantine)' } }],
      }),
      gnp('g', {
        selector: "app == 'web'",
        ingress: [{ action: 'Allow', source: { notSelector: 'has(quarantine)' } }],
      }),
    );
    sync();
    const r = dp.policies.get('default/prod/p')!.inbound[0];
    expect([...dp.ipsets.get(r.notSrcIpSetIds![0])!].sort()).toEqual([
      '10.244.2.66/32',
      '198.51.100.0/24',
    ]);
    // the namespaced policy's side: prod only (not dev, not outside addresses)
    expect([...dp.ipsets.get(r.srcIpSetIds![0])!].sort()).toEqual([
      '10.244.1.2/32',
      '10.244.2.66/32',
      '10.244.2.67/32',
    ]);
    // the global policy's: no positive selection at all
    expect(dp.policies.get('default/g')!.inbound[0].srcIpSetIds).toBeUndefined();
  });

  test('service accounts alone in a namespaced policy are scoped to its namespace (Calico)', () => {
    const { dp, set, sync } = harness();
    set(
      web(),
      wep('prod', 'a', 'n2', '10.244.2.1', {}, { serviceAccountName: 'sa1' }),
      wep('dev', 'b', 'n2', '10.244.3.1', {}, { serviceAccountName: 'sa1' }),
      np('prod', 'p', {
        selector: "app == 'web'",
        ingress: [{ action: 'Allow', source: { serviceAccounts: { names: ['sa1'] } } }],
      }),
    );
    sync();
    const r = dp.policies.get('default/prod/p')!.inbound[0];
    expect([...dp.ipsets.get(r.srcIpSetIds![0])!]).toEqual(['10.244.2.1/32']);
  });

  test('host endpoints: normal, untracked, pre-DNAT and forward lists', () => {
    const { dp, set, sync } = harness();
    const hep = R(
      'HostEndpoint',
      'n1-eth0',
      {
        node: 'n1',
        interfaceName: 'eth0',
        expectedIPs: ['10.0.0.1'],
        profiles: [],
      },
      { labels: { role: 'host' } },
    );
    const sel = "role == 'host'";
    set(
      hep,
      R(
        'HostEndpoint',
        'n2-eth0',
        { node: 'n2', interfaceName: 'eth0', expectedIPs: ['10.0.0.2'] },
        { labels: { role: 'host' } },
      ),
      gnp('normal', { selector: sel, ingress: [{ action: 'Allow' }] }),
      gnp('untracked', {
        selector: sel,
        doNotTrack: true,
        applyOnForward: true,
        ingress: [{ action: 'Allow' }],
      }),
      gnp('prednat', {
        selector: sel,
        preDNAT: true,
        applyOnForward: true,
        ingress: [{ action: 'Deny' }],
      }),
      gnp('fwd', { selector: sel, applyOnForward: true, ingress: [{ action: 'Allow' }] }),
      // a policy for everything but this host endpoint (Calico refuses global() here)
      gnp('pods-only', { selector: "role != 'host'", ingress: [{ action: 'Allow' }] }),
    );
    sync();
    expect([...dp.hostEndpoints.keys()]).toEqual(['n1-eth0']);
    const h = dp.hostEndpoints.get('n1-eth0')!;
    const ids = (ts: typeof h.tiers) => ts.flatMap((t) => t.ingressPolicies);
    expect(h.ifaceName).toBe('eth0');
    expect(h.expectedIps).toEqual(['10.0.0.1']);
    expect(ids(h.tiers)).toEqual(['default/fwd', 'default/normal']);
    expect(ids(h.untrackedTiers)).toEqual(['default/untracked']);
    expect(ids(h.preDnatTiers)).toEqual(['default/prednat']);
    expect(ids(h.forwardTiers)).toEqual(['default/fwd']);
    expect(dp.policies.get('default/untracked')).toMatchObject({
      untracked: true,
      applyOnForward: true,
    });
    expect(dp.policies.get('default/prednat')).toMatchObject({ preDnat: true });
  });

  test('deleting the policy, then the endpoint: removes, and nothing is left behind', () => {
    const { dp, set, del, sync, fresh } = harness();
    const pol = np('prod', 'p', {
      selector: "app == 'web'",
      ingress: [{ action: 'Allow', source: { selector: "role == 'db'" } }],
    });
    const w = web();
    set(namespace('prod'), w, pol, wep('prod', 'db', 'n2', '10.244.2.7', { role: 'db' }));
    sync();
    const setId = dp.policies.get('default/prod/p')!.inbound[0].srcIpSetIds![0];
    del(pol);
    const out = fresh();
    expect(out).toEqual([
      expect.objectContaining({ type: 'workload-update' }),
      { type: 'policy-remove', id: 'default/prod/p' },
      { type: 'ipset-remove', id: setId },
    ]);
    expect(dp.workloads.get('prod/web/eth0')!.tiers).toEqual([]);
    del(w);
    expect(fresh()).toEqual([
      { type: 'workload-remove', id: 'prod/web/eth0' },
      { type: 'profile-remove', id: 'kns.prod' },
      { type: 'route-remove', dst: '10.244.1.2/32' },
    ]);
    const s = dp.snapshot();
    expect([s.ipsets, s.policies, s.profiles, s.workloads, s.routes]).toEqual([{}, {}, {}, {}, {}]);
    expect(dp.errors).toEqual([]);
  });

  test('a pod moving to another node is removed here, and a tier move renames the policy', () => {
    const { dp, g, set, sync, fresh } = harness();
    set(web(), gnp('p', { ingress: [{ action: 'Allow' }] }));
    sync();
    set(gnp('p', { tier: 'security', ingress: [{ action: 'Allow' }] }), tier('security', 1));
    const out = fresh();
    expect(ofType(out, 'policy-update').map((u) => u.id)).toEqual(['security/p']);
    expect(ofType(out, 'policy-remove').map((u) => u.id)).toEqual(['default/p']);
    expect(dp.workloads.get('prod/web/eth0')!.tiers.map((t) => t.name)).toEqual(['security']);
    // one batch: the endpoint on n1 goes, one on n2 comes
    const old = web();
    g.onUpdates([
      {
        type: 'deleted',
        resource: old,
        key: { kind: old.kind, name: old.metadata.name, namespace: 'prod' },
      },
      { type: 'set', resource: web('n2') },
    ]);
    expect(fresh().map((u) => u.type)).toEqual([
      'workload-remove',
      'policy-remove',
      'profile-remove',
      'route-remove',
    ]);
  });
});
