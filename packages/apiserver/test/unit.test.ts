import {
  BUILTIN,
  Registry,
  age,
  checkObjectSchema,
  jsonPatch,
  parsePath,
  strategicMerge,
  toTable,
  wantsTable,
} from '../src';
import { admit } from '../src/admission';
import { crdProblems, typesOfCrd } from '../src/crd';
import { crdOf } from './crd-of';
import { aggregated, resourceList, wantsAggregated } from '../src/discovery';
import { parseFieldSelector } from '../src/fieldselector';
import { openApiV3Group, openApiV3Index } from '../src/openapi';
import { applyPatch, mergePatch } from '../src/patch';
import { decodeContinue, encodeContinue, limitOf } from '../src/paging';
import { route } from '../src/router';
import { parseLabelSelector } from '../src/selector';
import { fromFieldsV1, serverSideApply, trackUpdate } from '../src/ssa';
import { type KubeObject } from '../src/storage';
import { type ApiError } from '../src/status';

const type = (kind: string) => BUILTIN.find((t) => t.kind === kind)!;

test('parsePath and route: core, groups, namespaced, subresources', () => {
  expect(parsePath('/api/v1/namespaces/x/pods/p')).toEqual({
    group: '',
    version: 'v1',
    rest: ['namespaces', 'x', 'pods', 'p'],
  });
  expect(parsePath('/healthz')).toBeUndefined();
  const reg = new Registry();
  expect(route(reg, '', 'v1', ['namespaces', 'x', 'pods', 'p', 'status'])).toMatchObject({
    type: { kind: 'Pod' },
    namespace: 'x',
    name: 'p',
    subresource: 'status',
  });
  expect(route(reg, '', 'v1', ['namespaces', 'x', 'status'])).toMatchObject({
    type: { kind: 'Namespace' },
    name: 'x',
    subresource: 'status',
  });
  // a cluster-scoped type under a namespace is not a route
  expect(route(reg, '', 'v1', ['namespaces', 'x', 'nodes'])).toBeUndefined();
  expect(route(reg, 'nope', 'v1', ['things'])).toBeUndefined();
});

test('age prints as kubectl does; Table only when asked first in Accept', () => {
  const now = Date.parse('2026-01-02T00:00:00Z');
  expect(age('2026-01-01T23:59:55Z', now)).toBe('5s');
  expect(age('2026-01-01T23:50:00Z', now)).toBe('10m');
  expect(age('2025-12-30T00:00:00Z', now)).toBe('3d');
  expect(wantsTable('application/json;as=Table;v=v1;g=meta.k8s.io,application/json')).toBe(true);
  expect(wantsTable('application/json')).toBe(false);
});

test('Table columns: pods wide, NetworkPolicy pod selector, CRD printer columns', () => {
  const pod = {
    metadata: { name: 'p', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { nodeName: 'n1', containers: [{ name: 'c' }] },
    status: { phase: 'Running', podIP: '10.0.0.5' },
  };
  const t = toTable(
    type('Pod'),
    [pod],
    { resourceVersion: '7' },
    Date.parse('2026-01-01T00:00:09Z'),
  );
  expect((t.columnDefinitions as { name: string }[]).map((c) => c.name)).toEqual([
    'Name',
    'Ready',
    'Status',
    'Restarts',
    'Age',
    'IP',
    'Node',
  ]);
  expect((t.rows as { cells: unknown[] }[])[0].cells).toEqual([
    'p',
    '0/1',
    'Running',
    '0',
    '9s',
    '10.0.0.5',
    'n1',
  ]);
  const np = toTable(
    type('NetworkPolicy'),
    [{ metadata: { name: 'x' }, spec: { podSelector: { matchLabels: { app: 'web' } } } }],
    {},
  );
  expect((np.rows as { cells: unknown[] }[])[0].cells.slice(0, 2)).toEqual(['x', 'app=web']);
  const [cr] = typesOfCrd(
    crd({
      additionalPrinterColumns: [{ name: 'Selector', type: 'string', jsonPath: '.spec.selector' }],
    }),
  );
  const ct = toTable(cr, [{ metadata: { name: 'g' }, spec: { selector: 'all()' } }], {});
  expect((ct.rows as { cells: unknown[] }[])[0].cells).toEqual(['g', 'all()']);
});

test("Table columns: a Service's EXTERNAL-IP and PORT(S) as kube-apiserver prints them", () => {
  const svc = (name: string, spec: object, status: object = {}) => ({
    metadata: { name },
    spec: { clusterIP: '10.96.0.1', ports: [{ port: 80, protocol: 'TCP' }], ...spec },
    status,
  });
  const t = toTable(
    type('Service'),
    [
      svc(
        'lb',
        { type: 'LoadBalancer', ports: [{ port: 80, nodePort: 30081, protocol: 'TCP' }] },
        {
          loadBalancer: { ingress: [{ ip: '198.51.100.1' }] },
        },
      ),
      svc('lb-pending', { type: 'LoadBalancer', externalIPs: [] }),
      svc(
        'lb-both',
        { type: 'LoadBalancer', externalIPs: ['203.0.113.9'] },
        {
          loadBalancer: { ingress: [{ ip: '198.51.100.2' }] },
        },
      ),
      svc('ext', { type: 'ClusterIP', externalIPs: ['203.0.113.10'] }),
      svc('plain', { ports: [{ port: 53, protocol: 'UDP' }] }),
    ],
    {},
  );
  expect((t.rows as { cells: unknown[] }[]).map((r) => r.cells.slice(0, 5))).toEqual([
    ['lb', 'LoadBalancer', '10.96.0.1', '198.51.100.1', '80:30081/TCP'],
    ['lb-pending', 'LoadBalancer', '10.96.0.1', '<pending>', '80/TCP'],
    ['lb-both', 'LoadBalancer', '10.96.0.1', '198.51.100.2,203.0.113.9', '80/TCP'],
    ['ext', 'ClusterIP', '10.96.0.1', '203.0.113.10', '80/TCP'],
    ['plain', 'ClusterIP', '10.96.0.1', '<none>', '53/UDP'],
  ]);
});

function crd(version: Record<string, unknown> = {}): KubeObject {
  return crdOf(
    'example.com',
    'Widget',
    'widgets',
    {
      type: 'object',
      properties: {
        spec: {
          type: 'object',
          required: ['size'],
          properties: {
            size: { type: 'integer', minimum: 1 },
            color: { type: 'string', enum: ['red', 'blue'], default: 'red' },
            selector: { type: 'string' },
          },
        },
      },
    },
    { scope: 'Namespaced', version },
  );
}

test('a CRD serves its kind; its schema defaults, prunes and names bad fields', () => {
  const [t] = typesOfCrd(crd());
  expect(t).toMatchObject({
    group: 'example.com',
    version: 'v1',
    kind: 'Widget',
    plural: 'widgets',
    namespaced: true,
  });
  const ok: KubeObject = { metadata: { name: 'w' }, spec: { size: 2, extra: 1 } };
  expect(checkObjectSchema(t.schema!, ok)).toEqual({ causes: [], unknown: ['spec.extra'] });
  expect(ok.spec).toEqual({ size: 2, color: 'red' });
  const bad: KubeObject = { metadata: { name: 'w' }, spec: { size: 0, color: 'green' } };
  expect(checkObjectSchema(t.schema!, bad).causes).toEqual([
    expect.objectContaining({
      field: 'spec.size',
      message: expect.stringContaining('greater than or equal to 1'),
    }),
    expect.objectContaining({ field: 'spec.color', reason: 'FieldValueNotSupported' }),
  ]);
  const missing: KubeObject = { metadata: { name: 'w' }, spec: { size: 'big' } };
  expect(checkObjectSchema(t.schema!, missing).causes).toEqual([
    expect.objectContaining({
      field: 'spec.size',
      message: expect.stringContaining('must be of type integer'),
    }),
  ]);
});

test('nullable list items keep their null; others are refused (IPAMBlock allocations)', () => {
  const schema = {
    type: 'object' as const,
    properties: {
      spec: {
        type: 'object' as const,
        properties: {
          allocations: {
            type: 'array' as const,
            items: { type: 'integer' as const, nullable: true },
          },
          ordinals: { type: 'array' as const, items: { type: 'integer' as const } },
        },
      },
    },
  };
  const ok: KubeObject = { metadata: { name: 'b' }, spec: { allocations: [0, null, 2] } };
  expect(checkObjectSchema(schema, ok).causes).toEqual([]);
  expect(ok.spec).toEqual({ allocations: [0, null, 2] });
  const bad: KubeObject = { metadata: { name: 'b' }, spec: { ordinals: [0, null] } };
  expect(checkObjectSchema(schema, bad).causes).toEqual([
    expect.objectContaining({ field: 'spec.ordinals[1]' }),
  ]);
});

test('a CRD whose schema is not structural is refused, naming the node', () => {
  const c = crd();
  (
    c.spec as {
      versions: { schema: { openAPIV3Schema: { properties: Record<string, unknown> } } }[];
    }
  ).versions[0].schema.openAPIV3Schema.properties.ports = {
    type: ['number', 'string'],
  };
  expect(crdProblems(c)).toEqual([
    expect.objectContaining({
      field: 'spec.versions[0].schema.openAPIV3Schema.properties[ports].type',
    }),
  ]);
  expect(crdProblems({ ...crd(), metadata: { name: 'wrong' } })).toEqual([
    expect.objectContaining({ field: 'metadata.name' }),
  ]);
});

test('admission: metadata, NetworkPolicy semantics and tortie kinds through @tortie/api', () => {
  const np = (spec: unknown): KubeObject =>
    ({ metadata: { name: 'n', namespace: 'd' }, spec }) as KubeObject;
  expect(admit(type('NetworkPolicy'), np({ podSelector: {} })).causes).toEqual([]);
  expect(
    admit(
      type('NetworkPolicy'),
      np({
        ingress: [
          {
            ports: [{ port: 70000 }],
            from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] } }],
          },
        ],
      }),
    ).causes.map((c) => c.field),
  ).toEqual(['spec.ingress[0].ports[0].port', 'spec.ingress[0].from[0].ipBlock.except[0]']);
  expect(admit(type('Namespace'), { metadata: { name: 'Bad_Name' } }).causes[0].field).toBe(
    'metadata.name',
  );
  const [gnp] = typesOfCrd(crdOf('tortie.io', 'GlobalNetworkPolicy', 'globalnetworkpolicies'));
  const bad = admit(gnp, {
    apiVersion: 'tortie.io/v1',
    kind: 'GlobalNetworkPolicy',
    metadata: { name: 'g' },
    spec: { selector: 'app ==' },
  });
  expect(bad.causes).toEqual([
    expect.objectContaining({ field: 'spec.selector', message: expect.stringContaining('app ==') }),
  ]);
});

test('field selectors: supported fields only', () => {
  const pod = { metadata: { name: 'p', namespace: 'x' }, spec: { nodeName: 'n1' } } as KubeObject;
  expect(parseFieldSelector('spec.nodeName=n1,metadata.namespace!=y', 'Pod')(pod)).toBe(true);
  expect(parseFieldSelector('spec.nodeName==n2', 'Pod')(pod)).toBe(false);
  expect(() => parseFieldSelector('spec.nodeName=n1', 'Namespace')).toThrow(
    /field label not supported: spec.nodeName/,
  );
});

test('label selectors', () => {
  const sel = parseLabelSelector('a=1,b in (x, y),!c');
  expect(sel({ a: '1', b: 'y' })).toBe(true);
  expect(sel({ a: '1', b: 'z' })).toBe(false);
  expect(() => parseLabelSelector('a=(')).toThrow(/unable to parse requirement/);
});

test('merge patch (RFC 7386) and JSON patch (RFC 6902)', () => {
  expect(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: null, b: { c: 5 }, e: [1] })).toEqual({
    b: { c: 5, d: 3 },
    e: [1],
  });
  const doc = { metadata: { labels: { a: 'x' } }, spec: { l: [1, 2] } };
  expect(
    jsonPatch(doc, [
      { op: 'add', path: '/metadata/labels/b~1c', value: 'y' },
      { op: 'remove', path: '/metadata/labels/a' },
      { op: 'add', path: '/spec/l/-', value: 3 },
      { op: 'replace', path: '/spec/l/0', value: 0 },
      { op: 'test', path: '/spec/l/2', value: 3 },
      { op: 'copy', from: '/spec/l', path: '/spec/m' },
    ]),
  ).toEqual({ metadata: { labels: { 'b/c': 'y' } }, spec: { l: [0, 2, 3], m: [0, 2, 3] } });
  expect(doc.spec.l).toEqual([1, 2]); // the target is not changed
  expect(() => jsonPatch(doc, [{ op: 'test', path: '/spec/l/0', value: 9 }])).toThrow(
    /test of \/spec\/l\/0 failed/,
  );
  expect(() => jsonPatch(doc, [{ op: 'remove', path: '/nope/x' }])).toThrow(/does not exist/);
});

test('strategic merge patch merges lists by their patch merge key, with directives', () => {
  const s = type('Pod').schema;
  const pod = {
    spec: {
      containers: [
        { name: 'a', image: 'a:1', ports: [{ containerPort: 80 }] },
        { name: 'b', image: 'b:1' },
      ],
    },
  };
  expect(
    strategicMerge(
      pod,
      {
        spec: {
          containers: [
            { name: 'b', image: 'b:2' },
            { name: 'c', image: 'c:1' },
            { name: 'a', $patch: 'delete' },
          ],
        },
      } as never,
      s,
    ),
  ).toEqual({
    spec: {
      containers: [
        { name: 'b', image: 'b:2' },
        { name: 'c', image: 'c:1' },
      ],
    },
  });
  expect(
    strategicMerge(
      pod,
      {
        spec: {
          '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }],
          containers: [{ name: 'a', image: 'a:2' }],
        },
      },
      s,
    ),
  ).toEqual({
    spec: {
      containers: [
        { name: 'b', image: 'b:1' },
        { name: 'a', image: 'a:2', ports: [{ containerPort: 80 }] },
      ],
    },
  });
  // a list without a merge key is replaced; $retainKeys drops the others
  expect(
    strategicMerge(
      { spec: { tolerations: [1], x: 1, y: 2 } },
      { spec: { tolerations: [2], $retainKeys: ['tolerations', 'x'] } },
      s,
    ),
  ).toEqual({
    spec: { tolerations: [2], x: 1 },
  });
  expect(() =>
    applyPatch('application/strategic-merge-patch+json', {}, {}, undefined, false),
  ).toThrow(/not supported for custom resources/);
});

test('discovery: legacy and aggregated, with subresources', () => {
  const core = resourceList(BUILTIN, '', 'v1') as { resources: { name: string }[] };
  expect(core.resources.map((r) => r.name)).toEqual(
    expect.arrayContaining([
      'namespaces',
      'pods',
      'pods/status',
      'nodes',
      'services',
      'endpoints',
      'serviceaccounts',
    ]),
  );
  expect(resourceList(BUILTIN, 'nope', 'v1')).toBeUndefined();
  expect(
    wantsAggregated(
      'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json',
    ),
  ).toBe(true);
  const agg = aggregated(BUILTIN, false) as { items: { metadata: { name: string } }[] };
  expect(agg.items.map((i) => i.metadata.name)).toEqual(
    expect.arrayContaining([
      'networking.k8s.io',
      'discovery.k8s.io',
      'apiextensions.k8s.io',
      'apps',
      'rbac.authorization.k8s.io',
    ]),
  );
});

test('OpenAPI v3: PATCH operations tagged with their kind take fieldValidation and strategic merge for built-ins only', () => {
  const idx = openApiV3Index(BUILTIN) as { paths: Record<string, { serverRelativeURL: string }> };
  expect(idx.paths['apis/networking.k8s.io/v1'].serverRelativeURL).toMatch(
    /^\/openapi\/v3\/apis\/networking.k8s.io\/v1\?hash=/,
  );
  const doc = openApiV3Group(BUILTIN, 'apis/networking.k8s.io/v1') as {
    paths: Record<
      string,
      {
        patch?: {
          parameters: { name: string }[];
          requestBody: { content: Record<string, unknown> };
          'x-kubernetes-group-version-kind': unknown;
        };
      }
    >;
    components: { schemas: Record<string, Record<string, unknown>> };
  };
  const patch =
    doc.paths['/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}'].patch!;
  expect(patch['x-kubernetes-group-version-kind']).toEqual({
    group: 'networking.k8s.io',
    version: 'v1',
    kind: 'NetworkPolicy',
  });
  expect(patch.parameters.map((p) => p.name)).toContain('fieldValidation');
  expect(Object.keys(patch.requestBody.content)).toContain(
    'application/strategic-merge-patch+json',
  );
  expect(
    doc.components.schemas['io.k8s.api.networking.v1.NetworkPolicy'][
      'x-kubernetes-group-version-kind'
    ],
  ).toEqual([{ group: 'networking.k8s.io', version: 'v1', kind: 'NetworkPolicy' }]);
  const types = [...BUILTIN, ...typesOfCrd(crd())];
  const cr = openApiV3Group(types, 'apis/example.com/v1') as typeof doc;
  expect(
    Object.keys(
      cr.paths['/apis/example.com/v1/namespaces/{namespace}/widgets/{name}'].patch!.requestBody
        .content,
    ),
  ).not.toContain('application/strategic-merge-patch+json');
});

test('server-side apply owns list items by their key and merges them; update ownership', () => {
  const s = type('Pod').schema;
  const pod = (containers: unknown[]) =>
    ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'd' },
      spec: { containers },
    }) as KubeObject;
  const a = serverSideApply(undefined, pod([{ name: 'a', image: 'a:1' }]), s, 'alice', false, 'v1');
  const mf = a.metadata.managedFields as { manager: string; fieldsV1: Record<string, unknown> }[];
  expect(mf[0].fieldsV1).toEqual({
    'f:spec': { 'f:containers': { 'k:{"name":"a"}': { '.': {}, 'f:name': {}, 'f:image': {} } } },
  });
  // bob adds his own container: merged by name, alice's stays hers
  const b = serverSideApply(a, pod([{ name: 'b', image: 'b:1' }]), s, 'bob', false, 'v1');
  expect((b.spec as { containers: unknown[] }).containers).toEqual([
    { name: 'a', image: 'a:1' },
    { name: 'b', image: 'b:1' },
  ]);
  // bob changing alice's image conflicts; alice dropping her container removes it
  expect(() =>
    serverSideApply(b, pod([{ name: 'a', image: 'a:2' }]), s, 'bob', false, 'v1'),
  ).toThrow(
    'Apply failed with 1 conflict: conflict with "alice": .spec.containers[name="a"].image',
  );
  const c = serverSideApply(b, pod([]), s, 'alice', false, 'v1');
  expect((c.spec as { containers: unknown[] }).containers).toEqual([{ name: 'b', image: 'b:1' }]);
  // an update takes the fields it changed from their owner
  const d = structuredClone(c);
  (d.spec as { containers: { image: string }[] }).containers[0].image = 'b:2';
  trackUpdate(c, d, s, 'kubectl-edit', 'v1');
  const owners = (
    d.metadata.managedFields as { manager: string; fieldsV1: Record<string, unknown> }[]
  ).map((e) => [e.manager, fromFieldsV1(e.fieldsV1 as never).map((p) => p.join('/'))]);
  expect(owners).toEqual([
    ['bob', ['f:spec/f:containers/k:{"name":"b"}/.', 'f:spec/f:containers/k:{"name":"b"}/f:name']],
    ['kubectl-edit', ['f:spec/f:containers/k:{"name":"b"}/f:image']],
  ]);
});

test("apply conflicts with several managers worded as kube-apiserver's conflict.go", () => {
  const s = type('Pod').schema;
  const pod = (image: string, node: string) =>
    ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'd' },
      spec: { nodeName: node, containers: [{ name: 'a', image }] },
    }) as KubeObject;
  const a = serverSideApply(undefined, pod('a:1', 'n1'), s, 'alice', false, 'v1');
  const b = structuredClone(a);
  (b.spec as { nodeName: string }).nodeName = 'n2';
  trackUpdate(a, b, s, 'scheduler', 'v1');
  let err: ApiError | undefined;
  try {
    serverSideApply(b, pod('a:2', 'n3'), s, 'bob', false, 'v1');
  } catch (e) {
    err = e as ApiError;
  }
  expect(err?.code).toBe(409);
  expect(err?.message).toBe(
    'Apply failed with 2 conflicts: conflicts with "alice":\n- .spec.containers[name="a"].image\nconflicts with "scheduler" using v1:\n- .spec.nodeName',
  );
  expect(err?.details?.causes).toEqual([
    {
      reason: 'FieldManagerConflict',
      message: 'conflict with "alice"',
      field: '.spec.containers[name="a"].image',
    },
    {
      reason: 'FieldManagerConflict',
      message: 'conflict with "scheduler" using v1',
      field: '.spec.nodeName',
    },
  ]);
});

test("continue tokens: kube-apiserver's encoding, and bad ones refused naming why", () => {
  const t = encodeContinue({ rv: 42, start: 'web-1\u0000' });
  // URL-safe base64 without padding, of the JSON kube-apiserver's etcd3 store writes
  expect(t).toMatch(/^[A-Za-z0-9_-]+$/);
  expect(Buffer.from(t, 'base64url').toString()).toBe(
    '{"v":"meta.k8s.io/v1","rv":42,"start":"web-1\\u0000"}',
  );
  expect(decodeContinue(t)).toEqual({ rv: 42, start: 'web-1\u0000' });
  expect(decodeContinue(encodeContinue({ rv: -1, start: 'a' }))).toEqual({ rv: -1, start: 'a' });
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  expect(() => decodeContinue('%%%')).toThrow('continue key is not valid');
  expect(() => decodeContinue(enc({ v: 'v2', rv: 1, start: 'a' }))).toThrow(
    'server does not recognize this encoded version',
  );
  expect(() => decodeContinue(enc({ v: 'meta.k8s.io/v1', rv: 0, start: 'a' }))).toThrow(
    'incorrect encoded start resourceVersion',
  );
  expect(() => decodeContinue(enc({ v: 'meta.k8s.io/v1', rv: 3, start: '' }))).toThrow(
    'encoded start key empty',
  );
  expect(() => decodeContinue(enc({ v: 'meta.k8s.io/v1', rv: 3, start: '../secrets/x' }))).toThrow(
    'path traversal',
  );
  expect(limitOf(null)).toBeUndefined();
  expect(limitOf('0')).toBeUndefined();
  expect(limitOf('500')).toBe(500);
  expect(() => limitOf('ten')).toThrow('invalid limit "ten"');
});
