// What a peer is sent for a best path (RFC 4271 §9.1.3/§5.1, RFC 4456 §8): who may
// receive it (split horizon, reflection) and the attributes rewritten on the way out.
// Pure: same path and peer, same answer.
import { AsPathSegmentType, type AsPathSegment, type PathAttributes } from '../types';
import { DEFAULT_LOCAL_PREF } from './decision';
import type { Path, PeerInfo } from './types';

export interface LocalIdentity {
  asn: number;
  routerId: string;
  /** Set when this speaker is a route reflector. */
  clusterId?: string;
}

function prepend(asn: number, path: AsPathSegment[]): AsPathSegment[] {
  const [first, ...rest] = path;
  if (first && first.type === AsPathSegmentType.AS_SEQUENCE && first.asns.length < 255) {
    return [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [asn, ...first.asns] }, ...rest];
  }
  return [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [asn] }, ...path];
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
): PathAttributes | undefined {
  const from = path.peer;
  if (from && from.id === to.id) return undefined; // never back to where it came from
  const a = path.attrs;
  const ourNextHop = v6 ? to.localAddress.ipv6 : to.localAddress.ipv4;
  if (!to.ibgp) {
    if (!ourNextHop) return undefined; // no address of ours to put as next hop in this family
    return {
      origin: a.origin,
      asPath: prepend(local.asn, a.asPath),
      nextHop: ourNextHop,
      // MED is not passed between ASes, except the one we set on our own routes
      med: from ? undefined : a.med,
      atomicAggregate: a.atomicAggregate,
      aggregator: a.aggregator,
      communities: a.communities,
      largeCommunities: a.largeCommunities,
      unknown: a.unknown,
    };
  }
  let reflected = false;
  if (from && from.ibgp) {
    // iBGP split horizon, relaxed by route reflection (RFC 4456 §6)
    if (!local.clusterId) return undefined;
    if (!from.rrClient && !to.rrClient) return undefined;
    reflected = true;
  }
  const nextHop = !from || to.nextHopSelf || !a.nextHop ? (ourNextHop ?? a.nextHop) : a.nextHop;
  if (!nextHop) return undefined;
  const out: PathAttributes = {
    ...a,
    nextHop,
    nextHopLinkLocal: nextHop === a.nextHop ? a.nextHopLinkLocal : undefined,
    localPref: a.localPref ?? DEFAULT_LOCAL_PREF,
  };
  if (reflected) {
    out.originatorId = a.originatorId ?? from!.routerId;
    out.clusterList = [local.clusterId!, ...(a.clusterList ?? [])];
  }
  return out;
}
