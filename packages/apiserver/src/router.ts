// Kubernetes API paths: /api/v1/... or /apis/<g>/<v>/..., then
// [namespaces/<ns>/]<plural>[/<name>[/<subresource>]].
import { type Registry, type ResourceType } from './resources';

export interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export function parsePath(
  path: string,
): { group: string; version: string; rest: string[] } | undefined {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'api' && parts.length >= 2)
    return { group: '', version: parts[1], rest: parts.slice(2) };
  if (parts[0] === 'apis' && parts.length >= 3)
    return { group: parts[1], version: parts[2], rest: parts.slice(3) };
  return undefined;
}

export function route(
  registry: Registry,
  group: string,
  version: string,
  rest: string[],
): Route | undefined {
  let namespace: string | undefined;
  let r = rest;
  // namespaces/<ns>/<plural>... (but namespaces/<ns>[/status] is the Namespace itself)
  if (
    r[0] === 'namespaces' &&
    r.length >= 3 &&
    !(group === '' && r.length === 3 && r[2] === 'status')
  ) {
    namespace = r[1];
    r = r.slice(2);
  }
  if (r.length > 3) return undefined;
  const type = registry.find(group, version, r[0]);
  if (!type) return undefined;
  if (namespace !== undefined && !type.namespaced) return undefined;
  return { type, namespace, name: r[1], subresource: r[2] };
}
