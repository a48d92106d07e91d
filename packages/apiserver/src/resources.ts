// The types this server serves: the built-ins, and those CRDs add at run time. A type says
// where it lives in the API, how it is keyed, and how it is validated.
import { type Schema } from './schema';
import { BUILTIN_SCHEMAS } from './builtin-schemas';

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  priority?: number;
  description?: string;
  format?: string;
}

export interface ResourceType {
  group: string; // '' for core
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  /** subresources served (status) */
  subresources?: string[];
  /** OpenAPI v3 schema of the whole object; validation, defaults and pruning follow it */
  schema?: Schema;
  /** only stored (apps, rbac): no validation beyond metadata */
  storedOnly?: boolean;
  /** additionalPrinterColumns of a CRD, or the built-in's columns */
  columns?: PrinterColumn[];
  /** the CRD that serves this type */
  crd?: string;
}

const core = (
  kind: string,
  plural: string,
  namespaced: boolean,
  shortNames?: string[],
  extra: Partial<ResourceType> = {},
): ResourceType => ({
  group: '',
  version: 'v1',
  kind,
  plural,
  singular: kind.toLowerCase(),
  namespaced,
  ...(shortNames ? { shortNames } : {}),
  ...extra,
});

const stored = (
  group: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  shortNames?: string[],
): ResourceType => ({
  group,
  version: 'v1',
  kind,
  plural,
  singular: kind.toLowerCase(),
  namespaced,
  storedOnly: true,
  ...(shortNames ? { shortNames } : {}),
});

export const BUILTIN: ResourceType[] = [
  core('Namespace', 'namespaces', false, ['ns'], { subresources: ['status'] }),
  core('Pod', 'pods', true, ['po'], { subresources: ['status'], categories: ['all'] }),
  core('Node', 'nodes', false, ['no'], { subresources: ['status'] }),
  core('ServiceAccount', 'serviceaccounts', true, ['sa']),
  core('ConfigMap', 'configmaps', true, ['cm']),
  core('Service', 'services', true, ['svc'], { subresources: ['status'], categories: ['all'] }),
  core('Endpoints', 'endpoints', true, ['ep'], { singular: 'endpoints' }),
  {
    group: 'discovery.k8s.io',
    version: 'v1',
    kind: 'EndpointSlice',
    plural: 'endpointslices',
    singular: 'endpointslice',
    namespaced: true,
  },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    kind: 'NetworkPolicy',
    plural: 'networkpolicies',
    singular: 'networkpolicy',
    namespaced: true,
    shortNames: ['netpol'],
  },
  {
    group: 'apiextensions.k8s.io',
    version: 'v1',
    kind: 'CustomResourceDefinition',
    plural: 'customresourcedefinitions',
    singular: 'customresourcedefinition',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    subresources: ['status'],
  },
  stored('apps', 'Deployment', 'deployments', true, ['deploy']),
  stored('apps', 'DaemonSet', 'daemonsets', true, ['ds']),
  stored('apps', 'StatefulSet', 'statefulsets', true, ['sts']),
  stored('apps', 'ReplicaSet', 'replicasets', true, ['rs']),
  stored('rbac.authorization.k8s.io', 'ClusterRole', 'clusterroles', false),
  stored('rbac.authorization.k8s.io', 'ClusterRoleBinding', 'clusterrolebindings', false),
  stored('rbac.authorization.k8s.io', 'Role', 'roles', true),
  stored('rbac.authorization.k8s.io', 'RoleBinding', 'rolebindings', true),
].map((t) => {
  const schema = BUILTIN_SCHEMAS[t.kind];
  return schema ? { ...t, schema } : t;
});

export function apiVersionOf(t: { group: string; version: string }): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

/** The built-ins plus the kinds of the CRDs that exist now. */
export class Registry {
  private custom: ResourceType[] = [];

  all(): ResourceType[] {
    return [...BUILTIN, ...this.custom];
  }

  /** Replaces the types served by CRDs (called whenever the set of CRDs changes). */
  setCustom(types: ResourceType[]): void {
    this.custom = types;
  }

  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.all().find(
      (t) => t.group === group && t.version === version && t.plural === plural,
    );
  }
}

/** The type served at group/version/plural among the built-ins, if any. */
export function findType(group: string, version: string, plural: string): ResourceType | undefined {
  return BUILTIN.find((t) => t.group === group && t.version === version && t.plural === plural);
}
