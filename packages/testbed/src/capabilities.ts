// What this machine can run for real-component tests; tests skip with a one-line
// reason when something is missing (CI installs everything, so nothing skips there:
// under CI=true a skip fails, see jest.ts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { vmMissing } from './vm';

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
  | 'ipip'
  /** the kernel can open SCTP sockets (this machine's cannot: no sctp module) */
  | 'sctp'
  /** the testbed's VM runner works: QEMU, a Debian kernel, busybox-static, kmod */
  | 'vm'
  /** tcpdump, for tests that observe packets on the wire */
  | 'tcpdump'
  /** nft (Debian nftables), for the service dataplane */
  | 'nft'
  /** the conntrack tool (Debian conntrack): the service proxy's stale UDP flows */
  | 'conntrack'
  /** runc and umoci (Debian), to build and run the tortie/node image */
  | 'runc'
  /** kubectl, to parse the manifests as the Kubernetes types they claim to be */
  | 'kubectl'
  /** Debian's chromium, which playwright-core drives for the lab's web page */
  | 'chromium';

const BINARIES: Record<Exclude<Need, 'root' | 'netns' | 'ipip' | 'sctp' | 'vm'>, string[]> = {
  bird: ['bird', 'birdc'],
  frr: ['/usr/lib/frr/bgpd', 'vtysh'],
  gobgp: ['gobgpd', 'gobgp'],
  etcd: ['etcd'],
  iptables: ['iptables-restore'],
  ipset: ['ipset'],
  tcpdump: ['tcpdump'],
  nft: ['nft'],
  conntrack: ['conntrack'],
  runc: ['runc', 'umoci'],
  kubectl: ['kubectl'],
  chromium: ['/usr/bin/chromium'],
};

const KNOWN: Record<Need, true> = {
  ...{ root: true, netns: true, bird: true, frr: true, gobgp: true, etcd: true },
  ...{ iptables: true, ipset: true, ipip: true, sctp: true, vm: true, tcpdump: true, nft: true },
  ...{ runc: true, kubectl: true, conntrack: true, chromium: true },
};
/** Every need there is. */
export const KNOWN_NEEDS = Object.keys(KNOWN) as Need[];

function onPath(bin: string): boolean {
  if (bin.startsWith('/')) return fs.existsSync(bin);
  return (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(`${d}/${bin}`));
}

const cache = new Map<Need, string | undefined>();

/**
 * Makes an IPIP tunnel in a scratch namespace. It has its own local and remote
 * addresses: an any/any tunnel would collide with the kernel's fallback tunl0, which
 * every namespace gets once the ipip module is loaded ("File exists").
 */
function ipipMissing(): string | undefined {
  const name = `tt-ipip-${process.pid}`;
  spawnSync('ip', ['netns', 'add', name]);
  const add = spawnSync('ip', [
    ...['-n', name, 'link', 'add', 'tt-ipip0', 'type', 'ipip'],
    ...['local', '192.0.2.1', 'remote', '192.0.2.2'],
  ]);
  spawnSync('ip', ['netns', 'del', name]);
  if (add.status === 0) return undefined;
  return `the kernel cannot make IPIP tunnels (ip link add type ipip: ${add.stderr?.toString().trim()})`;
}

let python: string | undefined;

/**
 * The python3 interpreter itself (its sys.executable), resolved once per process. The
 * `python3` on PATH may be a version manager's shim: pyenv's runs ~240 processes per
 * start (0.5 s of CPU here, 10+ s under emulation), where the interpreter runs none.
 */
export function python3(): string {
  if (python) return python;
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], {
    encoding: 'utf8',
  });
  const exe = r.stdout?.trim();
  if (r.error || r.status !== 0 || !exe)
    throw new Error(
      `python3 not usable (${r.error?.message ?? (r.stderr?.trim() || 'no sys.executable')}; run scripts/install-deps.sh)`,
    );
  python = exe;
  return python;
}

/** Opens an SCTP socket with python3 (node has no SCTP API); the kernel autoloads sctp. */
function sctpMissing(): string | undefined {
  let exe: string;
  try {
    exe = python3();
  } catch (e) {
    return (e as Error).message;
  }
  const probe = spawnSync(exe, [
    '-c',
    'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132).close()',
  ]);
  if (probe.status === 0) return undefined;
  const err = probe.stderr.toString().trim().split('\n').pop();
  return `the kernel cannot open SCTP sockets (${err})`;
}

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
    if (!why) why = ipipMissing();
  } else if (need === 'sctp') {
    why = sctpMissing();
  } else if (need === 'vm') {
    why = vmMissing();
  } else {
    const absent = BINARIES[need].filter((b) => !onPath(b));
    if (absent.length) why = `${absent.join(', ')} not installed (run scripts/install-deps.sh)`;
  }
  cache.set(need, why);
  return why;
}

/** The needs of `needs` that this machine lacks. */
export function missingNeeds(needs: Need[]): Need[] {
  return [...new Set(needs)].filter((n) => missing(n) !== undefined);
}

/** One line saying why a test needing `needs` cannot run here, or undefined. */
export function skipReason(needs: Need[]): string | undefined {
  const reasons = needs.map(missing).filter((r): r is string => r !== undefined);
  return reasons.length ? [...new Set(reasons)].join('; ') : undefined;
}
