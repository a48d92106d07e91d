// Names of tortie's iptables chains and IP sets, within the kernel's limits (chain
// names <= 28 characters, IP set names <= 31) as Felix does: an id that fits and uses
// only safe characters is kept readable, anything else becomes "_" + a hash.
import { createHash } from 'node:crypto';

export const MAX_CHAIN_NAME = 28;
export const MAX_IPSET_NAME = 31;

export type Family = 4 | 6;

const SAFE_CHAIN = /^[A-Za-z0-9._-]+$/;
// ipset names may also hold ':' (the calculation graph's ids do)
const SAFE_IPSET = /^[A-Za-z0-9._:-]+$/;

/** URL-safe base64 of SHA-224 (Felix's hash for rule comments and long names). */
export function shortHash(text: string, length: number): string {
  return createHash('sha224').update(text).digest('base64url').slice(0, length);
}

/** prefix + id when it fits in maxLen and is safe, else prefix + "_" + hash of id. */
export function lengthLimited(
  prefix: string,
  id: string,
  maxLen: number,
  safe: RegExp = SAFE_CHAIN,
): string {
  if (prefix.length + id.length <= maxLen && safe.test(id) && !id.startsWith('_'))
    return prefix + id;
  const room = maxLen - prefix.length - 1;
  if (room < 8) throw new Error(`name prefix "${prefix}" leaves no room for a hash`);
  return `${prefix}_${shortHash(id, room)}`;
}

/** Names are asked for per endpoint and policy: remember them (hashing is not free). */
export function memo(f: (id: string) => string): (id: string) => string {
  const cache = new Map<string, string>();
  return (id) => {
    let n = cache.get(id);
    if (n === undefined) {
      if (cache.size > 100_000) cache.clear();
      cache.set(id, (n = f(id)));
    }
    return n;
  };
}

const chain = (prefix: string) => memo((id) => lengthLimited(prefix, id, MAX_CHAIN_NAME));

/** Chain names, one prefix per role (as Felix's cali-pi-, cali-tw-, ...). */
export const chainName = {
  policyIn: chain('tortie-pi-'),
  policyOut: chain('tortie-po-'),
  profileIn: chain('tortie-pri-'),
  profileOut: chain('tortie-pro-'),
  toWorkload: chain('tortie-tw-'),
  fromWorkload: chain('tortie-fw-'),
  toHost: chain('tortie-th-'),
  fromHost: chain('tortie-fh-'),
  toHostForward: chain('tortie-thfw-'),
  fromHostForward: chain('tortie-fhfw-'),
};

/** Policy and profile chains: what the user wrote, so what the kernel may refuse. */
export const isRulesChain = (name: string) => /^tortie-(pi|po|pri|pro)-/.test(name);

export const STATIC = {
  input: 'tortie-INPUT',
  forward: 'tortie-FORWARD',
  output: 'tortie-OUTPUT',
  /** raw and mangle PREROUTING (untracked and pre-DNAT host endpoint policy) */
  prerouting: 'tortie-PREROUTING',
  postrouting: 'tortie-POSTROUTING',
  wlToHost: 'tortie-wl-to-host',
  fromWlDispatch: 'tortie-from-wl-dispatch',
  toWlDispatch: 'tortie-to-wl-dispatch',
  fromHepDispatch: 'tortie-from-host-endpoint',
  toHepDispatch: 'tortie-to-host-endpoint',
  fromHepForwardDispatch: 'tortie-from-hep-forward',
  toHepForwardDispatch: 'tortie-to-hep-forward',
  failsafeIn: 'tortie-failsafe-in',
  failsafeOut: 'tortie-failsafe-out',
  natOutgoing: 'tortie-nat-outgoing',
} as const;

export const CHAIN_PREFIX = 'tortie-';
/** Workload interfaces, as Calico's "cali" prefix. */
export const WORKLOAD_IFACE_PREFIX = 'cali';

/** A selector/network-set IP set of the calculation graph: tortie40s:<id> / tortie60s:<id>. */
export function ipsetName(id: string, family: Family): string {
  return lengthLimited(`tortie${family}0s:`, id, MAX_IPSET_NAME, SAFE_IPSET);
}

/** Sets tortie itself maintains (pools for natOutgoing): tortie40all-ipam-pools. */
export function internalIpsetName(id: string, family: Family): string {
  return lengthLimited(`tortie${family}0`, id, MAX_IPSET_NAME, SAFE_IPSET);
}

export const ALL_POOLS_SET = 'all-ipam-pools';
export const MASQ_POOLS_SET = 'masq-ipam-pools';
/** Every node's address: who may send this node IP-in-IP or VXLAN (Felix's all-hosts-net). */
export const ALL_HOSTS_SET = 'all-hosts-net';

/** The temporary name a set is filled under before the swap: same length, "t" for "0". */
export function tempIpsetName(name: string): string {
  return `tortie${name[6]}t${name.slice(8)}`;
}

export const isTortieIpset = (name: string) => /^tortie[46][0t]/.test(name);
