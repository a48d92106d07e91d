// BGPPeer localWorkloadSelector: resources and this node's workload endpoints in, the
// sessions with local workloads out (felix's ActiveBGPPeerCalculator picks each
// endpoint's BGPPeer; confd's localBGPPeerDataAsBGPPeers turns it into passive sessions
// to the workload's addresses), and the endpoints the agent gives the peering address.
// The first row is confd's own mock data (confd/tests/mock_data/calicoctl/local_bgp_peer)
// with its rendered bird.cfg (compiled_templates/explicit_peering/local_bgp_peer):
// `local as 65002; neighbor 192.168.162.134 as 64516; passive on;`, no source address,
// the import filter of import-only-filter.
import type { Resource } from '@tortie/api';
import type { LocalWorkload } from '../src';
import { config, filter, node, peer, peerLines, topo } from './fixtures';

const master = node('kube-master', ['10.192.0.2/16', '2001::102/64'], {}, { 'global-peer': 'yes' });
const node1 = node('kube-node-1', ['10.192.0.3/16', '2001::103/64'], {}, { 'global-peer': 'yes' });
const meshOff = config('default', {
  nodeToNodeMeshEnabled: false,
  localWorkloadPeeringIPV4: '169.254.0.179',
  localWorkloadPeeringIPV6: 'fe80::0:179',
});
const importOnly = filter('import-only-filter', {
  importV4: [{ action: 'Accept', matchOperator: 'In', cidr: '44.0.0.0/16' }],
  importV6: [{ action: 'Accept', matchOperator: 'In', cidr: '5000::0/64' }],
});
const globalPeer = peer('test-global-peer-with-filter', {
  localWorkloadSelector: "app == 'calico-bird-0'",
  asNumber: 64516,
  localASNumber: 65002,
  filters: ['import-only-filter'],
});
const nodePeer = peer('test-node-peer-with-filter', {
  localWorkloadSelector: "app == 'calico-bird-1'",
  node: 'kube-master',
  asNumber: 64517,
  localASNumber: 65001,
  filters: ['import-only-filter'],
});
const wl = (id: string, app: string, ipv4?: string, ipv6?: string): LocalWorkload => ({
  id,
  labels: { app, 'projectcalico.org/namespace': id.split('/')[0] },
  ...(ipv4 ? { ipv4 } : {}),
  ...(ipv6 ? { ipv6 } : {}),
});
const bird0 = wl('default/bird-0/eth0', 'calico-bird-0', '192.168.162.134', '2001:db8::134');
const bird1 = wl('default/bird-1/eth0', 'calico-bird-1', '192.168.162.136');
const other = wl('default/web/eth0', 'web', '192.168.162.140');

interface Case {
  what: string;
  me: string;
  rs: Resource[];
  workloads: LocalWorkload[];
  v4: string[];
  v6?: string[];
  /** The endpoints that get the peering address (absent: none). */
  endpoints?: string[];
  bgpEnabled?: boolean;
}

const IMPORT = 'import=Accept:In 44.0.0.0/16';
const cases: Case[] = [
  {
    what: "confd's local_bgp_peer: passive, no source, local AS, the filter; per family",
    me: 'kube-master',
    rs: [meshOff, master, node1, importOnly, globalPeer, nodePeer],
    workloads: [bird0, bird1, other],
    v4: [
      `192.168.162.134:179 as 64516 local=65002 nosrc passive ${IMPORT}`,
      `192.168.162.136:179 as 64517 local=65001 nosrc passive ${IMPORT}`,
    ],
    v6: ['[2001:db8::134]:179 as 64516 local=65002 nosrc passive import=Accept:In 5000::/64'],
    endpoints: ['default/bird-0/eth0', 'default/bird-1/eth0'],
  },
  {
    what: 'a BGPPeer for another node (node) does not apply here; a global one does',
    me: 'kube-node-1',
    rs: [meshOff, master, node1, importOnly, globalPeer, nodePeer],
    workloads: [bird0, bird1],
    v4: [`192.168.162.134:179 as 64516 local=65002 nosrc passive ${IMPORT}`],
    v6: ['[2001:db8::134]:179 as 64516 local=65002 nosrc passive import=Accept:In 5000::/64'],
    endpoints: ['default/bird-0/eth0'],
  },
  {
    what: 'two BGPPeers select one workload: the first by name is its active one (felix)',
    me: 'kube-master',
    rs: [
      meshOff,
      master,
      peer('b-peer', { localWorkloadSelector: 'has(app)', asNumber: 65002 }),
      peer('a-peer', { localWorkloadSelector: "app == 'web'", asNumber: 65001 }),
    ],
    workloads: [bird0, other],
    v4: [
      '192.168.162.134:179 as 65002 nosrc passive',
      '192.168.162.140:179 as 65001 nosrc passive',
    ],
    v6: ['[2001:db8::134]:179 as 65002 nosrc passive'],
    endpoints: ['default/bird-0/eth0', 'default/web/eth0'],
  },
  {
    what: 'nodeSelector: only the nodes it picks peer with their workloads',
    me: 'kube-node-1',
    rs: [
      meshOff,
      master,
      node1,
      peer('masters', {
        localWorkloadSelector: 'has(app)',
        nodeSelector: '!has(global-peer)',
        asNumber: 65002,
      }),
    ],
    workloads: [bird0],
    v4: [],
  },
  {
    what: 'no reverse peering: the other nodes get no session from a localWorkloadSelector BGPPeer',
    me: 'kube-node-1',
    rs: [meshOff, master, node1, nodePeer],
    workloads: [],
    v4: [],
  },
  {
    what: 'BGP off: no sessions, but felix still gives the workloads the peering address',
    me: 'kube-master',
    rs: [meshOff, master, globalPeer],
    workloads: [bird0],
    v4: [],
    endpoints: ['default/bird-0/eth0'],
    bgpEnabled: false,
  },
];

describe('local workload peering (localWorkloadSelector)', () => {
  test.each(cases)('$what', (c) => {
    const bgp = topo(c.me, c.rs, {
      localWorkloads: c.workloads,
      ...(c.bgpEnabled === false ? { bgpEnabled: false } : {}),
    });
    expect(peerLines(bgp, 4)).toEqual(c.v4);
    expect(peerLines(bgp, 6)).toEqual(c.v6 ?? []);
    if (c.endpoints)
      expect(bgp.localWorkloadPeering).toEqual({
        ipv4: '169.254.0.179',
        ipv6: 'fe80::179',
        endpoints: c.endpoints,
      });
    else expect(bgp.localWorkloadPeering).toBeUndefined();
  });
});
