// OpenAPI v2 as protobuf: the encoder's bytes decoded by protobufjs with gnostic's own
// OpenAPIv2.proto (test/fixtures, copied from google/gnostic-models) and mapped back to
// JSON must give the document that was encoded, for the whole served document (built-ins
// and every tortie CRD in deploy/crds); a wrong field number or wire type cannot survive
// that. Plus the v3 to v2 schema conversion and Accept negotiation.
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import YAML from 'yaml';
import { BUILTIN, type ResourceType } from '../src';
import { typesOfCrd } from '../src/crd';
import { crdOf } from './crd-of';
import { openApiV2, toV2Schema } from '../src/openapi';
import { encodeOpenApiV2 } from '../src/openapi-v2-proto';
import { negotiateOpenApiV2, parseAccept } from '../src/openapi-v2-serve';

const REPO = path.resolve(__dirname, '../../..');

const root = new protobuf.Root();
root.addJSON(protobuf.common.get('google/protobuf/any.proto')!.nested!);
protobuf.parse(fs.readFileSync(path.join(__dirname, 'fixtures/OpenAPIv2.proto'), 'utf8'), root, {
  keepCase: true,
});
root.resolveAll();
const Document = root.lookupType('openapi.v2.Document');

type J = Record<string, unknown>;

/** A decoded gnostic message back in OpenAPI v2 JSON, as gnostic's ToRawInfo would. */
function toJson(m: J, type: protobuf.Type): unknown {
  const out: J = {};
  const fieldOf = (n: string) => type.fields[n].resolvedType as protobuf.Type;
  const anyValue = (a: J): unknown => JSON.parse(a.yaml as string);
  // map-like messages: entries named by name
  const named = (list: J[], t: protobuf.Type): J =>
    Object.fromEntries(
      list.map((e) => [e.name, toJson(e.value as J, t.fields.value.resolvedType as protobuf.Type)]),
    );
  switch (type.name) {
    case 'Any':
      return anyValue(m);
    case 'TypeItem': {
      const v = m.value as string[];
      return v.length === 1 ? v[0] : v;
    }
    case 'ItemsItem':
      return toJson((m.schema as J[])[0], fieldOf('schema'));
    case 'StringArray':
      return m.value ?? [];
    case 'Definitions':
    case 'Properties':
    case 'SecurityDefinitions':
    case 'SecurityRequirement':
    case 'ParameterDefinitions':
      return named((m.additional_properties as J[]) ?? [], fieldOf('additional_properties'));
    case 'Paths':
      return { ...named((m.path as J[]) ?? [], fieldOf('path')), ...ext(m) };
    case 'Responses':
      return { ...named((m.response_code as J[]) ?? [], fieldOf('response_code')), ...ext(m) };
  }
  if (type.oneofs?.oneof) {
    // a oneof wrapper: exactly one member set
    const set = type.oneofs.oneof.fieldsArray.filter((f) => m[f.name] !== undefined);
    if (set.length !== 1) throw new Error(`${type.name}: ${set.length} oneof members set`);
    const f = set[0];
    return f.resolvedType ? toJson(m[f.name] as J, f.resolvedType as protobuf.Type) : m[f.name];
  }
  for (const f of type.fieldsArray) {
    const v = m[f.name];
    if (v === undefined || f.name === 'vendor_extension') continue;
    const key =
      f.name === '_ref' ? '$ref' : f.name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    const t = f.resolvedType as protobuf.Type | null;
    if (!t) out[key] = typeof v === 'object' && v !== null && 'low' in v ? Number(v) : v;
    else if (f.repeated) out[key] = (v as J[]).map((x) => toJson(x, t));
    else out[key] = toJson(v as J, t);
  }
  return { ...out, ...ext(m) };
}

const ext = (m: J): J =>
  Object.fromEntries(
    ((m.vendor_extension as J[]) ?? []).map((e) => [
      e.name,
      JSON.parse((e.value as J).yaml as string),
    ]),
  );

const decode = (b: Buffer): unknown =>
  toJson(Document.toObject(Document.decode(b), { longs: Number }) as J, Document);

function tortieTypes(): ResourceType[] {
  const dir = path.join(REPO, 'deploy/crds');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => typesOfCrd(YAML.parse(fs.readFileSync(path.join(dir, f), 'utf8'))));
}

test('the served document (built-ins and every tortie CRD) survives protobuf and back', () => {
  const types = [...BUILTIN, ...tortieTypes()];
  expect(types.length).toBeGreaterThan(35);
  const doc = openApiV2(types);
  const pb = encodeOpenApiV2(doc);
  // Document.swagger is field 1, a string: tag 0x0a, length 3, "2.0"
  expect(pb.subarray(0, 5)).toEqual(Buffer.from([0x0a, 3, 0x32, 0x2e, 0x30]));
  expect(decode(pb)).toEqual(proto3(JSON.parse(JSON.stringify(doc))));
});

/**
 * What proto3 keeps: a scalar field equal to its default (minimum: 0, uniqueItems: false,
 * '') is not on the wire, so gnostic's Document (and kube-apiserver's protobuf) loses it.
 * Values inside default, enum, example and extensions are YAML text and keep everything.
 */
function proto3(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(proto3);
  if (typeof v !== 'object' || v === null) return v;
  const yamlText = (k: string) => ['default', 'enum', 'example'].includes(k) || k.startsWith('x-');
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k, x]) => yamlText(k) || (x !== 0 && x !== false && x !== ''))
      .map(([k, x]) => [k, yamlText(k) ? x : proto3(x)]),
  );
}

test('every schema field and parameter kind round-trips with its own number', () => {
  const schema = {
    $ref: '#/definitions/x',
    format: 'int32',
    title: 't',
    description: 'd',
    default: { a: [1, 'two'] },
    multipleOf: 0.5,
    maximum: 9007199254740991,
    exclusiveMaximum: true,
    minimum: -1.5,
    exclusiveMinimum: true,
    maxLength: 10,
    minLength: 1,
    pattern: '^a$',
    maxItems: 300,
    minItems: 2,
    uniqueItems: true,
    maxProperties: 7,
    minProperties: 3,
    required: ['a', 'b'],
    enum: ['Allow', 42, null, true],
    additionalProperties: false,
    type: ['string', 'null'],
    items: { type: 'integer', minimum: -5 },
    allOf: [{ type: 'object' }],
    properties: { a: { type: 'object', additionalProperties: { type: 'string' } }, b: {} },
    discriminator: 'kind',
    readOnly: true,
    example: 'e',
    'x-kubernetes-patch-merge-key': 'name',
    'x-kubernetes-list-map-keys': ['name', 'protocol'],
  };
  const op = (extra: J) => ({
    operationId: 'o',
    tags: ['t'],
    summary: 's',
    description: 'd',
    consumes: ['*/*'],
    produces: ['application/json'],
    schemes: ['https'],
    deprecated: true,
    responses: { '200': { description: 'OK', schema }, '404': { $ref: '#/responses/nf' } },
    'x-kubernetes-action': 'patch',
    ...extra,
  });
  const doc = {
    swagger: '2.0',
    info: { title: 'T', version: 'v', description: 'D', 'x-i': 1 },
    host: 'h',
    basePath: '/b',
    schemes: ['https'],
    consumes: ['application/json'],
    produces: ['application/json'],
    paths: {
      '/a/{name}': {
        parameters: [
          { name: 'name', in: 'path', required: true, type: 'string', pattern: 'p', maxLength: 9 },
          { $ref: '#/parameters/pretty' },
        ],
        get: op({
          parameters: [
            {
              name: 'q',
              in: 'query',
              type: 'integer',
              allowEmptyValue: true,
              collectionFormat: 'csv',
              default: 3,
              maximum: 5,
              exclusiveMaximum: true,
              minimum: 1,
              exclusiveMinimum: true,
              minItems: 1,
              maxItems: 2,
              uniqueItems: true,
              enum: [1, 2],
              multipleOf: 1,
              minLength: 1,
              format: 'int32',
              description: 'qd',
              'x-q': 'y',
            },
            { name: 'h', in: 'header', type: 'string', enum: ['a'], multipleOf: 2 },
            { name: 'f', in: 'formData', type: 'string', allowEmptyValue: true },
            { name: 'body', in: 'body', required: true, schema: { type: 'object' } },
          ],
        }),
        patch: op({}),
        'x-p': true,
      },
      'x-paths': 'v',
    },
    definitions: { x: schema },
    parameters: { pretty: { name: 'pretty', in: 'query', type: 'string', uniqueItems: true } },
    securityDefinitions: {
      BearerToken: { type: 'apiKey', name: 'authorization', in: 'header', description: 'b' },
    },
    security: [{ BearerToken: [] }],
    'x-top': { a: 'b' },
  };
  expect(decode(encodeOpenApiV2(doc))).toEqual(doc);
});

test('keys OpenAPI v2 does not have are refused naming where, as gnostic parses', () => {
  const doc = (s: unknown) => ({
    swagger: '2.0',
    info: { title: 'T', version: 'v' },
    paths: {},
    definitions: { 'io.tortie.v1.X': { type: 'object', properties: { spec: s } } },
  });
  expect(() => encodeOpenApiV2(doc({ type: 'integer', nullable: true }))).toThrow(
    'definitions.io.tortie.v1.X.properties.spec.nullable: not allowed here',
  );
  expect(() => encodeOpenApiV2(doc({ type: 'string', maxLength: 1.5 }))).toThrow(
    'properties.spec.maxLength: expected an integer',
  );
  expect(() => encodeOpenApiV2(doc({ items: [{ type: 'string' }] }))).toThrow(
    'properties.spec.items: expected an object',
  );
  expect(() => encodeOpenApiV2({ ...doc({}), swagger: '3.0' })).toThrow('document.swagger');
  expect(() =>
    encodeOpenApiV2({ ...doc({}), paths: { '/x': { get: { responses: { ok: {} } } } } }),
  ).toThrow('paths./x.get.responses.ok: not allowed here');
});

test("v3 schemas published as v2 the way kube publishes a CRD's (ToStructuralOpenAPIV2)", () => {
  expect(
    toV2Schema({
      type: 'object',
      required: ['a', 'n'],
      propertyNames: { type: 'string' },
      properties: {
        a: { type: 'string', anyOf: [{ pattern: 'x' }] },
        n: { type: 'integer', nullable: true },
        open: {
          type: 'object',
          'x-kubernetes-preserve-unknown-fields': true,
          properties: { x: { type: 'string' } },
        },
        list: {
          type: 'array',
          items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        },
        bare: {
          type: 'array',
          'x-kubernetes-preserve-unknown-fields': true,
          items: { type: 'string' },
        },
        ios: {
          'x-kubernetes-int-or-string': true,
          anyOf: [{ type: 'integer' }, { type: 'string' }],
        },
      },
    }),
  ).toEqual({
    type: 'object',
    required: ['a'],
    properties: {
      a: { type: 'string' },
      n: {},
      open: { 'x-kubernetes-preserve-unknown-fields': true },
      list: { type: 'array', items: { 'x-kubernetes-preserve-unknown-fields': true } },
      bare: { 'x-kubernetes-preserve-unknown-fields': true },
      ios: { 'x-kubernetes-int-or-string': true },
    },
  });
  // a kind whose schema keeps unknown fields is only an object, as kube's builder makes it
  const doc = openApiV2([
    ...BUILTIN,
    ...typesOfCrd(
      crdOf('example.com', 'Thing', 'things', {
        type: 'object',
        'x-kubernetes-preserve-unknown-fields': true,
      }),
    ),
  ]) as { definitions: Record<string, J>; paths: Record<string, Record<string, J>> };
  expect(doc.definitions['com.example.v1.Thing']).toMatchObject({
    type: 'object',
    'x-kubernetes-group-version-kind': [{ group: 'example.com', version: 'v1', kind: 'Thing' }],
  });
  expect(doc.definitions['com.example.v1.Thing']).not.toHaveProperty('properties');
  // kubectl reads the patch types a kind takes from its PATCH operation's consumes
  expect(doc.paths['/apis/example.com/v1/things/{name}'].patch.consumes).not.toContain(
    'application/strategic-merge-patch+json',
  );
  const np = doc.paths['/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}'];
  expect(np.patch.consumes).toContain('application/strategic-merge-patch+json');
  expect((np.patch.parameters as J[]).map((p) => p.name)).toEqual(
    expect.arrayContaining(['body', 'fieldValidation']),
  );
  expect(Object.keys(doc.definitions)).toContain('io.k8s.api.core.v1.ConfigMap');
});

test('Accept negotiation as kube-openapi: q first, specific before wildcard; none is 406', () => {
  // what kubectl 1.32 (client-go discovery) sends
  expect(negotiateOpenApiV2('application/com.github.proto-openapi.spec.v2@v1.0+protobuf')).toBe(
    'protobuf',
  );
  expect(negotiateOpenApiV2('application/com.github.proto-openapi.spec.v2.v1.0+protobuf')).toBe(
    'protobuf',
  );
  expect(negotiateOpenApiV2(undefined)).toBe('json');
  expect(negotiateOpenApiV2('application/json, */*')).toBe('json');
  expect(
    negotiateOpenApiV2(
      'application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf',
    ),
  ).toBe('protobuf');
  expect(negotiateOpenApiV2('application/yaml, text/plain')).toBeUndefined();
  expect(negotiateOpenApiV2('application/json;q=0')).toBeUndefined();
  expect(parseAccept('*/*, application/*;q=0.9, application/json').map((c) => c.subType)).toEqual([
    'json',
    '*',
    '*',
  ]);
});
