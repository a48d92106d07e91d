// A transaction of set elements only, as netlink element operations (the runner's fast
// path, see runner.ts); undefined when the transaction does anything else (chains, sets
// declared or deleted, interval sets, a whole rewrite), which nft writes. Pure.
import { nftKey, type NftElementOp } from '@tortie/netlink';
import type { NftChanges } from './script';

const PROTOCOLS: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

type KeyOf = (element: string) => Buffer | undefined;

/** How a set's elements become keys, from its declaration; undefined: not on this path. */
function keyOf(decl: string): KeyOf | undefined {
  const t = /^type ([a-z0-9_ .]+);$/.exec(decl.trim())?.[1];
  switch (t) {
    case 'ipv4_addr':
    case 'ipv6_addr':
      return (e) => (e.includes('/') ? undefined : nftKey.addr(e));
    case 'ipv4_addr . inet_proto . inet_service':
    case 'ipv6_addr . inet_proto . inet_service':
      return (e) => {
        const [ip, proto, port] = e.split(' . ');
        const p = PROTOCOLS[proto] ?? (/^\d+$/.test(proto ?? '') ? Number(proto) : undefined);
        return p === undefined || !/^\d+$/.test(port ?? '')
          ? undefined
          : nftKey.addrProtoPort(ip, p, Number(port));
      };
    case 'ifname':
      return (e) => (/^"[^"]+"$/.test(e) ? nftKey.ifname(e.slice(1, -1)) : undefined);
    default:
      return undefined;
  }
}

const VERDICT = /^(jump|goto) ([A-Za-z0-9_.-]+)$/;

/**
 * The changes as element operations, in the script's order (deletes, then adds, per
 * set; then the maps), or undefined. `setDecl(name)` is the set's declaration (sets) or
 * undefined (unknown); maps are `ifname : verdict`.
 */
export function elementOps(
  c: NftChanges,
  setDecl: (set: string) => string | undefined,
): NftElementOp[] | undefined {
  if (
    c.full ||
    c.maps.length ||
    c.addSets.length ||
    c.addChains.length ||
    c.replaceChains.length ||
    c.delChains.length ||
    c.delSets.length
  )
    return undefined;
  const ops: NftElementOp[] = [];
  try {
    for (const e of c.elements) {
      const decl = setDecl(e.set);
      const key = decl === undefined ? undefined : keyOf(decl);
      if (!key || e.refill) return undefined;
      for (const [op, list] of [
        ['del', e.del],
        ['add', e.add],
      ] as const)
        for (const el of list) {
          const k = key(el);
          if (!k) return undefined;
          ops.push({ op, set: e.set, key: k, text: el });
        }
    }
    for (const m of c.mapChanges) {
      for (const i of m.del)
        ops.push({ op: 'del', set: m.map, key: nftKey.ifname(i), text: `"${i}"` });
      for (const [i, v] of m.add) {
        const vm = VERDICT.exec(v);
        if (!vm) return undefined;
        ops.push({
          op: 'add',
          set: m.map,
          key: nftKey.ifname(i),
          verdict: { code: vm[1] as 'jump' | 'goto', chain: vm[2] },
          text: `"${i}" : ${v}`,
        });
      }
    }
  } catch {
    return undefined; // an element this path cannot encode: nft writes (and judges) it
  }
  return ops;
}
