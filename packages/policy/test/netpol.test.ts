// The Kubernetes network-policy conformance scenarios (upstream e2e "netpol", the table
// in netpol-scenarios.ts) as truth tables for the reference evaluator, with Kubernetes
// policies converted by convertK8sNetworkPolicy exactly as the dataplane will receive
// them. e2e/kubectl-netpol.test.ts runs the same table on real pods through kubectl.
import {
  Evaluator,
  ORCHESTRATOR_LABEL,
  convertK8sNetworkPolicy,
  namespaceProfile,
  type Endpoint,
  type K8sNetworkPolicy,
  type Protocol,
} from '../src';
import {
  ALL,
  EGRESS_TO_Y_AND_DNS,
  NAMESPACES,
  PODS,
  PROTOCOLS,
  Reachability,
  SCENARIOS,
  SERVED_PORTS,
  denyAllIngress,
  np,
  reachabilityDiff,
} from './netpol-scenarios';

function ipOf(pod: string): string {
  const [ns, p] = pod.split('/');
  return `10.0.${NAMESPACES.indexOf(ns) + 1}.${PODS.indexOf(p) + 1}`;
}

function endpoints(): Endpoint[] {
  return ALL.map((pod) => {
    const [ns, p] = pod.split('/');
    return {
      name: p,
      namespace: ns,
      labels: { pod: p, [ORCHESTRATOR_LABEL]: 'k8s' },
      ips: [ipOf(pod)],
      profiles: [`kns.${ns}`],
      ports: SERVED_PORTS.flatMap((port) =>
        PROTOCOLS.map((protocol) => ({
          name: `serve-${port}-${protocol.toLowerCase()}`,
          port,
          protocol,
        })),
      ),
    };
  });
}

/** Checks every ordered pair against the evaluator; throws with the grid on a mismatch. */
function check(
  want: Reachability,
  policies: K8sNetworkPolicy[],
  port: number,
  protocol: Protocol = 'TCP',
): void {
  const ev = new Evaluator({
    endpoints: endpoints(),
    namespaces: NAMESPACES.map((n) => ({ name: n, labels: { ns: n } })),
    policies: policies.map(convertK8sNetworkPolicy),
    profiles: NAMESPACES.map(namespaceProfile),
  });
  const diff = reachabilityDiff(
    want,
    (from, to) =>
      ev.evaluate({ srcIp: ipOf(from), dstIp: ipOf(to), protocol, dstPort: port, srcPort: 40000 })
        .allowed,
    `${protocol}/${port}`,
  );
  if (diff) throw new Error(diff);
}

describe('Kubernetes NetworkPolicy conformance (netpol) truth tables', () => {
  test.each(SCENARIOS.map((s) => [s.name, s] as const))('%s', (_, s) => {
    for (const c of s.checks) check(c.want, s.policies(ipOf), c.port, c.protocol);
  });

  test('egress to namespace y plus DNS anywhere: DNS to an outside address, nothing else', () => {
    const ev = new Evaluator({
      endpoints: endpoints(),
      policies: [convertK8sNetworkPolicy(EGRESS_TO_Y_AND_DNS)],
      profiles: NAMESPACES.map(namespaceProfile),
    });
    expect(
      ev.evaluate({ srcIp: ipOf('x/a'), dstIp: '8.8.8.8', protocol: 'UDP', dstPort: 53 }).allowed,
    ).toBe(true);
    expect(
      ev.evaluate({ srcIp: ipOf('x/a'), dstIp: '8.8.8.8', protocol: 'TCP', dstPort: 443 }).allowed,
    ).toBe(false);
  });

  test('policyTypes default: the converted policy is Ingress and Egress, with no ingress rule', () => {
    const p = convertK8sNetworkPolicy(np('both', 'x', { podSelector: {}, egress: [{}] }));
    expect(p.spec.types).toEqual(['Ingress', 'Egress']);
    expect(p.spec.ingress).toEqual([]); // Ingress without rules: deny all ingress
  });
});

test('the truth-table harness reports every mismatch', () => {
  expect(() => check(new Reachability(true), [denyAllIngress('x')], 80)).toThrow(
    /24 wrong[\s\S]*x\/b -> x\/a: expected allowed, got denied/,
  );
});
