// meta.k8s.io/v1 Table output, which kubectl get asks for (Accept: ...;as=Table): the
// columns kube-apiserver prints for the built-ins, a CRD's additionalPrinterColumns.
import { type PrinterColumn, type ResourceType } from './resources';
import { type KubeObject } from './storage';

export function wantsTable(accept: string | undefined): boolean {
  return !!accept && /as=Table/.test(accept.split(',')[0]);
}

/** Age as kubectl prints it (5s, 3m, 2h, 4d). */
export function age(created: string | undefined, now = Date.now()): string {
  if (!created) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(created)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** A simple JSONPath as CRD printer columns use it: .a.b, .a[0].b */
export function jsonPath(o: unknown, path: string): unknown {
  const parts = path
    .replace(/^\{?\$?\.?/, '')
    .replace(/\}$/, '')
    .split(/\.|\[(\d+)\]/)
    .filter((p) => p !== undefined && p !== '');
  let v: unknown = o;
  for (const p of parts) {
    if (v === null || v === undefined) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

type Cell = (o: KubeObject, now: number) => unknown;
interface Col {
  name: string;
  type: string;
  format?: string;
  priority?: number;
  description?: string;
  cell: Cell;
}

const NAME: Col = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  cell: (o) => o.metadata.name,
};
const AGE: Col = {
  name: 'Age',
  type: 'string',
  description: 'The time since the object was created.',
  cell: (o, now) => age(o.metadata.creationTimestamp, now),
};

type Rec = Record<string, unknown>;
const at = (o: unknown, p: string): unknown => jsonPath(o, p);

function selectorText(sel: unknown): string {
  const s = sel as { matchLabels?: Record<string, string>; matchExpressions?: Rec[] } | undefined;
  const parts = Object.entries(s?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of s?.matchExpressions ?? [])
    parts.push(
      `${String(e.key)} ${String(e.operator).toLowerCase()} (${((e.values as string[]) ?? []).join(',')})`,
    );
  return parts.length ? parts.join(',') : '<none>';
}

const BUILTIN_COLUMNS: Record<string, Col[]> = {
  Pod: [
    NAME,
    {
      name: 'Ready',
      type: 'string',
      description: 'The number of containers ready of all the containers.',
      cell: (o) => {
        const all = ((at(o, 'spec.containers') as unknown[]) ?? []).length;
        const ready = ((at(o, 'status.containerStatuses') as Rec[]) ?? []).filter(
          (c) => c.ready,
        ).length;
        return `${ready}/${all}`;
      },
    },
    { name: 'Status', type: 'string', cell: (o) => at(o, 'status.phase') ?? 'Pending' },
    { name: 'Restarts', type: 'string', cell: () => '0' },
    AGE,
    { name: 'IP', type: 'string', priority: 1, cell: (o) => at(o, 'status.podIP') ?? '<none>' },
    { name: 'Node', type: 'string', priority: 1, cell: (o) => at(o, 'spec.nodeName') ?? '<none>' },
  ],
  Namespace: [
    NAME,
    { name: 'Status', type: 'string', cell: (o) => at(o, 'status.phase') ?? 'Active' },
    AGE,
  ],
  NetworkPolicy: [
    NAME,
    {
      name: 'Pod-Selector',
      type: 'string',
      description: 'The pods the policy applies to.',
      cell: (o) => selectorText(at(o, 'spec.podSelector')),
    },
    AGE,
  ],
  Service: [
    NAME,
    { name: 'Type', type: 'string', cell: (o) => at(o, 'spec.type') ?? 'ClusterIP' },
    { name: 'Cluster-IP', type: 'string', cell: (o) => at(o, 'spec.clusterIP') ?? '<none>' },
    { name: 'External-IP', type: 'string', cell: serviceExternalIp },
    {
      name: 'Port(s)',
      type: 'string',
      // kube-apiserver's makePortString: port[:nodePort]/protocol
      cell: (o) =>
        ((at(o, 'spec.ports') as Rec[]) ?? [])
          .map(
            (p) =>
              `${String(p.port)}${p.nodePort ? `:${String(p.nodePort)}` : ''}/${String(p.protocol ?? 'TCP')}`,
          )
          .join(',') || '<none>',
    },
    AGE,
    {
      name: 'Selector',
      type: 'string',
      priority: 1,
      cell: (o) => selectorText({ matchLabels: at(o, 'spec.selector') }),
    },
  ],
  Node: [
    NAME,
    {
      name: 'Status',
      type: 'string',
      cell: (o) => {
        const ready = ((at(o, 'status.conditions') as Rec[]) ?? []).find((c) => c.type === 'Ready');
        return ready?.status === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown';
      },
    },
    { name: 'Roles', type: 'string', cell: () => '<none>' },
    AGE,
    { name: 'Version', type: 'string', cell: (o) => at(o, 'status.nodeInfo.kubeletVersion') ?? '' },
  ],
  CustomResourceDefinition: [
    NAME,
    { name: 'Created At', type: 'date', cell: (o) => o.metadata.creationTimestamp },
  ],
};

function crdColumns(cols: PrinterColumn[]): Col[] {
  return [
    NAME,
    ...cols.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format,
      priority: c.priority ?? 0,
      description: c.description,
      cell: (o: KubeObject, now: number) => {
        const v = jsonPath(o, c.jsonPath);
        return c.type === 'date' && typeof v === 'string' ? age(v, now) : (v ?? null);
      },
    })),
  ];
}

function columnsOf(t: ResourceType): Col[] {
  if (t.columns) return crdColumns(t.columns);
  return BUILTIN_COLUMNS[t.kind] && !t.crd ? BUILTIN_COLUMNS[t.kind] : [NAME, AGE];
}

export function toTable(
  t: ResourceType,
  items: KubeObject[],
  meta: Record<string, unknown>,
  now = Date.now(),
): Record<string, unknown> {
  const cols = columnsOf(t);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: meta,
    columnDefinitions: cols.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      description: c.description ?? '',
      priority: c.priority ?? 0,
    })),
    rows: items.map((o) => ({
      cells: cols.map((c) => c.cell(o, now) ?? null),
      object: {
        kind: 'PartialObjectMetadata',
        apiVersion: 'meta.k8s.io/v1',
        metadata: o.metadata,
      },
    })),
  };
}

/**
 * A Service's EXTERNAL-IP as kube-apiserver prints it (getServiceExternalIP): its
 * externalIPs; for a LoadBalancer first the addresses in status.loadBalancer.ingress, and
 * <pending> while it has none.
 */
function serviceExternalIp(o: Rec): string {
  const external = (at(o, 'spec.externalIPs') as string[] | undefined) ?? [];
  switch (at(o, 'spec.type')) {
    case 'LoadBalancer': {
      const ingress = ((at(o, 'status.loadBalancer.ingress') as Rec[] | undefined) ?? [])
        .map((i) => (i.ip ?? i.hostname) as string | undefined)
        .filter((x): x is string => !!x);
      return [...ingress, ...external].join(',') || '<pending>';
    }
    case 'ExternalName':
      return (at(o, 'spec.externalName') as string | undefined) ?? '<none>';
    default:
      return external.join(',') || '<none>';
  }
}
