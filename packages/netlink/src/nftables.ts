// nftables set elements over netlink (NETLINK_NETFILTER): one batch, one transaction,
// without an nft process. `nft` reads the table's chains, sets and the elements of every
// set it touches before each transaction (its cache, refreshed after every commit since
// the generation changed); a pod add that only adds elements to a verdict map of 10,000
// interfaces pays for dumping them. Here the batch goes straight to the kernel, which
// commits it or refuses it whole, as `nft -f` would.
//
// Only set elements (add/delete, with a verdict for maps); tables, chains, rules and
// interval sets stay with nft. The end of the batch is acknowledged by kernels from 6.10
// on (`nftablesBatchAcked`); callers use nft on older ones.
import { release } from 'node:os';
import { loadAddon, type RtnlAddon } from './addon';
import { attrs, frame, ipBytes, str, type Attr, type Request } from './codec';
import { NetlinkError } from './errors';
import { openNetlinkSocket } from './rtnl';

const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 16;
const NFNL_MSG_BATCH_END = 17;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NLM_F_CREATE = 0x400;
const NLA_F_NESTED = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFTA_VERDICT_CHAIN = 2;
const NFT_JUMP = -3;
const NFT_GOTO = -4;
const IFNAMSIZ = 16;

export const NFPROTO = { inet: 1, ip: 2, ip6: 10 } as const;
export type NftFamily = keyof typeof NFPROTO;

/** One element added to or deleted from a set or verdict map. */
export interface NftElementOp {
  op: 'add' | 'del';
  set: string;
  /** The key as the kernel stores it (see nftKey). */
  key: Buffer;
  /** Maps: the element's verdict. */
  verdict?: { code: 'jump' | 'goto'; chain: string };
  /** Data maps: the element's value as the kernel stores it (e.g. a mark: 4 bytes, host order). */
  data?: Buffer;
  /** As nft would write the element (errors name it). */
  text: string;
}

/** Element keys in the kernel's layout (each field of a concatenation padded to 4 bytes). */
export const nftKey = {
  /** type ifname: 16 bytes, NUL padded. */
  ifname(name: string): Buffer {
    const b = Buffer.alloc(IFNAMSIZ);
    if (Buffer.byteLength(name) >= IFNAMSIZ || name.includes('\0'))
      throw new Error(`"${name}" is not an interface name`);
    b.write(name, 'latin1');
    return b;
  },
  /** type ipv4_addr / ipv6_addr: the address in network order. */
  addr(ip: string): Buffer {
    return ipBytes(ip).bytes;
  },
  /** type ipv4_addr . inet_proto . inet_service (or ipv6_addr . ...). */
  addrProtoPort(ip: string, proto: number, port: number): Buffer {
    if (!(proto >= 0 && proto <= 255 && Number.isInteger(proto)))
      throw new Error(`protocol ${proto} is not 0-255`);
    if (!(port >= 0 && port <= 65535 && Number.isInteger(port)))
      throw new Error(`port ${port} is not 0-65535`);
    const p = Buffer.alloc(8);
    p[0] = proto;
    p.writeUInt16BE(port, 4);
    return Buffer.concat([ipBytes(ip).bytes, p]);
  },
};

const nested = (type: number, list: Attr[]): Attr => [type | NLA_F_NESTED, attrs(list)];

const be32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
};

/** nfgenmsg: family, version 0, res_id (big-endian). */
const nfgen = (family: number, resId = 0): Buffer => {
  const b = Buffer.alloc(4);
  b[0] = family;
  b.writeUInt16BE(resId, 2);
  return b;
};

/** One element's attributes (NFTA_LIST_ELEM). */
function elementAttr(e: NftElementOp): Attr {
  const list: Attr[] = [nested(NFTA_SET_ELEM_KEY, [[NFTA_DATA_VALUE, e.key]])];
  if (e.verdict && e.op === 'add')
    list.push(
      nested(NFTA_SET_ELEM_DATA, [
        nested(NFTA_DATA_VERDICT, [
          [NFTA_VERDICT_CODE, be32(e.verdict.code === 'jump' ? NFT_JUMP : NFT_GOTO)],
          [NFTA_VERDICT_CHAIN, str(e.verdict.chain)],
        ]),
      ]),
    );
  else if (e.data && e.op === 'add')
    list.push(nested(NFTA_SET_ELEM_DATA, [[NFTA_DATA_VALUE, e.data]]));
  return nested(NFTA_LIST_ELEM, list);
}

/**
 * The batch (pure): BATCH_BEGIN, one NEWSETELEM/DELSETELEM per run of consecutive ops on
 * the same set, BATCH_END. `names[i]` says what request i was, for errors.
 */
export function elementBatch(
  family: NftFamily,
  table: string,
  ops: NftElementOp[],
): { reqs: Request[]; names: string[] } {
  const reqs: Request[] = [
    { type: NFNL_MSG_BATCH_BEGIN, flags: 0, body: nfgen(0, NFNL_SUBSYS_NFTABLES) },
  ];
  const names = ['nftables batch'];
  for (let i = 0; i < ops.length;) {
    let j = i + 1;
    while (j < ops.length && ops[j].op === ops[i].op && ops[j].set === ops[i].set) j++;
    const run = ops.slice(i, j);
    const add = ops[i].op === 'add';
    reqs.push({
      type: (NFNL_SUBSYS_NFTABLES << 8) | (add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM),
      flags: add ? NLM_F_CREATE : 0,
      body: Buffer.concat([
        nfgen(NFPROTO[family]),
        attrs([
          [NFTA_SET_ELEM_LIST_TABLE, str(table)],
          [NFTA_SET_ELEM_LIST_SET, str(ops[i].set)],
          nested(NFTA_SET_ELEM_LIST_ELEMENTS, run.map(elementAttr)),
        ]),
      ]),
    });
    names.push(
      `${add ? 'add' : 'delete'} element ${family} ${table} ${ops[i].set} { ${run.map((o) => o.text).join(', ')} }`,
    );
    i = j;
  }
  reqs.push({ type: NFNL_MSG_BATCH_END, flags: 0, body: nfgen(0, NFNL_SUBSYS_NFTABLES) });
  names.push('nftables batch end');
  return { reqs, names };
}

/** Whether this kernel acknowledges the end of an nftables batch (6.10 and later). */
export function nftablesBatchAcked(kernelRelease = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > 6 || (maj === 6 && min >= 10);
}

/** The largest batch sent (one sendmsg: the addon's chunk is 256 messages, 64 KiB). */
export const NFT_BATCH_MAX_BYTES = 60 * 1024;
export const NFT_BATCH_MAX_MESSAGES = 250;

/** A NETLINK_NETFILTER socket in one network namespace. */
export class NfTables {
  private seq = 1;
  private closed = false;

  private constructor(
    private readonly addon: RtnlAddon,
    private readonly fd: number,
    readonly where: string,
  ) {}

  /** A socket in this namespace or in `netns` (name or path); throws when it cannot be had. */
  static open(netns?: string): NfTables {
    const a = loadAddon();
    if (!a.addon) throw new Error(`netlink unavailable: ${a.reason}`);
    if (!nftablesBatchAcked())
      throw new Error(
        `kernel ${release()} does not acknowledge nftables batches (needs 6.10 or later)`,
      );
    const s = openNetlinkSocket(netns, NETLINK_NETFILTER, 'nftables netlink socket');
    return new NfTables(s.addon, s.fd, s.where);
  }

  /** Whether these ops fit in one batch (else the caller writes them with nft). */
  static fits(family: NftFamily, table: string, ops: NftElementOp[]): boolean {
    const { reqs } = elementBatch(family, table, ops);
    const bytes = reqs.reduce((n, r) => n + 16 + ((r.body.length + 3) & ~3), 0);
    return reqs.length <= NFT_BATCH_MAX_MESSAGES && bytes <= NFT_BATCH_MAX_BYTES;
  }

  /**
   * Commits the ops as one transaction (on this thread: the kernel answers within the
   * send). Throws the first refusal as a NetlinkError naming the request; nothing of the
   * batch is then committed.
   */
  commitElements(family: NftFamily, table: string, ops: NftElementOp[]): void {
    if (this.closed) throw new Error(`nftables netlink socket in ${this.where} is closed`);
    if (!ops.length) return;
    if (!NfTables.fits(family, table, ops))
      throw new Error(`nftables batch of ${ops.length} elements is too large for one message`);
    const { reqs, names } = elementBatch(family, table, ops);
    if (this.seq > 0x7fff0000) this.seq = 1;
    const first = this.seq;
    this.seq += reqs.length;
    const r = this.addon.exchangeSync(this.fd, frame(reqs, first));
    for (let i = 0; i < reqs.length; i++)
      if (r.errors[i]) throw new NetlinkError(names[i], r.errors[i], r.messages[i]);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.close(this.fd);
  }
}
