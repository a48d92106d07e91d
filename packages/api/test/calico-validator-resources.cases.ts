// Rows of libcalico-go's validator table (lib/validator/v3/validator_test.go, the
// "Validator" DescribeTable, at projectcalico/calico 87c1590), transcribed as data for
// metadata, endpoints, network sets, BGPConfiguration, FelixConfiguration and
// BlockAffinity. The line each block starts at is given. A Go spec-only entry is a
// resource of that kind here (named "default" where Calico needs that name).
//
// expect: true (Calico accepts it, so do we), false (both refuse), or 'unsupported'
// (Calico accepts it; tortie refuses it, saying it does not support the feature, because
// ignoring it would be unsafe).
//
// Left out, with the reason:
// - KubeControllersConfiguration, BGPFilter, Staged* policies: kinds tortie does not have;
// - WorkloadEndpoint rows on fields tortie's endpoints do not carry (qosControls,
//   awsElasticIPs);
// - FelixConfiguration rows on Go-only types (protocolFromString(...) on numorstring
//   directly): covered through the fields that use them.

export type Row = [
  description: string,
  kind: string,
  manifest: { name?: string; labels?: unknown; annotations?: unknown; spec: unknown },
  expect: boolean | 'unsupported',
];

const x = (n: number) => 'x'.repeat(n);
const value63 = x(63);
const value64 = x(64);
const ANNOTATIONS_MAX = 256 * 1024;
const felix = (spec: unknown) => ({ name: 'default', spec });
const bgp = (spec: unknown) => ({ name: 'default', spec });
const pool = { cidr: '1.2.3.0/26' };
const wep = (spec: object) => ({ spec: { node: 'n1', interfaceName: 'cali0', ...spec } });
const hep = (spec: object) => ({ spec });
const withCommunities = {
  prefixAdvertisements: [{ cidr: '192.168.10.0/28', communities: ['100:100'] }],
};

export const ROWS: Row[] = [
  // 203: (API model) EndpointPorts, as a workload endpoint's ports
  [
    'EndpointPort with tcp protocol',
    'WorkloadEndpoint',
    wep({ ports: [{ name: 'a-valid-port', protocol: 'TCP', port: 1234 }] }),
    true,
  ],
  [
    'EndpointPort with udp protocol',
    'WorkloadEndpoint',
    wep({ ports: [{ name: 'a-valid-port', protocol: 'UDP', port: 1234 }] }),
    true,
  ],
  [
    'EndpointPort with sctp protocol',
    'WorkloadEndpoint',
    wep({ ports: [{ name: 'a-valid-port', protocol: 'SCTP', port: 1234 }] }),
    true,
  ],
  [
    'EndpointPort with empty name',
    'WorkloadEndpoint',
    wep({ ports: [{ name: '', protocol: 'UDP', port: 1234 }] }),
    false,
  ],
  [
    'EndpointPort with empty name but HostPort specified',
    'WorkloadEndpoint',
    wep({ ports: [{ protocol: 'UDP', port: 1234, hostPort: 2345 }] }),
    true,
  ],
  [
    'EndpointPort with no protocol',
    'WorkloadEndpoint',
    wep({ ports: [{ name: 'a-valid-port', port: 1234 }] }),
    false,
  ],
  [
    'EndpointPort with numeric protocol',
    'WorkloadEndpoint',
    wep({ ports: [{ name: 'a-valid-port', protocol: 123, port: 1234 }] }),
    false,
  ],
  [
    'EndpointPort with no port',
    'WorkloadEndpoint',
    wep({ ports: [{ name: 'a-valid-port', protocol: 'TCP' }] }),
    false,
  ],
  // 244: (API) WorkloadEndpointSpec
  [
    'WorkloadEndpointSpec with an unnamed port and no host mapping',
    'WorkloadEndpoint',
    wep({ ports: [{ protocol: 'TCP', port: 1234 }] }),
    false,
  ],
  [
    'WorkloadEndpointSpec with name-clashing ports',
    'WorkloadEndpoint',
    wep({
      ports: [
        { name: 'a-valid-port', protocol: 'TCP', port: 1234 },
        { name: 'a-valid-port', protocol: 'UDP', port: 5456 },
      ],
    }),
    true,
  ],
  [
    'WorkloadEndpointSpec with a port with an invalid host IP',
    'WorkloadEndpoint',
    wep({ ports: [{ protocol: 'TCP', port: 1234, hostPort: 2345, hostIP: '999.999.999.999' }] }),
    false,
  ],
  [
    'WorkloadEndpointSpec with an invalid source spoofing config',
    'WorkloadEndpoint',
    wep({ allowSpoofedSourcePrefixes: ['10.abcd'] }),
    false,
  ],
  [
    'WorkloadEndpointSpec with an ip or prefix in the source spoofing config',
    'WorkloadEndpoint',
    wep({ allowSpoofedSourcePrefixes: ['10.0.0.1', '192.168.0.0/16'] }),
    true,
  ],
  // 330: (API) HostEndpointSpec
  [
    'HostEndpointSpec with a port',
    'HostEndpoint',
    hep({
      interfaceName: 'eth0',
      node: 'node01',
      ports: [{ name: 'a-valid-port', protocol: 'TCP', port: 1234 }],
    }),
    true,
  ],
  [
    'HostEndpointSpec with an unnamed port',
    'HostEndpoint',
    hep({ interfaceName: 'eth0', node: 'node01', ports: [{ protocol: 'TCP', port: 1234 }] }),
    false,
  ],
  [
    'HostEndpointSpec with a missing node',
    'HostEndpoint',
    hep({ interfaceName: 'eth0', ports: [{ name: 'a-valid-port', protocol: 'TCP', port: 1234 }] }),
    false,
  ],
  [
    'HostEndpointSpec with name-clashing ports',
    'HostEndpoint',
    hep({
      interfaceName: 'eth0',
      node: 'node01',
      ports: [
        { name: 'a-valid-port', protocol: 'TCP', port: 1234 },
        { name: 'a-valid-port', protocol: 'UDP', port: 5456 },
      ],
    }),
    true,
  ],
  [
    'HostEndpointSpec with interfaceName *',
    'HostEndpoint',
    hep({ interfaceName: '*', node: 'node01' }),
    true,
  ],
  // 400: network sets
  ...(['GlobalNetworkSet', 'NetworkSet'] as const).flatMap((kind): Row[] => [
    [
      `${kind}Spec with CIDRs and IPs`,
      kind,
      { spec: { nets: ['10.0.0.1', '11.0.0.0/8', 'dead:beef::', 'dead:beef::/96'] } },
      true,
    ],
    [`${kind}Spec with bad CIDR`, kind, { spec: { nets: ['garbage'] } }, false],
    [
      `${kind} with labels`,
      kind,
      { name: 'testset', labels: { a: 'b' }, spec: { nets: ['10.0.0.1'] } },
      true,
    ],
    [
      `${kind} with reserved labels`,
      kind,
      {
        name: 'testset',
        labels: { 'projectcalico.org/namespace': 'foo' },
        spec: { nets: ['10.0.0.1'] },
      },
      false,
    ],
    [`${kind} with bad name`, kind, { name: 'test$set', spec: { nets: ['10.0.0.1'] } }, false],
  ]),
  // 520: BGPConfiguration
  ['BGP logging level Info', 'BGPConfiguration', bgp({ logSeverityScreen: 'Info' }), true],
  [
    'lowercase BGP logging level info',
    'BGPConfiguration',
    bgp({ logSeverityScreen: 'info' }),
    true,
  ],
  [
    'uppercase BGP logging level INFO',
    'BGPConfiguration',
    bgp({ logSeverityScreen: 'INFO' }),
    true,
  ],
  [
    'invalid BGP logging level invalidLvl',
    'BGPConfiguration',
    bgp({ logSeverityScreen: 'invalidLvl' }),
    false,
  ],
  [
    'BGP clusterIPs 1.2.3.4',
    'BGPConfiguration',
    bgp({ serviceClusterIPs: [{ cidr: '1.2.3.4' }] }),
    true,
  ],
  [
    'BGP externalIPs 8.8.8.8',
    'BGPConfiguration',
    bgp({ serviceExternalIPs: [{ cidr: '8.8.8.8' }] }),
    true,
  ],
  [
    'invalid BGP clusterIPs x.x.x.x',
    'BGPConfiguration',
    bgp({ serviceClusterIPs: [{ cidr: 'x.x.x.x' }] }),
    false,
  ],
  [
    'invalid BGP externalIPs y.y.y.y',
    'BGPConfiguration',
    bgp({ serviceExternalIPs: [{ cidr: 'y.y.y.y' }] }),
    false,
  ],
  [
    'IPv6 BGP clusterIP',
    'BGPConfiguration',
    bgp({ serviceClusterIPs: [{ cidr: 'fdf5:1234::102:304' }] }),
    true,
  ],
  [
    'IPv6 BGP externalIP',
    'BGPConfiguration',
    bgp({ serviceExternalIPs: [{ cidr: 'fdf5:1234::808:808' }] }),
    true,
  ],
  [
    'node mesh BGP password with the mesh enabled',
    'BGPConfiguration',
    bgp({
      nodeToNodeMeshEnabled: true,
      nodeMeshPassword: { secretKeyRef: { name: 'test-secret', key: 'bgp-password' } },
    }),
    true,
  ],
  [
    'node mesh BGP password with the mesh disabled',
    'BGPConfiguration',
    bgp({
      nodeToNodeMeshEnabled: false,
      nodeMeshPassword: { secretKeyRef: { name: 'test-secret', key: 'bgp-password' } },
    }),
    false,
  ],
  [
    'node mesh max restart time with the mesh enabled',
    'BGPConfiguration',
    bgp({ nodeToNodeMeshEnabled: true, nodeMeshMaxRestartTime: '200s' }),
    true,
  ],
  [
    'node mesh max restart time with the mesh disabled',
    'BGPConfiguration',
    bgp({ nodeToNodeMeshEnabled: false, nodeMeshMaxRestartTime: '200s' }),
    false,
  ],
  [
    'valid ignored interface names',
    'BGPConfiguration',
    bgp({ ignoredInterfaces: ['valid_iface*', 'interface_name'] }),
    true,
  ],
  ['ignored interface *', 'BGPConfiguration', bgp({ ignoredInterfaces: ['*'] }), false],
  // 626: (API) Labels and Annotations
  [
    'valid labelsToApply',
    'Profile',
    { spec: { labelsToApply: { 'project.calico.org/my-valid-label': value63 } } },
    true,
  ],
  [
    'excessively long value in labelsToApply',
    'Profile',
    { spec: { labelsToApply: { 'project.calico.org/my-valid-label': value64 } } },
    false,
  ],
  [
    '. at start of key in labelsToApply',
    'Profile',
    { spec: { labelsToApply: { '.mylabel': 'value' } } },
    false,
  ],
  [
    '! in labelsToApply',
    'Profile',
    { spec: { labelsToApply: { 'my!nvalid-label': 'value' } } },
    false,
  ],
  [
    '$ in labelsToApply',
    'Profile',
    { spec: { labelsToApply: { 'my-invalid-label$': 'value' } } },
    false,
  ],
  [
    'valid labels in metadata',
    'IPPool',
    { name: 'pool.name', labels: { 'projectcalico.org/label': value63 }, spec: pool },
    true,
  ],
  [
    'excessively long label value in metadata',
    'IPPool',
    { name: 'pool.name', labels: { 'projectcalico.org/label': value64 }, spec: pool },
    false,
  ],
  [
    'labels in metadata with an uppercase domain',
    'IPPool',
    { name: 'pool.name', labels: { 'ProjectCalico.org/label': 'value' }, spec: pool },
    false,
  ],
  [
    'labels in metadata with an uppercase name',
    'IPPool',
    { name: 'pool.name', labels: { 'projectcalico.org/Label': 'value' }, spec: pool },
    true,
  ],
  [
    'invalid annotations in metadata',
    'IPPool',
    { name: 'pool.name', annotations: { projectcalico$label: 'value' }, spec: pool },
    false,
  ],
  [
    'annotations with an uppercase domain and name',
    'IPPool',
    { name: 'pool.name', annotations: { 'ProjectCalico.org/Label': 'value' }, spec: pool },
    true,
  ],
  [
    'annotations of 256k',
    'IPPool',
    { name: 'pool.name', annotations: { key: x(ANNOTATIONS_MAX - 3) }, spec: pool },
    true,
  ],
  [
    'annotations over 256k',
    'IPPool',
    { name: 'pool.name', annotations: { key: x(ANNOTATIONS_MAX - 2) }, spec: pool },
    false,
  ],
  ['a name of 253 chars', 'IPPool', { name: x(253), spec: pool }, true],
  ['a name of 254 chars', 'IPPool', { name: x(254), spec: pool }, false],
  [
    'a valid nodeSelector',
    'IPPool',
    { name: 'pool.name', spec: { ...pool, nodeSelector: 'foo == "bar"' } },
    true,
  ],
  [
    'an invalid nodeSelector',
    'IPPool',
    { name: 'pool.name', spec: { ...pool, nodeSelector: 'this is not valid selector syntax' } },
    false,
  ],
  // 765: (API) Interface
  ['a valid interface', 'WorkloadEndpoint', wep({ interfaceName: 'Valid_Iface.0-9' }), true],
  [
    'an interface that is too long',
    'WorkloadEndpoint',
    wep({ interfaceName: 'interfaceTooLong' }),
    false,
  ],
  ['& in an interface', 'WorkloadEndpoint', wep({ interfaceName: 'Invalid&Intface' }), false],
  ['# in an interface', 'WorkloadEndpoint', wep({ interfaceName: 'Invalid#Intface' }), false],
  [': in an interface', 'WorkloadEndpoint', wep({ interfaceName: 'Invalid:Intface' }), false],
  // 772: (API) FelixConfiguration
  ...['Legacy', 'NFT', 'Auto'].map((v): Row => [
    `IptablesBackend ${v}`,
    'FelixConfiguration',
    felix({ iptablesBackend: v }),
    true,
  ]),
  ['IptablesBackend badVal', 'FelixConfiguration', felix({ iptablesBackend: 'badVal' }), false],
  [
    'DefaultEndpointToHostAction Drop',
    'FelixConfiguration',
    felix({ defaultEndpointToHostAction: 'Drop' }),
    true,
  ],
  [
    'lowercase DefaultEndpointToHostAction drop',
    'FelixConfiguration',
    felix({ defaultEndpointToHostAction: 'drop' }),
    true,
  ],
  [
    'IptablesFilterAllowAction Accept',
    'FelixConfiguration',
    felix({ iptablesFilterAllowAction: 'Accept' }),
    true,
  ],
  [
    'IptablesMangleAllowAction Return',
    'FelixConfiguration',
    felix({ iptablesMangleAllowAction: 'Return' }),
    true,
  ],
  [
    'IptablesMangleAllowAction Drop',
    'FelixConfiguration',
    felix({ iptablesMangleAllowAction: 'Drop' }),
    false,
  ],
  [
    'IptablesFilterDenyAction Drop',
    'FelixConfiguration',
    felix({ iptablesFilterDenyAction: 'Drop' }),
    true,
  ],
  [
    'IptablesFilterDenyAction Reject',
    'FelixConfiguration',
    felix({ iptablesFilterDenyAction: 'Reject' }),
    true,
  ],
  [
    'KubeNodePortRanges of 7',
    'FelixConfiguration',
    felix({
      kubeNodePortRanges: [
        '3000:4000',
        '5000:6000',
        '7000:8000',
        '8000:9000',
        '10000:11000',
        '12000:13000',
        15000,
      ],
    }),
    true,
  ],
  [
    'KubeNodePortRanges of 8',
    'FelixConfiguration',
    felix({
      kubeNodePortRanges: [
        '3000:4000',
        '5000:6000',
        '7000:8000',
        '8000:9000',
        '10000:11000',
        '12000:13000',
        '14000:15000',
        '16000:17000',
      ],
    }),
    false,
  ],
  [
    'a named port in KubeNodePortRanges',
    'FelixConfiguration',
    felix({ kubeNodePortRanges: ['testport'] }),
    false,
  ],
  [
    'ExternalNodesCIDRList of addresses and CIDRs',
    'FelixConfiguration',
    felix({ externalNodesList: ['1.1.1.1', '1.1.1.2/32', '1.1.3.0/23'] }),
    true,
  ],
  [
    'ExternalNodesCIDRList with garbage',
    'FelixConfiguration',
    felix({ externalNodesList: ['foobar', '1.1.1.1'] }),
    false,
  ],
  [
    'ExternalNodesCIDRList of IPv6',
    'FelixConfiguration',
    felix({ externalNodesList: ['abcd::1', 'abef::2/128'] }),
    false,
  ],
  ['empty OpenStackRegion', 'FelixConfiguration', felix({ openstackRegion: '' }), true],
  ['OpenStackRegion foo', 'FelixConfiguration', felix({ openstackRegion: 'foo' }), true],
  ['OpenStackRegion FOO', 'FelixConfiguration', felix({ openstackRegion: 'FOO' }), false],
  [
    'overlong OpenStackRegion',
    'FelixConfiguration',
    felix({ openstackRegion: 'my-region-has-a-very-long-and-extremely-interesting-name' }),
    false,
  ],
  ...['logSeverityScreen', 'logSeverityFile', 'logSeveritySys'].map((f): Row => [
    `${f} badVal`,
    'FelixConfiguration',
    felix({ [f]: 'badVal' }),
    false,
  ]),
  ['LogSeveritySys Critical', 'FelixConfiguration', felix({ logSeveritySys: 'Critical' }), false],
  ...(
    [
      ['logSeverityScreen', 'Fatal'],
      ['logSeverityScreen', 'Warning'],
      ['logSeverityScreen', 'Trace'],
      ['logSeverityFile', 'Debug'],
      ['logSeveritySys', 'Info'],
      ['logSeveritySys', 'Trace'],
    ] as const
  ).map((f): Row => [`${f[0]} ${f[1]}`, 'FelixConfiguration', felix({ [f[0]]: f[1] }), true]),
  [
    'IptablesNATOutgoingInterfaceFilter cali-123',
    'FelixConfiguration',
    felix({ iptablesNATOutgoingInterfaceFilter: 'cali-123' }),
    true,
  ],
  [
    'IptablesNATOutgoingInterfaceFilter cali@123',
    'FelixConfiguration',
    felix({ iptablesNATOutgoingInterfaceFilter: 'cali@123' }),
    false,
  ],
  ['BPFLogLevel badVal', 'FelixConfiguration', felix({ bpfLogLevel: 'badVal' }), false],
  ...['Info', 'Debug', 'Off'].map((v): Row => [
    `BPFLogLevel ${v}`,
    'FelixConfiguration',
    felix({ bpfLogLevel: v }),
    true,
  ]),
  [
    'BPFExternalServiceMode Foo',
    'FelixConfiguration',
    felix({ bpfExternalServiceMode: 'Foo' }),
    false,
  ],
  ...['Tunnel', 'DSR'].map((v): Row => [
    `BPFExternalServiceMode ${v}`,
    'FelixConfiguration',
    felix({ bpfExternalServiceMode: v }),
    true,
  ]),
  ...(
    [
      [-1, false],
      [0x100000000, false],
      [0, true],
      [0xffffffff, true],
    ] as const
  ).map(([v, ok]): Row => [
    `BPFExtToServiceConnmark ${v}`,
    'FelixConfiguration',
    felix({ bpfExtToServiceConnmark: v }),
    ok,
  ]),
  ['BPFDataIfacePattern *', 'FelixConfiguration', felix({ bpfDataIfacePattern: '*' }), false],
  [
    'BPFDataIfacePattern eth.*',
    'FelixConfiguration',
    felix({ bpfDataIfacePattern: 'eth.*' }),
    true,
  ],
  ...(
    [
      [{ min: 1, max: 250 }, true],
      [{ min: 0, max: 250 }, false],
      [{ min: -5, max: 250 }, false],
      [{ min: 50, max: 45 }, false],
      [{ min: 1, max: 253 }, false],
      [{ min: 8, max: 8 }, true],
    ] as const
  ).map(([r, ok]): Row => [
    `route table range ${r.min}-${r.max}`,
    'FelixConfiguration',
    felix({ routeTableRange: r }),
    ok,
  ]),
  ...(
    [
      [[{ min: 1, max: 10000 }], true],
      [[{ min: 8, max: 8 }], true],
      [
        [
          { min: 8, max: 8 },
          { min: 7, max: 7 },
        ],
        true,
      ],
      [[{ min: 0, max: 250 }], false],
      [[{ min: -5, max: 250 }], false],
      [[{ min: 50, max: 45 }], false],
      [[{ min: 1, max: 0xf00000000 }], false],
      [[{ min: 1, max: 0x10000 }], false],
      [
        [
          { min: 1, max: 2 },
          { min: 3, max: 4 },
          { min: 5, max: 0x10000 },
        ],
        false,
      ],
    ] as const
  ).map(([rs, ok]): Row => [
    `route table ranges ${JSON.stringify(rs)}`,
    'FelixConfiguration',
    felix({ routeTableRanges: rs }),
    ok,
  ]),
  [
    'both RouteTableRanges and RouteTableRange',
    'FelixConfiguration',
    felix({ routeTableRanges: [{ min: 1, max: 250 }], routeTableRange: { min: 1, max: 250 } }),
    false,
  ],
  ['MTUIfacePattern *', 'FelixConfiguration', felix({ mtuIfacePattern: '*' }), false],
  ['MTUIfacePattern eth.*', 'FelixConfiguration', felix({ mtuIfacePattern: 'eth.*' }), true],
  [
    'HealthTimeoutOverride 0',
    'FelixConfiguration',
    felix({ healthTimeoutOverrides: [{ name: 'Valid', timeout: '0s' }] }),
    true,
  ],
  [
    'HealthTimeoutOverride -1ns',
    'FelixConfiguration',
    felix({ healthTimeoutOverrides: [{ name: 'Valid', timeout: '-1ns' }] }),
    false,
  ],
  [
    'HealthTimeoutOverride with bad name',
    'FelixConfiguration',
    felix({ healthTimeoutOverrides: [{ name: '%', timeout: '10ns' }] }),
    false,
  ],
  [
    'HealthTimeoutOverride with no name',
    'FelixConfiguration',
    felix({ healthTimeoutOverrides: [{ name: '', timeout: '10ns' }] }),
    false,
  ],
  ...(
    [
      [0, false],
      [1, true],
      [10000, true],
      [2147483646, true],
      [2147483647, false],
    ] as const
  ).map(([v, ok]): Row => [
    `route priority ${v}`,
    'FelixConfiguration',
    felix({ ipv4ElevatedRoutePriority: v }),
    ok,
  ]),
  // 1013: (API) IPNAT, 1035: (API) WorkloadEndpointSpec
  [
    'IPNAT IPv4',
    'WorkloadEndpoint',
    wep({
      ipNetworks: ['1.2.3.4/32'],
      ipNATs: [{ internalIP: '1.2.3.4', externalIP: '100.200.0.0' }],
    }),
    true,
  ],
  [
    'IPNAT IPv6',
    'WorkloadEndpoint',
    wep({
      ipNetworks: ['aabb:aabb::ffff/128'],
      ipNATs: [{ internalIP: 'aabb:aabb::ffff', externalIP: 'aabb::abcd' }],
    }),
    true,
  ],
  [
    'IPNAT mixed IPv4 (int) and IPv6 (ext)',
    'WorkloadEndpoint',
    wep({
      ipNetworks: ['1.2.3.4/32'],
      ipNATs: [{ internalIP: '1.2.3.4', externalIP: 'aabb:aabb::ffff' }],
    }),
    false,
  ],
  [
    'IPNAT mixed IPv6 (int) and IPv4 (ext)',
    'WorkloadEndpoint',
    wep({
      ipNetworks: ['aabb:aabb::ffff/128'],
      ipNATs: [{ internalIP: 'aabb:aabb::ffff', externalIP: '1.2.3.4' }],
    }),
    false,
  ],
  ['workload endpoint with interface only', 'WorkloadEndpoint', wep({}), true],
  [
    'workload endpoint with networks and no nats',
    'WorkloadEndpoint',
    wep({ ipNetworks: ['1.2.3.4/32', '1.2.0.0/32', 'aabb:aabb::ffff/128', 'aabb:aabb::/128'] }),
    true,
  ],
  [
    'workload endpoint with IPv4 and IPv6 NAT covered by network',
    'WorkloadEndpoint',
    wep({
      ipNetworks: ['1.2.3.4/32', 'aabb:aabb::ffff/128'],
      ipNATs: [
        { internalIP: '1.2.3.4', externalIP: '100.200.0.0' },
        { internalIP: 'aabb:aabb::ffff', externalIP: 'aabb::abcd' },
      ],
    }),
    true,
  ],
  [
    'workload endpoint with mixed-case ContainerID',
    'WorkloadEndpoint',
    wep({ containerID: 'Cath01234-G' }),
    true,
  ],
  ['workload endpoint with no config', 'WorkloadEndpoint', { spec: {} }, false],
  [
    'workload endpoint with IPv4 networks that contain >1 address',
    'WorkloadEndpoint',
    wep({ ipNetworks: ['1.2.3.0/26'] }),
    false,
  ],
  [
    'workload endpoint with IPv6 networks that contain >1 address',
    'WorkloadEndpoint',
    wep({ ipNetworks: ['aabb:aabb::0000/122'] }),
    false,
  ],
  [
    'workload endpoint with nats and no networks',
    'WorkloadEndpoint',
    wep({ ipNATs: [{ internalIP: '100.200.0.0', externalIP: '1.2.3.4' }] }),
    false,
  ],
  [
    'workload endpoint with IPv4 NAT not covered by network',
    'WorkloadEndpoint',
    wep({
      ipNetworks: ['1.2.3.4/32'],
      ipNATs: [{ internalIP: '100.200.0.0', externalIP: '1.2.3.4' }],
    }),
    false,
  ],
  [
    'workload endpoint with IPv6 NAT not covered by network',
    'WorkloadEndpoint',
    wep({
      ipNetworks: ['aabb:aabb::ffff/128'],
      ipNATs: [{ internalIP: 'aabb::abcd', externalIP: 'aabb:aabb::ffff' }],
    }),
    false,
  ],
  [
    'workload endpoint containerID that starts with a dash',
    'WorkloadEndpoint',
    wep({ containerID: '-abcdefg' }),
    false,
  ],
  [
    'workload endpoint containerID that ends with a dash',
    'WorkloadEndpoint',
    wep({ containerID: 'abcdeSg-' }),
    false,
  ],
  [
    'workload endpoint containerID that contains a period',
    'WorkloadEndpoint',
    wep({ containerID: 'abcde-j.g' }),
    false,
  ],
  // 1115: (API) HostEndpointSpec
  [
    'host endpoint with interface and node',
    'HostEndpoint',
    hep({ interfaceName: 'eth0', node: 'node01' }),
    true,
  ],
  [
    'host endpoint with expected IPs',
    'HostEndpoint',
    hep({ expectedIPs: ['1.2.3.4', 'aabb:aabb::ffff'], node: 'node01' }),
    true,
  ],
  [
    'host endpoint with interface and expected IPs',
    'HostEndpoint',
    hep({ interfaceName: 'eth0', expectedIPs: ['1.2.3.4', 'aabb:aabb::ffff'], node: 'node01' }),
    true,
  ],
  ['host endpoint with no config', 'HostEndpoint', hep({}), false],
  [
    'host endpoint with blank interface and no IPs',
    'HostEndpoint',
    hep({ interfaceName: '', expectedIPs: [], node: 'node01' }),
    false,
  ],
  [
    'host endpoint with prefixed profile name',
    'HostEndpoint',
    hep({
      interfaceName: 'eth0',
      profiles: ['knp.default.fun', 'knp.default.funner.11234-a'],
      node: 'node01',
    }),
    true,
  ],
  [
    'host endpoint without prefixed profile name',
    'HostEndpoint',
    hep({ interfaceName: 'eth0', profiles: ['fun-funner1234'], node: 'node01' }),
    true,
  ],
  [
    'host endpoint with dots at the start of a profile name',
    'HostEndpoint',
    hep({ interfaceName: 'eth0', profiles: ['.fun'], node: 'node01' }),
    false,
  ],
  // 3979: DeviceRouteSourceAddress(IPv6), Wireguard, ServiceLoopPrevention, Windows
  ...(
    [
      ['deviceRouteSourceAddress', '1.2.3.4', true],
      ['deviceRouteSourceAddress', 'aabb:aabb::ffff', false],
      ['deviceRouteSourceAddress', '999.999.999.999', false],
      ['deviceRouteSourceAddress', '1.2.3.4/32', false],
      ['deviceRouteSourceAddressIPv6', 'aabb:aabb::ffff', true],
      ['deviceRouteSourceAddressIPv6', '1.2.3.4', false],
      ['deviceRouteSourceAddressIPv6', 'xyz:::', false],
      ['deviceRouteSourceAddressIPv6', 'aabb:aabb::ffff/128', false],
      ['wireguardListeningPort', 12345, true],
      ['wireguardListeningPort', 99999, false],
      ['wireguardRoutingRulePriority', 12345, true],
      ['wireguardRoutingRulePriority', 99999, false],
      ['wireguardInterfaceName', 'wg0', true],
      ['wireguardInterfaceName', 'wg&0', false],
      ['serviceLoopPrevention', 'Drop', true],
      ['serviceLoopPrevention', 'Reject', true],
      ['serviceLoopPrevention', 'Disabled', true],
      ['serviceLoopPrevention', 'Wibbly', false],
      ['windowsManageFirewallRules', 'Disabled', true],
      ['windowsManageFirewallRules', 'Enabled', true],
      ['windowsManageFirewallRules', 'blah', false],
    ] as const
  ).map(([f, v, ok]): Row => [`${f} ${String(v)}`, 'FelixConfiguration', felix({ [f]: v }), ok]),
  // 4218: BGP communities in BGPConfigurationSpec
  [
    'community without prefix advertisements',
    'BGPConfiguration',
    bgp({ communities: [{ name: 'community-test', value: '101:5695' }] }),
    false,
  ],
  [
    'community with value and without name',
    'BGPConfiguration',
    bgp({ communities: [{ value: '536:785' }], ...withCommunities }),
    false,
  ],
  [
    'community with name and without value',
    'BGPConfiguration',
    bgp({ communities: [{ name: 'community-test' }], ...withCommunities }),
    false,
  ],
  ...(
    [
      ['100:520', true],
      ['100:520:56', true],
      ['100', false],
      ['ab-n', false],
      ['65536:999999', false],
      ['4147483647:999999', false],
    ] as const
  ).map(([v, ok]): Row => [
    `community value ${v}`,
    'BGPConfiguration',
    bgp({ communities: [{ name: 'community-test', value: v }], ...withCommunities }),
    ok,
  ]),
  [
    'prefix advertisement without CIDR',
    'BGPConfiguration',
    bgp({ prefixAdvertisements: [{ communities: ['100:5964'] }] }),
    false,
  ],
  [
    'prefix advertisement without communities',
    'BGPConfiguration',
    bgp({ prefixAdvertisements: [{ cidr: '192.168.10.0/28' }] }),
    false,
  ],
  ...(
    [
      ['192.168.10.0/28', ['100:5964:50'], true],
      ['2001:4860::/128', ['100:5964:50'], true],
      ['2001:4860::/128', ['100:5964', '200:594'], true],
      ['2001:4860::/128', ['100:5964:1147483647'], true],
      ['2001:4860::/128', ['100:1147483647'], false],
      ['2001:4860::/128', ['100:100:5147483647'], false],
      ['2001:4860::/128', ['100:5964:1147483647', '100:5223'], true],
      ['2001:4860::/128', ['nonexistent-community'], false],
    ] as const
  ).map(([cidr, communities, ok]): Row => [
    `prefix advertisement ${cidr} ${communities.join(' ')}`,
    'BGPConfiguration',
    bgp({ prefixAdvertisements: [{ cidr, communities }] }),
    ok,
  ]),
  [
    'community name whose value is defined',
    'BGPConfiguration',
    bgp({
      communities: [{ name: 'community-test', value: '101:5695' }],
      prefixAdvertisements: [
        { cidr: '2001:4860::/128', communities: ['community-test', '8988:202'] },
      ],
    }),
    true,
  ],
  [
    'LocalWorkloadPeeringIPV4 and IPV6',
    'BGPConfiguration',
    bgp({ localWorkloadPeeringIPV4: '1.2.3.4', localWorkloadPeeringIPV6: 'aabb:aabb::ffff' }),
    true,
  ],
  [
    'an invalid IPv4 in LocalWorkloadPeeringIPV4',
    'BGPConfiguration',
    bgp({ localWorkloadPeeringIPV4: '999.999.999.999' }),
    false,
  ],
  [
    'an invalid IPv6 in LocalWorkloadPeeringIPV6',
    'BGPConfiguration',
    bgp({ localWorkloadPeeringIPV6: 'xyz:::' }),
    false,
  ],
  // derived: the fields' `ipv4` / `ipv6` tags refuse the other family
  [
    'an IPv6 address in LocalWorkloadPeeringIPV4',
    'BGPConfiguration',
    bgp({ localWorkloadPeeringIPV4: 'aabb:aabb::ffff' }),
    false,
  ],
  [
    'an IPv4 address in LocalWorkloadPeeringIPV6',
    'BGPConfiguration',
    bgp({ localWorkloadPeeringIPV6: '1.2.3.4' }),
    false,
  ],
  // 4302: block affinities
  [
    'non-deleted block affinity',
    'BlockAffinity',
    {
      spec: {
        deleted: false,
        state: 'confirmed',
        cidr: '10.0.0.0/24',
        node: 'node-1',
        type: 'host',
      },
    },
    true,
  ],
  [
    'deleted block affinity',
    'BlockAffinity',
    {
      spec: {
        deleted: true,
        state: 'confirmed',
        cidr: '10.0.0.0/24',
        node: 'node-1',
        type: 'host',
      },
    },
    false,
  ],
  // 4330: BPFForceTrackPacketsFromIfaces
  [
    'BPFForceTrackPacketsFromIfaces docker+',
    'FelixConfiguration',
    felix({ bpfForceTrackPacketsFromIfaces: ['docker+'] }),
    true,
  ],
  [
    'BPFForceTrackPacketsFromIfaces docker0,docker1',
    'FelixConfiguration',
    felix({ bpfForceTrackPacketsFromIfaces: ['docker0', 'docker1'] }),
    true,
  ],
  [
    'BPFForceTrackPacketsFromIfaces cali-123,cali@456',
    'FelixConfiguration',
    felix({ bpfForceTrackPacketsFromIfaces: ['cali-123', 'cali@456'] }),
    false,
  ],
];
