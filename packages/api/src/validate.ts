// Turning user documents into resources: every problem reported with its field path,
// nothing half-accepted. Manifests may be YAML or JSON, several documents, or a List.
import { z } from 'zod';
import {
  API_VERSION,
  CALICO_API_VERSION,
  KINDS,
  isKind,
  resourceSchema,
  type Kind,
  type Resource,
} from './resources';
import { felixConfigurationProblem } from './felix-configuration';

type Check = (r: {
  metadata: { name: string; labels?: Record<string, string> };
  spec: never;
}) => string | undefined;

// The namespace label only maps a real namespace into Calico's v1 model; set by hand
// it would put a set into a namespace it is not in.
const noNamespaceLabel: Check = (r) =>
  r.metadata.labels?.['projectcalico.org/namespace'] !== undefined
    ? 'metadata.labels: projectcalico.org/namespace is not a valid label name'
    : undefined;

const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const SUBDOMAIN = `${LABEL}(\\.${LABEL})*`;

/** Calico's name rules of the kinds whose names are narrower than a DNS subdomain. */
const NAME_RULES: Partial<Record<Kind, { re: RegExp; max: number; what: string }>> = {
  // a name, a tier-prefixed "tier.name", or a Kubernetes policy's "knp.default.<name>"
  NetworkPolicy: {
    re: new RegExp(`^((${LABEL})(\\.${LABEL})?|((knp|ossg)\\.default\\.(${SUBDOMAIN})))$`),
    max: 253,
    what: 'lowercase alphanumerics or "-", with at most one "." (a tier prefix)',
  },
  GlobalNetworkPolicy: {
    re: new RegExp(`^(${LABEL}\\.)?${LABEL}$`),
    max: 253,
    what: 'lowercase alphanumerics or "-", with at most one "." (a tier prefix)',
  },
  // tier names are parts of policy names and label values
  Tier: { re: new RegExp(`^${LABEL}$`), max: 63, what: 'lowercase alphanumerics or "-"' },
};

/** Calico's CEL rules on its built-in tiers: their order and default action are fixed. */
const BUILTIN_TIERS: Record<string, { order: number; defaultAction: string }> = {
  default: { order: 1_000_000, defaultAction: 'Deny' },
  'kube-admin': { order: 1_000, defaultAction: 'Pass' },
  'kube-baseline': { order: 10_000_000, defaultAction: 'Pass' },
};

function nameProblem(kind: Kind, name: unknown): string | undefined {
  const rule = NAME_RULES[kind];
  if (!rule || typeof name !== 'string') return undefined;
  if (name.length > rule.max)
    return `metadata.name: ${JSON.stringify(name)} is too long by ${name.length - rule.max} bytes`;
  if (!rule.re.test(name))
    return `metadata.name: ${JSON.stringify(name)}: a ${kind} name must be ${rule.what}`;
  return undefined;
}

/** Rules Calico checks on the whole resource (name and spec together). */
const RESOURCE_CHECKS: Partial<Record<Kind, Check>> = {
  FelixConfiguration: (r) => {
    const problem = felixConfigurationProblem(r.metadata.name, r.spec);
    return problem && `spec.nodeSelector: ${problem}`;
  },
  NetworkSet: noNamespaceLabel,
  GlobalNetworkSet: noNamespaceLabel,
  Tier: (r) => {
    const fixed = BUILTIN_TIERS[r.metadata.name];
    const spec = r.spec as { order?: number; defaultAction: string };
    if (fixed && spec.defaultAction !== fixed.defaultAction)
      return `spec.defaultAction: the '${r.metadata.name}' tier must have default action '${fixed.defaultAction}'`;
    if (fixed && spec.order !== fixed.order)
      return `spec.order: the '${r.metadata.name}' tier's order must be ${fixed.order}`;
    return undefined;
  },
};

export class ValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ValidationError';
  }
}

function pathText(path: PropertyKey[]): string {
  return path.reduce<string>(
    (s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)),
    '',
  );
}

function where(doc: unknown, index?: number): string {
  const d = doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const name = typeof d?.metadata?.name === 'string' ? d.metadata.name : undefined;
  const ns = typeof d?.metadata?.namespace === 'string' ? `${d.metadata.namespace}/` : '';
  const id = typeof d?.kind === 'string' ? `${d.kind}${name ? ` ${ns}${name}` : ''}` : 'document';
  return index === undefined ? id : `document ${index + 1} (${id})`;
}

/** Validates one document into a resource with defaults applied; throws ValidationError. */
export function parseResource(doc: unknown, index?: number): Resource {
  const label = where(doc, index);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ValidationError([`${label}: not an object`]);
  }
  const kind = (doc as { kind?: unknown }).kind;
  if (typeof kind !== 'string' || !isKind(kind)) {
    throw new ValidationError([
      `${label}: kind: ${kind === undefined ? 'missing' : `unknown kind ${JSON.stringify(kind)}`} (one of ${Object.keys(KINDS).join(', ')})`,
    ]);
  }
  const r = resourceSchema(kind).safeParse(doc);
  const problems = r.success
    ? []
    : r.error.issues.map((i) => `${label}: ${pathText(i.path)}: ${i.message}`);
  const ns = (doc as { metadata?: { namespace?: unknown } }).metadata?.namespace;
  if (!KINDS[kind].namespaced && ns !== undefined) {
    problems.push(`${label}: metadata.namespace: ${kind} is not namespaced`);
  }
  const badName = nameProblem(kind, (doc as { metadata?: { name?: unknown } }).metadata?.name);
  if (badName) problems.push(`${label}: ${badName}`);
  const check = r.success ? RESOURCE_CHECKS[kind] : undefined;
  const whole = check?.(r.data as never);
  if (whole) problems.push(`${label}: ${whole}`);
  if (problems.length || !r.success) throw new ValidationError(problems);
  const res = r.data as unknown as Resource;
  res.apiVersion = API_VERSION;
  if (KINDS[kind as Kind].namespaced) res.metadata.namespace ??= 'default';
  return res;
}

/** Parses YAML (multi-document) or JSON text, unwrapping `kind: List` items. */
export function parseManifestDocuments(text: string, source = 'input'): unknown[] {
  // required here, not at the top: the agent, the CNI plugin and the controllers load
  // this package and never parse YAML (yaml is ~70 modules, seconds under emulation)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const YAML = require('yaml') as typeof import('yaml');
  let docs: unknown[];
  try {
    docs = YAML.parseAllDocuments(text).map((d) => {
      if (d.errors.length) throw new Error(d.errors[0].message);
      return d.toJS() as unknown;
    });
  } catch (err) {
    throw new ValidationError([`${source}: not valid YAML or JSON: ${(err as Error).message}`]);
  }
  return docs
    .filter((d) => d !== null && d !== undefined)
    .flatMap((d) => {
      const list = d as { kind?: string; items?: unknown[] };
      return list.kind?.endsWith('List') && Array.isArray(list.items) ? list.items : [d];
    });
}

/** Every document valid, or a ValidationError listing every problem of every document. */
export function parseManifests(text: string, source = 'input'): Resource[] {
  const docs = parseManifestDocuments(text, source);
  const out: Resource[] = [];
  const problems: string[] = [];
  docs.forEach((d, i) => {
    try {
      out.push(parseResource(d, docs.length > 1 ? i : undefined));
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      problems.push(...err.problems);
    }
  });
  if (problems.length) throw new ValidationError(problems);
  return out;
}

/** A resource as stored/printed: the Calico alias is never written back. */
export function isCalicoApiVersion(v: unknown): boolean {
  return v === CALICO_API_VERSION;
}

export { z };
