// Update groups: peers with the same export policy share one Adj-RIB-Out and the same
// encoded UPDATEs, a route never goes back to the member it came from, a member that
// joins later gets the whole table, and a property test checks what every member ends
// up with against exportAttributes() per peer.
import fc from 'fast-check';
import {
  exportAttributes,
  messagesPerMember,
  Rib,
  type ExportBatch,
  type GroupUpdate,
  type PeerInfo,
} from '../src/rib';
import type { PathAttributes, Prefix } from '../src/types';
import { attrs, LOCAL_AS, peer, ROUTER_ID } from './rib-helpers';

const CLUSTER = '9.9.9.9';
const local = { asn: LOCAL_AS, routerId: ROUTER_ID, clusterId: CLUSTER };
const newRib = () => new Rib({ localAsn: LOCAL_AS, routerId: ROUTER_ID, clusterId: CLUSTER });
const client = (id: string) => peer(id, LOCAL_AS, { rrClient: true });
const GROUP = { updateGroup: 'wire' };

/** What each member ends up holding, applied from group deltas the way a peer would. */
class Receivers {
  readonly held = new Map<string, Map<Prefix, PathAttributes>>();

  take(updates: GroupUpdate[]): void {
    for (const { members, parts } of updates)
      for (const [id, batches] of messagesPerMember(members, parts, (p) => [batchBuffer(p)]))
        for (const b of batches) this.receive(id, decoded.get(b)!);
  }

  receive(id: string, batch: ExportBatch): void {
    const held = this.held.get(id) ?? new Map<Prefix, PathAttributes>();
    this.held.set(id, held);
    for (const p of batch.withdrawn) {
      expect(held.has(p)).toBe(true); // only withdraw what was sent
      held.delete(p);
    }
    for (const g of batch.announce)
      for (const p of g.prefixes) {
        expect(held.get(p)).not.toBe(g.attrs); // no repeats
        held.set(p, g.attrs);
      }
  }
}

/** Stands in for encoding: one Buffer per part, remembered with the batch it carries. */
const decoded = new WeakMap<Buffer, ExportBatch>();
function batchBuffer(part: GroupUpdate['parts'][number]): Buffer {
  const b = Buffer.alloc(1);
  decoded.set(
    b,
    part.attrs
      ? { withdrawn: [], announce: [{ attrs: part.attrs, prefixes: part.prefixes }] }
      : { withdrawn: part.prefixes, announce: [] },
  );
  return b;
}

describe('update groups', () => {
  const [a, b, c] = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map(client);

  test('members with equal policy share one group and the same encoded bytes; the originator is skipped', () => {
    const r = newRib();
    [a, b, c].forEach((p) => r.addPeer(p, GROUP));
    expect(r.updateGroup(a.id)).toBe(r.updateGroup(c.id));
    r.applyUpdate(a.id, [], attrs({ asPath: [] }), ['10.1.0.0/16', '10.2.0.0/16']);
    const updates = r.takeUpdates();
    expect(updates).toHaveLength(1);
    const queues = messagesPerMember(updates[0].members, updates[0].parts, (p) => [batchBuffer(p)]);
    expect(queues.get(a.id)).toEqual([]); // never back to where it came from
    expect(queues.get(b.id)).toHaveLength(1);
    expect(queues.get(b.id)![0]).toBe(queues.get(c.id)![0]); // one encoding for all
    const sent = decoded.get(queues.get(b.id)![0])!;
    expect(sent.announce[0].prefixes).toEqual(['10.1.0.0/16', '10.2.0.0/16']);
    // RFC 4456 §8: ORIGINATOR_ID of the client, our cluster id first in CLUSTER_LIST
    expect(sent.announce[0].attrs).toMatchObject({
      originatorId: a.routerId,
      clusterList: [CLUSTER],
    });
    expect(() => r.takePending(b.id)).toThrow(/shares an update group/);
  });

  test('withdrawals reach every member that had the route', () => {
    const r = newRib();
    const rx = new Receivers();
    [a, b, c].forEach((p) => r.addPeer(p, GROUP));
    r.applyUpdate(a.id, [], attrs({ asPath: [] }), ['10.1.0.0/16']);
    rx.take(r.takeUpdates());
    r.applyUpdate(a.id, ['10.1.0.0/16'], null, []);
    const updates = r.takeUpdates();
    expect(updates[0].parts).toEqual([{ prefixes: ['10.1.0.0/16'], except: [a.id] }]);
    rx.take(updates);
    for (const p of [b, c]) expect(rx.held.get(p.id)!.size).toBe(0);
  });

  test('a peer joining later gets the full table, then the deltas with the others', () => {
    const r = newRib();
    const rx = new Receivers();
    [a, b].forEach((p) => r.addPeer(p, GROUP));
    r.applyUpdate(a.id, [], attrs({ asPath: [] }), ['10.1.0.0/16']);
    r.applyUpdate(b.id, [], attrs({ asPath: [] }), ['10.2.0.0/16']);
    rx.take(r.takeUpdates());
    r.applyUpdate(a.id, [], attrs({ asPath: [] }), ['10.3.0.0/16']); // pending when c joins
    r.addPeer(c, GROUP);
    rx.receive(c.id, r.fullExport(c.id, 1));
    expect([...rx.held.get(c.id)!.keys()].sort()).toEqual(['10.1.0.0/16', '10.2.0.0/16']);
    rx.take(r.takeUpdates());
    expect([...rx.held.get(c.id)!.keys()].sort()).toEqual([
      '10.1.0.0/16',
      '10.2.0.0/16',
      '10.3.0.0/16',
    ]);
    expect([...rx.held.get(b.id)!.keys()].sort()).toEqual(['10.1.0.0/16', '10.3.0.0/16']);
  });

  test('a member alone in its group: its own routes are not kept; one that joins later gets them', () => {
    const r = newRib();
    const rx = new Receivers();
    r.addPeer(a, GROUP);
    rx.receive(a.id, r.fullExport(a.id, 1));
    r.applyUpdate(a.id, [], attrs({ asPath: [] }), ['10.1.0.0/16', '10.2.0.0/16']);
    expect(r.takeUpdates()).toEqual([]); // nothing for anyone: a is the source
    expect(r.updateGroup(a.id)!.advertisedCount(b.id)).toBe(0); // and nothing kept
    r.addPeer(b, GROUP);
    rx.receive(b.id, r.fullExport(b.id, 1));
    expect([...rx.held.get(b.id)!.keys()].sort()).toEqual(['10.1.0.0/16', '10.2.0.0/16']);
    r.applyUpdate(a.id, ['10.1.0.0/16'], null, []);
    rx.take(r.takeUpdates());
    expect([...rx.held.get(b.id)!.keys()]).toEqual(['10.2.0.0/16']);
    expect(rx.held.get(a.id)!.size).toBe(0);
  });

  test('when the best path moves between members, the old source gets it and the new one loses it', () => {
    const r = newRib();
    const rx = new Receivers();
    [a, b, c].forEach((p) => r.addPeer(p, GROUP));
    r.applyUpdate(a.id, [], attrs({ asPath: [], localPref: 100 }), ['10.1.0.0/16']);
    rx.take(r.takeUpdates());
    r.applyUpdate(b.id, [], attrs({ asPath: [], localPref: 200 }), ['10.1.0.0/16']);
    rx.take(r.takeUpdates());
    expect(rx.held.get(a.id)!.get('10.1.0.0/16')).toMatchObject({ originatorId: b.routerId });
    expect(rx.held.get(b.id)!.has('10.1.0.0/16')).toBe(false);
    expect(rx.held.get(c.id)!.get('10.1.0.0/16')).toMatchObject({ originatorId: b.routerId });
  });

  test('peers with other policies get groups of their own; eBGP members get rewritten attributes', () => {
    const r = newRib();
    const nonClient = peer('10.0.0.4', LOCAL_AS);
    const [e1, e2] = [peer('10.0.0.5', 65001), peer('10.0.0.6', 65002)];
    [a, nonClient, e1, e2].forEach((p) => r.addPeer(p, GROUP));
    expect(new Set([a, nonClient, e1].map((p) => r.updateGroup(p.id))).size).toBe(3);
    expect(r.updateGroup(e1.id)).toBe(r.updateGroup(e2.id));
    r.addPeer(b, { updateGroup: 'other wire' });
    expect(r.updateGroup(b.id)).not.toBe(r.updateGroup(a.id));
    const rx = new Receivers();
    r.applyUpdate(e1.id, [], attrs({ asPath: [{ type: 2, asns: [65001] }] }), ['10.1.0.0/16']);
    rx.take(r.takeUpdates());
    expect(rx.held.get(e1.id)?.size ?? 0).toBe(0);
    expect(rx.held.get(e2.id)!.get('10.1.0.0/16')).toMatchObject({
      asPath: [{ type: 2, asns: [LOCAL_AS, 65001] }],
      nextHop: '192.0.2.254',
    });
    expect(rx.held.get(a.id)!.get('10.1.0.0/16')).toMatchObject({ nextHop: '192.0.2.1' });
  });
});

test('property: every member of shared groups holds what exportAttributes() gives it', () => {
  const peers: PeerInfo[] = [
    client('10.0.0.1'),
    client('10.0.0.2'),
    client('10.0.0.3'),
    peer('10.0.0.4', LOCAL_AS),
    peer('10.0.0.5', LOCAL_AS),
    peer('10.0.0.6', 65001),
    peer('10.0.0.7', 65002),
  ];
  const prefixes = ['10.1.0.0/16', '10.2.0.0/16', '10.3.0.0/24', '2001:db8::/32'];
  const prefixSet = fc.subarray(prefixes, { minLength: 1 });
  const who = fc.nat(peers.length - 1);
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('announce' as const),
      who,
      prefixes: prefixSet,
      localPref: fc.constantFrom(100, 200),
      nextHop: fc.constantFrom('192.0.2.1', '192.0.2.2'),
    }),
    fc.record({ kind: fc.constant('withdraw' as const), who, prefixes: prefixSet }),
    fc.record({ kind: fc.constant('originate' as const), prefixes: prefixSet }),
    fc.record({ kind: fc.constant('down' as const), who }),
    fc.record({ kind: fc.constant('up' as const), who }),
    fc.record({ kind: fc.constant('flush' as const) }),
  );
  fc.assert(
    fc.property(fc.array(op, { minLength: 5, maxLength: 50 }), (ops) => {
      const r = newRib();
      const rx = new Receivers();
      const up = new Set<string>();
      const join = (p: PeerInfo) => {
        r.addPeer(p, GROUP);
        up.add(p.id);
        rx.held.set(p.id, new Map());
        for (const afi of [1, 2] as const) rx.receive(p.id, r.fullExport(p.id, afi));
      };
      peers.forEach(join);
      for (const o of ops) {
        const p = 'who' in o ? peers[o.who] : undefined;
        switch (o.kind) {
          case 'announce':
            if (!up.has(p!.id)) break;
            r.applyUpdate(
              p!.id,
              [],
              attrs({
                asPath: p!.ibgp ? [] : [{ type: 2, asns: [p!.asn] }],
                localPref: p!.ibgp ? o.localPref : undefined,
                nextHop: o.nextHop,
              }),
              o.prefixes,
            );
            break;
          case 'withdraw':
            if (up.has(p!.id)) r.applyUpdate(p!.id, o.prefixes, null, []);
            break;
          case 'originate':
            for (const x of o.prefixes) r.originate(x, attrs({ asPath: [] }));
            break;
          case 'down':
            r.removePeer(p!.id);
            up.delete(p!.id);
            rx.held.delete(p!.id);
            break;
          case 'up':
            if (!up.has(p!.id)) join(p!);
            break;
          case 'flush':
            rx.take(r.takeUpdates());
            break;
        }
      }
      rx.take(r.takeUpdates());
      for (const id of up) {
        const to = peers.find((p) => p.id === id)!;
        for (const prefix of prefixes) {
          const best = r.best(prefix);
          const want = best && exportAttributes(best, to, local, prefix.includes(':'));
          expect(rx.held.get(id)!.get(prefix)).toEqual(want);
        }
      }
    }),
    { numRuns: 300 },
  );
});
