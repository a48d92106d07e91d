// `tortiectl ipam show|check|release|gc`, like `calicoctl ipam`.
import type { Resource } from '@tortie/api';
import type { Datastore } from '@tortie/datastore';
import { IpamClient, blocks, isClean, parseCidr, size, containsCidr, parseIp } from '@tortie/ipam';
import { table, UsageError, type Io } from './commands';

export interface IpamOptions {
  showBlocks?: boolean;
  ip?: string[];
  gracePeriod?: string;
}

const pct = (n: bigint, total: bigint) =>
  total === 0n ? '0' : `${n} (${Number((n * 100n) / total)}%)`;

/** "90s", "5m", "1h", "0" -> milliseconds; names a bad value. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text);
  if (!m) throw new UsageError(`invalid duration "${text}" (examples: 0, 30s, 5m, 1h)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
}

export async function ipamCommand(
  ds: Datastore,
  sub: string | undefined,
  o: IpamOptions,
  io: Io,
): Promise<number> {
  const ipam = new IpamClient(ds);
  switch (sub) {
    case 'show':
      return show(ds, o, io);
    case 'check': {
      const r = await ipam.check();
      io.out(
        `Checked ${r.summary.blocks} blocks, ${r.summary.allocated} allocations, ${r.summary.handles} handles, ${r.summary.endpoints} workload endpoints.`,
      );
      for (const h of r.leakedHandles)
        io.out(`leaked: ${h.ips.join(', ')} (handle ${h.handleId}): ${h.reason}`);
      for (const a of r.allocationsWithoutHandle)
        io.out(`no handle record: ${a.ip} (handle ${a.handleId ?? 'none'})`);
      for (const m of r.handleMismatches)
        io.out(
          `handle ${m.handleId} counts ${m.counted} in ${m.block}, the block holds ${m.found}`,
        );
      for (const e of r.endpointsWithoutAllocation)
        io.out(
          `endpoint ${e.endpoint} uses ${e.ip}, ${e.heldBy ? `held by handle ${e.heldBy}` : 'not allocated'}`,
        );
      for (const a of r.orphanAffinities) io.out(`affinity of deleted node ${a.node} to ${a.cidr}`);
      const clean = isClean(r);
      io.out(
        clean
          ? 'No problems found.'
          : 'Problems found: run "tortiectl ipam gc" to release leaked addresses.',
      );
      return clean ? 0 : 1;
    }
    case 'release': {
      if (!o.ip?.length) throw new UsageError('ipam release needs --ip ADDRESS (repeatable)');
      for (const ip of o.ip) parseIp(ip);
      const released = await ipam.releaseIps(o.ip);
      for (const ip of o.ip)
        io.out(released.includes(ip) ? `released ${ip}` : `${ip} was not allocated`);
      return 0;
    }
    case 'gc': {
      const r = await ipam.gc({ gracePeriodMs: parseDuration(o.gracePeriod ?? '60s') });
      io.out(
        `released ${r.releasedIps.length} addresses (${r.releasedHandles.length} handles) and ${r.releasedAffinities.length} block affinities of deleted nodes`,
      );
      for (const ip of r.releasedIps) io.out(`  ${ip}`);
      return 0;
    }
    default:
      throw new UsageError(
        'usage: tortiectl ipam show [--show-blocks] | check | release --ip IP | gc [--grace-period 60s]',
      );
  }
}

async function show(ds: Datastore, o: IpamOptions, io: Io): Promise<number> {
  const pools = (await ds.list({ kind: 'IPPool' })).items as Resource<'IPPool'>[];
  const all = (await ds.list({ kind: 'IPAMBlock' })).items as Resource<'IPAMBlock'>[];
  const rows = [['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE', 'AFFINITY']];
  for (const p of pools.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const cidr = parseCidr(p.spec.cidr);
    const mine = all.filter((b) => containsCidr(cidr, parseCidr(b.spec.cidr)));
    const total = size(cidr);
    const used = BigInt(mine.reduce((n, b) => n + blocks.allocationsOf(b.spec).length, 0));
    rows.push([
      'IP Pool',
      p.spec.cidr,
      String(total),
      pct(used, total),
      pct(total - used, total),
      '',
    ]);
    if (!o.showBlocks) continue;
    for (const b of mine.sort((x, y) => x.spec.cidr.localeCompare(y.spec.cidr))) {
      const bt = BigInt(b.spec.allocations.length);
      const bu = BigInt(blocks.allocationsOf(b.spec).length);
      rows.push([
        'Block',
        b.spec.cidr,
        String(bt),
        pct(bu, bt),
        pct(bt - bu, bt),
        b.spec.affinity ?? '',
      ]);
    }
  }
  io.out(table(rows));
  return 0;
}
