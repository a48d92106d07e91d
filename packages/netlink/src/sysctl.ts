// Sysctls without a `sysctl` process: /proc/sys values written by this process, in this
// network namespace or in another one. /proc/sys/net follows the namespace of the thread
// that opens the file, so for another namespace the addon enters it on this thread,
// writes, and comes straight back (as it opens netlink sockets there).
import fs from 'node:fs';
import { loadAddon } from './addon';
import { errnoCode, errnoText } from './errors';
import { netnsPath } from './rtnl';

/** A /proc/sys file and the value to write to it. */
export type SysctlEntry = [path: string, value: string];

/** A sysctl that could not be written: its name, the value, where, and the errno. */
export class SysctlError extends Error {
  readonly code: string;
  constructor(
    /** Dotted, as `sysctl` names it: net.ipv4.conf.cali1.proxy_arp. */
    readonly sysctl: string,
    readonly value: string,
    readonly where: string,
    readonly errno: number,
  ) {
    super(`sysctl ${sysctl}=${value}${where ? ` in ${where}` : ''}: ${errnoText(errno)}`);
    this.name = 'SysctlError';
    this.code = errnoCode(errno);
  }
}

/** `/proc/sys/net/ipv4/conf/eth0.100/rp_filter` -> `net.ipv4.conf.eth0/100.rp_filter`, as sysctl(8). */
export function sysctlName(path: string): string {
  return path
    .replace(/^\/proc\/sys\//, '')
    .split('/')
    .map((s) => s.replace(/\./g, '/'))
    .join('.');
}

function checkPath(path: string): void {
  if (!path.startsWith('/proc/sys/') || path.split('/').includes('..'))
    throw new RangeError(`sysctl path must be under /proc/sys/: ${JSON.stringify(path)}`);
}

/**
 * Writes every entry in this namespace (`netns` undefined) or in `netns` (a name under
 * /var/run/netns or a path); per entry undefined or a SysctlError naming it. One failing
 * entry does not stop the others. Throws when the namespace cannot be entered (or, for
 * another namespace, when the addon is not built).
 */
export function writeSysctls(
  netns: string | undefined,
  entries: readonly SysctlEntry[],
): Array<SysctlError | undefined> {
  for (const [p] of entries) checkPath(p);
  const where = netns === undefined ? '' : netnsPath(netns);
  const fail = (i: number, errno: number) =>
    new SysctlError(sysctlName(entries[i][0]), entries[i][1], where, errno);
  const { addon, reason } = loadAddon();
  if (netns === undefined && !addon) {
    // this namespace needs no setns: plain writes (the addon is only faster in bulk)
    return entries.map(([p, v], i) => {
      try {
        fs.writeFileSync(p, v);
        return undefined;
      } catch (e) {
        return fail(i, -((e as NodeJS.ErrnoException).errno ?? -5));
      }
    });
  }
  if (!addon) throw new Error(`sysctls in ${where}: netlink addon unavailable: ${reason}`);
  let nsFd = -1;
  if (netns !== undefined) {
    try {
      nsFd = fs.openSync(where, 'r');
    } catch (e) {
      throw new Error(`sysctls: cannot open network namespace ${where}: ${(e as Error).message}`);
    }
  }
  try {
    const errs = addon.sysctl(
      nsFd,
      entries.map((e) => e[0]),
      entries.map((e) => e[1]),
    );
    return entries.map((_, i) => (errs[i] ? fail(i, errs[i]) : undefined));
  } catch (e) {
    throw new Error(`sysctls in ${where || 'this namespace'}: ${(e as Error).message}`);
  } finally {
    if (nsFd >= 0) fs.closeSync(nsFd);
  }
}

/** writeSysctls, the first failure thrown. */
export function mustWriteSysctls(netns: string | undefined, entries: readonly SysctlEntry[]): void {
  const bad = writeSysctls(netns, entries).find((e) => e);
  if (bad) throw bad;
}
