// Removing what the ACL dataplane not in use left behind, as Felix does when it switches
// between iptables and nftables (its cleanup tables and IP sets):
//   - on nftables: tortie's chains and their hooks in every iptables table of both
//     backends (iptables-nft's tables in nftables, and iptables-legacy's when this
//     namespace has any: reading them would otherwise load the legacy modules), then
//     tortie's IP sets (once no rule uses them);
//   - on iptables: the `inet tortie` table (everything the nftables dataplane made), and
//     tortie's chains and hooks in the other iptables backend (legacy when iptables-nft is
//     in use and the reverse, as Felix's legacy and iptables-nft cleanup tables); the IP
//     sets stay, as both backends use the same ones.
// Stale rules of the other dataplane would keep enforcing an old policy beside the new
// one (a packet must pass both), so this runs after the chosen dataplane's first write
// and again at each resync. Foreign chains, rules and sets are never touched.
import { runCommand, type Exec } from './acl/exec';
import {
  argvPrefix,
  iptablesBinaries,
  lastLines,
  ProcessIptablesRunner,
  splitTables,
  type Backend,
} from './acl/iptables-runner';
import { CHAIN_PREFIX, isTortieIpset, type Family } from './acl/names';
import { parseSave, planRestore } from './acl/restore-plan';
import { TABLE_REF } from './nft-acl/names';

export interface CleanupOptions {
  netns?: string;
  prefix?: string[];
  exec?: Exec;
}

/** What one pass removed, one line per table or object kind (empty: nothing was there). */
export type Removed = string[];

const LEGACY_NAMES: Record<Family, string> = {
  4: '/proc/net/ip_tables_names',
  6: '/proc/net/ip6_tables_names',
};

async function tryExec(exec: Exec, argv: string[], input?: string) {
  try {
    return await exec(argv, input);
  } catch (e) {
    return { code: 127, stdout: '', stderr: (e as Error).message };
  }
}

export interface IptablesCleanup extends CleanupOptions {
  /** the backends swept (default both) */
  backends?: Backend[];
  /** also destroy tortie's IP sets (default true: not while an iptables backend uses them) */
  ipsets?: boolean;
}

/** tortie's chains, hooks and IP sets in iptables and ipset, removed. */
export async function removeIptablesState(o: IptablesCleanup = {}): Promise<Removed> {
  const exec = o.exec ?? runCommand;
  const prefix = argvPrefix(o);
  const removed: Removed = [];
  const errors: string[] = [];
  for (const backend of o.backends ?? (['nft', 'legacy'] as Backend[]))
    for (const family of [4, 6] as Family[]) {
      if (backend === 'legacy') {
        // no legacy table in this namespace: nothing of ours, and iptables-legacy-save
        // would create them (and load the xtables modules)
        const names = await tryExec(exec, [...prefix, 'cat', LEGACY_NAMES[family]]);
        if (names.code !== 0 || !names.stdout.trim()) continue;
      }
      const bins = iptablesBinaries(backend, family);
      const save = await tryExec(exec, [...prefix, bins.save]);
      if (save.code !== 0) {
        // a missing binary holds nothing of ours; any other failure is reported
        if (save.code !== 127 && !/ENOENT|not found/.test(save.stderr))
          errors.push(`${bins.save} failed (exit ${save.code}): ${lastLines(save.stderr)}`);
        continue;
      }
      const runner = new ProcessIptablesRunner({ backend, family, prefix }, exec);
      for (const [table, text] of splitTables(save.stdout)) {
        const state = parseSave(text);
        const plan = planRestore(table, new Map(), state, []);
        if (!plan.chunks) continue;
        const hooks = [...state.others.values()]
          .flat()
          .filter((r) => r.target?.startsWith(CHAIN_PREFIX)).length;
        try {
          await runner.restore(table, plan.chunks());
          removed.push(
            `iptables-${backend} ${family === 4 ? 'ipv4' : 'ipv6'} ${table}: ${plan.deleted.length} chains, ${hooks} hooks`,
          );
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
    }
  const list =
    o.ipsets === false ? undefined : await tryExec(exec, [...prefix, 'ipset', 'list', '-n']);
  const sets = list?.code === 0 ? list.stdout.split('\n').filter(isTortieIpset) : [];
  if (sets.length) {
    const r = await tryExec(
      exec,
      [...prefix, 'ipset', 'restore'],
      sets.map((s) => `destroy ${s}\n`).join(''),
    );
    if (r.code === 0) removed.push(`ipset: ${sets.length} sets`);
    else errors.push(`ipset restore (destroy) failed (exit ${r.code}): ${lastLines(r.stderr)}`);
  }
  if (errors.length) throw new Error(errors.join('; '));
  return removed;
}

/** What the iptables backend not in use holds of tortie's (chains and hooks; not the IP sets). */
export function removeOtherIptablesBackend(
  inUse: Backend,
  o: CleanupOptions = {},
): Promise<Removed> {
  return removeIptablesState({
    ...o,
    backends: [inUse === 'nft' ? 'legacy' : 'nft'],
    ipsets: false,
  });
}

/** The nftables ACL dataplane's table (`inet tortie`), deleted if it exists. */
export async function removeNftAclState(o: CleanupOptions = {}): Promise<Removed> {
  const exec = o.exec ?? runCommand;
  const prefix = argvPrefix(o);
  const list = await tryExec(exec, [...prefix, 'nft', 'list', 'tables']);
  // no nft here: nothing can have made the table
  if (list.code === 127 || /ENOENT/.test(list.stderr)) return [];
  if (list.code !== 0)
    throw new Error(`nft list tables failed (exit ${list.code}): ${lastLines(list.stderr)}`);
  if (!list.stdout.split('\n').some((l) => l.trim() === `table ${TABLE_REF}`)) return [];
  const r = await tryExec(exec, [...prefix, 'nft', 'delete', 'table', ...TABLE_REF.split(' ')]);
  if (r.code !== 0)
    throw new Error(
      `nft delete table ${TABLE_REF} failed (exit ${r.code}): ${lastLines(r.stderr)}`,
    );
  return [`nftables: table ${TABLE_REF}`];
}
