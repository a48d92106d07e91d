// The BGP speaker: a listener, the configured peers, and the RIBs between them. This
// is the public API the node agent uses (configure peers, originate/withdraw prefixes,
// subscribe to best-path changes, read session state and counters).
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { EventEmitter } from 'node:events';
import { BfdEndpoint, type BfdPeerStatus, type BfdStatus } from '@tortie/bfd';
import { encodeEndOfRib, encodeUpdates, isEndOfRib } from './codec';
import { CeaseSubcode } from './constants';
import {
  parseExportCommunities,
  peerBfdSchema,
  peerConfigSchema,
  type PeerBfdConfig,
  type PeerBfdConfigInput,
  type PeerConfigInput,
  type SpeakerConfig,
  type OriginateConfig,
} from './config';
import { parseLargeCommunity, parseStandardCommunity } from './community';
import { serveControl } from './control';
import { createLogger, type Logger } from './log';
import { prefixAfi, parsePrefix } from './prefix';
import {
  messagesPerMember,
  Rib,
  type BestPathChange,
  type ExportBatch,
  type ExportCommunityRule,
  type GroupUpdate,
  type PeerInfo,
  type Route,
} from './rib';
import {
  familiesToFlushOnReturn,
  familiesToRetain,
  resolveGracefulRestart,
  type DownCause,
  type GracefulRestartSettings,
} from './session/graceful-restart';
import type { Negotiated } from './session/open';
import { Peer } from './session/peer';
import { fdOf, sockopt, sockoptAvailable } from './session/sockopt';
import {
  AFI_IPV4,
  AFI_IPV6,
  Origin,
  type Afi,
  type CodecContext,
  type PathAttributes,
  type Prefix,
  type UpdateMessage,
} from './types';

export interface SpeakerOptions {
  logger?: Logger;
  /** IGP cost to a next hop, for the decision process (default: all equal). */
  igpCost?: (nextHop: string) => number;
}

export interface SpeakerEvents {
  /** Loc-RIB best paths changed (batched per received UPDATE or local change). */
  bestPath: [changes: BestPathChange[]];
  /** `key`: the peer's peerKey (its address, with the port when not 179). */
  peerState: [key: string, state: string];
  /** A peer sent End-of-RIB for a family: its initial table is complete. */
  endOfRib: [key: string, afi: Afi];
}

/** A Loc-RIB route as the API and the control socket show it. */
export interface RouteView {
  prefix: Prefix;
  nextHop?: string;
  asPath: string;
  origin: 'IGP' | 'EGP' | 'incomplete';
  localPref?: number;
  med?: number;
  communities?: string[];
  /** RFC 8092 large communities, "a:b:c". */
  largeCommunities?: string[];
  /** RFC 4456 reflection stamps, when the route was reflected. */
  originatorId?: string;
  clusterList?: string[];
  from: string;
  /** Kept from a restarting peer's previous session (graceful restart). */
  stale?: boolean;
  attributes: PathAttributes;
}

interface PeerEntry {
  peer: Peer;
  info: PeerInfo;
  maxPrefixes?: number;
  /** Graceful restart settings for this peer; unset: off. */
  gr?: GracefulRestartSettings;
  /** Families whose routes we hold stale for the peer (RFC 4724 helper). */
  stale: Set<Afi>;
  /** Restart timer while the peer is away, then the stale timer until its End-of-RIB. */
  staleTimer?: NodeJS.Timeout;
  /** The BFD session under this peer, when it has one. */
  bfd?: PeerBfdConfig;
  localAddress?: string;
  /** TCP-MD5 key, also set on the listener for the peer's address */
  password?: string;
}

const ORIGIN_NAMES = ['IGP', 'EGP', 'incomplete'] as const;

/**
 * A peer's key: its address, or "address:port" ("[v6]:port") when it does not listen on
 * 179, so two peers on one address (BGPPeers to one host on two ports) stay two peers.
 * The same text as Calico's BGPPeer peerIP.
 */
export function peerKey(address: string, port = 179): string {
  if (port === 179) return address;
  return net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

function normaliseAddress(a: string | undefined): string {
  if (!a) return '';
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

export function formatAsPath(attrs: PathAttributes): string {
  return attrs.asPath
    .map((s) => (s.type === 1 || s.type === 4 ? `{${s.asns.join(',')}}` : s.asns.join(' ')))
    .join(' ');
}

export function routeView(r: Route): RouteView {
  const a = r.attrs;
  return {
    prefix: r.prefix,
    nextHop: a.nextHop,
    asPath: formatAsPath(a),
    origin: ORIGIN_NAMES[a.origin] ?? 'incomplete',
    localPref: a.localPref,
    med: a.med,
    communities: a.communities?.map((c) => `${c >>> 16}:${c & 0xffff}`),
    largeCommunities: a.largeCommunities?.map((l) => l.join(':')),
    originatorId: a.originatorId,
    clusterList: a.clusterList ? [...a.clusterList] : undefined,
    from: r.peer ? r.peer.address : 'local',
    attributes: a,
  };
}

export class BgpSpeaker extends EventEmitter<SpeakerEvents> {
  readonly log: Logger;
  private readonly rib: Rib;
  /** By peerKey. */
  private readonly peers = new Map<string, PeerEntry>();
  private server?: net.Server;
  private control?: net.Server;
  private flushScheduled = false;
  /** The BFD endpoint, started with the first peer that has BFD. */
  private bfd?: Promise<BfdEndpoint>;
  private bfdEndpoint?: BfdEndpoint;

  constructor(
    readonly config: SpeakerConfig,
    opts: SpeakerOptions = {},
  ) {
    super();
    this.log = opts.logger ?? createLogger('bgp', config.logLevel);
    this.rib = new Rib({
      localAsn: config.asn,
      routerId: config.routerId,
      clusterId: config.clusterId,
      igpCost: opts.igpCost,
      exportCommunities: config.exportCommunities,
    });
  }

  /**
   * Replaces the communities every export adds after the peer's export filter (Calico's
   * prefixAdvertisements): sessions stay up, changed routes are announced again. Throws
   * a ConfigError naming a bad value.
   */
  setExportCommunities(rules: readonly ExportCommunityRule[]): void {
    if (this.rib.setExportCommunities(parseExportCommunities(rules))) this.scheduleFlush();
  }

  async start(): Promise<void> {
    // a BFD endpoint that cannot start (no nftables, port taken) fails the start, named
    if (this.config.peers.some((p) => p.bfd)) await this.bfdStarted();
    for (const p of this.config.peers) this.addPeer(p);
    for (const o of this.config.originate) this.originate(o.prefix, o);
    if (this.config.listen !== false)
      await this.listen(this.config.listen.address, this.config.listen.port);
  }

  /**
   * Stops every session and the listener. `graceful`: close the connections without a
   * NOTIFICATION, so peers that help with graceful restart keep our routes (and their
   * forwarding) until we are back; otherwise Cease / Administrative Shutdown.
   */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    for (const e of this.peers.values()) {
      clearTimeout(e.staleTimer);
      e.peer.stop({ silent: opts.graceful });
    }
    if (this.bfd) await (await this.bfd.catch(() => undefined))?.stop();
    await Promise.all(
      [this.server, this.control].map((s) =>
        s ? new Promise<void>((r) => s.close(() => r())) : undefined,
      ),
    );
  }

  /** The port actually listened on (useful with port 0). */
  get port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  /** Connections from `address` must be signed with `key` ("" : no key). */
  private listenerKey(address: string, key: string): void {
    if (key === '' && !sockoptAvailable()) return;
    const family = net.isIPv6((this.server!.address() as net.AddressInfo).address) ? 6 : 4;
    if (family === 4 && net.isIPv6(address)) return; // an IPv4 listener never sees that peer
    sockopt().setMd5(fdOf(this.server), family, address, key);
  }

  private listenerTtl255(): void {
    const family = net.isIPv6((this.server!.address() as net.AddressInfo).address) ? 6 : 4;
    sockopt().setTtl(fdOf(this.server), family, 255);
  }

  /** TCP connections currently open on our listener (a leak check for tests and metrics). */
  listenerConnections(): Promise<number> {
    const server = this.server;
    if (!server) return Promise.resolve(0);
    return new Promise((resolve, reject) =>
      server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
    );
  }

  private listen(address: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((socket) => this.onIncoming(socket));
      server.once('error', reject);
      server.listen({ host: address, port, ipv6Only: false }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error('listener error', { error: err.message }));
        this.server = server;
        if (this.config.peers.some((p) => p.ttlSecurity !== undefined)) this.listenerTtl255();
        for (const e of this.peers.values())
          if (e.password !== undefined) this.listenerKey(e.peer.address, e.password);
        this.log.info('listening', { address, port: this.port });
        resolve();
      });
    });
  }

  private onIncoming(socket: net.Socket): void {
    const from = normaliseAddress(socket.remoteAddress);
    // the peer on port 179 is the usual one; peers at this address on other ports only
    // when there is exactly one (the connection does not say which of them it is)
    const atAddress = [...this.peers.values()].filter((e) => e.peer.address === from);
    const entry = this.peers.get(from) ?? (atAddress.length === 1 ? atAddress[0] : undefined);
    if (!entry) {
      this.log.warn(
        atAddress.length
          ? 'connection refused: several peers at this address, none on port 179 (we connect to them)'
          : 'connection from unconfigured address refused',
        { from },
      );
      socket.destroy();
      return;
    }
    entry.peer.acceptIncoming(socket);
  }

  addPeer(input: PeerConfigInput): void {
    const cfg = peerConfigSchema.parse(input);
    const key = peerKey(cfg.address, cfg.port);
    if (this.peers.has(key)) throw new Error(`peer ${key} is already configured`);
    if (cfg.ttl !== undefined || cfg.ttlSecurity !== undefined || cfg.password !== undefined) {
      sockopt(); // fail now, with the reason, rather than at the first connection attempt
      // GTSM: our SYN-ACKs must leave with TTL 255 too, so the listener sends with it
      if (cfg.ttlSecurity !== undefined && this.server) this.listenerTtl255();
    }
    const families: Afi[] = (cfg.families ?? [net.isIPv4(cfg.address) ? 'ipv4' : 'ipv6']).map(
      (f) => (f === 'ipv4' ? AFI_IPV4 : AFI_IPV6),
    );
    const gr = resolveGracefulRestart(this.config.gracefulRestart, cfg.gracefulRestart);
    const localAsn = cfg.localAsn ?? this.config.asn;
    const peer = new Peer(
      {
        address: cfg.address,
        asn: cfg.asn,
        port: cfg.port,
        localAddress: cfg.localAddress,
        localPort: cfg.localPort,
        passive: cfg.passive,
        holdTime: cfg.holdTime,
        connectRetryTime: cfg.connectRetryTime,
        errorWaitTime: cfg.errorWaitTime,
        families,
        description: cfg.description,
        ttl: cfg.ttl,
        ttlSecurity: cfg.ttlSecurity,
        password: cfg.password,
        gracefulRestart: gr,
        enforceFirstAs: cfg.enforceFirstAs,
        keepaliveTime: cfg.keepaliveTime,
      },
      { asn: localAsn, routerId: this.config.routerId },
      this.log,
    );
    const info: PeerInfo = {
      id: key,
      address: cfg.address,
      asn: cfg.asn,
      routerId: '0.0.0.0',
      localAsn,
      localAddress: { ipv4: this.config.nextHop.ipv4, ipv6: this.config.nextHop.ipv6 },
      ibgp: cfg.asn === localAsn,
      rrClient: cfg.routeReflectorClient,
      nextHopSelf: cfg.nextHopSelf,
      nextHopKeep: cfg.nextHopKeep,
      sharedSubnet: cfg.sharedSubnet,
      allowOwnAs: cfg.allowOwnAs,
      importFilter: cfg.importFilter,
      exportFilter: cfg.exportFilter,
    };
    const entry: PeerEntry = {
      peer,
      info,
      maxPrefixes: cfg.maxPrefixes,
      gr,
      stale: new Set(),
      localAddress: cfg.localAddress,
      password: cfg.password,
    };
    this.peers.set(key, entry);
    if (cfg.password !== undefined && this.server) this.listenerKey(cfg.address, cfg.password);
    peer.on('stateChange', (_from, to) => this.emit('peerState', key, to));
    peer.on('established', () => this.onEstablished(entry));
    peer.on('down', (reason, cause, n) => this.onDown(entry, reason, cause, n));
    peer.on('update', (msg) => this.onUpdate(entry, msg));
    peer.on('routeRefresh', (afi) => this.sendFull(entry, afi));
    peer.start();
    if (cfg.bfd) this.setPeerBfd(key, cfg.bfd);
  }

  /**
   * Puts a BFD session under a configured peer, re-times it, or (undefined) takes it away,
   * without touching the BGP session.
   */
  setPeerBfd(key: string, bfd: PeerBfdConfigInput | undefined): void {
    const entry = this.peers.get(key);
    if (!entry) throw new Error(`peer ${key} is not configured`);
    entry.bfd = bfd && peerBfdSchema.parse(bfd);
    const address = entry.info.address;
    if (!entry.bfd) {
      this.releaseBfd(address);
      return;
    }
    const timers = {
      desiredMinTxMs: entry.bfd.minTxMs,
      requiredMinRxMs: entry.bfd.minRxMs,
      detectMult: entry.bfd.multiplier,
    };
    this.bfdStarted()
      .then((b) => b.addPeer(address, { localAddress: entry.localAddress, timers }))
      .catch((e: Error) => {
        entry.peer.lastError = `BFD: ${e.message}`;
        this.log.error('BFD session not started', { peer: key, error: e.message });
      });
  }

  private bfdStarted(): Promise<BfdEndpoint> {
    this.bfd ??= (async () => {
      const b = new BfdEndpoint({ logger: this.log.child({ component: 'bfd' }) });
      await b.start();
      b.on('state', (c) => {
        if (c.failure) this.onBfdFailure(c.peer);
      });
      this.bfdEndpoint = b;
      return b;
    })();
    return this.bfd;
  }

  /** Ends the BFD session with `address` unless another configured peer there still wants it. */
  private releaseBfd(address: string): void {
    if (![...this.peers.values()].some((e) => e.info.address === address && e.bfd))
      this.bfdEndpoint?.removePeer(address);
  }

  /** The path under an established session failed: tear it down now (BIRD's `bfd on`). */
  private onBfdFailure(address: string): void {
    for (const e of this.peers.values()) {
      if (e.info.address !== address || !e.peer.established) continue;
      this.log.warn('BFD session down: closing the BGP session', { peer: e.info.id });
      e.peer.cease(CeaseSubcode.BFD_DOWN, undefined, 'BFD session went down');
    }
  }

  /** BFD sessions and drop counters (empty when no peer has BFD). */
  async bfdStatus(): Promise<BfdStatus> {
    return this.bfd ? (await this.bfd).status() : { sessions: [], dropped: {} };
  }

  /** `key`: the peer's peerKey (its address when it is on port 179). */
  removePeer(key: string): void {
    const entry = this.peers.get(key);
    if (!entry) return;
    entry.peer.stop(); // emits 'down' when it was established, which withdraws its routes
    entry.peer.removeAllListeners();
    clearTimeout(entry.staleTimer);
    this.peers.delete(key);
    // the listener keeps a key while another peer at that address still has one
    if (entry.password !== undefined && this.server) {
      const other = [...this.peers.values()].find(
        (e) => e.peer.address === entry.peer.address && e.password !== undefined,
      );
      this.listenerKey(entry.peer.address, other?.password ?? '');
    }
    this.releaseBfd(entry.info.address);
    this.rib.removePeer(key);
  }

  /** Originates a prefix from this speaker (ORIGIN IGP, next hop = our address). */
  originate(prefix: string, opts: Partial<Omit<OriginateConfig, 'prefix'>> = {}): void {
    const p = parsePrefix(prefix);
    const attrs: PathAttributes = {
      origin: Origin.IGP,
      asPath: [],
      nextHop: prefixAfi(p) === AFI_IPV4 ? this.config.nextHop.ipv4 : this.config.nextHop.ipv6,
      communities: opts.communities?.length ? opts.communities : undefined,
      largeCommunities: opts.largeCommunities?.length ? opts.largeCommunities : undefined,
      med: opts.med,
      localPref: opts.localPref,
    };
    this.applyChanges(this.rib.originate(p, attrs));
  }

  withdraw(prefix: string): void {
    this.applyChanges(this.rib.withdrawOriginated(parsePrefix(prefix)));
  }

  /** Best routes of the Loc-RIB. */
  routes(): RouteView[] {
    return this.rib.bestRoutes().map((r) => {
      const v = routeView(r);
      if (this.rib.isStale(r)) v.stale = true;
      return v;
    });
  }

  routeCount(): number {
    return this.rib.bestCount();
  }

  peerStatus() {
    return [...this.peers.values()].map(({ peer, info }) => ({
      ...peer.status(),
      prefixesReceived: this.rib.receivedCount(info.id),
      staleRoutes: this.rib.staleCount(info.id),
    }));
  }

  /** peerStatus with each peer's BFD session (when it has one) and the drop counters. */
  private async peersWithBfd() {
    const bfd = await this.bfdStatus().catch(() => undefined);
    const byPeer = new Map<string, BfdPeerStatus>(bfd?.sessions.map((s) => [s.peer, s]));
    return this.peerStatus().map((p) => {
      const s = byPeer.get(p.address);
      return s ? { ...p, bfd: { ...s, dropped: bfd!.dropped } } : p;
    });
  }

  /** Serves the control socket (tortie-bgp peers/routes/originate/withdraw). */
  serveControl(path: string): Promise<void> {
    this.control = serveControl(path, (req) => {
      switch (req.cmd) {
        case 'peers':
          return this.peersWithBfd();
        case 'bfd':
          return this.bfdStatus();
        case 'routes':
          return this.routes().map(({ attributes: _a, ...r }) => r);
        case 'count':
          return { routes: this.routeCount() };
        case 'memory':
          (globalThis as { gc?: () => void }).gc?.();
          return process.memoryUsage();
        case 'originate':
          this.originate(String(req.prefix), {
            communities: ((req.communities as string[] | undefined) ?? []).map((c) =>
              parseStandardCommunity(c),
            ),
            largeCommunities: ((req.largeCommunities as string[] | undefined) ?? []).map((c) =>
              parseLargeCommunity(c),
            ),
            med: req.med as number | undefined,
          });
          return null;
        case 'withdraw':
          this.withdraw(String(req.prefix));
          return null;
        default:
          throw new Error(`unknown command "${req.cmd}"`);
      }
    });
    return new Promise((resolve, reject) => {
      this.control!.once('listening', () => resolve());
      this.control!.once('error', reject);
    });
  }

  private onEstablished(entry: PeerEntry): void {
    const n = entry.peer.negotiated!;
    entry.info.routerId = n.peerRouterId;
    // next-hop-self needs an address of ours per family: configured, else this session's
    const local = entry.peer.localEndpoint;
    entry.info.localEndpoint = local;
    entry.info.iface = local ? interfaceWith(local) : undefined;
    entry.info.localAddress = {
      ipv4: this.config.nextHop.ipv4 ?? (local && net.isIPv4(local) ? local : undefined),
      ipv6: this.config.nextHop.ipv6 ?? (local && net.isIPv6(local) ? local : undefined),
    };
    // peers that encode alike may share an update group (and its encoded UPDATEs)
    this.rib.addPeer(entry.info, {
      updateGroup: `as4=${n.as4} families=${[...n.families].sort().join(',')}`,
    });
    if (entry.stale.size) this.peerReturned(entry, n);
    for (const afi of n.families) this.sendFull(entry, afi);
  }

  private onDown(
    entry: PeerEntry,
    reason: string,
    cause: DownCause,
    n: Negotiated | undefined,
  ): void {
    const id = entry.info.id;
    const retain = familiesToRetain(entry.gr, n?.peerGracefulRestart, n?.families ?? [], cause);
    this.log.info('session down', { peer: id, reason, keptStale: retain.length > 0 });
    clearTimeout(entry.staleTimer);
    if (retain.length === 0) {
      entry.stale.clear();
      this.applyChanges(this.rib.removePeer(id));
      return;
    }
    // RFC 4724 §4.2: keep its routes (and forwarding) for at most its restart time
    entry.stale = new Set(retain);
    this.applyChanges(this.rib.peerDown(id, retain));
    const restartTime = n!.peerGracefulRestart!.restartTime;
    this.startStaleTimer(entry, restartTime, 'peer did not come back within its restart time');
  }

  /** A peer we hold stale routes for is back: flush what it cannot refresh, wait for the rest. */
  private peerReturned(entry: PeerEntry, n: Negotiated): void {
    const stale = [...entry.stale];
    const flush = familiesToFlushOnReturn(stale, entry.gr, n.peerGracefulRestart, n.families);
    for (const afi of flush) this.flushStale(entry, afi, 'forwarding state not preserved');
    if (entry.stale.size && entry.gr)
      this.startStaleTimer(entry, entry.gr.staleTime, 'no End-of-RIB within the stale time');
  }

  private startStaleTimer(entry: PeerEntry, seconds: number, why: string): void {
    clearTimeout(entry.staleTimer);
    entry.staleTimer = setTimeout(() => {
      entry.staleTimer = undefined;
      for (const afi of [...entry.stale]) this.flushStale(entry, afi, why);
    }, seconds * 1000);
    entry.staleTimer.unref();
  }

  /** Withdraws the peer's still-stale routes of a family. */
  private flushStale(entry: PeerEntry, afi: Afi, why: string): void {
    if (!entry.stale.delete(afi)) return;
    if (entry.stale.size === 0) clearTimeout(entry.staleTimer);
    const changes = this.rib.flushStale(entry.info.id, afi);
    this.log.info('stale routes flushed', {
      peer: entry.info.id,
      afi,
      changes: changes.length,
      why,
    });
    this.applyChanges(changes);
  }

  private onUpdate(entry: PeerEntry, msg: UpdateMessage): void {
    const eor = isEndOfRib(msg);
    if (eor !== undefined) {
      this.flushStale(entry, eor, 'End-of-RIB');
      this.emit('endOfRib', entry.info.id, eor);
      return;
    }
    const id = entry.info.id;
    if (msg.discarded?.length && !msg.treatAsWithdraw)
      this.log.warn('attributes discarded', {
        peer: id,
        attributes: msg.discarded,
        update: msg.raw?.toString('hex'),
      });
    if (msg.ignored?.length)
      this.log.warn('multicast prefixes ignored', { peer: id, prefixes: msg.ignored });
    const withdrawn = msg.mpUnreach
      ? [...msg.withdrawn, ...msg.mpUnreach.withdrawn]
      : msg.withdrawn;
    let changes: BestPathChange[] = [];
    if (msg.treatAsWithdraw) {
      const gone = [...msg.nlri, ...(msg.mpReach?.nlri ?? [])];
      // RFC 7606 §6: the NLRI involved and the whole UPDATE
      this.log.warn('UPDATE treated as withdraw', {
        peer: id,
        reason: msg.treatAsWithdraw,
        discarded: msg.discarded,
        nlri: gone,
        update: msg.raw?.toString('hex'),
      });
      changes = this.rib.applyUpdate(id, [...withdrawn, ...gone], null, []);
    } else {
      if (withdrawn.length || msg.nlri.length)
        changes = this.rib.applyUpdate(id, withdrawn, msg.attributes, msg.nlri);
      if (msg.mpReach && msg.attributes) {
        // MP routes carry their next hop in MP_REACH_NLRI, not in NEXT_HOP.
        const attrs = {
          ...msg.attributes,
          nextHop: msg.mpReach.nextHop,
          nextHopLinkLocal: msg.mpReach.nextHopLinkLocal,
        };
        changes = changes.concat(this.rib.applyUpdate(id, [], attrs, msg.mpReach.nlri));
      }
    }
    this.applyChanges(changes);
    const received = this.rib.receivedCount(id);
    if (entry.maxPrefixes !== undefined && received > entry.maxPrefixes) {
      // RFC 4486: Cease / Maximum Number of Prefixes Reached, data = AFI, SAFI, limit.
      const data = Buffer.alloc(7);
      data.writeUInt16BE(AFI_IPV4, 0);
      data.writeUInt8(1, 2);
      data.writeUInt32BE(entry.maxPrefixes, 3);
      entry.peer.cease(
        CeaseSubcode.MAX_PREFIXES,
        data,
        `received ${received} prefixes, limit ${entry.maxPrefixes}`,
      );
    }
  }

  private applyChanges(changes: BestPathChange[]): void {
    if (changes.length === 0) return;
    this.emit('bestPath', changes);
    this.scheduleFlush();
  }

  /** Coalesces best-path changes so each peer gets them packed into few UPDATEs. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const update of this.rib.takeUpdates()) this.sendToGroup(update);
    });
  }

  /** Encodes each part of a group's delta once and sends the same bytes to its members. */
  private sendToGroup({ members, parts }: GroupUpdate): void {
    const entries = members
      .map((id) => this.peers.get(id))
      .filter((e): e is PeerEntry => e?.peer.state === 'Established');
    if (entries.length === 0) return;
    const ids = entries.map((e) => e.info.id);
    const queues = messagesPerMember(ids, parts, (part) =>
      encodeAnnouncement(part.attrs, part.prefixes, entries[0].peer),
    );
    for (const e of entries) {
      const msgs = queues.get(e.info.id)!;
      if (msgs.length) e.peer.sendUpdates(msgs);
    }
  }

  private sendFull(entry: PeerEntry, afi: Afi): void {
    const out = this.rib.fullExport(entry.info.id, afi);
    this.send(entry, out);
    entry.peer.sendUpdates([encodeEndOfRib(afi, entry.peer.codecContext)]);
  }

  private send(entry: PeerEntry, out: ExportBatch): void {
    const msgs = encodeAnnouncement(undefined, out.withdrawn, entry.peer);
    for (const group of out.announce)
      msgs.push(...encodeAnnouncement(group.attrs, group.prefixes, entry.peer));
    if (msgs.length) entry.peer.sendUpdates(msgs);
  }
}

/**
 * UPDATEs announcing `prefixes` with `attrs` (withdrawing them when undefined), of the
 * families negotiated with `peer` only, encoded for its session.
 */
function encodeAnnouncement(
  attrs: PathAttributes | undefined,
  prefixes: Prefix[],
  peer: Peer,
): Buffer[] {
  const families = peer.negotiated?.families ?? [];
  const ctx: CodecContext = peer.codecContext;
  const nlri = prefixes.filter((p) => families.includes(prefixAfi(p)));
  if (nlri.length === 0) return [];
  return attrs
    ? encodeUpdates({ attributes: attrs, nlri }, ctx)
    : encodeUpdates({ withdrawn: nlri }, ctx);
}

/** The interface that has `address` (a session's local end): filters' `interface` match. */
function interfaceWith(address: string): string | undefined {
  const bare = address.startsWith('::ffff:') ? address.slice(7) : address;
  for (const [name, addrs] of Object.entries(networkInterfaces()))
    if (addrs?.some((a) => a.address === bare || a.address === address)) return name;
  return undefined;
}
