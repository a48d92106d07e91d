// Resource schemas: Calico v3 manifests accepted unchanged, defaults as Calico documents
// them, every problem named with its path, and CRDs generated from the same schemas.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ValidationError, allCrds, goDurationSeconds, parseManifests, parseResource } from '../src';

function problems(text: string): string[] {
  try {
    parseManifests(text);
  } catch (err) {
    if (err instanceof ValidationError) return err.problems;
    throw err;
  }
  return [];
}

const CALICO_SET = fs.readFileSync(
  path.resolve(__dirname, '../../../deploy/examples/calico-v3.yaml'),
  'utf8',
);

describe('Calico v3 manifests', () => {
  test('a real manifest set is accepted unchanged, stored as tortie.io/v1 with defaults', () => {
    const rs = parseManifests(CALICO_SET);
    expect(rs.map((r) => `${r.kind}/${r.metadata.name}`)).toEqual([
      'IPPool/default-ipv4-ippool',
      'BGPPeer/rack1-tor',
      'BGPConfiguration/default',
      'GlobalNetworkPolicy/allow-tcp-6379',
      'NetworkPolicy/allow-tcp-6379',
      'NetworkSet/external-database',
    ]);
    expect(rs.every((r) => r.apiVersion === 'tortie.io/v1')).toBe(true);
    expect(rs[0].spec).toMatchObject({
      blockSize: 26,
      vxlanMode: 'Never',
      disabled: false,
      nodeSelector: 'all()',
    });
    expect(rs[2].spec).toMatchObject({ nodeToNodeMeshEnabled: false, asNumber: 63400 });
    // no default listenPort: a node's own configuration without one takes the default's
    expect(rs[2].spec).not.toHaveProperty('listenPort');
  });

  test('defaults as Calico documents them', () => {
    const [pool] = parseManifests(
      'kind: IPPool\napiVersion: tortie.io/v1\nmetadata: {name: p}\nspec: {cidr: "fd00::/48"}',
    );
    expect(pool.spec).toMatchObject({ blockSize: 122, ipipMode: 'Never', natOutgoing: false });
    const [bgp] = parseManifests(
      'kind: BGPConfiguration\napiVersion: tortie.io/v1\nmetadata: {name: default}\nspec: {}',
    );
    expect(bgp.spec).toMatchObject({ nodeToNodeMeshEnabled: true, asNumber: 64512 });
    const [np] = parseManifests(
      'kind: NetworkPolicy\napiVersion: tortie.io/v1\nmetadata: {name: p}\nspec: {}',
    );
    expect(np.metadata.namespace).toBe('default');
  });

  test('AS numbers in asdot notation', () => {
    const r = parseResource({
      apiVersion: 'tortie.io/v1',
      kind: 'BGPPeer',
      metadata: { name: 'p' },
      spec: { peerIP: '10.0.0.1:1790', asNumber: '1.10' },
    });
    expect(r.spec).toMatchObject({ asNumber: 65546 });
  });
});

describe('accepted where calicoctl accepts it', () => {
  const bgp = (kind: string, rest: string) =>
    `apiVersion: projectcalico.org/v3\nkind: ${kind}\nmetadata: {name: x}\n${rest}`;

  test('a BGPPeer naming BGPFilters, and a BGPFilter (Calico v3.26+)', () => {
    const [p, f] = parseManifests(
      `${bgp('BGPPeer', 'spec: {peerIP: 192.0.2.1, filters: [no-ten, rest]}')}\n---\n${bgp(
        'BGPFilter',
        'spec: {importV4: [{cidr: 10.0.0.0/8, matchOperator: In, prefixLength: {min: 16}, action: Reject}], exportV6: [{source: RemotePeers, interface: "eth*", peerType: eBGP, action: Accept}]}',
      )}`,
    );
    expect(p.spec).toMatchObject({ filters: ['no-ten', 'rest'] });
    const [local] = parseManifests(
      bgp('BGPPeer', 'spec: {peerIP: 192.0.2.1, localASNumber: "1.10"}'),
    );
    expect(local.spec).toMatchObject({ localASNumber: 65546 });
    expect(f.spec).toMatchObject({ importV4: [{ cidr: '10.0.0.0/8', prefixLength: { min: 16 } }] });
    expect(problems(bgp('BGPPeer', 'spec: {peerIP: 192.0.2.1, filters: [Bad_Name]}'))).toEqual([
      'BGPPeer x: spec.filters[0]: is not a BGPFilter name',
    ]);
    const [full] = parseManifests(
      bgp(
        'BGPFilter',
        'spec: {importV4: [{communities: {values: ["65000:100"]}, asPathPrefix: [65000, "1.10"], priority: 512, action: Accept, operations: [{setPriority: {value: 256}}, {addCommunity: {value: "65000:200:1"}}, {prependASPath: {prefix: [65001, 65002]}}]}]}',
      ),
    );
    expect(full.spec).toEqual({
      importV4: [
        {
          communities: { values: ['65000:100'] },
          asPathPrefix: [65000, 65546],
          priority: 512,
          action: 'Accept',
          operations: [
            { setPriority: { value: 256 } },
            { addCommunity: { value: '65000:200:1' } },
            { prependASPath: { prefix: [65001, 65002] } },
          ],
        },
      ],
    });
    expect(
      problems(
        bgp(
          'BGPFilter',
          'spec: {exportV4: [{communities: {values: ["65536:2"]}, action: Reject, operations: [{setPriority: {value: 1}}]}]}',
        ),
      ),
    ).toEqual([
      'BGPFilter x: spec.exportV4[0].communities.values[0]: "65536:2" is not a BGP community (aa:nn with 16-bit parts, or aa:nn:mm with 32-bit parts)',
      'BGPFilter x: spec.exportV4[0].operations: operations may only be used with action Accept',
    ]);
  });

  test('a BGPPeer with peerIP and no asNumber (the cluster AS is used)', () => {
    const [p] = parseManifests(bgp('BGPPeer', 'spec: {peerIP: 192.0.2.1}'));
    expect(p.spec).toEqual({ peerIP: '192.0.2.1' });
  });

  test('empty entries in the service IP lists (Calico skips them)', () => {
    const [c] = parseManifests(
      bgp(
        'BGPConfiguration',
        'spec:\n  serviceClusterIPs: [{}]\n  serviceExternalIPs: [{cidr: ""}, {cidr: 192.0.2.0/24}]\n  serviceLoadBalancerIPs: []',
      ),
    );
    expect(c.spec).toMatchObject({
      serviceClusterIPs: [{}],
      serviceExternalIPs: [{ cidr: '' }, { cidr: '192.0.2.0/24' }],
    });
    expect(problems(bgp('BGPConfiguration', 'spec: {serviceClusterIPs: [{cidr: x}]}'))).toEqual([
      'BGPConfiguration x: spec.serviceClusterIPs[0].cidr: "x" is not a valid CIDR',
    ]);
  });

  test('label and annotation values that are not strings, coerced as Go reads them', () => {
    const [n] = parseManifests(`apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: n1
  labels: {rack: 7, spine: true, off: false, ratio: 0.1, tiny: 0.00001, empty: null, text: a}
  annotations: {version: 2, big: 1234567.5}
spec: {}`);
    expect(n.metadata.labels).toEqual({
      rack: '7',
      spine: 'true',
      off: 'false',
      ratio: '0.1',
      tiny: '1e-05',
      empty: '',
      text: 'a',
    });
    expect(n.metadata.annotations).toEqual({ version: '2', big: '1.2345675e+06' });
    // and then checked as a label value, which "1.2345675e+06" is not ("+")
    expect(
      problems(
        'apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: x, labels: {big: 1234567.5}}',
      ),
    ).toEqual([
      'Node x: metadata.labels.big: "1.2345675e+06": a label value is at most 63 of A-Z a-z 0-9 - _ ., starting and ending alphanumeric',
    ]);
    // a map or a list is no string to Go either
    expect(
      problems(
        'apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: x, labels: {a: [1]}}',
      ),
    ).toEqual(['Node x: metadata.labels.a: Invalid input: expected string, received array']);
  });

  test('restart times are Go durations (metav1.Duration)', () => {
    expect(problems(bgp('BGPPeer', 'spec: {peerIP: 192.0.2.1, maxRestartTime: 1h2m3.5s}'))).toEqual(
      [],
    );
    expect(problems(bgp('BGPPeer', 'spec: {peerIP: 192.0.2.1, maxRestartTime: "120"}'))).toEqual([
      'BGPPeer x: spec.maxRestartTime: "120" is not a duration (Go syntax: "90s", "2m", "1h30m")',
    ]);
    expect(
      problems(
        bgp(
          'BGPConfiguration',
          'spec: {nodeToNodeMeshEnabled: false, nodeMeshMaxRestartTime: 90s}',
        ),
      ),
    ).toEqual([
      'BGPConfiguration x: spec.nodeMeshMaxRestartTime: nodeMeshMaxRestartTime cannot be set when nodeToNodeMeshEnabled is false',
    ]);
    expect(goDurationSeconds('1h2m3.5s')).toBe(3723.5);
    expect(goDurationSeconds('1.5m')).toBe(90);
    expect(goDurationSeconds('500ms')).toBe(0.5);
    expect(goDurationSeconds('0')).toBe(0);
    expect(goDurationSeconds('1d')).toBeUndefined();
    expect(goDurationSeconds('.s')).toBeUndefined();
  });

  test('BFD blocks: intervals are Go durations from 1ms to 60s, a multiplier 1..255, no other field', () => {
    expect(
      problems(
        bgp('BGPPeer', 'spec: {peerIP: 192.0.2.1, bfd: {minTxInterval: 100ms, multiplier: 3}}'),
      ),
    ).toEqual([]);
    expect(
      problems(
        bgp(
          'BGPConfiguration',
          'spec: {bfd: {minRxInterval: 500us, minTxInterval: fast, multiplier: 0, detect: 1}}',
        ),
      ),
    ).toEqual([
      'BGPConfiguration x: spec.bfd.minTxInterval: "fast" is not a duration (Go syntax: "90s", "2m", "1h30m")',
      'BGPConfiguration x: spec.bfd.minRxInterval: "500us" is outside 1ms..60s',
      'BGPConfiguration x: spec.bfd.multiplier: Too small: expected number to be >=1',
      'BGPConfiguration x: spec.bfd: Unrecognized key: "detect"',
    ]);
  });

  test('a missing or null spec is the empty spec', () => {
    const [a, b] = parseManifests(
      `${bgp('BGPConfiguration', '')}\n---\n${bgp('BGPPeer', 'spec: null')}`,
    );
    expect(a.spec).toMatchObject({ nodeToNodeMeshEnabled: true, asNumber: 64512 });
    expect(b.spec).toEqual({}); // no peerIP, no peerSelector: no session, as in Calico
    // and then validated as any spec
    expect(problems(bgp('IPPool', 'spec: null'))).toEqual([
      'IPPool x: spec.cidr: Invalid input: expected string, received undefined',
    ]);
  });
});

describe('validation names every problem with its path', () => {
  test('several documents, several problems, nothing accepted', () => {
    expect(
      problems(`
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: Bad_Name}
spec: {cidr: 10.0.0.0/33, blockSize: 26, ipipMode: Always, vxlanMode: Always}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: p}
spec: {peerIP: 10.0.0.1, asNumber: 4294967296}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: g, namespace: x}
spec:
  selector: "app == "
  ingress:
    - action: Allow
      destination: {ports: [80]}
    - action: Permit
---
apiVersion: v1
kind: Pod
metadata: {name: x}
`),
    ).toEqual([
      'document 1 (IPPool Bad_Name): metadata.name: must be lowercase alphanumerics, "-" or ".", each "."-separated part starting and ending alphanumeric',
      'document 1 (IPPool Bad_Name): spec.cidr: "10.0.0.0/33" is not a valid CIDR',
      'document 2 (BGPPeer p): spec.asNumber: 4294967296 is not a valid AS number (1-4294967295 or asdot "X.Y", or 0 for unset)',
      'document 3 (GlobalNetworkPolicy x/g): spec.selector: selector "app == " at column 8: expected a quoted value, found the end',
      'document 3 (GlobalNetworkPolicy x/g): spec.ingress[0].destination.ports: rules with numeric port or port range must set protocol to TCP or UDP or SCTP',
      'document 3 (GlobalNetworkPolicy x/g): spec.ingress[1].action: Invalid option: expected one of "Allow"|"Deny"|"Pass"|"Log"',
      'document 3 (GlobalNetworkPolicy x/g): metadata.namespace: GlobalNetworkPolicy is not namespaced',
      expect.stringContaining('document 4 (Pod x): kind: unknown kind "Pod"'),
    ]);
  });

  test('rule fields as Calico validates them: ICMP, protocols and ports', () => {
    const problems = (rule: object) => {
      try {
        parseResource({
          apiVersion: 'projectcalico.org/v3',
          kind: 'GlobalNetworkPolicy',
          metadata: { name: 'g' },
          spec: { ingress: [rule] },
        });
        return [];
      } catch (e) {
        return (e as ValidationError).problems.map((p) =>
          p.replace(/^GlobalNetworkPolicy g: /, ''),
        );
      }
    };
    expect(problems({ action: 'Allow', protocol: 'ICMP', icmp: { code: 0 } })).toEqual([
      'spec.ingress[0].icmp.code: ICMP code specified without an ICMP type',
    ]);
    expect(problems({ action: 'Allow', protocol: 'ICMP', icmp: { type: 255 } })).toEqual([
      expect.stringMatching(/^spec\.ingress\[0\]\.icmp\.type: /),
    ]);
    expect(problems({ action: 'Allow', protocol: 'TCP', icmp: { type: 8 } })).toEqual([
      'spec.ingress[0].icmp: ICMP fields require protocol to be ICMP or ICMPv6',
    ]);
    expect(problems({ action: 'Allow', protocol: 'ICMPv6', ipVersion: 4 })).toEqual([
      'spec.ingress[0].protocol: protocol ICMPv6 requires ipVersion 6',
    ]);
    expect(problems({ action: 'Deny', notProtocol: 1, ipVersion: 6 })).toEqual([
      'spec.ingress[0].notProtocol: protocol ICMP requires ipVersion 4',
    ]);
    // named ports alone need no protocol (Calico: they match the endpoint's own protocol)
    expect(problems({ action: 'Allow', destination: { ports: ['http'] } })).toEqual([]);
    expect(problems({ action: 'Allow', source: { notPorts: ['http', 80] } })).toEqual([
      'spec.ingress[0].source.notPorts: rules with numeric port or port range must set protocol to TCP or UDP or SCTP',
    ]);
    expect(problems({ action: 'Allow', protocol: 'ICMP', destination: { ports: ['x'] } })).toEqual([
      'spec.ingress[0].destination.ports: rules that specify ports must set protocol to TCP or UDP or SCTP (not "ICMP")',
    ]);
    expect(
      problems({ action: 'Allow', protocol: 'ICMP', icmp: { type: 3, code: 4 }, ipVersion: 4 }),
    ).toEqual([]);
  });

  test("FelixConfiguration failsafe ports as Calico's ProtoPort: any case, default TCP, SCTP", () => {
    const fc = (ports: object[]) =>
      parseResource({
        apiVersion: 'projectcalico.org/v3',
        kind: 'FelixConfiguration',
        metadata: { name: 'default' },
        spec: { failsafeInboundHostPorts: ports },
      });
    expect(
      (
        fc([{ protocol: 'tcp', port: 22 }, { port: 6443 }, { protocol: 'sctp', port: 9 }]).spec as {
          failsafeInboundHostPorts: unknown;
        }
      ).failsafeInboundHostPorts,
    ).toEqual([
      { protocol: 'TCP', port: 22 },
      { protocol: 'TCP', port: 6443 },
      { protocol: 'SCTP', port: 9 },
    ]);
    expect(() => fc([{ protocol: 'icmp', port: 1 }])).toThrow(
      "spec.failsafeInboundHostPorts[0].protocol: protocol must be 'TCP' or 'UDP' or 'SCTP'",
    );
  });

  test('cross-field rules', () => {
    expect(
      problems(
        'kind: IPPool\napiVersion: tortie.io/v1\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/24, blockSize: 20, ipipMode: Always, vxlanMode: CrossSubnet}',
      ),
    ).toEqual([
      'IPPool p: spec.blockSize: 20 is larger than the pool 10.0.0.0/24',
      'IPPool p: spec.vxlanMode: ipipMode and vxlanMode cannot both be enabled',
    ]);
    // Calico's CEL rules on BGPPeerSpec
    expect(
      problems(
        'kind: BGPPeer\napiVersion: tortie.io/v1\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, peerSelector: all(), asNumber: 1}',
      ),
    ).toEqual([
      'BGPPeer p: spec.peerIP: peerIP and peerSelector cannot both be set',
      "BGPPeer p: spec.asNumber: must be empty when peerSelector is set (the selected nodes' AS is used)",
    ]);
  });

  test('unknown fields are refused (except FelixConfiguration tuning fields)', () => {
    expect(
      problems('kind: Tier\napiVersion: tortie.io/v1\nmetadata: {name: t}\nspec: {ordre: 1}'),
    ).toEqual(['Tier t: spec: Unrecognized key: "ordre"']);
    expect(
      problems(
        'kind: FelixConfiguration\napiVersion: tortie.io/v1\nmetadata: {name: default}\nspec: {bpfEnabled: false, vxlanVNI: 4096}',
      ),
    ).toEqual([]);
  });

  test('garbage input is named', () => {
    expect(problems('kind: [unclosed')).toEqual([
      expect.stringMatching(/^input: not valid YAML or JSON: /),
    ]);
    expect(problems('"just a string"')).toEqual(['document: not an object']);
  });
});

describe('CRDs', () => {
  test('one structural CRD per kind, generated from the schemas', () => {
    const crds = allCrds();
    expect(crds).toHaveLength(22);
    const gnp = crds.find(
      (c) => (c.metadata as { name: string }).name === 'globalnetworkpolicies.tortie.io',
    )!;
    expect(gnp).toMatchObject({
      spec: { group: 'tortie.io', scope: 'Cluster', names: { kind: 'GlobalNetworkPolicy' } },
    });
    const text = JSON.stringify(crds);
    // structural schema: no constructs apiextensions.k8s.io/v1 rejects
    expect(text).not.toMatch(
      /"anyOf"|"oneOf"|"const"|"\$schema"|"additionalProperties":false|"type":\[/,
    );
  });

  test('deploy/crds matches the generator', () => {
    const dir = path.resolve(__dirname, '../../../deploy/crds');
    for (const crd of allCrds()) {
      const file = path.join(dir, `${(crd.metadata as { name: string }).name}.yaml`);
      expect(YAML.parse(fs.readFileSync(file, 'utf8'))).toEqual(crd);
    }
  });
});
