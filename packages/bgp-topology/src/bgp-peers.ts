// The sessions BGPPeer resources give one node in one family, in confd's order
// (confd/pkg/backends/calico/client.go updatePeersV1, then bgp_processor.go
// buildPeerFromData): global BGPPeers (no node, no nodeSelector) first, then those for
// this node (node or nodeSelector), then the reverse peerings (nodes whose BGPPeer
// picks this node, by peerSelector or by peerIP). A session is keyed by address and
// port; the first one of a key wins, so an explicit peering is never replaced by a
// reverse one. BGPPeers are taken in name order (confd's map order is random).
import type { Resource } from '@tortie/api';
import { matches, parseSelector } from '@tortie/policy';
import { canonicalIp, familyOf, splitPeerIp } from './address';
import { asnOf, ipOf, waitsFor, type PeerContext } from './context';
import { filterRules } from './filters';
import { DEFAULT_RESTART_S, bfdTiming, keepaliveSeconds, restartSeconds } from './settings';
import type { BgpNode, BgpPeer } from './types';

type Peer = Resource<'BGPPeer'>;

const selects = (text: string | undefined, labels: Record<string, string>) =>
  text === undefined || matches(parseSelector(text), labels);

const isGlobal = (p: Peer) => p.spec.node === undefined && p.spec.nodeSelector === undefined;

/** The nodes a BGPPeer configures (its "local" side: node, nodeSelector, else all). */
const appliesTo = (p: Peer, n: BgpNode) =>
  p.spec.node !== undefined ? p.spec.node === n.name : selects(p.spec.nodeSelector, n.labels);

export function bgpPeerSessions(c: PeerContext, peers: Peer[]): BgpPeer[] {
  const sorted = [...peers].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const out: BgpPeer[] = [];
  for (const global of [true, false]) {
    for (const p of sorted) {
      if (isGlobal(p) !== global || !appliesTo(p, c.me)) continue;
      const scope = global ? 'global' : 'node';
      if (p.spec.peerSelector !== undefined) {
        const sel = parseSelector(p.spec.peerSelector);
        for (const n of c.nodes) if (matches(sel, n.labels)) push(out, nodePeer(c, p, n, scope));
      } else if (p.spec.peerIP !== undefined) {
        push(out, ipPeer(c, p, scope));
      }
    }
  }
  for (const p of sorted) {
    if (!reversedTo(c, p)) continue;
    for (const n of c.nodes) if (appliesTo(p, n)) push(out, nodePeer(c, p, n, 'node'));
  }
  return out;
}

function push(out: BgpPeer[], p: BgpPeer | undefined): void {
  if (p) out.push(p);
}

/**
 * What every session of a BGPPeer shares (setPeerConfigFieldsFromV3Resource and co);
 * `localAsn` is the AS we are on it (a peerIP BGPPeer's localASNumber, else the node's).
 */
function shared(c: PeerContext, p: Peer, asNumber: number, localAsn = c.myAsn) {
  const s = p.spec;
  const bfd = bfdTiming(c.settings.bfd, s.bfd);
  return {
    ...(bfd ? { bfd } : {}),
    // confd renders `source address <node IP>` for UseNodeIP, the default, and nothing for None
    ...(s.sourceAddress !== 'None' ? { sourceAddress: c.myIp } : {}),
    ...(s.ttlSecurity ? { ttlSecurity: s.ttlSecurity } : {}),
    ...(s.password ? { password: s.password.secretKeyRef } : {}),
    ...nextHopOf(s, asNumber !== localAsn),
    ...(s.numAllowedLocalASNumbers ? { allowOwnAs: s.numAllowedLocalASNumbers } : {}),
    ...filterRules(c, s.filters),
    ...(s.keepaliveTime ? { keepaliveS: keepaliveSeconds(s.keepaliveTime) } : {}),
    restartTimeS:
      s.maxRestartTime !== undefined ? restartSeconds(s.maxRestartTime) : DEFAULT_RESTART_S,
  };
}

/**
 * A BGPPeer's reachableBy for a session in the context's family: undefined when it has
 * none, null when it is not an address of that family (confd drops such a peer).
 */
function gatewayOf(c: PeerContext, p: Peer): string | undefined | null {
  const rb = p.spec.reachableBy || undefined;
  if (rb === undefined) return undefined;
  const via = canonicalIp(rb);
  return via && familyOf(via) === c.family ? via : null;
}

/** A session to a node (peerSelector, and reverse peerings): its address, port and AS. */
function nodePeer(c: PeerContext, p: Peer, n: BgpNode, scope: string): BgpPeer | undefined {
  const address = ipOf(n, c.family);
  if (!address || address === c.myIp) return undefined;
  // confd's nodeAsBGPPeers copies reachableBy onto these sessions too: the reverse
  // peerings of a peerIP BGPPeer (the API refuses it beside peerSelector); one of the
  // other family would be no route at all, so it is left out
  const via = gatewayOf(c, p);
  const asNumber = asnOf(c, n);
  // the reflector role shows in the name, so `tortiectl node status` can say so
  const rr = c.myCluster !== undefined || n.rrClusterId !== undefined;
  return {
    name: rr ? `rr-${address}` : `${scope}-${p.metadata.name}-${n.name}`,
    address,
    port: c.settings.listenPort(n.name),
    asNumber,
    // a reflector's iBGP peers outside its cluster are its clients
    ...(c.myCluster !== undefined && asNumber === c.myAsn && n.rrClusterId !== c.myCluster
      ? { rrClient: true }
      : {}),
    ...(via ? { reachableBy: via } : {}),
    ...shared(c, p, asNumber),
  };
}

/** A session to a BGPPeer's peerIP. */
function ipPeer(c: PeerContext, p: Peer, scope: string): BgpPeer | undefined {
  const { address: text, port } = splitPeerIp(p.spec.peerIP!);
  const address = canonicalIp(text);
  if (!address || familyOf(address) !== c.family || address === c.myIp) return undefined;
  // no asNumber (or 0, Calico's unset): the cluster's, as confd matches such a peer to nodes
  const asNumber = p.spec.asNumber || c.settings.asNumber;
  // no port: the listen port of the node at that address (the first by name), if any
  const node = port === undefined ? nodesAt(c, address, asNumber, undefined)[0] : undefined;
  const calicoNode = c.nodes.some((n) => n.ip === address || n.ipv6 === address);
  const localAsn = p.spec.localASNumber;
  // confd drops a peer whose reachableBy is not an address of the peerIP's family
  const via = gatewayOf(c, p);
  if (via === null) return undefined;
  return {
    name: `${scope}-${p.metadata.name}`,
    address,
    port: port ?? (node ? c.settings.listenPort(node.name) : 179),
    asNumber,
    // the mesh rule, for global peers that are nodes (peerSelector ones never are)
    ...(scope === 'global' && calicoNode && waitsFor(c.myIp, address) ? { passive: true } : {}),
    // confd makes every iBGP peer of a reflector that is not a node of its cluster a
    // client; a peerIP carries no cluster, so it is a client
    ...(c.myCluster !== undefined && asNumber === c.myAsn ? { rrClient: true } : {}),
    // confd takes localASNumber from peerIP BGPPeers only (client.go updatePeersV1)
    ...(localAsn !== undefined ? { localAsNumber: localAsn } : {}),
    ...(via ? { reachableBy: via } : {}),
    ...shared(c, p, asNumber, localAsn),
  };
}

/**
 * confd's nodesWithIPPortAndAS: the nodes at `address` in AS `asNumber`, and listening
 * on `port` when one is given. (confd also skips a node whose own port matches when the
 * default's differs, by an else-if; here a node's own port, when set, decides.)
 */
function nodesAt(c: PeerContext, address: string, asNumber: number, port: number | undefined) {
  return c.nodes.filter((n) => {
    if (n.ip !== address && n.ipv6 !== address) return false;
    if (asnOf(c, n) !== asNumber) return false;
    const listens = c.settings.configuredPort(n.name);
    return port === undefined || listens === undefined || listens === port;
  });
}

/** Whether this node is the far end of a BGPPeer, and so peers back (reversePeering Auto). */
function reversedTo(c: PeerContext, p: Peer): boolean {
  const s = p.spec;
  // Manual: the selected nodes peer back only through a BGPPeer of their own
  if (s.reversePeering === 'Manual') return false;
  if (s.peerSelector !== undefined) return matches(parseSelector(s.peerSelector), c.me.labels);
  if (s.peerIP === undefined) return false;
  // by peerIP: only in the peerIP's family
  const { address: text, port } = splitPeerIp(s.peerIP);
  const address = canonicalIp(text);
  if (!address || familyOf(address) !== c.family) return false;
  const asNumber = s.asNumber || c.settings.asNumber;
  return nodesAt(c, address, asNumber, port).some((n) => n.name === c.me.name);
}

/**
 * confd's next hop rule (bgp_processor.go): nextHopMode Self or Keep for any peer; else
 * the legacy keepOriginalNextHop, which only means something towards eBGP peers.
 */
function nextHopOf(s: Peer['spec'], ebgp: boolean): Partial<BgpPeer> {
  if (s.nextHopMode === 'Self') return { nextHopSelf: true };
  if (s.nextHopMode === 'Keep') return { keepOriginalNextHop: true };
  if (s.nextHopMode === undefined && s.keepOriginalNextHop && ebgp)
    return { keepOriginalNextHop: true };
  return {};
}
