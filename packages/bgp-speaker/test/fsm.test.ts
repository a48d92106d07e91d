import {
  fsmStep,
  initialFsm,
  LARGE_HOLD_TIME,
  type FsmContext,
  type FsmEvent,
  type FsmState,
} from '../src/fsm';

function run(events: FsmEvent[], from: FsmContext = initialFsm()) {
  let ctx = from;
  const actions = [];
  for (const e of events) {
    const r = fsmStep(ctx, e);
    ctx = r.next;
    actions.push(...r.actions);
  }
  return { ctx, actions };
}

const at = (state: FsmState, holdTime = 90): FsmContext => ({
  state,
  connectRetryCounter: 0,
  holdTime,
});
const types = (xs: Array<{ type: string }>) => xs.map((a) => a.type);

describe('RFC 4271 §8 FSM', () => {
  test('active open walks Idle -> Connect -> OpenSent -> OpenConfirm -> Established', () => {
    const steps: Array<[FsmEvent, FsmState]> = [
      [{ type: 'ManualStart' }, 'Connect'],
      [{ type: 'TcpCRAcked' }, 'OpenSent'],
      [{ type: 'BGPOpen', holdTime: 9 }, 'OpenConfirm'],
      [{ type: 'KeepAliveMsg' }, 'Established'],
    ];
    let ctx = initialFsm();
    for (const [e, want] of steps) {
      ctx = fsmStep(ctx, e).next;
      expect(ctx.state).toBe(want);
    }
    expect(ctx.holdTime).toBe(9);
  });

  test('ManualStart initiates a connection and the ConnectRetry timer', () => {
    expect(types(fsmStep(initialFsm(), { type: 'ManualStart' }).actions)).toEqual([
      'startConnectRetryTimer',
      'connect',
    ]);
  });

  test('passive start waits in Active without connecting', () => {
    const r = fsmStep(initialFsm(), { type: 'ManualStartPassive' });
    expect(r.next.state).toBe('Active');
    expect(types(r.actions)).not.toContain('connect');
  });

  test('connection up sends OPEN and arms the large hold timer', () => {
    const r = fsmStep(at('Active'), { type: 'TcpConnectionConfirmed' });
    expect(r.next.state).toBe('OpenSent');
    expect(r.actions).toContainEqual({ type: 'sendOpen' });
    expect(r.actions).toContainEqual({ type: 'startHoldTimer', seconds: LARGE_HOLD_TIME });
  });

  test('OPEN received: KEEPALIVE sent, keepalive = hold/3, hold timer = negotiated', () => {
    const r = fsmStep(at('OpenSent'), { type: 'BGPOpen', holdTime: 30 });
    expect(r.actions).toEqual(
      expect.arrayContaining([
        { type: 'sendKeepalive' },
        { type: 'startKeepaliveTimer', seconds: 10 },
        { type: 'startHoldTimer', seconds: 30 },
      ]),
    );
  });

  test('hold time 0 disables keepalives and the hold timer', () => {
    const r = fsmStep(at('OpenSent'), { type: 'BGPOpen', holdTime: 0 });
    expect(r.actions).toContainEqual({ type: 'startKeepaliveTimer', seconds: 0 });
    expect(r.actions).toContainEqual({ type: 'startHoldTimer', seconds: 0 });
  });

  test('KEEPALIVE in OpenConfirm establishes the session exactly once', () => {
    const up = fsmStep(at('OpenConfirm'), { type: 'KeepAliveMsg' });
    expect(up.next.state).toBe('Established');
    expect(types(up.actions)).toContain('established');
    const again = fsmStep(up.next, { type: 'KeepAliveMsg' });
    expect(types(again.actions)).not.toContain('established');
    expect(again.actions).toContainEqual({ type: 'startHoldTimer', seconds: 90 });
  });

  test('UPDATE in Established is processed and restarts the hold timer', () => {
    const r = fsmStep(at('Established'), { type: 'UpdateMsg' });
    expect(r.next.state).toBe('Established');
    expect(types(r.actions)).toEqual(['processUpdate', 'startHoldTimer']);
  });

  test.each<FsmState>(['OpenConfirm', 'Established'])(
    'hold timer expiry in %s sends NOTIFICATION 4/0 and goes Idle',
    (state) => {
      const r = fsmStep(at(state), { type: 'HoldTimerExpires' });
      expect(r.next.state).toBe('Idle');
      expect(r.actions[0]).toEqual({ type: 'sendNotification', code: 4, subcode: 0 });
      expect(types(r.actions)).toEqual(
        expect.arrayContaining(['releaseResources', 'dropConnection']),
      );
      expect(r.next.connectRetryCounter).toBe(1);
    },
  );

  // RFC 6608 §4: the subcode names the state the unexpected message arrived in, the data
  // is its message type (1 OPEN, 2 UPDATE, 4 KEEPALIVE, 5 ROUTE-REFRESH)
  test.each<[FsmState, FsmEvent, number, string | undefined]>([
    ['OpenSent', { type: 'KeepAliveMsg' }, 1, '04'],
    ['OpenSent', { type: 'UpdateMsg' }, 1, '02'],
    ['OpenSent', { type: 'UpdateMsgErr', code: 3, subcode: 1 }, 1, '02'],
    ['OpenSent', { type: 'RouteRefreshMsg' }, 1, '05'],
    ['OpenConfirm', { type: 'BGPOpen', holdTime: 90 }, 2, '01'],
    ['OpenConfirm', { type: 'UpdateMsg' }, 2, '02'],
    ['OpenConfirm', { type: 'RouteRefreshMsg' }, 2, '05'],
    ['Established', { type: 'BGPOpen', holdTime: 90 }, 3, '01'],
    // not a message: Unspecified Error, no data
    ['Established', { type: 'ConnectRetryTimerExpires' }, 0, undefined],
  ])(
    'RFC 6608 §4: unexpected message in %s is an FSM error with its subcode and type',
    (state, event, subcode, data) => {
      const r = fsmStep(at(state), event);
      expect(r.next.state).toBe('Idle');
      expect(r.actions[0]).toEqual({
        type: 'sendNotification',
        code: 5,
        subcode,
        ...(data === undefined ? {} : { data: Buffer.from(data, 'hex') }),
      });
    },
  );

  test('a ROUTE-REFRESH in Established is no FSM error', () => {
    expect(fsmStep(at('Established'), { type: 'RouteRefreshMsg' })).toEqual({
      next: at('Established'),
      actions: [],
    });
  });

  test('ManualStop from Established sends Cease/Administrative Shutdown and resets the counter', () => {
    const r = fsmStep(
      { state: 'Established', connectRetryCounter: 3, holdTime: 90 },
      { type: 'ManualStop' },
    );
    expect(r.actions[0]).toEqual({ type: 'sendNotification', code: 6, subcode: 2 });
    expect(r.next).toEqual({ state: 'Idle', connectRetryCounter: 0, holdTime: 0 });
  });

  test('AutomaticStop carries its Cease subcode and data (max prefixes)', () => {
    const data = Buffer.from([0, 1, 1, 0, 0, 0, 10]);
    const r = fsmStep(at('Established'), { type: 'AutomaticStop', subcode: 1, data });
    expect(r.actions[0]).toEqual({ type: 'sendNotification', code: 6, subcode: 1, data });
    expect(r.next.state).toBe('Idle');
  });

  test.each<FsmEvent>([
    { type: 'UpdateMsgErr', code: 3, subcode: 1, data: Buffer.from([1]) },
    { type: 'BGPHeaderErr', code: 1, subcode: 2, data: Buffer.from([1]) },
  ])('a decode error ($type) is answered with its own NOTIFICATION', (event) => {
    const r = fsmStep(at('Established'), event);
    const e = event as { code: number; subcode: number; data: Buffer };
    expect(r.actions[0]).toEqual({
      type: 'sendNotification',
      code: e.code,
      subcode: e.subcode,
      data: e.data,
    });
    expect(r.next.state).toBe('Idle');
  });

  test('collision dump sends Cease/Connection Collision Resolution', () => {
    const r = fsmStep(at('OpenConfirm'), { type: 'OpenCollisionDump' });
    expect(r.actions[0]).toEqual({ type: 'sendNotification', code: 6, subcode: 7 });
  });

  test('a NOTIFICATION from the peer closes without answering', () => {
    const r = fsmStep(at('Established'), { type: 'NotifMsg' });
    expect(r.next.state).toBe('Idle');
    expect(types(r.actions)).not.toContain('sendNotification');
    expect(types(r.actions)).toContain('releaseResources');
  });

  test('TCP failure in OpenSent falls back to Active and keeps retrying', () => {
    const r = fsmStep(at('OpenSent'), { type: 'TcpConnectionFails' });
    expect(r.next.state).toBe('Active');
    expect(types(r.actions)).toEqual(['dropConnection', 'startConnectRetryTimer']);
  });

  test('ConnectRetry expiry in Active starts connecting; in Connect it retries', () => {
    expect(fsmStep(at('Active'), { type: 'ConnectRetryTimerExpires' }).next.state).toBe('Connect');
    const r = fsmStep(at('Connect'), { type: 'ConnectRetryTimerExpires' });
    expect(r.next.state).toBe('Connect');
    expect(types(r.actions)).toEqual(['dropConnection', 'startConnectRetryTimer', 'connect']);
  });

  test('Idle ignores everything but start events', () => {
    for (const e of [
      { type: 'HoldTimerExpires' },
      { type: 'UpdateMsg' },
      { type: 'NotifMsg' },
    ] as FsmEvent[]) {
      expect(fsmStep(initialFsm(), e)).toEqual({ next: initialFsm(), actions: [] });
    }
  });

  test('keepalive timer in Established sends KEEPALIVE and re-arms at hold/3', () => {
    const { ctx, actions } = run([{ type: 'KeepaliveTimerExpires' }], at('Established', 9));
    expect(ctx.state).toBe('Established');
    expect(actions).toEqual([
      { type: 'sendKeepalive' },
      { type: 'startKeepaliveTimer', seconds: 3 },
    ]);
  });
});
