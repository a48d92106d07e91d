// tortiectl's resource commands, kubectl-shaped: apply / create / replace / get /
// delete. Pure over a Datastore and an output sink, so tests can drive them directly
// and the CLI stays a thin argument parser.
import {
  API_VERSION,
  KINDS,
  parseManifests,
  ValidationError,
  type Kind,
  type Resource,
} from '@tortie/api';
import { DatastoreError, keyOf, type Datastore } from '@tortie/datastore';
import YAML from 'yaml';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** "ippool", "ippools", "IPPool", "gnp", ... -> the kind. */
const SHORT: Record<string, Kind> = {
  gnp: 'GlobalNetworkPolicy',
  np: 'NetworkPolicy',
  netpol: 'NetworkPolicy',
  gns: 'GlobalNetworkSet',
  ns: 'NetworkSet',
  wep: 'WorkloadEndpoint',
  hep: 'HostEndpoint',
  bgppeer: 'BGPPeer',
  bgpconfig: 'BGPConfiguration',
  felixconfig: 'FelixConfiguration',
};

export function resolveKind(word: string): Kind {
  const w = word.toLowerCase().replace(/\.tortie\.io$|\.projectcalico\.org$/, '');
  for (const [kind, def] of Object.entries(KINDS)) {
    if (w === kind.toLowerCase() || w === def.plural) return kind as Kind;
  }
  if (SHORT[w]) return SHORT[w];
  throw new UsageError(`the server doesn't have a resource type "${word}"`);
}

export class UsageError extends Error {}

function ref(r: Resource): string {
  return `${r.kind.toLowerCase()}.tortie.io/${r.metadata.name}`;
}

/** What a stored resource looks like to the user: without server-managed noise. */
function comparable(r: Resource): unknown {
  const {
    resourceVersion: _v,
    uid: _u,
    creationTimestamp: _c,
    generation: _g,
    ...metadata
  } = r.metadata;
  return { kind: r.kind, metadata, spec: r.spec };
}

/** JSON with object keys sorted, so equal resources compare equal whatever their key order. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : x,
  );
}

function explainError(err: unknown): string {
  if (err instanceof DatastoreError) return `Error from server (${err.code}): ${err.message}`;
  if (err instanceof ValidationError) return err.problems.map((p) => `error: ${p}`).join('\n');
  return `error: ${(err as Error).message}`;
}

/** Reads and validates every document first: a bad manifest writes nothing. */
function load(text: string, source: string, io: Io): Resource[] | undefined {
  try {
    return parseManifests(text, source);
  } catch (err) {
    io.err(explainError(err));
    return undefined;
  }
}

export async function apply(ds: Datastore, text: string, source: string, io: Io): Promise<number> {
  const rs = load(text, source, io);
  if (!rs) return 1;
  let failed = 0;
  for (const r of rs) {
    try {
      const cur = await ds.get(keyOf(r));
      if (!cur) {
        await ds.create(r);
        io.out(`${ref(r)} created`);
      } else if (
        canonicalJson(comparable(cur)) ===
        canonicalJson(
          comparable({
            ...r,
            metadata: {
              ...cur.metadata,
              labels: r.metadata.labels,
              annotations: r.metadata.annotations,
            },
          }),
        )
      ) {
        io.out(`${ref(r)} unchanged`);
      } else {
        // keep server-managed fields; CAS against the version we just read
        await ds.update({
          ...r,
          metadata: {
            ...cur.metadata,
            labels: r.metadata.labels,
            annotations: r.metadata.annotations,
          },
        });
        io.out(`${ref(r)} configured`);
      }
    } catch (err) {
      io.err(explainError(err));
      failed++;
    }
  }
  return failed ? 1 : 0;
}

export async function create(ds: Datastore, text: string, source: string, io: Io): Promise<number> {
  const rs = load(text, source, io);
  if (!rs) return 1;
  let failed = 0;
  for (const r of rs) {
    try {
      await ds.create(r);
      io.out(`${ref(r)} created`);
    } catch (err) {
      io.err(explainError(err));
      failed++;
    }
  }
  return failed ? 1 : 0;
}

export async function replace(
  ds: Datastore,
  text: string,
  source: string,
  io: Io,
): Promise<number> {
  const rs = load(text, source, io);
  if (!rs) return 1;
  let failed = 0;
  for (const r of rs) {
    try {
      await ds.update(r);
      io.out(`${ref(r)} replaced`);
    } catch (err) {
      io.err(explainError(err));
      failed++;
    }
  }
  return failed ? 1 : 0;
}

export async function remove(
  ds: Datastore,
  targets: Array<{ kind: Kind; name: string; namespace?: string }>,
  io: Io,
): Promise<number> {
  let failed = 0;
  for (const t of targets) {
    try {
      const r = await ds.delete({
        ...t,
        namespace: KINDS[t.kind].namespaced ? (t.namespace ?? 'default') : undefined,
      });
      io.out(`${r.kind.toLowerCase()}.tortie.io "${r.metadata.name}" deleted`);
    } catch (err) {
      io.err(explainError(err));
      failed++;
    }
  }
  return failed ? 1 : 0;
}

export function deleteTargets(text: string, source: string, io: Io) {
  const rs = load(text, source, io);
  return rs?.map((r) => ({ kind: r.kind, name: r.metadata.name, namespace: r.metadata.namespace }));
}

/** Columns of `get` per kind: [header, value] pairs; `wide` adds more. */
function columns(kind: Kind, wide: boolean): Array<[string, (r: Resource) => string]> {
  const spec = (r: Resource) => r.spec as Record<string, unknown>;
  const s = (v: unknown) => (v === undefined ? '' : Array.isArray(v) ? v.join(',') : String(v));
  const base: Array<[string, (r: Resource) => string]> = [['NAME', (r) => r.metadata.name]];
  const extra: Record<string, Array<[string, (r: Resource) => string]>> = {
    IPPool: [
      ['CIDR', (r) => s(spec(r).cidr)],
      ['SELECTOR', (r) => s(spec(r).nodeSelector)],
    ],
    BGPPeer: [
      ['PEERIP', (r) => s(spec(r).peerIP ?? spec(r).peerSelector)],
      ['NODE', (r) => s(spec(r).node ?? spec(r).nodeSelector ?? '(global)')],
      ['ASN', (r) => s(spec(r).asNumber)],
    ],
    GlobalNetworkPolicy: [
      ['ORDER', (r) => s(spec(r).order)],
      ['SELECTOR', (r) => s(spec(r).selector)],
    ],
    NetworkPolicy: [
      ['ORDER', (r) => s(spec(r).order)],
      ['SELECTOR', (r) => s(spec(r).selector)],
    ],
    NetworkSet: [['NETS', (r) => s(spec(r).nets)]],
    GlobalNetworkSet: [['NETS', (r) => s(spec(r).nets)]],
  };
  const wideCols: Record<string, Array<[string, (r: Resource) => string]>> = {
    IPPool: [
      ['BLOCKSIZE', (r) => s(spec(r).blockSize)],
      ['IPIPMODE', (r) => s(spec(r).ipipMode)],
      ['VXLANMODE', (r) => s(spec(r).vxlanMode)],
      ['NATOUTGOING', (r) => s(spec(r).natOutgoing)],
      ['DISABLED', (r) => s(spec(r).disabled)],
    ],
    GlobalNetworkPolicy: [
      ['TIER', (r) => s(spec(r).tier ?? 'default')],
      ['TYPES', (r) => s(spec(r).types)],
    ],
    NetworkPolicy: [
      ['TIER', (r) => s(spec(r).tier ?? 'default')],
      ['TYPES', (r) => s(spec(r).types)],
    ],
  };
  return [...base, ...(extra[kind] ?? []), ...(wide ? (wideCols[kind] ?? []) : [])];
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

export interface GetOptions {
  kind: Kind;
  name?: string;
  namespace?: string;
  allNamespaces?: boolean;
  output?: 'yaml' | 'json' | 'wide' | 'name';
}

export async function get(ds: Datastore, o: GetOptions, io: Io): Promise<number> {
  const namespaced = KINDS[o.kind].namespaced;
  const namespace = namespaced && !o.allNamespaces ? (o.namespace ?? 'default') : undefined;
  let items: Resource[];
  try {
    if (o.name) {
      const r = await ds.get({ kind: o.kind, name: o.name, namespace });
      if (!r) {
        io.err(
          `Error from server (NotFound): ${o.kind.toLowerCase()}.tortie.io "${o.name}" not found`,
        );
        return 1;
      }
      items = [r];
    } else items = (await ds.list({ kind: o.kind, namespace })).items;
  } catch (err) {
    io.err(explainError(err));
    return 1;
  }
  const shown: Resource[] = items.map((r) => ({ ...r, apiVersion: API_VERSION }));
  if (o.output === 'yaml' || o.output === 'json') {
    const doc = o.name ? shown[0] : { apiVersion: 'v1', kind: 'List', items: shown };
    io.out(o.output === 'json' ? JSON.stringify(doc, null, 2) : YAML.stringify(doc).trimEnd());
    return 0;
  }
  if (o.output === 'name') {
    for (const r of shown) io.out(ref(r));
    return 0;
  }
  if (shown.length === 0) {
    io.err(namespace ? `No resources found in ${namespace} namespace.` : 'No resources found');
    return 0;
  }
  const cols = columns(o.kind, o.output === 'wide');
  if (namespaced && o.allNamespaces) cols.unshift(['NAMESPACE', (r) => r.metadata.namespace ?? '']);
  io.out(table([cols.map(([h]) => h), ...shown.map((r) => cols.map(([, f]) => f(r)))]));
  return 0;
}
