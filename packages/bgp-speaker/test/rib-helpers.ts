// Builders shared by the RIB tests (not a test file itself).
import type { Path, PeerInfo } from '../src/rib';
import type { PathAttributes } from '../src/types';

export const LOCAL_AS = 65000;
export const ROUTER_ID = '192.0.2.254';

export function peer(id: string, asn: number, extra: Partial<PeerInfo> = {}): PeerInfo {
  return {
    id,
    address: id,
    asn,
    routerId: id,
    localAsn: LOCAL_AS,
    localAddress: { ipv4: '192.0.2.254', ipv6: '2001:db8::fe' },
    ibgp: asn === LOCAL_AS,
    ...extra,
  };
}

export const attrs = (a: Partial<PathAttributes> = {}): PathAttributes => ({
  origin: 0,
  asPath: [{ type: 2, asns: [65001] }],
  nextHop: '192.0.2.1',
  ...a,
});

export const path = (p: PeerInfo | undefined, a: Partial<PathAttributes> = {}): Path => ({
  peer: p,
  attrs: attrs(a),
});
