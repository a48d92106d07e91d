// Graceful restart (RFC 4724): the capability on the wire, what our OPEN announces and
// what we read from the peer's, the helper decisions, and stale routes in the RIB.
import { decodeMessage, encodeMessage } from '../src/codec';
import { parseSpeakerConfig } from '../src/config';
import { fsmStep, type FsmContext } from '../src/fsm';
import { Rib } from '../src/rib';
import {
  familiesToFlushOnReturn,
  familiesToRetain,
  resolveGracefulRestart,
  type GracefulRestartSettings,
  type PeerGracefulRestart,
} from '../src/session/graceful-restart';
import { buildOpen, negotiate } from '../src/session/open';
import type { OpenMessage } from '../src/types';
import { attrs, LOCAL_AS, peer, ROUTER_ID } from './rib-helpers';

const GR: GracefulRestartSettings = {
  restartTime: 120,
  staleTime: 360,
  restarting: true,
  forwardingPreserved: true,
};
const CTX = { as4: true };

describe('capability 64', () => {
  test('encodes restart time, R bit and per-family F bits as RFC 4724 §3 lays them out', () => {
    const open = buildOpen({
      asn: 65000,
      routerId: '10.0.0.1',
      holdTime: 90,
      families: [1, 2],
      gracefulRestart: GR,
      restarting: true,
    });
    const wire = encodeMessage(open, CTX);
    // code 64, length 10: R bit + 120, then (1, 1, F) and (2, 1, F)
    const cap = Buffer.from([64, 10, 0x80, 120, 0, 1, 1, 0x80, 0, 2, 1, 0x80]);
    expect(wire.includes(cap)).toBe(true);
    const back = decodeMessage(wire, CTX) as OpenMessage;
    expect(back.capabilities).toContainEqual({
      code: 'graceful-restart',
      restarting: true,
      restartTime: 120,
      families: [
        { afi: 1, safi: 1, forwardingPreserved: true },
        { afi: 2, safi: 1, forwardingPreserved: true },
      ],
    });
  });

  test('without graceful restart we still announce End-of-RIB support: no family, time 0', () => {
    const open = buildOpen({ asn: 65000, routerId: '10.0.0.1', holdTime: 90, families: [1] });
    expect(encodeMessage(open, CTX).includes(Buffer.from([64, 2, 0, 0]))).toBe(true);
  });

  test("the peer's capability is read into the negotiated session (unicast families only)", () => {
    const open: OpenMessage = {
      type: 'open',
      version: 4,
      myAs: 65001,
      holdTime: 90,
      routerId: '10.0.0.2',
      capabilities: [
        { code: 'multiprotocol', afi: 1, safi: 1 },
        {
          code: 'graceful-restart',
          restarting: false,
          restartTime: 90,
          families: [
            { afi: 1, safi: 1, forwardingPreserved: false },
            { afi: 1, safi: 128, forwardingPreserved: true },
          ],
        },
      ],
    };
    const n = negotiate(open, 90, [1], { asn: 65001, localAsn: 65000, localRouterId: '10.0.0.1' });
    expect(n.peerGracefulRestart).toEqual({
      restarting: false,
      restartTime: 90,
      families: [{ afi: 1, forwardingPreserved: false }],
    });
  });
});

describe('configuration', () => {
  test('speaker settings with peer overrides; off unless enabled', () => {
    const c = parseSpeakerConfig({
      asn: 65000,
      routerId: '10.0.0.1',
      gracefulRestart: { restarting: true },
      peers: [
        { address: '10.0.0.2', asn: 65000 },
        { address: '10.0.0.3', asn: 65000, gracefulRestart: { restartTimeS: 30 } },
        { address: '10.0.0.4', asn: 65000, gracefulRestart: { enabled: false } },
      ],
    });
    const [a, b, d] = c.peers.map((p) =>
      resolveGracefulRestart(c.gracefulRestart, p.gracefulRestart),
    );
    expect(a).toEqual({
      restartTime: 120,
      staleTime: 360,
      restarting: true,
      forwardingPreserved: true,
    });
    expect(b?.restartTime).toBe(30);
    expect(d).toBeUndefined();
    expect(resolveGracefulRestart(undefined, undefined)).toBeUndefined();
    expect(() =>
      parseSpeakerConfig({ asn: 1, routerId: '10.0.0.1', gracefulRestart: { restartTimeS: 5000 } }),
    ).toThrow(/gracefulRestart.restartTimeS/);
  });
});

describe('helper decisions', () => {
  const theirs: PeerGracefulRestart = {
    restarting: false,
    restartTime: 120,
    families: [
      { afi: 1, forwardingPreserved: true },
      { afi: 2, forwardingPreserved: false },
    ],
  };

  test('routes are kept after a TCP failure or hold timer expiry, for the families the peer listed', () => {
    expect(familiesToRetain(GR, theirs, [1, 2], 'transport')).toEqual([1, 2]);
    expect(
      familiesToRetain(GR, { ...theirs, families: [theirs.families[0]] }, [1, 2], 'transport'),
    ).toEqual([1]);
    expect(familiesToRetain(GR, theirs, [1, 2], 'notification')).toEqual([]);
    expect(familiesToRetain(GR, theirs, [1, 2], 'stop')).toEqual([]);
    expect(familiesToRetain(undefined, theirs, [1, 2], 'transport')).toEqual([]);
    expect(familiesToRetain(GR, undefined, [1, 2], 'transport')).toEqual([]);
    expect(familiesToRetain(GR, { ...theirs, restartTime: 0 }, [1], 'transport')).toEqual([]);
  });

  test('back without graceful restart, or without the F bit for a family: that family is flushed', () => {
    expect(familiesToFlushOnReturn([1, 2], GR, theirs, [1, 2])).toEqual([2]);
    expect(familiesToFlushOnReturn([1, 2], GR, undefined, [1, 2])).toEqual([1, 2]);
    expect(familiesToFlushOnReturn([1], GR, theirs, [2])).toEqual([1]);
    expect(familiesToFlushOnReturn([1], GR, { ...theirs, families: [] }, [1])).toEqual([1]);
  });

  test('a silent ManualStop closes the connection without a NOTIFICATION', () => {
    const est: FsmContext = { state: 'Established', connectRetryCounter: 0, holdTime: 90 };
    const loud = fsmStep(est, { type: 'ManualStop' }).actions.map((a) => a.type);
    const silent = fsmStep(est, { type: 'ManualStop', silent: true }).actions.map((a) => a.type);
    expect(loud).toContain('sendNotification');
    expect(silent).not.toContain('sendNotification');
    expect(silent).toContain('dropConnection');
  });
});

describe('stale routes in the RIB', () => {
  const V4 = ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/24'];
  const V6 = '2001:db8:1::/48';

  function setup() {
    const rib = new Rib({ localAsn: LOCAL_AS, routerId: ROUTER_ID });
    const p = peer('192.0.2.1', LOCAL_AS);
    const other = peer('192.0.2.2', 65010); // eBGP: iBGP routes are exported to it
    rib.addPeer(p);
    rib.addPeer(other);
    rib.applyUpdate(p.id, [], attrs(), V4);
    rib.applyUpdate(p.id, [], attrs({ nextHop: '2001:db8::1' }), [V6]);
    rib.takeUpdates();
    return { rib, p, other };
  }
  const prefixes = (rib: Rib) =>
    rib
      .bestRoutes()
      .map((r) => r.prefix)
      .sort();

  test('session down with graceful restart: routes stay in the Loc-RIB, stale, still exported', () => {
    const { rib, p, other } = setup();
    expect(rib.peerDown(p.id, [1, 2])).toEqual([]);
    expect(prefixes(rib)).toEqual([...V4, V6].sort());
    expect(rib.staleCount(p.id)).toBe(4);
    expect(rib.bestRoutes().every((r) => rib.isStale(r))).toBe(true);
    // the other peer was told nothing: it keeps forwarding along them
    expect(rib.takeUpdates()).toEqual([]);
    expect(rib.updateGroup(other.id)!.advertisedAttributes(V4[0], other.id)).toBeDefined();
  });

  test('only the retained families stay; the others are withdrawn', () => {
    const { rib, p } = setup();
    const changes = rib.peerDown(p.id, [1]);
    expect(changes.map((c) => c.prefix)).toEqual([V6]);
    expect(prefixes(rib)).toEqual(V4);
  });

  test('re-announced routes replace the stale ones; End-of-RIB flushes the rest', () => {
    const { rib, p, other } = setup();
    rib.peerDown(p.id, [1, 2]);
    rib.addPeer({ ...p }); // the session is back: stale routes stay
    expect(rib.staleCount(p.id)).toBe(4);
    const same = rib.applyUpdate(p.id, [], attrs(), [V4[0]]);
    expect(same).toEqual([]); // same attributes: nothing changes for anyone
    const changed = rib.applyUpdate(p.id, [], attrs({ med: 5 }), [V4[1]]);
    expect(changed.map((c) => c.prefix)).toEqual([V4[1]]);
    expect(rib.staleCount(p.id)).toBe(2);
    rib.takeUpdates();
    const flushed = rib.flushStale(p.id, 1);
    expect(flushed.map((c) => c.prefix)).toEqual([V4[2]]);
    expect(rib.staleCount(p.id)).toBe(1); // the IPv6 route waits for its own End-of-RIB
    const [update] = rib.takeUpdates();
    expect(update.members).toContain(other.id);
    expect(update.parts).toEqual([{ prefixes: [V4[2]], except: [p.id] }]);
    expect(rib.flushStale(p.id, 2).map((c) => c.prefix)).toEqual([V6]);
    expect(prefixes(rib)).toEqual([V4[0], V4[1]]);
    expect(rib.bestRoutes().some((r) => rib.isStale(r))).toBe(false);
  });

  test('a withdrawal in the new session removes a stale route at once', () => {
    const { rib, p } = setup();
    rib.peerDown(p.id, [1, 2]);
    rib.addPeer({ ...p });
    expect(rib.applyUpdate(p.id, [V4[0]], null, []).map((c) => c.prefix)).toEqual([V4[0]]);
    expect(rib.staleCount(p.id)).toBe(3);
  });

  test('restart timer expiry: every stale route goes and the peer is forgotten', () => {
    const { rib, p } = setup();
    rib.peerDown(p.id, [1, 2]);
    expect(
      rib
        .flushStale(p.id)
        .map((c) => c.prefix)
        .sort(),
    ).toEqual([...V4, V6].sort());
    expect(prefixes(rib)).toEqual([]);
    expect(rib.receivedCount(p.id)).toBe(0);
    expect(rib.adjRibIn(p.id)).toBeUndefined();
  });

  test('back without graceful restart: the caller flushes the families, new routes are kept', () => {
    const { rib, p } = setup();
    rib.peerDown(p.id, [1, 2]);
    rib.addPeer({ ...p });
    rib.applyUpdate(p.id, [], attrs(), ['10.9.0.0/24']);
    rib.flushStale(p.id, 1);
    rib.flushStale(p.id, 2);
    expect(prefixes(rib)).toEqual(['10.9.0.0/24']);
  });

  test('a second drop before End-of-RIB keeps old and new routes stale', () => {
    const { rib, p } = setup();
    rib.peerDown(p.id, [1, 2]);
    rib.addPeer({ ...p });
    rib.applyUpdate(p.id, [], attrs(), ['10.9.0.0/24']);
    rib.peerDown(p.id, [1, 2]);
    expect(rib.staleCount(p.id)).toBe(5);
  });

  test('a drop without graceful restart (or removing the peer) withdraws stale routes too', () => {
    const { rib, p } = setup();
    rib.peerDown(p.id, [1, 2]);
    expect(rib.removePeer(p.id)).toHaveLength(4);
    expect(prefixes(rib)).toEqual([]);
  });
});
