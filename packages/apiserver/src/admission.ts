// What a write must pass before it is stored: metadata rules, the type's schema (with
// null-dropping, defaults and pruning), then per-kind validation: tortie kinds through
// @tortie/api (the same field paths tortiectl prints), Kubernetes NetworkPolicy's
// semantic rules, CRD naming. Causes name the field; the server answers 422 Invalid.
import { API_GROUP, isKind, parseResource, ValidationError } from '@tortie/api';
import { cidrProblem, containsCidr, parseCidr } from '@tortie/netaddr';
import { crdProblems, pruneUnknownSchemaFields } from './crd';
import { type ResourceType } from './resources';
import { checkObjectSchema, type Cause } from './schema';
import { type KubeObject } from './storage';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface Admitted {
  causes: Cause[];
  /** unknown fields (pruned) */
  unknown: string[];
}

const bad = (field: string, value: unknown, why: string): Cause => ({
  reason: 'FieldValueInvalid',
  field,
  message: `Invalid value: ${JSON.stringify(value)}: ${why}`,
});

function labelKeyProblem(k: string): string | undefined {
  const slash = k.lastIndexOf('/');
  const [prefix, name] = slash >= 0 ? [k.slice(0, slash), k.slice(slash + 1)] : [undefined, k];
  if (prefix !== undefined && (!DNS1123_SUBDOMAIN.test(prefix) || prefix.length > 253))
    return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  if (!LABEL_NAME.test(name) || name.length > 63)
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

function metadataCauses(t: ResourceType, o: KubeObject): Cause[] {
  const out: Cause[] = [];
  const m = o.metadata;
  const name = m.name;
  const label = t.kind === 'Namespace';
  if (typeof name !== 'string' || !name)
    out.push({
      reason: 'FieldValueRequired',
      field: 'metadata.name',
      message: 'Required value: name or generateName is required',
    });
  else if (
    label
      ? !DNS1123_LABEL.test(name) || name.length > 63
      : !DNS1123_SUBDOMAIN.test(name) || name.length > 253
  )
    out.push(
      bad(
        'metadata.name',
        name,
        `a lowercase RFC 1123 ${label ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-'${label ? '' : " or '.'"}, and must start and end with an alphanumeric character`,
      ),
    );
  for (const [field, map] of [
    ['metadata.labels', m.labels],
    ['metadata.annotations', m.annotations],
  ] as const) {
    if (map === undefined) continue;
    if (!map || typeof map !== 'object' || Array.isArray(map)) {
      out.push(bad(field, map, 'must be a map of strings'));
      continue;
    }
    for (const [k, v] of Object.entries(map)) {
      const kp = labelKeyProblem(k);
      if (kp) out.push(bad(field, k, kp));
      if (typeof v !== 'string') out.push(bad(`${field}.${k}`, v, 'must be a string'));
      else if (field === 'metadata.labels' && (!LABEL_VALUE.test(v) || v.length > 63))
        out.push(
          bad(
            `${field}`,
            v,
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
          ),
        );
    }
  }
  return out;
}

/** Kubernetes' own semantic rules for NetworkPolicy beyond its schema. */
function networkPolicyCauses(o: KubeObject): Cause[] {
  const out: Cause[] = [];
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  for (const dir of ['ingress', 'egress'] as const) {
    const peersKey = dir === 'ingress' ? 'from' : 'to';
    ((spec[dir] as Record<string, unknown>[] | undefined) ?? []).forEach((rule, i) => {
      const base = `spec.${dir}[${i}]`;
      ((rule.ports as Record<string, unknown>[] | undefined) ?? []).forEach((p, j) => {
        const f = `${base}.ports[${j}]`;
        if (typeof p.port === 'number' && (p.port < 1 || p.port > 65535))
          out.push(bad(`${f}.port`, p.port, 'must be between 1 and 65535, inclusive'));
        if (typeof p.port === 'string' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.port))
          out.push(bad(`${f}.port`, p.port, 'must be a valid port name'));
        if (p.endPort !== undefined) {
          if (typeof p.port !== 'number')
            out.push(
              bad(`${f}.endPort`, p.endPort, 'may not be specified when port is non-numeric'),
            );
          else if ((p.endPort as number) < p.port)
            out.push(bad(`${f}.endPort`, p.endPort, 'must be greater than or equal to `port`'));
        }
      });
      ((rule[peersKey] as Record<string, unknown>[] | undefined) ?? []).forEach((peer, j) => {
        const f = `${base}.${peersKey}[${j}]`;
        const ipBlock = peer.ipBlock as { cidr?: string; except?: string[] } | undefined;
        if (ipBlock && (peer.podSelector || peer.namespaceSelector))
          out.push({
            reason: 'FieldValueForbidden',
            field: f,
            message: 'Forbidden: may not specify both ipBlock and another peer',
          });
        if (!ipBlock?.cidr) return;
        const p = cidrProblem(ipBlock.cidr);
        if (p) {
          out.push(bad(`${f}.ipBlock.cidr`, ipBlock.cidr, p));
          return;
        }
        (ipBlock.except ?? []).forEach((e, k) => {
          const ep = cidrProblem(e);
          if (ep) out.push(bad(`${f}.ipBlock.except[${k}]`, e, ep));
          else if (!containsCidr(parseCidr(ipBlock.cidr!), parseCidr(e)))
            out.push(bad(`${f}.ipBlock.except[${k}]`, e, 'must be a strict subset of `cidr`'));
        });
      });
    });
  }
  return out;
}

/** Whether a LabelSelector selects a set of labels (matchLabels and matchExpressions). */
function selects(sel: Record<string, unknown>, labels: Record<string, string>): boolean {
  const ml = (sel.matchLabels ?? {}) as Record<string, string>;
  const me = (sel.matchExpressions ?? []) as { key: string; operator: string; values?: string[] }[];
  return (
    Object.entries(ml).every(([k, v]) => labels[k] === v) &&
    me.every((e) => {
      const has = Object.hasOwn(labels, e.key);
      const inValues = has && (e.values ?? []).includes(labels[e.key]);
      return e.operator === 'In'
        ? inValues
        : e.operator === 'NotIn'
          ? !inValues
          : e.operator === 'Exists'
            ? has
            : !has;
    })
  );
}

/** apps/v1 workloads (ValidateDeploymentSpec...): a non-empty selector matching the template. */
function workloadCauses(o: KubeObject): Cause[] {
  const spec = o.spec as {
    selector: Record<string, unknown>;
    template: { metadata?: { labels?: Record<string, string> } };
  };
  const sel = spec.selector;
  if (!Object.keys(sel.matchLabels ?? {}).length && !((sel.matchExpressions ?? []) as []).length)
    return [
      bad('spec.selector', sel, `empty selector is invalid for ${String(o.kind).toLowerCase()}`),
    ];
  const labels = spec.template.metadata?.labels ?? {};
  if (!selects(sel, labels))
    return [
      bad('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'),
    ];
  return [];
}

/** tortie's own validation (zod schemas of @tortie/api), as tortiectl reports it. */
function tortieCauses(o: KubeObject): Cause[] {
  const m = o.metadata;
  const doc = {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: {
      name: m.name,
      ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
      ...(m.labels ? { labels: m.labels } : {}),
      ...(m.annotations ? { annotations: m.annotations } : {}),
    },
    ...(o.spec !== undefined ? { spec: o.spec } : {}),
  };
  try {
    parseResource(doc);
    return [];
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return err.problems.map((p) => {
      // "<Kind ns/name>: <path>: <message>"
      const rest = p.replace(/^[^:]*: /, '');
      const i = rest.indexOf(': ');
      return i > 0
        ? { reason: 'FieldValueInvalid', field: rest.slice(0, i), message: rest.slice(i + 2) }
        : { reason: 'FieldValueInvalid', field: '', message: rest };
    });
  }
}

/** Checks (and normalises in place) an object about to be written. */
export function admit(t: ResourceType, o: KubeObject): Admitted {
  const causes = metadataCauses(t, o);
  let unknown: string[] = [];
  if (t.schema) {
    const checked = checkObjectSchema(t.schema, o);
    causes.push(...checked.causes);
    unknown = checked.unknown;
  }
  // a CRD's schema nodes are JSONSchemaProps: other keys are unknown fields too
  if (t.kind === 'CustomResourceDefinition' && !t.crd) unknown.push(...pruneUnknownSchemaFields(o));
  if (!causes.length) {
    if (t.kind === 'NetworkPolicy' && t.group === 'networking.k8s.io')
      causes.push(...networkPolicyCauses(o));
    if (t.group === API_GROUP && isKind(t.kind)) causes.push(...tortieCauses(o));
    if (t.group === 'apps' && !t.crd) causes.push(...workloadCauses(o));
    if (t.kind === 'CustomResourceDefinition' && !t.crd)
      causes.push(...crdProblems(o).map((c) => ({ reason: 'FieldValueInvalid', ...c })));
  }
  return { causes, unknown };
}
