// The node-to-node mesh of one family, as confd's processMeshPeers builds it: every
// other node with an address in the family, dialled on its own listen port, one session
// per pair (the lexically lower address waits). A route reflector does not mesh, and
// nobody meshes with a route reflector: they peer through BGPPeers.
import { asnOf, ipOf, waitsFor, type PeerContext } from './context';
import { DEFAULT_RESTART_S, bfdTiming } from './settings';
import type { BgpPeer } from './types';

export function meshPeers(c: PeerContext): BgpPeer[] {
  if (!c.settings.meshEnabled || c.myCluster !== undefined) return [];
  const out: BgpPeer[] = [];
  const bfd = bfdTiming(c.settings.bfd);
  for (const n of c.nodes) {
    const address = ipOf(n, c.family);
    if (!address || address === c.myIp || n.rrClusterId !== undefined) continue;
    out.push({
      name: `mesh-${address}`,
      address,
      port: c.settings.listenPort(n.name),
      // the peer's own AS, else the cluster's (confd at HEAD falls back to this node's
      // AS, which differs only when this node has its own AS and the peer has none:
      // then the peer speaks the cluster's AS, and that is what it must be called)
      asNumber: asnOf(c, n),
      // confd's mesh peers always have `source address <node IP>`
      sourceAddress: c.myIp,
      ...(waitsFor(c.myIp, address) ? { passive: true } : {}),
      restartTimeS: c.settings.meshRestartS ?? DEFAULT_RESTART_S,
      ...(bfd ? { bfd } : {}),
      ...(c.settings.meshPassword ? { password: c.settings.meshPassword } : {}),
    });
  }
  return out;
}
