// Datastore resources -> the plain facts the graph works with, and the "flat" label
// view that lets one selector index answer every question: an item's labels are its
// own (after its profiles' labelsToApply, as the reference evaluator does) plus
// reserved keys for what Calico scopes selectors by: its kind, namespace and namespace
// labels, service account and its labels. Reserved keys start with "//", which no
// Kubernetes label key can. Pure.
import {
  namespaceLabels as labelsOfNamespace,
  namedPorts,
  namespaceProfileName,
  serviceAccountLabels as labelsOfServiceAccount,
  serviceAccountProfileName,
  type Resource,
} from '@tortie/api';
import { protocolNumber, type Labels, type Protocol } from '@tortie/policy';
import { resourceKey, workloadId } from './ids';

export const KIND = '//kind';
export const NS = '//ns';
export const NS_LABEL = '//ns/';
export const SA = '//sa';
export const SA_LABEL = '//sa/';

export interface NamedPortInfo {
  name: string;
  port: number;
  protocol: number;
}

export interface EndpointInfo {
  key: string;
  kind: 'wep' | 'hep';
  /** Dataplane id: "<ns>/<pod>/<endpoint>" or the host endpoint's name. */
  id: string;
  node: string;
  namespace?: string;
  labels: Labels;
  profiles: string[];
  serviceAccount?: string;
  /** Addresses as IP set members ("10.0.0.1/32"). */
  nets: string[];
  ports: NamedPortInfo[];
  resource: Resource<'WorkloadEndpoint'> | Resource<'HostEndpoint'>;
}

export interface NetSetInfo {
  key: string;
  namespace?: string;
  labels: Labels;
  nets: string[];
}

export interface ProfileInfo {
  name: string;
  labelsToApply: Labels;
  resource?: Resource<'Profile'>;
}

const hostNet = (ip: string) => (ip.includes(':') ? `${ip}/128` : `${ip}/32`);

function ports(list: Array<{ name?: string; port: number; protocol?: unknown }> | undefined) {
  return namedPorts(list).map((p) => ({
    name: p.name,
    port: p.port,
    protocol: protocolNumber((p.protocol ?? 'TCP') as Protocol),
  }));
}

export function endpointInfo(
  r: Resource<'WorkloadEndpoint'> | Resource<'HostEndpoint'>,
): EndpointInfo {
  if (r.kind === 'WorkloadEndpoint') {
    const w = r as Resource<'WorkloadEndpoint'>;
    return {
      key: resourceKey(r),
      kind: 'wep',
      id: workloadId(w),
      node: w.spec.node,
      namespace: w.metadata.namespace ?? 'default',
      labels: w.metadata.labels ?? {},
      profiles: w.spec.profiles,
      serviceAccount: w.spec.serviceAccountName,
      nets: w.spec.ipNetworks.map((n) => hostNet(n.split('/')[0])),
      ports: ports(w.spec.ports),
      resource: w,
    };
  }
  const h = r as Resource<'HostEndpoint'>;
  return {
    key: resourceKey(r),
    kind: 'hep',
    id: h.metadata.name,
    node: h.spec.node,
    labels: h.metadata.labels ?? {},
    profiles: h.spec.profiles ?? [],
    nets: (h.spec.expectedIPs ?? []).map(hostNet),
    ports: ports(h.spec.ports),
    resource: h,
  };
}

export function netSetInfo(r: Resource<'NetworkSet'> | Resource<'GlobalNetworkSet'>): NetSetInfo {
  return {
    key: resourceKey(r),
    namespace: r.kind === 'NetworkSet' ? (r.metadata.namespace ?? 'default') : undefined,
    labels: r.metadata.labels ?? {},
    nets: r.spec.nets,
  };
}

/** The profiles the graph knows, for label inheritance (a missing profile adds nothing). */
export type ProfileLookup = (name: string) => ProfileInfo | undefined;

/** A namespace's labels: Kubernetes' name label plus its "kns.<ns>" profile's "pcns.*". */
export function namespaceLabels(ns: string, profiles: ProfileLookup): Labels {
  return labelsOfNamespace(ns, profiles(namespaceProfileName(ns))?.labelsToApply);
}

/** A service account's labels, from its "ksa.<ns>.<sa>" profile's "pcsa.*". */
export function serviceAccountLabels(ns: string, sa: string, profiles: ProfileLookup): Labels {
  return labelsOfServiceAccount(profiles(serviceAccountProfileName(ns, sa))?.labelsToApply);
}

function addPrefixed(out: Record<string, string>, prefix: string, labels: Labels): void {
  for (const [k, v] of Object.entries(labels)) out[`${prefix}${k}`] = v;
}

/** The flat labels of an endpoint (see the file comment). */
export function endpointLabels(ep: EndpointInfo, profiles: ProfileLookup): Labels {
  const out: Record<string, string> = {};
  for (const p of ep.profiles) Object.assign(out, profiles(p)?.labelsToApply);
  Object.assign(out, ep.labels);
  out[KIND] = ep.kind;
  if (ep.namespace !== undefined) {
    out[NS] = ep.namespace;
    addPrefixed(out, NS_LABEL, namespaceLabels(ep.namespace, profiles));
    if (ep.serviceAccount !== undefined) {
      out[SA] = ep.serviceAccount;
      addPrefixed(out, SA_LABEL, serviceAccountLabels(ep.namespace, ep.serviceAccount, profiles));
    }
  }
  return out;
}

export function netSetLabels(s: NetSetInfo, profiles: ProfileLookup): Labels {
  const out: Record<string, string> = { ...s.labels, [KIND]: 'netset' };
  if (s.namespace !== undefined) {
    out[NS] = s.namespace;
    addPrefixed(out, NS_LABEL, namespaceLabels(s.namespace, profiles));
  }
  return out;
}
