// BGPConfiguration communities and prefixAdvertisements: the rules of a node (confd's
// apply_communities: `if ( net ~ CIDR )` per rule), handed to the speaker as its export
// communities, and the plan that changes them on the running speaker.
import { bgpNodeFacts, communityRules, computeBgp, planBgp, speakerConfig } from '../src';
import type { Resource } from '@tortie/api';
import { config, node, topo } from './fixtures';

const bgpConfig = (name: string, spec: object) =>
  config(name, spec) as Resource<'BGPConfiguration'>;

const n1 = node('n1', '10.0.0.1/24');

// confd's own test input (confd/tests/mock_data/calicoctl/mesh/communities/input.yaml)
const CONFD_DEFAULT = bgpConfig('default', {
  communities: [
    { name: 'bgp-comm-standard', value: '100:6532' },
    { name: 'bgp-comm-large', value: '100:555:107' },
  ],
  prefixAdvertisements: [
    { cidr: '192.168.0.0/16', communities: ['bgp-comm-standard', '5663:12', 'bgp-comm-large'] },
    { cidr: 'fd00:96::/112', communities: ['bgp-comm-large', 'bgp-comm-large'] },
  ],
});
// and its step 2 (node.kube-master replaces the default's advertisements)
const CONFD_NODE = bgpConfig('node.n1', {
  communities: [{ name: 'bgp-comm-large', value: '50:50:5364' }],
  prefixAdvertisements: [
    { cidr: '192.168.0.0/16', communities: ['5663:12', 'bgp-comm-large', '5663:12'] },
    { cidr: 'fd00:96::/112', communities: ['bgp-comm-large'] },
  ],
});

describe('communityRules', () => {
  test("names resolved, literals kept, each rule's values deduplicated and sorted as confd does", () => {
    // confd's rendered bird.cfg for this input adds, for net ~ 192.168.0.0/16:
    // (100, 555, 107) large, (100, 6532) and (5663, 12) standard
    expect(communityRules([CONFD_DEFAULT], 'n1')).toEqual([
      { cidr: '192.168.0.0/16', communities: ['100:555:107', '100:6532', '5663:12'] },
      { cidr: 'fd00:96::/112', communities: ['100:555:107'] },
    ]);
  });

  test("the node's own configuration with prefixAdvertisements replaces the default's", () => {
    expect(communityRules([CONFD_DEFAULT, CONFD_NODE], 'n1')).toEqual([
      { cidr: '192.168.0.0/16', communities: ['50:50:5364', '5663:12'] },
      { cidr: 'fd00:96::/112', communities: ['50:50:5364'] },
    ]);
    // other nodes keep the default's
    expect(communityRules([CONFD_DEFAULT, CONFD_NODE], 'n2')[0].communities).toEqual([
      '100:555:107',
      '100:6532',
      '5663:12',
    ]);
    // a node configuration without prefixAdvertisements does not
    const portOnly = bgpConfig('node.n1', { listenPort: 1790 });
    expect(communityRules([CONFD_DEFAULT, portOnly], 'n1')).toHaveLength(2);
  });

  test('no configuration, or no prefixAdvertisements: no rules', () => {
    expect(communityRules([], 'n1')).toEqual([]);
    expect(communityRules([bgpConfig('default', { asNumber: 65000 })], 'n1')).toEqual([]);
  });
});

describe('computeBgp and planBgp', () => {
  const ads = (communities: string[]) =>
    bgpConfig('default', {
      serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
      serviceLoadBalancerIPs: [{ cidr: '198.51.100.0/24' }],
      communities: [{ name: 'svc', value: '65000:300' }],
      prefixAdvertisements: [
        { cidr: '10.244.0.0/16', communities: ['65000:100'] },
        { cidr: '198.51.100.0/24', communities },
      ],
    });
  const world = { originate: ['10.244.1.0/26', '10.245.0.0/26', '198.51.100.20/32'] };

  test("the node's rules become the speaker's export communities; no rules, none", () => {
    const c = topo('n1', [n1, ads(['svc', '65000:1:2'])], world);
    expect(c.communities).toEqual([
      { cidr: '10.244.0.0/16', communities: ['65000:100'] },
      { cidr: '198.51.100.0/24', communities: ['65000:1:2', '65000:300'] },
    ]);
    expect(speakerConfig(c).exportCommunities).toEqual(c.communities);
    expect(topo('n1', [n1], world)).not.toHaveProperty('communities');
    expect(speakerConfig(topo('n1', [n1], world)).exportCommunities).toEqual([]);
  });

  test('configurations given as an iterator (the agent passes Map values) are read for both', () => {
    const configs = new Map([['default', ads(['svc'])]]);
    const c = computeBgp({
      me: 'n1',
      nodes: new Map([['n1', bgpNodeFacts(n1 as never)]]),
      configs: configs.values(),
      peers: [],
      ...world,
    });
    expect(c.originate).toContain('10.96.0.0/12'); // settings: service ranges
    expect(c.communities?.[1]).toEqual({ cidr: '198.51.100.0/24', communities: ['65000:300'] });
  });

  test('a change of communities is set on the running speaker: no restart, nothing re-originated', () => {
    const before = topo('n1', [n1, ads(['svc'])], world);
    const after = topo('n1', [n1, ads(['65000:7'])], world);
    const p = planBgp(before, after);
    expect(p).toMatchObject({ restart: false, withdraw: [], originate: [], addPeers: [] });
    expect(p.exportCommunities).toEqual([
      { cidr: '10.244.0.0/16', communities: ['65000:100'] },
      { cidr: '198.51.100.0/24', communities: ['65000:7'] },
    ]);
    expect(planBgp(after, after)).not.toHaveProperty('exportCommunities');
    // communities removed: an empty list
    const { communities: _c, ...none } = after;
    expect(planBgp(after, none).exportCommunities).toEqual([]);
    // a new speaker starts with them (speakerConfig), the plan does not repeat them
    expect(planBgp(undefined, after)).not.toHaveProperty('exportCommunities');
  });
});
