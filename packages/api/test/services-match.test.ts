// A rule's `services` match (Calico's ServiceMatch): accepted where Calico accepts it and
// refused where it refuses it, each refusal naming the field, with Calico's words (the CEL
// rules on Rule / EntityRule and validate(Global)NetworkPolicySpec). Calico's own table
// rows are in calico-validator-policy.cases.ts (3532-3859); these add the paths.
import { parseResource, ValidationError } from '../src';

const svc = { name: 'web', namespace: 'shop' };

function problems(kind: 'NetworkPolicy' | 'GlobalNetworkPolicy', spec: unknown): string[] {
  try {
    parseResource({
      apiVersion: 'projectcalico.org/v3',
      kind,
      metadata: { name: 'p', ...(kind === 'NetworkPolicy' ? { namespace: 'shop' } : {}) },
      spec,
    });
    return [];
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    // without the "<Kind> <name>: " prefix
    return e.problems.map((p) => p.replace(/^[^:]*: /, ''));
  }
}

const ROWS: Array<[string, 'NetworkPolicy' | 'GlobalNetworkPolicy', unknown, string[]]> = [
  [
    'egress destination, namespace defaults to the policy',
    'NetworkPolicy',
    { egress: [{ action: 'Allow', destination: { services: { name: 'web' } } }] },
    [],
  ],
  [
    'ingress source with source ports and a protocol',
    'NetworkPolicy',
    {
      ingress: [{ action: 'Allow', protocol: 'TCP', source: { services: svc, ports: [1024] } }],
    },
    [],
  ],
  [
    'ingress source with destination ports',
    'NetworkPolicy',
    {
      ingress: [
        {
          action: 'Allow',
          protocol: 'TCP',
          source: { services: svc },
          destination: { ports: [80] },
        },
      ],
    },
    [],
  ],
  [
    'GNP egress destination with a namespace',
    'GlobalNetworkPolicy',
    { egress: [{ action: 'Allow', destination: { services: svc } }] },
    [],
  ],
  [
    'an empty namespace is "the policy\'s"',
    'NetworkPolicy',
    { egress: [{ action: 'Allow', destination: { services: { name: 'web', namespace: '' } } }] },
    [],
  ],
  [
    'GNP without a namespace',
    'GlobalNetworkPolicy',
    { ingress: [{ action: 'Allow', source: { services: { name: 'web' } } }] },
    ['spec.ingress[0].source.services.namespace: must specify a namespace'],
  ],
  [
    'no name',
    'NetworkPolicy',
    { egress: [{ action: 'Allow', destination: { services: { namespace: 'shop' } } }] },
    ['spec.egress[0].destination.services.name: services must specify a service name'],
  ],
  [
    'a name that is not a DNS subdomain',
    'NetworkPolicy',
    { egress: [{ action: 'Allow', destination: { services: { name: 'Web_1' } } }] },
    ['spec.egress[0].destination.services.name: is not a Service name'],
  ],
  [
    'egress source',
    'NetworkPolicy',
    { egress: [{ action: 'Allow', source: { services: svc } }] },
    ['spec.egress[0].source.services: not allowed in egress rule source'],
  ],
  [
    'ingress destination',
    'NetworkPolicy',
    { ingress: [{ action: 'Allow', destination: { services: svc } }] },
    ['spec.ingress[0].destination.services: not allowed in ingress rule destination'],
  ],
  [
    'destination ports beside it',
    'NetworkPolicy',
    {
      egress: [{ action: 'Allow', protocol: 'TCP', destination: { services: svc, ports: [80] } }],
    },
    ['spec.egress[0].destination.ports: ports and notPorts cannot be specified with services'],
  ],
  [
    'notSelector beside it',
    'NetworkPolicy',
    { egress: [{ action: 'Allow', destination: { services: svc, notSelector: 'a == "b"' } }] },
    [
      'spec.egress[0].destination.services: cannot specify Selector/NotSelector and Services on the same rule',
    ],
  ],
  [
    'serviceAccounts (even empty) beside it',
    'NetworkPolicy',
    { ingress: [{ action: 'Allow', source: { services: svc, serviceAccounts: {} } }] },
    [
      'spec.ingress[0].source.services: cannot specify ServiceAccounts and Services on the same rule',
    ],
  ],
  [
    'an unknown field in it',
    'NetworkPolicy',
    { ingress: [{ action: 'Allow', source: { services: { ...svc, port: 80 } } }] },
    ['spec.ingress[0].source.services: Unrecognized key: "port"'],
  ],
];

test.each(ROWS)('services: %s (%s)', (_what, kind, spec, expected) => {
  expect(problems(kind, spec)).toEqual(expected);
});
