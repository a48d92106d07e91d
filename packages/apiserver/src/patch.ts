// PATCH bodies. JSON merge patch (RFC 7386) in full; strategic merge patch only where it
// means the same as a merge patch (no lists, no $-directives), refused otherwise so that
// no list is silently replaced where Kubernetes would merge it by key.
import { ApiError } from './status';

type Json = unknown;

export function mergePatch(target: Json, patch: Json): Json {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, Json> =
    target && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, Json>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, Json>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function mergeEquivalent(p: Json, path: string): string | undefined {
  if (Array.isArray(p)) return path || '.';
  if (!p || typeof p !== 'object') return undefined;
  for (const [k, v] of Object.entries(p as Record<string, Json>)) {
    if (k.startsWith('$')) return `${path}.${k}`;
    const bad = mergeEquivalent(v, `${path}.${k}`);
    if (bad) return bad;
  }
  return undefined;
}

export function applyPatch(contentType: string, target: Json, patch: Json): Json {
  if (contentType === 'application/merge-patch+json') return mergePatch(target, patch);
  if (contentType === 'application/strategic-merge-patch+json') {
    const at = mergeEquivalent(patch, '');
    if (at)
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        `strategic merge patch with lists or directives (at ${at}) is not supported yet; use a merge or JSON patch`,
      );
    return mergePatch(target, patch);
  }
  throw new ApiError(415, 'UnsupportedMediaType', `patch type ${contentType} is not supported`);
}
