// rtnetlink for tortie's dataplane: one socket per network namespace, requests sent in
// batches (one sendmsg per up to 256 requests, answers read off the main thread), and
// a narrow interface: routes, veth links, link settings, addresses, neighbours. Every
// refusal is a NetlinkError naming the request as `ip` would write it and the errno.
import fs from 'node:fs';
import { loadAddon, type ExchangeResult, type RtnlAddon } from './addon';
import * as c from './codec';
import { NetlinkError } from './errors';

export interface RouteSpec {
  dst: string;
  type?: 'blackhole';
  via?: string;
  dev?: string;
  onlink?: boolean;
  scopeLink?: boolean;
  protocol: number;
  /** Default: main (254). */
  table?: number;
  /**
   * `metric N` (RTA_PRIORITY). The kernel keys routes by it too: a replace with another
   * metric adds a route beside the old one. Unset: 0 (IPv4), 1024 (IPv6).
   */
  metric?: number;
}

/** A neighbour (ARP/NDP) entry or a VXLAN FDB entry (`bridge fdb ... self`) to write or remove. */
export type NeighOp =
  | { kind: 'neigh'; op: 'replace'; ip: string; mac: string }
  | { kind: 'neigh'; op: 'del'; ip: string }
  | { kind: 'fdb'; op: 'replace'; mac: string; dst: string }
  | { kind: 'fdb'; op: 'del'; mac: string };

/** `ip neigh`/`bridge fdb` words for a change (for errors). */
export function neighText(o: NeighOp, dev: string): string {
  if (o.kind === 'neigh')
    return o.op === 'replace'
      ? `neigh replace ${o.ip} lladdr ${o.mac} dev ${dev} nud permanent`
      : `neigh del ${o.ip} dev ${dev}`;
  return o.op === 'replace'
    ? `fdb replace ${o.mac} dev ${dev} dst ${o.dst} self permanent`
    : `fdb del ${o.mac} dev ${dev} self`;
}

export type RouteOp =
  | { op: 'replace' | 'add'; route: RouteSpec }
  | {
      op: 'del';
      dst: string;
      protocol: number;
      table?: number;
      type?: 'blackhole';
      /** Only the route of this metric (without: the first the kernel finds). */
      metric?: number;
    };

/** `ip route` words for a route (for errors and logs). */
export function routeText(r: RouteSpec): string {
  const p = [r.type === 'blackhole' ? `blackhole ${r.dst}` : r.dst];
  if (r.via) p.push(`via ${r.via}`);
  if (r.dev) p.push(`dev ${r.dev}`);
  if (r.onlink) p.push('onlink');
  if (r.scopeLink) p.push('scope link');
  p.push(`proto ${r.protocol}`);
  if (r.table !== undefined && r.table !== c.RT_TABLE_MAIN) p.push(`table ${r.table}`);
  if (r.metric !== undefined) p.push(`metric ${r.metric}`);
  return p.join(' ');
}

const opText = (o: RouteOp): string =>
  o.op === 'del'
    ? `route del ${o.type === 'blackhole' ? 'blackhole ' : ''}${o.dst} proto ${o.protocol}${o.metric !== undefined ? ` metric ${o.metric}` : ''}`
    : `route ${o.op} ${routeText(o.route)}`;

/** Batches up to this size (without a dump) may run on the calling thread. */
const SYNC_MAX = 64;

function answer(
  r: ExchangeResult,
  first: number,
  count: number,
  name: (i: number) => string,
): Answer {
  const errors: Array<NetlinkError | undefined> = new Array(count);
  for (let i = 0; i < count; i++)
    if (r.errors[i]) errors[i] = new NetlinkError(name(i), r.errors[i], r.messages[i]);
  const replies = new Map<number, c.Message[]>();
  if (r.replies.length) {
    for (const m of c.messages(r.replies)) {
      const i = m.seq - first;
      if (i < 0 || i >= count) continue;
      if (!replies.has(i)) replies.set(i, []);
      replies.get(i)!.push(m);
    }
  }
  return { errors, replies };
}

export interface Answer {
  /** Per request: undefined (done) or why the kernel refused it. */
  errors: Array<NetlinkError | undefined>;
  /** Data messages the kernel answered with, by request index. */
  replies: Map<number, c.Message[]>;
}

/** Whether netlink can be used here, and if not why (for the startup log line). */
export function netlinkAvailability(): { available: true } | { available: false; reason: string } {
  const a = loadAddon();
  return a.addon ? { available: true } : { available: false, reason: a.reason! };
}

/** A network namespace by name (/var/run/netns/<name>) or path (/proc/<pid>/ns/net). */
export const netnsPath = (netns: string): string =>
  netns.includes('/') ? netns : `/var/run/netns/${netns}`;

/**
 * A netlink socket of `protocol` (0: NETLINK_ROUTE) in this namespace or in `netns`
 * (name or path), with where it lives for error messages. Throws, naming the namespace,
 * when the addon, the namespace or the socket cannot be had.
 */
export function openNetlinkSocket(
  netns: string | undefined,
  protocol: number,
  what: string,
): { addon: RtnlAddon; fd: number; where: string } {
  const a = loadAddon();
  if (!a.addon) throw new Error(`netlink unavailable: ${a.reason}`);
  const addon = a.addon;
  if (netns === undefined) return { addon, fd: addon.open(-1, protocol), where: 'this namespace' };
  const p = netnsPath(netns);
  let nsFd: number;
  try {
    nsFd = fs.openSync(p, 'r');
  } catch (e) {
    throw new Error(`netlink: cannot open network namespace ${p}: ${(e as Error).message}`);
  }
  try {
    return { addon, fd: addon.open(nsFd, protocol), where: p };
  } catch (e) {
    throw new Error(`${what} in ${p}: ${(e as Error).message}`);
  } finally {
    fs.closeSync(nsFd);
  }
}

export class Rtnl {
  private seq = 1;
  private queue: Promise<unknown> = Promise.resolve();
  /** Exchanges queued or in flight off the main thread. */
  private busy = 0;
  private closed = false;

  private constructor(
    private readonly addon: RtnlAddon,
    private readonly fd: number,
    /** Where this socket lives (for error messages). */
    readonly where: string,
    /** Its namespace as given to open (undefined: this one), e.g. for writeSysctls. */
    readonly netns?: string,
  ) {}

  /** A socket in this namespace, or in `netns` (name or path). Throws when netlink is unavailable. */
  static open(netns?: string): Rtnl {
    const { addon, fd, where } = openNetlinkSocket(netns, 0, 'netlink socket');
    return new Rtnl(addon, fd, where, netns);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // after the requests in flight
    void this.queue.finally(() => this.addon.close(this.fd));
  }

  /** Sends requests in order, one batch; `ops` names each for errors. */
  request(reqs: c.Request[], ops: string[]): Promise<Answer> {
    const dump = reqs.some((r) => (r.flags & c.NLM_F_DUMP) === c.NLM_F_DUMP && (r.type & 3) === 2);
    return this.send(
      (first) => ({ buf: c.frame(reqs, first), count: reqs.length }),
      (i) => ops[i],
      !dump && reqs.length <= SYNC_MAX,
    );
  }

  /**
   * One batch framed by `build` from the first sequence number; `name(i)` for errors.
   * A small batch on an idle socket is exchanged on this thread (the kernel answers
   * within the send: microseconds, less than a thread-pool hop); others off it, in order.
   */
  private send(
    build: (firstSeq: number) => { buf: Buffer; count: number },
    name: (i: number) => string,
    small = false,
  ): Promise<Answer> {
    if (this.closed) return Promise.reject(new Error(`netlink socket in ${this.where} is closed`));
    const frame = () => {
      // sequence numbers never wrap inside a batch
      if (this.seq > 0x7fff0000) this.seq = 1;
      const first = this.seq;
      const f = build(first);
      this.seq += f.count;
      return { first, ...f };
    };
    if (small && this.busy === 0) {
      try {
        const { first, buf, count } = frame();
        if (count === 0) return Promise.resolve({ errors: [], replies: new Map() });
        return Promise.resolve(answer(this.addon.exchangeSync(this.fd, buf), first, count, name));
      } catch (e) {
        return Promise.reject(e as Error);
      }
    }
    const run = async (): Promise<Answer> => {
      const { first, buf, count } = frame();
      if (count === 0) return { errors: [], replies: new Map() };
      return answer(await this.addon.exchange(this.fd, buf), first, count, name);
    };
    this.busy++;
    const p = this.queue.then(run, run).finally(() => this.busy--);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Like request, but the first refusal is thrown. */
  async must(reqs: c.Request[], ops: string[]): Promise<Answer> {
    const a = await this.request(reqs, ops);
    const bad = a.errors.find((e) => e);
    if (bad) throw bad;
    return a;
  }

  // ---- links ----

  /** Interface indexes by name; names that do not exist are absent. */
  async linkIndexes(names: Iterable<string>): Promise<Map<string, number>> {
    const list = [...new Set(names)];
    const a = await this.request(
      list.map((n) => c.getLink(n)),
      list.map((n) => `link show ${n}`),
    );
    const out = new Map<string, number>();
    list.forEach((n, i) => {
      const m = a.replies.get(i)?.[0];
      if (m) out.set(n, c.parseLink(m).index);
    });
    return out;
  }

  async linkNames(indexes: Iterable<number>): Promise<Map<number, string>> {
    const list = [...new Set(indexes)];
    const a = await this.request(
      list.map((n) => c.getLink(n)),
      list.map((n) => `link show index ${n}`),
    );
    const out = new Map<number, string>();
    list.forEach((n, i) => {
      const m = a.replies.get(i)?.[0];
      if (m) out.set(n, c.parseLink(m).name);
    });
    return out;
  }

  /** One link (by name or index, with its kind and VXLAN settings), or undefined when there is none. */
  async link(name: string | number): Promise<c.ParsedLink | undefined> {
    const a = await this.request(
      [c.getLink(name)],
      [typeof name === 'number' ? `link show index ${name}` : `link show ${name}`],
    );
    const m = a.replies.get(0)?.[0];
    if (m) return c.parseLink(m);
    if (a.errors[0] && a.errors[0].code !== 'ENODEV') throw a.errors[0];
    return undefined;
  }

  /** A veth pair, the peer created directly in its namespace (`netns`: name or path). */
  async addVeth(
    v: Omit<c.VethSpec, 'peer'> & {
      peer: Omit<c.VethSpec['peer'], 'netnsFd'> & { netns?: string };
    },
  ): Promise<void> {
    const fd = v.peer.netns !== undefined ? fs.openSync(netnsPath(v.peer.netns), 'r') : undefined;
    try {
      await this.must(
        [c.newVeth({ ...v, peer: { ...v.peer, netnsFd: fd } })],
        [
          `link add ${v.name} type veth peer name ${v.peer.name}${v.peer.netns ? ` netns ${v.peer.netns}` : ''}`,
        ],
      );
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  setLinkUp(name: string, up = true): Promise<Answer> {
    return this.must([c.setLinkUp(name, up)], [`link set ${name} ${up ? 'up' : 'down'}`]);
  }

  setLink(name: string, s: { mac?: string; mtu?: number; up?: boolean }): Promise<Answer> {
    const words = [
      s.mac ? `address ${s.mac}` : '',
      s.mtu ? `mtu ${s.mtu}` : '',
      s.up === undefined ? '' : s.up ? 'up' : 'down',
    ].filter(Boolean);
    return this.must([c.setLink(name, s)], [`link set ${name} ${words.join(' ')}`]);
  }

  /** A VXLAN device (`ip link add ... type vxlan id .. dstport .. local .. [no]learning`). */
  async addVxlan(v: c.VxlanSpec): Promise<void> {
    const words = `link add ${v.name} type vxlan id ${v.vni} dstport ${v.port} local ${v.local}${v.learning ? '' : ' nolearning'}`;
    let req: c.Request;
    try {
      req = c.newVxlan(v);
    } catch (e) {
      throw new NetlinkError(words, 22 /* EINVAL */, (e as Error).message);
    }
    await this.must([req], [words]);
  }

  /** `ip link add name <name> type ipip` (EEXIST when it is there, e.g. made by the module). */
  async addIpip(name: string, mtu?: number): Promise<void> {
    await this.must([c.newIpip(name, mtu)], [`link add name ${name} type ipip`]);
  }

  async moveLink(name: string, netns: string): Promise<void> {
    const fd = fs.openSync(netnsPath(netns), 'r');
    try {
      await this.must([c.setLinkNetns(name, fd)], [`link set ${name} netns ${netns}`]);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Removes a link; false when there was none by that name. */
  async delLink(name: string): Promise<boolean> {
    // removing a link waits in the kernel for its users to go (milliseconds): off this thread
    const a = await this.send(
      (first) => ({ buf: c.frame([c.delLink(name)], first), count: 1 }),
      () => `link del ${name}`,
    );
    const e = a.errors[0];
    if (e?.code === 'ENODEV') return false;
    if (e) throw e;
    return true;
  }

  // ---- addresses and neighbours ----

  async addAddr(
    cidr: string,
    dev: string | number,
    o: { nodad?: boolean; replace?: boolean } = {},
  ): Promise<void> {
    const index = await this.indexOf(dev);
    await this.must(
      [c.newAddr(cidr, index, o)],
      [`addr ${o.replace ? 'replace' : 'add'} ${cidr} dev ${dev}${o.nodad ? ' nodad' : ''}`],
    );
  }

  /** Removes an address; false when the interface does not have it. */
  async delAddr(cidr: string, dev: string | number): Promise<boolean> {
    const index = await this.indexOf(dev);
    const a = await this.request([c.delAddr(cidr, index)], [`addr del ${cidr} dev ${dev}`]);
    const e = a.errors[0];
    if (e?.code === 'EADDRNOTAVAIL') return false;
    if (e) throw e;
    return true;
  }

  /** Every address (v4 and v6) with its interface index, as `ip addr show`. */
  async listAddrs(family?: 4 | 6): Promise<c.ParsedAddr[]> {
    const out: c.ParsedAddr[] = [];
    for (const fam of family ? [family] : ([4, 6] as const)) {
      const a = await this.must(
        [c.dumpAddrs(fam === 4 ? c.AF_INET : c.AF_INET6)],
        [`addr show${fam === 6 ? ' -6' : ''}`],
      );
      for (const m of a.replies.get(0) ?? [])
        if (m.type === c.RTM_NEWADDR) out.push(c.parseAddr(m));
    }
    return out;
  }

  /**
   * Neighbour and VXLAN FDB changes on one device in one batch, in order; a refused one
   * does not stop the others (as `ip -force -batch`). Per change: undefined or the refusal.
   */
  async applyNeighs(dev: string, ops: NeighOp[]): Promise<Array<NetlinkError | undefined>> {
    if (!ops.length) return [];
    const index = await this.indexOf(dev);
    const out: Array<NetlinkError | undefined> = new Array(ops.length).fill(undefined);
    const reqs: c.Request[] = [];
    const names: string[] = [];
    const at: number[] = [];
    ops.forEach((o, i) => {
      const name = neighText(o, dev);
      try {
        reqs.push(
          o.kind === 'neigh'
            ? o.op === 'replace'
              ? c.replaceNeigh(o.ip, o.mac, index)
              : c.delNeigh(o.ip, index)
            : o.op === 'replace'
              ? c.replaceFdb(o.mac, o.dst, index)
              : c.delFdb(o.mac, index),
        );
        names.push(name);
        at.push(i);
      } catch (e) {
        out[i] = new NetlinkError(name, 22 /* EINVAL */, (e as Error).message);
      }
    });
    const a = await this.request(reqs, names);
    a.errors.forEach((e, j) => {
      if (e) out[at[j]] = e;
    });
    return out;
  }

  async replaceNeigh(ip: string, mac: string, dev: string | number): Promise<void> {
    const index = await this.indexOf(dev);
    await this.must(
      [c.replaceNeigh(ip, mac, index)],
      [`neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`],
    );
  }

  async indexOf(dev: string | number): Promise<number> {
    if (typeof dev === 'number') return dev;
    const i = (await this.linkIndexes([dev])).get(dev);
    if (i === undefined)
      throw new NetlinkError(`link show ${dev}`, 19 /* ENODEV */, 'no such interface');
    return i;
  }

  // ---- routes ----

  /** Routes of a table (main by default), optionally of one protocol and family, as `ip route show`. */
  async listRoutes(
    f: { protocol?: number; table?: number; family?: 4 | 6 } = {},
  ): Promise<RouteSpec[]> {
    const table = f.table ?? c.RT_TABLE_MAIN;
    const families = f.family ? [f.family] : ([4, 6] as const);
    const parsed: c.ParsedRoute[] = [];
    for (const fam of families) {
      const a = await this.must(
        [c.dumpRoutes(fam === 4 ? c.AF_INET : c.AF_INET6)],
        [`route show${fam === 6 ? ' -6' : ''}`],
      );
      for (const m of a.replies.get(0) ?? []) {
        if (m.type !== c.RTM_NEWROUTE) continue;
        const r = c.parseRoute(m);
        if (r.table !== table || (f.protocol !== undefined && r.protocol !== f.protocol)) continue;
        parsed.push(r);
      }
    }
    const oifs = parsed.flatMap((r) => (r.oif !== undefined ? [r.oif] : []));
    const names = oifs.length ? await this.linkNames(oifs) : new Map<number, string>();
    return parsed.map((r) => {
      const out: RouteSpec = { dst: r.dst, protocol: r.protocol };
      if (r.type === c.RTN_BLACKHOLE) out.type = 'blackhole';
      if (r.via) out.via = r.via;
      if (r.oif !== undefined && r.type !== c.RTN_BLACKHOLE)
        out.dev = names.get(r.oif) ?? `if${r.oif}`;
      if (r.onlink) out.onlink = true;
      if (r.scope === c.RT_SCOPE_LINK) out.scopeLink = true;
      if (table !== c.RT_TABLE_MAIN) out.table = table;
      if (r.metric !== undefined) out.metric = r.metric;
      return out;
    });
  }

  /**
   * Route changes in one batch, in order; a refused one does not stop the others (as
   * `ip -force -batch`). Returns per change undefined or why it was refused (a device
   * that does not exist is ENODEV, named).
   */
  async applyRoutes(ops: RouteOp[]): Promise<Array<NetlinkError | undefined>> {
    const devs = new Set<string>();
    for (const o of ops) if (o.op !== 'del' && o.route.dev) devs.add(o.route.dev);
    const index = devs.size ? await this.linkIndexes(devs) : new Map<string, number>();
    const out: Array<NetlinkError | undefined> = new Array(ops.length).fill(undefined);
    const changes: c.RouteChange[] = [];
    const at: number[] = [];
    ops.forEach((o, i) => {
      if (o.op === 'del') {
        changes.push({
          del: true,
          dst: o.dst,
          protocol: o.protocol,
          table: o.table,
          metric: o.metric,
        });
        at.push(i);
        return;
      }
      const r = o.route;
      const oif = r.dev !== undefined ? index.get(r.dev) : undefined;
      if (r.dev !== undefined && oif === undefined) {
        out[i] = new NetlinkError(opText(o), 19 /* ENODEV */, `no interface ${r.dev}`);
        return;
      }
      changes.push({
        del: false,
        exclusive: o.op === 'add',
        route: {
          dst: r.dst,
          type: r.type,
          via: r.via,
          oif,
          onlink: r.onlink,
          scope: r.scopeLink ? 'link' : undefined,
          protocol: r.protocol,
          table: r.table,
          metric: r.metric,
        },
      });
      at.push(i);
    });
    let sent: number[] = [];
    const a = await this.send(
      (first) => {
        const f = c.frameRouteChanges(changes, first);
        for (const [k, why] of f.bad)
          out[at[k]] = new NetlinkError(opText(ops[at[k]]), 22 /* EINVAL */, why);
        sent = f.index.map((k) => at[k]);
        return { buf: f.buf, count: f.index.length };
      },
      (j) => opText(ops[sent[j]]),
      changes.length <= SYNC_MAX,
    );
    a.errors.forEach((e, j) => {
      if (e) out[sent[j]] = e;
    });
    return out;
  }

  async replaceRoute(r: RouteSpec): Promise<void> {
    const [e] = await this.applyRoutes([{ op: 'replace', route: r }]);
    if (e) throw e;
  }

  async addRoute(r: RouteSpec): Promise<void> {
    const [e] = await this.applyRoutes([{ op: 'add', route: r }]);
    if (e) throw e;
  }

  /** Removes a route of that destination and protocol (and metric); false when there was none. */
  async delRoute(dst: string, protocol: number, table?: number, metric?: number): Promise<boolean> {
    const [e] = await this.applyRoutes([{ op: 'del', dst, protocol, table, metric }]);
    if (e?.code === 'ESRCH') return false;
    if (e) throw e;
    return true;
  }
}
