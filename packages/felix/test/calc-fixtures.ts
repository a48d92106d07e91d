// Resource builders and a harness for the calculation graph tests (packages/felix/src/calc).
import { parseResource, type Resource } from '@tortie/api';
import { blocks } from '@tortie/ipam';
import { CalcGraph, type CalcGraphConfig } from '../src/calc/calc-graph';
import { DataplaneState } from '../src/dataplane-state';
import type { DataplaneUpdate } from '../src/types';

export const R = (kind: string, name: string, spec: object, meta: object = {}): Resource =>
  parseResource({ apiVersion: 'tortie.io/v1', kind, metadata: { name, ...meta }, spec });

export const node = (
  name: string,
  ip: string | undefined,
  bgp: object = {},
  labels: Record<string, string> = {},
  extra: object = {},
) => R('Node', name, { ...(ip ? { bgp: { ipv4Address: ip, ...bgp } } : {}), ...extra }, { labels });

/** A Kubernetes-style pod endpoint (as the KDD backend writes it). */
export const wep = (
  ns: string,
  pod: string,
  nodeName: string,
  ips: string | string[],
  labels: Record<string, string> = {},
  extra: object = {},
) =>
  R(
    'WorkloadEndpoint',
    `${nodeName}-k8s-${pod}-eth0`,
    {
      node: nodeName,
      pod,
      endpoint: 'eth0',
      ipNetworks: (Array.isArray(ips) ? ips : [ips]).map((ip) => `${ip}/32`),
      interfaceName: `cali${pod}`.slice(0, 15),
      profiles: [`kns.${ns}`],
      ...extra,
    },
    {
      namespace: ns,
      labels: {
        'projectcalico.org/namespace': ns,
        'projectcalico.org/orchestrator': 'k8s',
        ...labels,
      },
    },
  );

/** A namespace as the KDD backend mirrors it: profile kns.<ns>. */
export const namespace = (ns: string, labels: Record<string, string> = {}) =>
  R('Profile', `kns.${ns}`, {
    ingress: [{ action: 'Allow' }],
    egress: [{ action: 'Allow' }],
    labelsToApply: {
      'pcns.projectcalico.org/name': ns,
      ...Object.fromEntries(Object.entries(labels).map(([k, v]) => [`pcns.${k}`, v])),
    },
  });

export const np = (ns: string, name: string, spec: object) =>
  R('NetworkPolicy', name, spec, { namespace: ns });
export const gnp = (name: string, spec: object) => R('GlobalNetworkPolicy', name, spec);
export const tier = (name: string, order?: number, defaultAction?: 'Deny' | 'Pass') =>
  R('Tier', name, {
    ...(order !== undefined ? { order } : {}),
    ...(defaultAction ? { defaultAction } : {}),
  });
export const pool = (name: string, cidr: string, spec: object = {}) =>
  R('IPPool', name, { cidr, ...spec });

/** An IPAM block affine to `owner`, with addresses (by offset) allocated for nodes. */
export const block = (
  cidr: string,
  owner: string | undefined,
  allocations: Array<[number, string]> = [],
) => {
  let spec = blocks.newBlock(cidr, owner);
  const [base] = cidr.split('/');
  const octets = base.split('.').map(Number);
  for (const [i, n] of allocations) {
    const ip = [...octets.slice(0, 3), octets[3] + i].join('.');
    spec = blocks.allocateIp(spec, ip, `h-${ip}`, { node: n });
  }
  return R('IPAMBlock', cidr.replace(/[./]/g, '-'), spec);
};

export function harness(me = 'n1', config?: CalcGraphConfig) {
  const dp = new DataplaneState();
  const g = new CalcGraph({ nodeName: me, sink: dp, config });
  const set = (...rs: Resource[]) => g.onUpdates(rs.map((resource) => ({ type: 'set', resource })));
  const del = (...rs: Resource[]) =>
    g.onUpdates(
      rs.map((resource) => ({
        type: 'deleted',
        resource,
        key: {
          kind: resource.kind,
          name: resource.metadata.name,
          namespace: resource.metadata.namespace,
        },
      })),
    );
  /** Messages sent since the last call. */
  let seen = 0;
  const fresh = (): DataplaneUpdate[] => {
    const out = dp.log.slice(seen);
    seen = dp.log.length;
    return out;
  };
  const sync = () => {
    g.onStatus('in-sync');
    return fresh();
  };
  return { dp, g, set, del, fresh, sync };
}

export const ofType = <T extends DataplaneUpdate['type']>(us: DataplaneUpdate[], type: T) =>
  us.filter((u): u is Extract<DataplaneUpdate, { type: T }> => u.type === type);
