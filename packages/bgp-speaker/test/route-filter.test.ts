// Import and export filters (Calico's BGPFilter rules): the evaluation on its own, and
// in the RIB (a rejected import is as if withdrawn; a rejected export is not sent).
import {
  exportPolicyKey,
  filterRoute,
  filterVerdict,
  interfaceMatches,
  prefixWithin,
  Rib,
  type FilterRoute,
  type FilterRule,
} from '../src/rib';
import { parseSpeakerConfig } from '../src/config';
import type { PathAttributes } from '../src/types';
import { attrs, LOCAL_AS, peer, ROUTER_ID } from './rib-helpers';

const route = (prefix: string, extra: Partial<FilterRoute> = {}): FilterRoute => ({
  prefix,
  learned: true,
  ibgp: false,
  ...extra,
});
const verdict = (rules: FilterRule[], r: FilterRoute) =>
  filterVerdict({ ipv4: rules, ipv6: rules }, r);

describe('prefixWithin and interfaceMatches', () => {
  test.each([
    ['10.1.2.0/24', '10.0.0.0/8', true],
    ['10.0.0.0/8', '10.0.0.0/8', true],
    ['10.0.0.0/7', '10.0.0.0/8', false],
    ['11.0.0.0/24', '10.0.0.0/8', false],
    ['10.255.255.255/32', '10.0.0.0/8', true],
    ['0.0.0.0/0', '0.0.0.0/0', true],
    ['192.168.1.0/24', '0.0.0.0/0', true],
    ['fd00:1::/64', 'fd00::/16', true],
    ['fd01::/64', 'fd00::/16', false],
    ['fd00::/64', '10.0.0.0/8', false],
  ])('%s within %s: %s', (inner, outer, want) => {
    expect(prefixWithin(inner, outer)).toBe(want);
  });

  test.each([
    ['eth0', 'eth0', true],
    ['eth*', 'eth12', true],
    ['eth?', 'eth12', false],
    ['eth.1', 'eth01', false],
    ['*', 'anything', true],
  ])('pattern %s on %s: %s', (p, name, want) => {
    expect(interfaceMatches(p, name)).toBe(want);
  });
});

describe('filterVerdict (the first matching rule decides)', () => {
  const inTen: FilterRule = { cidr: '10.0.0.0/8', matchOperator: 'In', action: 'Reject' };
  test.each<[string, FilterRule[], FilterRoute, string | undefined]>([
    ['In: a subnet', [inTen], route('10.1.0.0/16'), 'Reject'],
    ['In: the CIDR itself', [inTen], route('10.0.0.0/8'), 'Reject'],
    ['In: outside', [inTen], route('192.168.0.0/16'), undefined],
    ['NotIn: outside', [{ ...inTen, matchOperator: 'NotIn' }], route('192.168.0.0/16'), 'Reject'],
    ['NotIn: inside', [{ ...inTen, matchOperator: 'NotIn' }], route('10.1.0.0/16'), undefined],
    ['Equal: the same', [{ ...inTen, matchOperator: 'Equal' }], route('10.0.0.0/8'), 'Reject'],
    ['Equal: a subnet', [{ ...inTen, matchOperator: 'Equal' }], route('10.1.0.0/16'), undefined],
    [
      'NotEqual: a subnet',
      [{ ...inTen, matchOperator: 'NotEqual' }],
      route('10.1.0.0/16'),
      'Reject',
    ],
    [
      'prefixLength 16-24: a /24',
      [{ ...inTen, prefixLength: { min: 16, max: 24 } }],
      route('10.1.2.0/24'),
      'Reject',
    ],
    [
      'prefixLength 16-24: a /26',
      [{ ...inTen, prefixLength: { min: 16, max: 24 } }],
      route('10.1.2.0/26'),
      undefined,
    ],
    [
      'prefixLength 16-24: the /8 (below min)',
      [{ ...inTen, prefixLength: { min: 16, max: 24 } }],
      route('10.0.0.0/8'),
      undefined,
    ],
    [
      'prefixLength max only: min is the CIDR length',
      [{ ...inTen, prefixLength: { max: 16 } }],
      route('10.0.0.0/8'),
      'Reject',
    ],
    [
      'prefixLength with NotIn: a /26 is outside the set',
      [{ ...inTen, matchOperator: 'NotIn', prefixLength: { max: 24 } }],
      route('10.1.2.0/26'),
      'Reject',
    ],
    [
      'first match wins',
      [{ cidr: '10.1.0.0/16', matchOperator: 'In', action: 'Accept' }, inTen],
      route('10.1.2.0/24'),
      'Accept',
    ],
    ['no conditions: every route', [{ action: 'Reject' }], route('192.168.0.0/16'), 'Reject'],
    [
      'source RemotePeers: an originated route is not',
      [{ source: 'RemotePeers', action: 'Reject' }],
      route('10.1.0.0/16', { learned: false }),
      undefined,
    ],
    [
      'source RemotePeers: a learned route',
      [{ source: 'RemotePeers', action: 'Reject' }],
      route('10.1.0.0/16'),
      'Reject',
    ],
    [
      'interface: matching',
      [{ interface: 'veth*', action: 'Reject' }],
      route('10.1.0.0/16', { iface: 'veth-a' }),
      'Reject',
    ],
    [
      'interface: another',
      [{ interface: 'veth*', action: 'Reject' }],
      route('10.1.0.0/16', { iface: 'eth0' }),
      undefined,
    ],
    [
      'interface: route without one',
      [{ interface: '*', action: 'Reject' }],
      route('10.1.0.0/16'),
      undefined,
    ],
    [
      'peerType eBGP towards an iBGP peer',
      [{ peerType: 'eBGP', action: 'Reject' }],
      route('10.1.0.0/16', { ibgp: true }),
      undefined,
    ],
    [
      'peerType iBGP towards an iBGP peer',
      [{ peerType: 'iBGP', action: 'Reject' }],
      route('10.1.0.0/16', { ibgp: true }),
      'Reject',
    ],
    [
      'all conditions must hold',
      [{ ...inTen, source: 'RemotePeers' }],
      route('10.1.0.0/16', { learned: false }),
      undefined,
    ],
    [
      'IPv6',
      [{ cidr: 'fd00::/16', matchOperator: 'In', action: 'Reject' }],
      route('fd00:1::/64'),
      'Reject',
    ],
  ])('%s', (_name, rules, r, want) => {
    expect(verdict(rules, r)).toBe(want);
  });

  test('IPv4 rules do not meet IPv6 routes, and the other way round', () => {
    const f = { ipv4: [{ action: 'Reject' as const }] };
    expect(filterVerdict(f, route('10.0.0.0/8'))).toBe('Reject');
    expect(filterVerdict(f, route('fd00::/64'))).toBeUndefined();
  });
});

// communities, asPathPrefix and priority as confd renders them into BIRD:
// `(aa, nn) ~ bgp_community`, `(aa, nn, mm) ~ bgp_large_community`,
// `bgp_path ~ [= a b * =]`, `defined(bgp_local_pref) && bgp_local_pref = 2^31-1 - p`
describe('filterVerdict: communities, AS path prefix, priority', () => {
  const seq = (...asns: number[]) => ({ type: 2, asns });
  const set = (...asns: number[]) => ({ type: 1, asns });
  const withAttrs = (a: Partial<PathAttributes>, extra: Partial<FilterRoute> = {}) =>
    route('10.1.0.0/16', { attrs: attrs(a), ...extra });
  test.each<[string, FilterRule, FilterRoute, string | undefined]>([
    [
      'standard community carried',
      { community: '65000:100', action: 'Reject' },
      withAttrs({ communities: [1, 65000 * 65536 + 100] }),
      'Reject',
    ],
    [
      'standard community absent',
      { community: '65000:100', action: 'Reject' },
      withAttrs({ communities: [65000 * 65536 + 101] }),
      undefined,
    ],
    [
      'no communities at all',
      { community: '65000:100', action: 'Reject' },
      withAttrs({}),
      undefined,
    ],
    [
      'large community carried',
      { community: '65000:100:999', action: 'Reject' },
      withAttrs({ largeCommunities: [[65000, 100, 999]] }),
      'Reject',
    ],
    [
      'a large community is not the standard one of the same numbers',
      { community: '65000:100', action: 'Reject' },
      withAttrs({ largeCommunities: [[65000, 100, 0]] }),
      undefined,
    ],
    [
      'asPathPrefix: the path begins with it',
      { asPathPrefix: [65001, 65002], action: 'Reject' },
      withAttrs({ asPath: [seq(65001, 65002, 65003)] }),
      'Reject',
    ],
    [
      'asPathPrefix: exactly the path',
      { asPathPrefix: [65001, 65002], action: 'Reject' },
      withAttrs({ asPath: [seq(65001, 65002)] }),
      'Reject',
    ],
    [
      'asPathPrefix: across segments',
      { asPathPrefix: [65001, 65002], action: 'Reject' },
      withAttrs({ asPath: [seq(65001), seq(65002, 7)] }),
      'Reject',
    ],
    [
      'asPathPrefix: contained but not at the start',
      { asPathPrefix: [65002], action: 'Reject' },
      withAttrs({ asPath: [seq(65001, 65002)] }),
      undefined,
    ],
    [
      'asPathPrefix: the path is shorter',
      { asPathPrefix: [65001, 65002], action: 'Reject' },
      withAttrs({ asPath: [seq(65001)] }),
      undefined,
    ],
    [
      'asPathPrefix: an empty path (originated here)',
      { asPathPrefix: [65001], action: 'Reject' },
      withAttrs({ asPath: [] }, { learned: false }),
      undefined,
    ],
    [
      'asPathPrefix: an AS_SET is one position holding any member',
      { asPathPrefix: [65001, 9, 65005], action: 'Reject' },
      withAttrs({ asPath: [seq(65001), set(8, 9), seq(65005)] }),
      'Reject',
    ],
    [
      'priority: LOCAL_PREF 2^31-1-512 is priority 512',
      { priority: 512, action: 'Reject' },
      withAttrs({ localPref: 2147483647 - 512 }),
      'Reject',
    ],
    [
      'priority: another LOCAL_PREF',
      { priority: 512, action: 'Reject' },
      withAttrs({ localPref: 2147483647 - 1024 }),
      undefined,
    ],
    [
      'priority: a learned route without LOCAL_PREF has BIRD default 100',
      { priority: 2147483547, action: 'Reject' },
      withAttrs({}),
      'Reject',
    ],
    [
      'priority: a route originated here has the normal priority 1024',
      { priority: 1024, action: 'Reject' },
      withAttrs({ asPath: [] }, { learned: false }),
      'Reject',
    ],
    [
      'all of community, path and priority must hold',
      { community: '65000:100', asPathPrefix: [65001], priority: 512, action: 'Reject' },
      withAttrs({ communities: [65000 * 65536 + 100], localPref: 2147483647 - 512 }),
      'Reject',
    ],
    [
      'all of community, path and priority: one fails',
      { community: '65000:100', asPathPrefix: [65009], priority: 512, action: 'Reject' },
      withAttrs({ communities: [65000 * 65536 + 100], localPref: 2147483647 - 512 }),
      undefined,
    ],
  ])('%s', (_name, rule, r, want) => {
    expect(verdict([rule], r)).toBe(want);
  });
});

describe('filterRoute: operations of an Accept rule (confd filterOperationStatements)', () => {
  const base = attrs({ asPath: [{ type: 2, asns: [65001] }], communities: [7] });
  const run = (rule: FilterRule, a: PathAttributes = base) =>
    filterRoute(
      { ipv4: [{ action: 'Reject', cidr: '10.9.0.0/16', matchOperator: 'In' }, rule] },
      {
        prefix: '10.1.0.0/16',
        learned: true,
        ibgp: false,
        attrs: a,
      },
    );

  test('addCommunity appends a standard community once', () => {
    const out = run({ action: 'Accept', operations: [{ addCommunity: '65000:200' }] });
    expect(out).toMatchObject({ action: 'Accept', rule: 1 });
    expect(out.attrs?.communities).toEqual([7, 65000 * 65536 + 200]);
    const again = run({ action: 'Accept', operations: [{ addCommunity: '65000:200' }] }, out.attrs);
    expect(again.attrs?.communities).toEqual([7, 65000 * 65536 + 200]);
  });

  test('addCommunity with three parts adds a large community', () => {
    const out = run({ action: 'Accept', operations: [{ addCommunity: '65000:300:400' }] });
    expect(out.attrs?.largeCommunities).toEqual([[65000, 300, 400]]);
    expect(out.attrs?.communities).toEqual([7]);
  });

  test('prependASPath [a, b] makes the path begin "a b"', () => {
    const out = run({ action: 'Accept', operations: [{ prependASPath: [65010, 65011] }] });
    expect(out.attrs?.asPath).toEqual([{ type: 2, asns: [65010, 65011, 65001] }]);
  });

  test('prependASPath before an AS_SET starts a new sequence', () => {
    const out = run(
      { action: 'Accept', operations: [{ prependASPath: [5] }] },
      attrs({
        asPath: [{ type: 1, asns: [1, 2] }],
      }),
    );
    expect(out.attrs?.asPath).toEqual([
      { type: 2, asns: [5] },
      { type: 1, asns: [1, 2] },
    ]);
  });

  test('setPriority sets LOCAL_PREF to 2^31-1 - priority', () => {
    const out = run({ action: 'Accept', operations: [{ setPriority: 256 }] });
    expect(out.attrs?.localPref).toBe(2147483647 - 256);
  });

  test('operations run in order; the input is not changed', () => {
    const out = run({
      action: 'Accept',
      operations: [{ setPriority: 256 }, { addCommunity: '1:2' }, { prependASPath: [9] }],
    });
    expect(out.attrs).toMatchObject({
      localPref: 2147483647 - 256,
      communities: [7, 65538],
      asPath: [{ type: 2, asns: [9, 65001] }],
    });
    expect(base).toEqual(attrs({ asPath: [{ type: 2, asns: [65001] }], communities: [7] }));
  });

  test('no operations: no changed attributes; Reject: none either', () => {
    expect(run({ action: 'Accept' })).toEqual({ action: 'Accept', rule: 1 });
    expect(run({ action: 'Reject' })).toEqual({ action: 'Reject', rule: 1 });
    expect(filterRoute({ ipv4: [] }, { prefix: '10.0.0.0/8', learned: true, ibgp: false })).toEqual(
      {},
    );
  });
});

describe('filters in the RIB', () => {
  const newRib = () => new Rib({ localAsn: LOCAL_AS, routerId: ROUTER_ID });
  const rejectTen = {
    ipv4: [{ cidr: '10.0.0.0/8', matchOperator: 'In' as const, action: 'Reject' as const }],
  };

  test('import: a rejected prefix never reaches the Loc-RIB, and replaces the one accepted before', () => {
    const rib = newRib();
    const a = peer('192.0.2.1', 65001, { importFilter: rejectTen });
    rib.addPeer(a);
    rib.applyUpdate(a.id, [], attrs(), ['10.1.0.0/16', '192.168.0.0/16']);
    expect(rib.bestRoutes().map((r) => r.prefix)).toEqual(['192.168.0.0/16']);
    expect(rib.receivedCount(a.id)).toBe(1);
  });

  test('export: a rejected prefix is not sent, the others are; learned-only rules spare originated routes', () => {
    const rib = newRib();
    const from = peer('192.0.2.1', 65001);
    const to = peer('192.0.2.2', 65002, {
      exportFilter: { ipv4: [{ source: 'RemotePeers', action: 'Reject' }] },
    });
    const plain = peer('192.0.2.3', 65003);
    for (const p of [from, to, plain]) rib.addPeer(p);
    rib.originate('172.16.0.0/16', attrs({ asPath: [], nextHop: '192.0.2.254' }));
    rib.applyUpdate(from.id, [], attrs(), ['10.1.0.0/16']);
    const sent = (id: string) =>
      rib
        .fullExport(id, 1)
        .announce.flatMap((a) => a.prefixes)
        .sort();
    expect(sent(to.id)).toEqual(['172.16.0.0/16']);
    expect(sent(plain.id)).toEqual(['10.1.0.0/16', '172.16.0.0/16']);
    // peers with different export filters never share an update group
    expect(exportPolicyKey(to)).not.toBe(exportPolicyKey({ ...to, exportFilter: undefined }));
  });
});

describe('operations in the RIB', () => {
  const newRib = () => new Rib({ localAsn: LOCAL_AS, routerId: ROUTER_ID });

  test('import: the changed route is the one stored and compared (setPriority wins the decision)', () => {
    const rib = newRib();
    const a = peer('192.0.2.1', 65001, {
      importFilter: {
        ipv4: [
          {
            community: '65001:1',
            action: 'Accept',
            operations: [{ setPriority: 500 }, { addCommunity: '65000:7' }],
          },
        ],
      },
    });
    const b = peer('192.0.2.2', 65002);
    rib.addPeer(a);
    rib.addPeer(b);
    // b's path is shorter; a's is preferred only through the LOCAL_PREF its filter sets
    rib.applyUpdate(
      b.id,
      [],
      attrs({ asPath: [{ type: 2, asns: [65002] }], nextHop: '192.0.2.2' }),
      ['10.1.0.0/16', '10.2.0.0/16'],
    );
    rib.applyUpdate(
      a.id,
      [],
      attrs({ asPath: [{ type: 2, asns: [65001, 1, 2] }], communities: [65001 * 65536 + 1] }),
      ['10.1.0.0/16'],
    );
    rib.applyUpdate(a.id, [], attrs({ asPath: [{ type: 2, asns: [65001, 1, 2] }] }), [
      '10.2.0.0/16',
    ]);
    const best = new Map(rib.bestRoutes().map((r) => [r.prefix, r]));
    expect(best.get('10.1.0.0/16')?.peer?.id).toBe(a.id);
    expect(best.get('10.1.0.0/16')?.attrs).toMatchObject({
      localPref: 2147483647 - 500,
      communities: [65001 * 65536 + 1, 65000 * 65536 + 7],
    });
    // no community: no rule matched, the default (accept, unchanged) applied
    expect(best.get('10.2.0.0/16')?.peer?.id).toBe(b.id);
  });

  test('export: operations run before our AS is prepended; other peers get the route unchanged', () => {
    const rib = newRib();
    const from = peer('192.0.2.1', 65001);
    const to = peer('192.0.2.2', 65002, {
      exportFilter: {
        ipv4: [
          {
            asPathPrefix: [65001],
            action: 'Accept',
            operations: [{ prependASPath: [64999, 64998] }, { addCommunity: '65000:300:400' }],
          },
        ],
      },
    });
    const plain = peer('192.0.2.3', 65003);
    for (const p of [from, to, plain]) rib.addPeer(p);
    rib.applyUpdate(from.id, [], attrs(), ['10.1.0.0/16']);
    rib.originate('172.16.0.0/16', attrs({ asPath: [], nextHop: '192.0.2.254' }));
    const sent = (id: string) =>
      new Map(
        rib.fullExport(id, 1).announce.flatMap((g) => g.prefixes.map((p) => [p, g.attrs] as const)),
      );
    const toTo = sent(to.id);
    expect(toTo.get('10.1.0.0/16')).toMatchObject({
      asPath: [{ type: 2, asns: [LOCAL_AS, 64999, 64998, 65001] }],
      largeCommunities: [[65000, 300, 400]],
    });
    // the originated route's path is empty: the rule does not match
    expect(toTo.get('172.16.0.0/16')?.asPath).toEqual([{ type: 2, asns: [LOCAL_AS] }]);
    expect(toTo.get('172.16.0.0/16')?.largeCommunities).toBeUndefined();
    expect(sent(plain.id).get('10.1.0.0/16')).toMatchObject({
      asPath: [{ type: 2, asns: [LOCAL_AS, 65001] }],
    });
    expect(sent(plain.id).get('10.1.0.0/16')?.largeCommunities).toBeUndefined();
  });

  test('export setPriority reaches an iBGP peer as LOCAL_PREF and no eBGP peer', () => {
    const rib = newRib();
    const setP = { ipv4: [{ action: 'Accept' as const, operations: [{ setPriority: 256 }] }] };
    const ibgp = peer('192.0.2.5', LOCAL_AS, { exportFilter: setP });
    const ebgp = peer('192.0.2.6', 65006, { exportFilter: setP });
    rib.addPeer(ibgp);
    rib.addPeer(ebgp);
    rib.originate('172.16.0.0/16', attrs({ asPath: [], nextHop: '192.0.2.254' }));
    const one = (id: string) => rib.fullExport(id, 1).announce[0].attrs;
    expect(one(ibgp.id).localPref).toBe(2147483647 - 256);
    expect(one(ebgp.id).localPref).toBeUndefined();
  });
});

describe('speaker configuration', () => {
  const base = { asn: 65000, routerId: '192.0.2.1' };
  test('a peer takes import and export filters, the CIDR canonical', () => {
    const c = parseSpeakerConfig({
      ...base,
      peers: [
        {
          address: '192.0.2.2',
          asn: 65001,
          importFilter: { ipv4: [{ cidr: '10.1.2.3/8', matchOperator: 'In', action: 'Reject' }] },
        },
      ],
    });
    expect(c.peers[0].importFilter?.ipv4?.[0].cidr).toBe('10.0.0.0/8');
  });

  test('a cidr without matchOperator is refused, naming the field', () => {
    expect(() =>
      parseSpeakerConfig({
        ...base,
        peers: [
          {
            address: '192.0.2.2',
            asn: 65001,
            exportFilter: { ipv4: [{ cidr: '10.0.0.0/8', action: 'Accept' }] },
          },
        ],
      }),
    ).toThrow(/peers.0.exportFilter.ipv4.0: cidr and matchOperator/);
  });

  test('filter rules take communities, asPathPrefix, priority and operations', () => {
    const c = parseSpeakerConfig({
      ...base,
      peers: [
        {
          address: '192.0.2.2',
          asn: 65001,
          importFilter: {
            ipv4: [
              {
                community: '65000:1:2',
                asPathPrefix: [65001],
                priority: 512,
                action: 'Accept',
                operations: [{ setPriority: 256 }, { prependASPath: [1, 2] }],
              },
            ],
          },
        },
      ],
    });
    expect(c.peers[0].importFilter?.ipv4?.[0]).toMatchObject({
      community: '65000:1:2',
      operations: [{ setPriority: 256 }, { prependASPath: [1, 2] }],
    });
    const bad = (rule: object) => () =>
      parseSpeakerConfig({
        ...base,
        peers: [{ address: '192.0.2.2', asn: 65001, importFilter: { ipv4: [rule] } }],
      });
    expect(bad({ community: '65536:1', action: 'Accept' })).toThrow(
      /community "65536:1": both halves of aa:nn must be 0-65535/,
    );
    expect(bad({ action: 'Reject', operations: [{ setPriority: 5 }] })).toThrow(
      /operations may only be used with action Accept/,
    );
    expect(bad({ action: 'Accept', operations: [{ setPriority: 0 }] })).toThrow(/setPriority/);
  });
});
