// Rows of libcalico-go's validator table (lib/validator/v3/validator_test.go, the
// "Validator" DescribeTable, at projectcalico/calico 87c1590) for rules, entity rules,
// ICMP fields, protocols and ports, (Global)NetworkPolicy, Tier, IPPool, IPReservation,
// BGPPeer and Node, transcribed as data; plus numorstring's unmarshalling table
// (api/pkg/lib/numorstring/numorstring_test.go) for ports and protocols in a rule. The
// line each block starts at is given.
//
// A Go value that is not a whole resource is put where a manifest carries it: a Rule,
// EntityRule, ICMPFields, HTTPMatch or Protocol as the ingress rule of a
// GlobalNetworkPolicy, a spec as a resource of its kind. A manifest is what Go's
// json.Marshal writes for the Go value (protocolFromString("icmp") is "ICMP": the Go
// helper folds the case, a manifest's text is taken as written).
//
// expect: true (Calico accepts it, so do we), false (both refuse), or 'unsupported'
// (Calico accepts it; tortie refuses it with "tortie does not support ...", because
// ignoring it would be unsafe; no row is today).
//
// Left out, with the reason:
// - BGPFilter rows (2053-2452): not left out, they are in calico-validator-bgpfilter.cases.ts;
// - StagedGlobalNetworkPolicy / StagedNetworkPolicy rows
//   (2968-3102, 3274-3370), KubeControllersConfiguration rows: kinds tortie does not have;
// - "should reject Rule with invalid port (name + number)" (1655): a Port with both a
//   name and numbers exists only in Go (its JSON is the name alone);
// - NodeStatus wireguardPublicKey rows (2662, 2670): tortie's Node has no status;
// - ProtoPort rows (612): FelixConfiguration's, with its table.

export type Row = [
  description: string,
  kind: string,
  manifest: { name?: string; spec: unknown },
  expect: boolean | 'unsupported',
];

type Obj = Record<string, unknown>;
const x = (n: number) => 'x'.repeat(n);
/** A rule as the one ingress rule of a GlobalNetworkPolicy. */
const gnpRule = (rule: Obj) => ({ name: 'test', spec: { ingress: [rule] } });
const allow = (rule: Obj = {}) => gnpRule({ action: 'Allow', ...rule });
/** An entity rule as the source of an Allow rule. */
const source = (e: Obj) => allow({ source: e });
const icmp = (f: Obj) => allow({ protocol: 'ICMP', icmp: f });
const np = (spec: Obj, name = 'thing') => ({ name, spec });
const gnp = np;
const svc = { name: 'service1', namespace: 'default' };
const pool = (spec: Obj, name = 'pool.name') => ({ name, spec });
const peer = (spec: Obj, name = 'test') => ({ name, spec });
const node = (spec: Obj) => ({ name: 'node1', spec });
const GNP = 'GlobalNetworkPolicy';
const NP = 'NetworkPolicy';

export const ROWS: Row[] = [
  // 160: "Validator errors": a port range from 0
  [
    'Rule with invalid port (0:456)',
    GNP,
    allow({ protocol: 'TCP', destination: { notPorts: ['0:456'] } }),
    false,
  ],
  // 177: (API) Actions
  ['should accept allow action', NP, np({ ingress: [{ action: 'Allow' }] }, 'test'), true],
  ['should accept deny action', NP, np({ ingress: [{ action: 'Deny' }] }, 'test'), true],
  ['should accept log action', NP, np({ ingress: [{ action: 'Log' }] }, 'test'), true],
  ['should reject unknown action', NP, np({ ingress: [{ action: 'unknown' }] }, 'test'), false],
  ['should reject unknown action allowfoo', NP, np({ ingress: [{ action: 'allowfoo' }] }), false],
  ['should reject rule with no action', NP, np({ ingress: [{}] }, 'test'), false],
  // 598: (API) IP version
  ['should accept IP version 4', NP, np({ ingress: [{ action: 'Allow', ipVersion: 4 }] }), true],
  ['should accept IP version 6', NP, np({ ingress: [{ action: 'Allow', ipVersion: 6 }] }), true],
  ['should reject IP version 0', NP, np({ ingress: [{ action: 'Allow', ipVersion: 0 }] }), false],
  // 618: (API) Selectors, in an EntityRule
  ['should accept valid selector', GNP, source({ selector: 'foo == "bar"' }), true],
  [
    "should accept selector with 'has' and a '/'",
    GNP,
    source({ selector: 'has(calico/k8s_ns)' }),
    true,
  ],
  [
    "should accept selector with 'has' and two '/'",
    GNP,
    source({ selector: 'has(calico/k8s_ns/role)' }),
    true,
  ],
  [
    "should accept selector with 'has' and two '/' and '-.'",
    GNP,
    source({ selector: 'has(calico/k8s_NS-.1/role)' }),
    true,
  ],
  ['should reject invalid selector', GNP, source({ selector: 'thing=hello &' }), false],
  // 995: (API) Protocol, as a rule's protocol
  ...(
    [
      ['TCP', true],
      ['UDP', true],
      ['ICMP', true],
      ['ICMPv6', true],
      ['SCTP', true],
      ['UDPLite', true],
      [1, true],
      [255, true],
      ['255', true],
      ['1', true],
      [0, false],
      ['256', false],
      ['0', false],
      ['tcpfoo', false],
      ['footcp', false],
      ['tcp', false],
    ] as const
  ).map(([p, ok]): Row => [`protocol ${JSON.stringify(p)}`, GNP, allow({ protocol: p }), ok]),
  // numorstring_test.go 69: ports as JSON (the validator then refuses port 0)
  ...(
    [
      [0, false],
      [65535, true],
      ['0:65535', false],
      ['1:10', true],
      ['foo-bar', true],
      [-1, false],
      [65536, false],
      ['0:65536', false],
      ['-1:65535', false],
      ['10:1', false],
      ['1:2:3', false],
      ['*', false],
      // 210: named ports
      ['http-port', true],
      ['http port', false],
      ['http%port', false],
    ] as const
  ).map(([p, ok]): Row => [
    `port ${JSON.stringify(p)}`,
    GNP,
    allow({ protocol: 'TCP', destination: { ports: [p] } }),
    ok,
  ]),
  // numorstring_test.go 84: protocols as JSON ("0" and 0 are read, then refused)
  ['protocol 0 as int', GNP, allow({ protocol: 0 }), false],
  ['protocol 255 as int', GNP, allow({ protocol: 255 }), true],
  ['protocol "256" as string', GNP, allow({ protocol: '256' }), false],
  // 1545: (API) ICMPFields, as a rule's icmp
  ['should accept ICMP with no config', GNP, icmp({}), true],
  ['should accept ICMP with type with min value', GNP, icmp({ type: 0 }), true],
  ['should accept ICMP with type with max value', GNP, icmp({ type: 254 }), true],
  ['should accept ICMP with type and code with min value', GNP, icmp({ type: 128, code: 0 }), true],
  [
    'should accept ICMP with type and code with max value',
    GNP,
    icmp({ type: 128, code: 255 }),
    true,
  ],
  ['should reject ICMP with code and no type', GNP, allow({ icmp: { code: 0 } }), false],
  ['should reject ICMP with type too high', GNP, icmp({ type: 255 }), false],
  ['should reject ICMP with code too high', GNP, icmp({ type: 128, code: 256 }), false],
  // 1564: (API) Rule
  ['Rule with protocol SCTP and no other config', GNP, allow({ protocol: 'SCTP' }), true],
  [
    'Rule with source ports and protocol type 6',
    GNP,
    allow({ protocol: 6, source: { ports: [1] } }),
    true,
  ],
  [
    'Rule with source named ports and protocol type 6',
    GNP,
    allow({ protocol: 6, source: { ports: ['foo'] } }),
    true,
  ],
  [
    'Rule with source named ports and protocol type tcp',
    GNP,
    allow({ protocol: 'TCP', source: { ports: ['foo'] } }),
    true,
  ],
  [
    'Rule with source named ports and protocol type udp',
    GNP,
    allow({ protocol: 'UDP', source: { ports: ['foo'] } }),
    true,
  ],
  [
    'Rule with empty source ports and protocol type 7',
    GNP,
    allow({ protocol: 7, source: { ports: [] } }),
    true,
  ],
  [
    'Rule with source !ports and protocol type 17',
    GNP,
    allow({ protocol: 17, source: { notPorts: [1] } }),
    true,
  ],
  [
    'Rule with empty source !ports and protocol type 100',
    GNP,
    allow({ protocol: 100, source: { notPorts: [] } }),
    true,
  ],
  [
    'Rule with dest ports and protocol type tcp',
    GNP,
    allow({ protocol: 'TCP', destination: { ports: [1] } }),
    true,
  ],
  [
    'should reject Rule with dest ports and no protocol',
    GNP,
    allow({ destination: { ports: [1] } }),
    false,
  ],
  [
    'Rule with dest named ports and no protocol',
    GNP,
    allow({ destination: { ports: ['foo'] } }),
    true,
  ],
  [
    'Rule with !source named ports and no protocol',
    GNP,
    allow({ source: { notPorts: ['foo'] } }),
    true,
  ],
  [
    'should reject Rule with invalid port (port 0)',
    GNP,
    allow({ protocol: 'TCP', destination: { notPorts: [0] } }),
    false,
  ],
  [
    'should reject named port Rule with invalid protocol',
    GNP,
    allow({ protocol: 'unknown', destination: { notPorts: ['foo'] } }),
    false,
  ],
  [
    'Rule with empty dest ports and protocol type SCTP',
    GNP,
    allow({ protocol: 'SCTP', destination: { ports: [] } }),
    true,
  ],
  [
    'Rule with empty dest !ports and protocol type ICMPv6',
    GNP,
    allow({ ipVersion: 6, protocol: 'ICMPv6', destination: { notPorts: [] } }),
    true,
  ],
  [
    'should reject Rule with icmp fields and no protocol',
    GNP,
    allow({ ipVersion: 4, icmp: { type: 0 } }),
    false,
  ],
  [
    'Rule with icmp fields and no ipversion',
    GNP,
    allow({ protocol: 'ICMP', icmp: { type: 0 } }),
    true,
  ],
  [
    'Rule with icmpv6 fields and no ipversion',
    GNP,
    allow({ protocol: 'ICMPv6', icmp: { type: 0 } }),
    true,
  ],
  [
    'should reject mismatched ipversion for icmp',
    GNP,
    allow({ protocol: 'ICMP', ipVersion: 6 }),
    false,
  ],
  [
    'should reject mismatched ipversion for icmpv6',
    GNP,
    allow({ protocol: 'ICMPv6', ipVersion: 4 }),
    false,
  ],
  [
    'Rule with correct ipversion for icmp',
    GNP,
    allow({ ipVersion: 4, protocol: 'ICMP', icmp: { type: 0 } }),
    true,
  ],
  [
    'Rule with correct ipversion for icmpv6',
    GNP,
    allow({ ipVersion: 6, protocol: 'ICMPv6', icmp: { type: 0 } }),
    true,
  ],
  [
    'should reject Rule with source ports and protocol type 7',
    GNP,
    allow({ protocol: 7, source: { ports: [1] } }),
    false,
  ],
  [
    'should reject Rule with source !ports and protocol type 100',
    GNP,
    allow({ protocol: 100, source: { notPorts: [1] } }),
    false,
  ],
  [
    'Rule with dest ports and protocol type sctp',
    GNP,
    allow({ protocol: 'SCTP', destination: { ports: [1] } }),
    true,
  ],
  [
    'should reject Rule with dest !ports and protocol ICMP',
    GNP,
    allow({ ipVersion: 4, protocol: 'ICMP', destination: { notPorts: [1] } }),
    false,
  ],
  ...(['ports', 'notPorts'] as const).flatMap((f) =>
    (['source', 'destination'] as const).map((side): Row => [
      `should reject Rule with invalid ${side} ${f} 200:100`,
      GNP,
      allow({ protocol: 'TCP', [side]: { [f]: ['200:100'] } }),
      false,
    ]),
  ),
  [
    'should reject Rule with one invalid port in the range (0:100)',
    GNP,
    allow({ protocol: 'TCP', destination: { notPorts: ['0:100'] } }),
    false,
  ],
  [
    'should reject rule mixed IPv4 (src) and IPv6 (dest)',
    GNP,
    allow({
      protocol: 'TCP',
      source: { nets: ['1.2.3.0/26'] },
      destination: { nets: ['aabb:aabb::0000/122'] },
    }),
    false,
  ],
  [
    'should reject rule mixed IPv6 (src) and IPv4 (dest)',
    GNP,
    allow({
      protocol: 'TCP',
      source: { nets: ['aabb::abcd'] },
      destination: { nets: ['1.2.0.0/32'] },
    }),
    false,
  ],
  [
    'should reject rule mixed IPv6 version and IPv4 Net',
    GNP,
    allow({
      protocol: 'TCP',
      ipVersion: 6,
      source: { nets: ['1.0.0.0/10'] },
      destination: { nets: ['1.2.0.0/32'] },
    }),
    false,
  ],
  [
    'should reject rule mixed IPv6 version and IPv4 notNets',
    GNP,
    allow({
      protocol: 'TCP',
      ipVersion: 6,
      source: { nets: ['1.0.0.0/10'] },
      destination: { notNets: ['1.2.0.0/32'] },
    }),
    false,
  ],
  [
    'should reject rule mixed IPVersion and Source Net IP version',
    GNP,
    allow({ protocol: 'TCP', ipVersion: 6, source: { nets: ['1.2.3.4/32'] } }),
    false,
  ],
  [
    'should reject rule mixed IPVersion and Dest Net IP version',
    GNP,
    allow({ protocol: 'TCP', ipVersion: 4, destination: { nets: ['aabb:aabb::ffff/128'] } }),
    false,
  ],
  [
    'should reject rule with an IPv6 protocol and an IPVersion=4',
    GNP,
    allow({ protocol: 'ICMPv6', ipVersion: 4 }),
    false,
  ],
  [
    'should reject rule with an IPv4 protocol and an IPVersion=6',
    GNP,
    allow({ protocol: 'ICMP', ipVersion: 6 }),
    false,
  ],
  ['should accept Allow rule with HTTP clause', GNP, allow({ http: { methods: ['GET'] } }), true],
  [
    'should reject Deny rule with HTTP clause',
    GNP,
    gnpRule({ action: 'Deny', http: { methods: ['GET'] } }),
    false,
  ],
  [
    'should reject non-TCP protocol with HTTP clause',
    GNP,
    allow({ protocol: 'UDP', http: { methods: ['GET'] } }),
    false,
  ],
  [
    'should accept TCP protocol with HTTP clause',
    GNP,
    allow({ protocol: 'TCP', http: { methods: ['GET'] } }),
    true,
  ],
  [
    'should accept Rule with valid annotations',
    GNP,
    allow({ metadata: { annotations: { foo: 'bar' } } }),
    true,
  ],
  [
    'should reject Rule with invalid annotations',
    GNP,
    allow({ metadata: { annotations: { '...': 'bar' } } }),
    false,
  ],
  // 2452: (API) BGPPeerSpec
  ['should accept valid BGPPeerSpec', 'BGPPeer', peer({ peerIP: '1.2.3.4' }), true],
  [
    'should reject invalid BGPPeerSpec (IPv4)',
    'BGPPeer',
    peer({ peerIP: '999.999.999.999' }),
    false,
  ],
  ['should reject invalid BGPPeerSpec (IPv6)', 'BGPPeer', peer({ peerIP: 'xyz:::' }), false],
  [
    'should reject BGPPeerSpec with both Node and NodeSelector',
    'BGPPeer',
    peer({ node: 'my-node', nodeSelector: 'has(mylabel)' }),
    false,
  ],
  [
    'should reject BGPPeerSpec with both PeerIP and PeerSelector',
    'BGPPeer',
    peer({ peerIP: '1.2.3.4', peerSelector: 'has(mylabel)' }),
    false,
  ],
  [
    'should reject BGPPeerSpec with both ASNumber and PeerSelector',
    'BGPPeer',
    peer({ asNumber: 61234, peerSelector: 'has(mylabel)' }),
    false,
  ],
  [
    'should accept BGPPeerSpec with NodeSelector and PeerSelector',
    'BGPPeer',
    peer({ nodeSelector: 'has(mylabel)', peerSelector: 'has(mylabel)' }),
    true,
  ],
  // crd_validation_test.go 192: the CEL rules' accepting case
  [
    'localWorkloadSelector with asNumber passes',
    'BGPPeer',
    peer({ localWorkloadSelector: "color == 'red'", asNumber: 65401 }),
    true,
  ],
  [
    'localWorkloadSelector with node and asNumber passes',
    'BGPPeer',
    peer({ localWorkloadSelector: "app == 'bird'", node: 'n1', asNumber: 65401 }),
    true,
  ],
  [
    'should reject LocalWorkloadSelector and empty ASNumber',
    'BGPPeer',
    peer({ localWorkloadSelector: 'has(labelone)' }),
    false,
  ],
  [
    'should reject both LocalWorkloadSelector and PeerSelector',
    'BGPPeer',
    peer({
      localWorkloadSelector: 'has(labelone)',
      peerSelector: 'has(labeltwo)',
      asNumber: 61234,
    }),
    false,
  ],
  [
    'should reject both LocalWorkloadSelector and PeerIP',
    'BGPPeer',
    peer({ localWorkloadSelector: 'has(labelone)', peerIP: '1.2.3.4', asNumber: 61234 }),
    false,
  ],
  [
    'should reject both positive KeepOriginalNextHop and non-empty NextHopMode',
    'BGPPeer',
    peer({ keepOriginalNextHop: true, nextHopMode: 'Auto' }, 'test-peer'),
    false,
  ],
  [
    'should reject ReachableBy without PeerIP',
    'BGPPeer',
    peer({ reachableBy: '100.200.0.0' }),
    false,
  ],
  [
    'should reject ReachableBy (IPv6) without PeerIP',
    'BGPPeer',
    peer({ reachableBy: 'aabb::abcd' }),
    false,
  ],
  [
    'should accept ReachableBy and PeerIP',
    'BGPPeer',
    peer({ peerIP: '9.9.9.9:4444', reachableBy: '1.2.3.4' }),
    true,
  ],
  [
    'should accept ReachableBy (IPv6) and PeerIP (IPv6)',
    'BGPPeer',
    peer({ peerIP: '[aabb::ffff]:4444', reachableBy: 'aabb:aabb::ffff' }),
    true,
  ],
  [
    'should reject invalid ReachableBy',
    'BGPPeer',
    peer({ peerIP: '9.9.9.9:4444', reachableBy: '999.999.999.999' }),
    false,
  ],
  [
    'should reject invalid ReachableBy (IPv6)',
    'BGPPeer',
    peer({ peerIP: '[aabb::ffff]:4444', reachableBy: 'xyz:::' }),
    false,
  ],
  [
    'should reject mismatched family of ReachableBy and PeerIP',
    'BGPPeer',
    peer({ peerIP: '1.2.3.4', reachableBy: 'aabb:aabb::ffff' }),
    false,
  ],
  [
    'should reject mismatched family of ReachableBy and PeerIP:Port',
    'BGPPeer',
    peer({ peerIP: '9.9.9.9:4444', reachableBy: 'aabb:aabb::ffff' }),
    false,
  ],
  [
    'should reject mismatched family of ReachableBy and PeerIP (IPv6)',
    'BGPPeer',
    peer({ peerIP: 'aabb:aabb::ffff', reachableBy: '1.2.3.4' }),
    false,
  ],
  [
    'should reject mismatched family of ReachableBy and PeerIP:Port (IPv6)',
    'BGPPeer',
    peer({ peerIP: '[aabb::ffff]:4444', reachableBy: '1.2.3.4' }),
    false,
  ],
  [
    'should accept BGPPeerSpec with Password',
    'BGPPeer',
    peer({
      peerIP: '1.2.3.4',
      password: { secretKeyRef: { name: 'tigera-bgp-passwords', key: 'my-peering' } },
    }),
    true,
  ],
  [
    'should reject invalid BGPPeerSpec (selector)',
    'BGPPeer',
    peer({ nodeSelector: "kubernetes.io/hostname: == 'casey-crc-kadm-node-4'" }),
    false,
  ],
  ['should accept port in PeerIP (IPv4)', 'BGPPeer', peer({ peerIP: '192.168.1.1:500' }), true],
  ['should accept port in PeerIP (IPv6)', 'BGPPeer', peer({ peerIP: '[9000::]:500' }), true],
  ...[
    '[192.168.0.0]:98956',
    '192.168.0.0:65536',
    '192.168.0.0:0',
    '192.168.0.330:170',
    '[9000::]:98956',
    '192.168.0.0:',
    '[9000::]:',
    '[9000::]:65536',
    '[9000::]:0',
    '[9000::FFFFF]:170',
    ':8552',
    '[]:8552',
  ].map((p): Row => [`should reject PeerIP ${p}`, 'BGPPeer', peer({ peerIP: p }), false]),
  // 2615: BGPPeer SourceAddress, MaxRestartTime
  [
    'BGPPeer with SourceAddress UseNodeIP',
    'BGPPeer',
    peer({ sourceAddress: 'UseNodeIP' }, 'test-peer'),
    true,
  ],
  [
    'BGPPeer with SourceAddress None',
    'BGPPeer',
    peer({ sourceAddress: 'None' }, 'test-peer'),
    true,
  ],
  [
    'BGPPeer with invalid SourceAddress',
    'BGPPeer',
    peer({ sourceAddress: 'rubbish' }, 'test-peer'),
    false,
  ],
  ['BGPPeer with valid MaxRestartTime', 'BGPPeer', peer({ maxRestartTime: '10s' }), true],
  // 2638: (API) NodeSpec
  ['should accept node with IPv4 BGP', 'Node', node({ bgp: { ipv4Address: '1.2.3.4/32' } }), true],
  [
    'should accept node with IPv6 BGP',
    'Node',
    node({ bgp: { ipv6Address: 'aabb:aabb::ffff/128' } }),
    true,
  ],
  [
    'should accept node with tunnel IP in BGP',
    'Node',
    node({ bgp: { ipv4IPIPTunnelAddr: '10.0.0.1' } }),
    true,
  ],
  ['should accept node with no BGP', 'Node', node({}), true],
  ['should reject node with an empty BGP', 'Node', node({ bgp: {} }), false],
  [
    'should reject node with IPv6 address in IPv4 field',
    'Node',
    node({ bgp: { ipv4Address: 'aabb:aabb::ffff/128' } }),
    false,
  ],
  [
    'should reject node with IPv4 address in IPv6 field',
    'Node',
    node({ bgp: { ipv6Address: '1.2.3.4/32' } }),
    false,
  ],
  [
    'should reject node with bad RR cluster ID #1',
    'Node',
    node({ bgp: { ipv4Address: '1.2.3.4/32', routeReflectorClusterID: 'abcdef' } }),
    false,
  ],
  [
    'should reject node with bad RR cluster ID #2',
    'Node',
    node({ bgp: { ipv4Address: '1.2.3.4/32', routeReflectorClusterID: '300.34.3.1' } }),
    false,
  ],
  [
    'should accept node with good RR cluster ID',
    'Node',
    node({ bgp: { ipv4Address: '1.2.3.4/32', routeReflectorClusterID: '245.0.0.1' } }),
    true,
  ],
  // 2660: Wireguard config on a node
  [
    'should allow valid IP address on Wireguard config',
    'Node',
    node({ wireguard: { interfaceIPv4Address: '1.2.3.4' } }),
    true,
  ],
  [
    'should reject invalid IP address on Wireguard config',
    'Node',
    node({ wireguard: { interfaceIPv4Address: 'foo.bar' } }),
    false,
  ],
  // 2690: GlobalNetworkPolicy validation
  ['GNP: disallow name with invalid character', GNP, gnp({}, 't~!s.h.i.ng'), false],
  ['GNP: disallow name with mixed case characters', GNP, gnp({}, 'tHiNg'), false],
  ['GNP: allow valid name', GNP, gnp({}, 'thing'), true],
  ['GNP: disallow k8s policy name', GNP, gnp({}, 'knp.default.thing'), false],
  ['GNP: disallow name with dot', GNP, gnp({}, 't.h.i.ng'), false],
  [
    'should reject GNP with both PreDNAT and DoNotTrack',
    GNP,
    gnp({ preDNAT: true, doNotTrack: true, applyOnForward: true }),
    false,
  ],
  [
    'should accept GNP PreDNAT but not DoNotTrack',
    GNP,
    gnp({ preDNAT: true, applyOnForward: true }),
    true,
  ],
  [
    'should accept GNP DoNotTrack but not PreDNAT',
    GNP,
    gnp({ preDNAT: false, doNotTrack: true, applyOnForward: true }),
    true,
  ],
  [
    'should reject pre-DNAT GNP egress rules',
    GNP,
    gnp({ preDNAT: true, applyOnForward: true, egress: [{ action: 'Allow' }] }),
    false,
  ],
  [
    'should accept pre-DNAT GNP ingress rules',
    GNP,
    gnp({ preDNAT: true, applyOnForward: true, ingress: [{ action: 'Allow' }] }),
    true,
  ],
  // 2745: ApplyOnForward
  [
    'should accept GNP ApplyOnForward but not PreDNAT',
    GNP,
    gnp({ preDNAT: false, applyOnForward: true }),
    true,
  ],
  [
    'should accept GNP ApplyOnForward but not DoNotTrack',
    GNP,
    gnp({ doNotTrack: false, applyOnForward: true }),
    true,
  ],
  [
    'should accept GNP ApplyOnForward and PreDNAT',
    GNP,
    gnp({ preDNAT: true, applyOnForward: true }),
    true,
  ],
  [
    'should accept GNP ApplyOnForward and DoNotTrack',
    GNP,
    gnp({ doNotTrack: true, applyOnForward: true }),
    true,
  ],
  [
    'should accept GNP no ApplyOnForward DoNotTrack PreDNAT',
    GNP,
    gnp({ preDNAT: false, doNotTrack: false, applyOnForward: false }),
    true,
  ],
  [
    'should reject GNP PreDNAT but not ApplyOnForward',
    GNP,
    gnp({ preDNAT: true, applyOnForward: false }),
    false,
  ],
  [
    'should reject GNP DoNotTrack but not ApplyOnForward',
    GNP,
    gnp({ doNotTrack: true, applyOnForward: false }),
    false,
  ],
  // 2811 (GNP) and 3210 (NP): Types
  ...[GNP, NP].flatMap((kind): Row[] => [
    [`${kind}: allow missing Types`, kind, np({}), true],
    [`${kind}: allow empty Types`, kind, np({ types: [] }), true],
    [`${kind}: allow ingress Types`, kind, np({ types: ['Ingress'] }), true],
    [`${kind}: allow egress Types`, kind, np({ types: ['Egress'] }), true],
    [`${kind}: allow ingress+egress Types`, kind, np({ types: ['Ingress', 'Egress'] }), true],
    [`${kind}: disallow repeated egress Types`, kind, np({ types: ['Egress', 'Egress'] }), false],
    [`${kind}: disallow unexpected value`, kind, np({ types: ['unexpected'] }), false],
    // 2870 (GNP), 3380 (NP): Types whatever the rules present
    [
      `${kind}: allow Types without ingress when Ingress present`,
      kind,
      np({ ingress: [{ action: 'Allow' }], types: ['Egress'] }),
      true,
    ],
    [
      `${kind}: allow Types without egress when Egress present`,
      kind,
      np({ egress: [{ action: 'Allow' }], types: ['Ingress'] }),
      true,
    ],
    [
      `${kind}: allow Types with ingress when Ingress present`,
      kind,
      np({ ingress: [{ action: 'Allow' }], types: ['Ingress'] }),
      true,
    ],
    [
      `${kind}: allow Types with ingress+egress when Ingress present`,
      kind,
      np({ ingress: [{ action: 'Allow' }], types: ['Ingress', 'Egress'] }),
      true,
    ],
    [
      `${kind}: allow Types with egress when Egress present`,
      kind,
      np({ egress: [{ action: 'Allow' }], types: ['Egress'] }),
      true,
    ],
    [
      `${kind}: allow Types with ingress+egress when Egress present`,
      kind,
      np({ egress: [{ action: 'Allow' }], types: ['Ingress', 'Egress'] }),
      true,
    ],
    [
      `${kind}: disallow HTTP in egress rule`,
      kind,
      np({
        egress: [{ action: 'Allow', http: { methods: ['GET'] } }],
        types: ['Ingress', 'Egress'],
      }),
      false,
    ],
    [`${kind}: disallow global() in selector field`, kind, np({ selector: 'global()' }), false],
    [
      `${kind}: disallow global() in serviceAccountSelector field`,
      kind,
      np({ serviceAccountSelector: 'global()' }),
      false,
    ],
    // 3461: PerformanceHints
    [`${kind}: disallow junk in PerformanceHints`, kind, np({ performanceHints: ['junk'] }), false],
    [
      `${kind}: allow AssumeNeededOnEveryNode in PerformanceHints`,
      kind,
      np({ performanceHints: ['AssumeNeededOnEveryNode'] }),
      true,
    ],
    [
      `${kind}: disallow dupes in PerformanceHints`,
      kind,
      np({ performanceHints: ['AssumeNeededOnEveryNode', 'AssumeNeededOnEveryNode'] }),
      false,
    ],
    [
      `${kind}: allow global() and projectcalico.org/name in EntityRule namespaceSelector`,
      kind,
      np({
        ingress: [
          {
            action: 'Allow',
            source: { namespaceSelector: 'global()' },
            destination: { namespaceSelector: "projectcalico.org/name == 'test'" },
          },
        ],
      }),
      true,
    ],
    [
      `${kind}: disallow global() in EntityRule selector field`,
      kind,
      np({ ingress: [{ action: 'Allow', source: { selector: 'global()' } }] }),
      false,
    ],
  ]),
  // 2908: pre-DNAT and Types
  [
    'allow ingress Types with pre-DNAT (gnp)',
    GNP,
    gnp({ preDNAT: true, applyOnForward: true, types: ['Ingress'] }),
    true,
  ],
  [
    'disallow egress Types with pre-DNAT (gnp)',
    GNP,
    gnp({ preDNAT: true, applyOnForward: true, types: ['Egress'] }),
    false,
  ],
  [
    'disallow ingress+egress Types with pre-DNAT (gnp)',
    GNP,
    gnp({ preDNAT: true, applyOnForward: true, types: ['Ingress', 'Egress'] }),
    false,
  ],
  [
    'disallow global() in GNP namespaceSelector field',
    GNP,
    gnp({ namespaceSelector: 'global()' }),
    false,
  ],
  // 3102: Tiers
  ['Tier: valid name', 'Tier', { name: 'foo', spec: { order: 100 } }, true],
  ['Tier: valid name with dash', 'Tier', { name: 'fo-o', spec: { order: 100 } }, true],
  ['Tier: disallow dot in name', 'Tier', { name: 'fo.o', spec: { order: 100 } }, false],
  ['Tier: allow valid name of 63 chars', 'Tier', { name: x(63), spec: { order: 100 } }, true],
  ['Tier: disallow a name of 64 chars', 'Tier', { name: x(64), spec: { order: 100 } }, false],
  ['Tier: disallow other chars', 'Tier', { name: 't~!s.h.i.ng', spec: { order: 100 } }, false],
  [
    'Tier: disallow default tier with an invalid order',
    'Tier',
    { name: 'default', spec: { order: 10, defaultAction: 'Deny' } },
    false,
  ],
  [
    'Tier: disallow default tier with an invalid default action',
    'Tier',
    { name: 'default', spec: { order: 1000000, defaultAction: 'Pass' } },
    false,
  ],
  [
    'Tier: allow default tier with the predefined order and default action',
    'Tier',
    { name: 'default', spec: { order: 1000000, defaultAction: 'Deny' } },
    true,
  ],
  [
    'Tier: disallow kube-admin tier with an invalid order',
    'Tier',
    { name: 'kube-admin', spec: { order: 10, defaultAction: 'Pass' } },
    false,
  ],
  [
    'Tier: disallow kube-admin tier with an invalid default action',
    'Tier',
    { name: 'kube-admin', spec: { order: 1000, defaultAction: 'Deny' } },
    false,
  ],
  [
    'Tier: allow kube-admin tier with the predefined order and default action',
    'Tier',
    { name: 'kube-admin', spec: { order: 1000, defaultAction: 'Pass' } },
    true,
  ],
  [
    'Tier: disallow kube-baseline tier with an invalid order',
    'Tier',
    { name: 'kube-baseline', spec: { order: 10, defaultAction: 'Pass' } },
    false,
  ],
  [
    'Tier: disallow kube-baseline tier with an invalid default action',
    'Tier',
    { name: 'kube-baseline', spec: { order: 10000000, defaultAction: 'Deny' } },
    false,
  ],
  [
    'Tier: allow kube-baseline tier with the predefined order and default action',
    'Tier',
    { name: 'kube-baseline', spec: { order: 10000000, defaultAction: 'Pass' } },
    true,
  ],
  [
    'Tier: allow a tier with a valid order',
    'Tier',
    { name: 'platform', spec: { order: 100 } },
    true,
  ],
  // 4405: the e2e Tier table
  ['Tier: should accept an empty Tier spec', 'Tier', { name: 'valid-tier', spec: {} }, true],
  // 3204: NetworkPolicy names
  ['NP: allow valid name', NP, np({}, 'thing'), true],
  ['NP: disallow name with dots', NP, np({}, 't.h.i.ng'), false],
  ['NP: disallow name with mixed case', NP, np({}, 'tHiNg'), false],
  ['NP: allow valid name of 253 chars', NP, np({}, x(253)), true],
  ['NP: disallow a name of 254 chars', NP, np({}, x(254)), false],
  ['NP: allow k8s policy name', NP, np({}, 'knp.default.thing'), true],
  // 3362: NetworkPolicy object metadata
  ['NP: allow name with single dot - tier', NP, np({}, 'th.ing'), true],
  ['NP: disallow name with multiple dot', NP, np({}, 't.h.i.ng'), false],
  // 3532: Service matches
  [
    'allow a Service match in an egress rule destination',
    NP,
    np({ egress: [{ action: 'Allow', destination: { services: svc } }] }),
    true,
  ],
  [
    'disallow a Service match in an egress rule source',
    NP,
    np({ egress: [{ action: 'Allow', source: { services: svc } }] }),
    false,
  ],
  [
    'allow a Service match in an ingress rule source',
    NP,
    np({ ingress: [{ action: 'Allow', source: { services: svc } }] }),
    true,
  ],
  [
    '"disallow a Service match in an ingress rule destination" (an egress rule: allowed)',
    NP,
    np({ egress: [{ action: 'Allow', destination: { services: svc } }] }),
    true,
  ],
  [
    'disallow a Service match AND a ServiceAccount match',
    NP,
    np({
      ingress: [
        {
          action: 'Allow',
          destination: { serviceAccounts: { names: ['serviceaccount'] }, services: svc },
        },
      ],
    }),
    false,
  ],
  [
    'disallow a Service match AND a Ports match on an egress destination rule',
    NP,
    np({ egress: [{ action: 'Allow', destination: { ports: [80], services: svc } }] }),
    false,
  ],
  [
    'disallow a Service match AND a NotPorts match on an egress destination rule',
    NP,
    np({ egress: [{ action: 'Allow', destination: { notPorts: [80], services: svc } }] }),
    false,
  ],
  [
    'allow a Service match AND a Ports match on an ingress source rule',
    NP,
    np({ ingress: [{ action: 'Allow', protocol: 'TCP', source: { ports: [80], services: svc } }] }),
    true,
  ],
  [
    'allow a Service match AND a NotPorts match on an ingress source rule',
    NP,
    np({
      ingress: [{ action: 'Allow', protocol: 'TCP', source: { notPorts: [80], services: svc } }],
    }),
    true,
  ],
  ...(
    [
      ['Nets', { nets: ['10.0.0.0/8'] }],
      ['NotNets', { notNets: ['10.0.0.0/8'] }],
      ['Selector', { selector: "x == 'y'" }],
      ['NotSelector', { notSelector: "x == 'y'" }],
      ['NamespaceSelector', { namespaceSelector: "x == 'y'" }],
    ] as const
  ).map(([what, e]): Row => [
    `disallow a Service match AND a ${what} match`,
    NP,
    np({ ingress: [{ action: 'Allow', destination: { ...e, services: svc } }] }),
    false,
  ]),
  [
    '"allow a Service match on a GNP" (in an ingress destination: refused)',
    GNP,
    gnp({ ingress: [{ action: 'Allow', destination: { services: svc } }] }),
    false,
  ],
  [
    'disallow a Service match without a namespace on a GNP',
    GNP,
    gnp({ egress: [{ action: 'Allow', destination: { services: { name: 'service1' } } }] }),
    false,
  ],
  [
    'disallow a Service match AND a NamespaceSelector match on a GNP',
    GNP,
    gnp({
      ingress: [{ action: 'Allow', destination: { namespaceSelector: "x == 'y'", services: svc } }],
    }),
    false,
  ],
  // 3861: global() in entity rules
  ['disallow global() in EntityRule selector', GNP, source({ selector: '  global()  ' }), false],
  [
    'allow global() in EntityRule namespaceSelector',
    GNP,
    source({ namespaceSelector: '  global()  ' }),
    true,
  ],
  [
    "disallow global() in namespaceSelector AND'd with other expressions",
    GNP,
    source({ namespaceSelector: ' global() && all()' }),
    false,
  ],
  [
    "disallow global() in namespaceSelector OR'd with other expressions",
    GNP,
    source({ namespaceSelector: 'global()||all()' }),
    false,
  ],
  [
    'disallow bad selectors in EntityRule selector',
    GNP,
    source({ selector: 'global() && bad' }),
    false,
  ],
  // 3939: HTTP matches (in an Allow ingress rule)
  [
    'allow HTTP Path with permitted match clauses',
    GNP,
    allow({ http: { paths: [{ exact: '/foo' }, { prefix: '/bar' }] } }),
    true,
  ],
  [
    'disallow HTTP Path with both exact and prefix',
    GNP,
    allow({ http: { paths: [{ exact: '/foo', prefix: '/bar' }, { prefix: '/bar' }] } }),
    false,
  ],
  ...['/fo?o', '/fo o', '/f#oo', '/fo#!?o'].map((p): Row => [
    `disallow HTTP Path ${p}`,
    GNP,
    allow({ http: { paths: [{ exact: p }] } }),
    false,
  ]),
  ['disallow HTTP Path with empty match clauses', GNP, allow({ http: { paths: [{}] } }), false],
  [
    'disallow HTTP Method with duplicate match clause',
    GNP,
    allow({ http: { methods: ['GET', 'GET', 'Foo'] } }),
    false,
  ],
  // 4322: catch-all notNets
  [
    'disallow a NotNets catch-all IPv4 CIDR match',
    NP,
    np({ ingress: [{ action: 'Allow', destination: { notNets: ['0.0.0.0/0'] } }] }),
    false,
  ],
  [
    'disallow a NotNets catch-all IPv6 CIDR match',
    NP,
    np({ ingress: [{ action: 'Allow', source: { notNets: ['::0/0'] } }] }),
    false,
  ],
  [
    'disallow a NotNets catch-all IPv6 CIDR match - non-standard representation',
    NP,
    np({ ingress: [{ action: 'Allow', source: { notNets: ['0:0:0::/0'] } }] }),
    false,
  ],
  // 1165: (API) IPPool
  ['should accept IP pool with IPv4 CIDR /26', 'IPPool', pool({ cidr: '1.2.3.0/26' }), true],
  ['should accept IP pool with IPv4 CIDR /10', 'IPPool', pool({ cidr: '1.0.0.0/10' }), true],
  [
    'should accept IP pool with IPv6 CIDR /122',
    'IPPool',
    pool({ cidr: 'aabb:aabb::/122', ipipMode: 'Never', vxlanMode: 'Never' }),
    true,
  ],
  [
    'should accept IP pool with IPv6 CIDR /10',
    'IPPool',
    pool({ cidr: 'aa00::/10', ipipMode: 'Never', vxlanMode: 'Never' }),
    true,
  ],
  [
    'should accept a disabled IP pool with IPv4 CIDR /27',
    'IPPool',
    pool({ cidr: '1.2.3.0/27', disabled: true }),
    true,
  ],
  [
    'should accept a disabled IP pool with IPv6 CIDR /128',
    'IPPool',
    pool({ cidr: 'aabb:aabb::ffff/128', ipipMode: 'Never', vxlanMode: 'Never', disabled: true }),
    true,
  ],
  ['should reject IP pool with IPv4 CIDR /27', 'IPPool', pool({ cidr: '1.2.3.0/27' }), false],
  [
    'should reject IP pool with IPv6 CIDR /128',
    'IPPool',
    pool({ cidr: 'aabb:aabb::ffff/128' }),
    false,
  ],
  ['should reject IP pool with IPv4 CIDR /33', 'IPPool', pool({ cidr: '1.2.3.4/33' }), false],
  ['should reject IP pool with IPv6 CIDR /129', 'IPPool', pool({ cidr: 'aa:bb::/129' }), false],
  [
    "should reject IPIPMode 'Always' for IPv6 pool",
    'IPPool',
    pool({ cidr: 'aabb:aabb::ffff/128', ipipMode: 'Always', vxlanMode: 'Never' }),
    false,
  ],
  [
    "should reject VXLANMode 'Always' for IPv6 /128 pool (smaller than a block)",
    'IPPool',
    pool({ cidr: 'aabb:aabb::ffff/128', vxlanMode: 'Always', ipipMode: 'Never' }),
    false,
  ],
  [
    'should reject IPv4 pool overlapping with Link Local range',
    'IPPool',
    pool({ cidr: '169.254.5.0/24' }),
    false,
  ],
  [
    'should reject IPv6 pool overlapping with Link Local range',
    'IPPool',
    pool({ cidr: 'fe80::/120' }),
    false,
  ],
  [
    'should accept IP pool with valid allowed uses',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', allowedUses: ['Workload', 'Tunnel'] }),
    true,
  ],
  [
    'should reject IP pool with invalid allowed uses combination',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', allowedUses: ['LoadBalancer', 'Tunnel'] }),
    false,
  ],
  [
    'should reject IP pool with invalid allowed uses',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', allowedUses: ['Garbage'] }),
    false,
  ],
  [
    'should accept IP pool with valid AssignmentMode',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', assignmentMode: 'Automatic' }),
    true,
  ],
  [
    'should reject IP pool with empty assignment mode',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', assignmentMode: '' }),
    false,
  ],
  [
    'should reject IP pool with LoadBalancer and disableBGPExport true',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', allowedUses: ['LoadBalancer'], disableBGPExport: true }),
    false,
  ],
  [
    'should reject IP pool with LoadBalancer and VXLAN mode enabled',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', allowedUses: ['LoadBalancer'], vxlanMode: 'Always' }),
    false,
  ],
  [
    'should reject IP pool with LoadBalancer and IPIP mode enabled',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', allowedUses: ['LoadBalancer'], ipipMode: 'Always' }),
    false,
  ],
  [
    'should reject IP pool with LoadBalancer and nodeSelector other than all()',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', allowedUses: ['LoadBalancer'], nodeSelector: '!all()' }),
    false,
  ],
  [
    'should reject IP pool with Tunnel allowedUse and namespaceSelector',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', allowedUses: ['Tunnel'], namespaceSelector: 'region == "east"' }),
    false,
  ],
  [
    'should reject IP pool with Tunnel and Workload allowedUses and namespaceSelector',
    'IPPool',
    pool({
      cidr: '1.0.0.0/10',
      allowedUses: ['Workload', 'Tunnel'],
      namespaceSelector: 'region == "east"',
    }),
    false,
  ],
  [
    'should accept IP pool with Tunnel allowedUse and no namespaceSelector',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', allowedUses: ['Tunnel'] }),
    true,
  ],
  [
    'should reject IP pool with invalid nodeSelector (global)',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', nodeSelector: 'global()' }),
    false,
  ],
  ...[
    'region == "east"',
    'region == "east" && environment == "production"',
    'region in {"east", "west"}',
    'has(team)',
    'all()',
  ].map((s): Row => [
    `should accept IP pool with nodeSelector ${s}`,
    'IPPool',
    pool({ cidr: '1.0.0.0/10', nodeSelector: s }),
    true,
  ]),
  [
    'should reject IP pool with invalid namespaceSelector (global)',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', namespaceSelector: 'global()' }),
    false,
  ],
  ...[
    'region == "east"',
    'team == "backend" || team == "frontend"',
    'environment contains "prod"',
  ].map((s): Row => [
    `should accept IP pool with namespaceSelector ${s}`,
    'IPPool',
    pool({ cidr: '1.0.0.0/10', namespaceSelector: s }),
    true,
  ]),
  // ippool.go's CEL rule: a pool for tunnels picks no namespaces (absent allowedUses is
  // not a Tunnel use for the rule: the CRD has no default)
  [
    'derived: IP pool for tunnels with a namespaceSelector',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', namespaceSelector: 'a == "b"', allowedUses: ['Tunnel'] }),
    false,
  ],
  [
    'derived: IP pool for workloads with a namespaceSelector',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', namespaceSelector: 'a == "b"', allowedUses: ['Workload'] }),
    true,
  ],
  [
    'derived: IP pool with assignmentMode Manual',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', assignmentMode: 'Manual' }),
    true,
  ],
  [
    'derived: IP pool with assignmentMode manual',
    'IPPool',
    pool({ cidr: '1.0.0.0/10', assignmentMode: 'manual' }),
    false,
  ],
  // 1448: (API) IPReservation
  ...(
    [
      ['an IP', ['10.0.0.1'], true],
      ['a CIDR', ['10.0.1.0/24'], true],
      ['an IP and a CIDR', ['10.0.1.0/24', '192.168.0.34'], true],
      ['a bad CIDR', ['garbage'], false],
      ['a too-long CIDR', ['10.0.1.0/33'], false],
      ['IPv6', ['10.0.0.1', 'cafe::1', 'cafe:f00d::/96'], true],
    ] as const
  ).map(([what, cidrs, ok]): Row => [
    `IPReservation with ${what}`,
    'IPReservation',
    { name: 'ip-reservation.name', spec: { reservedCIDRs: cidrs } },
    ok,
  ]),
  // 1492: (API) IPIPMode, 1519: VXLANMode
  [
    'should accept IPPool with no IPIP mode specified',
    'IPPool',
    pool({ cidr: '1.2.3.0/24' }),
    true,
  ],
  ...(
    [
      [{ ipipMode: 'Never', vxlanMode: 'Never' }, true],
      [{ ipipMode: 'Never' }, true],
      [{ ipipMode: 'Always' }, true],
      [{ ipipMode: 'CrossSubnet' }, true],
      [{ ipipMode: 'badVal' }, false],
      [{ ipipMode: 'never' }, false],
      [{ ipipMode: 'Always', vxlanMode: 'Always' }, false],
      [{ vxlanMode: 'Always' }, true],
      [{ vxlanMode: 'CrossSubnet' }, true],
      [{ vxlanMode: 'Never' }, true],
      [{ vxlanMode: 'never' }, false],
      [{ vxlanMode: 'badVal' }, false],
    ] as const
  ).map(([modes, ok]): Row => [
    `IPPool with ${JSON.stringify(modes)}`,
    'IPPool',
    pool({ cidr: '1.2.3.0/24', ...modes }, 'test-pool'),
    ok,
  ]),
  // Derived from the rules themselves, where the table has no row (validator.go at
  // 87c1590: validatePort/validatePortName (Kubernetes' IsValidPortName), validateProtocol,
  // numorstring.Protocol.SupportsPorts, validateRule's ParseCIDR and `net` tag,
  // validateIPPoolSpec's strict mask, processIPPort, BGPPeerSpec.TTLSecurity *uint8)
  ...(
    [
      ['HTTP', false],
      ['a_b', false],
      ['abcdefghijklmnop', false],
      ['a--b', false],
      ['123-456', false],
      ['-ab', false],
      ['web-8080', true],
      ['080', true],
      ['1:1', true],
    ] as const
  ).map(([p, ok]): Row => [
    `derived: port ${JSON.stringify(p)}`,
    GNP,
    allow({ protocol: 'TCP', destination: { ports: [p] } }),
    ok,
  ]),
  [
    'derived: protocol "06" is 6',
    GNP,
    allow({ protocol: '06', destination: { ports: [80] } }),
    true,
  ],
  [
    'derived: UDPLite has no ports',
    GNP,
    allow({ protocol: 'UDPLite', destination: { ports: [80] } }),
    false,
  ],
  [
    'derived: protocol 136 has no ports',
    GNP,
    allow({ protocol: 136, destination: { ports: [80] } }),
    false,
  ],
  ['derived: a bare address in rule nets', GNP, source({ nets: ['10.0.0.1'] }), false],
  ['derived: host bits in rule nets', GNP, source({ nets: ['10.0.0.5/24'] }), false],
  ['derived: a host route in rule nets', GNP, source({ nets: ['10.0.0.5/32'] }), true],
  ['derived: IP pool CIDR with host bits', 'IPPool', pool({ cidr: '10.0.0.5/24' }), false],
  [
    'derived: IP pool blockSize 0 is the default',
    'IPPool',
    pool({ cidr: '10.0.0.0/24', blockSize: 0 }),
    true,
  ],
  [
    'derived: BGPPeer ttlSecurity 0 (off)',
    'BGPPeer',
    peer({ peerIP: '10.0.0.1', ttlSecurity: 0 }),
    true,
  ],
  // TTLSecurity is a *uint8: every hop count up to 255 (BIRD's multihop 255: any TTL)
  [
    'derived: BGPPeer ttlSecurity 255',
    'BGPPeer',
    peer({ peerIP: '10.0.0.1', ttlSecurity: 255 }),
    true,
  ],
  [
    'derived: BGPPeer ttlSecurity 256',
    'BGPPeer',
    peer({ peerIP: '10.0.0.1', ttlSecurity: 256 }),
    false,
  ],
  // ASNumber is omitempty: 0 is unset, so the CEL rule "asNumber must be empty when
  // peerSelector is set" (self.asNumber == 0) lets it pass
  [
    'derived: BGPPeer peerSelector with asNumber 0',
    'BGPPeer',
    peer({ peerSelector: 'has(rr)', asNumber: 0 }),
    true,
  ],
  [
    'derived: BGPPeer peerSelector with asNumber 1',
    'BGPPeer',
    peer({ peerSelector: 'has(rr)', asNumber: 1 }),
    false,
  ],
  [
    'derived: BGPPeer peerIP with asNumber 0',
    'BGPPeer',
    peer({ peerIP: '10.0.0.1', asNumber: 0 }),
    true,
  ],
  ['derived: BGPPeer peerIP [IPv4]:port', 'BGPPeer', peer({ peerIP: '[192.168.0.1]:179' }), true],
  ['derived: BGPPeer peerIP port 0179', 'BGPPeer', peer({ peerIP: '192.168.0.1:0179' }), true],
  // the CRDs' MaxLength=1024 on selectors
  [
    'derived: an entity selector of 1025 characters',
    GNP,
    source({ selector: `a == '${x(1018)}'` }),
    false,
  ],
  [
    'derived: a policy selector of 1024 characters',
    NP,
    np({ selector: `a == '${x(1017)}'` }),
    true,
  ],
  [
    'derived: a policy selector of 1025 characters',
    NP,
    np({ selector: `a == '${x(1018)}'` }),
    false,
  ],
];
