// The decision process (RFC 4271 §9.1.2.2, RFC 4456 §9) one step at a time, and the
// export rewriting of RFC 4271 §5.1 / RFC 4456 §8 as a pure function.
import {
  asPathLength,
  compareAddresses,
  exportAttributes,
  neighbourAs,
  NO_ADVERTISE,
  NO_EXPORT,
  selectBest,
  type Path,
} from '../src/rib';
import { attrs, LOCAL_AS, path, peer, ROUTER_ID } from './rib-helpers';

const e1 = peer('10.0.0.1', 65001);
const e2 = peer('10.0.0.2', 65002);
const i1 = peer('10.0.0.3', LOCAL_AS);
const seq = (...asns: number[]) => [{ type: 2 as const, asns }];

describe('decision process: each step decides on its own', () => {
  // Each case differs from its loser only in the step named, and every earlier step ties.
  test.each<[string, Path, Path]>([
    ['higher LOCAL_PREF', path(i1, { localPref: 200 }), path(e1, { localPref: 100 })],
    ['missing LOCAL_PREF counts as 100', path(e1, {}), path(i1, { localPref: 99 })],
    ['locally originated', path(undefined, { asPath: seq(1, 2, 3) }), path(e1, {})],
    ['shorter AS_PATH', path(e2, { asPath: seq(65002) }), path(e1, { asPath: seq(65001, 1) })],
    [
      'an AS_SET counts one',
      path(e2, { asPath: [...seq(65002), { type: 1, asns: [1, 2, 3] }] }),
      path(e1, { asPath: seq(65001, 1, 2) }),
    ],
    [
      'confederation segments count zero',
      path(e2, { asPath: [{ type: 3, asns: [64512, 64513, 64514] }, ...seq(65002)] }),
      path(e1, { asPath: seq(65001, 1) }),
    ],
    ['lower ORIGIN', path(e2, { origin: 0, asPath: seq(65002) }), path(e1, { origin: 2 })],
    [
      'lower MED from the same neighbour AS',
      path(peer('10.0.0.9', 65001), { med: 5 }),
      path(e1, { med: 10 }),
    ],
    ['missing MED counts as 0', path(peer('10.0.0.9', 65001), {}), path(e1, { med: 1 })],
    ['eBGP over iBGP', path(e2, { asPath: seq(65009) }), path(i1, { asPath: seq(65009) })],
    [
      'lower router id',
      path(peer('10.0.0.9', 65009, { routerId: '1.1.1.1' }), { asPath: seq(65009) }),
      path(peer('10.0.0.8', 65009, { routerId: '2.2.2.2' }), { asPath: seq(65009) }),
    ],
    [
      'router id compared as a number, not as text',
      path(peer('10.0.0.9', 65009, { routerId: '9.0.0.9' }), { asPath: seq(65009) }),
      path(peer('10.0.0.8', 65009, { routerId: '10.0.0.1' }), { asPath: seq(65009) }),
    ],
    [
      'ORIGINATOR_ID instead of the router id',
      path(peer('10.0.0.9', LOCAL_AS, { routerId: '9.9.9.9' }), { originatorId: '1.1.1.1' }),
      path(peer('10.0.0.8', LOCAL_AS, { routerId: '2.2.2.2' }), {}),
    ],
    [
      'shorter CLUSTER_LIST',
      path(peer('10.0.0.9', LOCAL_AS), { originatorId: '1.1.1.1', clusterList: ['5.5.5.5'] }),
      path(peer('10.0.0.8', LOCAL_AS), {
        originatorId: '1.1.1.1',
        clusterList: ['5.5.5.5', '6.6.6.6'],
      }),
    ],
    [
      'lower peer address',
      path(peer('10.0.0.10', 65009, { routerId: '1.1.1.1' }), { asPath: seq(65009) }),
      path(peer('10.0.0.20', 65009, { routerId: '1.1.1.1' }), { asPath: seq(65009) }),
    ],
    [
      'lower IPv6 peer address',
      path(peer('2001:db8::9', 65009, { routerId: '1.1.1.1' }), { asPath: seq(65009) }),
      path(peer('2001:db8::10', 65009, { routerId: '1.1.1.1' }), { asPath: seq(65009) }),
    ],
  ])('%s wins', (_name, winner, loser) => {
    expect(selectBest([loser, winner])).toBe(winner);
    expect(selectBest([winner, loser])).toBe(winner);
  });

  test('IGP cost to the next hop decides between otherwise equal iBGP paths', () => {
    const a = path(peer('10.0.0.1', LOCAL_AS, { routerId: '1.1.1.1' }), { nextHop: '192.0.2.1' });
    const b = path(peer('10.0.0.2', LOCAL_AS, { routerId: '2.2.2.2' }), { nextHop: '192.0.2.2' });
    expect(selectBest([a, b])).toBe(a); // no hook: every next hop costs 0, router id decides
    expect(selectBest([a, b], (nh) => (nh === '192.0.2.2' ? 1 : 10))).toBe(b);
  });

  test('no candidates, one candidate', () => {
    expect(selectBest([])).toBeUndefined();
    const only = path(e1);
    expect(selectBest([only])).toBe(only);
  });
});

describe('MED is compared only between routes from the same neighbour AS', () => {
  test('a lower MED from another AS does not win', () => {
    const a = path(peer('10.0.0.1', 65001, { routerId: '9.9.9.9' }), { med: 1 });
    const b = path(peer('10.0.0.2', 65002, { routerId: '1.1.1.1' }), {
      med: 100,
      asPath: seq(65002),
    });
    expect(selectBest([a, b])).toBe(b); // router id decides, not MED
  });

  test('three routes: MED removes only the worse route of the shared AS', () => {
    // a and c share AS 65001; c has the worse MED and would win on router id.
    // b (AS 65002) is not compared by MED with either.
    const a = path(peer('10.0.0.1', 65001, { routerId: '3.3.3.3' }), { med: 5 });
    const b = path(peer('10.0.0.2', 65002, { routerId: '2.2.2.2' }), {
      med: 50,
      asPath: seq(65002),
    });
    const c = path(peer('10.0.0.3', 65001, { routerId: '1.1.1.1' }), { med: 10 });
    for (const order of [
      [a, b, c],
      [c, b, a],
      [b, c, a],
    ])
      expect(selectBest(order)).toBe(b);
    expect(selectBest([a, c])).toBe(a);
  });

  test('the neighbour AS is the first AS outside confederation segments', () => {
    expect(neighbourAs(attrs({ asPath: [{ type: 3, asns: [64512] }, ...seq(65001, 2)] }))).toBe(
      65001,
    );
    expect(neighbourAs(attrs({ asPath: [] }))).toBe(0);
    expect(asPathLength(attrs({ asPath: [{ type: 4, asns: [1, 2] }, ...seq(3)] }))).toBe(1);
  });
});

test('compareAddresses orders numerically, IPv4 before IPv6', () => {
  expect(compareAddresses('9.255.255.255', '10.0.0.0')).toBeLessThan(0);
  expect(compareAddresses('10.0.0.0', '2001:db8::1')).toBeLessThan(0);
  expect(compareAddresses('2001:db8::2', '2001:db8::10')).toBeLessThan(0);
  expect(compareAddresses(undefined, '0.0.0.0')).toBeLessThan(0);
  expect(compareAddresses('1.2.3.4', '1.2.3.4')).toBe(0);
});

describe('export policy', () => {
  const local = { asn: LOCAL_AS, routerId: ROUTER_ID };
  const i2 = peer('10.0.0.4', LOCAL_AS);
  const e3 = peer('10.0.0.5', 65003);

  test('never back to the peer the route came from', () => {
    expect(exportAttributes(path(e1), e1, local, false)).toBeUndefined();
    expect(exportAttributes(path(i1), i1, local, false)).toBeUndefined();
  });

  test('iBGP split horizon: iBGP-learned routes are not sent to iBGP peers', () => {
    expect(exportAttributes(path(i1), i2, local, false)).toBeUndefined();
    expect(exportAttributes(path(i1), e3, local, false)).toBeDefined();
    expect(exportAttributes(path(e1), i2, local, false)).toBeDefined();
  });

  test('route reflection: client routes to everyone, non-client routes to clients, stamped', () => {
    const rr = { ...local, clusterId: '9.9.9.9' };
    const client = peer('10.0.0.5', LOCAL_AS, { rrClient: true, routerId: '5.5.5.5' });
    const nonClient = peer('10.0.0.6', LOCAL_AS, { routerId: '6.6.6.6' });
    expect(exportAttributes(path(client), nonClient, rr, false)).toMatchObject({
      originatorId: '5.5.5.5',
      clusterList: ['9.9.9.9'],
      nextHop: '192.0.2.1',
    });
    expect(
      exportAttributes(
        path(nonClient, { originatorId: '7.7.7.7', clusterList: ['8.8.8.8'] }),
        client,
        rr,
        false,
      ),
    ).toMatchObject({ originatorId: '7.7.7.7', clusterList: ['9.9.9.9', '8.8.8.8'] });
    expect(
      exportAttributes(path(nonClient), peer('10.0.0.7', LOCAL_AS), rr, false),
    ).toBeUndefined();
  });

  test('a reflect hook overrides split horizon', () => {
    const everywhere = () => true;
    expect(exportAttributes(path(i1), i2, local, false, everywhere)).toMatchObject({
      originatorId: i1.routerId,
      clusterList: [ROUTER_ID], // no cluster id configured: our router id
    });
    expect(exportAttributes(path(i1), i2, local, false, () => false)).toBeUndefined();
  });

  test('eBGP export: prepend our AS, next hop self, drop LOCAL_PREF, MED, ORIGINATOR_ID, CLUSTER_LIST', () => {
    const out = exportAttributes(
      path(i1, {
        localPref: 300,
        originatorId: '1.1.1.1',
        clusterList: ['2.2.2.2'],
        med: 4,
        communities: [0x00010002],
        origin: 1,
      }),
      e3,
      local,
      false,
    )!;
    expect(out).toEqual({
      origin: 1,
      asPath: seq(LOCAL_AS, 65001),
      nextHop: '192.0.2.254',
      communities: [0x00010002],
      med: undefined,
      atomicAggregate: undefined,
      aggregator: undefined,
      largeCommunities: undefined,
      unknown: undefined,
    });
  });

  test('eBGP export of a path starting with an AS_SET prepends a new sequence', () => {
    const out = exportAttributes(
      path(e1, { asPath: [{ type: 1, asns: [1, 2] }] }),
      e3,
      local,
      false,
    );
    expect(out!.asPath).toEqual([...seq(LOCAL_AS), { type: 1, asns: [1, 2] }]);
  });

  test('locally originated: MED kept towards eBGP; iBGP gets LOCAL_PREF 100 and an empty AS_PATH', () => {
    const own = path(undefined, { med: 7, asPath: [], nextHop: undefined, origin: 2 });
    expect(exportAttributes(own, e3, local, false)).toMatchObject({
      med: 7,
      asPath: seq(LOCAL_AS),
    });
    expect(exportAttributes(own, i2, local, false)).toMatchObject({
      localPref: 100,
      asPath: [],
      origin: 2,
      nextHop: '192.0.2.254', // no next hop given: ours
    });
  });

  test('iBGP keeps the next hop unless next-hop-self; an existing LOCAL_PREF is kept', () => {
    const p = path(e1, { nextHop: '198.51.100.1' });
    expect(exportAttributes(p, i2, local, false)!.nextHop).toBe('198.51.100.1');
    expect(exportAttributes(p, i2, local, false)!.localPref).toBe(100);
    expect(exportAttributes(p, { ...i2, nextHopSelf: true }, local, false)!.nextHop).toBe(
      '192.0.2.254',
    );
    expect(exportAttributes(path(e1, { localPref: 250 }), i2, local, false)!.localPref).toBe(250);
  });

  test('eBGP with next hop keep: the original next hop, ours only for what we originate', () => {
    const p = path(e1, { nextHop: '198.51.100.1' });
    expect(exportAttributes(p, e3, local, false)!.nextHop).toBe('192.0.2.254');
    expect(exportAttributes(p, { ...e3, nextHopKeep: true }, local, false)!.nextHop).toBe(
      '198.51.100.1',
    );
    const own = path(undefined, { asPath: [], nextHop: undefined });
    expect(exportAttributes(own, { ...e3, nextHopKeep: true }, local, false)!.nextHop).toBe(
      '192.0.2.254',
    );
  });

  test('an IPv6 route to an eBGP peer uses our IPv6 next hop; none in that family: not sent', () => {
    const p = path(undefined, { asPath: [], nextHop: '2001:db8::1' });
    expect(exportAttributes(p, e3, local, true)!.nextHop).toBe('2001:db8::fe');
    expect(
      exportAttributes(p, { ...e3, localAddress: { ipv4: '192.0.2.254' } }, local, true),
    ).toBeUndefined();
  });

  test('well-known communities: NO_ADVERTISE goes nowhere, NO_EXPORT stays inside the AS', () => {
    expect(
      exportAttributes(path(e1, { communities: [NO_ADVERTISE] }), i2, local, false),
    ).toBeUndefined();
    expect(
      exportAttributes(path(i1, { communities: [NO_EXPORT] }), e3, local, false),
    ).toBeUndefined();
    expect(
      exportAttributes(path(e1, { communities: [NO_EXPORT] }), i2, local, false),
    ).toBeDefined();
  });

  test('unknown attributes: only optional transitive ones are passed on, marked Partial', () => {
    const unknown = [
      { flags: 0xc0, typeCode: 99, value: Buffer.from([1]) }, // optional transitive
      { flags: 0x80, typeCode: 98, value: Buffer.from([2]) }, // optional non-transitive
    ];
    const out = exportAttributes(path(e1, { unknown }), e3, local, false)!;
    expect(out.unknown).toEqual([{ flags: 0xe0, typeCode: 99, value: Buffer.from([1]) }]);
  });
});
