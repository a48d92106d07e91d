// RBAC authorization as kube-apiserver's RBAC authorizer decides it
// (plugin/pkg/auth/authorizer/rbac and pkg/apis/rbac/v1/evaluation_helpers.go): a
// request's attributes are read from its path as RequestInfoFactory reads them, and it is
// allowed when a ClusterRoleBinding, or a RoleBinding in the request's namespace, binds
// the user (by name, group or service account) to a role with a rule that matches.
// Nothing is denied explicitly: no matching rule is a 403. Pure, but for `Authorizer`,
// which reads the RBAC objects from storage for each decision.
import { MASTERS, type UserInfo } from './auth';
import { ApiError } from './status';

export interface RequestAttributes {
  verb: string;
  /** false for non-resource paths (/api, /openapi/v3, /version ...) */
  resourceRequest: boolean;
  path: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);
const VERBS: Record<string, string> = {
  GET: 'get',
  HEAD: 'get',
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** A request's attributes, as kube-apiserver's RequestInfoFactory reads them. Pure. */
export function requestAttributes(method: string, url: URL): RequestAttributes {
  const path = url.pathname;
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const none: RequestAttributes = {
    verb: method.toLowerCase(),
    resourceRequest: false,
    path,
    apiGroup: '',
    resource: '',
    subresource: '',
    namespace: '',
    name: '',
  };
  let rest: string[];
  let apiGroup = '';
  if (parts[0] === 'api' && parts.length >= 3) rest = parts.slice(2);
  else if (parts[0] === 'apis' && parts.length >= 4) {
    apiGroup = parts[1];
    rest = parts.slice(3);
  } else return none;
  const verb = VERBS[method.toUpperCase()];
  if (!verb) return none;
  let namespace = '';
  if (rest[0] === 'namespaces' && rest.length > 1) {
    namespace = rest[1];
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2])) rest = rest.slice(2);
  }
  const a: RequestAttributes = {
    verb,
    resourceRequest: true,
    path,
    apiGroup,
    resource: rest[0] ?? '',
    name: rest[1] ?? '',
    subresource: rest[2] ?? '',
    namespace,
  };
  if (!a.name && verb === 'get') {
    a.verb = ['true', '1'].includes(url.searchParams.get('watch') ?? '') ? 'watch' : 'list';
    // a list or watch of one name by field selector is authorized for that name
    const m = /^metadata\.name==?([^,]+)$/.exec(url.searchParams.get('fieldSelector') ?? '');
    if (m) a.name = m[1];
  }
  if (!a.name && verb === 'delete') a.verb = 'deletecollection';
  return a;
}

export interface PolicyRule {
  verbs?: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}

interface Meta {
  metadata: { name?: string; namespace?: string };
}
export interface Role extends Meta {
  rules?: PolicyRule[];
}
export interface Binding extends Meta {
  roleRef?: { kind?: string; name?: string };
  subjects?: Subject[];
}

export interface RbacPolicy {
  clusterRoles: Role[];
  clusterRoleBindings: Binding[];
  roles: Role[];
  roleBindings: Binding[];
}

const has = (list: string[] | undefined, v: string): boolean =>
  !!list && (list.includes('*') || list.includes(v));

function resourceMatches(rule: PolicyRule, a: RequestAttributes): boolean {
  const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  return (rule.resources ?? []).some(
    (r) => r === '*' || r === combined || (!!a.subresource && r === `*/${a.subresource}`),
  );
}

/** Whether one rule allows the request (evaluation_helpers.go RuleAllows). Pure. */
export function ruleAllows(rule: PolicyRule, a: RequestAttributes): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (!a.resourceRequest)
    return (rule.nonResourceURLs ?? []).some(
      (u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))),
    );
  return (
    has(rule.apiGroups, a.apiGroup) &&
    resourceMatches(rule, a) &&
    (!rule.resourceNames?.length || rule.resourceNames.includes(a.name))
  );
}

/** Whether a binding's subject is this user (rbac.go appliesToUser). Pure. */
export function subjectMatches(s: Subject, user: UserInfo, bindingNamespace: string): boolean {
  switch (s.kind) {
    case 'User':
      return s.name === user.name;
    case 'Group':
      return user.groups.includes(s.name);
    case 'ServiceAccount': {
      // a RoleBinding's service account defaults to the binding's namespace
      const ns = s.namespace || bindingNamespace;
      return !!ns && user.name === `system:serviceaccount:${ns}:${s.name}`;
    }
    default:
      return false;
  }
}

/** Whether the policy allows the user's request. Pure. */
export function allows(policy: RbacPolicy, user: UserInfo, a: RequestAttributes): boolean {
  const clusterRole = (name: string | undefined): Role | undefined =>
    policy.clusterRoles.find((r) => r.metadata.name === name);
  const grants = (role: Role | undefined): boolean =>
    !!role && (role.rules ?? []).some((r) => ruleAllows(r, a));
  for (const b of policy.clusterRoleBindings)
    if (
      b.roleRef?.kind === 'ClusterRole' &&
      (b.subjects ?? []).some((s) => subjectMatches(s, user, '')) &&
      grants(clusterRole(b.roleRef.name))
    )
      return true;
  if (!a.namespace) return false;
  for (const b of policy.roleBindings) {
    if (b.metadata.namespace !== a.namespace) continue;
    if (!(b.subjects ?? []).some((s) => subjectMatches(s, user, a.namespace))) continue;
    const role =
      b.roleRef?.kind === 'ClusterRole'
        ? clusterRole(b.roleRef.name)
        : b.roleRef?.kind === 'Role'
          ? policy.roles.find(
              (r) => r.metadata.namespace === a.namespace && r.metadata.name === b.roleRef?.name,
            )
          : undefined;
    if (grants(role)) return true;
  }
  return false;
}

/** kube-apiserver's 403 for a denied request (responsewriters.forbiddenMessage). Pure. */
export function forbidden(user: UserInfo, a: RequestAttributes): ApiError {
  if (!a.resourceRequest)
    return new ApiError(
      403,
      'Forbidden',
      `forbidden: User "${user.name}" cannot ${a.verb} path "${a.path}"`,
      {},
    );
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const where = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const why = `User "${user.name}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" ${where}`;
  const qualified = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource;
  return new ApiError(
    403,
    'Forbidden',
    a.name ? `${qualified} "${a.name}" is forbidden: ${why}` : `${qualified} is forbidden: ${why}`,
    {
      ...(a.name ? { name: a.name } : {}),
      ...(a.apiGroup ? { group: a.apiGroup } : {}),
      kind: a.resource,
    },
  );
}

const RBAC = 'rbac.authorization.k8s.io/v1';
const bootstrapLabels = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
const clusterRole = (name: string, rules: PolicyRule[]) => ({
  apiVersion: RBAC,
  kind: 'ClusterRole',
  metadata: {
    name,
    labels: bootstrapLabels,
    annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' },
  },
  rules,
});
const binding = (name: string, role: string, groups: string[]) => ({
  apiVersion: RBAC,
  kind: 'ClusterRoleBinding',
  metadata: {
    name,
    labels: bootstrapLabels,
    annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' },
  },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: groups.map((g) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: g })),
});

/**
 * The part of kube-apiserver's bootstrap policy (plugin/pkg/auth/authorizer/rbac/
 * bootstrappolicy) a cluster starts with: cluster-admin for system:masters, and
 * discovery and version for every authenticated user.
 */
export const BOOTSTRAP_POLICY = {
  clusterRoles: [
    clusterRole('cluster-admin', [
      { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
      { nonResourceURLs: ['*'], verbs: ['*'] },
    ]),
    clusterRole('system:discovery', [
      {
        nonResourceURLs: [
          '/api',
          '/api/*',
          '/apis',
          '/apis/*',
          '/healthz',
          '/livez',
          '/openapi',
          '/openapi/*',
          '/readyz',
          '/version',
          '/version/',
        ],
        verbs: ['get'],
      },
    ]),
    clusterRole('system:public-info-viewer', [
      {
        nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'],
        verbs: ['get'],
      },
    ]),
  ],
  clusterRoleBindings: [
    binding('cluster-admin', 'cluster-admin', [MASTERS]),
    binding('system:discovery', 'system:discovery', ['system:authenticated']),
    binding('system:public-info-viewer', 'system:public-info-viewer', [
      'system:authenticated',
      'system:unauthenticated',
    ]),
  ],
};

/** Decides requests against the RBAC objects `load` reads (now, for each request). */
export class Authorizer {
  constructor(private readonly load: () => Promise<RbacPolicy>) {}

  /** Resolves when allowed; throws 403 Forbidden otherwise. */
  async authorize(user: UserInfo, a: RequestAttributes): Promise<void> {
    // system:masters is allowed everything before RBAC is asked, as kube-apiserver's
    // privileged-group authorizer does: an admin cannot be locked out by a bad binding
    if (user.groups.includes(MASTERS)) return;
    if (!allows(await this.load(), user, a)) throw forbidden(user, a);
  }
}
