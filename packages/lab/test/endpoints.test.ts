// The lab's stand-in for Kubernetes' EndpointSlice controller.
import { parseResource, type Resource } from '@tortie/api';
import { endpointSliceFor, k8sEndpointSlice } from '../src/endpoints';
import { k8sEndpointSliceToResource } from '@tortie/datastore';

const R = <K extends Resource['kind']>(
  kind: K,
  name: string,
  ns: string,
  spec: object,
  labels = {},
) =>
  parseResource({
    apiVersion: 'tortie.io/v1',
    kind,
    metadata: { name, namespace: ns, labels },
    spec,
  }) as Resource<K>;
const pod = (name: string, ns: string, ip: string, labels: Record<string, string>) =>
  R(
    'WorkloadEndpoint',
    `n1-k8s-${name}-eth0`,
    ns,
    {
      node: 'n1',
      pod: name,
      endpoint: 'eth0',
      ipNetworks: [`${ip}/32`, 'fd00::1/128'],
      interfaceName: `cali${name}`,
      ports: [{ name: 'web', protocol: 'TCP', port: 8080 }],
    },
    labels,
  );

test('the pods of the namespace whose labels match, with the target port', () => {
  const svc = R('KubernetesService', 'web', 'shop', {
    selector: { app: 'web' },
    ports: [
      { name: 'http', port: 80, targetPort: 'web' },
      { name: 'alt', port: 81, targetPort: 9090 },
    ],
  });
  const slice = endpointSliceFor(svc, [
    pod('b', 'shop', '10.0.0.2', { app: 'web', tier: 'x' }),
    pod('a', 'shop', '10.0.0.1', { app: 'web' }),
    pod('c', 'shop', '10.0.0.3', { app: 'db' }),
    pod('d', 'other', '10.0.0.4', { app: 'web' }),
  ])!;
  expect(slice.metadata).toEqual({ name: 'web', namespace: 'shop' });
  expect(slice.spec.ports).toEqual([
    { name: 'http', protocol: 'TCP', port: 8080 },
    { name: 'alt', protocol: 'TCP', port: 9090 },
  ]);
  expect(slice.spec.endpoints.map((e) => e.addresses)).toEqual([['10.0.0.1'], ['10.0.0.2']]);
});

test('a named target port no pod has is named; no selector, no slice', () => {
  const svc = R('KubernetesService', 'web', 'shop', {
    selector: { app: 'web' },
    ports: [{ port: 80, targetPort: 'nope' }],
  });
  expect(() => endpointSliceFor(svc, [pod('a', 'shop', '10.0.0.1', { app: 'web' })])).toThrow(
    'service shop/web: no pod names a port "nope"',
  );
  expect(
    endpointSliceFor(R('KubernetesService', 'x', 'shop', { ports: [{ port: 80 }] }), []),
  ).toBeUndefined();
});

test('the discovery.k8s.io/v1 object the kubernetes datastore reads back as the same slice', () => {
  const svc = R('KubernetesService', 'web', 'shop', {
    selector: { app: 'web' },
    ports: [{ name: 'http', port: 80, targetPort: 8080 }],
  });
  const slice = endpointSliceFor(svc, [pod('a', 'shop', '10.0.0.1', { app: 'web' })])!;
  const k8s = k8sEndpointSlice(slice) as Parameters<typeof k8sEndpointSliceToResource>[0];
  expect(k8s).toMatchObject({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
  });
  expect(k8sEndpointSliceToResource(k8s)?.spec).toEqual(slice.spec);
});
