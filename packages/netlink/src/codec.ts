// rtnetlink messages as bytes (pure): builders for the requests tortie sends and parsers
// for the answers it reads. Layouts from linux/rtnetlink.h, if_link.h, if_addr.h,
// neighbour.h; every multi-byte field is in host order (little-endian on the machines
// tortie runs on, checked once at load).
import { formatIp, parseIp } from '@tortie/netaddr';
import { endianness } from 'node:os';

if (endianness() !== 'LE')
  throw new Error('@tortie/netlink: only little-endian hosts are supported');

export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_DUMP = 0x300;

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_BRIDGE = 7;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_AF_SPEC = 26;
const IFLA_NET_NS_FD = 28;
const IFLA_EXT_MASK = 29;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFLA_VXLAN_ID = 1;
const IFLA_VXLAN_LOCAL = 4;
const IFLA_VXLAN_LEARNING = 7;
const IFLA_VXLAN_PORT = 15;
const IFLA_INET6_ADDR_GEN_MODE = 8;
const IN6_ADDR_GEN_MODE_NONE = 1;
const RTEXT_FILTER_SKIP_STATS = 1 << 3;
const IFF_UP = 0x1;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_FLAGS = 8;
export const IFA_F_NODAD = 0x02;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_TABLE = 15;
export const RT_TABLE_MAIN = 254;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
export const RTN_UNICAST = 1;
export const RTN_BLACKHOLE = 6;
export const RTNH_F_ONLINK = 4;

const NDA_DST = 1;
const NDA_LLADDR = 2;
export const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;

/** One attribute: type and payload (nested attributes are payloads built with attrs()). */
export type Attr = [type: number, payload: Buffer];

const align4 = (n: number) => (n + 3) & ~3;

export function attrs(list: Attr[]): Buffer {
  const size = list.reduce((n, [, p]) => n + align4(4 + p.length), 0);
  const b = Buffer.alloc(size);
  let off = 0;
  for (const [type, p] of list) {
    b.writeUInt16LE(4 + p.length, off);
    b.writeUInt16LE(type, off + 2);
    p.copy(b, off + 4);
    off += align4(4 + p.length);
  }
  return b;
}

export const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};
export const u8 = (v: number): Buffer => Buffer.from([v]);
export const str = (s: string): Buffer => Buffer.from(s + '\0');

/** A request: header fields, fixed struct and attributes; seq is set by the socket. */
export interface Request {
  type: number;
  flags: number;
  body: Buffer;
}

/** Concatenates requests with sequence numbers from `firstSeq` (one buffer, one sendmsg per chunk). */
export function frame(reqs: Request[], firstSeq: number): Buffer {
  const size = reqs.reduce((n, r) => n + align4(16 + r.body.length), 0);
  const b = Buffer.alloc(size);
  let off = 0;
  reqs.forEach((r, i) => {
    b.writeUInt32LE(16 + r.body.length, off);
    b.writeUInt16LE(r.type, off + 4);
    b.writeUInt16LE(r.flags | NLM_F_REQUEST, off + 6);
    b.writeUInt32LE((firstSeq + i) >>> 0, off + 8);
    r.body.copy(b, off + 16);
    off += align4(16 + r.body.length);
  });
  return b;
}

export interface Message {
  type: number;
  flags: number;
  seq: number;
  /** The payload after the 16-byte header. */
  data: Buffer;
}

export function* messages(buf: Buffer): Generator<Message> {
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) return;
    yield {
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      data: buf.subarray(off + 16, off + len),
    };
    off += align4(len);
  }
}

/** Attributes of a payload from `start` on, by type (the first of each type). */
export function parseAttrs(data: Buffer, start: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = start;
  while (off + 4 <= data.length) {
    const len = data.readUInt16LE(off);
    const type = data.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > data.length) break;
    if (!out.has(type)) out.set(type, data.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

// ---- addresses ----

export function ipBytes(ip: string): { family: number; bytes: Buffer } {
  const dot = ip.indexOf('.');
  if (dot > 0 && !ip.includes(':')) {
    const p = ip.split('.');
    const n = p.map(Number);
    if (p.length !== 4 || n.some((x, i) => !(x >= 0 && x <= 255) || !/^\d+$/.test(p[i])))
      throw new Error(`"${ip}" is not an IP address`);
    return { family: AF_INET, bytes: Buffer.from(n) };
  }
  const { version, value } = parseIp(ip);
  if (version !== 6) throw new Error(`"${ip}" is not an IP address`);
  const b = Buffer.alloc(16);
  for (let i = 15, v = value; i >= 0; i--, v >>= 8n) b[i] = Number(v & 0xffn);
  return { family: AF_INET6, bytes: b };
}

export function ipText(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  let v = 0n;
  for (const x of bytes) v = (v << 8n) | BigInt(x);
  return formatIp(6, v);
}

export function cidrBytes(cidr: string): { family: number; bytes: Buffer; len: number } {
  const [ip, lenText] = cidr.split('/');
  const a = ipBytes(ip);
  const max = a.family === AF_INET ? 32 : 128;
  const len = lenText === undefined ? max : Number(lenText);
  if (!Number.isInteger(len) || len < 0 || len > max) throw new Error(`"${cidr}" is not a CIDR`);
  return { ...a, len };
}

export function macBytes(mac: string): Buffer {
  const p = mac.split(':');
  if (p.length !== 6 || p.some((x) => !/^[0-9a-fA-F]{1,2}$/.test(x)))
    throw new Error(`"${mac}" is not a MAC address`);
  return Buffer.from(p.map((x) => parseInt(x, 16)));
}

export const macText = (b: Buffer): string =>
  [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

// ---- routes ----

export interface Route {
  /** "10.0.0.0/26", "::/0" */
  dst: string;
  type?: 'blackhole';
  via?: string;
  /** Output interface by index (resolve names first). */
  oif?: number;
  onlink?: boolean;
  /** Default: link for a device route without a gateway (as `ip route`), else universe. */
  scope?: 'link' | 'universe';
  protocol: number;
  table?: number;
  /**
   * RTA_PRIORITY, `ip route ... metric N`. Part of a route's identity: a replace with
   * another metric adds a second route. Unset: 0 for IPv4, the kernel's 1024 for IPv6.
   */
  metric?: number;
}

/** The metric as a u32 attribute value, or a clear error. */
function metricValue(dst: string, metric: number): number {
  if (!Number.isInteger(metric) || metric < 0 || metric > 0xffffffff)
    throw new Error(`route ${dst}: metric ${metric} is not an integer in 0..4294967295`);
  return metric;
}

function rtmsg(
  family: number,
  dstLen: number,
  table: number,
  protocol: number,
  scope: number,
  type: number,
  flags: number,
): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeUInt8(dstLen, 1);
  b.writeUInt8(table < 256 ? table : 252, 4); // RT_TABLE_COMPAT, the real id in RTA_TABLE
  b.writeUInt8(protocol, 5);
  b.writeUInt8(scope, 6);
  b.writeUInt8(type, 7);
  b.writeUInt32LE(flags, 8);
  return b;
}

/** `ip route replace` (or `add` with exclusive: fails with EEXIST when there is one). */
export function newRoute(r: Route, exclusive = false): Request {
  const d = cidrBytes(r.dst);
  const table = r.table ?? RT_TABLE_MAIN;
  const blackhole = r.type === 'blackhole';
  const scope =
    r.scope === 'link' || (r.scope === undefined && !blackhole && !r.via && r.oif !== undefined)
      ? RT_SCOPE_LINK
      : RT_SCOPE_UNIVERSE;
  const list: Attr[] = [
    [RTA_TABLE, u32(table)],
    [RTA_DST, d.bytes],
  ];
  if (r.via) {
    const g = ipBytes(r.via);
    if (g.family !== d.family)
      throw new Error(`route ${r.dst}: gateway ${r.via} is of another address family`);
    list.push([RTA_GATEWAY, g.bytes]);
  }
  if (r.oif !== undefined) list.push([RTA_OIF, u32(r.oif)]);
  if (r.metric !== undefined) list.push([RTA_PRIORITY, u32(metricValue(r.dst, r.metric))]);
  return {
    type: RTM_NEWROUTE,
    flags: NLM_F_CREATE | (exclusive ? NLM_F_EXCL : NLM_F_REPLACE),
    body: Buffer.concat([
      rtmsg(
        d.family,
        d.len,
        table,
        r.protocol,
        scope,
        blackhole ? RTN_BLACKHOLE : RTN_UNICAST,
        r.onlink ? RTNH_F_ONLINK : 0,
      ),
      attrs(list),
    ]),
  };
}

/**
 * `ip route del <dst> proto <p> [metric m]`: any type, scope and next hop of that
 * destination and protocol; with a metric only the route of that metric (without one,
 * the kernel removes the first it finds, the lowest metric).
 */
export function delRoute(
  dst: string,
  protocol: number,
  table = RT_TABLE_MAIN,
  metric?: number,
): Request {
  const d = cidrBytes(dst);
  const list: Attr[] = [
    [RTA_TABLE, u32(table)],
    [RTA_DST, d.bytes],
  ];
  if (metric !== undefined) list.push([RTA_PRIORITY, u32(metricValue(dst, metric))]);
  return {
    type: RTM_DELROUTE,
    flags: 0,
    body: Buffer.concat([
      rtmsg(d.family, d.len, table, protocol, RT_SCOPE_NOWHERE, 0, 0),
      attrs(list),
    ]),
  };
}

export function dumpRoutes(family: number): Request {
  return { type: RTM_GETROUTE, flags: NLM_F_DUMP, body: rtmsg(family, 0, 0, 0, 0, 0, 0) };
}

export interface ParsedRoute {
  dst: string;
  family: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  via?: string;
  oif?: number;
  onlink: boolean;
  /** RTA_PRIORITY (the kernel always reports it for IPv6, and for IPv4 when not 0). */
  metric?: number;
}

export function parseRoute(m: Message): ParsedRoute {
  const d = m.data;
  const family = d.readUInt8(0);
  const dstLen = d.readUInt8(1);
  const a = parseAttrs(d, 12);
  const dstBytes = a.get(RTA_DST);
  const zero = family === AF_INET ? '0.0.0.0' : '::';
  const gw = a.get(RTA_GATEWAY);
  const oif = a.get(RTA_OIF);
  const table = a.get(RTA_TABLE);
  const priority = a.get(RTA_PRIORITY);
  return {
    dst: `${dstBytes ? ipText(dstBytes) : zero}/${dstLen}`,
    family,
    table: table ? table.readUInt32LE(0) : d.readUInt8(4),
    protocol: d.readUInt8(5),
    scope: d.readUInt8(6),
    type: d.readUInt8(7),
    ...(gw ? { via: ipText(gw) } : {}),
    ...(oif ? { oif: oif.readUInt32LE(0) } : {}),
    onlink: (d.readUInt32LE(8) & RTNH_F_ONLINK) !== 0,
    ...(priority ? { metric: priority.readUInt32LE(0) } : {}),
  };
}

// ---- links ----

function ifinfomsg(index: number, flags = 0, change = 0, family = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

export interface VethSpec {
  name: string;
  mac?: string;
  mtu?: number;
  peer: {
    name: string;
    mac?: string;
    mtu?: number;
    /** fd of the peer's network namespace */ netnsFd?: number;
  };
}

function linkAttrs(s: { name: string; mac?: string; mtu?: number }): Attr[] {
  const l: Attr[] = [[IFLA_IFNAME, str(s.name)]];
  if (s.mac) l.push([IFLA_ADDRESS, macBytes(s.mac)]);
  if (s.mtu) l.push([IFLA_MTU, u32(s.mtu)]);
  return l;
}

/** `ip link add <name> type veth peer name <peer> netns <fd>`: one request, no move. */
export function newVeth(v: VethSpec): Request {
  const peerAttrs = linkAttrs(v.peer);
  if (v.peer.netnsFd !== undefined) peerAttrs.push([IFLA_NET_NS_FD, u32(v.peer.netnsFd)]);
  const peer = Buffer.concat([ifinfomsg(0), attrs(peerAttrs)]);
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    body: Buffer.concat([
      ifinfomsg(0),
      attrs([
        ...linkAttrs(v),
        [
          IFLA_LINKINFO,
          attrs([
            [IFLA_INFO_KIND, str('veth')],
            [IFLA_INFO_DATA, attrs([[VETH_INFO_PEER, peer]])],
          ]),
        ],
      ]),
    ]),
  };
}

/** `ip link set <name> up|down`. */
export function setLinkUp(name: string, up = true): Request {
  return {
    type: RTM_NEWLINK,
    flags: 0,
    body: Buffer.concat([ifinfomsg(0, up ? IFF_UP : 0, IFF_UP), attrs([[IFLA_IFNAME, str(name)]])]),
  };
}

/** `ip link set <name> address <mac>` and/or `mtu <n>` (and `up`/`down` when `up` is given). */
export function setLink(name: string, s: { mac?: string; mtu?: number; up?: boolean }): Request {
  const head = s.up === undefined ? ifinfomsg(0) : ifinfomsg(0, s.up ? IFF_UP : 0, IFF_UP);
  return {
    type: RTM_NEWLINK,
    flags: 0,
    body: Buffer.concat([head, attrs(linkAttrs({ name, mac: s.mac, mtu: s.mtu }))]),
  };
}

export interface VxlanSpec {
  name: string;
  vni: number;
  /** UDP destination port. */
  port: number;
  /** The source address of the encapsulated packets (IPv4 or IPv6). */
  local: string;
  /** Learning of remote MACs from received packets (`ip`'s default: on; tortie: off). */
  learning: boolean;
  mac?: string;
  mtu?: number;
}

/** `ip link add <name> type vxlan id <vni> dstport <port> local <ip> [no]learning`. */
export function newVxlan(v: VxlanSpec): Request {
  if (!Number.isInteger(v.vni) || v.vni < 0 || v.vni > 0xffffff)
    throw new Error(`VXLAN ${v.name}: VNI ${v.vni} is not in 0..16777215`);
  if (!Number.isInteger(v.port) || v.port < 1 || v.port > 65535)
    throw new Error(`VXLAN ${v.name}: port ${v.port} is not in 1..65535`);
  const local = ipBytes(v.local);
  const port = Buffer.alloc(2);
  port.writeUInt16BE(v.port); // network order, as the kernel keeps it
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    body: Buffer.concat([
      ifinfomsg(0),
      attrs([
        ...linkAttrs(v),
        [
          IFLA_LINKINFO,
          attrs([
            [IFLA_INFO_KIND, str('vxlan')],
            [
              IFLA_INFO_DATA,
              attrs([
                [IFLA_VXLAN_ID, u32(v.vni)],
                // IFLA_VXLAN_LOCAL6 (17) for an IPv6 source
                [local.family === AF_INET ? IFLA_VXLAN_LOCAL : 17, local.bytes],
                [IFLA_VXLAN_LEARNING, u8(v.learning ? 1 : 0)],
                [IFLA_VXLAN_PORT, port],
              ]),
            ],
          ]),
        ],
      ]),
    ]),
  };
}

/** `ip link add name <name> type ipip` (tunl0: the ipip module's own device). */
export function newIpip(name: string, mtu?: number): Request {
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    body: Buffer.concat([
      ifinfomsg(0),
      attrs([...linkAttrs({ name, mtu }), [IFLA_LINKINFO, attrs([[IFLA_INFO_KIND, str('ipip')]])]]),
    ]),
  };
}

/** `ip link set <name> netns <fd>`. */
export function setLinkNetns(name: string, netnsFd: number): Request {
  return {
    type: RTM_NEWLINK,
    flags: 0,
    body: Buffer.concat([
      ifinfomsg(0),
      attrs([
        [IFLA_IFNAME, str(name)],
        [IFLA_NET_NS_FD, u32(netnsFd)],
      ]),
    ]),
  };
}

/** `ip link set <name> addrgenmode none`: no automatic IPv6 link-local address. */
export function setAddrGenModeNone(name: string): Request {
  return {
    type: RTM_NEWLINK,
    flags: 0,
    body: Buffer.concat([
      ifinfomsg(0),
      attrs([
        [IFLA_IFNAME, str(name)],
        [
          IFLA_AF_SPEC,
          attrs([[AF_INET6, attrs([[IFLA_INET6_ADDR_GEN_MODE, u8(IN6_ADDR_GEN_MODE_NONE)]])]]),
        ],
      ]),
    ]),
  };
}

export function delLink(name: string): Request {
  return {
    type: RTM_DELLINK,
    flags: 0,
    body: Buffer.concat([ifinfomsg(0), attrs([[IFLA_IFNAME, str(name)]])]),
  };
}

/** One link, by name or by index (no statistics). */
export function getLink(by: string | number): Request {
  const mask: Attr = [IFLA_EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS)];
  return {
    type: RTM_GETLINK,
    flags: 0,
    body:
      typeof by === 'string'
        ? Buffer.concat([ifinfomsg(0), attrs([[IFLA_IFNAME, str(by)], mask])])
        : Buffer.concat([ifinfomsg(by), attrs([mask])]),
  };
}

export interface ParsedLink {
  index: number;
  name: string;
  flags: number;
  mtu?: number;
  mac?: string;
  /** IFLA_INFO_KIND: veth, vxlan, ipip...; absent for a plain device. */
  kind?: string;
  /** A VXLAN device's settings, as `ip -d link` shows them. */
  vxlan?: { vni?: number; port?: number; local?: string; learning?: boolean };
}

const cstr = (b: Buffer) => b.toString('utf8').replace(/\0.*$/s, '');

export function parseLink(m: Message): ParsedLink {
  const a = parseAttrs(m.data, 16);
  const name = a.get(IFLA_IFNAME);
  const mtu = a.get(IFLA_MTU);
  const mac = a.get(IFLA_ADDRESS);
  const info = a.get(IFLA_LINKINFO);
  const out: ParsedLink = {
    index: m.data.readInt32LE(4),
    name: name ? cstr(name) : '',
    flags: m.data.readUInt32LE(8),
    ...(mtu ? { mtu: mtu.readUInt32LE(0) } : {}),
    ...(mac && mac.length === 6 ? { mac: macText(mac) } : {}),
  };
  if (info) {
    const i = parseAttrs(info, 0);
    const kind = i.get(IFLA_INFO_KIND);
    if (kind) out.kind = cstr(kind);
    const data = i.get(IFLA_INFO_DATA);
    if (out.kind === 'vxlan' && data) {
      const d = parseAttrs(data, 0);
      const id = d.get(IFLA_VXLAN_ID);
      const port = d.get(IFLA_VXLAN_PORT);
      const local = d.get(IFLA_VXLAN_LOCAL) ?? d.get(17);
      const learning = d.get(IFLA_VXLAN_LEARNING);
      out.vxlan = {
        ...(id ? { vni: id.readUInt32LE(0) } : {}),
        ...(port ? { port: port.readUInt16BE(0) } : {}),
        ...(local ? { local: ipText(local) } : {}),
        ...(learning ? { learning: learning[0] !== 0 } : {}),
      };
    }
  }
  return out;
}

// ---- addresses and neighbours ----

/** `ip addr add <cidr> dev <index> [nodad]` (replace: `ip addr replace`). */
export function newAddr(
  cidr: string,
  index: number,
  o: { nodad?: boolean; replace?: boolean } = {},
): Request {
  const c = cidrBytes(cidr);
  const b = Buffer.alloc(8);
  b.writeUInt8(c.family, 0);
  b.writeUInt8(c.len, 1);
  b.writeUInt8(o.nodad ? IFA_F_NODAD : 0, 2);
  b.writeUInt32LE(index, 4);
  const list: Attr[] = [[IFA_LOCAL, c.bytes]];
  list.push([IFA_ADDRESS, c.bytes]);
  if (o.nodad) list.push([IFA_FLAGS, u32(IFA_F_NODAD)]);
  return {
    type: RTM_NEWADDR,
    flags: NLM_F_CREATE | (o.replace ? NLM_F_REPLACE : NLM_F_EXCL),
    body: Buffer.concat([b, attrs(list)]),
  };
}

/** `ip addr del <cidr> dev <index>`. */
export function delAddr(cidr: string, index: number): Request {
  const c = cidrBytes(cidr);
  const b = Buffer.alloc(8);
  b.writeUInt8(c.family, 0);
  b.writeUInt8(c.len, 1);
  b.writeUInt32LE(index, 4);
  return { type: RTM_DELADDR, flags: 0, body: Buffer.concat([b, attrs([[IFA_LOCAL, c.bytes]])]) };
}

/** Every address of a family (AF_INET, AF_INET6), as `ip addr show`. */
export function dumpAddrs(family: number): Request {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  return { type: RTM_GETADDR, flags: NLM_F_DUMP, body: b };
}

export interface ParsedAddr {
  family: number;
  prefixLen: number;
  index: number;
  /** The interface's own address (IFA_LOCAL, else IFA_ADDRESS). */
  address: string;
}

export function parseAddr(m: Message): ParsedAddr {
  const d = m.data;
  const a = parseAttrs(d, 8);
  const ip = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS);
  return {
    family: d.readUInt8(0),
    prefixLen: d.readUInt8(1),
    index: d.readUInt32LE(4),
    address: ip ? ipText(ip) : '',
  };
}

function ndmsg(family: number, index: number, state: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  b.writeUInt8(flags, 10);
  return b;
}

/** `ip neigh del <ip> dev <index>`. */
export function delNeigh(ip: string, index: number): Request {
  const a = ipBytes(ip);
  return {
    type: RTM_DELNEIGH,
    flags: 0,
    body: Buffer.concat([ndmsg(a.family, index, 0, 0), attrs([[NDA_DST, a.bytes]])]),
  };
}

/** `bridge fdb replace <mac> dev <index> dst <ip> self permanent` (a VXLAN device's remote). */
export function replaceFdb(mac: string, dst: string, index: number): Request {
  return {
    type: RTM_NEWNEIGH,
    flags: NLM_F_CREATE | NLM_F_REPLACE,
    body: Buffer.concat([
      ndmsg(AF_BRIDGE, index, NUD_PERMANENT, NTF_SELF),
      attrs([
        [NDA_LLADDR, macBytes(mac)],
        [NDA_DST, ipBytes(dst).bytes],
      ]),
    ]),
  };
}

/** `bridge fdb del <mac> dev <index> self`: the entry with all its remotes. */
export function delFdb(mac: string, index: number): Request {
  return {
    type: RTM_DELNEIGH,
    flags: 0,
    body: Buffer.concat([
      ndmsg(AF_BRIDGE, index, 0, NTF_SELF),
      attrs([[NDA_LLADDR, macBytes(mac)]]),
    ]),
  };
}

/** `ip neigh replace <ip> lladdr <mac> dev <index> nud permanent`. */
export function replaceNeigh(ip: string, mac: string, index: number): Request {
  const a = ipBytes(ip);
  const b = Buffer.alloc(12);
  b.writeUInt8(a.family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(NUD_PERMANENT, 8);
  return {
    type: RTM_NEWNEIGH,
    flags: NLM_F_CREATE | NLM_F_REPLACE,
    body: Buffer.concat([
      b,
      attrs([
        [NDA_DST, a.bytes],
        [NDA_LLADDR, macBytes(mac)],
      ]),
    ]),
  };
}

// ---- the hot path: many route changes written straight into one buffer ----

/** Writes a dotted-quad IPv4 address at `off`; false when the text is not one. */
function writeIp4(b: Buffer, off: number, s: string): boolean {
  let part = 0;
  let digits = 0;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch === 46) {
      if (digits === 0 || n === 3) return false;
      b[off + n++] = part;
      part = 0;
      digits = 0;
    } else if (ch >= 48 && ch <= 57 && digits < 3) {
      part = part * 10 + ch - 48;
      digits++;
      if (part > 255) return false;
    } else return false;
  }
  if (digits === 0 || n !== 3) return false;
  b[off + n] = part;
  return true;
}

/** Writes an address attribute at `off`; returns the family and the bytes written. */
function writeAddrAttr(b: Buffer, off: number, type: number, ip: string): [number, number] {
  if (writeIp4(b, off + 4, ip)) {
    b.writeUInt16LE(8, off);
    b.writeUInt16LE(type, off + 2);
    return [AF_INET, 8];
  }
  const a = ipBytes(ip); // IPv6, or throws naming the text
  b.writeUInt16LE(4 + a.bytes.length, off);
  b.writeUInt16LE(type, off + 2);
  a.bytes.copy(b, off + 4);
  return [a.family, 4 + a.bytes.length];
}

export type RouteChange =
  | { del: false; route: Route; exclusive?: boolean }
  | { del: true; dst: string; protocol: number; table?: number; metric?: number };

/** Largest message a route change becomes: header, rtmsg, table, dst, gateway, oif, priority. */
const MAX_ROUTE_MSG = 16 + 12 + 8 + 20 + 20 + 8 + 8;

/**
 * Route changes framed with sequence numbers from `firstSeq`, written in place (no
 * per-route allocation). A change that cannot be encoded is left out and reported in
 * `bad` by index with the reason; `index[k]` is the change the k-th message carries.
 */
export function frameRouteChanges(
  changes: RouteChange[],
  firstSeq: number,
): { buf: Buffer; index: number[]; bad: Map<number, string> } {
  const b = Buffer.alloc(changes.length * MAX_ROUTE_MSG);
  const index: number[] = [];
  const bad = new Map<number, string>();
  let off = 0;
  for (let i = 0; i < changes.length; i++) {
    const ch = changes[i];
    const start = off;
    try {
      const dst = ch.del ? ch.dst : ch.route.dst;
      const slash = dst.indexOf('/');
      const ip = slash < 0 ? dst : dst.slice(0, slash);
      const table = (ch.del ? ch.table : ch.route.table) ?? RT_TABLE_MAIN;
      let p = off + 16 + 12;
      b.writeUInt16LE(8, p);
      b.writeUInt16LE(RTA_TABLE, p + 2);
      b.writeUInt32LE(table, p + 4);
      p += 8;
      const [family, dl] = writeAddrAttr(b, p, RTA_DST, ip);
      p += dl;
      const max = family === AF_INET ? 32 : 128;
      const len = slash < 0 ? max : Number(dst.slice(slash + 1));
      if (
        !Number.isInteger(len) ||
        len < 0 ||
        len > max ||
        (slash >= 0 && dst.length === slash + 1)
      )
        throw new Error(`"${dst}" is not a CIDR`);
      let type = 0;
      let scope = RT_SCOPE_NOWHERE;
      let flags = 0;
      let protocol: number;
      let nlflags: number;
      if (ch.del) {
        protocol = ch.protocol;
        nlflags = 0;
      } else {
        const r = ch.route;
        protocol = r.protocol;
        nlflags = NLM_F_CREATE | (ch.exclusive ? NLM_F_EXCL : NLM_F_REPLACE);
        const blackhole = r.type === 'blackhole';
        type = blackhole ? RTN_BLACKHOLE : RTN_UNICAST;
        scope =
          r.scope === 'link' ||
          (r.scope === undefined && !blackhole && !r.via && r.oif !== undefined)
            ? RT_SCOPE_LINK
            : RT_SCOPE_UNIVERSE;
        flags = r.onlink ? RTNH_F_ONLINK : 0;
        if (r.via) {
          const [gf, gl] = writeAddrAttr(b, p, RTA_GATEWAY, r.via);
          if (gf !== family)
            throw new Error(`route ${dst}: gateway ${r.via} is of another address family`);
          p += gl;
        }
        if (r.oif !== undefined) {
          b.writeUInt16LE(8, p);
          b.writeUInt16LE(RTA_OIF, p + 2);
          b.writeUInt32LE(r.oif, p + 4);
          p += 8;
        }
      }
      const metric = ch.del ? ch.metric : ch.route.metric;
      if (metric !== undefined) {
        b.writeUInt16LE(8, p);
        b.writeUInt16LE(RTA_PRIORITY, p + 2);
        b.writeUInt32LE(metricValue(dst, metric), p + 4);
        p += 8;
      }
      // header
      b.writeUInt32LE(p - off, off);
      b.writeUInt16LE(ch.del ? RTM_DELROUTE : RTM_NEWROUTE, off + 4);
      b.writeUInt16LE(nlflags | NLM_F_REQUEST, off + 6);
      b.writeUInt32LE((firstSeq + index.length) >>> 0, off + 8);
      b.writeUInt32LE(0, off + 12);
      // rtmsg
      b[off + 16] = family;
      b[off + 17] = len;
      b[off + 18] = 0;
      b[off + 19] = 0;
      b[off + 20] = table < 256 ? table : 252;
      b[off + 21] = protocol;
      b[off + 22] = scope;
      b[off + 23] = type;
      b.writeUInt32LE(flags, off + 24);
      off = p;
      index.push(i);
    } catch (e) {
      b.fill(0, start, start + MAX_ROUTE_MSG);
      off = start;
      bad.set(i, (e as Error).message);
    }
  }
  return { buf: b.subarray(0, off), index, bad };
}
