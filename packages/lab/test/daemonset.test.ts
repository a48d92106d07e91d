// The pod plan a kubelet would run for a manifest's DaemonSet (containers mode of the lab).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { OciBundle } from '@tortie/testbed';
import { daemonSetPlan } from '../src/daemonset';
import { NodeHost } from '../src/node-host';

const ETCD = fs.readFileSync(path.resolve(__dirname, '../../../deploy/tortie-etcd.yaml'), 'utf8');

test('deploy/tortie-etcd.yaml: install-cni first, then tortie-node, env and mounts resolved', () => {
  const plan = daemonSetPlan(ETCD, {
    nodeName: 'node1',
    configMaps: { 'tortie-config/etcd_endpoints': 'http://10.0.0.1:2379' },
  });
  expect(plan.image).toMatch(/^tortie\/node:/);
  expect(plan.initContainers.map((c) => c.command)).toEqual([['install-cni']]);
  const [install] = plan.initContainers;
  expect(install.env).toMatchObject({
    KUBERNETES_NODE_NAME: 'node1',
    DATASTORE_TYPE: 'etcdv3',
    ETCD_ENDPOINTS: 'http://10.0.0.1:2379',
    CNI_MTU: '1440',
  });
  expect(install.env.CNI_NETWORK_CONFIG).toContain('__ETCD_ENDPOINTS__');
  expect(install.mounts.map((m) => [m.hostPath, m.mountPath])).toEqual([
    ['/opt/cni/bin', '/host/opt/cni/bin'],
    ['/etc/cni/net.d', '/host/etc/cni/net.d'],
  ]);
  const agent = plan.containers.find((c) => c.name === 'tortie-node')!;
  expect(agent.command).toEqual(['tortie-node']);
  expect(agent.privileged).toBe(true);
  expect(agent.env).toMatchObject({ NODENAME: 'node1', IP: 'autodetect' });
  expect(agent.mounts).toContainEqual({
    hostPath: '/var/run/netns',
    mountPath: '/var/run/netns',
    readOnly: false,
    type: 'DirectoryOrCreate',
    fromHost: true,
  });
  expect(agent.mounts).toContainEqual(
    expect.objectContaining({ hostPath: '/lib/modules', readOnly: true, fromHost: false }),
  );
  // BGP passwords: the optional Secret where the agent reads <secret>/<key>
  expect(agent.secrets).toEqual([
    {
      volume: 'bgp-passwords',
      secretName: 'bgp-passwords', // the lab's LAB_BGP_SECRET
      mountPath: '/etc/tortie/secrets/bgp-passwords',
      optional: true,
      mode: 0o400,
    },
  ]);
  expect(install.secrets).toEqual([]);
});

const manifest = (container: object, extra = '') => `
apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { a: "1" }
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: ds }
spec:
  template:
    spec:
      containers: [${JSON.stringify({ name: 'c', image: 'i', command: ['x'], ...container })}]
      volumes: [{ name: v, hostPath: { path: /v } }${extra}]
`;

test.each([
  [
    { env: [{ name: 'E', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'b' } } }] },
    'container c env E: ConfigMap cfg has no key b',
  ],
  [
    { env: [{ name: 'E', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }] },
    'container c env E: fieldRef status.podIP is not supported',
  ],
  [
    { volumeMounts: [{ name: 'w', mountPath: '/w' }] },
    'container c mounts volume w, which is not defined',
  ],
  [{ command: undefined }, 'container c has no command'],
])('a manifest a kubelet could not run is refused, naming what: %j', (container, message) => {
  expect(() => daemonSetPlan(manifest(container), { nodeName: 'n' })).toThrow(message);
});

test('a ConfigMap key resolves, from the manifest or an override', () => {
  const env = [{ name: 'E', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'a' } } }];
  expect(daemonSetPlan(manifest({ env }), { nodeName: 'n' }).containers[0].env).toEqual({ E: '1' });
  expect(
    daemonSetPlan(manifest({ env }), { nodeName: 'n', configMaps: { 'cfg/a': '2' } }).containers[0]
      .env,
  ).toEqual({ E: '2' });
});

test('an override of a key the ConfigMap lacks is refused (it would change nothing)', () => {
  expect(() =>
    daemonSetPlan(manifest({}), { nodeName: 'n', configMaps: { 'cfg/ip6': 'autodetect' } }),
  ).toThrow("ConfigMap setting cfg/ip6: the manifest's ConfigMap cfg has no key ip6");
});

test('deploy/tortie-etcd.yaml dual stack: assign_ipv6 reaches install-cni, ip6 the agent', () => {
  const plan = (configMaps: Record<string, string>) =>
    daemonSetPlan(ETCD, { nodeName: 'node1', configMaps });
  const ipv4 = plan({});
  expect(ipv4.initContainers[0].env.ASSIGN_IPV6).toBe('false');
  expect(ipv4.containers[0].env.IP6).toBe('none');
  const dual = plan({ 'tortie-config/assign_ipv6': 'true', 'tortie-config/ip6': 'autodetect' });
  expect(dual.initContainers[0].env).toMatchObject({ ASSIGN_IPV6: 'true' });
  expect(dual.initContainers[0].env.CNI_NETWORK_CONFIG).toContain(
    '"assign_ipv6": "__ASSIGN_IPV6__"',
  );
  expect(dual.containers[0].env).toMatchObject({ IP: 'autodetect', IP6: 'autodetect' });
});

test('no DaemonSet, or a volume that is not a hostPath, is refused', () => {
  expect(() => daemonSetPlan('kind: ConfigMap\n', { nodeName: 'n' })).toThrow(
    'expected one DaemonSet, found 0',
  );
  const emptyDir = manifest(
    { volumeMounts: [{ name: 'e', mountPath: '/e' }] },
    ', { name: e, emptyDir: {} }',
  );
  expect(() => daemonSetPlan(emptyDir, { nodeName: 'n' })).toThrow(
    'volume e: only hostPath and secret volumes are supported',
  );
});

const withSecret = (secret: object) =>
  manifest(
    { volumeMounts: [{ name: 's', mountPath: '/etc/s' }] },
    `, ${JSON.stringify({ name: 's', secret })}`,
  );

describe('secret volumes, as a kubelet writes them', () => {
  let root: string;
  beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-nodehost-'))));
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
  const host = (m: string, secrets = {}) =>
    new NodeHost(root, daemonSetPlan(m, { nodeName: 'n' }), {} as OciBundle, '/x', secrets);

  test('every key a file of the volume mode, mounted read-only where the container says', () => {
    const h = host(withSecret({ secretName: 'pw', defaultMode: 0o400 }), {
      pw: { mesh: 'k1', tor: 'k2' },
    });
    const dir = h.secretDir('s');
    expect(fs.readdirSync(dir).sort()).toEqual(['mesh', 'tor']);
    expect(fs.readFileSync(path.join(dir, 'tor'), 'utf8')).toBe('k2');
    expect(fs.statSync(path.join(dir, 'mesh')).mode & 0o777).toBe(0o400);
  });

  test('items: only those keys, at their paths', () => {
    const h = host(withSecret({ secretName: 'pw', items: [{ key: 'tor', path: 'a/b' }] }), {
      pw: { mesh: 'k1', tor: 'k2' },
    });
    expect(fs.readFileSync(path.join(h.secretDir('s'), 'a/b'), 'utf8')).toBe('k2');
    expect(fs.existsSync(path.join(h.secretDir('s'), 'mesh'))).toBe(false);
  });

  test('a missing Secret: an empty directory when optional, else refused naming it', () => {
    const h = host(withSecret({ secretName: 'pw', optional: true }));
    expect(fs.readdirSync(h.secretDir('s'))).toEqual([]);
    expect(() => host(withSecret({ secretName: 'pw' }))).toThrow(
      'container c: Secret pw (volume s) does not exist and the volume is not optional',
    );
    expect(() => host(withSecret({}))).toThrow('volume s: secret has no secretName');
  });
});

test("deploy/tortie.yaml: the pod's namespace and service account, whose token the kubelet mounts", () => {
  const kdd = fs.readFileSync(path.resolve(__dirname, '../../../deploy/tortie.yaml'), 'utf8');
  const plan = daemonSetPlan(kdd, { nodeName: 'node1' });
  expect(plan).toMatchObject({ namespace: 'tortie-system', serviceAccount: 'tortie-node' });
  const [install] = plan.initContainers;
  expect(install.env).toMatchObject({
    DATASTORE_TYPE: 'kubernetes',
    KUBERNETES_NODE_NAME: 'node1',
  });
  expect(plan.containers.map((c) => c.name)).toEqual(['tortie-node', 'cni-token-watch']);
  // a pod without serviceAccountName runs as "default"; automount off: no token
  expect(daemonSetPlan(manifest({}), { nodeName: 'n' }).serviceAccount).toBe('default');
  const off = manifest({}).replace(
    '    spec:\n',
    '    spec:\n      automountServiceAccountToken: false\n',
  );
  expect(daemonSetPlan(off, { nodeName: 'n' }).serviceAccount).toBeUndefined();
});

test('the service-account token volume: files replaced whole, then mounted read-only in every container', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-nodehost-'));
  try {
    const plan = daemonSetPlan(manifest({}), { nodeName: 'n' });
    const runs: Array<{ env?: Record<string, string>; mounts?: unknown[] }> = [];
    const bundle = {
      start: (_args: string[], o: { env?: Record<string, string>; mounts?: unknown[] }) => {
        runs.push(o);
        return { id: 'x', child: {} };
      },
    } as unknown as OciBundle;
    const h = new NodeHost(root, plan, bundle, '/x', {}, { env: { KUBERNETES_SERVICE_HOST: 'h' } });
    h.start('c', {});
    // no token yet: nothing mounted
    expect(runs[0].mounts).not.toContainEqual(
      expect.objectContaining({ destination: '/var/run/secrets/kubernetes.io/serviceaccount' }),
    );
    expect(runs[0].env).toMatchObject({ KUBERNETES_SERVICE_HOST: 'h' });
    h.writeServiceAccount({ token: 't1', 'ca.crt': 'ca', namespace: 'ns' });
    h.writeServiceAccount({ token: 't2', 'ca.crt': 'ca', namespace: 'ns' });
    const dir = h.serviceAccountDir();
    expect(fs.readdirSync(dir).sort()).toEqual(['ca.crt', 'namespace', 'token']);
    expect(fs.readFileSync(path.join(dir, 'token'), 'utf8')).toBe('t2');
    h.start('c', {});
    expect(runs[1].mounts).toContainEqual({
      source: dir,
      destination: '/var/run/secrets/kubernetes.io/serviceaccount',
      readOnly: true,
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
