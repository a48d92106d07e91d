// CustomResourceDefinitions generated from the zod schemas (never written twice):
// JSON Schema from zod, then reshaped into the structural OpenAPI v3 subset
// apiextensions.k8s.io/v1 accepts.
import { z } from 'zod';
import { API_GROUP, KINDS, type Kind } from './resources';

type Json = { [k: string]: unknown };

/** Rewrites zod's JSON Schema into Kubernetes' structural schema dialect. */
export function toStructural(s: Json): Json {
  if (Array.isArray(s.anyOf) || Array.isArray(s.oneOf)) {
    const alts = (s.anyOf ?? s.oneOf) as Json[];
    const nonNull = alts.filter((a) => a.type !== 'null');
    const types = new Set(nonNull.map((a) => a.type));
    const base: Json = {};
    if (s.default !== undefined) base.default = s.default;
    if (s.description) base.description = s.description;
    if (
      nonNull.length > 1 &&
      nonNull.every((a) => a.const !== undefined && a.type === nonNull[0].type)
    ) {
      return { ...base, type: nonNull[0].type, enum: nonNull.map((a) => a.const) };
    }
    if (nonNull.length === 1) {
      return {
        ...toStructural(nonNull[0]),
        ...base,
        ...(nonNull.length < alts.length ? { nullable: true } : {}),
      };
    }
    if ([...types].every((t) => t === 'string' || t === 'number' || t === 'integer')) {
      return { ...base, 'x-kubernetes-int-or-string': true };
    }
    return { ...base, 'x-kubernetes-preserve-unknown-fields': true };
  }
  if (Array.isArray(s.type)) {
    // zod writes a union of primitives as `type: [number, string]`, which is not
    // structural: Kubernetes refuses such a CRD
    const types = (s.type as string[]).filter((t) => t !== 'null');
    const { type: _t, ...rest } = s;
    const nullable = types.length < (s.type as string[]).length ? { nullable: true } : {};
    if (types.length === 1) return { ...toStructural({ ...rest, type: types[0] }), ...nullable };
    const base: Json = {};
    if (s.default !== undefined) base.default = s.default;
    if (s.description) base.description = s.description;
    if (types.every((t) => t === 'string' || t === 'number' || t === 'integer'))
      return { ...base, ...nullable, 'x-kubernetes-int-or-string': true };
    return { ...base, ...nullable, 'x-kubernetes-preserve-unknown-fields': true };
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    // propertyNames (zod's z.record keys) is JSON Schema, not apiextensions'
    // JSONSchemaProps: kube-apiserver refuses it as an unknown field (a map's keys are
    // strings anyway)
    if (k === '$schema' || k === 'additionalProperties' || k === 'const' || k === 'propertyNames')
      continue;
    if (k === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(v as Record<string, Json>).map(([p, ps]) => [p, toStructural(ps)]),
      );
    } else if (k === 'items') out.items = toStructural(v as Json);
    else if (k === 'exclusiveMinimum' || k === 'exclusiveMaximum') continue;
    else out[k] = v;
  }
  if (s.const !== undefined) out.enum = [s.const];
  if (s.type === 'object') {
    const ap = s.additionalProperties;
    // a structural schema has properties or additionalProperties, never both: an object
    // with known fields that takes others too keeps the unknown ones instead
    if (ap && typeof ap === 'object' && (s.properties || !Object.keys(ap).length))
      out['x-kubernetes-preserve-unknown-fields'] = true;
    else if (ap && typeof ap === 'object') out.additionalProperties = toStructural(ap as Json);
    else if (ap === undefined && !s.properties) out['x-kubernetes-preserve-unknown-fields'] = true;
    else if (ap === undefined || ap === true) out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  // any value (a field refused by @tortie/api's admission, which names why)
  if (s.type === undefined && !out.enum && !out.properties)
    out['x-kubernetes-preserve-unknown-fields'] = true;
  if (
    s.type === 'integer' &&
    typeof out.maximum === 'number' &&
    out.maximum > Number.MAX_SAFE_INTEGER
  )
    delete out.maximum;
  return out;
}

export function crdFor(kind: Kind): Json {
  const def = KINDS[kind];
  const spec = toStructural(
    z.toJSONSchema(def.spec, { io: 'input', unrepresentable: 'any' }) as Json,
  );
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      names: { kind, listKind: `${kind}List`, plural: def.plural, singular: kind.toLowerCase() },
      scope: def.namespaced ? 'Namespaced' : 'Cluster',
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec,
              },
            },
          },
        },
      ],
    },
  };
}

export function allCrds(): Json[] {
  return (Object.keys(KINDS) as Kind[]).map(crdFor);
}
