// CustomResourceDefinitions: the types a CRD serves, and the status a CRD gets once it is
// served (Established), which `kubectl wait --for condition=established` reads.
import { type PrinterColumn, type ResourceType } from './resources';
import { type Schema } from './schema';
import { type KubeObject } from './storage';

interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: Schema };
  subresources?: { status?: unknown; scale?: unknown };
  additionalPrinterColumns?: PrinterColumn[];
}

interface CrdSpec {
  group: string;
  scope: 'Namespaced' | 'Cluster';
  names: {
    plural: string;
    singular?: string;
    kind: string;
    listKind?: string;
    shortNames?: string[];
    categories?: string[];
  };
  versions: CrdVersion[];
}

/** The types one CRD serves, one per served version (storage version first). */
export function typesOfCrd(crd: KubeObject): ResourceType[] {
  const spec = crd.spec as CrdSpec;
  const versions = [...spec.versions]
    .filter((v) => v.served !== false)
    .sort((a, b) => Number(!!b.storage) - Number(!!a.storage));
  return versions.map((v) => ({
    group: spec.group,
    version: v.name,
    kind: spec.names.kind,
    plural: spec.names.plural,
    singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
    namespaced: spec.scope === 'Namespaced',
    ...(spec.names.shortNames ? { shortNames: spec.names.shortNames } : {}),
    ...(spec.names.categories ? { categories: spec.names.categories } : {}),
    subresources: v.subresources?.status ? ['status'] : [],
    schema: v.schema?.openAPIV3Schema ?? {
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
    },
    ...(v.additionalPrinterColumns ? { columns: v.additionalPrinterColumns } : {}),
    crd: crd.metadata.name,
  }));
}

/** Problems with a CRD beyond its schema (as field causes). */
export function crdProblems(crd: KubeObject): { field: string; message: string }[] {
  const spec = crd.spec as CrdSpec;
  const out: { field: string; message: string }[] = [];
  const want = `${spec.names.plural}.${spec.group}`;
  if (crd.metadata.name !== want)
    out.push({
      field: 'metadata.name',
      message: `Invalid value: ${JSON.stringify(crd.metadata.name)}: must be spec.names.plural+"."+spec.group`,
    });
  spec.versions.forEach((v, i) => {
    const s = v.schema?.openAPIV3Schema;
    if (s) out.push(...structuralProblems(s, `spec.versions[${i}].schema.openAPIV3Schema`));
  });
  if (spec.versions.filter((v) => v.storage).length !== 1)
    out.push({
      field: 'spec.versions',
      message: `Invalid value: ${JSON.stringify(spec.versions.map((v) => v.name))}: must have exactly one version marked as storage version`,
    });
  return out;
}

const TYPES = ['object', 'array', 'string', 'integer', 'number', 'boolean'];

/** Where a schema is not structural (apiextensions.k8s.io/v1 refuses those). */
function structuralProblems(s: Schema, path: string): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  if (s.type !== undefined && !TYPES.includes(s.type as string))
    out.push({
      field: `${path}.type`,
      message: `Unsupported value: ${JSON.stringify(s.type)}: supported values: ${TYPES.map((t) => JSON.stringify(t)).join(', ')}`,
    });
  if (
    s.type === undefined &&
    !s['x-kubernetes-int-or-string'] &&
    !s['x-kubernetes-preserve-unknown-fields']
  )
    out.push({
      field: `${path}.type`,
      message: 'Required value: must not be empty for specified object fields',
    });
  if (s.properties && s.additionalProperties !== undefined)
    out.push({
      field: `${path}.additionalProperties`,
      message: 'Forbidden: additionalProperties and properties are mutual exclusive',
    });
  for (const [k, p] of Object.entries(s.properties ?? {}))
    out.push(...structuralProblems(p, `${path}.properties[${k}]`));
  if (s.items) out.push(...structuralProblems(s.items, `${path}.items`));
  if (typeof s.additionalProperties === 'object')
    out.push(...structuralProblems(s.additionalProperties, `${path}.additionalProperties`));
  return out;
}

/** The status a served CRD has. */
export function crdStatus(crd: KubeObject, now: string): Record<string, unknown> {
  const spec = crd.spec as CrdSpec;
  const cond = (type: string, reason: string, message: string) => ({
    type,
    status: 'True',
    lastTransitionTime: now,
    reason,
    message,
  });
  return {
    conditions: [
      cond('NamesAccepted', 'NoConflicts', 'no conflicts found'),
      cond('Established', 'InitialNamesAccepted', 'the initial names have been accepted'),
    ],
    acceptedNames: {
      listKind: `${spec.names.kind}List`,
      singular: spec.names.kind.toLowerCase(),
      ...spec.names,
    },
    storedVersions: spec.versions.filter((v) => v.storage).map((v) => v.name),
  };
}

// apiextensions.k8s.io/v1 JSONSchemaProps' fields: a CRD schema node is a Go struct, so
// kube-apiserver's decoder drops any other key, or refuses it under fieldValidation=Strict
// (JSON Schema keywords such as propertyNames, const or $defs are not among them).
const JSON_SCHEMA_PROPS = new Set([
  'id',
  '$schema',
  '$ref',
  'description',
  'type',
  'format',
  'title',
  'default',
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
  'multipleOf',
  'enum',
  'maxProperties',
  'minProperties',
  'required',
  'items',
  'allOf',
  'oneOf',
  'anyOf',
  'not',
  'properties',
  'additionalProperties',
  'patternProperties',
  'dependencies',
  'additionalItems',
  'definitions',
  'externalDocs',
  'example',
  'nullable',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-int-or-string',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-list-type',
  'x-kubernetes-map-type',
  'x-kubernetes-validations',
]);

/**
 * Removes the keys of a CRD's schemas that JSONSchemaProps does not have, and returns
 * their paths (spec.versions[0].schema.openAPIV3Schema.properties.x.propertyNames), for
 * the caller to refuse (Strict), warn about or ignore as kube-apiserver's decoder does.
 */
export function pruneUnknownSchemaFields(crd: KubeObject): string[] {
  const out: string[] = [];
  const isObj = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  const walk = (s: unknown, path: string): void => {
    if (!isObj(s)) return;
    for (const k of Object.keys(s)) {
      const v = s[k];
      const p = `${path}.${k}`;
      if (!JSON_SCHEMA_PROPS.has(k)) {
        out.push(p);
        delete s[k];
      } else if (['properties', 'patternProperties', 'definitions', 'dependencies'].includes(k)) {
        if (isObj(v)) for (const [n, c] of Object.entries(v)) walk(c, `${p}.${n}`);
      } else if (['items', 'additionalProperties', 'additionalItems', 'not'].includes(k)) {
        if (Array.isArray(v)) v.forEach((c, i) => walk(c, `${p}[${i}]`));
        else walk(v, p);
      } else if (['allOf', 'oneOf', 'anyOf'].includes(k) && Array.isArray(v))
        v.forEach((c, i) => walk(c, `${p}[${i}]`));
    }
  };
  const versions = (crd.spec as { versions?: unknown } | undefined)?.versions;
  if (Array.isArray(versions))
    versions.forEach((v, i) => {
      const schema = isObj(v) && isObj(v.schema) ? v.schema.openAPIV3Schema : undefined;
      walk(schema, `spec.versions[${i}].schema.openAPIV3Schema`);
    });
  return out;
}
