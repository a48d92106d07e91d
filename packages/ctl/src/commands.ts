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
import { UsageError } from './usage';

export { UsageError };

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

type Column = [string, (r: Resource) => string];
const DEFAULT_ASN = 64512;
const spec = (r: Resource) => r.spec as Record<string, unknown>;
const text = (v: unknown) => (v === undefined ? '' : Array.isArray(v) ? v.join(',') : String(v));
/** calicoctl's joinAndTruncate: a list as one cell of at most `max` characters. */
const truncated = (v: unknown, max = 80) => {
  const t = text(v);
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
};
const bgp = (r: Resource) => spec(r).bgp as Record<string, unknown> | undefined;

/** What a column may need beyond the resource: the cluster's default AS number. */
interface ColumnContext {
  defaultAsn: number;
}

/** Every column calicoctl prints, by heading (calicoctl/resourcemgr/*.go). */
const COLUMN: Record<string, Record<string, (r: Resource, c: ColumnContext) => string>> = {
  Node: {
    // a node without its own AS shows the cluster's in parentheses, as calicoctl
    ASN: (r, c) => {
      const b = bgp(r);
      return b ? text(b.asNumber ?? `(${c.defaultAsn})`) : '';
    },
    IPV4: (r) => text(bgp(r)?.ipv4Address),
    IPV6: (r) => text(bgp(r)?.ipv6Address),
  },
  WorkloadEndpoint: {
    WORKLOAD: (r) => text(spec(r).pod ?? spec(r).workload),
    NODE: (r) => text(spec(r).node),
    NETWORKS: (r) => text(spec(r).ipNetworks),
    INTERFACE: (r) => text(spec(r).interfaceName),
    PROFILES: (r) => text(spec(r).profiles),
    NATS: (r) =>
      text(
        (spec(r).ipNATs as Array<{ internalIP: string; externalIP: string }> | undefined)?.map(
          (n) => `${n.internalIP}->${n.externalIP}`,
        ),
      ),
  },
  HostEndpoint: {
    NODE: (r) => text(spec(r).node),
    INTERFACE: (r) => text(spec(r).interfaceName),
    IPS: (r) => text(spec(r).expectedIPs),
    PROFILES: (r) => text(spec(r).profiles),
  },
  IPPool: {
    CIDR: (r) => text(spec(r).cidr),
    NAT: (r) => text(spec(r).natOutgoing ?? false),
    IPIPMODE: (r) => text(spec(r).ipipMode ?? 'Never'),
    VXLANMODE: (r) => text(spec(r).vxlanMode ?? 'Never'),
    DISABLED: (r) => text(spec(r).disabled ?? false),
    DISABLEBGPEXPORT: (r) => text(spec(r).disableBGPExport ?? false),
    SELECTOR: (r) => text(spec(r).nodeSelector),
    ASSIGNMENTMODE: (r) => text(spec(r).assignmentMode ?? 'Automatic'),
  },
  GlobalNetworkPolicy: {
    TIER: (r) => text(spec(r).tier ?? 'default'),
    ORDER: (r) => text(spec(r).order),
    SELECTOR: (r) => text(spec(r).selector),
  },
  BGPPeer: {
    PEERIP: (r) => text(spec(r).peerIP ?? spec(r).peerSelector),
    NODE: (r) => text(spec(r).node ?? spec(r).nodeSelector ?? '(global)'),
    ASN: (r) => text(spec(r).asNumber),
  },
  Profile: {
    LABELS: (r) =>
      Object.entries((spec(r).labelsToApply ?? {}) as Record<string, string>)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
  },
  NetworkSet: { NETS: (r) => truncated(spec(r).nets) },
  Tier: { ORDER: (r) => text(spec(r).order) },
};
COLUMN.NetworkPolicy = COLUMN.GlobalNetworkPolicy;
COLUMN.GlobalNetworkSet = COLUMN.NetworkSet;

/** calicoctl's headings per kind: [default, wide]; kinds it does not list show NAME. */
const HEADINGS: Record<string, [string[], string[]]> = {
  Node: [['NAME'], ['NAME', 'ASN', 'IPV4', 'IPV6']],
  WorkloadEndpoint: [
    ['WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE'],
    ['NAME', 'WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE', 'PROFILES', 'NATS'],
  ],
  HostEndpoint: [
    ['NAME', 'NODE'],
    ['NAME', 'NODE', 'INTERFACE', 'IPS', 'PROFILES'],
  ],
  IPPool: [
    ['NAME', 'CIDR', 'SELECTOR'],
    [
      'NAME',
      'CIDR',
      'NAT',
      'IPIPMODE',
      'VXLANMODE',
      'DISABLED',
      'DISABLEBGPEXPORT',
      'SELECTOR',
      'ASSIGNMENTMODE',
    ],
  ],
  GlobalNetworkPolicy: [
    ['NAME', 'TIER'],
    ['NAME', 'TIER', 'ORDER', 'SELECTOR'],
  ],
  NetworkPolicy: [
    ['NAME', 'TIER'],
    ['NAME', 'TIER', 'ORDER', 'SELECTOR'],
  ],
  BGPPeer: [
    ['NAME', 'PEERIP', 'NODE', 'ASN'],
    ['NAME', 'PEERIP', 'NODE', 'ASN'],
  ],
  Profile: [['NAME'], ['NAME', 'LABELS']],
  NetworkSet: [['NAME'], ['NAME', 'NETS']],
  GlobalNetworkSet: [['NAME'], ['NAME', 'NETS']],
  Tier: [
    ['NAME', 'ORDER'],
    ['NAME', 'ORDER'],
  ],
};

/** Columns of `get` for a kind, as calicoctl prints them (`wide` adds more). */
function columns(kind: Kind, wide: boolean, c: ColumnContext): Column[] {
  const [plain, more] = HEADINGS[kind] ?? [['NAME'], ['NAME']];
  return (wide ? more : plain).map((h) => {
    const f = COLUMN[kind]?.[h];
    return [h, h === 'NAME' ? (r) => r.metadata.name : (r) => (f ? f(r, c) : '')];
  });
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

/** BGPConfiguration default's asNumber, else Calico's 64512. */
async function defaultAsn(ds: Datastore): Promise<number> {
  const c = await ds.get({ kind: 'BGPConfiguration', name: 'default' }).catch(() => undefined);
  return ((c?.spec as { asNumber?: number } | undefined)?.asNumber ?? DEFAULT_ASN) as number;
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
  const cols = columns(o.kind, o.output === 'wide', {
    defaultAsn: o.kind === 'Node' ? await defaultAsn(ds) : DEFAULT_ASN,
  });
  if (namespaced && o.allNamespaces) cols.unshift(['NAMESPACE', (r) => r.metadata.namespace ?? '']);
  io.out(table([cols.map(([h]) => h), ...shown.map((r) => cols.map(([, f]) => f(r)))]));
  return 0;
}
