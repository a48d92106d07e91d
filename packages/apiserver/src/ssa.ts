// Server-side apply and field ownership (metadata.managedFields, FieldsV1), as
// Kubernetes' structured-merge-diff does it, over the types' schemas: lists with map keys
// are owned per item (k:{...}), set lists per value (v:...), atomic lists, atomic maps and
// scalars as one field. Apply owns what its configuration names; a field another manager
// owns with a different value is a conflict (409) unless forced; a field the applier no
// longer names and nobody else owns is removed. Other writes (create, update, patch) make
// their manager own the fields they changed.
import { type Schema } from './schema';
import { type KubeObject } from './storage';
import { ApiError } from './status';

type Json = unknown;
type Obj = Record<string, Json>;
const isObj = (v: Json): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);

/** A field path: elements as in FieldsV1 ("f:spec", "k:{\"name\":\"a\"}", "v:80", "."). */
type Path = string[];
const keyOfPath = (p: Path): string => JSON.stringify(p);

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Obj;
  subresource?: string;
}

function sub(s: Schema | undefined, k: string): Schema | undefined {
  if (!s) return undefined;
  if (s.properties?.[k]) return s.properties[k];
  if (typeof s.additionalProperties === 'object') return s.additionalProperties;
  return undefined;
}

function listKeys(s: Schema | undefined): string[] | undefined {
  if (!s) return undefined;
  if (s['x-kubernetes-list-type'] === 'map' && s['x-kubernetes-list-map-keys'])
    return s['x-kubernetes-list-map-keys'];
  const k = s['x-kubernetes-patch-merge-key'];
  return k ? [k] : undefined;
}

const isSetList = (s: Schema | undefined): boolean =>
  !!s &&
  (s['x-kubernetes-list-type'] === 'set' ||
    ((s['x-kubernetes-patch-strategy'] ?? '').includes('merge') && !listKeys(s)));

const atomicMap = (s: Schema | undefined): boolean => s?.['x-kubernetes-map-type'] === 'atomic';

function itemKey(item: Json, keys: string[]): string {
  const o = isObj(item) ? item : {};
  return `k:${JSON.stringify(Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])))}`;
}

/** The leaf paths (and list-item markers) a value sets. */
function fieldsOf(v: Json, s: Schema | undefined, prefix: Path, out: Path[]): void {
  if (isObj(v) && !atomicMap(s) && Object.keys(v).length) {
    for (const [k, x] of Object.entries(v)) fieldsOf(x, sub(s, k), [...prefix, `f:${k}`], out);
    return;
  }
  if (Array.isArray(v)) {
    const keys = listKeys(s);
    if (keys && v.every(isObj)) {
      for (const item of v) {
        const p = [...prefix, itemKey(item, keys)];
        out.push([...p, '.']);
        for (const [k, x] of Object.entries(item as Obj))
          fieldsOf(x, sub(s?.items, k), [...p, `f:${k}`], out);
      }
      return;
    }
    if (isSetList(s)) {
      for (const item of v) out.push([...prefix, `v:${JSON.stringify(item)}`]);
      return;
    }
  }
  out.push(prefix);
}

/**
 * Which fields a write owns, by the endpoint it came through, as kube-apiserver's
 * strategies' reset fields decide: 'object' every field (a type without a status
 * subresource); 'main' all but status; 'status' (a built-in's status subresource, whose
 * strategy resets only the spec) status, labels and annotations; 'status-only' (a custom
 * resource's status subresource, which keeps its metadata) status alone.
 */
export type View = 'object' | 'main' | 'status' | 'status-only';

const META_OWNED = ['labels', 'annotations', 'finalizers', 'ownerReferences'] as const;

const subresourceOf = (view: View): string | undefined =>
  view === 'status' || view === 'status-only' ? 'status' : undefined;

/** The part of a configuration a write through `view` may set. */
function scoped(o: KubeObject, view: View): KubeObject {
  if (view === 'object') return o;
  if (view === 'main') {
    const { status: _s, ...rest } = o;
    return rest as KubeObject;
  }
  const m = o.metadata ?? {};
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata:
      view === 'status'
        ? Object.fromEntries(
            (['labels', 'annotations'] as const)
              .filter((k) => m[k] !== undefined)
              .map((k) => [k, m[k]]),
          )
        : {},
    ...(o.status !== undefined ? { status: o.status } : {}),
  } as KubeObject;
}

/** The fields of an object that ownership tracks (not identity or managedFields). */
export function objectFields(o: KubeObject, s: Schema | undefined, view: View = 'main'): Path[] {
  const out: Path[] = [];
  const v = scoped(o, view);
  const m = v.metadata ?? {};
  for (const k of META_OWNED)
    if (m[k] !== undefined)
      fieldsOf(m[k], sub(sub(s, 'metadata'), k), ['f:metadata', `f:${k}`], out);
  for (const [k, x] of Object.entries(v)) {
    if (['apiVersion', 'kind', 'metadata'].includes(k)) continue;
    fieldsOf(x, sub(s, k), [`f:${k}`], out);
  }
  return out;
}

export function toFieldsV1(paths: Path[]): Obj {
  const root: Obj = {};
  for (const p of paths) {
    let cur = root;
    for (const e of p) cur = (cur[e] ??= {}) as Obj;
  }
  return root;
}

export function fromFieldsV1(f: Obj, prefix: Path = [], out: Path[] = []): Path[] {
  const entries = Object.entries(f);
  if (!entries.length && prefix.length) out.push(prefix);
  for (const [k, v] of entries) fromFieldsV1(isObj(v) ? v : {}, [...prefix, k], out);
  return out;
}

/** The value at a field path, or undefined. */
function valueAt(o: Json, p: Path): Json {
  let cur = o;
  for (const e of p) {
    if (e === '.') return cur;
    if (e.startsWith('f:')) cur = isObj(cur) ? cur[e.slice(2)] : undefined;
    else if (e.startsWith('k:')) {
      const want = JSON.parse(e.slice(2)) as Obj;
      cur = Array.isArray(cur)
        ? cur.find(
            (x) =>
              isObj(x) &&
              Object.entries(want).every(([k, v]) => JSON.stringify(x[k]) === JSON.stringify(v)),
          )
        : undefined;
    } else if (e.startsWith('v:')) {
      const want = e.slice(2);
      cur = Array.isArray(cur) ? cur.find((x) => JSON.stringify(x) === want) : undefined;
    }
    if (cur === undefined) return undefined;
  }
  return cur;
}

function removeAt(o: Json, p: Path): void {
  if (!p.length) return;
  const last = p[p.length - 1];
  const parentPath = last === '.' ? p.slice(0, -2) : p.slice(0, -1);
  const el = last === '.' ? p[p.length - 2] : last;
  const parent = valueAt(o, parentPath);
  if (el.startsWith('f:') && isObj(parent)) delete parent[el.slice(2)];
  else if (Array.isArray(parent)) {
    const item = valueAt(o, [...parentPath, el]);
    const i = parent.indexOf(item);
    if (i >= 0) parent.splice(i, 1);
  }
}

/** Merges an applied configuration into a live value, per the schema. */
function merge(live: Json, applied: Json, s: Schema | undefined): Json {
  if (isObj(applied) && !atomicMap(s)) {
    const out: Obj = isObj(live) ? { ...live } : {};
    for (const [k, v] of Object.entries(applied)) out[k] = merge(out[k], v, sub(s, k));
    return out;
  }
  if (Array.isArray(applied) && Array.isArray(live)) {
    const keys = listKeys(s);
    if (keys && applied.every(isObj)) {
      const out = [...live];
      for (const item of applied) {
        const k = itemKey(item, keys);
        const i = out.findIndex((x) => itemKey(x, keys) === k);
        if (i >= 0) out[i] = merge(out[i], item, s?.items);
        else out.push(item);
      }
      return out;
    }
    if (isSetList(s)) {
      const out = [...live];
      for (const x of applied)
        if (!out.some((y) => JSON.stringify(y) === JSON.stringify(x))) out.push(x);
      return out;
    }
  }
  return applied;
}

const same = (a: Json, b: Json): boolean => JSON.stringify(a) === JSON.stringify(b);

function entries(o: KubeObject): ManagedFieldsEntry[] {
  return Array.isArray(o.metadata.managedFields)
    ? (o.metadata.managedFields as ManagedFieldsEntry[])
    : [];
}

const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

function setEntry(
  list: ManagedFieldsEntry[],
  manager: string,
  operation: 'Apply' | 'Update',
  apiVersion: string,
  paths: Path[],
  subresource?: string,
): ManagedFieldsEntry[] {
  const rest = list.filter(
    // an applier is one manager whatever its apiVersion; an updater one per apiVersion
    (e) =>
      !(
        e.manager === manager &&
        e.operation === operation &&
        e.subresource === subresource &&
        (operation === 'Apply' || e.apiVersion === apiVersion)
      ),
  );
  if (!paths.length) return rest;
  return [
    ...rest,
    {
      manager,
      operation,
      apiVersion,
      time: now(),
      fieldsType: 'FieldsV1',
      fieldsV1: toFieldsV1(paths),
      ...(subresource ? { subresource } : {}),
    },
  ];
}

/** Removes paths from every entry but the given one; drops entries left empty. */
function disown(
  list: ManagedFieldsEntry[],
  paths: Set<string>,
  except: (e: ManagedFieldsEntry) => boolean,
): ManagedFieldsEntry[] {
  return list
    .map((e) => {
      if (except(e)) return e;
      const kept = fromFieldsV1(e.fieldsV1).filter((p) => !paths.has(keyOfPath(p)));
      return { ...e, fieldsV1: toFieldsV1(kept) };
    })
    .filter((e) => Object.keys(e.fieldsV1).length);
}

/** A field path as structured-merge-diff prints it: .spec.containers[name="a"].image */
export function pathText(p: Path): string {
  const scalar = (v: Json): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));
  return p
    .filter((e) => e !== '.')
    .map((e) => {
      if (e.startsWith('f:')) return `.${e.slice(2)}`;
      if (e.startsWith('k:'))
        return `[${Object.entries(JSON.parse(e.slice(2)) as Obj)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, v]) => `${k}=${scalar(v)}`)
          .join(',')}]`;
      if (e.startsWith('v:')) return `[=${scalar(JSON.parse(e.slice(2)))}]`;
      return `[${e}]`;
    })
    .join('');
}

/** A manager as kube-apiserver's conflict errors name it (managedfields/internal/conflict.go). */
function managerText(e: ManagedFieldsEntry): string {
  const name = `${JSON.stringify(e.manager)}${e.subresource ? ` with subresource ${JSON.stringify(e.subresource)}` : ''}`;
  // an applier's identity has no apiVersion; an updater's has
  return e.operation === 'Update' ? `${name} using ${e.apiVersion}` : name;
}

/** 409 for apply conflicts, worded as kube-apiserver's NewConflictError. */
function conflictError(conflicts: { entry: ManagedFieldsEntry; path: Path }[]): ApiError {
  const causes = conflicts.map((c) => ({
    reason: 'FieldManagerConflict',
    message: `conflict with ${managerText(c.entry)}`,
    field: pathText(c.path),
  }));
  let message: string;
  if (conflicts.length === 1)
    message = `Apply failed with 1 conflict: ${causes[0].message}: ${causes[0].field}`;
  else {
    const byManager = new Map<string, string[]>();
    for (const c of conflicts) {
      const m = managerText(c.entry);
      byManager.set(m, [...(byManager.get(m) ?? []), pathText(c.path)]);
    }
    const lines = [...byManager.keys()]
      .sort()
      .flatMap((m) => [`conflicts with ${m}:`, ...byManager.get(m)!.map((f) => `- ${f}`)]);
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  }
  return new ApiError(409, 'Conflict', message, { causes });
}

/**
 * Server-side apply of `applied` by `manager` onto `live` (undefined: a create), through
 * the main resource or the status subresource (`view`). Returns the new object, with
 * managedFields updated; throws 409 on conflicts unless `force`. What the view may not
 * set (status through the main resource, spec through status) is neither merged nor owned,
 * so it cannot conflict, as kube-apiserver's reset fields.
 */
export function serverSideApply(
  live: KubeObject | undefined,
  appliedConfig: KubeObject,
  s: Schema | undefined,
  manager: string,
  force: boolean,
  groupVersion: string,
  view: View = 'main',
): KubeObject {
  const applied = scoped(appliedConfig, view);
  const subresource = subresourceOf(view);
  const current = live
    ? structuredClone(live)
    : ({ metadata: { ...appliedConfig.metadata } } as KubeObject);
  const list = live ? entries(current) : [];
  const mine = (e: ManagedFieldsEntry) =>
    e.manager === manager && e.operation === 'Apply' && e.subresource === subresource;
  const newPaths = objectFields(applied, s, view);
  const newSet = new Set(newPaths.map(keyOfPath));
  // conflicts: fields others own where the applied value differs from the live one
  const conflicts: { entry: ManagedFieldsEntry; path: Path }[] = [];
  if (live)
    for (const e of list.filter((x) => !mine(x)))
      for (const p of fromFieldsV1(e.fieldsV1))
        if (
          newSet.has(keyOfPath(p)) &&
          p[p.length - 1] !== '.' &&
          !same(valueAt(applied, p), valueAt(live, p))
        )
          conflicts.push({ entry: e, path: p });
  if (conflicts.length && !force) throw conflictError(conflicts);
  // fields this manager applied before and no longer names, that nobody else owns, go
  const previous = list.find(mine);
  const othersOwn = new Set(
    list.filter((e) => !mine(e)).flatMap((e) => fromFieldsV1(e.fieldsV1).map(keyOfPath)),
  );
  // a map or list left empty goes too unless someone owns something under it (as
  // structured-merge-diff prunes the named fields of the last applied set)
  const kept = [
    ...newPaths,
    ...list.filter((e) => !mine(e)).flatMap((e) => fromFieldsV1(e.fieldsV1)),
  ];
  const keptUnder = (prefix: Path): boolean => kept.some((p) => prefix.every((e, i) => p[i] === e));
  const isEmpty = (v: Json): boolean =>
    Array.isArray(v) ? !v.length : isObj(v) && !Object.keys(v).length;
  if (previous)
    for (const p of fromFieldsV1(previous.fieldsV1))
      if (!newSet.has(keyOfPath(p)) && !othersOwn.has(keyOfPath(p))) {
        removeAt(current, p);
        let up = p[p.length - 1] === '.' ? p.slice(0, -2) : p.slice(0, -1);
        while (up.length && isEmpty(valueAt(current, up)) && !keptUnder(up)) {
          removeAt(current, up);
          up = up.slice(0, -1);
        }
      }
  const { metadata: am, apiVersion: _a, kind: _k, ...rest } = applied;
  const merged = {
    ...(merge(current, rest, s) as KubeObject),
    apiVersion: appliedConfig.apiVersion,
    kind: appliedConfig.kind,
  };
  for (const k of META_OWNED)
    if (am?.[k] !== undefined)
      merged.metadata[k] = merge(merged.metadata[k], am[k], sub(sub(s, 'metadata'), k)) as never;
  // forced: the conflicting fields move to this manager; fields applied with the value
  // they have stay shared with their other managers
  let managed = force ? disown(list, new Set(conflicts.map((c) => keyOfPath(c.path))), mine) : list;
  managed = setEntry(managed, manager, 'Apply', groupVersion, newPaths, subresource);
  merged.metadata.managedFields = managed;
  return merged;
}

/** After a non-apply write through `view`: the manager owns the fields it set or changed. */
export function trackUpdate(
  before: KubeObject | undefined,
  after: KubeObject,
  s: Schema | undefined,
  manager: string,
  apiVersion: string,
  view: View = 'main',
): void {
  const subresource = subresourceOf(view);
  const list = before ? entries(before) : [];
  const paths = objectFields(after, s, view);
  // a list item's own marker (".") changes hands only when the item is new
  const changed = paths.filter(
    (p) =>
      !before ||
      (p[p.length - 1] === '.'
        ? valueAt(before, p) === undefined
        : !same(valueAt(before, p), valueAt(after, p))),
  );
  const changedSet = new Set(changed.map(keyOfPath));
  const isMine = (e: ManagedFieldsEntry) =>
    e.manager === manager &&
    e.operation === 'Update' &&
    e.apiVersion === apiVersion &&
    e.subresource === subresource;
  const existing = list.find(isMine);
  const stillThere = existing
    ? fromFieldsV1(existing.fieldsV1).filter((p) => valueAt(after, p) !== undefined)
    : [];
  const owned = [...new Map([...stillThere, ...changed].map((p) => [keyOfPath(p), p])).values()];
  let managed = disown(list, changedSet, isMine);
  managed = setEntry(managed, manager, 'Update', apiVersion, owned, subresource);
  if (managed.length) after.metadata.managedFields = managed;
  else delete after.metadata.managedFields;
}

/** The manager of a request: ?fieldManager=, else the client's name from its User-Agent. */
export function managerOf(fieldManager: string | null, userAgent: string | undefined): string {
  if (fieldManager) return fieldManager;
  return (userAgent ?? 'unknown').split('/')[0].slice(0, 128) || 'unknown';
}
