// OpenAPI documents for every served type, generated from the types' schemas (the
// built-ins' hand-written ones, a CRD's openAPIV3Schema). kubectl reads v3: PATCH
// operations tagged with x-kubernetes-group-version-kind that take fieldValidation tell it
// the server validates fields (so it sends fieldValidation=Strict instead of validating
// itself); strategic-merge-patch in a PATCH's body types plus the schemas' patch merge
// keys drive `kubectl apply`; `kubectl explain` renders the schemas.
import { createHash } from 'node:crypto';
import { OBJECT_META } from './builtin-schemas';
import { type ResourceType } from './resources';
import { type Schema } from './schema';

type Doc = Record<string, unknown>;

const gvPath = (group: string, version: string): string =>
  group ? `apis/${group}/${version}` : `api/${version}`;

/** The definition name kube-apiserver uses, e.g. io.k8s.api.core.v1.Pod. */
export function definitionName(t: ResourceType): string {
  if (t.crd || !t.group.endsWith('k8s.io'))
    return `${t.group.split('.').reverse().join('.')}.${t.version}.${t.kind}`;
  if (t.group === 'apiextensions.k8s.io')
    return `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${t.version}.${t.kind}`;
  const g = t.group === '' ? 'core' : t.group.replace(/\.k8s\.io$/, '').replace(/\./g, '');
  return `io.k8s.api.${g}.${t.version}.${t.kind}`;
}

function gvk(t: ResourceType): Record<string, string>[] {
  return [{ group: t.group, version: t.version, kind: t.kind }];
}

/** A type's schema with metadata spelled out and its group-version-kind attached. */
function fullSchema(t: ResourceType): Schema {
  const base: Schema = t.schema ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  return {
    ...base,
    type: 'object',
    description: base.description ?? `${t.kind} (${t.group || 'core'}/${t.version})`,
    properties: {
      apiVersion: {
        type: 'string',
        description: 'APIVersion defines the versioned schema of this representation of an object.',
      },
      kind: {
        type: 'string',
        description:
          'Kind is a string value representing the REST resource this object represents.',
      },
      ...(base.properties ?? {}),
      metadata: OBJECT_META,
    },
    'x-kubernetes-group-version-kind': gvk(t),
  };
}

const param = (name: string, description: string, inPath = false): Doc => ({
  name,
  in: inPath ? 'path' : 'query',
  description,
  ...(inPath ? { required: true } : {}),
  schema: { type: 'string', uniqueItems: true },
});

const WRITE_PARAMS = [
  param(
    'dryRun',
    'When present, indicates that modifications should not be persisted. Valid value: All',
  ),
  param('fieldManager', 'A name associated with the actor or entity that is making these changes.'),
  param(
    'fieldValidation',
    'How the server treats unknown or duplicate fields: Ignore, Warn or Strict.',
  ),
];
const LIST_PARAMS = [
  'labelSelector',
  'fieldSelector',
  'resourceVersion',
  'resourceVersionMatch',
  'watch',
  'allowWatchBookmarks',
  'timeoutSeconds',
  'limit',
  'continue',
].map((n) => param(n, n));

function operations(t: ResourceType, ref: string): Record<string, Doc> {
  const ext = (action: string): Doc => ({
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk(t)[0],
  });
  const body = (types: string[]): Doc => ({
    required: true,
    content: Object.fromEntries(types.map((c) => [c, { schema: { $ref: ref } }])),
  });
  const ok = {
    '200': { description: 'OK', content: { 'application/json': { schema: { $ref: ref } } } },
  };
  const patchTypes = [
    'application/json-patch+json',
    'application/merge-patch+json',
    ...(t.crd ? [] : ['application/strategic-merge-patch+json']),
    'application/apply-patch+yaml',
  ];
  const id = (verb: string): string => `${verb}${t.kind}`;
  const name = param('name', `name of the ${t.kind}`, true);
  const ns = param('namespace', 'object name and auth scope, such as for teams and projects', true);
  const scope = t.namespaced ? [ns] : [];
  const base = `/${gvPath(t.group, t.version)}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}`;
  const out: Record<string, Doc> = {
    [base]: {
      get: { operationId: id('list'), parameters: LIST_PARAMS, responses: ok, ...ext('list') },
      post: {
        operationId: id('create'),
        parameters: WRITE_PARAMS,
        requestBody: body(['*/*']),
        responses: ok,
        ...ext('post'),
      },
      delete: {
        operationId: id('deletecollection'),
        parameters: LIST_PARAMS,
        responses: ok,
        ...ext('deletecollection'),
      },
      parameters: scope,
    },
    [`${base}/{name}`]: {
      get: { operationId: id('read'), responses: ok, ...ext('get') },
      put: {
        operationId: id('replace'),
        parameters: WRITE_PARAMS,
        requestBody: body(['*/*']),
        responses: ok,
        ...ext('put'),
      },
      patch: {
        operationId: id('patch'),
        parameters: [...WRITE_PARAMS, param('force', 'Force is going to "force" Apply requests.')],
        requestBody: body(patchTypes),
        responses: ok,
        ...ext('patch'),
      },
      delete: {
        operationId: id('delete'),
        parameters: WRITE_PARAMS.slice(0, 1),
        responses: ok,
        ...ext('delete'),
      },
      parameters: [name, ...scope],
    },
  };
  for (const s of t.subresources ?? [])
    out[`${base}/{name}/${s}`] = {
      get: { operationId: id(`read${s}`), responses: ok, ...ext('get') },
      put: {
        operationId: id(`replace${s}`),
        parameters: WRITE_PARAMS,
        requestBody: body(['*/*']),
        responses: ok,
        ...ext('put'),
      },
      patch: {
        operationId: id(`patch${s}`),
        parameters: WRITE_PARAMS,
        requestBody: body(patchTypes),
        responses: ok,
        ...ext('patch'),
      },
      parameters: [name, ...scope],
    };
  if (t.namespaced)
    out[`/${gvPath(t.group, t.version)}/${t.plural}`] = {
      get: {
        operationId: `${id('list')}ForAllNamespaces`,
        parameters: LIST_PARAMS,
        responses: ok,
        ...ext('list'),
      },
    };
  return out;
}

/** The OpenAPI v3 document of one group version ("api/v1", "apis/<g>/<v>"). */
export function openApiV3Group(types: ResourceType[], path: string): Doc | undefined {
  const mine = types.filter((t) => gvPath(t.group, t.version) === path);
  if (!mine.length) return undefined;
  const schemas: Record<string, Schema> = {};
  let paths: Record<string, Doc> = {};
  for (const t of mine) {
    const n = definitionName(t);
    schemas[n] = fullSchema(t);
    paths = { ...paths, ...operations(t, `#/components/schemas/${n}`) };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes (tortie-apiserver)', version: 'v1.32.0' },
    paths,
    components: { schemas },
  };
}

export function openApiV3Index(types: ResourceType[]): Doc {
  const gvs = [...new Set(types.map((t) => gvPath(t.group, t.version)))];
  return {
    paths: Object.fromEntries(
      gvs.map((p) => {
        const hash = createHash('sha512')
          .update(JSON.stringify(openApiV3Group(types, p)))
          .digest('hex')
          .toUpperCase()
          .slice(0, 128);
        return [p, { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` }];
      }),
    ),
  };
}

/** OpenAPI v2 (JSON): the definitions, for clients that read v2. */
export function openApiV2(types: ResourceType[]): Doc {
  return {
    swagger: '2.0',
    info: { title: 'Kubernetes (tortie-apiserver)', version: 'v1.32.0' },
    paths: {},
    definitions: Object.fromEntries(types.map((t) => [definitionName(t), fullSchema(t)])),
  };
}
