// Field selectors (?fieldSelector=): `f=v`, `f==v`, `f!=v`, joined by commas, over the
// fields Kubernetes supports for each kind; any other field is a 400 as there.
import { badRequest } from './status';
import { type KubeObject } from './storage';

const COMMON = ['metadata.name', 'metadata.namespace'];
const BY_KIND: Record<string, string[]> = {
  Pod: [
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.nominatedNodeName',
  ],
  Node: ['spec.unschedulable'],
  Namespace: ['status.phase'],
  Service: ['spec.type', 'spec.clusterIP'],
};

function fieldValue(o: KubeObject, field: string): string {
  let v: unknown = o;
  for (const part of field.split('.')) v = (v as Record<string, unknown> | undefined)?.[part];
  if (v === undefined || v === null) return '';
  return String(v);
}

export function parseFieldSelector(s: string, kind: string): (o: KubeObject) => boolean {
  const allowed = new Set([...COMMON, ...(BY_KIND[kind] ?? [])]);
  const reqs = s
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
      if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${t}'`);
      const [, field, op, value] = m;
      if (!allowed.has(field)) throw badRequest(`field label not supported: ${field}`);
      return (o: KubeObject) => (fieldValue(o, field) === value) === (op !== '!=');
    });
  return (o) => reqs.every((r) => r(o));
}
