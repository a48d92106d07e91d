// The BFD edge (RFC 5881 single hop): one receiving socket per family on UDP 3784, one
// sending socket per session from a source port in 49152-65535 with TTL 255, a timer
// per session driven by the pure state machine, and the drop counters. Packets are
// matched to sessions by Your Discriminator, or by source address while it is 0.
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
import { randomInt } from 'node:crypto';
import { BfdDiag, BfdState, decodeBfd, encodeBfd, type BfdRejectReason } from './codec';
import type { Logger } from 'winston';
import {
  detectionTimeMs,
  newSession,
  nextDeadline,
  step,
  txIntervalMs,
  type BfdEvent,
  type BfdSessionState,
  type BfdTimers,
} from './session';
import { nftTtlGuard, type TtlGuard } from './ttl-guard';

export const BFD_PORT = 3784;
const SOURCE_PORTS = [49152, 65535] as const;

/** Defaults like FRR's bfdd: 300 ms × 3. */
export const DEFAULT_TIMERS: BfdTimers = {
  desiredMinTxMs: 300,
  requiredMinRxMs: 300,
  detectMult: 3,
};

export type DropReason = BfdRejectReason | 'ttl' | 'unknown-peer' | 'source-address';

export interface BfdPeerStatus {
  peer: string;
  localAddress?: string;
  state: keyof typeof BfdState;
  remoteState: keyof typeof BfdState;
  diag: string;
  localDiscriminator: number;
  remoteDiscriminator: number;
  /** Agreed intervals in force (ms). */
  txIntervalMs: number;
  detectTimeMs: number;
  timers: BfdTimers;
  since: string;
  upTransitions: number;
  received: number;
  sent: number;
}

export interface BfdStatus {
  sessions: BfdPeerStatus[];
  /** Packets dropped before reaching a session, by reason (RFC 5880 §6.8.6, GTSM). */
  dropped: Partial<Record<DropReason, number>>;
}

interface Entry {
  address: string;
  localAddress?: string;
  session: BfdSessionState;
  socket: dgram.Socket;
  timer?: NodeJS.Timeout;
  since: Date;
  upTransitions: number;
  received: number;
  sent: number;
}

export interface BfdStateChange {
  peer: string;
  from: BfdState;
  to: BfdState;
  diag: BfdDiag;
  /** The path failed (Up to Down, not the peer's AdminDown): tie BGP to this. */
  failure: boolean;
}

export interface BfdEndpointEvents {
  state: [change: BfdStateChange];
}

export interface BfdEndpointOptions {
  /** The owner's logger (the speaker's, with component bfd). */
  logger: Logger;
  /** The kernel's TTL 255 check; default nftables in this namespace. */
  ttlGuard?: TtlGuard;
  /** Only for tests on one host: the port to listen on (default 3784). */
  port?: number;
}

export class BfdEndpoint extends EventEmitter<BfdEndpointEvents> {
  private readonly log: Logger;
  private readonly byPeer = new Map<string, Entry>();
  private readonly byDiscr = new Map<number, Entry>();
  private readonly receivers: dgram.Socket[] = [];
  private readonly drops: Partial<Record<DropReason, number>> = {};
  private readonly guard: TtlGuard;
  private started = false;

  constructor(private readonly opts: BfdEndpointOptions) {
    super();
    this.log = opts.logger;
    this.guard = opts.ttlGuard ?? nftTtlGuard;
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.guard.install();
    const port = this.opts.port ?? BFD_PORT;
    for (const type of ['udp4', 'udp6'] as const) {
      const s = dgram.createSocket({ type, ipv6Only: type === 'udp6', reuseAddr: true });
      s.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address));
      s.on('error', (e) => this.log.warn('BFD socket error', { error: e.message }));
      try {
        await new Promise<void>((ok, fail) => {
          s.once('error', fail);
          s.bind(port, type === 'udp4' ? '0.0.0.0' : '::', () => {
            s.off('error', fail);
            ok();
          });
        });
        this.receivers.push(s);
      } catch (e) {
        s.close();
        // IPv6 may be off in this namespace; IPv4 must work
        if (type === 'udp4')
          throw new Error(`BFD: cannot listen on UDP ${port}: ${(e as Error).message}`);
      }
    }
    this.started = true;
  }

  async stop(): Promise<void> {
    for (const a of [...this.byPeer.keys()]) this.removePeer(a);
    for (const s of this.receivers.splice(0)) s.close();
    if (this.started) await this.guard.remove();
    this.started = false;
  }

  /** Starts (or re-times) the session with a directly connected neighbour. */
  async addPeer(
    address: string,
    opts: { localAddress?: string; timers?: BfdTimers } = {},
  ): Promise<void> {
    const timers = opts.timers ?? DEFAULT_TIMERS;
    const have = this.byPeer.get(address);
    if (have) {
      this.apply(have, { type: 'timers', timers });
      return;
    }
    let discr: number;
    do discr = randomInt(1, 0xffffffff);
    while (this.byDiscr.has(discr));
    const socket = await this.sender(address, opts.localAddress);
    const e: Entry = {
      address,
      localAddress: opts.localAddress,
      session: newSession(discr, timers, Date.now()),
      socket,
      since: new Date(),
      upTransitions: 0,
      received: 0,
      sent: 0,
    };
    this.byPeer.set(address, e);
    this.byDiscr.set(discr, e);
    this.apply(e, { type: 'tick' });
  }

  removePeer(address: string): void {
    const e = this.byPeer.get(address);
    if (!e) return;
    // tell the peer we are going (AdminDown), so it does not wait for a detection timeout
    this.apply(e, { type: 'admin', down: true });
    clearTimeout(e.timer);
    e.socket.close();
    this.byPeer.delete(address);
    this.byDiscr.delete(e.session.localDiscr);
  }

  state(address: string): BfdState | undefined {
    return this.byPeer.get(address)?.session.state;
  }

  async status(): Promise<BfdStatus> {
    const ttl = await this.guard.dropped().catch(() => 0);
    const dropped = { ...this.drops };
    if (ttl) dropped.ttl = ttl;
    return {
      sessions: [...this.byPeer.values()].map((e) => ({
        peer: e.address,
        localAddress: e.localAddress,
        state: BfdState[e.session.state] as keyof typeof BfdState,
        remoteState: BfdState[e.session.remoteState] as keyof typeof BfdState,
        diag: BfdDiag[e.session.localDiag],
        localDiscriminator: e.session.localDiscr,
        remoteDiscriminator: e.session.remoteDiscr,
        txIntervalMs: txIntervalMs(e.session),
        detectTimeMs: detectionTimeMs(e.session),
        timers: e.session.timers,
        since: e.since.toISOString(),
        upTransitions: e.upTransitions,
        received: e.received,
        sent: e.sent,
      })),
      dropped,
    };
  }

  /** A socket bound to a free source port in 49152-65535, sending with TTL 255. */
  private async sender(peer: string, localAddress?: string): Promise<dgram.Socket> {
    const type = isIPv6(peer) ? 'udp6' : 'udp4';
    for (let attempt = 0; attempt < 50; attempt++) {
      const s = dgram.createSocket(type);
      const port = randomInt(SOURCE_PORTS[0], SOURCE_PORTS[1] + 1);
      try {
        await new Promise<void>((ok, fail) => {
          s.once('error', fail);
          s.bind(port, localAddress ?? (type === 'udp4' ? '0.0.0.0' : '::'), () => {
            s.off('error', fail);
            ok();
          });
        });
        s.setTTL(255); // RFC 5881 §5: and the receiver requires it (GTSM)
        s.on('error', (e) => this.log.warn('BFD send error', { peer, error: e.message }));
        return s;
      } catch (e) {
        s.close();
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
    throw new Error(`BFD: no free source port in ${SOURCE_PORTS.join('-')} for ${peer}`);
  }

  private drop(reason: DropReason, from: string, detail: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
    this.log.debug('BFD packet dropped', { from, reason, detail });
  }

  private onMessage(msg: Buffer, fromRaw: string): void {
    const from = fromRaw.startsWith('::ffff:') ? fromRaw.slice(7) : fromRaw;
    const d = decodeBfd(msg);
    if (!d.ok) return this.drop(d.reason, from, d.detail);
    const p = d.packet;
    let e: Entry | undefined;
    if (p.yourDiscriminator !== 0) {
      e = this.byDiscr.get(p.yourDiscriminator);
      if (!e) return this.drop('your-discriminator', from, `no session ${p.yourDiscriminator}`);
      // single hop: a session's packets come from its neighbour's address only
      if (e.address !== from) return this.drop('source-address', from, `session of ${e.address}`);
    } else {
      e = this.byPeer.get(from);
      if (!e) return this.drop('unknown-peer', from, 'no session with this address');
    }
    e.received++;
    this.apply(e, { type: 'rx', packet: p });
  }

  private apply(e: Entry, ev: BfdEvent): void {
    const r = step(e.session, ev, Date.now());
    e.session = r.session;
    for (const o of r.out) {
      if (o.type === 'send') {
        e.sent++;
        e.socket.send(encodeBfd(o.packet), this.opts.port ?? BFD_PORT, e.address);
      } else {
        if (o.to === BfdState.Up) e.upTransitions++;
        e.since = new Date();
        this.log.info('BFD session state', {
          peer: e.address,
          from: BfdState[o.from],
          to: BfdState[o.to],
          diag: BfdDiag[o.diag],
        });
        this.emit('state', {
          peer: e.address,
          from: o.from,
          to: o.to,
          diag: o.diag,
          failure: o.failure,
        });
      }
    }
    clearTimeout(e.timer);
    e.timer = setTimeout(
      () => this.apply(e, { type: 'tick' }),
      Math.max(0, nextDeadline(e.session) - Date.now()),
    );
    e.timer.unref();
  }
}
