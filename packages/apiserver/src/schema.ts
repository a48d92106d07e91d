// Structural OpenAPI v3 schemas as Kubernetes applies them to an object: null for a
// non-nullable field is dropped, defaults are filled in, unknown fields are pruned (and
// reported, for fieldValidation), then the value is checked. Errors name the field path.

export interface Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  nullable?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-patch-merge-key'?: string;
  'x-kubernetes-patch-strategy'?: string;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
  [k: string]: unknown;
}

export interface Cause {
  reason: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueNotSupported' | string;
  message: string;
  field: string;
}

export interface Checked {
  causes: Cause[];
  /** fields that are not in the schema (pruned), as paths */
  unknown: string[];
}

const q = (v: unknown): string => JSON.stringify(v);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(s: Schema, v: unknown): boolean {
  if (s['x-kubernetes-int-or-string'])
    return typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));
  if (!s.type) return true;
  const t = typeOf(v);
  if (s.type === 'number') return t === 'number' || t === 'integer';
  return t === s.type;
}

const join = (path: string, k: string): string => (path ? `${path}.${k}` : k);

/**
 * Applies nulls, defaults and pruning to `value` in place (returns the new value for a
 * replaced root) and collects what is wrong with it.
 */
export function checkValue(s: Schema, value: unknown, path: string, out: Checked): unknown {
  // a nullable list item or field keeps its null (IPAMBlock allocations: free ordinals)
  if (value === null && s.nullable) return null;
  if (!typeMatches(s, value)) {
    const want = s['x-kubernetes-int-or-string'] ? 'integer or string' : s.type;
    out.causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${q(typeOf(value))}: ${path} in body must be of type ${want}: ${q(typeOf(value))}`,
      field: path,
    });
    return value;
  }
  if (s.enum && !s.enum.some((e) => e === value)) {
    out.causes.push({
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${q(value)}: supported values: ${s.enum.map(q).join(', ')}`,
      field: path,
    });
  }
  if (typeof value === 'string') checkString(s, value, path, out);
  if (typeof value === 'number') {
    if (s.minimum !== undefined && value < s.minimum)
      out.causes.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${value}: ${path} in body should be greater than or equal to ${s.minimum}`,
        field: path,
      });
    if (s.maximum !== undefined && value > s.maximum)
      out.causes.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${value}: ${path} in body should be less than or equal to ${s.maximum}`,
        field: path,
      });
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems)
      out.causes.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${value.length}: ${path} in body should have at least ${s.minItems} items`,
        field: path,
      });
    if (s.maxItems !== undefined && value.length > s.maxItems)
      out.causes.push({
        reason: 'FieldValueTooMany',
        message: `Too many: ${value.length}: must have at most ${s.maxItems} items`,
        field: path,
      });
    if (s.items) {
      for (let i = 0; i < value.length; i++)
        value[i] = checkValue(s.items, value[i], `${path}[${i}]`, out);
    }
  }
  if (value && typeof value === 'object' && !Array.isArray(value))
    checkObject(s, value as Record<string, unknown>, path, out);
  return value;
}

function checkString(s: Schema, value: string, path: string, out: Checked): void {
  if (s.pattern && !new RegExp(s.pattern, 'u').test(value))
    out.causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${q(value)}: ${path} in body should match '${s.pattern}'`,
      field: path,
    });
  if (s.minLength !== undefined && value.length < s.minLength)
    out.causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${q(value)}: ${path} in body should be at least ${s.minLength} chars long`,
      field: path,
    });
  if (s.maxLength !== undefined && value.length > s.maxLength)
    out.causes.push({
      reason: 'FieldValueTooLong',
      message: `Too long: may not be more than ${s.maxLength} bytes`,
      field: path,
    });
}

function checkObject(s: Schema, o: Record<string, unknown>, path: string, out: Checked): void {
  const props = s.properties ?? {};
  for (const [k, v] of Object.entries(o)) {
    const p = props[k];
    const sub =
      p ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
    if (
      v === null &&
      !(sub?.nullable ?? false) &&
      (sub || !s['x-kubernetes-preserve-unknown-fields'])
    ) {
      delete o[k];
      continue;
    }
    if (sub) o[k] = checkValue(sub, v, join(path, k), out);
    else if (
      !s['x-kubernetes-preserve-unknown-fields'] &&
      s.additionalProperties !== true &&
      (s.properties || s.additionalProperties === false)
    ) {
      out.unknown.push(join(path, k));
      delete o[k];
    }
  }
  for (const [k, p] of Object.entries(props)) {
    if (o[k] === undefined && p.default !== undefined) {
      o[k] = structuredClone(p.default);
      o[k] = checkValue(p, o[k], join(path, k), out);
    }
  }
  for (const r of s.required ?? [])
    if (o[r] === undefined)
      out.causes.push({
        reason: 'FieldValueRequired',
        message: 'Required value',
        field: join(path, r),
      });
}

/** Checks a whole object against its type's schema; metadata is checked by the server. */
export function checkObjectSchema(s: Schema, o: Record<string, unknown>): Checked {
  const out: Checked = { causes: [], unknown: [] };
  const top = { ...s, properties: { ...(s.properties ?? {}) } };
  // apiVersion, kind and metadata are the server's, whatever a CRD's schema says of them
  delete top.properties.metadata;
  delete top.properties.apiVersion;
  delete top.properties.kind;
  const { apiVersion, kind, metadata, ...rest } = o;
  checkObject(top, rest, '', out);
  for (const k of Object.keys(o)) if (!['apiVersion', 'kind', 'metadata'].includes(k)) delete o[k];
  Object.assign(o, rest);
  void apiVersion;
  void kind;
  void metadata;
  return out;
}
