// Resources in, per-family peer sets out (address:port, AS, passive, RR client, TTL
// security, keep next hop): the sessions calico-node's confd derives from the same
// resources (confd/pkg/backends/calico/client.go updatePeersV1, bgp_processor.go).
// Addresses are picked so that string and numeric order differ: 10.0.0.10 < 10.0.0.5
// as strings.
import fc from 'fast-check';
import type { Resource } from '@tortie/api';
import { hashRouterId, speakerConfig } from '../src';
import { config, filter, node, peer, peerLines, topo } from './fixtures';

const n5 = node('n5', '10.0.0.5/24');
const n8 = node('n8', '10.0.0.8/24');
const n10 = node('n10', '10.0.0.10/24');
const meshOff = config('default', { nodeToNodeMeshEnabled: false });
// the edge node n5 picks the spine nodes (n8, in its own AS)
const edgeToSpine = [
  meshOff,
  node('n5', '10.0.0.5/24', {}, { edge: 'yes' }),
  node('n8', '10.0.0.8/24', { asNumber: 65008 }, { spine: 'yes' }),
  n10,
  peer('edge-to-spine', { nodeSelector: "edge == 'yes'", peerSelector: "spine == 'yes'" }),
];
const d9 = node('d9', ['10.0.0.9/24', 'fd00::9/64']);
const d10 = node('d10', ['10.0.0.10/24', 'fd00::10/64']);

interface Case {
  what: string;
  me: string;
  rs: Resource[];
  v4: string[];
  /** IPv6 sessions (none when left out). */
  v6?: string[];
}

const meshKey = { secretKeyRef: { name: 'bgp-secrets', key: 'mesh' } };

const cases: Case[] = [
  // ---- reachableBy (confd client.go updatePeersV1; bird_aggr.cfg's static routes) -------
  {
    what: 'reachableBy: a peerIP session carries its gateway, canonical, in its own family',
    me: 'd9',
    rs: [
      meshOff,
      d9,
      d10,
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, reachableBy: '10.0.0.254' }),
      peer('tor-port', { peerIP: '192.0.2.2:1790', asNumber: 65100, reachableBy: '10.0.0.253' }),
      peer('tor6', { peerIP: 'fd00:0::99', asNumber: 65100, node: 'd9', reachableBy: 'FD00::FE' }),
      peer('plain', { peerIP: '192.0.2.3', asNumber: 65100 }),
    ],
    v4: [
      '192.0.2.1:179 as 65100 via=10.0.0.254',
      '192.0.2.2:1790 as 65100 via=10.0.0.253',
      '192.0.2.3:179 as 65100',
    ],
    v6: ['[fd00::99]:179 as 65100 via=fd00::fe'],
  },
  {
    // confd's nodeAsBGPPeers copies reachableBy onto the sessions the node at the peerIP
    // makes back (reverse peering): bird_aggr.cfg renders `route 10.0.0.9/32 via 10.0.0.1`
    what: 'reachableBy: the node at the peerIP peers back through the same gateway',
    me: 'd10',
    rs: [
      meshOff,
      d9,
      d10,
      peer('to-d10', { node: 'd9', peerIP: '10.0.0.10', asNumber: 64512, reachableBy: '10.0.0.1' }),
    ],
    v4: ['10.0.0.9:179 as 64512 via=10.0.0.1'],
  },
  // ---- nextHopMode and reversePeering (confd: bgp_processor.go, client.go) -------------
  {
    what: 'nextHopMode Self: our address as next hop, iBGP too; Keep: the original, eBGP too',
    me: 'n5',
    rs: [
      meshOff,
      n5,
      peer('rs', { peerIP: '10.0.0.50', asNumber: 64512, nextHopMode: 'Self' }),
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, nextHopMode: 'Keep' }),
      peer('auto', { peerIP: '192.0.2.2', asNumber: 65100, nextHopMode: 'Auto' }),
    ],
    v4: ['10.0.0.50:179 as 64512 self', '192.0.2.1:179 as 65100 keep', '192.0.2.2:179 as 65100'],
  },
  {
    what: 'sourceAddress: the node IP (UseNodeIP, the default, and the mesh) unless None',
    me: 'd9',
    rs: [
      d9,
      d10,
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100 }),
      peer('tor-none', { peerIP: '192.0.2.2', asNumber: 65100, sourceAddress: 'None' }),
      peer('tor-node', { peerIP: '192.0.2.3', asNumber: 65100, sourceAddress: 'UseNodeIP' }),
      peer('tor6', { peerIP: 'fd00::99', asNumber: 65100, sourceAddress: 'UseNodeIP' }),
      peer('nodes', { peerSelector: 'all()', sourceAddress: 'None' }),
    ],
    // the peerSelector's session to d10 replaces the mesh's (a BGPPeer wins); the mesh
    // sessions of the other cases show the mesh's source address
    v4: [
      '10.0.0.10:179 as 64512 nosrc',
      '192.0.2.1:179 as 65100',
      '192.0.2.2:179 as 65100 nosrc',
      '192.0.2.3:179 as 65100',
    ],
    v6: ['[fd00::10]:179 as 64512 nosrc', '[fd00::99]:179 as 65100'],
  },
  {
    what: "numAllowedLocalASNumbers: our AS may appear that many times in the peer's paths",
    me: 'n5',
    rs: [
      meshOff,
      n5,
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, numAllowedLocalASNumbers: 2 }),
    ],
    v4: ['192.0.2.1:179 as 65100 allowas=2'],
  },
  {
    what: 'keepaliveTime: whole seconds (confd rounds), peerIP and peerSelector sessions; not the mesh',
    me: 'n5',
    rs: [
      n5,
      n8,
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, keepaliveTime: '10.4s' }),
      peer('nodes', { nodeSelector: 'all()', peerSelector: 'all()', keepaliveTime: '1m' }),
    ],
    v4: ['10.0.0.8:179 as 64512 keepalive=60', '192.0.2.1:179 as 65100 keepalive=10'],
  },
  {
    what: 'localASNumber: the AS we present to a peerIP peer; peerSelector peers ignore it (confd)',
    me: 'n5',
    rs: [
      meshOff,
      n5,
      n8,
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, localASNumber: 64999 }),
      // iBGP in the local AS: BGP's default next hop, not ours
      peer('same', { peerIP: '192.0.2.2', asNumber: 64999, localASNumber: '64999' }),
      peer('nodes', { nodeSelector: 'all()', peerSelector: 'all()', localASNumber: 64999 }),
    ],
    v4: [
      '10.0.0.8:179 as 64512',
      '192.0.2.1:179 as 65100 local=64999',
      '192.0.2.2:179 as 64999 local=64999',
    ],
  },
  {
    what: 'filters: the named BGPFilters in order, each family its own rules; the mesh has none',
    me: 'n5',
    rs: [
      node('n5', ['10.0.0.5/24', 'fd00::5/64']),
      node('n8', ['10.0.0.8/24', 'fd00::8/64']),
      filter('no-ten', {
        importV4: [
          {
            cidr: '10.0.0.0/8',
            matchOperator: 'In',
            prefixLength: { min: 16, max: 24 },
            action: 'Reject',
          },
        ],
        exportV4: [{ source: 'RemotePeers', action: 'Reject' }],
        importV6: [{ cidr: 'fd00:1::/48', matchOperator: 'NotIn', action: 'Reject' }],
      }),
      filter('rest', {
        importV4: [{ interface: 'eth*', peerType: 'eBGP', action: 'Accept' }],
        exportV4: [{ cidr: '10.1.2.3/16', matchOperator: 'Equal', action: 'Accept' }],
      }),
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, filters: ['no-ten', 'missing', 'rest'] }),
      peer('tor6', { peerIP: 'fd00::1', asNumber: 65100, filters: ['rest', 'no-ten'] }),
      peer('nothing', { peerIP: '192.0.2.2', asNumber: 65100, filters: ['missing'] }),
    ],
    v4: [
      '10.0.0.8:179 as 64512 passive',
      '192.0.2.1:179 as 65100 import=Reject:In 10.0.0.0/8{16,24},Accept:if=eth* eBGP export=Reject:RemotePeers,Accept:Equal 10.1.0.0/16',
      '192.0.2.2:179 as 65100',
    ],
    v6: [
      '[fd00::1]:179 as 65100 import=Reject:NotIn fd00:1::/48',
      '[fd00::8]:179 as 64512 passive',
    ],
  },
  {
    what: 'filters: communities (its one value), asPathPrefix, priority and operations reach the speaker',
    me: 'n5',
    rs: [
      meshOff,
      node('n5', '10.0.0.5/24'),
      filter('tag', {
        importV4: [
          {
            communities: { values: ['65000:100'] },
            asPathPrefix: [65100, '1.10'],
            priority: 512,
            action: 'Accept',
            operations: [
              { setPriority: { value: 256 } },
              { addCommunity: { value: '65000:200:1' } },
              { prependASPath: { prefix: [65001, 65002] } },
            ],
          },
          { communities: { values: ['65000:666'] }, action: 'Reject' },
        ],
      }),
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, filters: ['tag'] }),
    ],
    v4: [
      '192.0.2.1:179 as 65100 import=Accept:c=65000:100 path=65100.65546 prio=512 +prio=256 +c=65000:200:1 +path=65001.65002,Reject:c=65000:666',
    ],
  },
  {
    what: 'reversePeering Manual: the nodes a peerSelector picks do not peer back by themselves',
    me: 'n8',
    rs: [
      meshOff,
      node('n5', '10.0.0.5/24', {}, { edge: 'yes' }),
      node('n8', '10.0.0.8/24', {}, { spine: 'yes' }),
      peer('edge-to-spine', {
        nodeSelector: "edge == 'yes'",
        peerSelector: "spine == 'yes'",
        reversePeering: 'Manual',
      }),
    ],
    v4: [],
  },
  {
    what: 'reversePeering Auto (the default): they do',
    me: 'n8',
    rs: [
      meshOff,
      node('n5', '10.0.0.5/24', {}, { edge: 'yes' }),
      node('n8', '10.0.0.8/24', {}, { spine: 'yes' }),
      peer('edge-to-spine', { nodeSelector: "edge == 'yes'", peerSelector: "spine == 'yes'" }),
    ],
    v4: ['10.0.0.5:179 as 64512'],
  },
  // ---- passwords: nodeMeshPassword keys the mesh, a BGPPeer's password its sessions --------
  {
    what: 'nodeMeshPassword: every mesh session has the key; a BGPPeer without one has none',
    me: 'n5',
    rs: [
      config('default', { nodeMeshPassword: meshKey }),
      n5,
      n8,
      n10,
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100 }),
    ],
    v4: [
      '10.0.0.8:179 as 64512 passive md5=bgp-secrets/mesh',
      '10.0.0.10:179 as 64512 md5=bgp-secrets/mesh',
      '192.0.2.1:179 as 65100',
    ],
  },
  {
    what: "a BGPPeer's password: its sessions (peerIP and peerSelector) have its key",
    me: 'n5',
    rs: [
      meshOff,
      n5,
      node('n8', '10.0.0.8/24', {}, { spine: 'yes' }),
      peer('tor', {
        peerIP: '192.0.2.1',
        asNumber: 65100,
        password: { secretKeyRef: { name: 'tor', key: 'k' } },
      }),
      peer('spines', {
        peerSelector: "spine == 'yes'",
        password: { secretKeyRef: { name: 'spine', key: 'k' } },
      }),
    ],
    v4: ['10.0.0.8:179 as 64512 md5=spine/k', '192.0.2.1:179 as 65100 md5=tor/k'],
  },
  // ---- the mesh: one session per pair, the lexically lower address waits ----------------
  {
    what: 'mesh from 10.0.0.5: waits for 10.0.0.8 (greater as a string), dials 10.0.0.10',
    me: 'n5',
    rs: [n5, n8, n10],
    v4: ['10.0.0.8:179 as 64512 passive', '10.0.0.10:179 as 64512'],
  },
  {
    what: 'mesh from 10.0.0.10: waits for both ("10.0.0.10" sorts first)',
    me: 'n10',
    rs: [n5, n8, n10],
    v4: ['10.0.0.5:179 as 64512 passive', '10.0.0.8:179 as 64512 passive'],
  },
  {
    what: 'mesh from 10.0.0.8: dials both',
    me: 'n8',
    rs: [n5, n8, n10],
    v4: ['10.0.0.5:179 as 64512', '10.0.0.10:179 as 64512'],
  },
  {
    what: "mesh: a node's own AS, else the cluster's",
    me: 'n5',
    rs: [
      config('default', { asNumber: 65000 }),
      n5,
      node('n8', '10.0.0.8/24', { asNumber: 65008 }),
    ],
    v4: ['10.0.0.8:179 as 65008 passive'],
  },
  // ---- listen ports: a node's own BGPConfiguration, else the default's ------------------
  {
    what: "mesh dials each node's own listen port",
    me: 'n5',
    rs: [
      config('default', { listenPort: 1790 }),
      config('node.n10', { listenPort: 1710 }),
      n5,
      n8,
      n10,
    ],
    v4: ['10.0.0.8:1790 as 64512 passive', '10.0.0.10:1710 as 64512'],
  },
  {
    what: "peerSelector and peerIP peers dial the node's listen port too (an explicit port wins)",
    me: 'n5',
    rs: [
      meshOff,
      config('node.n8', { listenPort: 1708 }),
      n5,
      node('n8', '10.0.0.8/24', {}, { spine: 'yes' }),
      n10,
      peer('to-spine', { node: 'n5', peerSelector: "spine == 'yes'" }),
      peer('to-n10', { node: 'n5', peerIP: '10.0.0.10' }),
      peer('to-n10-port', { node: 'n5', peerIP: '10.0.0.10:1999' }),
    ],
    v4: ['10.0.0.8:1708 as 64512', '10.0.0.10:179 as 64512', '10.0.0.10:1999 as 64512'],
  },
  // ---- BGPPeers by peerIP ---------------------------------------------------------------
  {
    what: 'two BGPPeers to one IP on two ports stay two peers',
    me: 'n5',
    rs: [
      meshOff,
      n5,
      peer('tor-a', { peerIP: '192.0.2.1', asNumber: 65100 }),
      peer('tor-b', { peerIP: '192.0.2.1:1790', asNumber: 65200 }),
    ],
    v4: ['192.0.2.1:179 as 65100', '192.0.2.1:1790 as 65200'],
  },
  {
    what: "peerIP without asNumber: the cluster's AS",
    me: 'n5',
    rs: [
      config('default', { nodeToNodeMeshEnabled: false, asNumber: 65000 }),
      n5,
      peer('rr', { peerIP: '192.0.2.9' }),
    ],
    v4: ['192.0.2.9:179 as 65000'],
  },
  {
    what: 'a global BGPPeer to a node: the mesh rule (10.0.0.8 > 10.0.0.5: wait)',
    me: 'n5',
    rs: [meshOff, n5, n8, peer('to-n8', { peerIP: '10.0.0.8', asNumber: 64512 })],
    v4: ['10.0.0.8:179 as 64512 passive'],
  },
  {
    what: '... and the node it names peers back with every node, actively',
    me: 'n8',
    rs: [meshOff, n5, n8, n10, peer('to-n8', { peerIP: '10.0.0.8', asNumber: 64512 })],
    v4: ['10.0.0.5:179 as 64512', '10.0.0.10:179 as 64512'],
  },
  {
    what: 'a global BGPPeer to a node whose address is lower as a string: dial it',
    me: 'n5',
    rs: [meshOff, n5, n10, peer('to-n10', { peerIP: '10.0.0.10', asNumber: 64512 })],
    v4: ['10.0.0.10:179 as 64512'],
  },
  {
    what: 'a per-node BGPPeer to a node: both ends dial (confd applies the rule to global ones only)',
    me: 'n5',
    rs: [meshOff, n5, n8, peer('n5-to-n8', { node: 'n5', peerIP: '10.0.0.8', asNumber: 64512 })],
    v4: ['10.0.0.8:179 as 64512'],
  },
  {
    what: 'the reverse of a per-node BGPPeer: only towards that node',
    me: 'n8',
    rs: [
      meshOff,
      n5,
      n8,
      n10,
      peer('n5-to-n8', { node: 'n5', peerIP: '10.0.0.8', asNumber: 64512 }),
    ],
    v4: ['10.0.0.5:179 as 64512'],
  },
  {
    what: 'no reverse peering when the AS does not match the node',
    me: 'n8',
    rs: [meshOff, n5, n8, peer('n5-to-n8', { node: 'n5', peerIP: '10.0.0.8', asNumber: 65999 })],
    v4: [],
  },
  {
    what: 'TTL security; keepOriginalNextHop only towards eBGP peers',
    me: 'n5',
    rs: [
      meshOff,
      n5,
      peer('ebgp', {
        peerIP: '192.0.2.1',
        asNumber: 65100,
        ttlSecurity: 1,
        keepOriginalNextHop: true,
      }),
      peer('ibgp', { peerIP: '192.0.2.2', asNumber: 64512, keepOriginalNextHop: true }),
    ],
    v4: ['192.0.2.1:179 as 65100 ttl=1 keep', '192.0.2.2:179 as 64512'],
  },
  {
    what: 'an explicit BGPPeer wins over the mesh for the same address and port',
    me: 'n5',
    rs: [
      n5,
      n8,
      peer('to-n8', { node: 'n5', peerIP: '10.0.0.8', asNumber: 64512, ttlSecurity: 2 }),
    ],
    v4: ['10.0.0.8:179 as 64512 ttl=2'],
  },
  {
    what: "asNumber 0 is Calico's unset: a peerIP in the cluster's AS, and the node's reverse",
    me: 'n5',
    rs: [
      meshOff,
      n5,
      n8,
      peer('ext', { peerIP: '192.0.2.1', asNumber: 0, ttlSecurity: 255 }),
      peer('n8-to-n5', { node: 'n8', peerIP: '10.0.0.5', asNumber: 0 }),
    ],
    v4: ['10.0.0.8:179 as 64512', '192.0.2.1:179 as 64512 ttl=255'],
  },
  {
    what: 'a BGPPeer with neither peerIP nor peerSelector configures nothing',
    me: 'n5',
    rs: [meshOff, n5, n8, peer('empty', {})],
    v4: [],
  },
  // ---- graceful restart times (bird.cfg: graceful restart time, else BIRD's 120 s) -------
  {
    what: 'mesh sessions: nodeMeshMaxRestartTime, rounded to seconds',
    me: 'n5',
    rs: [config('default', { nodeMeshMaxRestartTime: '90.4s' }), n5, n8],
    v4: ['10.0.0.8:179 as 64512 passive gr=90'],
  },
  {
    what: "BGPPeer sessions: its maxRestartTime, also for peerSelector and reverse peerings, not the mesh's",
    me: 'n5',
    rs: [
      config('default', { nodeMeshMaxRestartTime: '30s' }),
      node('n5', '10.0.0.5/24', {}, { spine: 'yes' }),
      n8,
      n10,
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, maxRestartTime: '5m' }),
      peer('to-spine', { node: 'n10', peerSelector: "spine == 'yes'", maxRestartTime: '1m30s' }),
    ],
    v4: [
      '10.0.0.8:179 as 64512 passive gr=30',
      '10.0.0.10:179 as 64512 gr=90',
      '192.0.2.1:179 as 65100 gr=300',
    ],
  },
  {
    what: 'a restart time beyond the 12 bits of the capability is capped at 4095 s',
    me: 'n5',
    rs: [meshOff, n5, peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, maxRestartTime: '2h' })],
    v4: ['192.0.2.1:179 as 65100 gr=4095'],
  },
  // ---- BFD (tortie's): the default BGPConfiguration's block, a BGPPeer's over it ---------
  {
    what: "BFD: the default BGPConfiguration's block covers the mesh and BGPPeers; unset fields 300ms x 3",
    me: 'n5',
    rs: [
      config('default', { bfd: { minTxInterval: '100ms' } }),
      n5,
      n8,
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100 }),
    ],
    v4: ['10.0.0.8:179 as 64512 passive bfd=100/300x3', '192.0.2.1:179 as 65100 bfd=100/300x3'],
  },
  {
    what: "BFD: a BGPPeer's block field by field over the default's, or enabled: false",
    me: 'n5',
    rs: [
      config('default', { bfd: { minTxInterval: '100ms', multiplier: 5 } }),
      n5,
      n8,
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, bfd: { minRxInterval: '0.05s' } }),
      peer('slow', { peerIP: '192.0.2.2', asNumber: 65100, bfd: { enabled: false } }),
    ],
    v4: [
      '10.0.0.8:179 as 64512 passive bfd=100/300x5',
      '192.0.2.1:179 as 65100 bfd=100/50x5',
      '192.0.2.2:179 as 65100',
    ],
  },
  {
    what: 'BFD: only the BGPPeer asks for it (an empty block is on, with the defaults)',
    me: 'n5',
    rs: [n5, n8, peer('tor', { peerIP: '192.0.2.1', asNumber: 65100, bfd: {} })],
    v4: ['10.0.0.8:179 as 64512 passive', '192.0.2.1:179 as 65100 bfd=300/300x3'],
  },
  // ---- IPv6: nodes with an IPv6 address peer over it too, per family ---------------------
  {
    what: 'mesh over both families; the rule on each family\'s addresses ("fd00::10" < "fd00::9")',
    me: 'd9',
    rs: [d9, d10, node('v4only', '10.0.0.7/24')],
    v4: ['10.0.0.7:179 as 64512', '10.0.0.10:179 as 64512'],
    v6: ['[fd00::10]:179 as 64512'],
  },
  {
    what: '... from the other end',
    me: 'd10',
    rs: [d9, d10, node('v4only', '10.0.0.7/24')],
    v4: ['10.0.0.7:179 as 64512 passive', '10.0.0.9:179 as 64512 passive'],
    v6: ['[fd00::9]:179 as 64512 passive'],
  },
  {
    what: 'addresses compared in canonical form (FD00:0::0009 is fd00::9)',
    me: 'd10',
    rs: [node('d9', ['10.0.0.9/24', 'FD00:0::0009/64']), d10],
    v4: ['10.0.0.9:179 as 64512 passive'],
    v6: ['[fd00::9]:179 as 64512 passive'],
  },
  {
    what: 'peerSelector peers (and their reverse) in both families',
    me: 'd9',
    rs: [
      meshOff,
      node('d9', ['10.0.0.9/24', 'fd00::9/64'], {}, { edge: 'yes' }),
      node('d10', ['10.0.0.10/24', 'fd00::10/64'], {}, { spine: 'yes' }),
      peer('edge-to-spine', { nodeSelector: "edge == 'yes'", peerSelector: "spine == 'yes'" }),
    ],
    v4: ['10.0.0.10:179 as 64512'],
    v6: ['[fd00::10]:179 as 64512'],
  },
  {
    what: 'a peerIP peer in its own family only; its reverse too',
    me: 'd10',
    rs: [
      meshOff,
      d9,
      d10,
      peer('to-d10', { node: 'd9', peerIP: '[fd00::10]:179', asNumber: 64512 }),
    ],
    v4: [],
    v6: ['[fd00::9]:179 as 64512'],
  },
  {
    what: 'a global BGPPeer to a node over IPv6: the mesh rule on the IPv6 texts',
    me: 'd10',
    rs: [meshOff, d9, d10, peer('to-d9', { peerIP: 'fd00::9', asNumber: 64512 })],
    v4: [],
    v6: ['[fd00::9]:179 as 64512 passive'],
  },
  // ---- peerSelector, both ways ----------------------------------------------------------
  {
    what: 'peerSelector: the picked nodes (their AS), and they peer back',
    me: 'n5',
    rs: edgeToSpine,
    v4: ['10.0.0.8:179 as 65008'],
  },
  {
    what: '... from the picked node',
    me: 'n8',
    rs: edgeToSpine,
    v4: ['10.0.0.5:179 as 64512'],
  },
  // ---- route reflectors -----------------------------------------------------------------
  {
    what: 'a route reflector does not mesh; its iBGP peers outside its cluster are clients',
    me: 'rr1',
    rs: [
      node('rr1', '10.0.0.1/24', { routeReflectorClusterID: '224.0.0.1' }, { rr: 'true' }),
      node('rr2', '10.0.0.2/24', { routeReflectorClusterID: '224.0.0.1' }, { rr: 'true' }),
      n5,
      n10,
      peer('to-rrs', { peerSelector: "rr == 'true'" }),
      peer('tor', { nodeSelector: "rr == 'true'", peerIP: '192.0.2.1', asNumber: 65100 }),
      peer('ibgp-box', { nodeSelector: "rr == 'true'", peerIP: '192.0.2.2', asNumber: 64512 }),
    ],
    v4: [
      '10.0.0.2:179 as 64512',
      '10.0.0.5:179 as 64512 rr',
      '10.0.0.10:179 as 64512 rr',
      '192.0.2.1:179 as 65100',
      '192.0.2.2:179 as 64512 rr',
    ],
  },
  {
    what: 'a client: no mesh with reflectors, sessions to them from the BGPPeer',
    me: 'n5',
    rs: [
      node('rr1', '10.0.0.1/24', { routeReflectorClusterID: '224.0.0.1' }, { rr: 'true' }),
      n5,
      n10,
      peer('to-rrs', { peerSelector: "rr == 'true'" }),
    ],
    v4: ['10.0.0.1:179 as 64512', '10.0.0.10:179 as 64512'],
  },
];

describe('BGP topology: resources in, peers out', () => {
  test.each(cases)('$what', ({ me, rs, v4, v6 = [] }) => {
    const c = topo(me, rs);
    expect(peerLines(c, 4)).toEqual(v4);
    expect(peerLines(c, 6)).toEqual(v6);
  });

  test('peer names say what made them (tortiectl node status reads the type from them)', () => {
    const c = topo('n5', [
      node('rr1', '10.0.0.1/24', { routeReflectorClusterID: '224.0.0.1' }, { rr: 'true' }),
      n5,
      n8,
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65100 }),
      peer('mine', { node: 'n5', peerIP: '192.0.2.2', asNumber: 65100 }),
      peer('to-rrs', { peerSelector: "rr == 'true'" }),
    ]);
    expect(c.peers.map((p) => p.name)).toEqual([
      'rr-10.0.0.1',
      'mesh-10.0.0.8',
      'global-tor',
      'node-mine',
    ]);
  });

  test('listen port of this node: its own configuration, else the default, else 179', () => {
    const rs = [
      config('default', { listenPort: 1790 }),
      config('node.n8', { listenPort: 1708 }),
      n5,
      n8,
    ];
    expect(topo('n5', rs).listenPort).toBe(1790);
    expect(topo('n8', rs).listenPort).toBe(1708);
    expect(topo('n5', [n5]).listenPort).toBe(179);
  });

  test('originated: blocks and service IPs, empty service entries skipped', () => {
    const c = topo(
      'n5',
      [
        config('default', {
          serviceClusterIPs: [{}, { cidr: '10.96.0.0/12' }],
          serviceExternalIPs: [{ cidr: '' }],
        }),
        n5,
      ],
      { originate: ['10.244.1.0/26'] },
    );
    expect(c.originate).toEqual(['10.244.1.0/26', '10.96.0.0/12']);
    // an address alone (Calico takes it) is its host route
    const one = topo('n5', [
      config('default', { serviceExternalIPs: [{ cidr: '1.2.3.4' }, { cidr: 'fd00::1' }] }),
      n5,
    ]);
    expect(one.originate).toEqual(['1.2.3.4/32', 'fd00::1/128']);
  });

  test('every pair of mesh nodes has exactly one waiting end: the lexically lower address', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.ipV4(), { minLength: 2, maxLength: 8 }), (ips) => {
        const rs = ips.map((ip, i) => node(`n${i}`, ip));
        const configs = ips.map((_, i) => topo(`n${i}`, rs));
        for (let i = 0; i < ips.length; i++) {
          for (let j = i + 1; j < ips.length; j++) {
            const iWaits = configs[i].peers.find((p) => p.address === ips[j])!.passive ?? false;
            const jWaits = configs[j].peers.find((p) => p.address === ips[i])!.passive ?? false;
            expect(iWaits).not.toBe(jWaits);
            expect(iWaits).toBe(ips[i] < ips[j]);
          }
        }
      }),
    );
  });
});

describe('per-node configuration and router id', () => {
  test('log level: node.<name> logSeverityScreen, else the default, as confd maps it for BIRD', () => {
    const rs = [
      config('default', { logSeverityScreen: 'Debug' }),
      config('node.n8', { logSeverityScreen: 'Warning' }),
      n5,
      n8,
    ];
    expect(topo('n5', rs).logLevel).toBe('debug');
    expect(topo('n8', rs).logLevel).toBe('warn'); // BIRD's "none": no debug output
    expect(topo('n5', [n5]).logLevel).toBe('info');
    expect(speakerConfig(topo('n5', rs)).logLevel).toBe('debug');
  });

  test("router id: CALICO_ROUTER_ID, else the node's IPv4 address; the next hop stays the address", () => {
    expect(topo('n5', [n5]).routerId).toBe('10.0.0.5');
    const explicit = topo('n5', [n5], { routerId: '192.0.2.55' });
    expect(explicit.routerId).toBe('192.0.2.55');
    expect(speakerConfig(explicit)).toMatchObject({
      routerId: '192.0.2.55',
      nextHop: { ipv4: '10.0.0.5' },
    });
    expect(topo('n5', [n5], { routerId: 'hash' }).routerId).toBe(hashRouterId('n5'));
  });

  test("CALICO_ROUTER_ID=hash: confd's HashToIPv4 (its own test vectors)", () => {
    expect(hashRouterId('nodeTest')).toBe('109.174.215.226');
    // SHA-256 starts with 239: lowered by 32 out of the multicast range
    expect(hashRouterId('Testrobin123')).toBe('207.94.5.27');
  });

  test('no router id (no IPv4 address, no CALICO_ROUTER_ID): BGP is off', () => {
    const v6only = node('v6', [undefined, 'fd00::6/64']);
    expect(topo('v6', [v6only, d9])).toMatchObject({ enabled: false, peers: [] });
    // with one, an IPv6-only node meshes over IPv6 and originates with its IPv6 next hop
    const c = topo('v6', [v6only, d9], { routerId: 'hash' });
    expect(peerLines(c, 6)).toEqual(['[fd00::9]:179 as 64512 passive']);
    expect(peerLines(c, 4)).toEqual([]);
    expect(speakerConfig(c).nextHop).toEqual({ ipv6: 'fd00::6' });
    expect(speakerConfig(topo('d9', [d9])).nextHop).toEqual({ ipv4: '10.0.0.9', ipv6: 'fd00::9' });
  });
});
