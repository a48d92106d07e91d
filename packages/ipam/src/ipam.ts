// The IPAM client: allocation and release over the datastore. Every write is a
// compare-and-swap on the resource's revision (or a create that fails when someone was
// first), so any number of allocators on any number of nodes never hand out one address
// twice; on a conflict we re-read and retry with jittered backoff.
//
// Order of writes (crash safety): the block first (it records the handle id next to
// each address), then the handle. A crash in between leaves an allocation whose handle
// record is missing; `check` reports it and `gc` releases it.
import { API_VERSION, type Kind, type Resource, type Spec } from '@tortie/api';
import { DatastoreError, type Datastore } from '@tortie/datastore';
import type { Labels } from '@tortie/policy';
import * as block from './block';
import {
  blockCount,
  blockOf,
  containsIp,
  formatCidr,
  nthBlock,
  overlaps,
  parseCidr,
  parseIp,
  type Cidr,
  type IpVersion,
} from './cidr';
import { checkIpam, type IpamReport } from './check';
import { affinityName, blockName, handleName } from './names';
import { IpamError } from './errors';
import { poolOf, poolsFor, reservedBy, type Pool } from './pools';

export interface IpamOptions {
  /** Attempts per compare-and-swap before giving up (each re-reads). */
  maxAttempts?: number;
  /** Base of the jittered exponential backoff between attempts. */
  backoffMs?: number;
}

export interface AutoAssignRequest {
  handleId: string;
  node: string;
  num4?: number;
  num6?: number;
  /** Pool names or CIDRs to restrict to (CNI config ipv4_pools / annotations). */
  pools4?: string[];
  pools6?: string[];
  /** Recorded with the allocation: namespace, pod, node, containerID... */
  attrs?: Record<string, string>;
}

export interface GcResult {
  releasedIps: string[];
  releasedHandles: string[];
  /** Blocks whose affinity to a vanished node was dropped. */
  releasedAffinities: string[];
}

export interface AssignResult {
  ipv4: string[];
  ipv6: string[];
}

type Res<K extends Kind> = Resource<K>;

function resource<K extends Kind>(kind: K, name: string, spec: Spec<K>): Res<K> {
  return { apiVersion: API_VERSION, kind, metadata: { name }, spec } as Res<K>;
}

const isCode = (e: unknown, code: DatastoreError['code']) =>
  e instanceof DatastoreError && e.code === code;

export class IpamClient {
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly nodeQueues = new Map<string, Promise<void>>();

  constructor(
    private readonly ds: Datastore,
    opts: IpamOptions = {},
  ) {
    this.maxAttempts = opts.maxAttempts ?? 100;
    this.backoffMs = opts.backoffMs ?? 2;
  }

  // ---- allocation ---------------------------------------------------------------------

  /**
   * Allocates `num4` IPv4 and `num6` IPv6 addresses for a handle: from the node's affine
   * blocks, then from newly claimed blocks, then (unless strict affinity) borrowed from
   * other nodes' blocks. All or nothing: on failure what was taken is released.
   */
  async autoAssign(req: AutoAssignRequest): Promise<AssignResult> {
    return this.serialized(req.node, () => this.autoAssignNow(req));
  }

  /**
   * Allocations for one node through this client run one at a time, as Calico's CNI
   * holds a host-wide IPAM lock: they all want the same affine block, and running them
   * at once only turns into compare-and-swap conflicts and retries.
   */
  private serialized<T>(node: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.nodeQueues.get(node) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.nodeQueues.set(node, tail);
    void tail.then(() => {
      if (this.nodeQueues.get(node) === tail) this.nodeQueues.delete(node);
    });
    return run;
  }

  private async autoAssignNow(req: AutoAssignRequest): Promise<AssignResult> {
    const result: AssignResult = { ipv4: [], ipv6: [] };
    try {
      if (req.num4) result.ipv4 = await this.assignVersion(req, 4, req.num4, req.pools4);
      if (req.num6) result.ipv6 = await this.assignVersion(req, 6, req.num6, req.pools6);
      return result;
    } catch (e) {
      if (result.ipv4.length || result.ipv6.length) await this.releaseByHandle(req.handleId);
      throw e;
    }
  }

  private async assignVersion(
    req: AutoAssignRequest,
    version: IpVersion,
    n: number,
    requested?: string[],
  ): Promise<string[]> {
    const [pools, nodeLabels, config, reserved] = await Promise.all([
      this.listSpecs('IPPool'),
      this.nodeLabels(req.node),
      this.config(),
      this.reserved(),
    ]);
    const usable = poolsFor(pools, version, nodeLabels, requested);
    if (usable.length === 0) {
      throw new IpamError('NoPool', `no enabled IPv${version} pool selects node "${req.node}"`);
    }
    const attrs = { ...req.attrs, node: req.node, timestamp: new Date().toISOString() };
    const got: string[] = [];
    const take = async (cidr: string, mustBeAffine: boolean) => {
      const ips = await this.allocateInBlock(cidr, n - got.length, req, attrs, reserved, {
        affineTo: mustBeAffine ? req.node : undefined,
      });
      got.push(...ips);
    };

    // 1. blocks already affine to this node
    const mine = await this.affineBlocks(req.node, usable);
    for (const cidr of mine) {
      if (got.length >= n) break;
      await take(cidr, true);
    }
    // 2. claim new blocks
    let claimed = mine.length;
    while (
      got.length < n &&
      config.autoAllocateBlocks &&
      (config.maxBlocksPerHost === 0 || claimed < config.maxBlocksPerHost)
    ) {
      const cidr = await this.claimFreeBlock(req.node, usable, reserved);
      if (!cidr) break;
      claimed++;
      await take(cidr, true);
    }
    // 3. borrow from any block of the pools
    if (got.length < n && !config.strictAffinity) {
      for (const b of await this.blocksIn(usable)) {
        if (got.length >= n) break;
        if (block.freeCount(b.spec, reserved) > 0) await take(b.spec.cidr, false);
      }
    }
    if (got.length < n) {
      const names = usable.map((p) => p.cidrText).join(', ');
      throw new IpamError(
        'Exhausted',
        `no free IPv${version} address for node "${req.node}" in ${names}` +
          (config.strictAffinity ? ' (strict affinity: no borrowing)' : ''),
      );
    }
    return got;
  }

  /** Assigns one given address (a fixed IP), claiming its block for the node if unclaimed. */
  async assignIp(
    ip: string,
    handleId: string,
    node: string,
    attrs: Record<string, string> = {},
  ): Promise<void> {
    const pool = poolOf(await this.listSpecs('IPPool'), ip);
    if (!pool) throw new IpamError('NoPool', `${ip} is not in any IP pool`);
    const { version, value } = parseIp(ip);
    const cidr = formatCidr(blockOf(version, value, pool.blockSize));
    const stamp = { ...attrs, node, timestamp: new Date().toISOString() };
    await this.retry(`assign ${ip}`, async () => {
      const cur = await this.ds.get({ kind: 'IPAMBlock', name: blockName(cidr) });
      if (!cur) {
        await this.claim(node, cidr);
        throw new DatastoreError('Conflict', 'block claimed, re-read');
      }
      const b = cur as Res<'IPAMBlock'>;
      const next = block.allocateIp(b.spec, ip, handleId, stamp);
      await this.ds.update({ ...b, spec: next });
    });
    await this.addToHandle(handleId, cidr, 1);
  }

  // ---- release -----------------------------------------------------------------------

  /** Releases every address of a handle; releasing an unknown handle is harmless. */
  async releaseByHandle(handleId: string): Promise<string[]> {
    const h = (await this.ds.get({ kind: 'IPAMHandle', name: handleName(handleId) })) as
      Res<'IPAMHandle'> | undefined;
    // Without a handle record (a crash between the two writes) scan every block.
    const cidrs = h
      ? Object.keys(h.spec.block)
      : (await this.listSpecs('IPAMBlock'))
          .filter((b) => block.allocationsOf(b.spec).some((a) => a.handleId === handleId))
          .map((b) => b.spec.cidr);
    const released: string[] = [];
    for (const cidr of cidrs) {
      released.push(
        ...(await this.releaseInBlock(cidr, (b) => block.releaseHandle(b, handleId))).map(
          (x) => x.ip,
        ),
      );
    }
    if (h) {
      try {
        await this.ds.delete({ kind: 'IPAMHandle', name: h.metadata.name });
      } catch (e) {
        if (!isCode(e, 'NotFound')) throw e;
      }
    }
    return released;
  }

  /** Releases addresses (whoever holds them); returns those that were allocated. */
  async releaseIps(ips: string[]): Promise<string[]> {
    const blocks = await this.listSpecs('IPAMBlock');
    const byBlock = new Map<string, string[]>();
    for (const ip of ips) {
      const { version, value } = parseIp(ip);
      const b = blocks.find((x) => containsIp(parseCidr(x.spec.cidr), version, value));
      if (b) byBlock.set(b.spec.cidr, [...(byBlock.get(b.spec.cidr) ?? []), ip]);
    }
    const released: string[] = [];
    for (const [cidr, list] of byBlock) {
      const freed = await this.releaseInBlock(cidr, (b) => block.releaseIps(b, list));
      const perHandle = new Map<string, number>();
      for (const f of freed) {
        released.push(f.ip);
        if (f.handleId) perHandle.set(f.handleId, (perHandle.get(f.handleId) ?? 0) + 1);
      }
      for (const [handleId, count] of perHandle) await this.addToHandle(handleId, cidr, -count);
    }
    return released;
  }

  /**
   * A node left the cluster: drop its affinities. Empty blocks are deleted; blocks still
   * holding addresses lose their affinity (they are freed when emptied; `gc` finds the
   * addresses of pods that went with the node).
   */
  async releaseNodeAffinities(node: string): Promise<string[]> {
    const affinities = (
      (await this.ds.list({ kind: 'BlockAffinity', namePrefix: `${node}-` }))
        .items as Res<'BlockAffinity'>[]
    ).filter((a) => a.spec.node === node);
    for (const a of affinities) {
      await this.retry(`release affinity ${a.metadata.name}`, async () => {
        const cur = (await this.ds.get({ kind: 'IPAMBlock', name: blockName(a.spec.cidr) })) as
          Res<'IPAMBlock'> | undefined;
        if (!cur || block.affineNode(cur.spec) !== node) return;
        if (block.isEmpty(cur.spec)) {
          await this.ds.delete(
            { kind: 'IPAMBlock', name: cur.metadata.name },
            { resourceVersion: cur.metadata.resourceVersion },
          );
        } else {
          await this.ds.update({ ...cur, spec: { ...cur.spec, affinity: undefined } });
        }
      });
      await this.deleteIfPresent({ kind: 'BlockAffinity', name: a.metadata.name });
    }
    return affinities.map((a) => a.spec.cidr);
  }

  // ---- check and garbage collection ----------------------------------------------------

  /** Compares IPAM with the pods (workload endpoints) and nodes that exist. */
  async check(): Promise<IpamReport> {
    const [blocks, handles, affinities, endpoints, nodes] = await Promise.all([
      this.listSpecs('IPAMBlock'),
      this.listSpecs('IPAMHandle'),
      this.listSpecs('BlockAffinity'),
      this.listSpecs('WorkloadEndpoint'),
      this.listSpecs('Node'),
    ]);
    return checkIpam({ blocks, handles, affinities, endpoints, nodes });
  }

  /**
   * Releases what `check` finds leaked. Only allocations older than the grace period are
   * touched: a pod in the middle of its CNI ADD holds an address before its endpoint is
   * written, and must not lose it.
   */
  async gc(opts: { gracePeriodMs?: number; now?: Date } = {}): Promise<GcResult> {
    const grace = opts.gracePeriodMs ?? 60_000;
    const now = (opts.now ?? new Date()).getTime();
    const oldEnough = (at?: string) => at === undefined || now - Date.parse(at) >= grace;
    const report = await this.check();
    const result: GcResult = { releasedIps: [], releasedHandles: [], releasedAffinities: [] };
    for (const h of report.leakedHandles) {
      if (!oldEnough(h.allocatedAt)) continue;
      result.releasedIps.push(...(await this.releaseByHandle(h.handleId)));
      result.releasedHandles.push(h.handleId);
    }
    const orphanIps = report.allocationsWithoutHandle
      .filter((a) => oldEnough(a.allocatedAt) && !result.releasedIps.includes(a.ip))
      .map((a) => a.ip);
    if (orphanIps.length) result.releasedIps.push(...(await this.releaseIps(orphanIps)));
    for (const node of new Set(report.orphanAffinities.map((a) => a.node))) {
      result.releasedAffinities.push(...(await this.releaseNodeAffinities(node)));
    }
    return result;
  }

  // ---- reads -------------------------------------------------------------------------

  /** Addresses held by a handle. */
  async ipsByHandle(handleId: string): Promise<string[]> {
    const h = (await this.ds.get({ kind: 'IPAMHandle', name: handleName(handleId) })) as
      Res<'IPAMHandle'> | undefined;
    if (!h) return [];
    const out: string[] = [];
    for (const cidr of Object.keys(h.spec.block)) {
      const b = (await this.ds.get({ kind: 'IPAMBlock', name: blockName(cidr) })) as
        Res<'IPAMBlock'> | undefined;
      if (b)
        out.push(
          ...block
            .allocationsOf(b.spec)
            .filter((a) => a.handleId === handleId)
            .map((a) => a.ip),
        );
    }
    return out;
  }

  // ---- internals ---------------------------------------------------------------------

  private async allocateInBlock(
    cidr: string,
    want: number,
    req: AutoAssignRequest,
    attrs: Record<string, string>,
    reserved: (ip: string) => boolean,
    opts: { affineTo?: string },
  ): Promise<string[]> {
    const ips = await this.retry(`allocate in ${cidr}`, async () => {
      const cur = (await this.ds.get({ kind: 'IPAMBlock', name: blockName(cidr) })) as
        Res<'IPAMBlock'> | undefined;
      if (!cur) return [];
      if (opts.affineTo !== undefined && block.affineNode(cur.spec) !== opts.affineTo) return [];
      const r = block.allocate(cur.spec, want, req.handleId, attrs, reserved);
      if (r.ips.length) await this.ds.update({ ...cur, spec: r.block });
      return r.ips;
    });
    if (ips.length) {
      try {
        await this.addToHandle(req.handleId, cidr, ips.length);
      } catch (e) {
        await this.releaseInBlock(cidr, (b) => block.releaseIps(b, ips));
        throw e;
      }
    }
    return ips;
  }

  /** Applies a release to one block with CAS; deletes the block when it ends empty and unaffine. */
  private async releaseInBlock(
    cidr: string,
    op: (b: block.BlockSpec) => block.Released,
  ): Promise<block.Released['ips']> {
    return this.retry(`release in ${cidr}`, async () => {
      const cur = (await this.ds.get({ kind: 'IPAMBlock', name: blockName(cidr) })) as
        Res<'IPAMBlock'> | undefined;
      if (!cur) return [];
      const r = op(cur.spec);
      if (r.ips.length === 0) return [];
      if (block.isEmpty(r.block) && block.affineNode(r.block) === undefined) {
        await this.ds.delete(
          { kind: 'IPAMBlock', name: cur.metadata.name },
          { resourceVersion: cur.metadata.resourceVersion },
        );
      } else {
        await this.ds.update({ ...cur, spec: r.block });
      }
      return r.ips;
    });
  }

  /** Adds `delta` to a handle's count for a block; the handle goes when it counts nothing. */
  private async addToHandle(handleId: string, cidr: string, delta: number): Promise<void> {
    const name = handleName(handleId);
    await this.retry(`handle ${handleId}`, async () => {
      const cur = (await this.ds.get({ kind: 'IPAMHandle', name })) as
        Res<'IPAMHandle'> | undefined;
      if (!cur) {
        if (delta <= 0) return;
        await this.ds.create(
          resource('IPAMHandle', name, {
            handleID: handleId,
            block: { [cidr]: delta },
            deleted: false,
          }),
        );
        return;
      }
      const counts = { ...cur.spec.block, [cidr]: (cur.spec.block[cidr] ?? 0) + delta };
      if (counts[cidr] <= 0) delete counts[cidr];
      if (Object.keys(counts).length === 0) {
        await this.ds.delete(
          { kind: 'IPAMHandle', name },
          { resourceVersion: cur.metadata.resourceVersion },
        );
      } else {
        await this.ds.update({ ...cur, spec: { ...cur.spec, block: counts } });
      }
    });
  }

  /** Confirmed affinities of a node inside the given pools, in pool order. */
  private async affineBlocks(node: string, pools: Pool[]): Promise<string[]> {
    const affinities = (
      (await this.ds.list({ kind: 'BlockAffinity', namePrefix: `${node}-` }))
        .items as Res<'BlockAffinity'>[]
    ).filter((a) => a.spec.node === node && a.spec.state === 'confirmed' && !a.spec.deleted);
    const out: string[] = [];
    for (const p of pools) {
      for (const a of affinities) {
        if (overlaps(p.cidr, parseCidr(a.spec.cidr))) out.push(a.spec.cidr);
      }
    }
    return out;
  }

  private async blocksIn(pools: Pool[]): Promise<Res<'IPAMBlock'>[]> {
    const all = await this.listSpecs('IPAMBlock');
    return pools.flatMap((p) => all.filter((b) => overlaps(p.cidr, parseCidr(b.spec.cidr))));
  }

  /**
   * Finds a block no one holds and claims it for the node. Each node starts its walk at
   * a different block (hash of its name) so that nodes claiming at once rarely collide.
   */
  private async claimFreeBlock(
    node: string,
    pools: Pool[],
    reserved: (ip: string) => boolean,
  ): Promise<string | undefined> {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const existing = (await this.listSpecs('IPAMBlock')).map((b) => parseCidr(b.spec.cidr));
      const cidr = firstFreeBlock(pools, existing, node, reserved);
      if (!cidr) return undefined;
      if (await this.claim(node, cidr)) return cidr;
      await this.sleep(attempt);
    }
    throw new IpamError(
      'Exhausted',
      `could not claim a block for node "${node}": too much contention`,
    );
  }

  /** Claims one block: pending affinity, then the block (create fails if taken), then confirm. */
  private async claim(node: string, cidr: string): Promise<boolean> {
    const aKey = { kind: 'BlockAffinity' as const, name: affinityName(node, cidr) };
    let affinity = (await this.ds.get(aKey)) as Res<'BlockAffinity'> | undefined;
    if (!affinity) {
      try {
        affinity = (await this.ds.create(
          resource('BlockAffinity', aKey.name, { state: 'pending', node, cidr, deleted: false }),
        )) as Res<'BlockAffinity'>;
      } catch (e) {
        if (!isCode(e, 'AlreadyExists')) throw e;
        affinity = (await this.ds.get(aKey)) as Res<'BlockAffinity'>;
      }
    }
    try {
      await this.ds.create(resource('IPAMBlock', blockName(cidr), block.newBlock(cidr, node)));
    } catch (e) {
      if (!isCode(e, 'AlreadyExists')) throw e;
      const b = (await this.ds.get({ kind: 'IPAMBlock', name: blockName(cidr) })) as
        Res<'IPAMBlock'> | undefined;
      if (!b || block.affineNode(b.spec) !== node) {
        await this.deleteIfPresent(aKey);
        return false;
      }
    }
    if (affinity && affinity.spec.state !== 'confirmed') {
      await this.retry(`confirm ${aKey.name}`, async () => {
        const cur = (await this.ds.get(aKey)) as Res<'BlockAffinity'> | undefined;
        if (!cur) {
          await this.ds.create(
            resource('BlockAffinity', aKey.name, {
              state: 'confirmed',
              node,
              cidr,
              deleted: false,
            }),
          );
        } else if (cur.spec.state !== 'confirmed') {
          await this.ds.update({ ...cur, spec: { ...cur.spec, state: 'confirmed' } });
        }
      });
    }
    return true;
  }

  private async deleteIfPresent(key: { kind: Kind; name: string }): Promise<void> {
    try {
      await this.ds.delete(key);
    } catch (e) {
      if (!isCode(e, 'NotFound')) throw e;
    }
  }

  private async listSpecs<K extends Kind>(kind: K): Promise<Res<K>[]> {
    return (await this.ds.list({ kind })).items as Res<K>[];
  }

  private async nodeLabels(node: string): Promise<Labels> {
    const n = await this.ds.get({ kind: 'Node', name: node });
    return n?.metadata.labels ?? {};
  }

  private async config(): Promise<Spec<'IPAMConfiguration'>> {
    const c = (await this.ds.get({ kind: 'IPAMConfiguration', name: 'default' })) as
      Res<'IPAMConfiguration'> | undefined;
    return c?.spec ?? { strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 0 };
  }

  private async reserved(): Promise<(ip: string) => boolean> {
    return reservedBy(await this.listSpecs('IPReservation'));
  }

  /** Runs `fn` until it does not hit a write conflict (it must re-read inside). */
  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        const raced = isCode(e, 'Conflict') || isCode(e, 'AlreadyExists') || isCode(e, 'NotFound');
        if (!raced || attempt + 1 >= this.maxAttempts) {
          if (raced)
            throw new IpamError('InUse', `${what}: gave up after ${attempt + 1} conflicts`);
          throw e;
        }
        await this.sleep(attempt);
      }
    }
  }

  private sleep(attempt: number): Promise<void> {
    const ms = Math.random() * this.backoffMs * 2 ** Math.min(attempt, 6);
    return new Promise((r) => setTimeout(r, ms));
  }
}

/** The first block of the pools that no existing block overlaps and that has a usable address. */
export function firstFreeBlock(
  pools: Pool[],
  existing: Cidr[],
  node: string,
  reserved: (ip: string) => boolean,
): string | undefined {
  for (const p of pools) {
    const count = blockCount(p.cidr, p.blockSize);
    const inPool = existing.filter((e) => overlaps(p.cidr, e));
    // More candidates than existing blocks cannot all be taken: the walk ends quickly.
    const steps = count < BigInt(inPool.length + 64) ? count : BigInt(inPool.length + 64);
    const start = startOffset(node, count);
    for (let i = 0n; i < steps; i++) {
      const c = nthBlock(p.cidr, p.blockSize, (start + i) % count);
      if (inPool.some((e) => overlaps(c, e))) continue;
      const text = formatCidr(c);
      if (block.freeCount(block.newBlock(text), reserved) === 0) continue;
      return text;
    }
  }
  return undefined;
}

function startOffset(node: string, count: bigint): bigint {
  let h = 2166136261;
  for (let i = 0; i < node.length; i++) h = Math.imul(h ^ node.charCodeAt(i), 16777619) >>> 0;
  return BigInt(h) % count;
}
