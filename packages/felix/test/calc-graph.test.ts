// The calculation graph with a recording dataplane: exact desired state for
// representative inputs, nothing before in-sync, incremental = from scratch (property),
// and work proportional to a change.
import fc from 'fast-check';
import { parseResource, type Resource } from '@tortie/api';
import { blocks } from '@tortie/ipam';
import { DataplaneState } from '../src/dataplane-state';
import { CalcGraph } from '../src/graph/calc-graph';
import { ipSetId } from '../src/graph/ipsets';

const R = (kind: string, name: string, spec: object, meta: object = {}): Resource =>
  parseResource({ apiVersion: 'tortie.io/v1', kind, metadata: { name, ...meta }, spec });

const node = (name: string, ip: string, extra: object = {}, labels: object = {}) =>
  R('Node', name, { bgp: { ipv4Address: ip }, ...extra }, { labels });
const wep = (
  ns: string,
  pod: string,
  nodeName: string,
  ip: string,
  labels: object = {},
  extra: object = {},
) =>
  R(
    'WorkloadEndpoint',
    `${nodeName}-k8s-${pod}-eth0`,
    {
      node: nodeName,
      pod,
      ipNetworks: [`${ip}/32`],
      interfaceName: `cali${pod}`.slice(0, 15),
      profiles: [`kns.${ns}`],
      ...extra,
    },
    { namespace: ns, labels: { 'projectcalico.org/namespace': ns, ...labels } },
  );
const block = (cidr: string, owner: string, allocations: Array<[number, string]> = []) => {
  let spec = blocks.newBlock(cidr, owner);
  for (const [i, n] of allocations) {
    const ip = `${cidr.split('.').slice(0, 3).join('.')}.${Number(cidr.split('.')[3].split('/')[0]) + i}`;
    spec = blocks.allocateIp(spec, ip, `h-${ip}`, { node: n });
  }
  return R('IPAMBlock', cidr.replace(/[./]/g, '-'), spec);
};

function graph(me = 'n1', backend: 'bgp' | 'vxlan' | 'none' = 'bgp') {
  const dp = new DataplaneState();
  const g = new CalcGraph({ nodeName: me, sink: dp, backend });
  const set = (...rs: Resource[]) => g.onUpdates(rs.map((resource) => ({ type: 'set', resource })));
  const del = (...rs: Resource[]) =>
    g.onUpdates(
      rs.map((resource) => ({
        type: 'deleted',
        resource,
        key: {
          kind: resource.kind,
          name: resource.metadata.name,
          namespace: resource.metadata.namespace,
        },
      })),
    );
  return { dp, g, set, del };
}

describe('calculation graph: policy', () => {
  test('nothing before in-sync; then sets, policies, endpoints, in that order, then in-sync', () => {
    const { dp, g, set } = graph();
    set(
      node('n1', '10.0.0.1/24'),
      wep('prod', 'web', 'n1', '10.244.1.2', { app: 'web' }),
      wep('prod', 'db', 'n2', '10.244.2.3', { app: 'db' }),
      R(
        'NetworkPolicy',
        'web-in',
        {
          selector: "app == 'web'",
          ingress: [
            {
              action: 'Allow',
              protocol: 'TCP',
              source: { selector: "app == 'db'" },
              destination: { ports: [80] },
            },
          ],
        },
        { namespace: 'prod' },
      ),
    );
    expect(dp.log).toEqual([]);
    g.onStatus('in-sync');
    const types = dp.log.map((u) => u.type);
    expect(types.at(-1)).toBe('in-sync');
    expect(types.indexOf('ipset-update')).toBeLessThan(types.indexOf('policy-update'));
    expect(types.indexOf('policy-update')).toBeLessThan(types.indexOf('workload-update'));
    expect(dp.errors).toEqual([]);

    const setId = ipSetId({ kind: 'sel', selector: "app == 'db'", policyNs: 'prod' });
    expect([...dp.ipsets.get(setId)!]).toEqual(['10.244.2.3/32']); // a remote pod is a member
    expect(dp.policies.get('default/prod/web-in')).toEqual({
      type: 'policy-update',
      id: 'default/prod/web-in',
      inbound: [
        {
          action: 'allow',
          protocol: 6,
          srcIpSetIds: [setId],
          dstPorts: [{ first: 80, last: 80 }],
          ruleId: expect.any(String),
        },
      ],
      outbound: [],
    });
    // only the local pod is an endpoint here
    expect([...dp.workloads.keys()]).toEqual(['prod/web/eth0']);
    expect(dp.workloads.get('prod/web/eth0')).toEqual({
      id: 'prod/web/eth0',
      ifaceName: 'caliweb',
      ipv4Nets: ['10.244.1.2/32'],
      ipv6Nets: [],
      tiers: [
        {
          name: 'default',
          defaultAction: 'deny',
          ingressPolicies: ['default/prod/web-in'],
          egressPolicies: [],
        },
      ],
      profileIds: ['kns.prod'],
    });
    expect(dp.routes.get('10.244.1.2/32')).toEqual({
      dst: '10.244.1.2/32',
      kind: 'local-workload',
      ifaceName: 'caliweb',
      node: 'n1',
    });
  });

  test('tiers in order with their default action; global policies; equal selectors share one set', () => {
    const { dp, g, set } = graph();
    set(
      node('n1', '10.0.0.1/24'),
      R('Tier', 'security', { order: 100, defaultAction: 'Pass' }),
      wep('prod', 'web', 'n1', '10.244.1.2', { app: 'web' }),
      R('GlobalNetworkPolicy', 'security.block', {
        tier: 'security',
        order: 10,
        selector: 'all()',
        ingress: [{ action: 'Deny', source: { selector: "role == 'bad'" } }],
        egress: [{ action: 'Pass' }],
      }),
      R(
        'NetworkPolicy',
        'a',
        {
          order: 2,
          selector: 'all()',
          ingress: [{ action: 'Allow', source: { selector: "role == 'x'" } }],
        },
        { namespace: 'prod' },
      ),
      R(
        'NetworkPolicy',
        'b',
        {
          order: 1,
          selector: 'all()',
          ingress: [{ action: 'Allow', source: { selector: "role == 'x'" } }],
        },
        { namespace: 'prod' },
      ),
    );
    g.onStatus('in-sync');
    expect(dp.workloads.get('prod/web/eth0')!.tiers).toEqual([
      {
        name: 'security',
        defaultAction: 'pass',
        ingressPolicies: ['security/security.block'],
        egressPolicies: ['security/security.block'],
      },
      {
        name: 'default',
        defaultAction: 'deny',
        ingressPolicies: ['default/prod/b', 'default/prod/a'],
        egressPolicies: [],
      },
    ]);
    const a = dp.policies.get('default/prod/a')!.inbound[0].srcIpSetIds;
    const b = dp.policies.get('default/prod/b')!.inbound[0].srcIpSetIds;
    expect(a).toEqual(b);
    // the global policy's selector is not namespace-scoped
    const g1 = dp.policies.get('security/security.block')!.inbound[0].srcIpSetIds![0];
    expect(g1).toBe(ipSetId({ kind: 'sel', selector: "role == 'bad'" }));
  });

  test('a label change moves a remote pod in and out of a set with exact deltas', () => {
    const { dp, g, set } = graph();
    const pol = R(
      'NetworkPolicy',
      'p',
      { selector: 'all()', ingress: [{ action: 'Allow', source: { selector: "app == 'db'" } }] },
      { namespace: 'prod' },
    );
    set(
      node('n1', '10.0.0.1/24'),
      wep('prod', 'web', 'n1', '10.244.1.2'),
      pol,
      wep('prod', 'x', 'n2', '10.244.2.9', { app: 'other' }),
    );
    g.onStatus('in-sync');
    dp.log.length = 0;
    set(wep('prod', 'x', 'n2', '10.244.2.9', { app: 'db' }));
    const id = ipSetId({ kind: 'sel', selector: "app == 'db'", policyNs: 'prod' });
    expect(dp.log).toEqual([{ type: 'ipset-delta', id, added: ['10.244.2.9/32'], removed: [] }]);
    dp.log.length = 0;
    set(wep('prod', 'x', 'n2', '10.244.2.9', { app: 'other' }));
    expect(dp.log).toEqual([{ type: 'ipset-delta', id, added: [], removed: ['10.244.2.9/32'] }]);
  });

  test('namespace labels (kns profiles), named ports, service accounts, network sets', () => {
    const { dp, g, set } = graph();
    set(
      node('n1', '10.0.0.1/24'),
      R('Profile', 'kns.prod', { labelsToApply: { 'pcns.env': 'prod' } }),
      R('Profile', 'kns.dev', { labelsToApply: { 'pcns.env': 'dev' } }),
      wep(
        'prod',
        'web',
        'n1',
        '10.244.1.2',
        { app: 'web' },
        { ports: [{ name: 'http', port: 8080 }] },
      ),
      wep('dev', 'tool', 'n2', '10.244.2.2', { app: 'tool' }, { serviceAccountName: 'ci' }),
      R('GlobalNetworkSet', 'office', { nets: ['192.0.2.0/24'] }, { labels: { kind: 'office' } }),
      R(
        'NetworkPolicy',
        'p',
        {
          selector: 'all()',
          ingress: [
            {
              action: 'Allow',
              protocol: 'TCP',
              source: { namespaceSelector: "env == 'dev'" },
              destination: { ports: ['http'] },
            },
            { action: 'Allow', source: { serviceAccounts: { names: ['ci'] } } },
            {
              action: 'Allow',
              source: { selector: "kind == 'office'", namespaceSelector: 'global()' },
            },
          ],
        },
        { namespace: 'prod' },
      ),
    );
    g.onStatus('in-sync');
    const [r1, r2, r3] = dp.policies.get('default/prod/p')!.inbound;
    expect([...dp.ipsets.get(r1.srcIpSetIds![0])!]).toEqual(['10.244.2.2/32']);
    expect([...dp.ipsets.get(r1.dstNamedPortIpSetIds![0])!]).toEqual(['10.244.1.2,tcp:8080']);
    expect([...dp.ipsets.get(r2.srcIpSetIds![0])!]).toEqual(['10.244.2.2/32']);
    expect([...dp.ipsets.get(r3.srcIpSetIds![0])!]).toEqual(['192.0.2.0/24']);
    // relabelling the dev namespace empties the namespace-selected set
    dp.log.length = 0;
    set(R('Profile', 'kns.dev', { labelsToApply: { 'pcns.env': 'staging' } }));
    expect(dp.log).toContainEqual({
      type: 'ipset-delta',
      id: r1.srcIpSetIds![0],
      added: [],
      removed: ['10.244.2.2/32'],
    });
  });

  test('deleting the policy and the pod leaves nothing behind', () => {
    const { dp, g, set, del } = graph();
    const pol = R(
      'NetworkPolicy',
      'p',
      { selector: 'all()', ingress: [{ action: 'Allow', source: { selector: "a == 'b'" } }] },
      { namespace: 'prod' },
    );
    const w = wep('prod', 'web', 'n1', '10.244.1.2');
    set(node('n1', '10.0.0.1/24'), w, pol);
    g.onStatus('in-sync');
    del(pol);
    expect(dp.policies.size).toBe(0);
    expect(dp.ipsets.size).toBe(0);
    expect(dp.workloads.get('prod/web/eth0')!.tiers).toEqual([]);
    del(w);
    expect(dp.workloads.size).toBe(0);
    expect(dp.profiles.size).toBe(0);
    expect([...dp.routes.keys()]).toEqual([]);
    expect(dp.errors).toEqual([]);
  });
});

describe('calculation graph: routes, tunnels, BGP', () => {
  const pool = (mode: object = {}) => R('IPPool', 'p', { cidr: '10.244.0.0/16', ...mode });

  test('BGP on: blackhole for own blocks, nothing for others (BGP learns them), /32 for borrowed', () => {
    const { dp, g, set } = graph();
    set(
      pool(),
      node('n1', '10.0.0.1/24'),
      node('n2', '10.0.0.2/24'),
      block('10.244.1.0/26', 'n1', [[5, 'n2']]),
      block('10.244.2.0/26', 'n2', [[7, 'n1']]),
    );
    g.onStatus('in-sync');
    expect(dp.snapshot().routes).toEqual({
      '10.244.1.0/26': {
        dst: '10.244.1.0/26',
        kind: 'local-block',
        node: 'n1',
        natOutgoing: false,
      },
    });
    expect(dp.bgp!.originate).toEqual(['10.244.1.0/26', '10.244.2.7/32']);
  });

  test('BGP off: direct routes from block affinities, /32 for borrowed addresses', () => {
    const { dp, g, set } = graph('n1', 'none');
    set(
      pool({ natOutgoing: true }),
      node('n1', '10.0.0.1/24'),
      node('n2', '10.0.0.2/24'),
      block('10.244.2.0/26', 'n2', [[9, 'n3']]),
      node('n3', '10.0.0.3/24'),
    );
    g.onStatus('in-sync');
    expect(dp.routes.get('10.244.2.0/26')).toEqual({
      dst: '10.244.2.0/26',
      kind: 'remote-block',
      node: 'n2',
      nextHop: '10.0.0.2',
      encap: 'none',
      natOutgoing: true,
    });
    expect(dp.routes.get('10.244.2.9/32')).toMatchObject({
      kind: 'remote-workload',
      node: 'n3',
      nextHop: '10.0.0.3',
    });
    expect(dp.bgp!.enabled).toBe(false);
  });

  test('IPIP Always and CrossSubnet; VXLAN Always with tunnel routes and MACs', () => {
    const nodes = [node('n1', '10.0.0.1/24'), node('n2', '10.0.0.2/24'), node('n3', '10.1.0.3/24')];
    const bl = [block('10.244.2.0/26', 'n2'), block('10.244.3.0/26', 'n3')];
    const always = graph();
    always.set(pool({ ipipMode: 'Always' }), ...nodes, ...bl);
    always.g.onStatus('in-sync');
    expect([...always.dp.routes.values()].map((r) => [r.dst, r.encap, r.nextHop])).toEqual([
      ['10.244.2.0/26', 'ipip', '10.0.0.2'],
      ['10.244.3.0/26', 'ipip', '10.1.0.3'],
    ]);
    const cross = graph();
    cross.set(pool({ ipipMode: 'CrossSubnet' }), ...nodes, ...bl);
    cross.g.onStatus('in-sync');
    // same subnet: BGP carries it directly; other subnet: IPIP
    expect([...cross.dp.routes.values()].map((r) => [r.dst, r.encap])).toEqual([
      ['10.244.3.0/26', 'ipip'],
    ]);

    const vx = graph('n1', 'vxlan');
    const vnode = (n: string, ip: string, t: string, mac: string) =>
      node(n, ip, { ipv4VXLANTunnelAddr: t, vxlanTunnelMACAddr: mac });
    vx.set(
      pool({ vxlanMode: 'Always' }),
      vnode('n1', '10.0.0.1/24', '10.244.1.0', '66:00:00:00:00:01'),
      vnode('n2', '10.0.0.2/24', '10.244.2.0', '66:00:00:00:00:02'),
      bl[0],
    );
    vx.g.onStatus('in-sync');
    expect(vx.dp.snapshot().routes).toEqual({
      '10.244.2.0/26': {
        dst: '10.244.2.0/26',
        kind: 'remote-block',
        node: 'n2',
        nextHop: '10.0.0.2',
        encap: 'vxlan',
        natOutgoing: false,
        tunnelAddr: '10.244.2.0',
        vtepMac: '66:00:00:00:00:02',
      },
      '10.244.2.0/32': {
        dst: '10.244.2.0/32',
        kind: 'remote-tunnel',
        node: 'n2',
        nextHop: '10.0.0.2',
        encap: 'vxlan',
        tunnelAddr: '10.244.2.0',
        vtepMac: '66:00:00:00:00:02',
      },
    });
    expect(vx.dp.host).toEqual({
      node: 'n1',
      ipv4Address: '10.0.0.1',
      ipv4Subnet: '10.0.0.0/24',
      ipv4VXLANTunnelAddr: '10.244.1.0',
      vxlanTunnelMACAddr: '66:00:00:00:00:01',
    });
  });

  test('BGP peers: mesh with the higher address passive; mesh off + global and node peers', () => {
    const { dp, g, set } = graph('n2');
    set(
      node('n1', '10.0.0.1/24'),
      node('n2', '10.0.0.2/24', {}, { rack: 'a' }),
      node('n3', '10.0.0.3/24'),
    );
    g.onStatus('in-sync');
    expect(dp.bgp!.peers).toEqual([
      { name: 'mesh-10.0.0.1', address: '10.0.0.1', asNumber: 64512, passive: true },
      { name: 'mesh-10.0.0.3', address: '10.0.0.3', asNumber: 64512, passive: false },
    ]);
    set(
      R('BGPConfiguration', 'default', { nodeToNodeMeshEnabled: false, asNumber: 65001 }),
      R('BGPPeer', 'tor', { peerIP: '192.168.0.1', asNumber: 65000 }),
      R('BGPPeer', 'rack-a', {
        nodeSelector: "rack == 'a'",
        peerIP: '192.168.1.1:1790',
        asNumber: 65002,
      }),
      R('BGPPeer', 'other-rack', {
        nodeSelector: "rack == 'b'",
        peerIP: '192.168.2.1',
        asNumber: 65002,
      }),
    );
    expect(dp.bgp).toMatchObject({ asNumber: 65001, routerId: '10.0.0.2' });
    expect(dp.bgp!.peers).toEqual([
      { name: 'global-tor', address: '192.168.0.1', asNumber: 65000 },
      { name: 'node-rack-a', address: '192.168.1.1', port: 1790, asNumber: 65002 },
    ]);
  });

  test('route reflector topology: RR nodes by cluster id, clients by peerSelector (both ways)', () => {
    const rrNode = (n: string, ip: string) =>
      node(
        n,
        ip,
        { bgp: { ipv4Address: ip, routeReflectorClusterID: '224.0.0.1' } },
        { 'route-reflector': 'true' },
      );
    const objs = [
      R('BGPConfiguration', 'default', { nodeToNodeMeshEnabled: false }),
      rrNode('rr1', '10.0.0.10/24'),
      rrNode('rr2', '10.0.0.11/24'),
      node('c1', '10.0.0.21/24'),
      node('c2', '10.0.0.22/24'),
      // Calico's documented topology: everyone peers with the reflectors
      R('BGPPeer', 'peer-with-rrs', {
        nodeSelector: 'all()',
        peerSelector: "route-reflector == 'true'",
      }),
    ];
    const rr = graph('rr1');
    rr.set(...objs);
    rr.g.onStatus('in-sync');
    expect(rr.dp.bgp!.routeReflectorClusterId).toBe('224.0.0.1');
    // the other RR (same cluster) is a plain iBGP peer; the nodes whose BGPPeer selects
    // this RR are its clients (Calico computes peerSelector peerings both ways)
    expect(rr.dp.bgp!.peers).toEqual([
      { name: 'node-peer-with-rrs-rr2', address: '10.0.0.11', asNumber: 64512 },
      { name: 'node-peer-with-rrs-c1', address: '10.0.0.21', asNumber: 64512, rrClient: true },
      { name: 'node-peer-with-rrs-c2', address: '10.0.0.22', asNumber: 64512, rrClient: true },
    ]);
    const client = graph('c1');
    client.set(...objs);
    client.g.onStatus('in-sync');
    expect(client.dp.bgp!.peers.map((p) => [p.address, p.rrClient ?? false])).toEqual([
      ['10.0.0.10', false],
      ['10.0.0.11', false],
    ]);
  });
});

describe('calculation graph: incremental = from scratch', () => {
  // a small universe of resources to set/delete in any order
  const universe: Resource[] = [
    R('IPPool', 'p', { cidr: '10.244.0.0/16', vxlanMode: 'CrossSubnet' }),
    node('n1', '10.0.0.1/24', {
      ipv4VXLANTunnelAddr: '10.244.1.0',
      vxlanTunnelMACAddr: '66:00:00:00:00:01',
    }),
    node('n2', '10.1.0.2/24', {
      ipv4VXLANTunnelAddr: '10.244.2.0',
      vxlanTunnelMACAddr: '66:00:00:00:00:02',
    }),
    block('10.244.1.0/26', 'n1', [[3, 'n2']]),
    block('10.244.2.0/26', 'n2'),
    R('Profile', 'kns.prod', {
      labelsToApply: { 'pcns.env': 'prod' },
      ingress: [{ action: 'Allow' }],
    }),
    wep('prod', 'a', 'n1', '10.244.1.1', { app: 'a' }),
    wep('prod', 'b', 'n1', '10.244.1.2', { app: 'b' }),
    wep('prod', 'c', 'n2', '10.244.2.1', { app: 'a' }),
    R('Tier', 't1', { order: 1 }),
    R(
      'NetworkPolicy',
      'allow-a',
      {
        selector: "app == 'b'",
        ingress: [{ action: 'Allow', source: { selector: "app == 'a'" } }],
      },
      { namespace: 'prod' },
    ),
    R('GlobalNetworkPolicy', 't1.deny', {
      tier: 't1',
      selector: 'all()',
      egress: [{ action: 'Deny', destination: { namespaceSelector: "env == 'prod'" } }],
    }),
    R(
      'NetworkPolicy',
      'allow-a',
      { selector: 'all()', ingress: [{ action: 'Allow', source: { selector: "app == 'b'" } }] },
      { namespace: 'prod' },
    ),
    R('BGPPeer', 'tor', { peerIP: '10.0.0.254', asNumber: 65000 }),
  ];

  const keyOf = (r: Resource) => `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;

  test('any sequence of sets and deletes ends where computing its final world does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ i: fc.nat(universe.length - 1), del: fc.boolean() }), {
          maxLength: 40,
        }),
        fc.boolean(),
        (ops, syncEarly) => {
          const live = graph();
          const world = new Map<string, Resource>();
          if (syncEarly) live.g.onStatus('in-sync');
          for (const { i, del } of ops) {
            const r = universe[i];
            if (del) {
              if (!world.has(keyOf(r))) continue;
              live.del(world.get(keyOf(r))!);
              world.delete(keyOf(r));
            } else {
              live.set(r);
              world.set(keyOf(r), r);
            }
          }
          live.g.onStatus('in-sync');
          const fresh = graph();
          fresh.set(...world.values());
          fresh.g.onStatus('in-sync');
          expect(live.dp.errors).toEqual([]);
          expect(live.dp.snapshot()).toEqual(fresh.dp.snapshot());
        },
      ),
      { numRuns: 200 },
    );
  });

  test('one pod label change in a world of 1,000 pods and 100 policies costs one endpoint', () => {
    const { dp, g, set } = graph();
    const rs: Resource[] = [node('n1', '10.0.0.1/24')];
    for (let i = 0; i < 1000; i++)
      rs.push(
        wep('prod', `p${i}`, i < 100 ? 'n1' : 'n2', `10.244.${i >> 8}.${i & 255}`, {
          app: `a${i % 50}`,
        }),
      );
    for (let i = 0; i < 100; i++)
      rs.push(
        R(
          'NetworkPolicy',
          `pol${i}`,
          {
            selector: `app == 'a${i % 50}'`,
            ingress: [{ action: 'Allow', source: { selector: `app == 'a${(i + 1) % 50}'` } }],
          },
          { namespace: 'prod' },
        ),
      );
    set(...rs);
    g.onStatus('in-sync');
    const before = { ...g.work };
    dp.log.length = 0;
    set(wep('prod', 'p500', 'n2', '10.244.1.244', { app: 'a7' })); // a remote pod changes label
    expect(g.work.endpointRecomputes - before.endpointRecomputes).toBe(0);
    expect(g.work.blockRecomputes - before.blockRecomputes).toBe(0);
    expect(dp.log.map((u) => u.type)).toEqual(['ipset-delta', 'ipset-delta']);
    set(wep('prod', 'p5', 'n1', '10.244.0.5', { app: 'a8' })); // a local pod changes label
    expect(g.work.endpointRecomputes - before.endpointRecomputes).toBe(1);
  });
});
