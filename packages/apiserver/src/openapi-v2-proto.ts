// The OpenAPI v2 document as gnostic's openapi_v2.Document protobuf, what kube-apiserver
// serves for `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and
// the only form kubectl reads v2 in (kube-openapi's ToProtoBinary: gnostic ParseDocument,
// then proto.Marshal). Field numbers are those of gnostic-models openapiv2/OpenAPIv2.proto.
// As gnostic's parser, a key v2 does not allow is an error naming where it is; the few
// v2 parts tortie never serves (xml, tags, headers, examples ...) are refused by name
// rather than silently dropped.
import { ProtoWriter } from './protobuf';

type Obj = Record<string, unknown>;

const fail = (path: string, msg: string): never => {
  throw new Error(`OpenAPI v2 to protobuf: ${path}: ${msg}`);
};

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) fail(path, `expected an object, got ${JSON.stringify(v)}`);
  return v as Obj;
}

function str(v: unknown, path: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(path, `expected a string, got ${JSON.stringify(v)}`);
  return v as string;
}

function strList(v: unknown, path: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) fail(path, `expected a list of strings, got ${JSON.stringify(v)}`);
  return (v as unknown[]).map((s, i) => str(s, `${path}[${i}]`)!);
}

function bool(v: unknown, path: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') fail(path, `expected a boolean, got ${JSON.stringify(v)}`);
  return v as boolean;
}

function num(v: unknown, path: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number') fail(path, `expected a number, got ${JSON.stringify(v)}`);
  return v as number;
}

function int(v: unknown, path: string): number | undefined {
  const n = num(v, path);
  if (n !== undefined && !Number.isSafeInteger(n)) fail(path, `expected an integer, got ${n}`);
  return n;
}

/** Only `allowed` keys and vendor extensions (x-...), as gnostic checks each object. */
function checkKeys(o: Obj, path: string, allowed: string[], also?: RegExp): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k) && !k.startsWith('x-') && !also?.test(k))
      fail(`${path}.${k}`, 'not allowed here in OpenAPI v2 (or not written by tortie)');
}

function required(o: Obj, path: string, keys: string[]): void {
  for (const k of keys) if (o[k] === undefined) fail(path, `is missing required property ${k}`);
}

/** Any: the value as YAML text (gnostic marshals the node; JSON is YAML). */
const any = (v: unknown): ProtoWriter => new ProtoWriter().string(2, `${JSON.stringify(v)}\n`);

/** NamedAny entries of an object's vendor extensions, in document order. */
function vendorExtensions(o: Obj): ProtoWriter[] {
  return Object.entries(o)
    .filter(([k]) => k.startsWith('x-'))
    .map(([k, v]) => new ProtoWriter().string(1, k, true).message(2, any(v)));
}

const named = (name: string, value: ProtoWriter): ProtoWriter =>
  new ProtoWriter().string(1, name, true).message(2, value);

type Kind = 'string' | 'strings' | 'bool' | 'int64' | 'double' | 'any' | 'anys';

function scalars(w: ProtoWriter, o: Obj, path: string, fields: Record<string, [number, Kind]>) {
  for (const [key, [no, kind]] of Object.entries(fields)) {
    const v = o[key];
    const p = `${path}.${key}`;
    if (v === undefined) continue;
    if (kind === 'string') w.string(no, str(v, p));
    else if (kind === 'strings') w.strings(no, strList(v, p));
    else if (kind === 'bool') w.bool(no, bool(v, p));
    else if (kind === 'int64') w.int64(no, int(v, p));
    else if (kind === 'double') w.double(no, num(v, p));
    else if (kind === 'any') w.message(no, any(v));
    else {
      if (!Array.isArray(v)) fail(p, `expected a list, got ${JSON.stringify(v)}`);
      w.messages(no, (v as unknown[]).map(any));
    }
  }
}

// message Schema
const SCHEMA_SCALARS: Record<string, [number, Kind]> = {
  $ref: [1, 'string'],
  format: [2, 'string'],
  title: [3, 'string'],
  description: [4, 'string'],
  default: [5, 'any'],
  multipleOf: [6, 'double'],
  maximum: [7, 'double'],
  exclusiveMaximum: [8, 'bool'],
  minimum: [9, 'double'],
  exclusiveMinimum: [10, 'bool'],
  maxLength: [11, 'int64'],
  minLength: [12, 'int64'],
  pattern: [13, 'string'],
  maxItems: [14, 'int64'],
  minItems: [15, 'int64'],
  uniqueItems: [16, 'bool'],
  maxProperties: [17, 'int64'],
  minProperties: [18, 'int64'],
  required: [19, 'strings'],
  enum: [20, 'anys'],
  discriminator: [26, 'string'],
  readOnly: [27, 'bool'],
  example: [30, 'any'],
};
const SCHEMA_KEYS = [
  ...Object.keys(SCHEMA_SCALARS),
  'additionalProperties',
  'type',
  'items',
  'allOf',
  'properties',
];

export function schema(v: unknown, path: string): ProtoWriter {
  const s = obj(v, path);
  checkKeys(s, path, SCHEMA_KEYS);
  const w = new ProtoWriter();
  scalars(w, s, path, SCHEMA_SCALARS);
  const ap = s.additionalProperties;
  if (ap !== undefined) {
    // AdditionalPropertiesItem: oneof { Schema schema = 1; bool boolean = 2; }
    const item = new ProtoWriter();
    if (typeof ap === 'boolean') item.bool(2, ap, true);
    else item.message(1, schema(ap, `${path}.additionalProperties`));
    w.message(21, item);
  }
  if (s.type !== undefined) {
    // TypeItem: a string or a list of them
    const t = typeof s.type === 'string' ? [s.type] : strList(s.type, `${path}.type`);
    w.message(22, new ProtoWriter().strings(1, t));
  }
  if (s.items !== undefined) {
    // ItemsItem: gnostic takes one schema (a map), not a list of them
    w.message(23, new ProtoWriter().message(1, schema(s.items, `${path}.items`)));
  }
  if (s.allOf !== undefined) {
    if (!Array.isArray(s.allOf)) fail(`${path}.allOf`, 'expected a list');
    w.messages(
      24,
      (s.allOf as unknown[]).map((x, i) => schema(x, `${path}.allOf[${i}]`)),
    );
  }
  if (s.properties !== undefined) {
    const props = obj(s.properties, `${path}.properties`);
    w.message(
      25,
      new ProtoWriter().messages(
        1,
        Object.entries(props).map(([k, p]) => named(k, schema(p, `${path}.properties.${k}`))),
      ),
    );
  }
  w.messages(31, vendorExtensions(s));
  return w;
}

// QueryParameterSubSchema and FormDataParameterSubSchema: these numbers.
// HeaderParameterSubSchema and PathParameterSubSchema have no allow_empty_value (5), so
// every later field is one lower. items (PrimitivesItems, 8) is not written by tortie.
const QUERY_FIELDS: Record<string, [number, Kind]> = {
  required: [1, 'bool'],
  in: [2, 'string'],
  description: [3, 'string'],
  name: [4, 'string'],
  allowEmptyValue: [5, 'bool'],
  type: [6, 'string'],
  format: [7, 'string'],
  collectionFormat: [9, 'string'],
  default: [10, 'any'],
  maximum: [11, 'double'],
  exclusiveMaximum: [12, 'bool'],
  minimum: [13, 'double'],
  exclusiveMinimum: [14, 'bool'],
  maxLength: [15, 'int64'],
  minLength: [16, 'int64'],
  pattern: [17, 'string'],
  maxItems: [18, 'int64'],
  minItems: [19, 'int64'],
  uniqueItems: [20, 'bool'],
  enum: [21, 'anys'],
  multipleOf: [22, 'double'],
};
const QUERY_EXTENSIONS = 23;
const PATH_FIELDS: Record<string, [number, Kind]> = Object.fromEntries(
  Object.entries(QUERY_FIELDS)
    .filter(([k]) => k !== 'allowEmptyValue')
    .map(([k, [no, kind]]) => [k, [no > 5 ? no - 1 : no, kind]]),
);
const PATH_EXTENSIONS = 22;

function nonBodyParameter(p: Obj, path: string): ProtoWriter {
  required(p, path, ['in', 'name', 'type']);
  // NonBodyParameter: oneof { header 1; formData 2; query 3; path 4 }
  const where = str(p.in, `${path}.in`)!;
  const which = ({ header: 1, formData: 2, query: 3, path: 4 } as Record<string, number>)[where];
  if (!which) fail(`${path}.in`, `unknown parameter location ${JSON.stringify(where)}`);
  const queryLike = which === 2 || which === 3;
  const fields = queryLike ? QUERY_FIELDS : PATH_FIELDS;
  checkKeys(p, path, Object.keys(fields));
  const sub = new ProtoWriter();
  scalars(sub, p, path, fields);
  sub.messages(queryLike ? QUERY_EXTENSIONS : PATH_EXTENSIONS, vendorExtensions(p));
  return new ProtoWriter().message(which, sub);
}

/** Parameter: oneof { BodyParameter body_parameter = 1; NonBodyParameter non_body_parameter = 2; } */
function parameter(p: Obj, path: string): ProtoWriter {
  if (p.in !== 'body') return new ProtoWriter().message(2, nonBodyParameter(p, path));
  // BodyParameter { description 1; name 2; in 3; required 4; schema 5; vendor_extension 6 }
  checkKeys(p, path, ['description', 'name', 'in', 'required', 'schema']);
  required(p, path, ['in', 'name', 'schema']);
  const body = new ProtoWriter()
    .string(1, str(p.description, `${path}.description`))
    .string(2, str(p.name, `${path}.name`))
    .string(3, 'body')
    .bool(4, bool(p.required, `${path}.required`))
    .message(5, schema(p.schema, `${path}.schema`))
    .messages(6, vendorExtensions(p));
  return new ProtoWriter().message(1, body);
}

function parametersItem(v: unknown, path: string): ProtoWriter {
  const p = obj(v, path);
  if (p.$ref !== undefined) {
    // JsonReference { _ref = 1; description = 2; }
    checkKeys(p, path, ['$ref', 'description']);
    const ref = new ProtoWriter()
      .string(1, str(p.$ref, `${path}.$ref`))
      .string(2, str(p.description, `${path}.description`));
    return new ProtoWriter().message(2, ref);
  }
  // ParametersItem: oneof { Parameter parameter = 1; JsonReference json_reference = 2; }
  return new ProtoWriter().message(1, parameter(p, path));
}

function parameters(v: unknown, path: string): ProtoWriter[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(path, 'expected a list of parameters');
  return (v as unknown[]).map((p, i) => parametersItem(p, `${path}[${i}]`));
}

function responses(v: unknown, path: string): ProtoWriter {
  const rs = obj(v, path);
  checkKeys(rs, path, [], /^([0-9]{3}|default)$/);
  const codes = Object.entries(rs)
    .filter(([k]) => !k.startsWith('x-'))
    .map(([code, r]) => {
      const p = `${path}.${code}`;
      const o = obj(r, p);
      const value = new ProtoWriter();
      if (o.$ref !== undefined) {
        checkKeys(o, p, ['$ref', 'description']);
        value.message(2, new ProtoWriter().string(1, str(o.$ref, `${p}.$ref`)));
      } else {
        // Response { description 1; SchemaItem schema 2; headers 3; examples 4; vendor_extension 5 }
        checkKeys(o, p, ['description', 'schema']);
        required(o, p, ['description']);
        const resp = new ProtoWriter().string(1, str(o.description, `${p}.description`));
        if (o.schema !== undefined)
          resp.message(2, new ProtoWriter().message(1, schema(o.schema, `${p}.schema`)));
        resp.messages(5, vendorExtensions(o));
        value.message(1, resp);
      }
      return named(code, value);
    });
  // Responses { repeated NamedResponseValue response_code = 1; vendor_extension 2 }
  return new ProtoWriter().messages(1, codes).messages(2, vendorExtensions(rs));
}

const OPERATION_SCALARS: Record<string, [number, Kind]> = {
  tags: [1, 'strings'],
  summary: [2, 'string'],
  description: [3, 'string'],
  operationId: [5, 'string'],
  produces: [6, 'strings'],
  consumes: [7, 'strings'],
  schemes: [10, 'strings'],
  deprecated: [11, 'bool'],
};

function operation(v: unknown, path: string): ProtoWriter {
  const o = obj(v, path);
  checkKeys(o, path, [...Object.keys(OPERATION_SCALARS), 'parameters', 'responses']);
  required(o, path, ['responses']);
  const w = new ProtoWriter();
  scalars(w, o, path, OPERATION_SCALARS);
  return w
    .messages(8, parameters(o.parameters, `${path}.parameters`))
    .message(9, responses(o.responses, `${path}.responses`))
    .messages(13, vendorExtensions(o));
}

const METHODS: Record<string, number> = {
  get: 2,
  put: 3,
  post: 4,
  delete: 5,
  options: 6,
  head: 7,
  patch: 8,
};

function pathItem(v: unknown, path: string): ProtoWriter {
  const o = obj(v, path);
  checkKeys(o, path, ['$ref', 'parameters', ...Object.keys(METHODS)]);
  const w = new ProtoWriter().string(1, str(o.$ref, `${path}.$ref`));
  for (const [m, no] of Object.entries(METHODS))
    if (o[m] !== undefined) w.message(no, operation(o[m], `${path}.${m}`));
  return w
    .messages(9, parameters(o.parameters, `${path}.parameters`))
    .messages(10, vendorExtensions(o));
}

function securityDefinitions(v: unknown, path: string): ProtoWriter {
  const defs = obj(v, path);
  return new ProtoWriter().messages(
    1,
    Object.entries(defs).map(([name, d]) => {
      const p = `${path}.${name}`;
      const o = obj(d, p);
      // tortie's server authenticates with bearer tokens: an apiKey header, as kube's
      if (o.type !== 'apiKey') fail(`${p}.type`, `only apiKey is written, not ${String(o.type)}`);
      checkKeys(o, p, ['type', 'name', 'in', 'description']);
      required(o, p, ['type', 'name', 'in']);
      const key = new ProtoWriter()
        .string(1, 'apiKey')
        .string(2, str(o.name, `${p}.name`))
        .string(3, str(o.in, `${p}.in`))
        .string(4, str(o.description, `${p}.description`))
        .messages(5, vendorExtensions(o));
      // SecurityDefinitionsItem: oneof { basic 1; api_key 2; oauth2 ... }
      return named(name, new ProtoWriter().message(2, key));
    }),
  );
}

function security(v: unknown, path: string): ProtoWriter[] {
  if (!Array.isArray(v)) fail(path, 'expected a list');
  // SecurityRequirement { repeated NamedStringArray additional_properties = 1; }
  return (v as unknown[]).map((r, i) =>
    new ProtoWriter().messages(
      1,
      Object.entries(obj(r, `${path}[${i}]`)).map(([name, scopes]) =>
        named(name, new ProtoWriter().strings(1, strList(scopes, `${path}[${i}].${name}`))),
      ),
    ),
  );
}

/** Encodes an OpenAPI v2 (swagger 2.0) JSON document as gnostic's openapi_v2.Document. */
export function encodeOpenApiV2(doc: unknown): Buffer {
  const d = obj(doc, 'document');
  checkKeys(d, 'document', [
    'swagger',
    'info',
    'host',
    'basePath',
    'schemes',
    'consumes',
    'produces',
    'paths',
    'definitions',
    'parameters',
    'security',
    'securityDefinitions',
  ]);
  required(d, 'document', ['swagger', 'info', 'paths']);
  if (d.swagger !== '2.0')
    fail('document.swagger', `must be "2.0", not ${JSON.stringify(d.swagger)}`);
  const info = obj(d.info, 'info');
  checkKeys(info, 'info', ['title', 'version', 'description']);
  required(info, 'info', ['title', 'version']);
  const w = new ProtoWriter()
    .string(1, '2.0')
    .message(
      2,
      new ProtoWriter()
        .string(1, str(info.title, 'info.title'))
        .string(2, str(info.version, 'info.version'))
        .string(3, str(info.description, 'info.description'))
        .messages(7, vendorExtensions(info)),
    )
    .string(3, str(d.host, 'host'))
    .string(4, str(d.basePath, 'basePath'))
    .strings(5, strList(d.schemes, 'schemes'))
    .strings(6, strList(d.consumes, 'consumes'))
    .strings(7, strList(d.produces, 'produces'));
  const paths = obj(d.paths, 'paths');
  checkKeys(paths, 'paths', [], /^\//);
  // Paths { repeated NamedAny vendor_extension = 1; repeated NamedPathItem path = 2; }
  w.message(
    8,
    new ProtoWriter().messages(1, vendorExtensions(paths)).messages(
      2,
      Object.entries(paths)
        .filter(([k]) => k.startsWith('/'))
        .map(([k, item]) => named(k, pathItem(item, `paths.${k}`))),
    ),
  );
  if (d.definitions !== undefined)
    w.message(
      9,
      new ProtoWriter().messages(
        1,
        Object.entries(obj(d.definitions, 'definitions')).map(([k, s]) =>
          named(k, schema(s, `definitions.${k}`)),
        ),
      ),
    );
  if (d.parameters !== undefined)
    w.message(
      10,
      new ProtoWriter().messages(
        1,
        // ParameterDefinitions { repeated NamedParameter }: Parameters, no references
        Object.entries(obj(d.parameters, 'parameters')).map(([k, p]) =>
          named(k, parameter(obj(p, `parameters.${k}`), `parameters.${k}`)),
        ),
      ),
    );
  if (d.security !== undefined) w.messages(12, security(d.security, 'security'));
  if (d.securityDefinitions !== undefined)
    w.message(13, securityDefinitions(d.securityDefinitions, 'securityDefinitions'));
  return w.messages(16, vendorExtensions(d)).finish();
}
