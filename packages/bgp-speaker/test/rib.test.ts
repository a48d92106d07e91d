// RIBs: the decision process step by step, import loop checks, export rewriting and
// split horizon, Adj-RIB-Out deltas, and incremental vs from-scratch best paths.
import fc from 'fast-check';
import {
  AttributeStore,
  Rib,
  exportAttributes,
  selectBest,
  type Path,
  type PeerInfo,
} from '../src/rib';
import type { PathAttributes } from '../src/types';

const LOCAL_AS = 65000;

function peer(id: string, asn: number, extra: Partial<PeerInfo> = {}): PeerInfo {
  return {
    id,
    address: id,
    asn,
    routerId: id,
    localAsn: LOCAL_AS,
    localAddress: { ipv4: '192.0.2.254', ipv6: '2001:db8::fe' },
    ibgp: asn === LOCAL_AS,
    ...extra,
  };
}

const attrs = (a: Partial<PathAttributes> = {}): PathAttributes => ({
  origin: 0,
  asPath: [{ type: 2, asns: [65001] }],
  nextHop: '192.0.2.1',
  ...a,
});

const path = (p: PeerInfo | undefined, a: Partial<PathAttributes>): Path => ({
  peer: p,
  attrs: attrs(a),
});

describe('decision process', () => {
  const e1 = peer('10.0.0.1', 65001);
  const e2 = peer('10.0.0.2', 65002);
  const i1 = peer('10.0.0.3', LOCAL_AS);

  test.each<[string, Path, Path]>([
    ['higher LOCAL_PREF', path(i1, { localPref: 200 }), path(e1, { localPref: 100 })],
    ['missing LOCAL_PREF counts as 100', path(e1, {}), path(i1, { localPref: 99 })],
    [
      'locally originated',
      path(undefined, { asPath: [{ type: 2, asns: [1, 2, 3] }] }),
      path(e1, {}),
    ],
    [
      'shorter AS_PATH',
      path(e2, { asPath: [{ type: 2, asns: [65002] }] }),
      path(e1, { asPath: [{ type: 2, asns: [65001, 1] }] }),
    ],
    [
      'an AS_SET counts one',
      path(e2, {
        asPath: [
          { type: 2, asns: [65002] },
          { type: 1, asns: [1, 2, 3] },
        ],
      }),
      path(e1, { asPath: [{ type: 2, asns: [65001, 1, 2] }] }),
    ],
    ['lower ORIGIN', path(e2, { origin: 0 }), path(e1, { origin: 2 })],
    [
      'lower MED from the same neighbour AS',
      path(peer('10.0.0.9', 65001), { med: 5 }),
      path(e1, { med: 10 }),
    ],
    ['missing MED counts as 0', path(peer('10.0.0.9', 65001), {}), path(e1, { med: 1 })],
    [
      'eBGP over iBGP',
      path(e2, { asPath: [{ type: 2, asns: [65009] }] }),
      path(i1, { asPath: [{ type: 2, asns: [65009] }] }),
    ],
    [
      'lower router id',
      path(peer('10.0.0.9', 65009, { routerId: '1.1.1.1' }), {
        asPath: [{ type: 2, asns: [65009] }],
      }),
      path(peer('10.0.0.8', 65009, { routerId: '2.2.2.2' }), {
        asPath: [{ type: 2, asns: [65009] }],
      }),
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
      path(peer('10.0.0.1', 65009, { routerId: '1.1.1.1' }), {
        asPath: [{ type: 2, asns: [65009] }],
      }),
      path(peer('10.0.0.2', 65009, { routerId: '1.1.1.1' }), {
        asPath: [{ type: 2, asns: [65009] }],
      }),
    ],
  ])('%s wins', (_name, winner, loser) => {
    expect(selectBest([loser, winner])).toBe(winner);
    expect(selectBest([winner, loser])).toBe(winner);
  });

  test('MED is not compared between different neighbour ASes', () => {
    // lower MED from AS 65001, but the AS 65002 route wins on router id
    const a = path(peer('10.0.0.1', 65001, { routerId: '9.9.9.9' }), { med: 1 });
    const b = path(peer('10.0.0.2', 65002, { routerId: '1.1.1.1' }), {
      med: 100,
      asPath: [{ type: 2, asns: [65002] }],
    });
    expect(selectBest([a, b])).toBe(b);
  });

  test('IGP cost to the next hop decides between otherwise equal iBGP paths', () => {
    const a = path(peer('10.0.0.1', LOCAL_AS, { routerId: '1.1.1.1' }), { nextHop: '192.0.2.1' });
    const b = path(peer('10.0.0.2', LOCAL_AS, { routerId: '2.2.2.2' }), { nextHop: '192.0.2.2' });
    expect(selectBest([a, b], (nh) => (nh === '192.0.2.2' ? 1 : 10))).toBe(b);
  });
});

describe('Rib', () => {
  function rib(extra = {}) {
    const r = new Rib({ localAsn: LOCAL_AS, routerId: '192.0.2.254', ...extra });
    return r;
  }

  test('withdrawing the best path falls back to the second best', () => {
    const r = rib();
    const a = peer('10.0.0.1', 65001);
    const b = peer('10.0.0.2', 65002);
    r.addPeer(a);
    r.addPeer(b);
    r.applyUpdate(a.id, [], attrs({ asPath: [{ type: 2, asns: [65001] }] }), ['10.1.0.0/16']);
    r.applyUpdate(b.id, [], attrs({ asPath: [{ type: 2, asns: [65002, 1] }] }), ['10.1.0.0/16']);
    expect(r.best('10.1.0.0/16')!.peer).toBe(a);
    const changes = r.applyUpdate(a.id, ['10.1.0.0/16'], null, []);
    expect(changes).toEqual([
      {
        prefix: '10.1.0.0/16',
        best: expect.objectContaining({ peer: b }),
        previous: expect.objectContaining({ peer: a }),
      },
    ]);
    r.applyUpdate(b.id, ['10.1.0.0/16'], null, []);
    expect(r.best('10.1.0.0/16')).toBeUndefined();
    expect(r.bestCount()).toBe(0);
  });

  test('removing a peer withdraws exactly its routes', () => {
    const r = rib();
    const a = peer('10.0.0.1', 65001);
    const b = peer('10.0.0.2', 65002);
    r.addPeer(a);
    r.addPeer(b);
    r.applyUpdate(a.id, [], attrs(), ['10.1.0.0/16', '10.2.0.0/16']);
    r.applyUpdate(b.id, [], attrs({ asPath: [{ type: 2, asns: [65002] }] }), ['10.3.0.0/16']);
    const changes = r.removePeer(a.id);
    expect(changes.map((c) => c.prefix).sort()).toEqual(['10.1.0.0/16', '10.2.0.0/16']);
    expect(r.bestRoutes().map((x) => x.prefix)).toEqual(['10.3.0.0/16']);
  });

  test('loops are rejected on import: own AS, own ORIGINATOR_ID, own cluster id', () => {
    const r = rib({ clusterId: '9.9.9.9' });
    const e = peer('10.0.0.1', 65001);
    const i = peer('10.0.0.2', LOCAL_AS);
    r.addPeer(e);
    r.addPeer(i);
    r.applyUpdate(e.id, [], attrs({ asPath: [{ type: 2, asns: [65001, LOCAL_AS] }] }), [
      '10.1.0.0/16',
    ]);
    r.applyUpdate(i.id, [], attrs({ originatorId: '192.0.2.254' }), ['10.2.0.0/16']);
    r.applyUpdate(i.id, [], attrs({ clusterList: ['9.9.9.9'] }), ['10.3.0.0/16']);
    r.applyUpdate(i.id, [], attrs({ clusterList: ['8.8.8.8'] }), ['10.4.0.0/16']);
    expect(r.bestRoutes().map((x) => x.prefix)).toEqual(['10.4.0.0/16']);
  });

  test('a looped re-announcement withdraws the earlier good route', () => {
    const r = rib();
    const e = peer('10.0.0.1', 65001);
    r.addPeer(e);
    r.applyUpdate(e.id, [], attrs(), ['10.1.0.0/16']);
    r.applyUpdate(e.id, [], attrs({ asPath: [{ type: 2, asns: [65001, LOCAL_AS] }] }), [
      '10.1.0.0/16',
    ]);
    expect(r.best('10.1.0.0/16')).toBeUndefined();
  });

  test('LOCAL_PREF from an eBGP peer is ignored', () => {
    const r = rib();
    const e = peer('10.0.0.1', 65001);
    r.addPeer(e);
    r.applyUpdate(e.id, [], attrs({ localPref: 500 }), ['10.1.0.0/16']);
    expect(r.best('10.1.0.0/16')!.attrs.localPref).toBeUndefined();
  });

  test('Adj-RIB-Out groups by attributes, suppresses repeats, withdraws only what was sent', () => {
    const r = rib();
    const src = peer('10.0.0.1', 65001);
    const dst = peer('10.0.0.2', 65002);
    r.addPeer(src);
    r.addPeer(dst);
    r.applyUpdate(src.id, [], attrs({ med: 1 }), ['10.1.0.0/16', '10.2.0.0/16']);
    r.applyUpdate(src.id, [], attrs({ communities: [7] }), ['10.3.0.0/16']);
    const first = r.takePending(dst.id);
    expect(first.withdrawn).toEqual([]);
    expect(first.announce.map((g) => g.prefixes)).toEqual([
      ['10.1.0.0/16', '10.2.0.0/16'],
      ['10.3.0.0/16'],
    ]);
    // eBGP export: our AS prepended, next hop self, MED from another AS dropped
    expect(first.announce[0].attrs).toMatchObject({
      asPath: [{ type: 2, asns: [LOCAL_AS, 65001] }],
      nextHop: '192.0.2.254',
    });
    expect(first.announce[0].attrs.med).toBeUndefined();
    // the same attributes again: nothing to send
    r.applyUpdate(src.id, [], attrs({ med: 1 }), ['10.1.0.0/16']);
    expect(r.takePending(dst.id)).toEqual({ withdrawn: [], announce: [] });
    r.applyUpdate(src.id, ['10.1.0.0/16', '10.99.0.0/16'], null, []);
    expect(r.takePending(dst.id)).toEqual({ withdrawn: ['10.1.0.0/16'], announce: [] });
    // never back to the peer it came from
    expect(r.takePending(src.id).announce).toEqual([]);
  });

  test('fullExport sends one family and resets what was advertised', () => {
    const r = rib();
    const p = peer('10.0.0.2', 65002);
    r.originate('10.1.0.0/16', attrs({ asPath: [], nextHop: '192.0.2.254' }));
    r.originate('2001:db8::/32', attrs({ asPath: [], nextHop: '2001:db8::fe' }));
    r.addPeer(p);
    expect(r.fullExport(p.id, 1).announce.flatMap((g) => g.prefixes)).toEqual(['10.1.0.0/16']);
    expect(r.fullExport(p.id, 2).announce.flatMap((g) => g.prefixes)).toEqual(['2001:db8::/32']);
    expect(r.fullExport(p.id, 1).announce.flatMap((g) => g.prefixes)).toEqual(['10.1.0.0/16']);
  });
});

describe('export policy', () => {
  const local = { asn: LOCAL_AS, routerId: '192.0.2.254' };
  const i1 = peer('10.0.0.1', LOCAL_AS);
  const i2 = peer('10.0.0.2', LOCAL_AS);
  const e1 = peer('10.0.0.3', 65003);

  test('iBGP split horizon: iBGP-learned routes are not sent to iBGP peers', () => {
    expect(exportAttributes(path(i1, {}), i2, local, false)).toBeUndefined();
    expect(exportAttributes(path(i1, {}), e1, local, false)).toBeDefined();
  });

  test('route reflection: client routes to everyone, non-client routes to clients, stamped', () => {
    const rr = { ...local, clusterId: '9.9.9.9' };
    const client = peer('10.0.0.5', LOCAL_AS, { rrClient: true, routerId: '5.5.5.5' });
    const nonClient = peer('10.0.0.6', LOCAL_AS, { routerId: '6.6.6.6' });
    const fromClient = exportAttributes(path(client, {}), nonClient, rr, false);
    expect(fromClient).toMatchObject({
      originatorId: '5.5.5.5',
      clusterList: ['9.9.9.9'],
      nextHop: '192.0.2.1',
    });
    expect(exportAttributes(path(nonClient, {}), client, rr, false)).toMatchObject({
      originatorId: '6.6.6.6',
    });
    expect(
      exportAttributes(path(nonClient, {}), peer('10.0.0.7', LOCAL_AS), rr, false),
    ).toBeUndefined();
  });

  test('eBGP export strips LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST and sets our next hop', () => {
    const out = exportAttributes(
      path(i1, { localPref: 300, originatorId: '1.1.1.1', clusterList: ['2.2.2.2'], med: 4 }),
      e1,
      local,
      false,
    )!;
    expect(out).toMatchObject({
      nextHop: '192.0.2.254',
      asPath: [{ type: 2, asns: [LOCAL_AS, 65001] }],
    });
    expect(out.localPref).toBeUndefined();
    expect(out.originatorId).toBeUndefined();
    expect(out.clusterList).toBeUndefined();
    expect(out.med).toBeUndefined();
  });

  test('locally originated routes keep their MED towards eBGP and get LOCAL_PREF 100 on iBGP', () => {
    expect(exportAttributes(path(undefined, { med: 7, asPath: [] }), e1, local, false)!.med).toBe(
      7,
    );
    expect(exportAttributes(path(undefined, { asPath: [] }), i1, local, false)!.localPref).toBe(
      100,
    );
  });

  test('an IPv6 route to an eBGP peer uses our IPv6 next hop', () => {
    expect(
      exportAttributes(path(undefined, { asPath: [], nextHop: '2001:db8::1' }), e1, local, true)!
        .nextHop,
    ).toBe('2001:db8::fe');
  });
});

test('attribute interning: equal sets are one object', () => {
  const s = new AttributeStore();
  const a = s.intern(attrs({ communities: [1, 2] }));
  const b = s.intern(attrs({ communities: [1, 2] }));
  expect(a).toBe(b);
  expect(s.intern(attrs({ communities: [2, 1] }))).not.toBe(a);
  expect(Object.isFrozen(a)).toBe(true);
});

test('property: incremental best paths equal best paths computed from scratch', () => {
  const peers = [
    peer('10.0.0.1', 65001),
    peer('10.0.0.2', 65002),
    peer('10.0.0.3', LOCAL_AS),
    peer('10.0.0.4', 65001),
  ];
  const prefixes = ['10.1.0.0/16', '10.2.0.0/16', '10.3.0.0/16'];
  const attrSet = fc.record({
    localPref: fc.constantFrom(100, 200),
    asLen: fc.integer({ min: 1, max: 3 }),
    origin: fc.constantFrom(0, 2),
    med: fc.constantFrom(0, 5),
  });
  const op = fc.record({
    peer: fc.integer({ min: 0, max: peers.length - 1 }),
    prefix: fc.constantFrom(...prefixes),
    announce: fc.option(attrSet, { nil: undefined }),
  });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const r = new Rib({ localAsn: LOCAL_AS, routerId: '192.0.2.254' });
      peers.forEach((p) => r.addPeer(p));
      const truth = new Map<string, Map<string, Path>>();
      for (const o of ops) {
        const p = peers[o.peer];
        const byPeer = truth.get(o.prefix) ?? new Map<string, Path>();
        truth.set(o.prefix, byPeer);
        if (o.announce) {
          const a = attrs({
            localPref: o.announce.localPref,
            origin: o.announce.origin,
            med: o.announce.med,
            asPath: [
              {
                type: 2,
                asns: [p.asn === LOCAL_AS ? 65009 : p.asn, ...Array(o.announce.asLen - 1).fill(1)],
              },
            ],
          });
          r.applyUpdate(p.id, [], a, [o.prefix]);
          byPeer.set(p.id, { peer: p, attrs: p.ibgp ? a : { ...a, localPref: undefined } });
        } else {
          r.applyUpdate(p.id, [o.prefix], null, []);
          byPeer.delete(p.id);
        }
      }
      for (const prefix of prefixes) {
        const expected = selectBest([...(truth.get(prefix)?.values() ?? [])]);
        const got = r.best(prefix);
        expect(got?.peer?.id).toEqual(expected?.peer?.id);
        if (expected)
          expect(got!.attrs).toEqual(
            expect.objectContaining({ origin: expected.attrs.origin, med: expected.attrs.med }),
          );
      }
    }),
    { numRuns: 300 },
  );
});
