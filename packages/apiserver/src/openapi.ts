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
  // a CRD's kind: its group reversed (tortie.io -> io.tortie.v1.IPPool)
  if (t.crd) return `${t.group.split('.').reverse().join('.')}.${t.version}.${t.kind}`;
  if (t.group === 'apiextensions.k8s.io')
    return `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${t.version}.${t.kind}`;
  // built-ins: their Go package, k8s.io/api/<first label of the group, or core>/<version>
  // (rbac.authorization.k8s.io -> io.k8s.api.rbac.v1.Role, apps -> io.k8s.api.apps.v1)
  return `io.k8s.api.${(t.group || 'core').split('.')[0]}.${t.version}.${t.kind}`;
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

// Keys an OpenAPI v2 schema has, less allOf (kube drops every junctor); anything else
// (nullable, oneOf/anyOf/not, propertyNames ...) is v3 only or not in a structural schema.
const V2_SCHEMA_KEYS = new Set([
  '$ref',
  'format',
  'title',
  'description',
  'default',
  'multipleOf',
  'maximum',
  'exclusiveMaximum',
  'minimum',
  'exclusiveMinimum',
  'maxLength',
  'minLength',
  'pattern',
  'maxItems',
  'minItems',
  'uniqueItems',
  'maxProperties',
  'minProperties',
  'required',
  'enum',
  'additionalProperties',
  'type',
  'items',
  'properties',
]);

/**
 * A v3 schema as kube-apiserver publishes it in v2 (apiextensions-apiserver's
 * ToStructuralOpenAPIV2): no junctors; a nullable node untyped and without properties
 * or items, and left out of its parent's required; a preserve-unknown-fields node
 * without properties or items and not typed object (kubectl's v2 validation would refuse
 * the unknown fields it keeps); an array without items untyped; only v2's keys.
 */
export function toV2Schema(s: Schema): Schema {
  const out: Schema = {};
  for (const [k, v] of Object.entries(s))
    if (V2_SCHEMA_KEYS.has(k) || k.startsWith('x-')) out[k] = v;
  if (s.nullable) {
    delete out.type;
    delete out.items;
    delete out.properties;
  }
  if (s['x-kubernetes-preserve-unknown-fields']) {
    delete out.items;
    delete out.properties;
    if (out.type === 'object') delete out.type;
  }
  if (out.type === 'array' && !out.items) delete out.type;
  if (out.properties) {
    out.properties = Object.fromEntries(
      Object.entries(out.properties).map(([k, v]) => [k, toV2Schema(v)]),
    );
    const nullable = Object.keys(s.properties ?? {}).filter((k) => s.properties![k].nullable);
    if (out.required) out.required = out.required.filter((k) => !nullable.includes(k));
  }
  if (out.items) out.items = toV2Schema(out.items);
  if (typeof out.additionalProperties === 'object') {
    if ((s.additionalProperties as Schema).nullable) delete out.required;
    out.additionalProperties = toV2Schema(out.additionalProperties);
  }
  if (out.required && !out.required.length) delete out.required;
  return out;
}

/** A type's v2 definition; a type that keeps unknown fields is an object, as kube's. */
function v2Definition(t: ResourceType): Schema {
  if (!t.schema || t.schema['x-kubernetes-preserve-unknown-fields'])
    return {
      type: 'object',
      description: fullSchema(t).description,
      'x-kubernetes-group-version-kind': gvk(t),
    };
  return toV2Schema(fullSchema(t));
}

/** A v3 parameter in v2's form: the schema's type inline. */
function v2Parameter(p: Doc): Doc {
  const { schema, ...rest } = p as Doc & { schema?: Doc };
  return { ...rest, ...(schema ?? {}) };
}

/** A v3 operation in v2's form: consumes/produces, a body parameter, response schemas. */
function v2Operation(op: Doc, ref: string): Doc {
  const {
    requestBody,
    responses: _responses,
    parameters,
    ...rest
  } = op as Doc & {
    requestBody?: { content: Record<string, unknown> };
    parameters?: Doc[];
  };
  const params = [
    ...(requestBody ? [{ name: 'body', in: 'body', required: true, schema: { $ref: ref } }] : []),
    ...(parameters ?? []).map(v2Parameter),
  ];
  return {
    ...(requestBody ? { consumes: Object.keys(requestBody.content) } : {}),
    produces: ['application/json', 'application/yaml'],
    ...rest,
    // an empty list is left out, as Go's omitempty does (protobuf cannot tell it from none)
    ...(params.length ? { parameters: params } : {}),
    responses: { '200': { description: 'OK', schema: { $ref: ref } } },
  };
}

const byName = <T>(entries: [string, T][]): Record<string, T> =>
  Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * OpenAPI v2 (swagger 2.0) of every served type: definitions tagged with their
 * group-version-kind (kubectl explain --output plaintext-openapiv2, kubectl's client-side
 * validation of a List's items) and paths whose PATCH operations take fieldValidation
 * (kubectl's v2 query-parameter check). Keys sorted, as Go marshals kube's maps.
 */
export function openApiV2(types: ResourceType[]): Doc {
  const definitions: [string, Schema][] = [];
  const paths: [string, Doc][] = [];
  for (const t of types) {
    const n = definitionName(t);
    const ref = `#/definitions/${n}`;
    definitions.push([n, v2Definition(t)]);
    for (const [p, item] of Object.entries(operations(t, ref)))
      paths.push([
        p,
        Object.fromEntries(
          Object.entries(item)
            .filter(([k, v]) => k !== 'parameters' || (v as Doc[]).length)
            .map(([k, v]) =>
              k === 'parameters'
                ? [k, (v as Doc[]).map(v2Parameter)]
                : [k, v2Operation(v as Doc, ref)],
            ),
        ),
      ]);
  }
  return {
    swagger: '2.0',
    info: { title: 'Kubernetes (tortie-apiserver)', version: 'v1.32.0' },
    paths: byName(paths),
    definitions: byName(definitions),
    securityDefinitions: {
      BearerToken: {
        description: 'Bearer Token authentication',
        type: 'apiKey',
        name: 'authorization',
        in: 'header',
      },
    },
    security: [{ BearerToken: [] }],
  };
}
