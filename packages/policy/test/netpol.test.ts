// The Kubernetes network-policy conformance scenarios (upstream e2e "netpol": namespaces
// x, y, z; pods a, b, c in each; ports 80 and 81 over TCP, UDP and SCTP) as truth
// tables for the reference evaluator, with Kubernetes policies converted by
// convertK8sNetworkPolicy exactly as the dataplane will receive them.
import {
  Evaluator,
  ORCHESTRATOR_LABEL,
  convertK8sNetworkPolicy,
  namespaceProfile,
  type Endpoint,
  type K8sNetworkPolicy,
  type Protocol,
} from '../src';

const NAMESPACES = ['x', 'y', 'z'];
const PODS = ['a', 'b', 'c'];
const ALL = NAMESPACES.flatMap((ns) => PODS.map((p) => `${ns}/${p}`));

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
      ports: [80, 81].flatMap((port) =>
        (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({
          name: `serve-${port}-${protocol.toLowerCase()}`,
          port,
          protocol,
        })),
      ),
    };
  });
}

/** Upstream's Reachability: expected matrix with defaults and overrides, and a readable diff. */
class Reachability {
  private readonly want = new Map<string, boolean>();
  constructor(defaultAllowed: boolean) {
    for (const from of ALL) for (const to of ALL) this.want.set(`${from}>${to}`, defaultAllowed);
  }
  expect(from: string, to: string, allowed: boolean): this {
    this.want.set(`${from}>${to}`, allowed);
    return this;
  }
  expectAllIngress(to: string, allowed: boolean): this {
    for (const from of ALL) this.expect(from, to, allowed);
    return this;
  }
  expectAllEgress(from: string, allowed: boolean): this {
    for (const to of ALL) this.expect(from, to, allowed);
    return this;
  }
  /** Checks every ordered pair (a pod talking to itself is not policed and is skipped). */
  check(policies: K8sNetworkPolicy[], port: number, protocol: Protocol = 'TCP'): void {
    const ev = new Evaluator({
      endpoints: endpoints(),
      namespaces: NAMESPACES.map((n) => ({ name: n, labels: { ns: n } })),
      policies: policies.map(convertK8sNetworkPolicy),
      profiles: NAMESPACES.map(namespaceProfile),
    });
    const wrong: string[] = [];
    const grid = [`${protocol}/${port}  ${ALL.map((p) => p.padEnd(4)).join('')}`];
    for (const from of ALL) {
      let row = `${from.padEnd(8)}`;
      for (const to of ALL) {
        if (from === to) {
          row += '-   ';
          continue;
        }
        const got = ev.evaluate({
          srcIp: ipOf(from),
          dstIp: ipOf(to),
          protocol,
          dstPort: port,
          srcPort: 40000,
        }).allowed;
        const want = this.want.get(`${from}>${to}`)!;
        row += got === want ? (got ? '.   ' : 'X   ') : got ? '!.  ' : '!X  ';
        if (got !== want)
          wrong.push(
            `${from} -> ${to}: expected ${want ? 'allowed' : 'denied'}, got ${got ? 'allowed' : 'denied'}`,
          );
      }
      grid.push(row);
    }
    if (wrong.length)
      throw new Error(
        `${wrong.length} wrong (. allowed, X denied, ! wrong)\n${grid.join('\n')}\n${wrong.join('\n')}`,
      );
  }
}

const np = (name: string, namespace: string, spec: K8sNetworkPolicy['spec']): K8sNetworkPolicy => ({
  metadata: { name, namespace },
  spec,
});
const denyAllIngress = (ns: string) =>
  np('deny-all', ns, { podSelector: {}, policyTypes: ['Ingress'] });

describe('Kubernetes NetworkPolicy conformance (netpol) truth tables', () => {
  test('no policy: everything is allowed', () => {
    new Reachability(true).check([], 80);
  });

  test('deny all ingress in x', () => {
    const r = new Reachability(true);
    for (const p of PODS) r.expectAllIngress(`x/${p}`, false);
    r.check([denyAllIngress('x')], 80);
    r.check([denyAllIngress('x')], 81, 'UDP');
  });

  test('allow all ingress on top of deny all: policies add up', () => {
    new Reachability(true).check(
      [denyAllIngress('x'), np('allow-all', 'x', { podSelector: {}, ingress: [{}] })],
      80,
    );
  });

  test('deny all egress in x', () => {
    const r = new Reachability(true);
    for (const p of PODS) r.expectAllEgress(`x/${p}`, false);
    r.check([np('deny-egress', 'x', { podSelector: {}, policyTypes: ['Egress'] })], 80);
  });

  test('pod selector: x/a only from x/b', () => {
    const r = new Reachability(true).expectAllIngress('x/a', false).expect('x/b', 'x/a', true);
    r.check(
      [
        np('a-from-b', 'x', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }],
        }),
      ],
      80,
    );
  });

  test('namespace selector: x/a only from namespace y', () => {
    const r = new Reachability(true).expectAllIngress('x/a', false);
    for (const p of PODS) r.expect(`y/${p}`, 'x/a', true);
    r.check(
      [
        np('a-from-y', 'x', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
        }),
      ],
      80,
    );
  });

  test('namespace selector on kubernetes.io/metadata.name with NotIn', () => {
    const r = new Reachability(true).expectAllIngress('x/a', false);
    for (const p of PODS) r.expect(`z/${p}`, 'x/a', true);
    r.check(
      [
        np('a-not-from-x-y', 'x', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [
            {
              from: [
                {
                  namespaceSelector: {
                    matchExpressions: [
                      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['x', 'y'] },
                    ],
                  },
                },
              ],
            },
          ],
        }),
      ],
      80,
    );
  });

  test('pod and namespace selector in one peer: only y/b', () => {
    const r = new Reachability(true).expectAllIngress('x/a', false).expect('y/b', 'x/a', true);
    r.check(
      [
        np('a-from-yb', 'x', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [
            {
              from: [
                {
                  namespaceSelector: { matchLabels: { ns: 'y' } },
                  podSelector: { matchLabels: { pod: 'b' } },
                },
              ],
            },
          ],
        }),
      ],
      80,
    );
  });

  test('pod selector or namespace selector as two peers: y/* and x/b', () => {
    const r = new Reachability(true).expectAllIngress('x/a', false).expect('x/b', 'x/a', true);
    for (const p of PODS) r.expect(`y/${p}`, 'x/a', true);
    r.check(
      [
        np('a-from-y-or-b', 'x', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [
            {
              from: [
                { namespaceSelector: { matchLabels: { ns: 'y' } } },
                { podSelector: { matchLabels: { pod: 'b' } } },
              ],
            },
          ],
        }),
      ],
      80,
    );
  });

  test('ipBlock with except: x/a from 10.0.0.0/16 except namespace y (10.0.2.0/24)', () => {
    const r = new Reachability(true);
    for (const p of PODS) r.expect(`y/${p}`, 'x/a', false);
    r.check(
      [
        np('a-from-cidr', 'x', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.2.0/24'] } }] }],
        }),
      ],
      80,
    );
  });

  test('named port: x/a only on serve-81-tcp', () => {
    const policy = np('a-named-81', 'x', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ ports: [{ port: 'serve-81-tcp' }] }],
    });
    new Reachability(true).check([policy], 81);
    new Reachability(true).expectAllIngress('x/a', false).check([policy], 80);
    new Reachability(true).expectAllIngress('x/a', false).check([policy], 81, 'UDP');
  });

  test('endPort: x/a on TCP 80-81 only', () => {
    const policy = np('a-range', 'x', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ ports: [{ protocol: 'TCP', port: 80, endPort: 81 }] }],
    });
    new Reachability(true).check([policy], 80);
    new Reachability(true).check([policy], 81);
    new Reachability(true).expectAllIngress('x/a', false).check([policy], 82);
  });

  test('UDP and SCTP are told apart from TCP', () => {
    const policy = np('a-udp', 'x', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        {
          ports: [
            { protocol: 'UDP', port: 80 },
            { protocol: 'SCTP', port: 81 },
          ],
        },
      ],
    });
    new Reachability(true).check([policy], 80, 'UDP');
    new Reachability(true).check([policy], 81, 'SCTP');
    new Reachability(true).expectAllIngress('x/a', false).check([policy], 80, 'TCP');
    new Reachability(true).expectAllIngress('x/a', false).check([policy], 80, 'SCTP');
  });

  test('egress to namespace y plus DNS anywhere', () => {
    const policy = np('a-egress', 'x', {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Egress'],
      egress: [
        { to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] },
        {
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    });
    const r = new Reachability(true).expectAllEgress('x/a', false);
    for (const p of PODS) r.expect('x/a', `y/${p}`, true);
    r.check([policy], 80);
    new Reachability(true).check([policy], 53, 'UDP');
    const ev = new Evaluator({
      endpoints: endpoints(),
      policies: [convertK8sNetworkPolicy(policy)],
      profiles: NAMESPACES.map(namespaceProfile),
    });
    expect(
      ev.evaluate({ srcIp: ipOf('x/a'), dstIp: '8.8.8.8', protocol: 'UDP', dstPort: 53 }).allowed,
    ).toBe(true);
    expect(
      ev.evaluate({ srcIp: ipOf('x/a'), dstIp: '8.8.8.8', protocol: 'TCP', dstPort: 443 }).allowed,
    ).toBe(false);
  });

  test('ingress and egress policies both apply to a flow', () => {
    const r = new Reachability(true).expectAllIngress('y/a', false).expectAllEgress('x/b', false);
    r.check(
      [
        np('x-b-no-egress', 'x', {
          podSelector: { matchLabels: { pod: 'b' } },
          policyTypes: ['Egress'],
        }),
        np('y-a-no-ingress', 'y', {
          podSelector: { matchLabels: { pod: 'a' } },
          policyTypes: ['Ingress'],
        }),
      ],
      80,
    );
  });

  test('policyTypes default: egress rules present make it an Egress policy too', () => {
    const p = convertK8sNetworkPolicy(np('both', 'x', { podSelector: {}, egress: [{}] }));
    expect(p.spec.types).toEqual(['Ingress', 'Egress']);
    expect(p.spec.ingress).toEqual([]); // Ingress without rules: deny all ingress
    const r = new Reachability(true);
    for (const q of PODS) r.expectAllIngress(`x/${q}`, false);
    r.check([np('both', 'x', { podSelector: {}, egress: [{}] })], 80);
  });

  test('matchExpressions: Exists and DoesNotExist', () => {
    const r = new Reachability(true).expectAllIngress('x/a', false);
    for (const from of ALL) if (!from.endsWith('/c')) r.expect(from, 'x/a', true);
    r.check(
      [
        np('a-exists', 'x', {
          podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['a'] }] },
          ingress: [
            {
              from: [
                {
                  namespaceSelector: {},
                  podSelector: {
                    matchExpressions: [
                      { key: 'pod', operator: 'NotIn', values: ['c'] },
                      { key: 'missing', operator: 'DoesNotExist' },
                    ],
                  },
                },
              ],
            },
          ],
        }),
      ],
      80,
    );
  });
});

test('the truth-table harness reports every mismatch', () => {
  expect(() => new Reachability(true).check([denyAllIngress('x')], 80)).toThrow(
    /24 wrong[\s\S]*x\/b -> x\/a: expected allowed, got denied/,
  );
});
