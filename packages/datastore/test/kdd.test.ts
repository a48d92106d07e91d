import { execFileSync } from 'node:child_process';
import { parseResource } from '@tortie/api';
import {
  interfaceName,
  k8sNodeToNode,
  k8sNetworkPolicyToResource,
  namespaceToProfile,
  nodeAnnotationPatch,
  parseWorkloadEndpointName,
  podAnnotationsOf,
  podEndpointName,
  k8sServiceToResource,
  serviceStatusPatch,
  podToWorkloadEndpoint,
  serviceAccountToProfile,
  workloadEndpointName,
  type K8sPod,
} from '../src';

const pod: K8sPod = {
  metadata: {
    name: 'web-7d9f-x2x',
    namespace: 'prod',
    labels: { app: 'web' },
    resourceVersion: '42',
  },
  spec: {
    nodeName: 'node-1',
    serviceAccountName: 'frontend',
    containers: [
      { ports: [{ name: 'http', containerPort: 8080 }, { containerPort: 9090 }] },
      { ports: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }] },
    ],
  },
  status: { phase: 'Running', podIPs: [{ ip: '10.244.1.5' }, { ip: 'fd00::5' }] },
};

test('interface name is cali + 11 hex chars of SHA-1("<namespace>.<pod>")', () => {
  const sha = execFileSync('sha1sum', { input: 'prod.web-7d9f-x2x' }).toString().slice(0, 11);
  expect(interfaceName('prod', 'web-7d9f-x2x')).toBe(`cali${sha}`);
  expect(interfaceName('prod', 'web-7d9f-x2x')).toHaveLength(15);
});

test('workload endpoint names double the dashes of their parts, as Calico does', () => {
  expect(workloadEndpointName('node-1', 'web-7d9f-x2x')).toBe('node--1-k8s-web--7d9f--x2x-eth0');
});

test('a running pod becomes a valid WorkloadEndpoint with Calico labels, profiles and named ports', () => {
  const wep = podToWorkloadEndpoint(pod)!;
  expect(parseResource(wep)).toMatchObject({ kind: 'WorkloadEndpoint' });
  expect(wep.metadata).toMatchObject({
    name: 'node--1-k8s-web--7d9f--x2x-eth0',
    namespace: 'prod',
    resourceVersion: '42',
    labels: {
      app: 'web',
      'projectcalico.org/namespace': 'prod',
      'projectcalico.org/orchestrator': 'k8s',
      'projectcalico.org/serviceaccount': 'frontend',
    },
  });
  expect(wep.spec).toMatchObject({
    node: 'node-1',
    pod: 'web-7d9f-x2x',
    ipNetworks: ['10.244.1.5/32', 'fd00::5/128'],
    profiles: ['kns.prod', 'ksa.prod.frontend'],
    ports: [
      { name: 'http', protocol: 'TCP', port: 8080 },
      { name: 'dns', protocol: 'UDP', port: 53 },
    ],
  });
});

test('pods without a node, without an address, on the host network, or finished have no endpoint', () => {
  expect(
    podToWorkloadEndpoint({ ...pod, spec: { ...pod.spec, nodeName: undefined } }),
  ).toBeUndefined();
  expect(podToWorkloadEndpoint({ ...pod, status: { phase: 'Pending' } })).toBeUndefined();
  expect(
    podToWorkloadEndpoint({ ...pod, spec: { ...pod.spec, hostNetwork: true } }),
  ).toBeUndefined();
  expect(
    podToWorkloadEndpoint({ ...pod, status: { ...pod.status, phase: 'Succeeded' } }),
  ).toBeUndefined();
});

test("before the kubelet reports the pod's IPs, the CNI plugin's annotations give them (Calico's getPodIPs order)", () => {
  const annotated = (annotations: Record<string, string>, status?: K8sPod['status']): K8sPod => ({
    ...pod,
    metadata: { ...pod.metadata, annotations },
    status: status ?? { phase: 'Pending' },
  });
  const a = {
    'cni.projectcalico.org/podIP': '10.244.1.9/32',
    'cni.projectcalico.org/podIPs': '10.244.1.9/32,fd00::9/128',
    'cni.projectcalico.org/containerID': 'abc123',
  };
  const wep = podToWorkloadEndpoint(annotated(a))!;
  expect(parseResource(wep)).toMatchObject({ kind: 'WorkloadEndpoint' });
  expect(wep.spec).toMatchObject({
    ipNetworks: ['10.244.1.9/32', 'fd00::9/128'],
    containerID: 'abc123',
  });
  // the singular annotation alone; bare addresses get their host prefix
  expect(
    podToWorkloadEndpoint(annotated({ 'cni.projectcalico.org/podIP': '10.244.1.9' }))!.spec
      .ipNetworks,
  ).toEqual(['10.244.1.9/32']);
  // the status wins once the kubelet wrote it
  expect(
    podToWorkloadEndpoint(annotated(a, { phase: 'Running', podIP: '10.244.1.10' }))!.spec
      .ipNetworks,
  ).toEqual(['10.244.1.10/32']);
  // emptied by DEL: no endpoint; emptied while deleted with the status still there: finished
  expect(
    podToWorkloadEndpoint(
      annotated({ ...a, 'cni.projectcalico.org/podIP': '', 'cni.projectcalico.org/podIPs': '' }),
    ),
  ).toBeUndefined();
  const deleting = annotated(
    { ...a, 'cni.projectcalico.org/podIP': '', 'cni.projectcalico.org/podIPs': '' },
    pod.status,
  );
  expect(podToWorkloadEndpoint(deleting)).toBeDefined();
  deleting.metadata.deletionTimestamp = '2026-12-05T21:00:00Z';
  expect(podToWorkloadEndpoint(deleting)).toBeUndefined();
  expect(podEndpointName(deleting)).toBe('node--1-k8s-web--7d9f--x2x-eth0');
  // a malformed address makes no endpoint rather than an invalid one
  expect(
    podToWorkloadEndpoint(annotated({ 'cni.projectcalico.org/podIP': 'not-an-ip' })),
  ).toBeUndefined();
});

test('the annotations an endpoint write puts on its pod, and endpoint names parsed back', () => {
  const wep = podToWorkloadEndpoint(pod)!;
  expect(podAnnotationsOf({ ...wep, spec: { ...wep.spec, containerID: 'c1' } })).toEqual({
    'cni.projectcalico.org/podIP': '10.244.1.5/32',
    'cni.projectcalico.org/podIPs': '10.244.1.5/32,fd00::5/128',
    'cni.projectcalico.org/containerID': 'c1',
  });
  expect(podAnnotationsOf({ ...wep, spec: { ...wep.spec, ipNetworks: [] } })).toEqual({});
  expect(parseWorkloadEndpointName('node--1-k8s-web--7d9f--x2x-eth0')).toEqual({
    node: 'node-1',
    orchestrator: 'k8s',
    workload: 'web-7d9f-x2x',
    endpoint: 'eth0',
  });
  // Kubernetes names neither start nor end with a dash, so a separator is one dash
  expect(parseWorkloadEndpointName(workloadEndpointName('n--1.example', 'a-b--c'))).toEqual({
    node: 'n--1.example',
    orchestrator: 'k8s',
    workload: 'a-b--c',
    endpoint: 'eth0',
  });
  expect(parseWorkloadEndpointName('node1-k8s-web')).toBeUndefined();
  expect(parseWorkloadEndpointName('a-b-c-d-e')).toBeUndefined();
});

test('namespaces and service accounts become profiles whose labels endpoints inherit', () => {
  const kns = namespaceToProfile({ metadata: { name: 'prod', labels: { env: 'production' } } });
  expect(parseResource(kns)).toMatchObject({ kind: 'Profile' });
  expect(kns).toMatchObject({
    metadata: { name: 'kns.prod' },
    spec: {
      labelsToApply: { 'pcns.projectcalico.org/name': 'prod', 'pcns.env': 'production' },
      ingress: [{ action: 'Allow' }],
    },
  });
  const ksa = serviceAccountToProfile({
    metadata: { name: 'frontend', namespace: 'prod', labels: { team: 'a' } },
  });
  expect(parseResource(ksa)).toMatchObject({ kind: 'Profile' });
  expect(ksa.spec.labelsToApply).toEqual({
    'pcsa.projectcalico.org/name': 'frontend',
    'pcsa.team': 'a',
  });
});

test('a Kubernetes NetworkPolicy becomes a valid knp.default.* NetworkPolicy', () => {
  const r = k8sNetworkPolicyToResource({
    metadata: { name: 'db', namespace: 'prod' },
    spec: {
      podSelector: { matchLabels: { app: 'db' } },
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 5432 }] },
      ],
    },
  });
  expect(parseResource(r)).toMatchObject({
    kind: 'NetworkPolicy',
    metadata: { name: 'knp.default.db', namespace: 'prod' },
  });
  expect(r.spec).toMatchObject({
    order: 1000,
    types: ['Ingress'],
    selector: "projectcalico.org/orchestrator == 'k8s' && app == 'db'",
  });
});

test('a Kubernetes Node becomes a Node with the BGP settings Calico keeps in annotations', () => {
  const n = k8sNodeToNode({
    metadata: {
      name: 'node-1',
      labels: { rack: 'r1' },
      annotations: {
        'projectcalico.org/IPv4Address': '10.0.0.11/24',
        'projectcalico.org/ASNumber': '64513',
        'projectcalico.org/RouteReflectorClusterID': '224.0.0.1',
      },
    },
    status: {
      addresses: [
        { type: 'InternalIP', address: '10.0.0.11' },
        { type: 'Hostname', address: 'node-1' },
      ],
    },
  });
  expect(parseResource(n)).toMatchObject({ kind: 'Node' });
  expect(n.spec).toEqual({
    bgp: { ipv4Address: '10.0.0.11/24', asNumber: 64513, routeReflectorClusterID: '224.0.0.1' },
    addresses: [{ address: '10.0.0.11', type: 'InternalIP' }],
    orchRefs: [{ orchestrator: 'k8s', nodeName: 'node-1' }],
  });
});

test("a Node written in KDD mode goes to the Kubernetes node's annotations, and reads back the same", () => {
  const spec = {
    bgp: {
      ipv4Address: '10.0.0.11/24',
      ipv6Address: 'fd00::11/64',
      ipv4IPIPTunnelAddr: '10.244.3.1',
    },
    ipv4VXLANTunnelAddr: '10.244.3.2',
    vxlanTunnelMACAddr: '66:f1:3e:00:00:01',
  };
  const patch = nodeAnnotationPatch(spec);
  expect(patch).toEqual({
    'projectcalico.org/IPv4Address': '10.0.0.11/24',
    'projectcalico.org/IPv6Address': 'fd00::11/64',
    'projectcalico.org/ASNumber': null, // removed: the node has none
    'projectcalico.org/RouteReflectorClusterID': null,
    'projectcalico.org/IPv4IPIPTunnelAddr': '10.244.3.1',
    'projectcalico.org/IPv4VXLANTunnelAddr': '10.244.3.2',
    'projectcalico.org/VXLANTunnelMACAddr': '66:f1:3e:00:00:01',
  });
  const annotations = Object.fromEntries(
    Object.entries(patch).filter((e): e is [string, string] => e[1] !== null),
  );
  const back = k8sNodeToNode({ metadata: { name: 'node-1', annotations } });
  expect(back.spec).toEqual({ ...spec, orchRefs: [{ orchestrator: 'k8s', nodeName: 'node-1' }] });
});

test('a Service status write keeps a condition time while its status stays (no write loop)', () => {
  const svc = {
    metadata: { name: 'web', namespace: 'shop', annotations: { a: 'b' } },
    spec: { type: 'LoadBalancer' },
    status: {
      loadBalancer: { ingress: [{ ip: '198.51.100.1' }] },
      conditions: [
        {
          type: 'Assigned',
          status: 'True',
          reason: 'Assigned',
          message: '',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    },
  };
  const r = k8sServiceToResource(svc);
  // read back without times, so the same condition compares equal
  expect(r.spec.conditions).toEqual([{ type: 'Assigned', status: 'True', reason: 'Assigned' }]);
  expect(r.metadata.annotations).toEqual({ a: 'b' });
  const now = '2026-12-05T00:00:00Z';
  expect(serviceStatusPatch(r.spec, svc.status, now)).toEqual({
    loadBalancer: { ingress: [{ ip: '198.51.100.1' }] },
    conditions: [{ ...svc.status.conditions[0] }],
  });
  const flipped = { ...r.spec, conditions: [{ type: 'Assigned', status: 'False' as const }] };
  expect(serviceStatusPatch(flipped, svc.status, now)).toMatchObject({
    conditions: [{ status: 'False', reason: 'Assigned', lastTransitionTime: now }],
  });
  // nothing to say: both are removed
  const none = { ...r.spec, loadBalancerIngress: undefined, conditions: undefined };
  expect(serviceStatusPatch(none, svc.status, now)).toEqual({
    loadBalancer: { ingress: null },
    conditions: null,
  });
});
