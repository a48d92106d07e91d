// Which ACL dataplane FelixConfiguration nftablesMode resolves to on this host, as Felix's
// nftables.Enabled(): Enabled -> nftables, Disabled -> iptables, Auto -> follow kube-proxy
// (nftables when kube-proxy runs in nftables mode, i.e. its `ip kube-proxy` or
// `ip6 kube-proxy` table has chains; iptables otherwise), so that the two use the same
// netfilter generation. tortie adds one limit on top: an nft that is missing or too old
// means iptables. Host endpoints are programmed by both dataplanes, so they do not decide.
// The decision is pure; the detection reads the kernel through `nft`.
import type { ToolResult } from '@tortie/exec';
import { runCommand, type Exec } from './acl/exec';
import { argvPrefix, lastLines } from './acl/iptables-runner';

export type NftablesMode = 'Enabled' | 'Disabled' | 'Auto';

/** What kube-proxy's nftables tables say (Auto), or why they could not be read. */
export interface KubeProxyMode {
  nftables: boolean;
  /** e.g. "table ip kube-proxy has 12 chains", "no ip or ip6 kube-proxy table" */
  detail: string;
}

export interface NftFacts {
  /** Auto only: kube-proxy's mode, or the error reading it */
  kubeProxy?: KubeProxyMode | Error;
  /** why nft cannot be used here (missing, too old), or undefined */
  nftProblem?: string;
}

export interface NftDecision {
  nftables: boolean;
  /** One sentence for the log: why this dataplane. */
  reason: string;
  /** nftables was asked for (Enabled, or Auto following kube-proxy) but cannot be used */
  fallback?: string;
}

/** Which facts `decideNftables` needs for a mode (Auto: kube-proxy's mode first). */
export const needsKubeProxy = (mode: NftablesMode) => mode === 'Auto';

export function decideNftables(mode: NftablesMode, facts: NftFacts): NftDecision {
  let wanted: string;
  if (mode === 'Disabled') return { nftables: false, reason: 'nftablesMode is Disabled' };
  if (mode === 'Enabled') wanted = 'nftablesMode is Enabled';
  else {
    const kp = facts.kubeProxy;
    if (kp === undefined || kp instanceof Error)
      return {
        nftables: false,
        reason: `nftablesMode is Auto and kube-proxy's mode could not be read (${kp?.message ?? 'not checked'}): iptables`,
      };
    if (!kp.nftables)
      return {
        nftables: false,
        reason: `nftablesMode is Auto and kube-proxy is not in nftables mode (${kp.detail})`,
      };
    wanted = `nftablesMode is Auto and kube-proxy runs in nftables mode (${kp.detail})`;
  }
  const problem = facts.nftProblem;
  if (problem) return { nftables: false, reason: `${wanted}, but ${problem}`, fallback: problem };
  return { nftables: true, reason: wanted };
}

/** How many chains `nft list table <family> kube-proxy` shows; undefined: no such table. */
export function kubeProxyChains(r: ToolResult, family: 'ip' | 'ip6'): number | undefined {
  if (r.code !== 0) {
    if (/No such file or directory/.test(r.stderr)) return undefined;
    throw new Error(`nft list table ${family} kube-proxy failed: ${lastLines(r.stderr)}`);
  }
  return r.stdout.split('\n').filter((l) => /^\s*chain /.test(l)).length;
}

/**
 * Felix's KubeProxyNftablesEnabledFn: kube-proxy is in nftables mode when its
 * `ip kube-proxy` (else `ip6 kube-proxy`) table has chains. One `nft list tables` first,
 * so a host without the tables costs one process. Rejects when nft fails otherwise than
 * with "no such table".
 */
export async function detectKubeProxyNftables(
  opts: { netns?: string; prefix?: string[] } = {},
  exec: Exec = runCommand,
): Promise<KubeProxyMode> {
  const prefix = argvPrefix(opts);
  const tables = await exec([...prefix, 'nft', 'list', 'tables']);
  if (tables.code !== 0)
    throw new Error(`nft list tables failed (exit ${tables.code}): ${lastLines(tables.stderr)}`);
  const present = new Set(tables.stdout.split('\n').map((l) => l.trim()));
  const seen: string[] = [];
  for (const family of ['ip', 'ip6'] as const) {
    if (!present.has(`table ${family} kube-proxy`)) continue;
    const r = await exec([...prefix, 'nft', 'list', 'table', family, 'kube-proxy']);
    const n = kubeProxyChains(r, family);
    if (n === undefined) continue;
    if (n > 0) return { nftables: true, detail: `table ${family} kube-proxy has ${n} chains` };
    seen.push(`table ${family} kube-proxy has no chains`);
  }
  return { nftables: false, detail: seen.join(', ') || 'no ip or ip6 kube-proxy table' };
}
