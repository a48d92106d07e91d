// One BFD session (RFC 5880 asynchronous mode, no echo, no demand), as a pure state
// machine: an event and the time in, the next state and what to send out. The edge
// (endpoint.ts) owns the clock, the sockets and the timers; it calls `nextDeadline` to
// know when to come back. Times are milliseconds here; the wire carries microseconds.
import { BfdDiag, BfdState, type BfdPacket } from './codec';

export interface BfdTimers {
  /** How often we would like to send, while Up (ms). */
  desiredMinTxMs: number;
  /** How often we can take packets (ms). */
  requiredMinRxMs: number;
  /** Packets missed before the session is declared down. */
  detectMult: number;
}

/** While not Up we send no faster than once a second (RFC 5880 §6.8.3). */
export const SLOW_TX_MS = 1000;

export interface BfdSessionState {
  state: BfdState;
  remoteState: BfdState;
  localDiscr: number;
  remoteDiscr: number;
  localDiag: BfdDiag;
  /** Configured timers; `sentTimers` are what the peer has been told (with Poll until Final). */
  timers: BfdTimers;
  /** The timers in force: while a poll sequence runs, the safer of old and new. */
  activeTxMs: number;
  activeRxMs: number;
  /** The peer's last values (ms); remote min RX starts at 1 µs (§6.8.1). */
  remoteMinRxMs: number;
  remoteDesiredTxMs: number;
  remoteDetectMult: number;
  /** A poll sequence is running: our packets carry P until a packet with F arrives. */
  polling: boolean;
  adminDown: boolean;
  /** When the next periodic packet goes (ms, the edge's clock). */
  nextTxAt: number;
  /** When the session goes down without a packet (Init/Up only). */
  detectAt?: number;
  /** Last time a packet was accepted. */
  lastRxAt?: number;
}

export type BfdEvent =
  | { type: 'rx'; packet: BfdPacket }
  | { type: 'tick' }
  | { type: 'admin'; down: boolean }
  | { type: 'timers'; timers: BfdTimers };

export type BfdOutput =
  | { type: 'send'; packet: BfdPacket }
  | {
      type: 'state';
      from: BfdState;
      to: BfdState;
      diag: BfdDiag;
      /**
       * Up to Down because the path failed (detection time, the peer said Down): what
       * clients act on. The peer going AdminDown is not a failure (RFC 5882 §3.2), as
       * BIRD's bfd_request does not report it.
       */
      failure: boolean;
    };

export interface Step {
  session: BfdSessionState;
  out: BfdOutput[];
}

/** jitter in [0,1): the periodic interval is reduced by 0-25% (§6.8.7) */
export type Random = () => number;

export function newSession(
  localDiscr: number,
  timers: BfdTimers,
  now: number,
  adminDown = false,
): BfdSessionState {
  if (!Number.isInteger(localDiscr) || localDiscr <= 0 || localDiscr > 0xffffffff)
    throw new Error(`BFD local discriminator must be 1..2^32-1, got ${localDiscr}`);
  checkTimers(timers);
  return {
    state: adminDown ? BfdState.AdminDown : BfdState.Down,
    remoteState: BfdState.Down,
    localDiscr,
    remoteDiscr: 0,
    localDiag: adminDown ? BfdDiag.AdministrativelyDown : BfdDiag.None,
    timers,
    activeTxMs: Math.max(timers.desiredMinTxMs, SLOW_TX_MS),
    activeRxMs: timers.requiredMinRxMs,
    remoteMinRxMs: 0.001,
    remoteDesiredTxMs: 0,
    remoteDetectMult: 0,
    polling: false,
    adminDown,
    nextTxAt: now,
  };
}

export function checkTimers(t: BfdTimers): void {
  for (const k of ['desiredMinTxMs', 'requiredMinRxMs'] as const) {
    if (!Number.isFinite(t[k]) || t[k] < 1 || t[k] > 60_000)
      throw new Error(`BFD ${k} must be 1..60000 ms, got ${t[k]}`);
  }
  if (!Number.isInteger(t.detectMult) || t.detectMult < 1 || t.detectMult > 255)
    throw new Error(`BFD detectMult must be 1..255, got ${t.detectMult}`);
}

/** The desired TX interval we advertise: the configured one only while Up. */
function advertisedTxMs(s: BfdSessionState): number {
  return s.state === BfdState.Up
    ? s.timers.desiredMinTxMs
    : Math.max(s.timers.desiredMinTxMs, SLOW_TX_MS);
}

/** The packet we send now (Final answers a Poll; the two never go together). */
export function controlPacket(s: BfdSessionState, final = false): BfdPacket {
  return {
    diag: s.localDiag,
    state: s.state,
    poll: s.polling && !final,
    final,
    controlPlaneIndependent: false,
    demand: false,
    detectMult: s.timers.detectMult,
    myDiscriminator: s.localDiscr,
    yourDiscriminator: s.remoteDiscr,
    desiredMinTxInterval: Math.round(advertisedTxMs(s) * 1000),
    requiredMinRxInterval: Math.round(s.timers.requiredMinRxMs * 1000),
    requiredMinEchoRxInterval: 0,
  };
}

/** Detection time: the peer's multiplier × the agreed interval (§6.8.4). */
export function detectionTimeMs(s: BfdSessionState): number {
  return s.remoteDetectMult * Math.max(s.activeRxMs, s.remoteDesiredTxMs);
}

/** The periodic transmit interval: the slower of what we want and what the peer takes. */
export function txIntervalMs(s: BfdSessionState): number {
  return Math.max(s.activeTxMs, s.remoteMinRxMs);
}

function schedule(s: BfdSessionState, now: number, random: Random): number {
  const base = txIntervalMs(s);
  // 0-25% shorter; at most 90% with a multiplier of 1 (§6.8.7)
  const jitter = s.timers.detectMult === 1 ? 0.1 + 0.15 * random() : 0.25 * random();
  return now + base * (1 - jitter);
}

/** When the edge must call `step` with a tick next. */
export function nextDeadline(s: BfdSessionState): number {
  return s.detectAt === undefined ? s.nextTxAt : Math.min(s.nextTxAt, s.detectAt);
}

function setState(
  s: BfdSessionState,
  to: BfdState,
  diag: BfdDiag,
  out: BfdOutput[],
  now: number,
  adminDownByPeer = false,
) {
  if (s.state === to) return;
  const failure = s.state === BfdState.Up && to === BfdState.Down && !adminDownByPeer;
  out.push({ type: 'state', from: s.state, to, diag, failure });
  s.state = to;
  s.localDiag = diag;
  if (to === BfdState.Up) {
    // from the slow rate to the configured one: a poll sequence tells the peer (§6.8.3)
    if (s.timers.desiredMinTxMs < SLOW_TX_MS) s.polling = true;
    s.activeTxMs = Math.min(s.activeTxMs, s.timers.desiredMinTxMs);
  } else {
    // not Up: back to at least a second between packets
    s.activeTxMs = Math.max(s.timers.desiredMinTxMs, SLOW_TX_MS);
    s.polling = false;
  }
  if (to === BfdState.Down || to === BfdState.AdminDown) s.detectAt = undefined;
  // a state change goes out at once rather than at the next period
  s.nextTxAt = now;
}

export function step(
  prev: BfdSessionState,
  ev: BfdEvent,
  now: number,
  random: Random = Math.random,
): Step {
  const s: BfdSessionState = { ...prev };
  const out: BfdOutput[] = [];
  const intervalBefore = txIntervalMs(prev);
  switch (ev.type) {
    case 'rx':
      receive(s, ev.packet, now, out);
      break;
    case 'admin':
      s.adminDown = ev.down;
      if (ev.down) setState(s, BfdState.AdminDown, BfdDiag.AdministrativelyDown, out, now);
      else if (s.state === BfdState.AdminDown) setState(s, BfdState.Down, BfdDiag.None, out, now);
      break;
    case 'timers':
      checkTimers(ev.timers);
      changeTimers(s, ev.timers, now);
      break;
    case 'tick':
      break;
  }
  // detection time passed without a packet (§6.8.4)
  if (s.detectAt !== undefined && now >= s.detectAt) {
    s.detectAt = undefined;
    s.remoteDiscr = 0;
    if (s.state === BfdState.Init || s.state === BfdState.Up)
      setState(s, BfdState.Down, BfdDiag.ControlDetectionTimeExpired, out, now);
  }
  // a shorter interval (the peer now takes packets faster, or a poll finished) applies
  // to the packet already scheduled: the peer's detection time is already the short one
  if (txIntervalMs(s) < intervalBefore) s.nextTxAt = Math.min(s.nextTxAt, schedule(s, now, random));
  // periodic transmission; none while the peer's min RX is 0 (§6.8.7)
  if (now >= s.nextTxAt) {
    if (s.remoteMinRxMs > 0) out.push({ type: 'send', packet: controlPacket(s) });
    s.nextTxAt = schedule(s, now, random);
  }
  return { session: s, out };
}

function changeTimers(s: BfdSessionState, t: BfdTimers, now: number): void {
  const old = s.timers;
  s.timers = t;
  if (s.state !== BfdState.Up) {
    s.activeTxMs = Math.max(t.desiredMinTxMs, SLOW_TX_MS);
    s.activeRxMs = t.requiredMinRxMs;
    return;
  }
  if (old.desiredMinTxMs === t.desiredMinTxMs && old.requiredMinRxMs === t.requiredMinRxMs) return;
  // until the peer answers the poll: send at the faster of old and new TX, and expect
  // packets at the slower of old and new RX (§6.8.3)
  s.activeTxMs = Math.min(s.activeTxMs, t.desiredMinTxMs);
  s.activeRxMs = Math.max(s.activeRxMs, t.requiredMinRxMs);
  s.polling = true;
  s.nextTxAt = now;
}

/** Reception, RFC 5880 §6.8.6 after the checks decodeBfd makes. */
function receive(s: BfdSessionState, p: BfdPacket, now: number, out: BfdOutput[]): void {
  s.remoteDiscr = p.myDiscriminator;
  s.remoteState = p.state;
  s.remoteMinRxMs = p.requiredMinRxInterval / 1000;
  s.remoteDesiredTxMs = p.desiredMinTxInterval / 1000;
  s.remoteDetectMult = p.detectMult;
  s.lastRxAt = now;
  if (p.final && s.polling) {
    s.polling = false;
    s.activeTxMs =
      s.state === BfdState.Up
        ? s.timers.desiredMinTxMs
        : Math.max(s.timers.desiredMinTxMs, SLOW_TX_MS);
    s.activeRxMs = s.timers.requiredMinRxMs;
  }
  if (s.state === BfdState.AdminDown) return;
  if (p.state === BfdState.AdminDown) {
    if (s.state !== BfdState.Down)
      setState(s, BfdState.Down, BfdDiag.NeighborSignaledDown, out, now, true);
  } else if (s.state === BfdState.Down) {
    if (p.state === BfdState.Down) setState(s, BfdState.Init, BfdDiag.None, out, now);
    else if (p.state === BfdState.Init) setState(s, BfdState.Up, BfdDiag.None, out, now);
  } else if (s.state === BfdState.Init) {
    if (p.state === BfdState.Init || p.state === BfdState.Up)
      setState(s, BfdState.Up, BfdDiag.None, out, now);
  } else if (p.state === BfdState.Down) {
    setState(s, BfdState.Down, BfdDiag.NeighborSignaledDown, out, now);
  }
  if (s.state === BfdState.Init || s.state === BfdState.Up) s.detectAt = now + detectionTimeMs(s);
  // a Poll is answered with a Final at once (§6.8.6)
  if (p.poll) out.push({ type: 'send', packet: controlPacket(s, true) });
}
