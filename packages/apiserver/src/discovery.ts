// Discovery documents: the legacy form (/api, /apis, /api/v1, /apis/<g>/<v>) and the
// aggregated form (apidiscovery.k8s.io/v2) kubectl 1.32 asks for first.
import { type ResourceType } from './resources';

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const SUB_VERBS = ['get', 'patch', 'update'];

export const AGGREGATED = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

export function wantsAggregated(accept: string | undefined): boolean {
  return !!accept && /g=apidiscovery\.k8s\.io;\s*v=v2;\s*as=APIGroupDiscoveryList/.test(accept);
}

export function apiVersions(): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
}

/** Groups in the order they are preferred (built-ins before CRD groups). */
function groupsOf(types: ResourceType[]): string[] {
  return [...new Set(types.filter((t) => t.group).map((t) => t.group))];
}

function versionsOf(types: ResourceType[], group: string): string[] {
  return [...new Set(types.filter((t) => t.group === group).map((t) => t.version))];
}

export function groupList(types: ResourceType[]): Record<string, unknown> {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groupsOf(types).map((g) => {
      const versions = versionsOf(types, g).map((v) => ({ groupVersion: `${g}/${v}`, version: v }));
      return { name: g, versions, preferredVersion: versions[0] };
    }),
  };
}

export function group(types: ResourceType[], name: string): Record<string, unknown> | undefined {
  const g = (groupList(types).groups as { name: string }[]).find((x) => x.name === name);
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...g } : undefined;
}

export function resourceList(
  types: ResourceType[],
  group: string,
  version: string,
): Record<string, unknown> | undefined {
  const mine = types.filter((t) => t.group === group && t.version === version);
  if (!mine.length) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: mine.flatMap((t) => [
      {
        name: t.plural,
        singularName: t.singular,
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: VERBS,
        ...(t.shortNames ? { shortNames: t.shortNames } : {}),
        ...(t.categories ? { categories: t.categories } : {}),
      },
      ...(t.subresources ?? []).map((s) => ({
        name: `${t.plural}/${s}`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: SUB_VERBS,
      })),
    ]),
  };
}

function aggregatedResource(t: ResourceType): Record<string, unknown> {
  const responseKind = { group: t.group, version: t.version, kind: t.kind };
  return {
    resource: t.plural,
    responseKind,
    scope: t.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: t.singular,
    verbs: VERBS,
    ...(t.shortNames ? { shortNames: t.shortNames } : {}),
    ...(t.categories ? { categories: t.categories } : {}),
    ...(t.subresources?.length
      ? {
          subresources: t.subresources.map((s) => ({
            subresource: s,
            responseKind,
            verbs: SUB_VERBS,
          })),
        }
      : {}),
  };
}

/** /api (core) or /apis (every group) in the aggregated form. */
export function aggregated(types: ResourceType[], core: boolean): Record<string, unknown> {
  const groups = core ? [''] : groupsOf(types);
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: 'apidiscovery.k8s.io/v2',
    metadata: {},
    items: groups.map((g) => ({
      metadata: g ? { name: g } : {},
      versions: versionsOf(types, g).map((v) => ({
        version: v,
        resources: types.filter((t) => t.group === g && t.version === v).map(aggregatedResource),
        freshness: 'Current',
      })),
    })),
  };
}
