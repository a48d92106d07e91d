// Export communities (Calico's prefixAdvertisements) in the order calico-node's BIRD
// applies them: each session's export filter is
//   <BGPFilter export functions>; calico_export_to_bgp_peers() { ...; apply_communities(); ... }
// so the BGPFilter rules run first and never see these communities, a rule that decides
// (Accept or Reject) ends the filter before they are added, and every other exported
// route inside a CIDR gets them, learned routes too. The Loc-RIB keeps routes unchanged.
import { parseCommunity, withCommunities } from '../src/community';
import { parseSpeakerConfig } from '../src/config';
import { ExportCommunities, Rib, type FilterRule, type PeerInfo } from '../src/rib';
import type { PathAttributes } from '../src/types';
import { attrs, LOCAL_AS, peer, ROUTER_ID } from './rib-helpers';

const c = (s: string) => {
  const [a, b] = s.split(':').map(Number);
  return a * 0x10000 + b;
};

const RULES = [
  { cidr: '10.244.0.0/16', communities: ['65000:100', '65000:1:2'] },
  { cidr: '10.244.1.0/24', communities: ['65000:200', '65000:100'] },
  { cidr: '192.0.2.0/24', communities: ['65535:65281'] }, // NO_EXPORT
  { cidr: 'fd00:96::/48', communities: ['65000:6'] },
];

interface Case {
  name: string;
  /** The receiving peer's export rules (IPv4 and IPv6 alike). */
  rules?: FilterRule[];
  /** The receiving peer's AS (default eBGP 65002). */
  asn?: number;
  prefix: string;
  /** Learned from eBGP peer 65001 with these communities; else originated here. */
  learned?: string[];
  /** What the peer is sent: undefined = nothing; else its communities and large ones. */
  want?: { communities?: string[]; large?: string[] };
}

const CASES: Case[] = [
  {
    name: 'no filter: every matching rule, in rule order, without repeats',
    prefix: '10.244.1.0/26',
    want: { communities: ['65000:100', '65000:200'], large: ['65000:1:2'] },
  },
  { name: 'outside every CIDR: none', prefix: '10.0.0.0/24', want: {} },
  {
    name: 'the CIDR itself matches',
    prefix: '10.244.0.0/16',
    want: { communities: ['65000:100'], large: ['65000:1:2'] },
  },
  {
    name: 'an export rule matching the community never sees it: no match, sent with it',
    rules: [{ community: '65000:100', action: 'Reject' }],
    prefix: '10.244.1.0/26',
    want: { communities: ['65000:100', '65000:200'], large: ['65000:1:2'] },
  },
  {
    name: 'a large community neither',
    rules: [{ community: '65000:1:2', action: 'Reject' }],
    prefix: '10.244.0.0/16',
    want: { communities: ['65000:100'], large: ['65000:1:2'] },
  },
  {
    name: 'an export Accept ends the filter: sent without them',
    rules: [{ cidr: '10.244.1.0/26', matchOperator: 'Equal', action: 'Accept' }],
    prefix: '10.244.1.0/26',
    want: {},
  },
  {
    name: "an export Accept's operations only",
    rules: [{ action: 'Accept', operations: [{ addCommunity: '65000:7' }] }],
    prefix: '10.244.1.0/26',
    want: { communities: ['65000:7'] },
  },
  {
    name: 'an export Reject: not sent',
    rules: [{ cidr: '10.244.0.0/16', matchOperator: 'In', action: 'Reject' }],
    prefix: '10.244.1.0/26',
  },
  {
    name: 'a rule that does not match leaves them to the default',
    rules: [{ cidr: '10.99.0.0/16', matchOperator: 'In', action: 'Accept' }],
    prefix: '10.244.1.0/26',
    want: { communities: ['65000:100', '65000:200'], large: ['65000:1:2'] },
  },
  {
    name: 'a learned route gets them after its own',
    prefix: '10.244.7.0/24',
    learned: ['65001:1'],
    want: { communities: ['65001:1', '65000:100'], large: ['65000:1:2'] },
  },
  {
    name: 'a learned route already carrying one: not twice',
    prefix: '10.244.1.0/24',
    learned: ['65000:200'],
    want: { communities: ['65000:200', '65000:100'], large: ['65000:1:2'] },
  },
  {
    name: 'a learned route matched by its own community on export',
    rules: [{ community: '65001:1', action: 'Reject' }],
    prefix: '10.244.7.0/24',
    learned: ['65001:1'],
  },
  {
    name: 'to an iBGP peer too',
    asn: LOCAL_AS,
    prefix: '10.244.1.0/26',
    want: { communities: ['65000:100', '65000:200'], large: ['65000:1:2'] },
  },
  {
    name: 'NO_EXPORT added here does not stop this export (BIRD checks it before the filter)',
    prefix: '192.0.2.0/25',
    want: { communities: ['65535:65281'] },
  },
  { name: 'IPv6: the IPv6 rules', prefix: 'fd00:96:0:1::/64', want: { communities: ['65000:6'] } },
  {
    name: 'IPv6: a decided route neither',
    rules: [{ cidr: 'fd00:96::/48', matchOperator: 'In', action: 'Accept' }],
    prefix: 'fd00:96:0:1::/64',
    want: {},
  },
];

const text = (a: PathAttributes) => ({
  communities: (a.communities ?? []).map((n) => `${n >>> 16}:${n & 0xffff}`),
  large: (a.largeCommunities ?? []).map((l) => l.join(':')),
});

/** What `to` is sent for `prefix` (undefined: nothing), as a full export. */
function sentTo(rib: Rib, to: PeerInfo, prefix: string) {
  const afi = prefix.includes(':') ? 2 : 1;
  const g = rib.fullExport(to.id, afi).announce.find((a) => a.prefixes.includes(prefix));
  return g && text(g.attrs);
}

describe('export communities come after the export filter, as confd orders BIRD', () => {
  test.each(CASES)('$name', ({ rules, asn, prefix, learned, want }) => {
    const rib = new Rib({ localAsn: LOCAL_AS, routerId: ROUTER_ID, exportCommunities: RULES });
    const from = peer('192.0.2.1', 65001);
    const to = peer('192.0.2.2', asn ?? 65002, {
      ...(rules ? { exportFilter: { ipv4: rules, ipv6: rules } } : {}),
    });
    rib.addPeer(from);
    rib.addPeer(to);
    const v6 = prefix.includes(':');
    const nh = v6 ? { nextHop: '2001:db8::1' } : {};
    if (learned)
      rib.applyUpdate(from.id, [], attrs({ communities: learned.map(c), ...nh }), [prefix]);
    else rib.originate(prefix, attrs({ asPath: [], ...nh }));
    const got = sentTo(rib, to, prefix);
    if (!want) expect(got).toBeUndefined();
    else expect(got).toEqual({ communities: want.communities ?? [], large: want.large ?? [] });
    // the route itself is as it came: the communities are the session's
    expect(text(rib.best(prefix)!.attrs)).toEqual({ communities: learned ?? [], large: [] });
  });
});

describe('changing them on a running speaker', () => {
  test('re-sends exactly the prefixes whose export changed, to every member of a shared group', () => {
    const rib = new Rib({ localAsn: LOCAL_AS, routerId: ROUTER_ID, exportCommunities: RULES });
    const a = peer('192.0.2.2', 65002);
    const b = peer('192.0.2.3', 65002);
    rib.addPeer(a, { updateGroup: 'g' });
    rib.addPeer(b, { updateGroup: 'g' });
    for (const p of ['10.244.1.0/26', '10.244.2.0/26', '10.0.0.0/24'])
      rib.originate(p, attrs({ asPath: [] }));
    rib.fullExport(a.id, 1);
    rib.takeUpdates();

    // same rules again: nothing
    expect(rib.setExportCommunities(RULES.map((r) => ({ ...r })))).toBe(false);
    expect(rib.takeUpdates()).toEqual([]);

    expect(rib.setExportCommunities([{ cidr: '10.244.2.0/24', communities: ['65000:9'] }])).toBe(
      true,
    );
    const [update] = rib.takeUpdates();
    expect(update.members.sort()).toEqual([a.id, b.id]);
    const parts = update.parts.map((p) => [p.prefixes.join(' '), p.attrs && text(p.attrs)]);
    expect(parts).toEqual(
      expect.arrayContaining([
        ['10.244.1.0/26', { communities: [], large: [] }],
        ['10.244.2.0/26', { communities: ['65000:9'], large: [] }],
      ]),
    );
    expect(parts).toHaveLength(2); // 10.0.0.0/24 is unchanged
  });

  test('a bad community is refused, naming it, and the old rules stay', () => {
    const rib = new Rib({ localAsn: LOCAL_AS, routerId: ROUTER_ID, exportCommunities: RULES });
    expect(() =>
      rib.setExportCommunities([{ cidr: '10.0.0.0/8', communities: ['65536:1'] }]),
    ).toThrow('community "65536:1": both halves of aa:nn must be 0-65535');
    expect(new ExportCommunities(RULES).forPrefix('10.244.1.0/26')?.key).toBe('0,1,');
  });
});

describe('the one community parser', () => {
  test.each([
    ['65000:100', { standard: 65000 * 65536 + 100 }],
    ['0:0', { standard: 0 }],
    ['65535:65535', { standard: 0xffffffff }],
    ['4294967295:0:4294967295', { large: [4294967295, 0, 4294967295] }],
  ])('%s', (s, want) => expect(parseCommunity(s)).toEqual(want));

  test.each([
    ['65536:1', 'community "65536:1": both halves of aa:nn must be 0-65535'],
    [
      '1:4294967296:1',
      'large community "1:4294967296:1": each part of aa:nn:mm must be 0-4294967295',
    ],
    ['no-export', 'community "no-export" is not aa:nn or aa:nn:mm (decimal numbers)'],
    ['1:2:3:4', 'community "1:2:3:4" is not aa:nn or aa:nn:mm (decimal numbers)'],
    ['1:-2', 'community "1:-2" is not aa:nn or aa:nn:mm (decimal numbers)'],
    ['', 'community "" is not aa:nn or aa:nn:mm (decimal numbers)'],
  ])('%s is refused', (s, message) => expect(() => parseCommunity(s)).toThrow(message));

  test('one form only when asked', () => {
    expect(() => parseCommunity('1:2:3', 'standard')).toThrow('is not aa:nn (decimal numbers)');
    expect(() => parseCommunity('1:2', 'large')).toThrow('is not aa:nn:mm (decimal numbers)');
  });

  test('the speaker config uses it: originate, filters and exportCommunities name the value', () => {
    const base = { asn: 65000, routerId: '192.0.2.1' };
    expect(() =>
      parseSpeakerConfig({
        ...base,
        originate: [{ prefix: '10.0.0.0/8', communities: ['1:70000'] }],
      }),
    ).toThrow(
      'originate.0.communities.0: community "1:70000": both halves of aa:nn must be 0-65535',
    );
    expect(() =>
      parseSpeakerConfig({
        ...base,
        exportCommunities: [{ cidr: '10.0.0.0/8', communities: ['x'] }],
      }),
    ).toThrow('exportCommunities.0.communities.0: community "x" is not aa:nn or aa:nn:mm');
    expect(() =>
      parseSpeakerConfig({
        ...base,
        peers: [
          {
            address: '192.0.2.2',
            asn: 65001,
            exportFilter: { ipv4: [{ community: '1:2:3:4', action: 'Reject' }] },
          },
        ],
      }),
    ).toThrow(
      'peers.0.exportFilter.ipv4.0.community: community "1:2:3:4" is not aa:nn or aa:nn:mm',
    );
    expect(
      parseSpeakerConfig({
        ...base,
        exportCommunities: [{ cidr: '10.1.2.3/16', communities: ['1:2'] }],
      }).exportCommunities,
    ).toEqual([{ cidr: '10.1.0.0/16', communities: ['1:2'] }]);
  });

  test("withCommunities is BIRD's .add: appended once", () => {
    const a = attrs({ communities: [c('1:1')] });
    expect(withCommunities(a, [parseCommunity('1:1')])).toBe(a);
    expect(
      withCommunities(a, [parseCommunity('2:2'), parseCommunity('1:2:3'), parseCommunity('2:2')]),
    ).toMatchObject({
      communities: [c('1:1'), c('2:2')],
      largeCommunities: [[1, 2, 3]],
    });
  });
});
