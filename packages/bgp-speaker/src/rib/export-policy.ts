// What a peer is sent for a best path (RFC 4271 §5.1 and §9.1.3, RFC 1997, RFC 4456
// §8): whether the peer may receive it (split horizon, reflection, well-known
// communities) and the attributes rewritten on the way out. Pure: same path and peer,
// same answer.
import {
  AsPathSegmentType,
  type AsPathSegment,
  type PathAttributes,
  type UnknownAttribute,
} from '../types';
import { inIpv4Subnet } from '../prefix';
import { DEFAULT_LOCAL_PREF } from './decision';
import type { LocalIdentity, Path, PeerInfo, ReflectRule } from './types';

export const NO_EXPORT = 0xffffff01;
export const NO_ADVERTISE = 0xffffff02;
export const NO_EXPORT_SUBCONFED = 0xffffff03;

const FLAG_TRANSITIVE = 0x40;
const FLAG_PARTIAL = 0x20;

/** RFC 4456 §6 default: a reflector reflects client routes to all, others' routes to clients. */
export function defaultReflectRule(local: LocalIdentity): ReflectRule {
  return (from, to) => local.clusterId !== undefined && (!!from.rrClient || !!to.rrClient);
}

function prepend(asn: number, path: readonly AsPathSegment[]): AsPathSegment[] {
  const [first, ...rest] = path;
  if (first && first.type === AsPathSegmentType.AS_SEQUENCE && first.asns.length < 255)
    return [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [asn, ...first.asns] }, ...rest];
  return [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [asn] }, ...path];
}

/**
 * Unrecognised attributes passed on: optional transitive ones only, marked Partial
 * (RFC 4271 §5); non-transitive ones are not ours to forward.
 */
function passOn(unknown: readonly UnknownAttribute[] | undefined): UnknownAttribute[] | undefined {
  if (!unknown) return undefined;
  const out = unknown
    .filter((u) => u.flags & FLAG_TRANSITIVE)
    .map((u) => ({ ...u, flags: u.flags | FLAG_PARTIAL }));
  return out.length ? out : undefined;
}

/**
 * The attributes `to` gets for `path` (a best path of a prefix of family `v6`), or
 * undefined when it must not be sent to `to` at all.
 */
export function exportAttributes(
  path: Path,
  to: PeerInfo,
  local: LocalIdentity,
  v6: boolean,
  reflect: ReflectRule = defaultReflectRule(local),
): PathAttributes | undefined {
  if (path.peer && path.peer.id === to.id) return undefined; // never back to where it came from
  return policyExport(path, to, local, v6, reflect);
}

/**
 * What `exportAttributes` reads of the receiving peer, as a key: peers with equal keys
 * get equal exports of every path, except that none gets a path back from itself. Keep
 * it in step with policyExport() and defaultReflectRule().
 */
export function exportPolicyKey(to: PeerInfo): string {
  return JSON.stringify([
    to.ibgp,
    to.localAsn,
    !!to.rrClient,
    !!to.nextHopSelf,
    !!to.nextHopKeep,
    to.localAddress.ipv4,
    to.localAddress.ipv6,
    to.sharedSubnet,
    to.exportFilter ?? null,
  ]);
}

/**
 * exportAttributes() without the check that `to` is not the path's source: the export
 * for every peer with `to`'s policy key. Update groups apply that check per member.
 */
export function policyExport(
  path: Path,
  to: PeerInfo,
  local: LocalIdentity,
  v6: boolean,
  reflect: ReflectRule = defaultReflectRule(local),
): PathAttributes | undefined {
  const from = path.peer;
  const a = path.attrs;
  const communities = a.communities;
  if (communities?.includes(NO_ADVERTISE)) return undefined;
  const ourNextHop = v6 ? to.localAddress.ipv6 : to.localAddress.ipv4;
  const unknown = from ? passOn(a.unknown) : a.unknown;
  if (!to.ibgp) {
    if (communities?.includes(NO_EXPORT) || communities?.includes(NO_EXPORT_SUBCONFED))
      return undefined;
    if (!ourNextHop) return undefined; // no address of ours in this family to put as next hop
    const thirdParty =
      !v6 && from?.ibgp && a.nextHop && to.sharedSubnet && inIpv4Subnet(a.nextHop, to.sharedSubnet);
    // `next hop keep`: the original next hop, wherever it is (locally originated: ours)
    const keep = !!to.nextHopKeep && !!from && !!a.nextHop;
    return {
      origin: a.origin,
      asPath: prepend(to.localAsn, a.asPath),
      nextHop: keep || thirdParty ? a.nextHop : ourNextHop,
      ...(keep && a.nextHopLinkLocal ? { nextHopLinkLocal: a.nextHopLinkLocal } : {}),
      // MED is not passed between ASes, except the one we set on our own routes
      med: from ? undefined : a.med,
      atomicAggregate: a.atomicAggregate,
      aggregator: a.aggregator,
      communities,
      largeCommunities: a.largeCommunities,
      unknown,
    };
  }
  const reflected = !!from && from.ibgp;
  // iBGP split horizon, relaxed by route reflection (RFC 4456 §6)
  if (reflected && !reflect(from, to)) return undefined;
  const nextHop = to.nextHopSelf || !a.nextHop ? ourNextHop : a.nextHop;
  if (!nextHop) return undefined;
  const out: PathAttributes = {
    ...a,
    nextHop,
    nextHopLinkLocal: nextHop === a.nextHop ? a.nextHopLinkLocal : undefined,
    localPref: a.localPref ?? DEFAULT_LOCAL_PREF,
    unknown,
  };
  if (reflected) {
    out.originatorId = a.originatorId ?? from.routerId;
    out.clusterList = [local.clusterId ?? local.routerId, ...(a.clusterList ?? [])];
  }
  return out;
}
