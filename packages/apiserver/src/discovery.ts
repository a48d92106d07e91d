// Legacy discovery documents (/api, /apis, /api/v1, /apis/<g>/<v>). kubectl 1.32 asks for
// aggregated discovery first and falls back to these when the answer is plain JSON.
import { BUILTIN, type ResourceType } from './resources';

const VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

export function apiVersions(): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
}

export function groupList(types: ResourceType[] = BUILTIN): Record<string, unknown> {
  const groups = [...new Set(types.filter((t) => t.group).map((t) => t.group))];
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groups.map((g) => {
      const versions = [...new Set(types.filter((t) => t.group === g).map((t) => t.version))].map(
        (v) => ({
          groupVersion: `${g}/${v}`,
          version: v,
        }),
      );
      return { name: g, versions, preferredVersion: versions[0] };
    }),
  };
}

export function resourceList(
  group: string,
  version: string,
  types: ResourceType[] = BUILTIN,
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
      },
      ...(t.kind === 'Pod'
        ? [
            {
              name: 'pods/status',
              singularName: '',
              namespaced: true,
              kind: 'Pod',
              verbs: ['get', 'patch', 'update'],
            },
          ]
        : []),
    ]),
  };
}
