// Calculation graph, BGP (computed by @tortie/bgp-topology, whose tests hold the
// rules): the mesh (the lexically lower address waits), mesh off with global and
// per-node peers, peerSelector both ways, route-reflector clusters, originated prefixes
// (blocks, borrowed /32s, service IPs), sent only when changed.
import { blocks } from '@tortie/ipam';
import { block, harness, node, ofType, pool, R, wep } from './calc-fixtures';

const peer = (name: string, spec: object) => R('BGPPeer', name, spec);
const bgpConfig = (spec: object) => R('BGPConfiguration', 'default', spec);

describe('calc graph: BGP', () => {
  test('mesh: one peer per other node; we wait for the addresses greater as strings', () => {
    const h = harness('n2');
    h.set(
      node('n1', '10.0.0.1/24'),
      node('n2', '10.0.0.10/24', { asNumber: 65010 }),
      node('n3', '10.0.0.9/24', { asNumber: 65003 }),
      node('n4', '10.0.0.100/24'),
      node('nobgp', undefined),
    );
    h.sync();
    expect(h.dp.bgp).toEqual({
      enabled: true,
      asNumber: 65010,
      routerId: '10.0.0.10',
      ipv4Address: '10.0.0.10',
      listenPort: 179,
      logLevel: 'info',
      localSubnet: '10.0.0.0/24',
      peers: [
        // "10.0.0.1" < "10.0.0.10" < "10.0.0.100" < "10.0.0.9"
        {
          name: 'mesh-10.0.0.1',
          address: '10.0.0.1',
          port: 179,
          asNumber: 64512,
          restartTimeS: 120,
          sourceAddress: '10.0.0.10',
        },
        {
          name: 'mesh-10.0.0.9',
          address: '10.0.0.9',
          port: 179,
          asNumber: 65003,
          passive: true,
          restartTimeS: 120,
          sourceAddress: '10.0.0.10',
        },
        {
          name: 'mesh-10.0.0.100',
          address: '10.0.0.100',
          port: 179,
          asNumber: 64512,
          passive: true,
          restartTimeS: 120,
          sourceAddress: '10.0.0.10',
        },
      ],
      originate: [],
    });
  });

  test('a node without a BGP address, or a cluster without BGP, has BGP disabled', () => {
    const h = harness('n1');
    h.set(node('n1', undefined), node('n2', '10.0.0.2/24'));
    h.sync();
    expect(h.dp.bgp).toMatchObject({ enabled: false, asNumber: 64512, peers: [] });
    const off = harness('n1', { bgp: false });
    off.set(node('n1', '10.0.0.1/24'), node('n2', '10.0.0.2/24'));
    off.sync();
    expect(off.dp.bgp).toMatchObject({ enabled: false, routerId: '10.0.0.1', peers: [] });
  });

  test('per-node BGPConfiguration and CALICO_ROUTER_ID reach the BGP config', () => {
    const h = harness('n1', { routerId: 'hash' });
    h.set(
      bgpConfig({ listenPort: 1790 }),
      R('BGPConfiguration', 'node.n1', { listenPort: 1791, logSeverityScreen: 'Debug' }),
      node('n1', '10.0.0.1/24'),
      node('n2', '10.0.0.2/24'),
    );
    h.sync();
    expect(h.dp.bgp).toMatchObject({
      routerId: '103.107.139.184', // sha256('n1')
      ipv4Address: '10.0.0.1',
      listenPort: 1791,
      logLevel: 'debug',
      peers: [{ address: '10.0.0.2', port: 1790, passive: true }],
    });
    // a change to another node's configuration changes the port we dial
    h.set(R('BGPConfiguration', 'node.n2', { listenPort: 1792 }));
    expect(ofType(h.fresh(), 'bgp-update').map((u) => u.bgp.peers[0].port)).toEqual([1792]);
  });

  test('dual-stack nodes peer over IPv6 too, and originate IPv6 blocks with their IPv6 next hop', () => {
    const h = harness('n1');
    h.set(
      node('n1', '10.0.0.1/24', { ipv6Address: 'fd00::1/64' }),
      node('n2', '10.0.0.2/24', { ipv6Address: 'fd00::2/64' }),
      pool('p6', 'fd10::/48'),
      R('IPAMBlock', 'b6', blocks.newBlock('fd10::/122', 'n1')),
    );
    h.sync();
    expect(h.dp.bgp).toMatchObject({
      ipv4Address: '10.0.0.1',
      ipv6Address: 'fd00::1',
      originate: ['fd10::/122'],
    });
    expect(h.dp.bgp!.peers.map((p) => [p.address, p.passive ?? false])).toEqual([
      ['10.0.0.2', true],
      ['fd00::2', true],
    ]);
  });

  test('mesh off: global and per-node BGPPeers (by name, by nodeSelector), AS from the config', () => {
    const h = harness('n1');
    h.set(
      bgpConfig({ nodeToNodeMeshEnabled: false, asNumber: 65000, listenPort: 1790 }),
      node('n1', '10.0.0.1/24', {}, { rack: 'a' }),
      node('n2', '10.0.0.2/24'),
      peer('tor', { peerIP: '10.0.0.254', asNumber: 65100 }),
      peer('mine', { node: 'n1', peerIP: '192.0.2.1:1179', asNumber: 65200, ttlSecurity: 1 }),
      peer('theirs', { node: 'n2', peerIP: '192.0.2.2', asNumber: 65200 }),
      peer('rack-a', {
        nodeSelector: "rack == 'a'",
        peerIP: '192.0.2.3',
        asNumber: 65300,
        keepOriginalNextHop: true,
      }),
      peer('rack-b', { nodeSelector: "rack == 'b'", peerIP: '192.0.2.4', asNumber: 65300 }),
    );
    h.sync();
    expect(h.dp.bgp).toMatchObject({ asNumber: 65000, listenPort: 1790 });
    expect(h.dp.bgp!.peers).toEqual([
      {
        name: 'global-tor',
        address: '10.0.0.254',
        port: 179,
        asNumber: 65100,
        restartTimeS: 120,
        sourceAddress: '10.0.0.1',
      },
      {
        name: 'node-mine',
        address: '192.0.2.1',
        port: 1179,
        asNumber: 65200,
        ttlSecurity: 1,
        restartTimeS: 120,
        sourceAddress: '10.0.0.1',
      },
      {
        name: 'node-rack-a',
        address: '192.0.2.3',
        port: 179,
        asNumber: 65300,
        keepOriginalNextHop: true,
        restartTimeS: 120,
        sourceAddress: '10.0.0.1',
      },
    ]);
  });

  test('peerSelector: the selected nodes, and the selected node peers back', () => {
    const nodes = [
      node('n1', '10.0.0.1/24', {}, { edge: 'yes' }),
      node('n2', '10.0.0.2/24', {}, { spine: 'yes' }),
      node('n3', '10.0.0.3/24', {}, { spine: 'yes' }),
      node('n4', '10.0.0.4/24'),
    ];
    const p = peer('edge-to-spine', {
      nodeSelector: "edge == 'yes'",
      peerSelector: "spine == 'yes'",
    });
    const cfg = bgpConfig({ nodeToNodeMeshEnabled: false });
    const edge = harness('n1');
    edge.set(cfg, ...nodes, p);
    edge.sync();
    expect(edge.dp.bgp!.peers).toEqual([
      {
        name: 'node-edge-to-spine-n2',
        address: '10.0.0.2',
        port: 179,
        asNumber: 64512,
        restartTimeS: 120,
        sourceAddress: '10.0.0.1',
      },
      {
        name: 'node-edge-to-spine-n3',
        address: '10.0.0.3',
        port: 179,
        asNumber: 64512,
        restartTimeS: 120,
        sourceAddress: '10.0.0.1',
      },
    ]);
    const spine = harness('n2');
    spine.set(cfg, ...nodes, p);
    spine.sync();
    expect(spine.dp.bgp!.peers).toEqual([
      {
        name: 'node-edge-to-spine-n1',
        address: '10.0.0.1',
        port: 179,
        asNumber: 64512,
        restartTimeS: 120,
        sourceAddress: '10.0.0.2',
      },
    ]);
    const other = harness('n4');
    other.set(cfg, ...nodes, p);
    other.sync();
    expect(other.dp.bgp!.peers).toEqual([]);
  });

  test('route reflectors (Calico topology): RRs peer each other, clients peer the RRs only', () => {
    const nodes = [
      node(
        'rr1',
        '10.0.0.1/24',
        { routeReflectorClusterID: '224.0.0.1' },
        { 'route-reflector': 'true' },
      ),
      node(
        'rr2',
        '10.0.0.2/24',
        { routeReflectorClusterID: '224.0.0.1' },
        { 'route-reflector': 'true' },
      ),
      node('c1', '10.0.0.11/24'),
      node('c2', '10.0.0.12/24'),
    ];
    const res = [
      bgpConfig({ nodeToNodeMeshEnabled: false }),
      ...nodes,
      peer('peer-with-route-reflectors', {
        nodeSelector: 'all()',
        peerSelector: "route-reflector == 'true'",
      }),
    ];
    const rr = harness('rr1');
    rr.set(...res);
    rr.sync();
    expect(rr.dp.bgp).toMatchObject({ routeReflectorClusterId: '224.0.0.1' });
    expect(rr.dp.bgp!.peers).toEqual([
      {
        name: 'rr-10.0.0.2',
        address: '10.0.0.2',
        port: 179,
        asNumber: 64512,
        restartTimeS: 120,
        sourceAddress: '10.0.0.1',
      },
      {
        name: 'rr-10.0.0.11',
        address: '10.0.0.11',
        port: 179,
        asNumber: 64512,
        rrClient: true,
        restartTimeS: 120,
        sourceAddress: '10.0.0.1',
      },
      {
        name: 'rr-10.0.0.12',
        address: '10.0.0.12',
        port: 179,
        asNumber: 64512,
        rrClient: true,
        restartTimeS: 120,
        sourceAddress: '10.0.0.1',
      },
    ]);
    const client = harness('c1');
    client.set(...res);
    client.sync();
    expect(client.dp.bgp!.peers).toEqual([
      {
        name: 'rr-10.0.0.1',
        address: '10.0.0.1',
        port: 179,
        asNumber: 64512,
        restartTimeS: 120,
        sourceAddress: '10.0.0.11',
      },
      {
        name: 'rr-10.0.0.2',
        address: '10.0.0.2',
        port: 179,
        asNumber: 64512,
        restartTimeS: 120,
        sourceAddress: '10.0.0.11',
      },
    ]);
    // with the mesh on, a reflector still does not mesh, nor do the others with it
    // (confd: "Node ... is a route reflector ..., skipping mesh")
    const meshed = harness('rr1');
    meshed.set(...nodes);
    meshed.sync();
    expect(meshed.dp.bgp!.peers).toEqual([]);
    const plain = harness('c1');
    plain.set(...nodes);
    plain.sync();
    expect(plain.dp.bgp!.peers.map((p) => p.name)).toEqual(['mesh-10.0.0.12']);
  });

  test('originate: affine blocks, addresses borrowed elsewhere, service IPs; not disableBGPExport pools', () => {
    const h = harness('n1');
    h.set(
      bgpConfig({
        serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
        serviceExternalIPs: [{ cidr: '192.0.2.0/24' }],
      }),
      node('n1', '10.0.0.1/24'),
      node('n2', '10.0.0.2/24'),
      pool('p', '10.244.0.0/16'),
      pool('private', '10.250.0.0/16', { disableBGPExport: true }),
      block('10.244.1.0/26', 'n1'),
      block('10.244.2.0/26', 'n2', [[7, 'n1']]),
      block('10.250.1.0/26', 'n1'),
    );
    h.sync();
    expect(h.dp.bgp!.originate).toEqual([
      '10.244.1.0/26',
      '10.244.2.7/32',
      '10.96.0.0/12',
      '192.0.2.0/24',
    ]);
  });

  test('bgp-update only when the configuration changed', () => {
    const h = harness('n1');
    h.set(node('n1', '10.0.0.1/24'), node('n2', '10.0.0.2/24'), pool('p', '10.244.0.0/16'));
    h.sync();
    // a block of another node and an unrelated node label: no new BGP config
    h.set(block('10.244.2.0/26', 'n2'), node('n2', '10.0.0.2/24', {}, { zone: 'z' }));
    expect(ofType(h.fresh(), 'bgp-update')).toEqual([]);
    h.set(block('10.244.1.0/26', 'n1'));
    expect(ofType(h.fresh(), 'bgp-update').map((u) => u.bgp.originate)).toEqual([
      ['10.244.1.0/26'],
    ]);
    h.set(node('n3', '10.0.0.3/24'));
    expect(ofType(h.fresh(), 'bgp-update').map((u) => u.bgp.peers.length)).toEqual([2]);
  });

  test('reachableBy: a lowest-priority route to the peer via the gateway, while the BGPPeer and BGP are there', () => {
    const h = harness('n1', { directRoutes: false });
    const tor = peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, reachableBy: '10.0.0.254' });
    const tor6 = peer('tor6', { peerIP: 'fd00::99', asNumber: 65100, reachableBy: 'FD00::FE' });
    h.set(
      bgpConfig({ nodeToNodeMeshEnabled: false }),
      node('n1', '10.0.0.1/24', { ipv6Address: 'fd00::1/64' }),
      tor,
      tor6,
      peer('plain', { peerIP: '192.0.2.2', asNumber: 65100 }),
    );
    h.sync();
    expect([...h.dp.routes.values()]).toEqual([
      { dst: '192.0.2.1/32', kind: 'bgp-peer', nextHop: '10.0.0.254', encap: 'none' },
      { dst: 'fd00::99/128', kind: 'bgp-peer', nextHop: 'fd00::fe', encap: 'none' },
    ]);
    // a workload with the peer's address wins (the lowest priority), and gives it back
    const pod = wep('default', 'p', 'n1', '192.0.2.1');
    h.set(pod);
    expect(h.dp.routes.get('192.0.2.1/32')).toMatchObject({ kind: 'local-workload' });
    h.del(pod);
    expect(h.dp.routes.get('192.0.2.1/32')).toMatchObject({ kind: 'bgp-peer' });
    h.del(tor6);
    expect(ofType(h.fresh(), 'route-remove').map((u) => u.dst)).toEqual(['fd00::99/128']);
    // BGP off: no sessions, no static routes for them
    const off = harness('n1', { bgp: false });
    off.set(node('n1', '10.0.0.1/24'), tor);
    off.sync();
    expect([...off.dp.routes.values()]).toEqual([]);
  });

  test('localWorkloadSelector: sessions to the selected local pods, and the endpoints that get the peering address', () => {
    const h = harness('n1');
    const pods = peer('pods', { localWorkloadSelector: "app == 'bird'", asNumber: 65100 });
    h.set(
      bgpConfig({ nodeToNodeMeshEnabled: false, localWorkloadPeeringIPV4: '169.254.0.179' }),
      node('n1', '10.0.0.1/24'),
      wep('default', 'p1', 'n1', '10.244.0.5', { app: 'bird' }),
      wep('default', 'p2', 'n1', '10.244.0.6', { app: 'web' }),
      wep('default', 'p3', 'n2', '10.244.1.5', { app: 'bird' }),
    );
    h.sync();
    expect(h.dp.bgp?.peers).toEqual([]);
    h.set(pods);
    h.fresh();
    expect(h.dp.bgp?.peers).toEqual([
      {
        name: 'local-workload-pods-default.p1.eth0',
        address: '10.244.0.5',
        port: 179,
        asNumber: 65100,
        passive: true,
        restartTimeS: 120,
      },
    ]);
    expect(h.dp.bgp?.localWorkloadPeering).toEqual({
      ipv4: '169.254.0.179',
      endpoints: ['default/p1/eth0'],
    });
    // a label change moves the session
    h.set(wep('default', 'p1', 'n1', '10.244.0.5', { app: 'web' }));
    h.set(wep('default', 'p2', 'n1', '10.244.0.6', { app: 'bird' }));
    expect(h.dp.bgp?.peers.map((p) => p.address)).toEqual(['10.244.0.6']);
    expect(h.dp.bgp?.localWorkloadPeering?.endpoints).toEqual(['default/p2/eth0']);
    h.del(pods);
    expect(h.dp.bgp?.peers).toEqual([]);
    expect(h.dp.bgp?.localWorkloadPeering).toBeUndefined();
  });
});
