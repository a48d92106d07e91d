// Names of the objects in tortie's nftables table (`inet tortie`). nft identifiers take
// letters, digits, "_", "-" and "."; an id with other characters (the calculation graph's
// "s:app", policy ids with "/") keeps a readable form plus a hash, so two ids never meet.
import { memo, shortHash, type Family } from '../acl/names';

export const TABLE = 'tortie';
export const TABLE_REF = `inet ${TABLE}`;

/** nft names may be longer than iptables chain names; this keeps listings readable. */
const MAX_NAME = 64;
const SAFE = /^[A-Za-z0-9_.-]+$/;

function named(prefix: string, id: string): string {
  if (SAFE.test(id) && prefix.length + id.length <= MAX_NAME) return prefix + id;
  const readable = id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, MAX_NAME - prefix.length - 12);
  return `${prefix}${readable}-${shortHash(id, 10)}`;
}

export const nftChain = {
  policyIn: memo((id) => named('pi-', id)),
  policyOut: memo((id) => named('po-', id)),
  profileIn: memo((id) => named('pri-', id)),
  profileOut: memo((id) => named('pro-', id)),
};

/** A calculation-graph IP set of one family: s4-<id> / s6-<id>. */
export const nftSetName = (id: string, family: Family) => named(`s${family}-`, id);

/** Sets tortie itself keeps (pools, all hosts): t4-<name>. */
export const internalSetName = (name: string, family: Family) => `t${family}-${name}`;

/** Verdict maps: interface name -> jump to the endpoint chain. */
export const MAPS = { toWorkload: 'to-wl', fromWorkload: 'from-wl' } as const;

/**
 * Host endpoint verdict maps: interface name -> jump (filter stages) or goto (raw and
 * pre-DNAT stages) to the endpoint chain. A "*" host endpoint is not in them: its chain
 * is tried after the map, as Felix tries it last.
 */
export const HEP_MAPS = {
  from: 'from-hep',
  to: 'to-hep',
  fromFwd: 'from-hep-fwd',
  toFwd: 'to-hep-fwd',
  rawFrom: 'raw-from-hep',
  rawTo: 'raw-to-hep',
  preDnatFrom: 'predn-from-hep',
} as const;

/** The named interfaces of every host endpoint (so dispatch knows the map matched). */
export const HEP_IFACES = 'hep-ifaces';

export const BASE = {
  output: 'output',
  preDnat: 'predn-prerouting',
  fromHep: 'from-hep-dispatch',
  toHep: 'to-hep-dispatch',
  fromHepFwd: 'from-hep-fwd-dispatch',
  toHepFwd: 'to-hep-fwd-dispatch',
  rawFromHep: 'raw-from-hep-dispatch',
  rawToHep: 'raw-to-hep-dispatch',
  preDnatFromHep: 'predn-from-hep-dispatch',
  failsafeIn: 'failsafe-in',
  failsafeOut: 'failsafe-out',
  rawFailsafeIn: 'raw-failsafe-in',
  rawFailsafeOut: 'raw-failsafe-out',
  forward: 'forward',
  input: 'input',
  wlToHost: 'wl-to-host',
  rawPrerouting: 'raw-prerouting',
  rawOutput: 'raw-output',
  natPostrouting: 'nat-postrouting',
} as const;
