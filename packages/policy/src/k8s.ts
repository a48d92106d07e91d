// Kubernetes networking.k8s.io/v1 NetworkPolicy -> the policy model, as Kubernetes
// specifies it and Calico converts it (a namespaced policy "knp.default.<name>" at
// order 1000 in the default tier), plus the namespace profile that lets pods without
// any policy talk freely.
import type { Policy, Profile, Protocol, Rule } from './model';

export interface K8sLabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }>;
}

export interface K8sPeer {
  podSelector?: K8sLabelSelector;
  namespaceSelector?: K8sLabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

export interface K8sPort {
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  port?: number | string;
  endPort?: number;
}

export interface K8sNetworkPolicy {
  metadata: { name: string; namespace?: string };
  spec: {
    podSelector: K8sLabelSelector;
    policyTypes?: Array<'Ingress' | 'Egress'>;
    ingress?: Array<{ from?: K8sPeer[]; ports?: K8sPort[] }>;
    egress?: Array<{ to?: K8sPeer[]; ports?: K8sPort[] }>;
  };
}

/** Calico marks pods it learned from Kubernetes with this label; k8s policies select only them. */
export const ORCHESTRATOR_LABEL = 'projectcalico.org/orchestrator';

function quote(v: string): string {
  return v.includes("'") ? `"${v}"` : `'${v}'`;
}

/** A Kubernetes label selector as a Calico selector ("all()" when empty). */
export function labelSelectorToSelector(s: K8sLabelSelector | undefined): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(s?.matchLabels ?? {}).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    parts.push(`${k} == ${quote(v)}`);
  }
  for (const e of s?.matchExpressions ?? []) {
    const values = `{${(e.values ?? []).map(quote).join(', ')}}`;
    switch (e.operator) {
      case 'In':
        parts.push(`${e.key} in ${values}`);
        break;
      case 'NotIn':
        parts.push(`${e.key} not in ${values}`);
        break;
      case 'Exists':
        parts.push(`has(${e.key})`);
        break;
      case 'DoesNotExist':
        parts.push(`!has(${e.key})`);
        break;
      default:
        throw new Error(
          `matchExpressions operator "${(e as { operator: string }).operator}" is not one of In, NotIn, Exists, DoesNotExist`,
        );
    }
  }
  return parts.length ? parts.join(' && ') : 'all()';
}

/** Rules for one ingress/egress entry: one per (peer x protocol), ports grouped per protocol. */
function entryRules(
  peers: K8sPeer[] | undefined,
  ports: K8sPort[] | undefined,
  dir: 'Ingress' | 'Egress',
): Rule[] {
  const byProto = new Map<Protocol, Array<number | string>>();
  const allPorts = new Set<Protocol>(); // protocols listed without a port: every port
  for (const p of ports ?? []) {
    const proto = p.protocol ?? 'TCP';
    byProto.set(proto, byProto.get(proto) ?? []);
    if (p.port === undefined) {
      allPorts.add(proto);
      continue;
    }
    const spec =
      p.endPort !== undefined && typeof p.port === 'number' ? `${p.port}:${p.endPort}` : p.port;
    byProto.get(proto)!.push(spec);
  }
  const protoMatches: Array<{ protocol?: Protocol; ports?: Array<number | string> }> = ports?.length
    ? [...byProto].map(([protocol, list]) => ({
        protocol,
        ports: allPorts.has(protocol) ? undefined : list,
      }))
    : [{}];
  const peerMatches: Array<Rule['source']> = peers?.length
    ? peers.map((peer) => {
        if (peer.ipBlock)
          return {
            nets: [peer.ipBlock.cidr],
            notNets: peer.ipBlock.except?.length ? peer.ipBlock.except : undefined,
          };
        const e: NonNullable<Rule['source']> = {};
        // A podSelector alone selects pods in the policy's own namespace; with a
        // namespaceSelector, pods in the selected namespaces.
        e.selector = peer.podSelector
          ? `${ORCHESTRATOR_LABEL} == 'k8s' && ${labelSelectorToSelector(peer.podSelector)}`
          : `${ORCHESTRATOR_LABEL} == 'k8s'`;
        if (peer.namespaceSelector)
          e.namespaceSelector = labelSelectorToSelector(peer.namespaceSelector);
        return e;
      })
    : [undefined];
  const rules: Rule[] = [];
  for (const peer of peerMatches) {
    for (const pm of protoMatches) {
      const rule: Rule = { action: 'Allow' };
      if (pm.protocol) rule.protocol = pm.protocol;
      const ports = pm.ports ? { ports: pm.ports } : {};
      if (dir === 'Ingress') {
        if (peer) rule.source = peer;
        if (pm.ports) rule.destination = ports;
      } else {
        rule.destination = { ...(peer ?? {}), ...ports };
        if (Object.keys(rule.destination).length === 0) delete rule.destination;
      }
      rules.push(rule);
    }
  }
  return rules;
}

export function convertK8sNetworkPolicy(np: K8sNetworkPolicy): Policy {
  const namespace = np.metadata.namespace ?? 'default';
  const { spec } = np;
  // policyTypes default: Ingress, plus Egress when egress rules are present.
  const types = spec.policyTypes?.length
    ? spec.policyTypes
    : spec.egress?.length
      ? ['Ingress' as const, 'Egress' as const]
      : ['Ingress' as const];
  const pods = labelSelectorToSelector(spec.podSelector);
  return {
    kind: 'NetworkPolicy',
    metadata: { name: `knp.default.${np.metadata.name}`, namespace },
    spec: {
      tier: 'default',
      order: 1000,
      selector:
        pods === 'all()'
          ? `${ORCHESTRATOR_LABEL} == 'k8s'`
          : `${ORCHESTRATOR_LABEL} == 'k8s' && ${pods}`,
      types,
      // An absent or empty list denies everything in a direction the policy covers.
      ingress: types.includes('Ingress')
        ? (spec.ingress ?? []).flatMap((r) => entryRules(r.from, r.ports, 'Ingress'))
        : undefined,
      egress: types.includes('Egress')
        ? (spec.egress ?? []).flatMap((r) => entryRules(r.to, r.ports, 'Egress'))
        : undefined,
    },
  };
}

/** Calico's per-namespace profile "kns.<ns>": allow everything when no policy applies. */
export function namespaceProfile(namespace: string): Profile {
  return {
    name: `kns.${namespace}`,
    ingress: [{ action: 'Allow' }],
    egress: [{ action: 'Allow' }],
  };
}
