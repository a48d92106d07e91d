// Import and export filters (Calico's BGPFilter rules): the evaluation on its own, and
// in the RIB (a rejected import is as if withdrawn; a rejected export is not sent).
import {
  exportPolicyKey,
  filterVerdict,
  interfaceMatches,
  prefixWithin,
  Rib,
  type FilterRoute,
  type FilterRule,
} from '../src/rib';
import { parseSpeakerConfig } from '../src/config';
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
});
