// The RIBs: attribute interning, Adj-RIB-In import checks, Loc-RIB bookkeeping,
// Adj-RIB-Out deltas and packing groups, the Rib facade, and a property test of the
// incremental Loc-RIB and Adj-RIB-Out against a from-scratch reference.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import {
  AdjRibIn,
  AdjRibOut,
  AttributeStore,
  exportAttributes,
  importRejection,
  LocRib,
  Rib,
  type BestPathChange,
  type LocalIdentity,
  type ExportBatch,
  type Path,
  type PeerInfo,
} from '../src/rib';
import type { PathAttributes, Prefix } from '../src/types';
import { attrs, LOCAL_AS, peer, ROUTER_ID } from './rib-helpers';

const local = { asn: LOCAL_AS, routerId: ROUTER_ID };
const seq = (...asns: number[]) => [{ type: 2 as const, asns }];
const newRib = (extra = {}) => new Rib({ localAsn: LOCAL_AS, routerId: ROUTER_ID, ...extra });

describe('AttributeStore', () => {
  test('equal sets are one frozen object; different sets are not', () => {
    const s = new AttributeStore();
    const a = s.intern(attrs({ communities: [1, 2] }));
    expect(s.intern(attrs({ communities: [1, 2] }))).toBe(a);
    expect(s.intern(attrs({ communities: [1, 2], med: undefined }))).toBe(a);
    expect(s.intern(a)).toBe(a);
    expect(s.intern(attrs({ communities: [2, 1] }))).not.toBe(a);
    expect(s.intern(attrs({ communities: [1, 2], med: 0 }))).not.toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.asPath[0].asns)).toBe(true);
    expect(Object.isFrozen(a.communities)).toBe(true);
  });

  test("the caller's object is copied, not frozen", () => {
    const s = new AttributeStore();
    const mine = attrs({ unknown: [{ flags: 0xc0, typeCode: 99, value: Buffer.from([1]) }] });
    const a = s.intern(mine);
    expect(a).not.toBe(mine);
    expect(Object.isFrozen(mine)).toBe(false);
    expect(Object.isFrozen(mine.asPath)).toBe(false);
    expect(Object.isFrozen(mine.unknown![0])).toBe(false);
    mine.asPath[0].asns.push(1);
    expect(a.asPath[0].asns).toEqual([65001]);
  });

  test('a set nobody holds is freed', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const s = new AttributeStore();
    const kept = s.intern(attrs({ med: 1 }));
    (() => {
      for (let i = 0; i < 10; i++) s.intern(attrs({ med: 100 + i }));
    })();
    expect(s.size).toBe(11);
    for (let i = 0; i < 20 && s.size > 1; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10)); // finalizers run between tasks
    }
    expect(s.size).toBe(1);
    expect(s.intern(attrs({ med: 1 }))).toBe(kept);
  });
});

describe('AdjRibIn', () => {
  const e = peer('10.0.0.1', 65001);
  const i = peer('10.0.0.2', LOCAL_AS);
  const adjIn = (p: PeerInfo, opts = {}, id = local) =>
    new AdjRibIn(p, new AttributeStore(), id, opts);

  test('apply returns the prefixes whose route changed, withdrawals first', () => {
    const r = adjIn(e);
    expect(r.apply([], attrs(), ['10.1.0.0/16', '10.2.0.0/16'])).toEqual([
      '10.1.0.0/16',
      '10.2.0.0/16',
    ]);
    expect(r.apply([], attrs(), ['10.1.0.0/16'])).toEqual([]); // same attributes again
    expect(r.apply([], attrs({ med: 3 }), ['10.1.0.0/16'])).toEqual(['10.1.0.0/16']);
    expect(r.apply(['10.2.0.0/16', '10.9.0.0/16'], null, [])).toEqual(['10.2.0.0/16']);
    // withdrawn and announced in one UPDATE: the announcement stands
    expect(r.apply(['10.3.0.0/16'], attrs(), ['10.3.0.0/16'])).toEqual(['10.3.0.0/16']);
    expect(r.count).toBe(2);
    expect(r.get('10.1.0.0/16')!.attrs.med).toBe(3);
    expect(r.get('10.1.0.0/16')!.peer).toBe(e);
  });

  test('applyEach tells each change with the route the UPDATE leaves', () => {
    const r = adjIn(e);
    const told: Array<[string, number | undefined]> = [];
    const each = (w: string[], a: PathAttributes | null, n: string[]) =>
      r.applyEach(w, a, n, (p, path) => told.push([p, path?.attrs.med]));
    each([], attrs({ med: 1 }), ['10.1.0.0/16', '10.2.0.0/16', 'fd00::/64']);
    expect(told.splice(0)).toEqual([
      ['10.1.0.0/16', 1],
      ['10.2.0.0/16', 1],
      ['fd00::/64', 1],
    ]);
    // implicit withdraw: new attributes replace the route; the same ones change nothing
    each([], attrs({ med: 2 }), ['10.1.0.0/16', 'fd00::/64']);
    each([], attrs({ med: 2 }), ['10.1.0.0/16']);
    expect(told.splice(0)).toEqual([
      ['10.1.0.0/16', 2],
      ['fd00::/64', 2],
    ]);
    // withdrawn and announced again in one UPDATE: told its new route, withdrawals first
    each(['10.2.0.0/16', '10.1.0.0/16', '10.9.0.0/16'], attrs({ med: 3 }), ['10.2.0.0/16']);
    expect(told.splice(0)).toEqual([
      ['10.2.0.0/16', 3],
      ['10.1.0.0/16', undefined],
      ['10.2.0.0/16', 3],
    ]);
    // a looped announcement withdraws what it replaces
    each([], attrs({ asPath: seq(65001, LOCAL_AS) }), ['10.2.0.0/16', '10.8.0.0/16']);
    expect(told.splice(0)).toEqual([['10.2.0.0/16', undefined]]);
    expect([...r.entries()].map(([p]) => p)).toEqual(['fd00::/64']);
  });

  test('prefixes sent with one attribute set share one Path', () => {
    const r = adjIn(e);
    r.apply([], attrs(), ['10.1.0.0/16']);
    r.apply([], { ...attrs() }, ['10.2.0.0/16']);
    expect(r.get('10.1.0.0/16')).toBe(r.get('10.2.0.0/16'));
  });

  test('LOCAL_PREF is ignored from eBGP and kept from iBGP', () => {
    const re = adjIn(e);
    re.apply([], attrs({ localPref: 500 }), ['10.1.0.0/16']);
    expect(re.get('10.1.0.0/16')!.attrs.localPref).toBeUndefined();
    const ri = adjIn(i);
    ri.apply([], attrs({ localPref: 500 }), ['10.1.0.0/16']);
    expect(ri.get('10.1.0.0/16')!.attrs.localPref).toBe(500);
  });

  test.each<[string, PeerInfo, Partial<PathAttributes>, object, LocalIdentity, boolean]>([
    ['our AS in an eBGP path: rejected', e, { asPath: seq(65001, LOCAL_AS) }, {}, local, false],
    [
      'our AS once with allowOwnAs 1',
      e,
      { asPath: seq(65001, LOCAL_AS) },
      { allowOwnAs: 1 },
      local,
      true,
    ],
    [
      'our AS twice with allowOwnAs 1',
      e,
      { asPath: seq(LOCAL_AS, 1, LOCAL_AS) },
      { allowOwnAs: 1 },
      local,
      false,
    ],
    [
      'our AS inside an AS_SET',
      e,
      { asPath: [{ type: 1, asns: [7, LOCAL_AS] }] },
      {},
      local,
      false,
    ],
    [
      'our AS in an iBGP path (checked at the border)',
      i,
      { asPath: seq(65001, LOCAL_AS) },
      {},
      local,
      true,
    ],
    ['ORIGINATOR_ID is our router id: rejected', i, { originatorId: ROUTER_ID }, {}, local, false],
    [
      'CLUSTER_LIST has our cluster id',
      i,
      { clusterList: ['1.1.1.1', '9.9.9.9'] },
      {},
      { ...local, clusterId: '9.9.9.9' },
      false,
    ],
    [
      'CLUSTER_LIST has our router id, no cluster id set',
      i,
      { clusterList: [ROUTER_ID] },
      {},
      local,
      false,
    ],
    [
      'CLUSTER_LIST of other clusters',
      i,
      { clusterList: ['8.8.8.8'] },
      {},
      { ...local, clusterId: '9.9.9.9' },
      true,
    ],
  ])('loop check: %s', (_n, from, a, opts, id, accepted) => {
    const rejected: string[] = [];
    const r = adjIn(from, { ...opts, onReject: (why: string) => rejected.push(why) }, id);
    const changed = r.apply([], attrs(a), ['10.1.0.0/16']);
    expect(changed.length === 1).toBe(accepted);
    expect(r.count).toBe(accepted ? 1 : 0);
    expect(rejected.length).toBe(accepted ? 0 : 1);
  });

  test('a looped re-announcement is treated as a withdrawal of the earlier route', () => {
    const r = adjIn(e);
    r.apply([], attrs(), ['10.1.0.0/16']);
    expect(
      r.apply([], attrs({ asPath: seq(65001, LOCAL_AS) }), ['10.1.0.0/16', '10.2.0.0/16']),
    ).toEqual(['10.1.0.0/16']);
    expect(r.count).toBe(0);
  });

  test('clear() returns every prefix and empties the table', () => {
    const r = adjIn(e);
    r.apply([], attrs(), ['10.1.0.0/16', '10.2.0.0/16']);
    r.apply([], attrs({ med: 1 }), ['2001:db8::/32']);
    expect(r.clear().sort()).toEqual(['10.1.0.0/16', '10.2.0.0/16', '2001:db8::/32']);
    expect(r.count).toBe(0);
    expect(r.clear()).toEqual([]);
  });
});

describe('LocRib', () => {
  const a = peer('10.0.0.1', 65001);
  const b = peer('10.0.0.2', 65002);
  const pathOf = (p: PeerInfo, x: Partial<PathAttributes> = {}): Path => ({
    peer: p,
    attrs: attrs(x),
  });

  test('candidates per source; a source replaces its own candidate', () => {
    const loc = new LocRib(new AttributeStore());
    const changes: BestPathChange[] = [];
    const a1 = pathOf(a, { asPath: seq(65001, 1) });
    const b1 = pathOf(b, { asPath: seq(65002, 1, 2) });
    loc.set('10.1.0.0/16', a, a1, changes);
    loc.set('10.1.0.0/16', b, b1, changes);
    expect(loc.candidates('10.1.0.0/16')).toEqual([a1, b1]);
    const a2 = pathOf(a, { asPath: seq(65001, 1, 2, 3) }); // a gets worse than b
    loc.set('10.1.0.0/16', a, a2, changes);
    expect(loc.candidates('10.1.0.0/16')).toEqual([b1, a2]);
    expect(changes).toEqual([
      { prefix: '10.1.0.0/16', best: a1, previous: undefined },
      { prefix: '10.1.0.0/16', best: b1, previous: a1 },
    ]);
    loc.set('10.1.0.0/16', b, undefined, changes);
    expect(loc.candidates('10.1.0.0/16')).toEqual([a2]);
    expect(changes[2]).toEqual({ prefix: '10.1.0.0/16', best: a2, previous: b1 });
    loc.set('10.1.0.0/16', b, undefined, changes); // nothing from b: no change
    expect(changes).toHaveLength(3);
  });

  test('originate and withdrawLocal; a local route beats peers and falls back to them', () => {
    const loc = new LocRib(new AttributeStore());
    const changes: BestPathChange[] = [];
    const fromA = pathOf(a);
    loc.set('10.1.0.0/16', a, fromA, changes);
    const [c] = loc.originate('10.1.0.0/16', attrs({ asPath: [], nextHop: ROUTER_ID }));
    expect(c.best!.peer).toBeUndefined();
    expect(loc.isOriginated('10.1.0.0/16')).toBe(true);
    expect(loc.withdrawLocal('10.1.0.0/16')).toEqual([
      { prefix: '10.1.0.0/16', best: fromA, previous: c.best },
    ]);
    expect(loc.withdrawLocal('10.1.0.0/16')).toEqual([]);
    expect(loc.withdrawLocal('10.7.0.0/16')).toEqual([]);
  });

  test('reselect() applies changed IGP costs', () => {
    const costs = new Map([
      ['192.0.2.1', 1],
      ['192.0.2.2', 5],
    ]);
    const loc = new LocRib(new AttributeStore(), { igpCost: (nh) => costs.get(nh) ?? 0 });
    const i1 = peer('10.0.0.3', LOCAL_AS);
    const i2 = peer('10.0.0.4', LOCAL_AS);
    const p1 = pathOf(i1, { nextHop: '192.0.2.1' });
    const p2 = pathOf(i2, { nextHop: '192.0.2.2' });
    loc.set('10.1.0.0/16', i1, p1, []);
    loc.set('10.1.0.0/16', i2, p2, []);
    expect(loc.best('10.1.0.0/16')).toBe(p1);
    expect(loc.reselect()).toEqual([]);
    costs.set('192.0.2.1', 10);
    expect(loc.reselect()).toEqual([{ prefix: '10.1.0.0/16', best: p2, previous: p1 }]);
  });
});

describe('AdjRibOut', () => {
  const src = peer('10.0.0.1', 65001);
  const dst = peer('10.0.0.2', 65002);
  const store = new AttributeStore();
  const srcPath = (x: Partial<PathAttributes> = {}): Path => ({
    peer: src,
    attrs: store.intern(attrs(x)),
  });
  const announce = (best: Path, ...prefixes: Prefix[]): BestPathChange[] =>
    prefixes.map((prefix) => ({ prefix, best }));
  const withdraw = (previous: Path, ...prefixes: Prefix[]): BestPathChange[] =>
    prefixes.map((prefix) => ({ prefix, best: undefined, previous }));

  test('groups announcements by exported attributes, suppresses repeats, withdraws only what was sent', () => {
    const out = new AdjRibOut(dst, store, local);
    const p1 = srcPath({ med: 1 });
    const p2 = srcPath({ med: 2 }); // exports equal to p1's: MED is dropped towards eBGP
    const p3 = srcPath({ communities: [7] });
    out.apply([
      ...announce(p1, '10.1.0.0/16'),
      ...announce(p3, '10.3.0.0/16'),
      ...announce(p2, '10.2.0.0/16'),
    ]);
    const first = out.takePending();
    expect(first.withdrawn).toEqual([]);
    expect(first.announce.map((g) => g.prefixes)).toEqual([
      ['10.1.0.0/16', '10.2.0.0/16'],
      ['10.3.0.0/16'],
    ]);
    expect(first.announce[0].attrs).toEqual({
      origin: 0,
      asPath: seq(LOCAL_AS, 65001),
      nextHop: '192.0.2.254',
    });
    // a new best path exporting to the same attributes: nothing on the wire
    out.apply(announce(p2, '10.1.0.0/16'));
    expect(out.takePending()).toEqual({ withdrawn: [], announce: [] });
    out.apply([...withdraw(p1, '10.1.0.0/16'), ...withdraw(p1, '10.99.0.0/16')]);
    expect(out.takePending()).toEqual({ withdrawn: ['10.1.0.0/16'], announce: [] });
    expect(out.advertisedCount).toBe(2);
  });

  test('announced then withdrawn before a flush: nothing is sent', () => {
    const out = new AdjRibOut(dst, store, local);
    const p = srcPath();
    out.apply(announce(p, '10.1.0.0/16'));
    out.apply(withdraw(p, '10.1.0.0/16'));
    expect(out.takePending()).toEqual({ withdrawn: [], announce: [] });
  });

  test('a best path that may not go to the peer withdraws what it had', () => {
    const out = new AdjRibOut(dst, store, local);
    out.apply(announce(srcPath(), '10.1.0.0/16'));
    out.takePending();
    out.apply(
      announce({ peer: dst, attrs: store.intern(attrs({ asPath: seq(65002) })) }, '10.1.0.0/16'),
    );
    expect(out.takePending()).toEqual({ withdrawn: ['10.1.0.0/16'], announce: [] });
  });

  test('full(): one family, resends everything, withdraws what the peer should not have', () => {
    const out = new AdjRibOut(dst, store, local);
    const p = srcPath();
    out.apply(announce(p, '10.1.0.0/16', '10.2.0.0/16', '2001:db8::/32'));
    out.takePending();
    const routes: Array<[Prefix, Path]> = [
      ['10.1.0.0/16', p],
      ['10.3.0.0/16', p],
      ['2001:db8::/32', p],
    ];
    const v4 = out.full(routes, 1);
    expect(v4.withdrawn).toEqual(['10.2.0.0/16']);
    expect(v4.announce.flatMap((g) => g.prefixes)).toEqual(['10.1.0.0/16', '10.3.0.0/16']);
    expect(out.full(routes, 2).announce.flatMap((g) => g.prefixes)).toEqual(['2001:db8::/32']);
    expect(out.advertisedAttributes('2001:db8::/32')!.nextHop).toBe('2001:db8::fe');
    expect(out.advertisedCount).toBe(3);
  });

  test('a reflect hook decides which iBGP-learned routes go to an iBGP peer', () => {
    const i1 = peer('10.0.0.3', LOCAL_AS);
    const i2 = peer('10.0.0.4', LOCAL_AS);
    const p: Path = { peer: i1, attrs: store.intern(attrs()) };
    const blocked = new AdjRibOut(i2, store, local);
    blocked.apply(announce(p, '10.1.0.0/16'));
    expect(blocked.takePending().announce).toEqual([]);
    const seen: Array<[string, string]> = [];
    const reflected = new AdjRibOut(i2, store, local, {
      reflect: (from, to) => (seen.push([from.id, to.id]), true),
    });
    reflected.apply(announce(p, '10.1.0.0/16'));
    expect(reflected.takePending().announce[0].attrs).toMatchObject({ originatorId: i1.routerId });
    expect(seen).toEqual([[i1.id, i2.id]]);
  });
});

describe('Rib', () => {
  const a = peer('10.0.0.1', 65001);
  const b = peer('10.0.0.2', 65002);
  const c = peer('10.0.0.3', 65003);

  test('withdrawing the best path falls back to the second best', () => {
    const r = newRib();
    r.addPeer(a);
    r.addPeer(b);
    r.applyUpdate(a.id, [], attrs({ asPath: seq(65001) }), ['10.1.0.0/16']);
    r.applyUpdate(b.id, [], attrs({ asPath: seq(65002, 1) }), ['10.1.0.0/16']);
    expect(r.best('10.1.0.0/16')!.peer).toBe(a);
    expect(r.applyUpdate(a.id, ['10.1.0.0/16'], null, [])).toEqual([
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

  test('removing a peer withdraws exactly its routes, and its peers are told', () => {
    const r = newRib();
    [a, b, c].forEach((p) => r.addPeer(p));
    r.applyUpdate(a.id, [], attrs(), ['10.1.0.0/16', '10.2.0.0/16']);
    r.applyUpdate(b.id, [], attrs({ asPath: seq(65002) }), ['10.3.0.0/16']);
    r.applyUpdate(b.id, [], attrs({ asPath: seq(65002, 9, 9) }), ['10.2.0.0/16']);
    r.takePending(c.id);
    const changes = r.removePeer(a.id);
    expect(changes.map((x) => x.prefix).sort()).toEqual(['10.1.0.0/16', '10.2.0.0/16']);
    expect(
      r
        .bestRoutes()
        .map((x) => [x.prefix, x.peer!.id])
        .sort(),
    ).toEqual([
      ['10.2.0.0/16', b.id],
      ['10.3.0.0/16', b.id],
    ]);
    const sent = r.takePending(c.id);
    expect(sent.withdrawn).toEqual(['10.1.0.0/16']);
    expect(sent.announce.flatMap((g) => g.prefixes)).toEqual(['10.2.0.0/16']);
    expect(r.receivedCount(a.id)).toBe(0);
    expect(
      r
        .routesFromPeer(b.id)
        .map((x) => x.prefix)
        .sort(),
    ).toEqual(['10.2.0.0/16', '10.3.0.0/16']);
    expect(r.removePeer(a.id)).toEqual([]);
  });

  test('subscribers get every batch of best-path changes until they unsubscribe', () => {
    const r = newRib();
    r.addPeer(a);
    const got: BestPathChange[][] = [];
    const stop = r.subscribe((ch) => got.push([...ch]));
    r.applyUpdate(a.id, [], attrs(), ['10.1.0.0/16']);
    r.applyUpdate(a.id, [], attrs(), ['10.1.0.0/16']); // no change: no call
    r.originate('10.5.0.0/16', attrs({ asPath: [] }));
    stop();
    r.withdrawOriginated('10.5.0.0/16');
    expect(got.map((batch) => batch.map((x) => x.prefix))).toEqual([
      ['10.1.0.0/16'],
      ['10.5.0.0/16'],
    ]);
  });

  test('an UPDATE from a peer without a session is refused with its name', () => {
    expect(() => newRib().applyUpdate('10.9.9.9', [], attrs(), ['10.1.0.0/16'])).toThrow(
      /10\.9\.9\.9/,
    );
  });

  test('adding a known peer again keeps its PeerInfo and drops its old routes', () => {
    const r = newRib();
    const info = peer('10.0.0.1', 65001);
    r.addPeer(info);
    r.applyUpdate(info.id, [], attrs(), ['10.1.0.0/16']);
    const changes = r.addPeer({ ...info, routerId: '7.7.7.7' });
    expect(changes.map((x) => x.best)).toEqual([undefined]);
    expect(info.routerId).toBe('7.7.7.7');
    r.applyUpdate(info.id, [], attrs(), ['10.1.0.0/16']);
    expect(r.best('10.1.0.0/16')!.peer).toBe(info);
  });

  test('fullExport sends one family; originated routes get our next hop per family', () => {
    const r = newRib();
    r.originate('10.1.0.0/16', attrs({ asPath: [], nextHop: undefined }));
    r.originate('2001:db8::/32', attrs({ asPath: [], nextHop: undefined }));
    r.addPeer(b);
    const v4 = r.fullExport(b.id, 1);
    expect(v4.announce.flatMap((g) => g.prefixes)).toEqual(['10.1.0.0/16']);
    expect(v4.announce[0].attrs.nextHop).toBe('192.0.2.254');
    const v6 = r.fullExport(b.id, 2);
    expect(v6.announce.flatMap((g) => g.prefixes)).toEqual(['2001:db8::/32']);
    expect(v6.announce[0].attrs.nextHop).toBe('2001:db8::fe');
    expect(r.takePending(b.id)).toEqual({ withdrawn: [], announce: [] });
  });
});

// ---- property: incremental RIB == RIB computed from scratch -------------------------

const ipNum = (s: string) => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const pathLen = (x: PathAttributes) =>
  x.asPath.reduce((n, s) => n + (s.type === 2 ? s.asns.length : s.type === 1 ? 1 : 0), 0);
const firstAs = (x: PathAttributes) => (x.asPath[0]?.type === 2 ? x.asPath[0].asns[0] : 0);

/** RFC 4271 §9.1.2.2 written as the RFC reads: successive elimination, nothing shared with src/. */
function referenceBest(cands: Path[], igp: (nh: string) => number): Path | undefined {
  const keep = (c: Path[], score: (p: Path) => number) => {
    const m = Math.min(...c.map(score));
    return c.filter((p) => score(p) === m);
  };
  let c = keep(cands, (p) => -(p.attrs.localPref ?? 100));
  c = keep(c, (p) => (p.peer ? 1 : 0));
  c = keep(c, (p) => pathLen(p.attrs));
  c = keep(c, (p) => p.attrs.origin);
  c = c.filter(
    (p) =>
      !c.some(
        (q) => firstAs(q.attrs) === firstAs(p.attrs) && (q.attrs.med ?? 0) < (p.attrs.med ?? 0),
      ),
  );
  c = keep(c, (p) => (p.peer?.ibgp ? 1 : 0));
  c = keep(c, (p) => (p.attrs.nextHop ? igp(p.attrs.nextHop) : 0));
  c = keep(c, (p) => ipNum(p.attrs.originatorId ?? p.peer?.routerId ?? '0.0.0.0'));
  c = keep(c, (p) => p.attrs.clusterList?.length ?? 0);
  c = keep(c, (p) => ipNum(p.peer?.address ?? '0.0.0.0'));
  return c[0];
}

interface GeneratedAttrs {
  localPref?: number;
  asLen: number;
  set: boolean;
  origin: number;
  med?: number;
  nextHop: string;
  originatorId?: string;
  clusterList?: readonly string[];
}

test('property: incremental Loc-RIB and Adj-RIB-Out equal what is computed from scratch', () => {
  const sources = [
    peer('10.0.0.1', 65001),
    peer('10.0.0.2', 65002),
    peer('10.0.0.4', 65001, { routerId: '10.0.0.0' }),
    peer('10.0.0.3', LOCAL_AS),
    peer('10.0.0.5', LOCAL_AS, { rrClient: true }),
  ];
  // observers never send routes; they see what the RIB sends them
  const observers = [peer('10.0.0.8', 65099), peer('10.0.0.9', LOCAL_AS)];
  const prefixes = ['10.1.0.0/16', '10.2.0.0/16', '10.3.0.0/24', '2001:db8::/32'];
  const igp = (nh: string) => (nh.endsWith('.1') ? 3 : 1);
  const attrArb = fc.record({
    localPref: fc.constantFrom(undefined, 100, 200),
    // small domains so candidates often tie up to the step under test
    asLen: fc.constantFrom(1, 2),
    set: fc.constantFrom(false, false, false, true),
    origin: fc.constantFrom(0, 0, 2),
    med: fc.constantFrom(undefined, 0, 5),
    nextHop: fc.constantFrom('192.0.2.1', '192.0.2.2'),
    originatorId: fc.constantFrom(undefined, '1.1.1.1', '10.0.0.0'),
    clusterList: fc.constantFrom(undefined, ['5.5.5.5'], ['5.5.5.5', '6.6.6.6']),
  });
  const prefixSet = fc.subarray(prefixes, { minLength: 1 });
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('announce' as const),
      src: fc.nat(sources.length - 1),
      prefixes: prefixSet,
      a: attrArb,
    }),
    fc.record({
      kind: fc.constant('withdraw' as const),
      src: fc.nat(sources.length - 1),
      prefixes: prefixSet,
    }),
    fc.record({ kind: fc.constant('originate' as const), prefixes: prefixSet, a: attrArb }),
    fc.record({ kind: fc.constant('unoriginate' as const), prefixes: prefixSet }),
    fc.record({ kind: fc.constant('down' as const), src: fc.nat(sources.length - 1) }),
    fc.record({ kind: fc.constant('flush' as const), obs: fc.nat(observers.length - 1) }),
  );
  const build = (p: PeerInfo | undefined, x: GeneratedAttrs): PathAttributes => {
    const first = p && !p.ibgp ? p.asn : 65007; // iBGP paths start with the AS they entered by
    const asPath =
      p || x.asLen
        ? [{ type: 2 as const, asns: [first, ...Array(Math.max(0, x.asLen - 1)).fill(7)] }]
        : [];
    if (x.set && asPath.length) asPath.push({ type: 1 as never, asns: [8, 9] });
    return {
      origin: x.origin,
      asPath,
      nextHop: x.nextHop,
      med: x.med,
      localPref: x.localPref,
      originatorId: p?.ibgp ? x.originatorId : undefined,
      clusterList: p?.ibgp && x.clusterList ? [...x.clusterList] : undefined,
    };
  };

  fc.assert(
    fc.property(fc.array(op, { minLength: 5, maxLength: 60, size: 'max' }), (ops) => {
      const r = newRib({ igpCost: igp, clusterId: '9.9.9.9' });
      [...sources, ...observers].forEach((p) => r.addPeer(p));
      const truth = new Map<Prefix, Map<string, Path>>(prefixes.map((p) => [p, new Map()]));
      const seen = observers.map(() => new Map<Prefix, PathAttributes>());
      const receive = (i: number, batch: ExportBatch) => {
        for (const p of batch.withdrawn) {
          expect(seen[i].has(p)).toBe(true); // only withdraw what was sent
          seen[i].delete(p);
        }
        for (const g of batch.announce)
          for (const p of g.prefixes) {
            expect(seen[i].get(p)).not.toBe(g.attrs); // no repeats
            seen[i].set(p, g.attrs);
          }
      };
      for (const o of ops) {
        switch (o.kind) {
          case 'announce': {
            const p = sources[o.src];
            const a = build(p, o.a);
            r.applyUpdate(p.id, [], a, o.prefixes);
            const kept = p.ibgp ? a : { ...a, localPref: undefined };
            for (const x of o.prefixes) truth.get(x)!.set(p.id, { peer: p, attrs: kept });
            break;
          }
          case 'withdraw':
            r.applyUpdate(sources[o.src].id, o.prefixes, null, []);
            for (const x of o.prefixes) truth.get(x)!.delete(sources[o.src].id);
            break;
          case 'originate': {
            const a = build(undefined, o.a);
            for (const x of o.prefixes) {
              r.originate(x, a);
              truth.get(x)!.set('local', { attrs: a });
            }
            break;
          }
          case 'unoriginate':
            for (const x of o.prefixes) {
              r.withdrawOriginated(x);
              truth.get(x)!.delete('local');
            }
            break;
          case 'down':
            r.removePeer(sources[o.src].id);
            r.addPeer(sources[o.src]);
            for (const m of truth.values()) m.delete(sources[o.src].id);
            break;
          case 'flush':
            receive(o.obs, r.takePending(observers[o.obs].id));
            break;
        }
      }
      observers.forEach((p, i) => receive(i, r.takePending(p.id)));
      for (const prefix of prefixes) {
        const expected = referenceBest([...truth.get(prefix)!.values()], igp);
        const got = r.best(prefix);
        expect(got?.peer?.id).toEqual(expected?.peer?.id);
        expect(got?.attrs).toEqual(expected?.attrs);
        expect(r.candidates(prefix)).toHaveLength(truth.get(prefix)!.size);
        observers.forEach((obs, i) => {
          const want = expected
            ? exportAttributes(
                expected,
                obs,
                { ...local, clusterId: '9.9.9.9' },
                prefix.includes(':'),
              )
            : undefined;
          expect(seen[i].get(prefix)).toEqual(want);
        });
      }
      expect(r.bestCount()).toBe(prefixes.filter((p) => truth.get(p)!.size > 0).length);
    }),
    { numRuns: 400 },
  );
});

describe('third-party next hop to an eBGP peer on a shared subnet (RFC 4271 §5.1.3)', () => {
  const ibgpPeer = peer('10.99.0.12', LOCAL_AS);
  const tor = peer('10.99.0.1', 65001, { sharedSubnet: '10.99.0.0/24' });
  test('an iBGP-learned route keeps its next hop when it is on the shared subnet', () => {
    const p = { peer: ibgpPeer, attrs: attrs({ asPath: [], nextHop: '10.99.0.12' }) };
    expect(exportAttributes(p, tor, local, false)?.nextHop).toBe('10.99.0.12');
  });
  test('otherwise, and without a shared subnet, the next hop is ours', () => {
    const far = { peer: ibgpPeer, attrs: attrs({ asPath: [], nextHop: '172.16.0.9' }) };
    expect(exportAttributes(far, tor, local, false)?.nextHop).toBe('192.0.2.254');
    const near = { peer: ibgpPeer, attrs: attrs({ asPath: [], nextHop: '10.99.0.12' }) };
    expect(exportAttributes(near, peer('10.99.0.1', 65001), local, false)?.nextHop).toBe(
      '192.0.2.254',
    );
    // an eBGP-learned route is not third-partied to another AS
    const ebgp = { peer: peer('10.99.0.2', 65002), attrs: attrs({ nextHop: '10.99.0.2' }) };
    expect(exportAttributes(ebgp, tor, local, false)?.nextHop).toBe('192.0.2.254');
  });
});

describe("a peer's own local AS (BIRD's local as, Calico's localASNumber)", () => {
  const tor = peer('10.99.0.1', 65001, { localAsn: 64999 });
  test('paths sent to it start with that AS, not the speaker AS', () => {
    const own = { attrs: attrs({ asPath: [], nextHop: '192.0.2.254' }) };
    expect(exportAttributes(own, tor, local, false)?.asPath).toEqual(seq(64999));
    const learned = { peer: peer('10.99.0.2', 65002), attrs: attrs({ asPath: seq(65002) }) };
    expect(exportAttributes(learned, tor, local, false)?.asPath).toEqual(seq(64999, 65002));
  });
  test('its loop check is against that AS', () => {
    expect(importRejection(tor, attrs({ asPath: seq(65001, 64999) }), local)).toMatch(/64999/);
    expect(importRejection(tor, attrs({ asPath: seq(65001, LOCAL_AS) }), local)).toBeUndefined();
  });
});
