// Pure operations on one allocation block, in Calico's IPAMBlock layout: `allocations[i]`
// is the index of the attribute entry that owns address i (null when free), `unallocated`
// is the queue of free ordinals (freed addresses go to its end, so a just-released
// address is reused last), `attributes` records the handle and who asked.
// Every function returns a new spec; the caller writes it back with compare-and-swap.
import type { Spec } from '@tortie/api';
import { IpamError } from './errors';
import { ipAt, ordinalOf, parseCidr, size, type Cidr } from '@tortie/netaddr';

export type BlockSpec = Spec<'IPAMBlock'>;
export type Attributes = Record<string, string>;

export const AFFINITY_PREFIX = 'host:';

export function newBlock(cidr: string, node?: string): BlockSpec {
  const n = Number(size(parseCidr(cidr)));
  return {
    cidr,
    affinity: node === undefined ? undefined : `${AFFINITY_PREFIX}${node}`,
    allocations: new Array<number | null>(n).fill(null),
    unallocated: Array.from({ length: n }, (_, i) => i),
    attributes: [],
    sequenceNumber: 0,
    strictAffinity: false,
    deleted: false,
  };
}

export function affineNode(b: BlockSpec): string | undefined {
  return b.affinity?.startsWith(AFFINITY_PREFIX)
    ? b.affinity.slice(AFFINITY_PREFIX.length)
    : undefined;
}

export function isEmpty(b: BlockSpec): boolean {
  return b.unallocated.length === b.allocations.length;
}

/** Free addresses, not counting reserved ones. */
export function freeCount(b: BlockSpec, reserved: (ip: string) => boolean): number {
  const c = parseCidr(b.cidr);
  return b.unallocated.filter((o) => !reserved(ipAt(c, o))).length;
}

/** Takes up to `n` free addresses in queue order, skipping reserved ones. */
export function allocate(
  b: BlockSpec,
  n: number,
  handleId: string,
  attrs: Attributes,
  reserved: (ip: string) => boolean,
): { block: BlockSpec; ips: string[] } {
  const c = parseCidr(b.cidr);
  const taken: number[] = [];
  const kept: number[] = [];
  for (const o of b.unallocated) {
    if (taken.length < n && !reserved(ipAt(c, o))) taken.push(o);
    else kept.push(o);
  }
  if (taken.length === 0) return { block: b, ips: [] };
  const attributes = [...b.attributes, { handle_id: handleId, secondary: attrs }];
  const allocations = [...b.allocations];
  for (const o of taken) allocations[o] = attributes.length - 1;
  return {
    block: bump({ ...b, allocations, attributes, unallocated: kept }),
    ips: taken.map((o) => ipAt(c, o)),
  };
}

/** Takes one given address; throws naming it when it is outside the block or in use. */
export function allocateIp(
  b: BlockSpec,
  ip: string,
  handleId: string,
  attrs: Attributes,
): BlockSpec {
  const c = parseCidr(b.cidr);
  const o = ordinalOf(c, ip);
  if (o === undefined) throw new IpamError('Invalid', `${ip} is not in block ${b.cidr}`);
  if (b.allocations[o] !== null) {
    const owner = b.attributes[b.allocations[o]]?.handle_id;
    throw new IpamError('InUse', `${ip} is already in use${owner ? ` (handle ${owner})` : ''}`);
  }
  const attributes = [...b.attributes, { handle_id: handleId, secondary: attrs }];
  const allocations = [...b.allocations];
  allocations[o] = attributes.length - 1;
  return bump({ ...b, allocations, attributes, unallocated: b.unallocated.filter((x) => x !== o) });
}

export interface Released {
  block: BlockSpec;
  /** Addresses freed, each with the handle that held it. */
  ips: Array<{ ip: string; handleId?: string }>;
}

/** Frees the given addresses of this block (addresses already free are ignored). */
export function releaseIps(b: BlockSpec, ips: string[]): Released {
  const c = parseCidr(b.cidr);
  const ordinals = ips.map((ip) => ordinalOf(c, ip)).filter((o) => o !== undefined);
  return releaseOrdinals(b, c, new Set(ordinals));
}

/** Frees every address held by a handle. */
export function releaseHandle(b: BlockSpec, handleId: string): Released {
  const c = parseCidr(b.cidr);
  const ordinals = new Set<number>();
  b.allocations.forEach((a, o) => {
    if (a !== null && b.attributes[a]?.handle_id === handleId) ordinals.add(o);
  });
  return releaseOrdinals(b, c, ordinals);
}

function releaseOrdinals(b: BlockSpec, c: Cidr, ordinals: Set<number>): Released {
  const ips: Released['ips'] = [];
  const allocations = [...b.allocations];
  const freed: number[] = [];
  for (const o of [...ordinals].sort((x, y) => x - y)) {
    const a = allocations[o];
    if (a === null || a === undefined) continue;
    ips.push({ ip: ipAt(c, o), handleId: b.attributes[a]?.handle_id });
    allocations[o] = null;
    freed.push(o);
  }
  if (freed.length === 0) return { block: b, ips };
  return {
    block: bump(
      compactAttributes({ ...b, allocations, unallocated: [...b.unallocated, ...freed] }),
    ),
    ips,
  };
}

/** Drops attribute entries no allocation points at and renumbers the rest. */
function compactAttributes(b: BlockSpec): BlockSpec {
  const used = new Map<number, number>();
  const attributes: BlockSpec['attributes'] = [];
  const allocations = b.allocations.map((a) => {
    if (a === null) return null;
    let n = used.get(a);
    if (n === undefined) {
      n = attributes.push(b.attributes[a]) - 1;
      used.set(a, n);
    }
    return n;
  });
  return { ...b, allocations, attributes };
}

function bump(b: BlockSpec): BlockSpec {
  return { ...b, sequenceNumber: b.sequenceNumber + 1 };
}

/** Every allocated address with its handle and attributes. */
export function allocationsOf(
  b: BlockSpec,
): Array<{ ip: string; handleId?: string; attrs: Attributes }> {
  const c = parseCidr(b.cidr);
  const out: Array<{ ip: string; handleId?: string; attrs: Attributes }> = [];
  b.allocations.forEach((a, o) => {
    if (a === null) return;
    const at = b.attributes[a];
    out.push({ ip: ipAt(c, o), handleId: at?.handle_id, attrs: at?.secondary ?? {} });
  });
  return out;
}
