// The policy model, shaped like Calico's projectcalico.org/v3 resources so manifests
// map onto it field for field. Plain data; the evaluator and the dataplane read it.
import type { Labels } from './selector';
import type { ServiceMatch, ServiceSlice } from './services';

export type Action = 'Allow' | 'Deny' | 'Pass' | 'Log';
export type Direction = 'Ingress' | 'Egress';
/** A protocol name as Calico spells it, or an IP protocol number. */
export type Protocol = 'TCP' | 'UDP' | 'ICMP' | 'ICMPv6' | 'SCTP' | 'UDPLite' | number;
/** A port number, a range "from:to", or a named port. */
export type Port = number | string;

export interface EntityRule {
  nets?: string[];
  notNets?: string[];
  selector?: string;
  notSelector?: string;
  namespaceSelector?: string;
  ports?: Port[];
  notPorts?: Port[];
  serviceAccounts?: { names?: string[]; selector?: string };
  /**
   * A Kubernetes Service's endpoints (services.ts): in a destination their addresses on the
   * slice ports, in a source their addresses. Calico allows it only there (egress
   * destination, ingress source) and not beside selectors, nets or service accounts.
   */
  services?: ServiceMatch;
}

export interface IcmpMatch {
  type?: number;
  code?: number;
}

export interface Rule {
  action: Action;
  protocol?: Protocol;
  notProtocol?: Protocol;
  ipVersion?: 4 | 6;
  icmp?: IcmpMatch;
  notICMP?: IcmpMatch;
  source?: EntityRule;
  destination?: EntityRule;
  /** Recorded, not enforced (Calico enforces it only with an L7 proxy). */
  http?: { methods?: string[]; paths?: Array<{ exact?: string; prefix?: string }> };
}

export interface PolicySpec {
  tier?: string;
  order?: number;
  selector?: string;
  /** GlobalNetworkPolicy: which namespaces' endpoints it applies to. */
  namespaceSelector?: string;
  serviceAccountSelector?: string;
  types?: Direction[];
  ingress?: Rule[];
  egress?: Rule[];
  applyOnForward?: boolean;
  preDNAT?: boolean;
  doNotTrack?: boolean;
}

export interface Policy {
  kind: 'NetworkPolicy' | 'GlobalNetworkPolicy';
  metadata: { name: string; namespace?: string };
  spec: PolicySpec;
}

export interface Tier {
  name: string;
  /** Lower first; tiers without an order come last. */
  order?: number;
  /** What happens when policies of the tier select an endpoint but no rule matches. */
  defaultAction?: 'Deny' | 'Pass';
}

export interface Profile {
  name: string;
  labelsToApply?: Labels;
  ingress?: Rule[];
  egress?: Rule[];
}

export interface NamedPort {
  name: string;
  port: number;
  protocol?: Protocol;
}

export interface Endpoint {
  name: string;
  /** Absent for host endpoints and other global objects. */
  namespace?: string;
  labels: Labels;
  ips: string[];
  ports?: NamedPort[];
  serviceAccount?: string;
  serviceAccountLabels?: Labels;
  profiles?: string[];
}

export interface Namespace {
  name: string;
  labels: Labels;
}

export interface NetworkSet {
  name: string;
  /** Absent for GlobalNetworkSet. */
  namespace?: string;
  labels: Labels;
  nets: string[];
}

/** Everything the evaluator needs to know about the cluster. */
export interface PolicyWorld {
  endpoints: Endpoint[];
  namespaces?: Namespace[];
  policies: Policy[];
  tiers?: Tier[];
  profiles?: Profile[];
  networkSets?: NetworkSet[];
  /** Kubernetes EndpointSlices: what rules' `services` matches resolve to. */
  endpointSlices?: ServiceSlice[];
}

export interface Flow {
  srcIp: string;
  dstIp: string;
  protocol: Protocol;
  srcPort?: number;
  dstPort?: number;
  icmpType?: number;
  icmpCode?: number;
  /**
   * Host endpoints the flow is forwarded through (not to): their applyOnForward,
   * preDNAT (ingress) and doNotTrack policies apply to it.
   */
  via?: Array<{ hostEndpoint: string; direction: Direction }>;
}

export const DEFAULT_TIER = 'default';

const PROTOCOL_NUMBERS: Record<string, number> = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPv6: 58,
  SCTP: 132,
  UDPLite: 136,
};

/** The IP protocol number of a protocol name or number; throws naming a bad name. */
export function protocolNumber(p: Protocol): number {
  if (typeof p === 'number') return p;
  const n =
    PROTOCOL_NUMBERS[p] ??
    PROTOCOL_NUMBERS[
      Object.keys(PROTOCOL_NUMBERS).find((k) => k.toLowerCase() === String(p).toLowerCase()) ?? ''
    ];
  if (n === undefined)
    throw new Error(
      `unknown protocol "${p}" (expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number)`,
    );
  return n;
}

/** Directions a policy applies to: explicit types, else Calico's inference. */
export function policyTypes(spec: PolicySpec): Direction[] {
  if (spec.types?.length) return spec.types;
  // Calico: Ingress always; Egress too when egress rules are present.
  return spec.egress?.length ? ['Ingress', 'Egress'] : ['Ingress'];
}

/**
 * Which selector fields of a rule side are in force, as Calico's getEndpointSelector
 * decides (libcalico-go updateprocessors/rules.go): service accounts only with names or
 * a selector; a positive selection (scoped to namespaces) as soon as any selector field
 * is used, notSelector included when the policy is namespaced.
 */
export function sideSelection(
  e: EntityRule,
  policyNs: string | undefined,
): { serviceAccounts: boolean; positive: boolean } {
  const sa = e.serviceAccounts;
  const serviceAccounts = sa !== undefined && (sa.selector !== undefined || !!sa.names?.length);
  const positive =
    serviceAccounts ||
    e.selector !== undefined ||
    e.namespaceSelector !== undefined ||
    (policyNs !== undefined && e.notSelector !== undefined);
  return { serviceAccounts, positive };
}
