// PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge
// patch for the types with a schema (lists merged by their x-kubernetes-patch-merge-key,
// with the $patch, $retainKeys, $setElementOrder and $deleteFromPrimitiveList directives
// kubectl apply sends). Custom resources take no strategic merge patch, as in Kubernetes.
import { ApiError, badRequest } from './status';
import { type Schema } from './schema';

type Json = unknown;
type Obj = Record<string, Json>;

const isObj = (v: Json): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObj(patch)) return patch;
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// ---- JSON patch (RFC 6902) ----

interface Op {
  op: string;
  path: string;
  value?: Json;
  from?: string;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw invalidPatch(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const invalidPatch = (msg: string): ApiError =>
  new ApiError(
    422,
    'Invalid',
    `the server rejected our request due to an error in our request: ${msg}`,
  );

function parent(doc: Json, parts: string[], path: string): Json {
  let cur = doc;
  for (const p of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(p)];
    else if (isObj(cur)) cur = cur[p];
    else cur = undefined;
    if (cur === undefined) throw invalidPatch(`path ${path}: ${p} does not exist`);
  }
  return cur;
}

function getAt(doc: Json, path: string): Json {
  const parts = pointer(path);
  if (!parts.length) return doc;
  const par = parent(doc, parts, path);
  const last = parts[parts.length - 1];
  const v = Array.isArray(par) ? par[Number(last)] : isObj(par) ? par[last] : undefined;
  if (v === undefined) throw invalidPatch(`path ${path} does not exist`);
  return v;
}

function arrayIndex(arr: Json[], s: string, path: string, forAdd: boolean): number {
  if (forAdd && s === '-') return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(s)) throw invalidPatch(`path ${path}: ${s} is not an array index`);
  const i = Number(s);
  if (i > arr.length || (!forAdd && i === arr.length))
    throw invalidPatch(`path ${path}: index ${i} is out of range`);
  return i;
}

function removeAt(doc: Json, path: string): Json {
  const parts = pointer(path);
  if (!parts.length) throw invalidPatch('cannot remove the whole document');
  const par = parent(doc, parts, path);
  const last = parts[parts.length - 1];
  if (Array.isArray(par)) return par.splice(arrayIndex(par, last, path, false), 1)[0];
  if (!isObj(par) || !(last in par)) throw invalidPatch(`path ${path} does not exist`);
  const v = par[last];
  delete par[last];
  return v;
}

function addAt(doc: Json, path: string, value: Json, replace: boolean): Json {
  const parts = pointer(path);
  if (!parts.length) return value;
  const par = parent(doc, parts, path);
  const last = parts[parts.length - 1];
  if (Array.isArray(par)) {
    const i = arrayIndex(par, last, path, !replace);
    par.splice(i, replace ? 1 : 0, value);
  } else if (isObj(par)) {
    if (replace && !(last in par)) throw invalidPatch(`path ${path} does not exist`);
    par[last] = value;
  } else throw invalidPatch(`path ${path}: parent is not an object or array`);
  return doc;
}

export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest('a JSON patch must be an array of operations');
  let doc = structuredClone(target);
  for (const raw of ops as Op[]) {
    if (!isObj(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string')
      throw badRequest(`a JSON patch operation needs op and path: ${JSON.stringify(raw)}`);
    const { op, path } = raw;
    switch (op) {
      case 'add':
        doc = addAt(doc, path, structuredClone(raw.value), false);
        break;
      case 'replace':
        doc = addAt(doc, path, structuredClone(raw.value), true);
        break;
      case 'remove':
        removeAt(doc, path);
        break;
      case 'move': {
        const v = removeAt(doc, raw.from ?? '');
        doc = addAt(doc, path, v, false);
        break;
      }
      case 'copy':
        doc = addAt(doc, path, structuredClone(getAt(doc, raw.from ?? '')), false);
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(raw.value))
          throw invalidPatch(
            `test of ${path} failed: the value is not ${JSON.stringify(raw.value)}`,
          );
        break;
      default:
        throw badRequest(`unknown JSON patch operation ${JSON.stringify(op)}`);
    }
  }
  return doc;
}

// ---- strategic merge patch ----

function sub(s: Schema | undefined, key: string): Schema | undefined {
  if (!s) return undefined;
  if (s.properties?.[key]) return s.properties[key];
  if (typeof s.additionalProperties === 'object') return s.additionalProperties;
  return undefined;
}

const ORDER = '$setElementOrder/';
const DELETE_PRIM = '$deleteFromPrimitiveList/';

export function strategicMerge(target: Json, patch: Json, s: Schema | undefined): Json {
  if (!isObj(patch)) return patch;
  if (patch.$patch === 'delete') return undefined;
  const replace = patch.$patch === 'replace';
  const out: Obj = isObj(target) && !replace ? { ...target } : {};
  const orders: Record<string, Json[]> = {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith(ORDER)) {
      orders[k.slice(ORDER.length)] = v as Json[];
      continue;
    }
    if (k.startsWith(DELETE_PRIM)) {
      const f = k.slice(DELETE_PRIM.length);
      const drop = new Set((v as Json[]).map((x) => JSON.stringify(x)));
      if (Array.isArray(out[f]))
        out[f] = (out[f] as Json[]).filter((x) => !drop.has(JSON.stringify(x)));
      continue;
    }
    if (k.startsWith('$')) throw badRequest(`unknown strategic merge patch directive ${k}`);
    if (v === null) {
      delete out[k];
      continue;
    }
    const ks = sub(s, k);
    const merged = Array.isArray(v) ? mergeList(out[k], v, ks) : strategicMerge(out[k], v, ks);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  for (const [f, order] of Object.entries(orders))
    if (Array.isArray(out[f])) out[f] = applyOrder(out[f] as Json[], order, sub(s, f));
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys as string[]);
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}

function mergeList(target: Json, patch: Json[], s: Schema | undefined): Json {
  if (patch.some((e) => isObj(e) && e.$patch === 'replace'))
    return patch.filter((e) => !(isObj(e) && e.$patch === 'replace'));
  const strategy = s?.['x-kubernetes-patch-strategy'] ?? '';
  if (!strategy.split(',').includes('merge') || !Array.isArray(target)) {
    return patch.filter((e) => !(isObj(e) && e.$patch === 'delete'));
  }
  const key = s?.['x-kubernetes-patch-merge-key'];
  if (!key) {
    // a merged list of primitives is a union
    const out = [...target];
    for (const e of patch)
      if (!out.some((x) => JSON.stringify(x) === JSON.stringify(e))) out.push(e);
    return out;
  }
  const out = [...target];
  for (const e of patch) {
    if (!isObj(e))
      throw badRequest(`a list merged by ${key} takes objects, not ${JSON.stringify(e)}`);
    if (!(key in e))
      throw badRequest(`map: ${JSON.stringify(e)} does not contain declared merge key: ${key}`);
    const i = out.findIndex((x) => isObj(x) && x[key] === e[key]);
    if (e.$patch === 'delete') {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = strategicMerge(out[i], e, s?.items);
    else out.push(strategicMerge(undefined, e, s?.items));
  }
  return out;
}

function applyOrder(list: Json[], order: Json[], s: Schema | undefined): Json[] {
  const key = s?.['x-kubernetes-patch-merge-key'];
  const id = (x: Json): string => JSON.stringify(key && isObj(x) ? x[key] : x);
  const rank = new Map(order.map((o, i) => [JSON.stringify(key && isObj(o) ? o[key] : o), i]));
  return list
    .map((x, i) => ({ x, i, r: rank.get(id(x)) }))
    .sort((a, b) =>
      a.r !== undefined && b.r !== undefined
        ? a.r - b.r
        : a.r !== undefined
          ? -1
          : b.r !== undefined
            ? 1
            : a.i - b.i,
    )
    .map((e) => e.x);
}

/** Applies a PATCH body of the given content type. */
export function applyPatch(
  contentType: string,
  target: Json,
  patch: Json,
  schema?: Schema,
  builtin = true,
): Json {
  if (contentType === 'application/merge-patch+json') return mergePatch(target, patch);
  if (contentType === 'application/json-patch+json') return jsonPatch(target, patch);
  if (contentType === 'application/strategic-merge-patch+json') {
    if (!builtin)
      throw new ApiError(
        415,
        'UnsupportedMediaType',
        'strategic merge patch is not supported for custom resources; use a merge patch or JSON patch',
      );
    if (!isObj(patch)) throw badRequest('a strategic merge patch must be a JSON object');
    return strategicMerge(target, patch, schema);
  }
  throw new ApiError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`,
  );
}
