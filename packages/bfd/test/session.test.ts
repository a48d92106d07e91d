// The session state machine on a simulated clock: two sessions wired to each other
// (packets through the real codec) come Up, agree on timers by poll/final, detect a cut
// within the detect time, and follow RFC 5880 §6.8.6's transitions. fast-check drives
// arbitrary event orders to check the invariants.
import fc from 'fast-check';
import {
  BfdDiag,
  BfdState,
  controlPacket,
  decodeBfd,
  detectionTimeMs,
  encodeBfd,
  newSession,
  nextDeadline,
  step,
  type BfdEvent,
  type BfdSessionState,
  type BfdTimers,
} from '../src';

const FAST: BfdTimers = { desiredMinTxMs: 100, requiredMinRxMs: 100, detectMult: 3 };
const noJitter = () => 0;

/** Two sessions and a wire that may be cut; time advances deadline by deadline. */
class Pair {
  now = 0;
  a: BfdSessionState;
  b: BfdSessionState;
  cut = false;
  changes: Array<{ who: 'a' | 'b'; to: BfdState; diag: BfdDiag; at: number; failure: boolean }> =
    [];
  constructor(ta = FAST, tb = FAST) {
    this.a = newSession(1, ta, 0);
    this.b = newSession(2, tb, 0);
  }
  private apply(who: 'a' | 'b', ev: BfdEvent): void {
    const r = step(this[who], ev, this.now, noJitter);
    this[who] = r.session;
    for (const o of r.out) {
      if (o.type === 'state')
        this.changes.push({ who, to: o.to, diag: o.diag, at: this.now, failure: o.failure });
      else if (!this.cut) {
        const d = decodeBfd(encodeBfd(o.packet));
        if (!d.ok) throw new Error(d.detail);
        this.apply(who === 'a' ? 'b' : 'a', { type: 'rx', packet: d.packet });
      }
    }
  }
  runUntil(t: number): void {
    while (true) {
      const next = Math.min(nextDeadline(this.a), nextDeadline(this.b));
      if (next > t) break;
      this.now = Math.max(this.now, next);
      if (nextDeadline(this.a) <= this.now) this.apply('a', { type: 'tick' });
      if (nextDeadline(this.b) <= this.now) this.apply('b', { type: 'tick' });
    }
    this.now = t;
  }
  event(who: 'a' | 'b', ev: BfdEvent): void {
    this.apply(who, ev);
  }
}

test('two sessions come Up (Down -> Init -> Up) and then send at the configured rate', () => {
  const p = new Pair();
  p.runUntil(5000);
  expect(p.a.state).toBe(BfdState.Up);
  expect(p.b.state).toBe(BfdState.Up);
  expect(p.changes.filter((c) => c.who === 'a').map((c) => c.to)).toEqual(
    expect.arrayContaining([BfdState.Up]),
  );
  // the poll sequence after Up moved both to 100 ms
  expect(p.a.polling).toBe(false);
  expect(p.a.activeTxMs).toBe(100);
  expect(detectionTimeMs(p.a)).toBe(300);
  expect(p.a.remoteDiscr).toBe(2);
  expect(p.b.remoteDiscr).toBe(1);
});

test('a cut wire takes the session down after the detect time, with diag 1', () => {
  const p = new Pair();
  p.runUntil(5000);
  p.cut = true;
  const cutAt = p.now;
  p.runUntil(10_000);
  const down = p.changes.find((c) => c.who === 'a' && c.to === BfdState.Down)!;
  expect(down.diag).toBe(BfdDiag.ControlDetectionTimeExpired);
  expect(down.failure).toBe(true);
  // the last packet came at most one interval before the cut; down within 3 × 100 ms of it
  expect(down.at - cutAt).toBeLessThanOrEqual(300);
  expect(down.at - cutAt).toBeGreaterThan(100);
  expect(p.a.remoteDiscr).toBe(0);
});

test('before Up, packets go at most once a second whatever is configured', () => {
  const p = new Pair();
  p.cut = true; // nobody answers: stays Down
  const sent: number[] = [];
  let s = p.a;
  for (let now = 0; now < 5000; now = nextDeadline(s)) {
    const r = step(s, { type: 'tick' }, now, noJitter);
    s = r.session;
    if (r.out.some((o) => o.type === 'send')) sent.push(now);
  }
  expect(sent.length).toBeLessThanOrEqual(6);
  expect(s.state).toBe(BfdState.Down);
});

test('a peer signalling AdminDown takes us Down with diag 3; our AdminDown is sent', () => {
  const p = new Pair();
  p.runUntil(3000);
  p.event('b', { type: 'admin', down: true });
  expect(p.b.state).toBe(BfdState.AdminDown);
  expect(p.a.state).toBe(BfdState.Down);
  expect(p.a.localDiag).toBe(BfdDiag.NeighborSignaledDown);
  // not a path failure: BGP must not go down with it (RFC 5882 §3.2)
  expect(p.changes.filter((c) => c.who === 'a' && c.to === BfdState.Down)).toEqual([
    expect.objectContaining({ failure: false }),
  ]);
  // and no detection timeout comes while the peer is administratively down
  p.runUntil(10_000);
  expect(p.a.state).toBe(BfdState.Down);
  p.event('b', { type: 'admin', down: false });
  p.runUntil(15_000);
  expect([p.a.state, p.b.state]).toEqual([BfdState.Up, BfdState.Up]);
});

test('a peer saying Down while we are Up is a path failure (diag 3)', () => {
  const p = new Pair();
  p.runUntil(3000);
  const r = step(
    p.a,
    { type: 'rx', packet: { ...controlPacket(p.b), state: BfdState.Down } },
    p.now,
  );
  expect(r.session.state).toBe(BfdState.Down);
  expect(r.out).toContainEqual(
    expect.objectContaining({ type: 'state', diag: BfdDiag.NeighborSignaledDown, failure: true }),
  );
});

test("the peer lowering its min RX shortens the packet already scheduled (FRR's Init says 1 s)", () => {
  let a = newSession(1, FAST, 0);
  const peer = (state: BfdState, rxMs: number) => ({
    ...controlPacket(newSession(2, FAST, 0)),
    state,
    yourDiscriminator: 1,
    requiredMinRxInterval: rxMs * 1000,
  });
  a = step(a, { type: 'rx', packet: peer(BfdState.Init, 1000) }, 0, noJitter).session;
  expect(a.state).toBe(BfdState.Up);
  expect(nextDeadline(a)).toBeGreaterThanOrEqual(300); // 1 s after its send, or the detect time
  a = step(a, { type: 'rx', packet: peer(BfdState.Up, 100) }, 10, noJitter).session;
  // without this the next packet went ~1 s later and the peer's 300 ms detect time expired
  expect(a.nextTxAt).toBe(110);
});

test('changing timers while Up runs a poll sequence; the new detect time holds after Final', () => {
  const p = new Pair();
  p.runUntil(3000);
  p.event('a', {
    type: 'timers',
    timers: { desiredMinTxMs: 300, requiredMinRxMs: 300, detectMult: 5 },
  });
  // the wire is instant here: the Final came back inside the same event
  expect(p.a.polling).toBe(false);
  expect(p.a.activeTxMs).toBe(300);
  p.runUntil(6000);
  // b sends at 300 ms now (a's RX) with its multiplier 3: a detects in 900 ms
  expect(detectionTimeMs(p.a)).toBe(900);
  // b sees a's multiplier 5 × max(b's RX 100, a's TX 300)
  expect(detectionTimeMs(p.b)).toBe(1500);
  expect([p.a.state, p.b.state]).toEqual([BfdState.Up, BfdState.Up]);
});

test('timers out of range are refused with the field named', () => {
  expect(() => newSession(1, { ...FAST, detectMult: 0 }, 0)).toThrow(/detectMult/);
  expect(() => newSession(1, { ...FAST, desiredMinTxMs: 0 }, 0)).toThrow(/desiredMinTxMs/);
  expect(() => newSession(0, FAST, 0)).toThrow(/discriminator/);
});

test('invariants under any order of events and loss (fast-check)', () => {
  const ev = fc.oneof(
    fc.record({ kind: fc.constant('run' as const), ms: fc.integer({ min: 1, max: 3000 }) }),
    fc.record({ kind: fc.constant('cut' as const), on: fc.boolean() }),
    fc.record({
      kind: fc.constant('admin' as const),
      who: fc.constantFrom('a' as const, 'b' as const),
      down: fc.boolean(),
    }),
  );
  fc.assert(
    fc.property(fc.array(ev, { maxLength: 30 }), (evs) => {
      const p = new Pair();
      for (const e of evs) {
        if (e.kind === 'run') p.runUntil(p.now + e.ms);
        else if (e.kind === 'cut') p.cut = e.on;
        else p.event(e.who, { type: 'admin', down: e.down });
        for (const s of [p.a, p.b]) {
          // Up only with a known peer; never P and F together (encode would throw)
          if (s.state === BfdState.Up) expect(s.remoteDiscr).not.toBe(0);
          // a detection deadline exists exactly in Init/Up
          if (s.state === BfdState.Down || s.state === BfdState.AdminDown)
            expect(s.detectAt).toBeUndefined();
          // never faster than a second before Up
          if (s.state !== BfdState.Up) expect(s.activeTxMs).toBeGreaterThanOrEqual(1000);
        }
      }
      // healed and administratively up, the pair always comes Up again
      p.cut = false;
      p.event('a', { type: 'admin', down: false });
      p.event('b', { type: 'admin', down: false });
      p.runUntil(p.now + 10_000);
      expect([p.a.state, p.b.state]).toEqual([BfdState.Up, BfdState.Up]);
    }),
    { numRuns: 200 },
  );
});
