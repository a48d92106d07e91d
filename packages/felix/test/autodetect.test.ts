// Node IP autodetection: the pure choice for each IP_AUTODETECTION_METHOD (Calico's
// rules: default exclusions, highest ifindex first, global unicast only), the IP / IP6
// modes against an existing Node, and the address written to the Node resource.
import { MemoryDatastore } from '@tortie/datastore';
import { IpamClient } from '@tortie/ipam';
import {
  AutodetectError,
  detect,
  isGlobalUnicast,
  parseMethod,
  type HostFacts,
  type HostInterface,
} from '../src/autodetect';
import { gatherFacts, parseIpAddrJson, type HostProbe } from '../src/host-addresses';
import { resolveNodeAddresses } from '../src/node-addresses';
import { registerNode } from '../src/node-registration';

const IFACES: HostInterface[] = [
  { name: 'lo', index: 1, addresses: [{ address: '127.0.0.1', prefixLen: 8 }] },
  {
    name: 'eth0',
    index: 2,
    addresses: [
      { address: '169.254.9.9', prefixLen: 16 },
      { address: '10.10.0.5', prefixLen: 24 },
      { address: 'fe80::1', prefixLen: 64 },
      { address: 'fd00:10::5', prefixLen: 64 },
    ],
  },
  { name: 'eth1', index: 3, addresses: [{ address: '192.168.7.9', prefixLen: 16 }] },
  { name: 'docker0', index: 4, addresses: [{ address: '172.17.0.1', prefixLen: 16 }] },
  { name: 'cali0123456789a', index: 5, addresses: [{ address: '10.65.0.1', prefixLen: 32 }] },
  { name: 'ens5', index: 6, addresses: [{ address: '172.20.0.3', prefixLen: 20 }] },
  { name: 'vxlan.tortie', index: 7, addresses: [{ address: '10.244.0.1', prefixLen: 32 }] },
  { name: 'eth2', index: 8, addresses: [] },
];
const facts = (extra: Partial<HostFacts> = {}): HostFacts => ({ interfaces: IFACES, ...extra });
const pick = (method: string, version: 4 | 6 = 4, extra: Partial<HostFacts> = {}) =>
  detect(parseMethod(method), version, facts(extra)).cidr;

test.each([
  // highest ifindex first, as Calico; vxlan.tortie, cali*, docker*, lo excluded by default
  ['first-found', 4, '172.20.0.3/20'],
  ['', 4, '172.20.0.3/20'],
  // link-local fe80::1 is not global unicast
  ['first-found', 6, 'fd00:10::5/64'],
  ['interface=eth.*', 4, '192.168.7.9/16'],
  // 169.254.9.9 comes first on eth0 but is link-local
  ['interface=eth0', 4, '10.10.0.5/24'],
  ['interface=nomatch, eth0', 4, '10.10.0.5/24'],
  ['skip-interface=ens.*,eth1', 4, '10.10.0.5/24'],
  ['cidr=192.168.0.0/16', 4, '192.168.7.9/16'],
  // cidr= applies no default exclusions (Calico's FilteredEnumeration(nil, nil, cidrs))
  ['cidr=10.65.0.0/16', 4, '10.65.0.1/32'],
  ['cidr=10.0.0.0/8', 4, '10.244.0.1/32'],
  ['cidr=fd00::/8', 6, 'fd00:10::5/64'],
])('%s (IPv%s) picks %s', (method, version, want) => {
  expect(pick(method, version as 4 | 6)).toBe(want);
});

test('can-reach: the interface address equal to the source the kernel chose', () => {
  expect(
    pick('can-reach=203.0.113.7', 4, {
      reachSource: { address: '10.10.0.5', destination: '203.0.113.7' },
    }),
  ).toBe('10.10.0.5/24');
  const d = detect(parseMethod('can-reach=gw.example'), 4, {
    interfaces: IFACES,
    reachSource: { address: '192.168.7.9', destination: '192.168.0.1' },
  });
  expect(d).toEqual({
    cidr: '192.168.7.9/16',
    iface: 'eth1',
    how: 'IP_AUTODETECTION_METHOD=can-reach=gw.example: source towards gw.example (192.168.0.1)',
  });
});

test('kubernetes-internal-ip: the InternalIP of the right family, with its interface prefix', () => {
  expect(
    pick('kubernetes-internal-ip', 4, {
      internalIps: { addresses: ['fd00:10::5', '192.168.7.9'] },
    }),
  ).toBe('192.168.7.9/16');
  expect(
    pick('kubernetes-internal-ip', 6, {
      internalIps: { addresses: ['192.168.7.9', 'fd00:10::5'] },
    }),
  ).toBe('fd00:10::5/64');
});

test('failures name the method and every interface considered with why it was passed over', () => {
  expect(() => pick('interface=wlan.*')).toThrow(
    new AutodetectError(
      'IP_AUTODETECTION_METHOD=interface=wlan.* found no IPv4 address: interfaces considered: ' +
        'eth2 (does not match wlan.*), vxlan.tortie (does not match wlan.*), ens5 (does not match wlan.*), ' +
        'cali0123456789a (does not match wlan.*), docker0 (does not match wlan.*), eth1 (does not match wlan.*), ' +
        'eth0 (does not match wlan.*), lo (does not match wlan.*)',
    ),
  );
  expect(() => pick('cidr=10.99.0.0/16')).toThrow(
    'IP_AUTODETECTION_METHOD=cidr=10.99.0.0/16 found no IPv4 address: interfaces considered: ' +
      'eth2 (no IPv4 address), vxlan.tortie (10.244.0.1/32 is outside 10.99.0.0/16), ' +
      'ens5 (172.20.0.3/20 is outside 10.99.0.0/16), cali0123456789a (10.65.0.1/32 is outside 10.99.0.0/16), ' +
      'docker0 (172.17.0.1/16 is outside 10.99.0.0/16), eth1 (192.168.7.9/16 is outside 10.99.0.0/16), ' +
      'eth0 (169.254.9.9/16 is not global unicast; 10.10.0.5/24 is outside 10.99.0.0/16), ' +
      'lo (127.0.0.1/8 is not global unicast)',
  );
  expect(() => pick('skip-interface=ens5,eth.*')).toThrow(
    'IP_AUTODETECTION_METHOD=skip-interface=ens5,eth.* found no IPv4 address: interfaces considered: ' +
      'eth2 (excluded by eth.*), vxlan.tortie (excluded by ^vxlan\\.tortie.*), ens5 (excluded by ens5), ' +
      'cali0123456789a (excluded by ^cali.*), docker0 (excluded by ^docker.*), eth1 (excluded by eth.*), ' +
      'eth0 (excluded by eth.*), lo (excluded by ^lo)',
  );
  expect(() =>
    pick('can-reach=203.0.113.7', 4, {
      reachSource: { error: 'cannot reach 203.0.113.7: connect ENETUNREACH 203.0.113.7:80' },
    }),
  ).toThrow(
    'IP_AUTODETECTION_METHOD=can-reach=203.0.113.7 found no IPv4 address: cannot reach 203.0.113.7: connect ENETUNREACH 203.0.113.7:80',
  );
  expect(() =>
    pick('can-reach=203.0.113.7', 4, {
      reachSource: { address: '10.1.1.1', destination: '203.0.113.7' },
    }),
  ).toThrow(
    "the kernel's source address towards 203.0.113.7 is 10.1.1.1, which is on none of the interfaces: lo[127.0.0.1/8], eth0[169.254.9.9/16 10.10.0.5/24]",
  );
  expect(() =>
    pick('kubernetes-internal-ip', 4, { internalIps: { addresses: ['fd00:10::5'] } }),
  ).toThrow(
    'IP_AUTODETECTION_METHOD=kubernetes-internal-ip found no IPv4 address: the Kubernetes node has no IPv4 InternalIP (InternalIPs: fd00:10::5)',
  );
  expect(() =>
    pick('kubernetes-internal-ip', 4, { internalIps: { addresses: ['10.3.3.3'] } }),
  ).toThrow("the node's InternalIP 10.3.3.3 is on none of the interfaces");
  expect(() => detect(parseMethod('first-found'), 4, { interfaces: [] })).toThrow(
    'IP_AUTODETECTION_METHOD=first-found found no IPv4 address: the host has no interfaces',
  );
});

test('a bad method is named with its variable', () => {
  expect(() => parseMethod('first')).toThrow(
    'IP_AUTODETECTION_METHOD="first": not one of first-found, interface=REGEX,..., skip-interface=REGEX,..., can-reach=DEST, cidr=CIDR,..., kubernetes-internal-ip',
  );
  expect(() => parseMethod('interface=eth[', 'IP6_AUTODETECTION_METHOD')).toThrow(
    /^IP6_AUTODETECTION_METHOD="interface=eth\[": "eth\[" is not a regular expression/,
  );
  expect(() => parseMethod('cidr=10.0.0.0/8,10.0.0.300/8')).toThrow(
    'IP_AUTODETECTION_METHOD="cidr=10.0.0.0/8,10.0.0.300/8": "10.0.0.300/8" is not a CIDR',
  );
  expect(() => parseMethod('can-reach=')).toThrow('can-reach= needs an address or a host name');
});

test('global unicast as Go reads it', () => {
  for (const a of [
    '10.0.0.1',
    '192.168.1.1',
    '8.8.8.8',
    'fd00::1',
    '2001:db8::1',
    '::ffff:10.0.0.1',
  ])
    expect([a, isGlobalUnicast(a)]).toEqual([a, true]);
  for (const a of [
    '127.0.0.1',
    '169.254.1.1',
    '224.0.0.5',
    '255.255.255.255',
    '0.0.0.0',
    '::1',
    '::',
    'fe80::1',
    'ff02::1',
    '::ffff:127.0.0.1',
  ])
    expect([a, isGlobalUnicast(a)]).toEqual([a, false]);
});

test('ip -j addr output is read with each address and prefix', () => {
  const json = JSON.stringify([
    {
      ifindex: 2,
      ifname: 'eth0',
      addr_info: [{ family: 'inet', local: '10.0.0.5', prefixlen: 24 }],
    },
    {
      ifindex: 1,
      ifname: 'lo',
      addr_info: [
        { family: 'inet', local: '127.0.0.1', prefixlen: 8 },
        { family: 'inet6', local: '::1', prefixlen: 128 },
      ],
    },
    { ifindex: 3, ifname: 'eth1' },
  ]);
  expect(parseIpAddrJson(json)).toEqual([
    {
      name: 'lo',
      index: 1,
      addresses: [
        { address: '127.0.0.1', prefixLen: 8 },
        { address: '::1', prefixLen: 128 },
      ],
    },
    { name: 'eth0', index: 2, addresses: [{ address: '10.0.0.5', prefixLen: 24 }] },
    { name: 'eth1', index: 3, addresses: [] },
  ]);
});

/** A host with IFACES; can-reach and the Kubernetes node as given. */
function fakeProbe(
  opts: { reach?: string; internal?: string[] } = {},
): HostProbe & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    interfaces: async () => IFACES,
    reach: async (d) => {
      asked.push(`reach ${d}`);
      if (!opts.reach) throw new Error(`cannot reach ${d}: connect ENETUNREACH`);
      return { address: opts.reach, destination: d };
    },
    internalIps: async () => {
      asked.push('internalIps');
      if (!opts.internal) throw new Error('no Kubernetes API');
      return opts.internal;
    },
  };
}
const quiet = { info: () => undefined, warn: jest.fn() };

test('gatherFacts asks the host only what the method needs', async () => {
  const p = fakeProbe({ reach: '10.10.0.5' });
  await gatherFacts(p, parseMethod('first-found'), 4);
  expect(p.asked).toEqual([]);
  expect((await gatherFacts(p, parseMethod('can-reach=1.2.3.4'), 4)).reachSource).toEqual({
    address: '10.10.0.5',
    destination: '1.2.3.4',
  });
  expect((await gatherFacts(p, parseMethod('kubernetes-internal-ip'), 4)).internalIps).toEqual({
    error: 'cannot read the Kubernetes node: no Kubernetes API',
  });
});

test('IP / IP6 modes against the Node resource the node already has (Calico rules)', async () => {
  const probe = fakeProbe();
  const resolve = (
    env: NodeJS.ProcessEnv,
    existing?: { ipv4Address?: string; ipv6Address?: string },
  ) => resolveNodeAddresses(env, existing, probe, quiet);
  // IP unset on a new node: autodetect; on a node with an address: keep it
  expect(await resolve({})).toEqual({ ipv4Address: '172.20.0.3/20' });
  expect(await resolve({}, { ipv4Address: '10.9.9.9/24' })).toEqual({ ipv4Address: '10.9.9.9/24' });
  // IP=autodetect always detects
  expect(
    await resolve(
      { IP: 'autodetect', IP_AUTODETECTION_METHOD: 'interface=eth0' },
      { ipv4Address: '10.9.9.9/24' },
    ),
  ).toEqual({
    ipv4Address: '10.10.0.5/24',
  });
  // a failed detection keeps the old address, with a warning; without one it is an error
  quiet.warn.mockClear();
  expect(
    await resolve(
      { IP: 'autodetect', IP_AUTODETECTION_METHOD: 'interface=wlan0' },
      { ipv4Address: '10.9.9.9/24' },
    ),
  ).toEqual({
    ipv4Address: '10.9.9.9/24',
  });
  expect(quiet.warn).toHaveBeenCalledWith(
    'autodetection failed; keeping the Node resource address',
    expect.objectContaining({
      error: expect.stringContaining('interface=wlan0 found no IPv4 address'),
    }),
  );
  await expect(
    resolve({ IP: 'autodetect', IP_AUTODETECTION_METHOD: 'interface=wlan0' }),
  ).rejects.toThrow(
    'IP_AUTODETECTION_METHOD=interface=wlan0 found no IPv4 address: interfaces considered: eth2 (does not match wlan0)',
  );
  // explicit: as given; without a prefix, the interface's (or /32 with a warning)
  expect(await resolve({ IP: '10.10.0.5/16' })).toEqual({ ipv4Address: '10.10.0.5/16' });
  expect(await resolve({ IP: '192.168.7.9' })).toEqual({ ipv4Address: '192.168.7.9/16' });
  expect(await resolve({ IP: '10.1.2.3' })).toEqual({ ipv4Address: '10.1.2.3/32' });
  // IP=none keeps the node's, else no IPv4 (then IPv6 is needed)
  expect(await resolve({ IP: 'none' }, { ipv4Address: '10.9.9.9/24' })).toEqual({
    ipv4Address: '10.9.9.9/24',
  });
  expect(await resolve({ IP: 'none', IP6: 'autodetect' })).toEqual({
    ipv6Address: 'fd00:10::5/64',
  });
  await expect(resolve({ IP: 'none' })).rejects.toThrow(
    'no IPv4 or IPv6 address configured or detected (IP="none", IP6=""), required for bgp networking',
  );
  expect(await resolve({ IP: 'none', TORTIE_NETWORKING_BACKEND: 'none' })).toEqual({});
  // IPv6 only when asked for
  expect(await resolve({ IP: '10.10.0.5/24', IP6: 'fd00:10::5' })).toEqual({
    ipv4Address: '10.10.0.5/24',
    ipv6Address: 'fd00:10::5/64',
  });
  expect(await resolve({ IP: '10.10.0.5/24' }, { ipv6Address: 'fd00:1::1/64' })).toEqual({
    ipv4Address: '10.10.0.5/24',
    ipv6Address: 'fd00:1::1/64',
  });
  // can-reach through the probe
  expect(
    await resolveNodeAddresses(
      { IP_AUTODETECTION_METHOD: 'can-reach=203.0.113.7' },
      undefined,
      fakeProbe({ reach: '10.10.0.5' }),
      quiet,
    ),
  ).toEqual({ ipv4Address: '10.10.0.5/24' });
});

test('the detected address is written to the Node resource; a conflict names both nodes', async () => {
  const ds = new MemoryDatastore();
  const ipam = new IpamClient(ds);
  const a = await resolveNodeAddresses(
    { IP_AUTODETECTION_METHOD: 'interface=eth0' },
    undefined,
    fakeProbe(),
    quiet,
  );
  const n1 = await registerNode(ds, ipam, { name: 'node1', ...a });
  expect(n1.spec.bgp).toEqual({ ipv4Address: '10.10.0.5/24' });
  // the same address elsewhere (any prefix) is refused, and node2 is not written
  await expect(
    registerNode(ds, ipam, { name: 'node2', ipv4Address: '10.10.0.5/16' }),
  ).rejects.toThrow(
    'node "node2" cannot use the IPv4 address 10.10.0.5/16: node "node1" already uses 10.10.0.5/24 (address conflict)',
  );
  expect(await ds.get({ kind: 'Node', name: 'node2' })).toBeUndefined();
  await expect(
    registerNode(ds, ipam, {
      name: 'node2',
      ipv4Address: '10.10.0.6/24',
      ipv6Address: 'fd00::1/64',
    }),
  ).resolves.toBeDefined();
  await expect(
    registerNode(ds, ipam, {
      name: 'node3',
      ipv4Address: '10.10.0.7/24',
      ipv6Address: 'fd00:0::01/128',
    }),
  ).rejects.toThrow(
    'node "node3" cannot use the IPv6 address fd00:0::01/128: node "node2" already uses fd00::1/64',
  );
  // DISABLE_NODE_IP_CHECK; and the node itself re-registering is no conflict
  await expect(
    registerNode(
      ds,
      ipam,
      { name: 'node3', ipv4Address: '10.10.0.5/24' },
      { checkConflicts: false },
    ),
  ).resolves.toBeDefined();
  await expect(
    registerNode(ds, ipam, { name: 'node2', ipv4Address: '10.10.0.6/24' }),
  ).resolves.toBeDefined();
  // a node that moves to IP=none loses its IPv4 address
  expect(
    (await registerNode(ds, ipam, { name: 'node2', ipv6Address: 'fd00::1/64' })).spec.bgp,
  ).toEqual({
    ipv6Address: 'fd00::1/64',
  });
});
