// One configured BGP neighbour: drives the RFC 4271 FSM (fsm.ts) with a real TCP
// connection and real timers. A peer may briefly hold two connections (ours and the
// peer's) until the collision rules of §6.8 pick one; each runs its own FSM instance.
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { BgpError, describeNotification } from '../codec/errors';
import { MessageReader, encodeMessage } from '../codec';
import { ErrorCode, CeaseSubcode } from '../constants';
import {
  fsmStep,
  initialFsm,
  type FsmAction,
  type FsmContext,
  type FsmEvent,
  type FsmState,
} from '../fsm';
import type { Logger } from '../log';
import type { Afi, BgpMessage, CodecContext, UpdateMessage } from '../types';
import type { DownCause, GracefulRestartSettings } from './graceful-restart';
import { buildOpen, negotiate, outgoingLosesCollision, type Negotiated } from './open';
import { fdOf, sockopt } from './sockopt';

export interface PeerSettings {
  address: string;
  asn: number;
  port: number;
  localAddress?: string;
  localPort?: number;
  passive: boolean;
  holdTime: number;
  connectRetryTime: number;
  /** Idle hold after an error grows from min to max (seconds), like BIRD's "error wait time". */
  errorWaitTime: [number, number];
  families: Afi[];
  description?: string;
  ttl?: number;
  ttlSecurity?: number;
  /** TCP-MD5 key (RFC 2385): our SYN is signed, unsigned segments from the peer dropped. */
  password?: string;
  /** Graceful restart (RFC 4724) for this peer; absent: off. */
  gracefulRestart?: GracefulRestartSettings;
  /** eBGP: the AS_PATH must start with the peer's AS (RFC 4271 §6.3); default on. */
  enforceFirstAs?: boolean;
  /** Seconds between KEEPALIVEs, at most a third of the negotiated hold time (BIRD's `keepalive time`). */
  keepaliveTime?: number;
}

export interface LocalSettings {
  asn: number;
  routerId: string;
}

export interface PeerCounters {
  messagesIn: number;
  messagesOut: number;
  updatesIn: number;
  updatesOut: number;
  notificationsIn: number;
  notificationsOut: number;
  establishedTransitions: number;
}

export interface NotificationRecord {
  direction: 'sent' | 'received';
  code: number;
  subcode: number;
  meaning: string;
  at: string;
}

/** What the owner of a peer (the speaker) does when the session comes up, goes down, or delivers. */
export interface PeerEvents {
  established: [];
  /** The session ended: why, and what had been negotiated (for graceful restart). */
  down: [reason: string, cause: DownCause, negotiated: Negotiated | undefined];
  update: [msg: UpdateMessage];
  routeRefresh: [afi: Afi];
  stateChange: [from: FsmState, to: FsmState];
}

const ESTABLISHED_OR_CONFIRM: FsmState[] = ['OpenConfirm', 'Established'];

class Connection {
  fsm: FsmContext = initialFsm();
  socket?: net.Socket;
  outgoing = false;
  negotiated?: Negotiated;
  wasEstablished = false;
  /** The FSM event being handled: tells how a session ended. */
  event?: FsmEvent['type'];
  timers: Partial<Record<'connectRetry' | 'hold' | 'keepalive', NodeJS.Timeout>> = {};
  constructor(readonly id: number) {}
}

export class Peer extends EventEmitter<PeerEvents> {
  private conns: Connection[] = [];
  private nextConnId = 1;
  private enabled = false;
  private idleHold?: NodeJS.Timeout;
  private errorWait: number;
  private establishedAt?: Date;
  readonly counters: PeerCounters = {
    messagesIn: 0,
    messagesOut: 0,
    updatesIn: 0,
    updatesOut: 0,
    notificationsIn: 0,
    notificationsOut: 0,
    establishedTransitions: 0,
  };
  lastNotification?: NotificationRecord;
  lastError?: string;
  /** Restart State bit for the next OPEN: set until our first session after start. */
  private restarting: boolean;

  constructor(
    readonly settings: PeerSettings,
    private readonly local: LocalSettings,
    private readonly log: Logger,
  ) {
    super();
    this.errorWait = settings.errorWaitTime[0];
    this.restarting = settings.gracefulRestart?.restarting ?? false;
  }

  get address(): string {
    return this.settings.address;
  }

  /** The state an operator sees: the most advanced of the peer's connections. */
  get state(): FsmState {
    const order: FsmState[] = [
      'Idle',
      'Active',
      'Connect',
      'OpenSent',
      'OpenConfirm',
      'Established',
    ];
    let best: FsmState = 'Idle';
    for (const c of this.conns)
      if (order.indexOf(c.fsm.state) > order.indexOf(best)) best = c.fsm.state;
    return best;
  }

  get established(): Connection | undefined {
    return this.conns.find((c) => c.fsm.state === 'Established');
  }

  get negotiated(): Negotiated | undefined {
    return this.established?.negotiated;
  }

  get since(): Date | undefined {
    return this.establishedAt;
  }

  /** Our address on the established connection (IPv4-mapped addresses unwrapped). */
  get localEndpoint(): string | undefined {
    const a = this.established?.socket?.localAddress;
    return a?.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
  }

  get codecContext(): CodecContext {
    return { as4: this.negotiated?.as4 ?? true };
  }

  start(): void {
    if (this.enabled) return;
    this.enabled = true;
    const c = this.mainConnection();
    this.dispatch(c, { type: this.settings.passive ? 'ManualStartPassive' : 'ManualStart' });
  }

  /**
   * Stops the peer: Cease / Administrative Shutdown, or with `silent` just closes the
   * connection (a graceful restart of ours: helpers keep our routes meanwhile).
   */
  stop(opts: { silent?: boolean } = {}): void {
    this.enabled = false;
    clearTimeout(this.idleHold);
    for (const c of [...this.conns]) this.dispatch(c, { type: 'ManualStop', silent: opts.silent });
  }

  /** Ceases the session with a Cease subcode (e.g. max prefixes), then restarts after error wait. */
  cease(subcode: number, data: Buffer | undefined, reason: string): void {
    const c = this.established;
    if (!c) return;
    this.lastError = reason;
    this.dispatch(c, { type: 'AutomaticStop', subcode, data });
  }

  /**
   * Sends already-encoded UPDATE messages on the established connection, corked so
   * they leave in one writev (the buffers may be shared with other peers: not copied).
   */
  sendUpdates(messages: Buffer[]): void {
    const c = this.established;
    if (!c?.socket) return;
    c.socket.cork();
    for (const m of messages) c.socket.write(m);
    c.socket.uncork();
    this.counters.messagesOut += messages.length;
    this.counters.updatesOut += messages.length;
  }

  /** Asks the peer to resend its routes (RFC 2918), if it announced the capability. */
  requestRefresh(afi: Afi): boolean {
    const c = this.established;
    if (!c?.negotiated?.routeRefresh) return false;
    this.write(c, { type: 'route-refresh', afi, safi: 1, subtype: 0 });
    return true;
  }

  /** A TCP connection from this peer's address arrived at our listener. */
  acceptIncoming(socket: net.Socket): void {
    if (!this.enabled) {
      socket.destroy();
      return;
    }
    if (this.ttls().ttl !== undefined) {
      try {
        this.applyTtls(fdOf(socket), net.isIPv6(socket.localAddress ?? '') ? 6 : 4);
      } catch (err) {
        this.log.error('cannot apply TTL settings to incoming connection', {
          peer: this.address,
          error: String(err),
        });
        socket.destroy();
        return;
      }
    }
    const waiting = this.conns.find((c) => ['Idle', 'Connect', 'Active'].includes(c.fsm.state));
    if (waiting) {
      if (waiting.fsm.state === 'Idle') {
        clearTimeout(this.idleHold);
        this.dispatch(waiting, { type: 'AutomaticStartPassive' });
      }
      this.detachSocket(waiting); // abandon our own attempt in favour of the live connection
      this.attachSocket(waiting, socket, false);
      this.dispatch(waiting, { type: 'TcpConnectionConfirmed' });
      return;
    }
    if (this.established) {
      // §6.8: a collision with an Established session closes the new connection.
      this.log.info('rejecting connection: session already established', { peer: this.address });
      socket.end(
        encodeMessage(
          {
            type: 'notification',
            code: ErrorCode.CEASE,
            subcode: CeaseSubcode.CONNECTION_COLLISION,
            data: Buffer.alloc(0),
          },
          this.codecContext,
        ),
      );
      return;
    }
    const c = this.newConnection();
    this.dispatch(c, { type: 'AutomaticStartPassive' });
    this.attachSocket(c, socket, false);
    this.dispatch(c, { type: 'TcpConnectionConfirmed' });
  }

  status() {
    const n = this.negotiated;
    return {
      address: this.address,
      port: this.settings.port,
      asn: this.settings.asn,
      description: this.settings.description,
      state: this.state,
      since: this.establishedAt?.toISOString(),
      routerId: n?.peerRouterId,
      holdTime: n?.holdTime,
      families: n?.families,
      as4: n?.as4,
      gracefulRestart: n?.peerGracefulRestart,
      counters: { ...this.counters },
      lastNotification: this.lastNotification,
      lastError: this.lastError,
    };
  }

  private mainConnection(): Connection {
    return this.conns[0] ?? this.newConnection();
  }

  private newConnection(): Connection {
    const c = new Connection(this.nextConnId++);
    this.conns.push(c);
    return c;
  }

  private dispatch(c: Connection, event: FsmEvent, msg?: BgpMessage): void {
    const from = c.fsm.state;
    const { next, actions } = fsmStep(c.fsm, event);
    c.fsm = next;
    c.event = event.type;
    if (from !== next.state) {
      this.log.info('state change', {
        peer: this.address,
        conn: c.id,
        from,
        to: next.state,
        event: event.type,
      });
      this.emit('stateChange', from, next.state);
    }
    for (const a of actions) this.perform(c, a, msg);
    if (next.state === 'Idle' && from !== 'Idle') this.afterIdle(c);
  }

  private perform(c: Connection, a: FsmAction, msg?: BgpMessage): void {
    switch (a.type) {
      case 'connect':
        this.connectOut(c);
        break;
      case 'dropConnection':
        this.detachSocket(c);
        break;
      case 'sendOpen':
        this.write(
          c,
          buildOpen({
            asn: this.local.asn,
            routerId: this.local.routerId,
            holdTime: this.settings.holdTime,
            families: this.settings.families,
            gracefulRestart: this.settings.gracefulRestart,
            restarting: this.restarting,
          }),
        );
        break;
      case 'sendKeepalive':
        this.write(c, { type: 'keepalive' });
        break;
      case 'sendNotification':
        this.write(c, {
          type: 'notification',
          code: a.code,
          subcode: a.subcode,
          data: a.data ?? Buffer.alloc(0),
        });
        this.recordNotification('sent', a.code, a.subcode);
        break;
      case 'startConnectRetryTimer':
        // passive: wait in Active for the peer, and never dial (RFC 4271's FSM would dial
        // when ConnectRetry expires; BIRD's and FRR's `passive` never do, and Calico's mesh
        // relies on exactly one side dialling)
        if (this.settings.passive && c.fsm.state === 'Active') break;
        this.setTimer(c, 'connectRetry', this.settings.connectRetryTime, {
          type: 'ConnectRetryTimerExpires',
        });
        break;
      case 'stopConnectRetryTimer':
        this.clearTimer(c, 'connectRetry');
        break;
      case 'startHoldTimer':
        this.setTimer(c, 'hold', a.seconds, { type: 'HoldTimerExpires' });
        break;
      case 'startKeepaliveTimer': {
        // a configured interval is used while it keeps within the hold time's third
        const k = this.settings.keepaliveTime;
        const seconds = a.seconds > 0 && k ? Math.min(a.seconds, k) : a.seconds;
        this.setTimer(c, 'keepalive', seconds, { type: 'KeepaliveTimerExpires' });
        break;
      }
      case 'established':
        c.wasEstablished = true;
        this.restarting = false;
        this.establishedAt = new Date();
        this.counters.establishedTransitions++;
        this.errorWait = this.settings.errorWaitTime[0];
        this.lastError = undefined;
        // The winner is decided: any other connection of this peer is closed (§6.8).
        for (const other of this.conns)
          if (other !== c) this.dispatch(other, { type: 'OpenCollisionDump' });
        this.log.info('session established', {
          peer: this.address,
          routerId: c.negotiated?.peerRouterId,
          holdTime: c.negotiated?.holdTime,
          families: c.negotiated?.families,
        });
        this.emit('established');
        break;
      case 'processUpdate':
        if (msg?.type === 'update') this.emit('update', msg);
        break;
      case 'releaseResources':
        if (c.wasEstablished) {
          c.wasEstablished = false;
          this.establishedAt = undefined;
          this.emit('down', this.lastError ?? 'session closed', downCause(c.event), c.negotiated);
        }
        break;
    }
  }

  /** After a connection falls back to Idle: forget it, or schedule the automatic restart. */
  private afterIdle(c: Connection): void {
    for (const t of Object.keys(c.timers) as Array<keyof Connection['timers']>)
      this.clearTimer(c, t);
    if (this.conns.length > 1) {
      this.conns = this.conns.filter((x) => x !== c);
      return;
    }
    if (!this.enabled) return;
    const wait = this.errorWait;
    this.errorWait = Math.min(this.errorWait * 2, this.settings.errorWaitTime[1]);
    clearTimeout(this.idleHold);
    this.idleHold = setTimeout(() => {
      if (!this.enabled || c.fsm.state !== 'Idle') return;
      this.dispatch(c, {
        type: this.settings.passive ? 'AutomaticStartPassive' : 'AutomaticStart',
      });
    }, wait * 1000);
  }

  private setTimer(
    c: Connection,
    name: keyof Connection['timers'],
    seconds: number,
    event: FsmEvent,
  ): void {
    this.clearTimer(c, name);
    if (seconds <= 0) return;
    c.timers[name] = setTimeout(() => {
      c.timers[name] = undefined;
      this.dispatch(c, event);
    }, seconds * 1000);
  }

  private clearTimer(c: Connection, name: keyof Connection['timers']): void {
    clearTimeout(c.timers[name]);
    c.timers[name] = undefined;
  }

  /** TTL to send with, and the minimum TTL to accept, when configured (GTSM sends 255). */
  private ttls(): { ttl?: number; minTtl?: number } {
    const { ttl, ttlSecurity } = this.settings;
    return ttlSecurity ? { ttl: 255, minTtl: 256 - ttlSecurity } : { ttl };
  }

  /** Applies the TTL settings to a socket (an accepted one, or our own before it connects). */
  private applyTtls(fd: number, family: 4 | 6): void {
    const { ttl, minTtl } = this.ttls();
    if (ttl !== undefined) sockopt().setTtl(fd, family, ttl);
    if (minTtl !== undefined) sockopt().setMinTtl(fd, family, minTtl);
  }

  private connectOut(c: Connection): void {
    this.detachSocket(c);
    const target = {
      host: this.settings.address,
      port: this.settings.port,
      localAddress: this.settings.localAddress,
      localPort: this.settings.localPort,
    };
    let socket: net.Socket;
    if (this.ttls().ttl !== undefined || this.settings.password !== undefined) {
      // TTL and MD5 key must be on the socket before the SYN: create it, then connect.
      const family = net.isIPv6(this.settings.address) ? 6 : 4;
      const fd = sockopt().tcpSocket(family);
      this.applyTtls(fd, family);
      if (this.settings.password !== undefined)
        sockopt().setMd5(fd, family, this.settings.address, this.settings.password);
      socket = new net.Socket({ fd, readable: true, writable: true });
      socket.connect(target);
    } else socket = net.connect(target);
    this.attachSocket(c, socket, true);
    socket.once('connect', () => {
      if (c.socket === socket) this.dispatch(c, { type: 'TcpCRAcked' });
    });
  }

  private attachSocket(c: Connection, socket: net.Socket, outgoing: boolean): void {
    c.socket = socket;
    c.outgoing = outgoing;
    socket.setNoDelay(true);
    const external = this.settings.asn !== this.local.asn;
    const firstAs =
      external && this.settings.enforceFirstAs !== false ? this.settings.asn : undefined;
    const reader = new MessageReader(() => ({
      as4: c.negotiated?.as4 ?? false,
      external,
      firstAs,
    }));
    socket.on('data', (chunk: Buffer) => {
      // each message is decoded after the one before it took effect (the OPEN sets as4)
      const messages = reader.feed(chunk);
      for (;;) {
        if (c.socket !== socket) return; // an earlier message closed this connection
        let next: IteratorResult<BgpMessage, void>;
        try {
          next = messages.next();
        } catch (err) {
          this.onDecodeError(c, err);
          return;
        }
        if (next.done) return;
        this.onMessage(c, next.value);
      }
    });
    const failed = (why: string) => {
      if (c.socket !== socket) return;
      c.socket = undefined;
      this.lastError = why;
      this.dispatch(c, { type: 'TcpConnectionFails' });
    };
    socket.on('error', (err) => failed(`connection error: ${err.message}`));
    socket.on('close', () => failed('connection closed by peer'));
  }

  private detachSocket(c: Connection): void {
    const s = c.socket;
    if (!s) return;
    c.socket = undefined;
    // end() lets a queued NOTIFICATION reach the peer before the FIN; destroy as a backstop.
    s.end();
    setTimeout(() => s.destroy(), 1000).unref();
  }

  private write(c: Connection, msg: BgpMessage): void {
    if (!c.socket || c.socket.destroyed) return;
    const ctx: CodecContext = { as4: c.negotiated?.as4 ?? false };
    c.socket.write(encodeMessage(msg, ctx));
    this.counters.messagesOut++;
    if (msg.type === 'notification') this.counters.notificationsOut++;
  }

  private onDecodeError(c: Connection, err: unknown): void {
    if (!(err instanceof BgpError)) {
      // A decoder bug must not take the process down: reset the session and log loudly.
      this.log.error('internal error decoding message', { peer: this.address, error: String(err) });
      this.dispatch(c, { type: 'BGPHeaderErr', code: ErrorCode.CEASE, subcode: 0 });
      return;
    }
    this.lastError = err.message;
    this.log.warn('malformed message', {
      peer: this.address,
      code: err.code,
      subcode: err.subcode,
      error: err.message,
      message: err.raw?.toString('hex'), // RFC 7606 §6: the whole message
    });
    const e = { code: err.code, subcode: err.subcode, data: err.data };
    if (err.code === ErrorCode.MESSAGE_HEADER) this.dispatch(c, { type: 'BGPHeaderErr', ...e });
    else if (err.code === ErrorCode.OPEN_MESSAGE) {
      // an OPEN after OpenSent is unexpected, however it is written (RFC 6608)
      if (c.fsm.state === 'OpenSent') this.dispatch(c, { type: 'BGPOpenMsgErr', ...e });
      else this.dispatch(c, { type: 'BGPOpen', holdTime: 0 });
    } else if (err.code === ErrorCode.ROUTE_REFRESH) {
      if (c.fsm.state === 'Established') this.dispatch(c, { type: 'UpdateMsgErr', ...e });
      else this.dispatch(c, { type: 'RouteRefreshMsg' });
    } else this.dispatch(c, { type: 'UpdateMsgErr', ...e });
  }

  private onMessage(c: Connection, m: BgpMessage): void {
    this.counters.messagesIn++;
    switch (m.type) {
      case 'open':
        this.onOpen(c, m);
        return;
      case 'keepalive':
        this.dispatch(c, { type: 'KeepAliveMsg' });
        return;
      case 'update':
        this.counters.updatesIn++;
        this.dispatch(c, { type: 'UpdateMsg' }, m);
        return;
      case 'notification': {
        this.counters.notificationsIn++;
        const meaning = this.recordNotification('received', m.code, m.subcode);
        this.lastError = `peer sent NOTIFICATION: ${meaning}`;
        this.log.warn('notification received', {
          peer: this.address,
          code: m.code,
          subcode: m.subcode,
          meaning,
          data: m.data.toString('hex'),
        });
        const versionError = m.code === ErrorCode.OPEN_MESSAGE && m.subcode === 1;
        this.dispatch(c, { type: versionError ? 'NotifMsgVerErr' : 'NotifMsg' });
        return;
      }
      case 'route-refresh':
        if (c.fsm.state !== 'Established') {
          this.dispatch(c, { type: 'RouteRefreshMsg' }); // an FSM error before Established
          return;
        }
        this.setTimer(c, 'hold', c.fsm.holdTime, { type: 'HoldTimerExpires' });
        if (m.subtype === 0 && (m.afi === 1 || m.afi === 2)) this.emit('routeRefresh', m.afi);
        return;
    }
  }

  private onOpen(c: Connection, open: Extract<BgpMessage, { type: 'open' }>): void {
    if (c.fsm.state !== 'OpenSent') {
      this.dispatch(c, { type: 'BGPOpen', holdTime: 0 }); // FSM error in any other state
      return;
    }
    let n: Negotiated;
    try {
      n = negotiate(open, this.settings.holdTime, this.settings.families, {
        asn: this.settings.asn,
        localAsn: this.local.asn,
        localRouterId: this.local.routerId,
      });
    } catch (err) {
      this.onDecodeError(c, err);
      return;
    }
    c.negotiated = n;
    // §6.8 collision detection against our other connection to this peer.
    const other = this.conns.find((x) => x !== c && ESTABLISHED_OR_CONFIRM.includes(x.fsm.state));
    if (other) {
      let loser: Connection;
      if (other.fsm.state === 'Established') loser = c;
      else {
        const dropOutgoing = outgoingLosesCollision(this.local.routerId, n.peerRouterId);
        loser = c.outgoing === dropOutgoing ? c : other;
      }
      this.log.info('connection collision', {
        peer: this.address,
        closing: loser.outgoing ? 'outgoing' : 'incoming',
      });
      this.dispatch(loser, { type: 'OpenCollisionDump' });
      if (loser === c) return;
    }
    this.dispatch(c, { type: 'BGPOpen', holdTime: n.holdTime });
  }

  private recordNotification(
    direction: 'sent' | 'received',
    code: number,
    subcode: number,
  ): string {
    const meaning = describeNotification(code, subcode);
    this.lastNotification = { direction, code, subcode, meaning, at: new Date().toISOString() };
    return meaning;
  }
}

/** How the event that ended a session counts for graceful restart. */
function downCause(event: FsmEvent['type'] | undefined): DownCause {
  if (event === 'TcpConnectionFails' || event === 'HoldTimerExpires') return 'transport';
  if (event === 'ManualStop') return 'stop';
  return 'notification';
}
