// The Kubernetes network-policy conformance scenarios (upstream e2e "netpol": namespaces
// x, y, z; pods a, b, c in each, labelled pod=<name>, namespaces ns=<name>; ports 80
// and 81 over TCP, UDP and SCTP, each a named container port serve-<port>-<protocol>)
// as data: the policies and, per port and protocol, the expected reachability matrix.
// One table, two harnesses: netpol.test.ts runs it through the reference evaluator,
// e2e/kubectl-netpol.test.ts through kubectl on real pods in a lab cluster.
import type { K8sNetworkPolicy, Protocol } from '../src';

export const NAMESPACES = ['x', 'y', 'z'];
export const PODS = ['a', 'b', 'c'];
/** Every pod as "<namespace>/<pod>". */
export const ALL = NAMESPACES.flatMap((ns) => PODS.map((p) => `${ns}/${p}`));
/** The ports each pod serves (upstream: 80 and 81); named serve-<port>-<protocol>. */
export const SERVED_PORTS = [80, 81];
export const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;

/** Upstream's Reachability: the expected matrix, with a default and overrides. */
export class Reachability {
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
  allowed(from: string, to: string): boolean {
    return this.want.get(`${from}>${to}`)!;
  }
}

/**
 * Compares what a harness observed with what is expected over every ordered pair (a pod
 * talking to itself is not policed and is skipped): undefined when they agree, otherwise
 * the grid (. allowed, X denied, ! wrong) and each wrong pair.
 */
export function reachabilityDiff(
  want: Reachability,
  got: (from: string, to: string) => boolean,
  label: string,
): string | undefined {
  const wrong: string[] = [];
  const grid = [`${label}  ${ALL.map((p) => p.padEnd(4)).join('')}`];
  for (const from of ALL) {
    let row = `${from.padEnd(8)}`;
    for (const to of ALL) {
      if (from === to) {
        row += '-   ';
        continue;
      }
      const g = got(from, to);
      const w = want.allowed(from, to);
      row += g === w ? (g ? '.   ' : 'X   ') : g ? '!.  ' : '!X  ';
      if (g !== w)
        wrong.push(
          `${from} -> ${to}: expected ${w ? 'allowed' : 'denied'}, got ${g ? 'allowed' : 'denied'}`,
        );
    }
    grid.push(row);
  }
  if (!wrong.length) return undefined;
  return `${wrong.length} wrong (. allowed, X denied, ! wrong)\n${grid.join('\n')}\n${wrong.join('\n')}`;
}

export const np = (
  name: string,
  namespace: string,
  spec: K8sNetworkPolicy['spec'],
): K8sNetworkPolicy => ({
  metadata: { name, namespace },
  spec,
});
export const denyAllIngress = (ns: string) =>
  np('deny-all', ns, { podSelector: {}, policyTypes: ['Ingress'] });

export interface Check {
  port: number;
  protocol: Protocol;
  want: Reachability;
}

export interface Scenario {
  name: string;
  /** The policies; `ip` gives a pod's address (for ipBlock peers). */
  policies: (ip: (pod: string) => string) => K8sNetworkPolicy[];
  checks: Check[];
}

const check = (want: Reachability, port: number, protocol: Protocol = 'TCP'): Check => ({
  port,
  protocol,
  want,
});

const aNamed81 = np('a-named-81', 'x', {
  podSelector: { matchLabels: { pod: 'a' } },
  ingress: [{ ports: [{ port: 'serve-81-tcp' }] }],
});
const aRange = np('a-range', 'x', {
  podSelector: { matchLabels: { pod: 'a' } },
  ingress: [{ ports: [{ protocol: 'TCP', port: 80, endPort: 81 }] }],
});
const aUdp = np('a-udp', 'x', {
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
/** x/a may send only to namespace y, plus DNS anywhere. */
export const EGRESS_TO_Y_AND_DNS = np('a-egress', 'x', {
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

function scenarios(): Scenario[] {
  const fixed =
    (...policies: K8sNetworkPolicy[]) =>
    () =>
      policies;
  const allowAll = () => new Reachability(true);
  const xaDenied = () => new Reachability(true).expectAllIngress('x/a', false);
  const out: Scenario[] = [];
  out.push({
    name: 'no policy: everything is allowed',
    policies: fixed(),
    checks: [check(allowAll(), 80)],
  });

  const denyX = new Reachability(true);
  for (const p of PODS) denyX.expectAllIngress(`x/${p}`, false);
  out.push({
    name: 'deny all ingress in x',
    policies: fixed(denyAllIngress('x')),
    checks: [check(denyX, 80), check(denyX, 81, 'UDP')],
  });

  out.push({
    name: 'allow all ingress on top of deny all: policies add up',
    policies: fixed(denyAllIngress('x'), np('allow-all', 'x', { podSelector: {}, ingress: [{}] })),
    checks: [check(allowAll(), 80)],
  });

  const egressX = new Reachability(true);
  for (const p of PODS) egressX.expectAllEgress(`x/${p}`, false);
  out.push({
    name: 'deny all egress in x',
    policies: fixed(np('deny-egress', 'x', { podSelector: {}, policyTypes: ['Egress'] })),
    checks: [check(egressX, 80)],
  });

  out.push({
    name: 'pod selector: x/a only from x/b',
    policies: fixed(
      np('a-from-b', 'x', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }],
      }),
    ),
    checks: [check(xaDenied().expect('x/b', 'x/a', true), 80)],
  });

  const fromY = xaDenied();
  for (const p of PODS) fromY.expect(`y/${p}`, 'x/a', true);
  out.push({
    name: 'namespace selector: x/a only from namespace y',
    policies: fixed(
      np('a-from-y', 'x', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
      }),
    ),
    checks: [check(fromY, 80)],
  });

  const fromZ = xaDenied();
  for (const p of PODS) fromZ.expect(`z/${p}`, 'x/a', true);
  out.push({
    name: 'namespace selector on kubernetes.io/metadata.name with NotIn',
    policies: fixed(
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
    ),
    checks: [check(fromZ, 80)],
  });

  out.push({
    name: 'pod and namespace selector in one peer: only y/b',
    policies: fixed(
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
    ),
    checks: [check(xaDenied().expect('y/b', 'x/a', true), 80)],
  });

  const yOrB = xaDenied().expect('x/b', 'x/a', true);
  for (const p of PODS) yOrB.expect(`y/${p}`, 'x/a', true);
  out.push({
    name: 'pod selector or namespace selector as two peers: y/* and x/b',
    policies: fixed(
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
    ),
    checks: [check(yOrB, 80)],
  });

  const notY = new Reachability(true);
  for (const p of PODS) notY.expect(`y/${p}`, 'x/a', false);
  out.push({
    name: "ipBlock with except: x/a from anywhere except namespace y's pod addresses",
    policies: (ip) => [
      np('a-from-cidr', 'x', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          {
            from: [
              { ipBlock: { cidr: '0.0.0.0/0', except: PODS.map((p) => `${ip(`y/${p}`)}/32`) } },
            ],
          },
        ],
      }),
    ],
    checks: [check(notY, 80)],
  });

  out.push({
    name: 'named port: x/a only on serve-81-tcp',
    policies: fixed(aNamed81),
    checks: [check(allowAll(), 81), check(xaDenied(), 80), check(xaDenied(), 81, 'UDP')],
  });

  out.push({
    name: 'endPort: x/a on TCP 80-81 only',
    policies: fixed(aRange),
    checks: [check(allowAll(), 80), check(allowAll(), 81), check(xaDenied(), 82)],
  });

  out.push({
    name: 'UDP and SCTP are told apart from TCP',
    policies: fixed(aUdp),
    checks: [
      check(allowAll(), 80, 'UDP'),
      check(allowAll(), 81, 'SCTP'),
      check(xaDenied(), 80, 'TCP'),
      check(xaDenied(), 80, 'SCTP'),
    ],
  });

  const toY = new Reachability(true).expectAllEgress('x/a', false);
  for (const p of PODS) toY.expect('x/a', `y/${p}`, true);
  out.push({
    name: 'egress to namespace y plus DNS anywhere',
    policies: fixed(EGRESS_TO_Y_AND_DNS),
    checks: [check(toY, 80), check(allowAll(), 53, 'UDP')],
  });

  out.push({
    name: 'ingress and egress policies both apply to a flow',
    policies: fixed(
      np('x-b-no-egress', 'x', {
        podSelector: { matchLabels: { pod: 'b' } },
        policyTypes: ['Egress'],
      }),
      np('y-a-no-ingress', 'y', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Ingress'],
      }),
    ),
    checks: [
      check(
        new Reachability(true).expectAllIngress('y/a', false).expectAllEgress('x/b', false),
        80,
      ),
    ],
  });

  const bothDefault = new Reachability(true);
  for (const q of PODS) bothDefault.expectAllIngress(`x/${q}`, false);
  out.push({
    name: 'policyTypes default: egress rules present make it an Egress policy too',
    policies: fixed(np('both', 'x', { podSelector: {}, egress: [{}] })),
    checks: [check(bothDefault, 80)],
  });

  const exists = xaDenied();
  for (const from of ALL) if (!from.endsWith('/c')) exists.expect(from, 'x/a', true);
  out.push({
    name: 'matchExpressions: Exists and DoesNotExist',
    policies: fixed(
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
    ),
    checks: [check(exists, 80)],
  });
  return out;
}

export const SCENARIOS: Scenario[] = scenarios();

/** Every port and protocol some check probes (each pod serves them all). */
export function probedPorts(): Array<{ port: number; protocol: Protocol }> {
  const seen = new Map<string, { port: number; protocol: Protocol }>();
  for (const s of SCENARIOS)
    for (const c of s.checks)
      seen.set(`${c.protocol}/${c.port}`, { port: c.port, protocol: c.protocol });
  return [...seen.values()];
}
