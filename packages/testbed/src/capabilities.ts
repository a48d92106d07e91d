// What this machine can run for real-component tests; tests skip with a one-line
// reason when something is missing (CI installs everything, so nothing skips there).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export type Need =
  | 'root'
  | 'netns'
  | 'bird'
  | 'frr'
  | 'gobgp'
  | 'etcd'
  | 'iptables'
  | 'ipset'
  /** the kernel can make IP-in-IP tunnels (this machine's cannot: no ipip module) */
  | 'ipip';

const BINARIES: Record<Exclude<Need, 'root' | 'netns' | 'ipip'>, string[]> = {
  bird: ['bird', 'birdc'],
  frr: ['/usr/lib/frr/bgpd', 'vtysh'],
  gobgp: ['gobgpd', 'gobgp'],
  etcd: ['etcd'],
  iptables: ['iptables-restore'],
  ipset: ['ipset'],
};

function onPath(bin: string): boolean {
  if (bin.startsWith('/')) return fs.existsSync(bin);
  return (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(`${d}/${bin}`));
}

const cache = new Map<Need, string | undefined>();

/** Why `need` is not available here, or undefined when it is. */
function missing(need: Need): string | undefined {
  if (cache.has(need)) return cache.get(need);
  let why: string | undefined;
  if (need === 'root') why = process.getuid?.() === 0 ? undefined : 'not running as root';
  else if (need === 'netns') {
    why = missing('root');
    if (!why) {
      const name = `tt-probe-${process.pid}`;
      const add = spawnSync('ip', ['netns', 'add', name]);
      if (add.status !== 0)
        why = `cannot create network namespaces: ${add.stderr?.toString().trim()}`;
      else spawnSync('ip', ['netns', 'del', name]);
    }
  } else if (need === 'ipip') {
    why = missing('netns');
    if (!why) {
      const name = `tt-ipip-${process.pid}`;
      spawnSync('ip', ['netns', 'add', name]);
      const add = spawnSync('ip', ['-n', name, 'link', 'add', 'tt-ipip0', 'type', 'ipip']);
      if (add.status !== 0) {
        why = `the kernel cannot make IPIP tunnels (ip link add type ipip: ${add.stderr?.toString().trim()})`;
      }
      spawnSync('ip', ['netns', 'del', name]);
    }
  } else {
    const absent = BINARIES[need].filter((b) => !onPath(b));
    if (absent.length) why = `${absent.join(', ')} not installed (run scripts/install-deps.sh)`;
  }
  cache.set(need, why);
  return why;
}

/** One line saying why a test needing `needs` cannot run here, or undefined. */
export function skipReason(needs: Need[]): string | undefined {
  const reasons = needs.map(missing).filter((r): r is string => r !== undefined);
  return reasons.length ? [...new Set(reasons)].join('; ') : undefined;
}
