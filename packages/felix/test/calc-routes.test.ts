// Calculation graph, routes: local pods and blocks, other nodes' blocks directly or over
// IPIP/VXLAN (Always, CrossSubnet), borrowed addresses, VXLAN tunnel entries, pools,
// natOutgoing, host facts; a change recomputes only what it touches.
import { blocks as ipamBlocks } from '@tortie/ipam';
import { block, harness, node, ofType, pool, R, wep } from './calc-fixtures';

const blockSpec = (cidr: string, owner: string) => ipamBlocks.newBlock(cidr, owner);
import type { RouteSpec } from '../src/types';

const nodes = [
  node(
    'n1',
    '10.0.0.1/24',
    {},
    {},
    { ipv4VXLANTunnelAddr: '10.244.1.0', vxlanTunnelMACAddr: 'ee:00:00:00:00:01' },
  ),
  node(
    'n2',
    '10.0.0.2/24',
    {},
    {},
    { ipv4VXLANTunnelAddr: '10.244.2.0', vxlanTunnelMACAddr: 'ee:00:00:00:00:02' },
  ),
  node(
    'n3',
    '10.1.0.3/24',
    {},
    {},
    { ipv4VXLANTunnelAddr: '10.244.3.0', vxlanTunnelMACAddr: 'ee:00:00:00:00:03' },
  ),
];
const blocks = [
  block('10.244.1.0/26', 'n1'),
  block('10.244.2.0/26', 'n2', [
    [5, 'n3'],
    [6, 'n1'],
  ]),
  block('10.244.3.0/26', 'n3'),
];

function routesFor(poolSpec: object, config?: { directRoutes?: boolean }) {
  const h = harness('n1', config);
  h.set(...nodes, pool('p', '10.244.0.0/16', poolSpec), ...blocks);
  h.sync();
  return { ...h, routes: h.dp.routes };
}

describe('calc graph: routes', () => {
  test('BGP, no encapsulation: direct routes to the owners, borrowed /32 to the borrower', () => {
    const { routes, dp } = routesFor({});
    expect([...routes.values()]).toEqual<RouteSpec[]>([
      { dst: '10.244.1.0/26', kind: 'local-block', node: 'n1', natOutgoing: false },
      {
        dst: '10.244.2.0/26',
        kind: 'remote-block',
        node: 'n2',
        nextHop: '10.0.0.2',
        encap: 'none',
        natOutgoing: false,
      },
      {
        dst: '10.244.2.5/32',
        kind: 'remote-workload',
        node: 'n3',
        nextHop: '10.1.0.3',
        encap: 'none',
        natOutgoing: false,
      },
      {
        dst: '10.244.3.0/26',
        kind: 'remote-block',
        node: 'n3',
        nextHop: '10.1.0.3',
        encap: 'none',
        natOutgoing: false,
      },
    ]);
    expect(dp.pools.get('10.244.0.0/16')).toEqual({
      cidr: '10.244.0.0/16',
      ipip: 'Never',
      vxlan: 'Never',
      natOutgoing: false,
      disableBGPExport: false,
    });
    expect(dp.host).toEqual({
      node: 'n1',
      ipv4Address: '10.0.0.1',
      ipv4Subnet: '10.0.0.0/24',
      ipv4VXLANTunnelAddr: '10.244.1.0',
      vxlanTunnelMACAddr: 'ee:00:00:00:00:01',
    });
  });

  test('directRoutes off (the speaker installs learned routes): only local and tunnel routes', () => {
    const { routes } = routesFor({}, { directRoutes: false });
    expect([...routes.keys()]).toEqual(['10.244.1.0/26']);
  });

  test('IPIP Always: every remote destination over tunl0', () => {
    const { routes } = routesFor({ ipipMode: 'Always' });
    expect(
      [...routes.values()].filter((r) => r.kind.startsWith('remote')).map((r) => [r.dst, r.encap]),
    ).toEqual([
      ['10.244.2.0/26', 'ipip'],
      ['10.244.2.5/32', 'ipip'],
      ['10.244.3.0/26', 'ipip'],
    ]);
  });

  test('IPIP CrossSubnet: none inside our subnet, ipip outside it', () => {
    const { routes, set, fresh } = routesFor({ ipipMode: 'CrossSubnet' });
    expect(routes.get('10.244.2.0/26')!.encap).toBe('none');
    expect(routes.get('10.244.3.0/26')!.encap).toBe('ipip');
    expect(routes.get('10.244.2.5/32')!.encap).toBe('ipip');
    // n3 moves into our subnet: its block and the address it borrowed switch to direct
    set(
      node(
        'n3',
        '10.0.0.3/24',
        {},
        {},
        { ipv4VXLANTunnelAddr: '10.244.3.0', vxlanTunnelMACAddr: 'ee:00:00:00:00:03' },
      ),
    );
    expect(
      ofType(fresh(), 'route-update').map((u) => [u.route.dst, u.route.encap, u.route.nextHop]),
    ).toEqual([
      ['10.244.2.5/32', 'none', '10.0.0.3'],
      ['10.244.3.0/26', 'none', '10.0.0.3'],
    ]);
  });

  test('VXLAN Always: routes via the other VTEP, tunnel entries with MACs, natOutgoing', () => {
    const { routes, dp } = routesFor({ vxlanMode: 'Always', natOutgoing: true });
    expect(routes.get('10.244.2.0/26')).toEqual({
      dst: '10.244.2.0/26',
      kind: 'remote-block',
      node: 'n2',
      nextHop: '10.0.0.2',
      encap: 'vxlan',
      tunnelAddr: '10.244.2.0',
      vtepMac: 'ee:00:00:00:00:02',
      natOutgoing: true,
    });
    expect([...routes.values()].filter((r) => r.kind === 'remote-tunnel')).toEqual([
      {
        dst: '10.244.2.0/32',
        kind: 'remote-tunnel',
        node: 'n2',
        nextHop: '10.0.0.2',
        encap: 'vxlan',
        tunnelAddr: '10.244.2.0',
        vtepMac: 'ee:00:00:00:00:02',
      },
      {
        dst: '10.244.3.0/32',
        kind: 'remote-tunnel',
        node: 'n3',
        nextHop: '10.1.0.3',
        encap: 'vxlan',
        tunnelAddr: '10.244.3.0',
        vtepMac: 'ee:00:00:00:00:03',
      },
    ]);
    expect(routes.get('10.244.1.0/26')).toMatchObject({ kind: 'local-block', natOutgoing: true });
    expect(dp.pools.get('10.244.0.0/16')).toMatchObject({ vxlan: 'Always', natOutgoing: true });
  });

  test('local pods get /32s on their veth; a confirmed BlockAffinity alone makes a local block', () => {
    const h = harness('n1');
    h.set(
      node('n1', '10.0.0.1/24'),
      wep('prod', 'web', 'n1', '10.244.9.2'),
      R('BlockAffinity', 'n1-10-244-9-0-26', {
        state: 'confirmed',
        node: 'n1',
        cidr: '10.244.9.0/26',
      }),
      R('BlockAffinity', 'n1-10-244-8-0-26', {
        state: 'pending',
        node: 'n1',
        cidr: '10.244.8.0/26',
      }),
    );
    h.sync();
    expect([...h.dp.routes.values()]).toEqual([
      { dst: '10.244.9.0/26', kind: 'local-block', node: 'n1', natOutgoing: false },
      { dst: '10.244.9.2/32', kind: 'local-workload', ifaceName: 'caliweb', node: 'n1' },
    ]);
  });

  test('a pool change re-derives encapsulation; pool removal and block removal leave nothing', () => {
    const { set, del, fresh, dp } = routesFor({});
    set(pool('p', '10.244.0.0/16', { ipipMode: 'Always' }));
    const out = fresh();
    expect(ofType(out, 'pool-update')).toHaveLength(1);
    expect(ofType(out, 'route-update').map((u) => u.route.encap)).toEqual(['ipip', 'ipip', 'ipip']);
    del(pool('p', '10.244.0.0/16'), ...blocks);
    const gone = fresh();
    expect(ofType(gone, 'pool-remove')).toEqual([{ type: 'pool-remove', cidr: '10.244.0.0/16' }]);
    expect(dp.routes.size).toBe(0);
    expect(dp.pools.size).toBe(0);
  });

  test('one block change recomputes that block only', () => {
    const { g, set, fresh } = routesFor({});
    const before = g.stats().blocksRecomputed;
    set(block('10.244.3.0/26', 'n3', [[9, 'n2']]));
    expect(g.stats().blocksRecomputed - before).toBe(1);
    expect(fresh()).toEqual([
      {
        type: 'route-update',
        route: {
          dst: '10.244.3.9/32',
          kind: 'remote-workload',
          node: 'n2',
          nextHop: '10.0.0.2',
          encap: 'none',
          natOutgoing: false,
        },
      },
    ]);
  });

  test('IPv6: blocks of another node via its IPv6 address, pods as /128s', () => {
    const h = harness('n1');
    h.set(
      node('n1', '10.0.0.1/24', { ipv6Address: 'fd00::1/64' }),
      node('n2', '10.0.0.2/24', { ipv6Address: 'fd00::2/64' }),
      pool('v6', 'fd10::/48'),
      R('IPAMBlock', 'fd10-2', { ...blockSpec('fd10::200/122', 'n2') }),
      wep('prod', 'six', 'n1', [], {}, { ipNetworks: ['fd10::105/128'] }),
    );
    h.sync();
    expect([...h.dp.routes.values()]).toEqual([
      { dst: 'fd10::105/128', kind: 'local-workload', ifaceName: 'calisix', node: 'n1' },
      {
        dst: 'fd10::200/122',
        kind: 'remote-block',
        node: 'n2',
        nextHop: 'fd00::2',
        encap: 'none',
        natOutgoing: false,
      },
    ]);
    expect(h.dp.workloads.get('prod/six/eth0')).toMatchObject({
      ipv4Nets: [],
      ipv6Nets: ['fd10::105/128'],
    });
  });
});
