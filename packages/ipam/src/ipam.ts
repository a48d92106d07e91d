// The IPAM client: allocation and release over the datastore. Every write is a
// compare-and-swap on the resource's revision (or a create that fails when someone was
// first), so any number of allocators on any number of nodes never hand out one address
// twice; on a conflict we re-read and retry with jittered backoff.
//
// Order of writes (crash safety): the block first (it records the handle id next to
// each address), then the handle. A crash in between leaves an allocation whose handle
// record is missing; `check` reports it and `gc` releases it.
import {
  API_VERSION,
  namespaceLabels,
  namespaceProfileName,
  type Kind,
  type Resource,
  type Spec,
} from '@tortie/api';
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
} from '@tortie/netaddr';
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
  /** The pod's namespace, for the pools' namespaceSelectors (none: tunnels, services). */
  namespace?: string;
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

/** One request in a node's allocation queue. */
interface Pending {
  req: AutoAssignRequest;
  resolve(r: AssignResult): void;
  reject(e: Error): void;
}

/** One release waiting for its block's next write. */
interface PendingRelease {
  op(b: block.BlockSpec): block.Released;
  resolve(ips: block.Released['ips']): void;
  reject(e: Error): void;
}

/** One request's share of a batch, for one IP version. */
interface Ask {
  req: AutoAssignRequest;
  want: number;
  /** Filled in place: the request's result list for this version. */
  got: string[];
  attrs: Record<string, string>;
  fail(e: Error): void;
}

interface AssignContext {
  node: string;
  pools: Res<'IPPool'>[];
  nodeLabels: Labels;
  config: Spec<'IPAMConfiguration'>;
  reserved: (ip: string) => boolean;
  /** namespace -> its labels, read once per batch (both IP families ask) */
  namespaces: Map<string, Promise<Labels>>;
  /** The node's block affinities, read with the rest; dropped once this batch claims a block. */
  affinities?: Promise<Res<'BlockAffinity'>[]>;
}

/** Requests per batch: bounds one block write's size and the wait of the last one. */
const MAX_BATCH = 64;

function attrsOf(req: AutoAssignRequest): Record<string, string> {
  return { ...req.attrs, node: req.node, timestamp: new Date().toISOString() };
}

function resource<K extends Kind>(kind: K, name: string, spec: Spec<K>): Res<K> {
  return { apiVersion: API_VERSION, kind, metadata: { name }, spec } as Res<K>;
}

const isCode = (e: unknown, code: DatastoreError['code']) =>
  e instanceof DatastoreError && e.code === code;

export class IpamClient {
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly nodeQueues = new Map<string, Pending[]>();
  private readonly releaseQueues = new Map<string, PendingRelease[]>();
  /** Blocks as this client last wrote them (cidr -> resource with its resourceVersion). */
  private readonly written = new Map<string, Res<'IPAMBlock'>>();

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
  autoAssign(req: AutoAssignRequest): Promise<AssignResult> {
    return new Promise((resolve, reject) => {
      const queue = this.nodeQueues.get(req.node) ?? [];
      queue.push({ req, resolve, reject });
      if (queue.length === 1) {
        this.nodeQueues.set(req.node, queue);
        void this.drain(req.node, queue);
      }
    });
  }

  /**
   * Allocations for one node through this client are taken in batches, one batch at a
   * time (as Calico's CNI holds a host-wide IPAM lock): they all want the same affine
   * block, so a burst of pods shares one read of the pools and one compare-and-swap of
   * the block instead of queueing for one each, or racing into conflicts and retries.
   */
  private async drain(node: string, queue: Pending[]): Promise<void> {
    await Promise.resolve(); // let the requests of this tick join the first batch
    while (queue.length) {
      const batch = queue.slice(0, MAX_BATCH);
      const results = await this.assignBatch(batch.map((p) => p.req));
      // taken off only now: requests arriving meanwhile wait for the next batch
      queue.splice(0, batch.length);
      batch.forEach((p, i) => {
        const r = results[i];
        if (r instanceof Error) p.reject(r);
        else p.resolve(r);
      });
    }
    this.nodeQueues.delete(node);
  }

  /** Each request's result or error; one failing request does not fail the others. */
  private async assignBatch(reqs: AutoAssignRequest[]): Promise<Array<AssignResult | Error>> {
    const asks = reqs.map((req) => ({
      req,
      result: { ipv4: [], ipv6: [] } as AssignResult,
      error: undefined as Error | undefined,
    }));
    try {
      const ctx = await this.readContext(reqs[0].node);
      for (const version of [4, 6] as const) {
        // requests that name the same pools are served together
        const groups = new Map<string, Ask[]>();
        for (const a of asks) {
          const want = version === 4 ? a.req.num4 : a.req.num6;
          if (!want || a.error) continue;
          const pools = version === 4 ? a.req.pools4 : a.req.pools6;
          const key = JSON.stringify([pools ?? null, a.req.namespace ?? null]);
          const got = version === 4 ? a.result.ipv4 : a.result.ipv6;
          const ask: Ask = {
            req: a.req,
            want,
            got,
            attrs: attrsOf(a.req),
            fail: (e) => (a.error = e),
          };
          groups.set(key, [...(groups.get(key) ?? []), ask]);
        }
        for (const group of groups.values()) {
          const { pools4, pools6, namespace } = group[0].req;
          // a group's error (its pools do not exist) is its own, not the batch's
          await this.assignVersion(ctx, version, group, {
            requested: version === 4 ? pools4 : pools6,
            namespace,
          }).catch((e: Error) => group.forEach((a) => a.fail(e)));
        }
      }
    } catch (e) {
      for (const a of asks) a.error ??= e as Error;
    }
    return Promise.all(
      asks.map(async (a) => {
        if (!a.error) return a.result;
        // all or nothing: what this request got before it failed goes back
        if (a.result.ipv4.length || a.result.ipv6.length) {
          await this.releaseByHandle(a.req.handleId).catch(() => undefined);
        }
        return a.error;
      }),
    );
  }

  /** What allocation decisions read: pools, the node's labels, IPAM config, reservations. */
  private async readContext(node: string): Promise<AssignContext> {
    // the affinities too, in the same round of reads (they are needed next)
    const affinities = this.affinitiesOf(node);
    affinities.catch(() => undefined); // awaited (and its error thrown) where used
    const [pools, nodeLabels, config, reserved] = await Promise.all([
      this.listSpecs('IPPool'),
      this.nodeLabels(node),
      this.config(),
      this.reserved(),
    ]);
    return { node, pools, nodeLabels, config, reserved, namespaces: new Map(), affinities };
  }

  private async assignVersion(
    ctx: AssignContext,
    version: IpVersion,
    asks: Ask[],
    { requested, namespace }: { requested?: string[]; namespace?: string },
  ): Promise<void> {
    const { node, config, reserved } = ctx;
    // a namespace's labels are read only when a pool asks for them
    let namespaceLabels: Promise<Labels> | undefined;
    if (namespace !== undefined && ctx.pools.some((p) => p.spec.namespaceSelector)) {
      namespaceLabels = ctx.namespaces.get(namespace) ?? this.namespaceLabels(namespace);
      ctx.namespaces.set(namespace, namespaceLabels);
    }
    const usable = poolsFor(ctx.pools, version, {
      nodeLabels: ctx.nodeLabels,
      namespaceLabels: await namespaceLabels,
      requested,
    });
    if (usable.length === 0) {
      const which = namespace === undefined ? '' : ` and namespace "${namespace}"`;
      throw new IpamError('NoPool', `no enabled IPv${version} pool selects node "${node}"${which}`);
    }
    const open = () => asks.filter((a) => a.got.length < a.want);
    const take = (cidr: string, mustBeAffine: boolean) =>
      this.allocateInBlock(cidr, open(), reserved, { affineTo: mustBeAffine ? node : undefined });

    // 1. blocks already affine to this node
    const mine = await this.affineBlocks(node, usable, ctx.affinities);
    for (const cidr of mine) {
      if (open().length === 0) break;
      await take(cidr, true);
    }
    // 2. claim new blocks
    let claimed = mine.length;
    while (
      open().length > 0 &&
      config.autoAllocateBlocks &&
      (config.maxBlocksPerHost === 0 || claimed < config.maxBlocksPerHost)
    ) {
      const cidr = await this.claimFreeBlock(node, usable, reserved);
      if (!cidr) break;
      ctx.affinities = undefined; // read again by the next group of this batch
      claimed++;
      await take(cidr, true);
    }
    // 3. borrow from any block of the pools
    if (open().length > 0 && !config.strictAffinity) {
      for (const b of await this.blocksIn(usable)) {
        if (open().length === 0) break;
        if (block.freeCount(b.spec, reserved) > 0) await take(b.spec.cidr, false);
      }
    }
    const names = usable.map((p) => p.cidrText).join(', ');
    for (const a of open()) {
      a.fail(
        new IpamError(
          'Exhausted',
          `no free IPv${version} address for node "${node}" in ${names}` +
            (config.strictAffinity ? ' (strict affinity: no borrowing)' : ''),
        ),
      );
    }
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

  /**
   * Serves as many asks as the block can in one compare-and-swap of the block, then
   * records each handle; an ask whose handle write fails gives its addresses back.
   */
  private async allocateInBlock(
    cidr: string,
    asks: Ask[],
    reserved: (ip: string) => boolean,
    opts: { affineTo?: string },
  ): Promise<void> {
    if (asks.length === 0) return;
    let cached = this.written.get(cidr);
    const taken = await this.retry(`allocate in ${cidr}`, async () => {
      // first from the block as this client last wrote it (a node's allocations mostly
      // go through one client), saving a read: the compare-and-swap fails if anyone wrote
      // since, and the retry reads. Only a write is trusted to it: when the copy has no
      // room for anyone (or is not ours) the block is read before giving up on it
      for (;;) {
        const fromCache = cached !== undefined;
        const cur =
          cached ??
          ((await this.ds.get({ kind: 'IPAMBlock', name: blockName(cidr) })) as
            Res<'IPAMBlock'> | undefined);
        cached = undefined;
        if (!cur) return [];
        if (opts.affineTo !== undefined && block.affineNode(cur.spec) !== opts.affineTo) {
          if (fromCache) continue;
          return [];
        }
        let spec = cur.spec;
        const out: string[][] = [];
        for (const a of asks) {
          const r = block.allocate(spec, a.want - a.got.length, a.req.handleId, a.attrs, reserved);
          spec = r.block;
          out.push(r.ips);
        }
        if (!out.some((ips) => ips.length)) {
          if (fromCache) continue;
          return out;
        }
        this.remember(await this.write({ ...cur, spec }));
        return out;
      }
    });
    await Promise.all(
      taken.map(async (ips, i) => {
        if (!ips.length) return;
        const a = asks[i];
        try {
          await this.addToHandle(a.req.handleId, cidr, ips.length);
          a.got.push(...ips);
        } catch (e) {
          await this.releaseInBlock(cidr, (b) => block.releaseIps(b, ips)).catch(() => undefined);
          a.fail(e as Error);
          a.want = 0; // failed: no more addresses for it
        }
      }),
    );
  }

  /**
   * Applies a release to one block with CAS; deletes the block when it ends empty and
   * unaffine. Releases of one block through this client are combined into one write
   * (pods deleted at once all free addresses of the same block).
   */
  private releaseInBlock(
    cidr: string,
    op: (b: block.BlockSpec) => block.Released,
  ): Promise<block.Released['ips']> {
    return new Promise((resolve, reject) => {
      const queue = this.releaseQueues.get(cidr) ?? [];
      queue.push({ op, resolve, reject });
      if (queue.length === 1) {
        this.releaseQueues.set(cidr, queue);
        void this.drainReleases(cidr, queue);
      }
    });
  }

  private async drainReleases(cidr: string, queue: PendingRelease[]): Promise<void> {
    await Promise.resolve(); // let the releases of this tick join the first write
    while (queue.length) {
      const batch = queue.slice(0, MAX_BATCH);
      try {
        const freed = await this.retry(`release in ${cidr}`, async () => {
          const cur = (await this.ds.get({ kind: 'IPAMBlock', name: blockName(cidr) })) as
            Res<'IPAMBlock'> | undefined;
          if (!cur) return batch.map(() => []);
          let spec = cur.spec;
          const out = batch.map((p) => {
            const r = p.op(spec);
            spec = r.block;
            return r.ips;
          });
          if (out.every((ips) => ips.length === 0)) return out;
          if (block.isEmpty(spec) && block.affineNode(spec) === undefined) {
            this.written.delete(cidr);
            await this.ds.delete(
              { kind: 'IPAMBlock', name: cur.metadata.name },
              { resourceVersion: cur.metadata.resourceVersion },
            );
          } else {
            // read, not cached: a release must see every allocation to free them all
            this.remember(await this.write({ ...cur, spec }));
          }
          return out;
        });
        batch.forEach((p, i) => p.resolve(freed[i]));
      } catch (e) {
        batch.forEach((p) => p.reject(e as Error));
      }
      queue.splice(0, batch.length);
    }
    this.releaseQueues.delete(cidr);
  }

  /** Adds `delta` to a handle's count for a block; the handle goes when it counts nothing. */
  private async addToHandle(handleId: string, cidr: string, delta: number): Promise<void> {
    const name = handleName(handleId);
    const fresh = () =>
      resource('IPAMHandle', name, {
        handleID: handleId,
        block: { [cidr]: delta },
        deleted: false,
      });
    if (delta > 0) {
      // a pod's ADD makes a new handle: create it outright (one round trip, not a read
      // first); one that exists already takes the read-and-update path below
      try {
        await this.ds.create(fresh());
        return;
      } catch (e) {
        if (!isCode(e, 'AlreadyExists')) throw e;
      }
    }
    await this.retry(`handle ${handleId}`, async () => {
      const cur = (await this.ds.get({ kind: 'IPAMHandle', name })) as
        Res<'IPAMHandle'> | undefined;
      if (!cur) {
        if (delta <= 0) return;
        await this.ds.create(fresh());
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

  /** A block write; a Conflict or NotFound forgets the cached copy (the retry reads). */
  private async write(b: Res<'IPAMBlock'>): Promise<Res<'IPAMBlock'>> {
    try {
      return (await this.ds.update(b)) as Res<'IPAMBlock'>;
    } catch (e) {
      this.written.delete(b.spec.cidr);
      throw e;
    }
  }

  private remember(b: Res<'IPAMBlock'>): void {
    // bounded by the blocks this client writes (a node's few, or a controller's pool)
    if (b.metadata.resourceVersion !== undefined) this.written.set(b.spec.cidr, b);
  }

  /** Confirmed affinities of a node inside the given pools, in pool order. */
  private async affineBlocks(
    node: string,
    pools: Pool[],
    read: Promise<Res<'BlockAffinity'>[]> = this.affinitiesOf(node),
  ): Promise<string[]> {
    const affinities = (await read).filter(
      (a) => a.spec.node === node && a.spec.state === 'confirmed' && !a.spec.deleted,
    );
    const out: string[] = [];
    for (const p of pools) {
      for (const a of affinities) {
        if (overlaps(p.cidr, parseCidr(a.spec.cidr))) out.push(a.spec.cidr);
      }
    }
    return out;
  }

  private async affinitiesOf(node: string): Promise<Res<'BlockAffinity'>[]> {
    return (await this.ds.list({ kind: 'BlockAffinity', namePrefix: `${node}-` }))
      .items as Res<'BlockAffinity'>[];
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

  /** Its "kns.<ns>" profile's labels (the Kubernetes datastore's view of a Namespace). */
  private async namespaceLabels(ns: string): Promise<Labels> {
    const p = (await this.ds.get({ kind: 'Profile', name: namespaceProfileName(ns) })) as
      Res<'Profile'> | undefined;
    return namespaceLabels(ns, p?.spec.labelsToApply);
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
