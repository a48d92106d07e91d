// The BGP finite state machine of RFC 4271 §8 as a pure function: (state, event) ->
// (next state, actions). The session layer owns sockets and timers and carries out the
// actions; everything that decides what happens lives here, so every transition is
// testable without a network. Optional session attributes (§8.1.1) used: none of
// DelayOpen, DampPeerOscillations, CollisionDetectEstablishedState; automatic start
// (AllowAutomaticStart) is driven by the session layer's idle-hold timer.

export type FsmState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';

/** RFC 4271 §8.1 events, by name (the numbers are in the comments). */
export type FsmEvent =
  | { type: 'ManualStart' } // 1
  | { type: 'ManualStop'; silent?: boolean } // 2; silent: close without NOTIFICATION (RFC 4724 restart)
  | { type: 'AutomaticStart' } // 3
  | { type: 'AutomaticStop'; subcode: number; data?: Buffer } // 8: Cease with this subcode
  | { type: 'ManualStartPassive' } // 4
  | { type: 'AutomaticStartPassive' } // 5
  | { type: 'ConnectRetryTimerExpires' } // 9
  | { type: 'HoldTimerExpires' } // 10
  | { type: 'KeepaliveTimerExpires' } // 11
  | { type: 'TcpCRAcked' } // 16: our outgoing connection completed
  | { type: 'TcpConnectionConfirmed' } // 17: we accepted the peer's connection
  | { type: 'TcpConnectionFails' } // 18
  | { type: 'BGPOpen'; holdTime: number } // 19: a valid OPEN; holdTime = negotiated
  | { type: 'BGPHeaderErr'; code: number; subcode: number; data?: Buffer } // 21
  | { type: 'BGPOpenMsgErr'; code: number; subcode: number; data?: Buffer } // 22
  | { type: 'OpenCollisionDump' } // 23
  | { type: 'NotifMsgVerErr' } // 24
  | { type: 'NotifMsg' } // 25
  | { type: 'KeepAliveMsg' } // 26
  | { type: 'UpdateMsg' } // 27
  | { type: 'UpdateMsgErr'; code: number; subcode: number; data?: Buffer } // 28
  // not an RFC 4271 event: a ROUTE-REFRESH (RFC 2918), which is only expected in Established
  | { type: 'RouteRefreshMsg' };

export type FsmAction =
  | { type: 'connect' } // initiate the outgoing TCP connection
  | { type: 'dropConnection' }
  | { type: 'sendOpen' }
  | { type: 'sendKeepalive' }
  | { type: 'sendNotification'; code: number; subcode: number; data?: Buffer }
  | { type: 'startConnectRetryTimer' }
  | { type: 'stopConnectRetryTimer' }
  | { type: 'startHoldTimer'; seconds: number } // 0 = stop it
  | { type: 'startKeepaliveTimer'; seconds: number } // 0 = stop it
  | { type: 'established' } // session up: send the Adj-RIB-Out
  | { type: 'processUpdate' }
  | { type: 'releaseResources' }; // session down: withdraw the peer's routes

export interface FsmContext {
  state: FsmState;
  connectRetryCounter: number;
  /** Negotiated hold time of the current connection, seconds (0 = no keepalives). */
  holdTime: number;
}

export interface FsmResult {
  next: FsmContext;
  actions: FsmAction[];
}

/** Hold timer while waiting for the peer's OPEN (§8.2.2 suggests 4 minutes). */
export const LARGE_HOLD_TIME = 240;

const CEASE = 6;
const CEASE_ADMIN_SHUTDOWN = 2;
const CEASE_COLLISION = 7;
const HOLD_TIMER_EXPIRED = 4;
const FSM_ERROR = 5;
/** RFC 6608 FSM error subcodes, by the state the unexpected message arrived in. */
const FSM_SUBCODE: Partial<Record<FsmState, number>> = {
  OpenSent: 1,
  OpenConfirm: 2,
  Established: 3,
};
/** The message type (RFC 4271 §4.1, RFC 2918) behind each event that is a received message. */
const MESSAGE_TYPE: Partial<Record<FsmEvent['type'], number>> = {
  BGPOpen: 1,
  UpdateMsg: 2,
  UpdateMsgErr: 2,
  KeepAliveMsg: 4,
  RouteRefreshMsg: 5,
};

export function initialFsm(): FsmContext {
  return { state: 'Idle', connectRetryCounter: 0, holdTime: 0 };
}

export function keepaliveTime(holdTime: number): number {
  return Math.floor(holdTime / 3);
}

export function fsmStep(ctx: FsmContext, event: FsmEvent): FsmResult {
  switch (ctx.state) {
    case 'Idle':
      return idle(ctx, event);
    case 'Connect':
    case 'Active':
      return connecting(ctx, event);
    case 'OpenSent':
    case 'OpenConfirm':
    case 'Established':
      return connected(ctx, event);
  }
}

function to(
  ctx: FsmContext,
  state: FsmState,
  actions: FsmAction[],
  patch: Partial<FsmContext> = {},
) {
  return { next: { ...ctx, ...patch, state }, actions };
}

function idle(ctx: FsmContext, event: FsmEvent): FsmResult {
  switch (event.type) {
    case 'ManualStart':
    case 'AutomaticStart':
      return to(ctx, 'Connect', [{ type: 'startConnectRetryTimer' }, { type: 'connect' }], {
        connectRetryCounter: event.type === 'ManualStart' ? 0 : ctx.connectRetryCounter,
      });
    case 'ManualStartPassive':
    case 'AutomaticStartPassive':
      return to(ctx, 'Active', [{ type: 'startConnectRetryTimer' }], {
        connectRetryCounter: event.type === 'ManualStartPassive' ? 0 : ctx.connectRetryCounter,
      });
    default:
      // §8.2.2 Idle: "Any other event (Events 9-12, 15-28) received in the Idle state
      // does not cause change in the state of the local system."
      return { next: ctx, actions: [] };
  }
}

/** Connect and Active differ only in what a ConnectRetry expiry does. */
function connecting(ctx: FsmContext, event: FsmEvent): FsmResult {
  switch (event.type) {
    case 'ManualStart':
    case 'AutomaticStart':
    case 'ManualStartPassive':
    case 'AutomaticStartPassive':
      return { next: ctx, actions: [] };
    case 'ManualStop':
    case 'AutomaticStop':
      return to(
        ctx,
        'Idle',
        [
          { type: 'dropConnection' },
          { type: 'releaseResources' },
          { type: 'stopConnectRetryTimer' },
        ],
        { connectRetryCounter: event.type === 'ManualStop' ? 0 : ctx.connectRetryCounter + 1 },
      );
    case 'ConnectRetryTimerExpires':
      // Connect: drop the attempt and retry; Active: start connecting.
      return to(ctx, 'Connect', [
        { type: 'dropConnection' },
        { type: 'startConnectRetryTimer' },
        { type: 'connect' },
      ]);
    case 'TcpCRAcked':
    case 'TcpConnectionConfirmed':
      return to(ctx, 'OpenSent', [
        { type: 'stopConnectRetryTimer' },
        { type: 'sendOpen' },
        { type: 'startHoldTimer', seconds: LARGE_HOLD_TIME },
      ]);
    case 'TcpConnectionFails':
      if (ctx.state === 'Connect') {
        return to(ctx, 'Idle', [
          { type: 'stopConnectRetryTimer' },
          { type: 'dropConnection' },
          { type: 'releaseResources' },
        ]);
      }
      return to(ctx, 'Idle', [{ type: 'startConnectRetryTimer' }, { type: 'releaseResources' }], {
        connectRetryCounter: ctx.connectRetryCounter + 1,
      });
    default:
      // Any other event: back to Idle, counting the failure.
      return to(
        ctx,
        'Idle',
        [
          { type: 'stopConnectRetryTimer' },
          { type: 'dropConnection' },
          { type: 'releaseResources' },
        ],
        { connectRetryCounter: ctx.connectRetryCounter + 1 },
      );
  }
}

/** Tear the connection down: optionally notify, then release, drop, go Idle. */
function fail(
  ctx: FsmContext,
  notify: { code: number; subcode: number; data?: Buffer } | undefined,
  countFailure: boolean,
): FsmResult {
  const actions: FsmAction[] = [];
  if (notify) {
    const { code, subcode, data } = notify;
    actions.push(
      data
        ? { type: 'sendNotification', code, subcode, data }
        : { type: 'sendNotification', code, subcode },
    );
  }
  actions.push(
    { type: 'stopConnectRetryTimer' },
    { type: 'startHoldTimer', seconds: 0 },
    { type: 'startKeepaliveTimer', seconds: 0 },
    { type: 'releaseResources' },
    { type: 'dropConnection' },
  );
  return to(ctx, 'Idle', actions, {
    connectRetryCounter: countFailure ? ctx.connectRetryCounter + 1 : ctx.connectRetryCounter,
    holdTime: 0,
  });
}

/** OpenSent, OpenConfirm and Established: a TCP connection exists. */
function connected(ctx: FsmContext, event: FsmEvent): FsmResult {
  const { state } = ctx;
  switch (event.type) {
    case 'ManualStart':
    case 'AutomaticStart':
    case 'ManualStartPassive':
    case 'AutomaticStartPassive':
    case 'TcpCRAcked':
    case 'TcpConnectionConfirmed':
      // Start events are ignored; a second connection is the collision logic's business
      // (the session layer runs it in its own FSM instance).
      return { next: ctx, actions: [] };
    case 'ManualStop': {
      // a silent stop just closes the connection, so graceful-restart helpers keep our routes
      const notify = event.silent ? undefined : { code: CEASE, subcode: CEASE_ADMIN_SHUTDOWN };
      const r = fail(ctx, notify, false);
      r.next.connectRetryCounter = 0;
      return r;
    }
    case 'AutomaticStop':
      return fail(ctx, { code: CEASE, subcode: event.subcode, data: event.data }, true);
    case 'HoldTimerExpires':
      return fail(ctx, { code: HOLD_TIMER_EXPIRED, subcode: 0 }, true);
    case 'TcpConnectionFails':
      if (state === 'OpenSent') {
        // §8.2.2 OpenSent: close the connection, restart ConnectRetry, go Active.
        return to(ctx, 'Active', [{ type: 'dropConnection' }, { type: 'startConnectRetryTimer' }], {
          holdTime: 0,
        });
      }
      return fail(ctx, undefined, true);
    case 'NotifMsgVerErr':
      return fail(ctx, undefined, false);
    case 'NotifMsg':
      return fail(ctx, undefined, true);
    case 'BGPHeaderErr':
    case 'BGPOpenMsgErr':
      return fail(ctx, event, true);
    case 'OpenCollisionDump':
      return fail(ctx, { code: CEASE, subcode: CEASE_COLLISION }, true);
    case 'KeepaliveTimerExpires':
      if (state === 'OpenSent') break;
      return {
        next: ctx,
        actions: [
          { type: 'sendKeepalive' },
          { type: 'startKeepaliveTimer', seconds: keepaliveTime(ctx.holdTime) },
        ],
      };
    case 'BGPOpen':
      if (state !== 'OpenSent') break; // collisions were resolved before this event
      return to(
        ctx,
        'OpenConfirm',
        [
          { type: 'stopConnectRetryTimer' },
          { type: 'sendKeepalive' },
          { type: 'startKeepaliveTimer', seconds: keepaliveTime(event.holdTime) },
          { type: 'startHoldTimer', seconds: event.holdTime },
        ],
        { holdTime: event.holdTime },
      );
    case 'KeepAliveMsg':
      if (state === 'OpenSent') break;
      return to(ctx, 'Established', [
        ...(state === 'OpenConfirm' ? [{ type: 'established' } as const] : []),
        { type: 'startHoldTimer', seconds: ctx.holdTime },
      ]);
    case 'UpdateMsg':
      if (state !== 'Established') break;
      return {
        next: ctx,
        actions: [{ type: 'processUpdate' }, { type: 'startHoldTimer', seconds: ctx.holdTime }],
      };
    case 'UpdateMsgErr':
      if (state !== 'Established') break;
      return fail(ctx, event, true);
    case 'RouteRefreshMsg':
      if (state === 'Established') return { next: ctx, actions: [] }; // the session layer serves it
      break;
    case 'ConnectRetryTimerExpires':
      break;
  }
  // Any other event is an FSM error. RFC 6608 §4: an unexpected message gets the subcode of
  // the state it arrived in and its message type as data; other events subcode 0 (Unspecified).
  const type = MESSAGE_TYPE[event.type];
  if (type === undefined) return fail(ctx, { code: FSM_ERROR, subcode: 0 }, true);
  return fail(
    ctx,
    { code: FSM_ERROR, subcode: FSM_SUBCODE[state] ?? 0, data: Buffer.from([type]) },
    true,
  );
}
