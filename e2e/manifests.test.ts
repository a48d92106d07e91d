// deploy/tortie.yaml (Kubernetes datastore), deploy/tortie-etcd.yaml (etcd) and deploy/tortie-rr.yaml (route reflector) hold together: every document parsed by real kubectl (--local,
// no server) as the type it claims, the DaemonSet's commands are entry points of the
// image `npm run image` builds, under its tag, its mounts have volumes, its probes hit the
// agent's health server, and the ClusterRole allows every call of the Kubernetes backend.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { KINDS } from '@tortie/api';
import { kubernetesAccess } from '@tortie/datastore';
import { resolveConfig } from '@tortie/felix';
import { KubeApi } from '@tortie/lab';
import { REFLECTOR_KINDS, RR_HEALTH, rrHealthAddress } from '@tortie/route-reflector';
import { Etcd, Testbed, describeIf } from '@tortie/testbed';
import YAML from 'yaml';

const REPO = path.resolve(__dirname, '..');
const CRD_FILES = fs.readdirSync(path.join(REPO, 'deploy/crds')).filter((f) => f.endsWith('.yaml'));

const IMAGE = require(path.join(REPO, 'deploy/image/build.js')) as {
  ENTRY_POINTS: Record<string, string>;
  TAG: string;
};

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}
interface Container {
  name: string;
  image: string;
  command: string[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  livenessProbe?: { httpGet: { host: string; path: string; port: number } };
  readinessProbe?: { httpGet: { host: string; path: string; port: number } };
}

const MANIFESTS = [
  { file: 'deploy/tortie.yaml', datastore: 'kubernetes' },
  { file: 'deploy/tortie-etcd.yaml', datastore: 'etcdv3' },
];

/** The manifest's objects as real kubectl decodes them (--local, no server asked). */
async function parseLocal(file: string): Promise<Obj[]> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      'kubectl',
      [
        ...['annotate', '--local', '-o', 'json', '-f', path.join(REPO, file)],
        'tortie.io/checked=true',
      ],
      // an empty kubeconfig keeps ~/.kube out of it
      { env: { ...process.env, KUBECONFIG: '/dev/null' }, timeout: 60_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
  // one JSON object per document, one after the other
  return out
    .trim()
    .split(/\n(?=\{)/)
    .map((text) => JSON.parse(text) as Obj);
}

describeIf(['kubectl'], 'the manifests', () => {
  describe.each(MANIFESTS)('$file', ({ file, datastore }) => {
    let objects: Obj[];

    beforeAll(async () => {
      objects = await parseLocal(file);
    }, 60_000);

    const one = (kind: string) => {
      const found = objects.filter((o) => o.kind === kind);
      expect(found).toHaveLength(1);
      return found[0] as Obj & { spec: Record<string, never>; rules: never; data: never };
    };

    test('kubectl parses every object as its type', () => {
      expect(objects.map((o) => `${o.apiVersion} ${o.kind}`)).toEqual([
        'v1 Namespace',
        'v1 ServiceAccount',
        // etcd mode calls no Kubernetes API
        ...(datastore === 'kubernetes'
          ? [
              'rbac.authorization.k8s.io/v1 ClusterRole',
              'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
            ]
          : []),
        'v1 ConfigMap',
        'apps/v1 DaemonSet',
        // the Kubernetes manifest carries the CRDs, as calico.yaml does
        ...(datastore === 'kubernetes'
          ? CRD_FILES.map(() => 'apiextensions.k8s.io/v1 CustomResourceDefinition')
          : []),
      ]);
      expect(one('ConfigMap').data['datastore_type']).toBe(datastore);
    });

    test('the DaemonSet runs entry points of the image npm run image builds, with its mounts', () => {
      const ds = one('DaemonSet');
      const pod = ds.spec.template['spec'] as {
        hostNetwork: boolean;
        initContainers: Container[];
        containers: Container[];
        volumes: { name: string }[];
        serviceAccountName: string;
        tolerations: unknown[];
        priorityClassName: string;
      };
      expect(pod.hostNetwork).toBe(true);
      expect(pod.priorityClassName).toBe('system-node-critical');
      expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
      expect(pod.serviceAccountName).toBe(one('ServiceAccount').metadata.name);
      const all = [...pod.initContainers, ...pod.containers];
      expect(pod.initContainers.map((c) => c.command[0])).toEqual(['install-cni']);
      const volumes = new Set(pod.volumes.map((v) => v.name));
      for (const c of all) {
        expect(c.image).toBe(IMAGE.TAG);
        expect(Object.keys(IMAGE.ENTRY_POINTS)).toContain(c.command[0]);
        for (const m of c.volumeMounts ?? []) expect(volumes).toContain(m.name);
      }
      const agent = pod.containers.find((c) => c.name === 'tortie-node')!;
      expect(agent.volumeMounts!.map((m) => m.mountPath).sort()).toEqual(
        [
          '/etc/tortie/secrets/bgp-passwords',
          '/lib/modules',
          '/run/xtables.lock',
          '/var/lib/tortie',
          '/var/run/netns',
          '/var/run/tortie',
        ].sort(),
      );
      // BGP passwords: an optional Secret (the DaemonSet starts without it), read-only,
      // where the agent reads <secret>/<key> unless TORTIE_SECRETS_DIR says otherwise
      const secrets = agent.volumeMounts!.filter((m) =>
        m.mountPath.startsWith('/etc/tortie/secrets/'),
      );
      expect(secrets).toEqual([
        expect.objectContaining({ mountPath: '/etc/tortie/secrets/bgp-passwords', readOnly: true }),
      ]);
      expect(pod.volumes.find((v) => v.name === secrets[0].name)).toEqual({
        name: secrets[0].name,
        secret: { secretName: 'bgp-passwords', optional: true, defaultMode: 0o400 },
      });
      const health = resolveConfig({});
      for (const [probe, p] of [
        [agent.livenessProbe, '/liveness'],
        [agent.readinessProbe, '/readiness'],
      ] as const)
        expect(probe?.httpGet).toEqual({
          host: health.healthHost,
          path: p,
          port: health.healthPort,
        });
    });

    const etcdOnly = () =>
      test('install-cni and the agent take ETCD_ENDPOINTS from the ConfigMap', () => {
        const ds = one('DaemonSet');
        const pod = ds.spec.template['spec'] as {
          initContainers: Array<{ env: Array<{ name: string; valueFrom?: unknown }> }>;
          containers: Array<{ name: string; env: Array<{ name: string; valueFrom?: unknown }> }>;
        };
        const data = one('ConfigMap').data as Record<string, string>;
        expect(data['etcd_endpoints']).toMatch(/^https?:\/\//);
        expect(data['cni_network_config']).toContain('"etcd_endpoints": "__ETCD_ENDPOINTS__"');
        for (const c of [pod.initContainers[0], pod.containers[0]])
          expect(c.env.find((e) => e.name === 'ETCD_ENDPOINTS')?.valueFrom).toEqual({
            configMapKeyRef: { name: 'tortie-config', key: 'etcd_endpoints' },
          });
      });
    if (datastore !== 'kubernetes') etcdOnly();
    if (datastore === 'kubernetes')
      test('the ClusterRole allows every call of the Kubernetes datastore backend', () => {
        const rules = one('ClusterRole').rules as {
          apiGroups: string[];
          resources: string[];
          verbs: string[];
        }[];
        const missing = kubernetesAccess().flatMap((a) =>
          a.verbs
            .filter(
              (v) =>
                !rules.some(
                  (r) =>
                    r.apiGroups.includes(a.group) &&
                    r.resources.includes(a.resource) &&
                    r.verbs.includes(v),
                ),
            )
            .map((v) => `${v} ${a.resource}.${a.group || 'core'}`),
        );
        expect(missing).toEqual([]);
        const binding = one('ClusterRoleBinding') as unknown as {
          roleRef: { name: string };
          subjects: { name: string; namespace: string }[];
        };
        expect(binding.roleRef.name).toBe(one('ClusterRole').metadata.name);
        expect(binding.subjects).toEqual([
          expect.objectContaining({ name: 'tortie-node', namespace: 'tortie-system' }),
        ]);
      });
  });
});

describeIf(['kubectl'], 'deploy/tortie-rr.yaml (the route-reflector Deployment)', () => {
  let objects: Obj[];
  beforeAll(async () => {
    objects = await parseLocal('deploy/tortie-rr.yaml');
  }, 60_000);
  const one = (kind: string) => {
    const found = objects.filter((o) => o.kind === kind);
    expect(found).toHaveLength(1);
    return found[0] as Obj & { spec: Record<string, never>; rules: never; data: never };
  };
  const pod = () =>
    one('Deployment').spec.template['spec'] as {
      hostNetwork: boolean;
      serviceAccountName: string;
      nodeSelector: Record<string, string>;
      containers: (Container & {
        env: Array<{
          name: string;
          valueFrom?: { configMapKeyRef?: { name: string; key: string } };
        }>;
      })[];
      volumes: { name: string }[];
    };

  test('kubectl parses every object as its type', () => {
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}`)).toEqual([
      'v1 ServiceAccount',
      'rbac.authorization.k8s.io/v1 ClusterRole',
      'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
      'v1 ConfigMap',
      'apps/v1 Deployment',
    ]);
    // in the namespace deploy/tortie.yaml creates
    for (const o of objects.filter((x) => !x.kind.startsWith('Cluster')))
      expect(o.metadata.namespace).toBe('tortie-system');
  });

  test('tortie-rr from the image, on the host network, its mounts with volumes, its settings from the ConfigMap', () => {
    const p = pod();
    expect(p.hostNetwork).toBe(true);
    expect(p.serviceAccountName).toBe(one('ServiceAccount').metadata.name);
    expect(p.containers).toHaveLength(1);
    const rr = p.containers[0];
    expect(rr.image).toBe(IMAGE.TAG);
    expect(rr.command[0]).toBe('tortie-rr');
    expect(Object.keys(IMAGE.ENTRY_POINTS)).toContain(rr.command[0]);
    const volumes = new Set(p.volumes.map((v) => v.name));
    for (const m of rr.volumeMounts ?? []) expect(volumes).toContain(m.name);
    const config = one('ConfigMap');
    for (const e of rr.env.filter((x) => x.valueFrom?.configMapKeyRef)) {
      const ref = e.valueFrom!.configMapKeyRef!;
      expect(ref.name).toBe(config.metadata.name);
      expect(Object.keys(config.data)).toContain(ref.key);
    }
    expect(rr.env.map((e) => e.name)).toEqual(
      expect.arrayContaining(['NODENAME', 'DATASTORE_TYPE']),
    );
  });

  test('its probes hit the port and paths tortie-rr serves', () => {
    const rr = pod().containers[0];
    expect(rrHealthAddress({})).toEqual({ host: RR_HEALTH.host, port: RR_HEALTH.port });
    for (const [probe, p] of [
      [rr.livenessProbe, '/liveness'],
      [rr.readinessProbe, '/readiness'],
    ] as const)
      expect(probe?.httpGet).toEqual({ host: RR_HEALTH.host, path: p, port: RR_HEALTH.port });
    // not the agent's: both run on the host network
    expect(RR_HEALTH.port).not.toBe(resolveConfig({}).healthPort);
  });

  test('the ClusterRole lets it read what it watches, and nothing more', () => {
    const rules = one('ClusterRole').rules as {
      apiGroups: string[];
      resources: string[];
      verbs: string[];
    }[];
    // the tortie kinds it syncs, and Nodes (in the Kubernetes datastore a view of core Nodes)
    const needed = [
      ...REFLECTOR_KINDS.map((k) => ({ group: 'tortie.io', resource: KINDS[k].plural })),
      { group: '', resource: 'nodes' },
    ];
    for (const n of needed)
      for (const v of ['get', 'list', 'watch'])
        expect(
          rules.some(
            (r) =>
              r.apiGroups.includes(n.group) &&
              r.resources.includes(n.resource) &&
              r.verbs.includes(v),
          )
            ? 'allowed'
            : `${v} ${n.resource}.${n.group || 'core'} not allowed`,
        ).toBe('allowed');
    expect([...new Set(rules.flatMap((r) => r.verbs))].sort()).toEqual(['get', 'list', 'watch']);
  });

  test('reflector nodes run no tortie-node (both bind the node’s BGP port)', async () => {
    const selector = pod().nodeSelector;
    expect(selector).toEqual({ 'tortie.io/route-reflector': 'true' });
    for (const { file } of MANIFESTS) {
      const ds = (await parseLocal(file)).find((o) => o.kind === 'DaemonSet') as unknown as {
        spec: { template: { spec: { affinity: unknown } } };
      };
      expect(ds.spec.template.spec.affinity).toEqual({
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              {
                matchExpressions: [
                  { key: 'tortie.io/route-reflector', operator: 'NotIn', values: ['true'] },
                ],
              },
            ],
          },
        },
      });
    }
  });
});

test('deploy/tortie.yaml carries deploy/crds as deploy/bundle-crds.js writes them', () => {
  // in a process of its own: prettier, which formats the bundle, does not load under jest
  const r = spawnSync(process.execPath, [path.join(REPO, 'deploy/bundle-crds.js'), '--check'], {
    encoding: 'utf8',
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

describeIf(
  ['kubectl', 'etcd'],
  'kubectl apply -f deploy/tortie.yaml, then deploy/tortie-rr.yaml (tortie-apiserver)',
  () => {
    const tb = new Testbed();
    let kube: KubeApi;
    beforeAll(async () => {
      const etcd = await Etcd.start(tb);
      kube = await KubeApi.start(tb, [etcd.endpoint]);
    }, 60_000);
    afterAll(() => tb.cleanup());

    test('one apply creates every object; the CRDs are served; again, nothing changes', async () => {
      const file = path.join(REPO, 'deploy/tortie.yaml');
      const created = (await kube.must(['apply', '-f', file])).trim().split('\n');
      expect(created).toEqual(expect.arrayContaining(['configmap/tortie-config created']));
      expect(created).toHaveLength(YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).length);
      expect(created.filter((l) => !l.endsWith(' created'))).toEqual([]);
      const crds = await kube.must(['get', 'crds', '-o', 'name']);
      expect(crds.trim().split('\n').sort()).toEqual(
        CRD_FILES.map(
          (f) => `customresourcedefinition.apiextensions.k8s.io/${f.replace(/\.yaml$/, '')}`,
        ),
      );
      // a resource of the bundled types is accepted at once
      await kube.apply([
        {
          apiVersion: 'tortie.io/v1',
          kind: 'IPPool',
          metadata: { name: 'default-ipv4' },
          spec: { cidr: '10.244.0.0/16', natOutgoing: true },
        },
      ]);
      expect(await kube.must(['get', 'ippools.tortie.io', '-o', 'name'])).toContain('default-ipv4');
      expect(await kube.must(['get', 'daemonset', '-n', 'tortie-system', '-o', 'name'])).toBe(
        'daemonset.apps/tortie-node\n',
      );
      const again = (await kube.must(['apply', '-f', file])).trim().split('\n');
      expect(again.every((l) => l.endsWith(' unchanged'))).toBe(true);
      // the route reflector after it, into the namespace it made (apps and RBAC validated)
      const rr = (await kube.must(['apply', '-f', path.join(REPO, 'deploy/tortie-rr.yaml')]))
        .trim()
        .split('\n');
      expect(rr.sort()).toEqual(
        [
          'serviceaccount/tortie-rr created',
          'clusterrole.rbac.authorization.k8s.io/tortie-rr created',
          'clusterrolebinding.rbac.authorization.k8s.io/tortie-rr created',
          'configmap/tortie-rr-config created',
          'deployment.apps/tortie-rr created',
        ].sort(),
      );
    }, 180_000);
  },
);
