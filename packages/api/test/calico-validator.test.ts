// libcalico-go's validator table (see the two cases files: policy and BGP kinds; metadata,
// endpoints and configuration kinds) run through parseResource: what Calico accepts is
// accepted, what it refuses is refused with a message naming the field, and what tortie
// does not implement is refused saying so.
import { parseResource, ValidationError } from '../src';
import { ROWS as BGP_FILTER_ROWS } from './calico-validator-bgpfilter.cases';
import { ROWS as POLICY_ROWS } from './calico-validator-policy.cases';
import { ROWS as RESOURCE_ROWS } from './calico-validator-resources.cases';

type Manifest = { name?: string; labels?: unknown; annotations?: unknown; spec: unknown };
const ROWS: Array<[string, string, Manifest, boolean | 'unsupported']> = [
  ...POLICY_ROWS,
  ...RESOURCE_ROWS,
  ...BGP_FILTER_ROWS,
];

const NAMESPACED = new Set(['WorkloadEndpoint', 'NetworkSet', 'NetworkPolicy']);

function doc(kind: string, m: Manifest) {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind,
    metadata: {
      name: m.name ?? 'x',
      ...(NAMESPACED.has(kind) ? { namespace: 'default' } : {}),
      ...(m.labels ? { labels: m.labels } : {}),
      ...(m.annotations ? { annotations: m.annotations } : {}),
    },
    spec: m.spec,
  };
}

function problems(kind: string, m: Manifest): string[] {
  try {
    parseResource(doc(kind, m));
    return [];
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return e.problems;
  }
}

test.each(ROWS)('%s (%s)', (_d, kind, manifest, expected) => {
  const found = problems(kind, manifest);
  if (expected === true) expect(found).toEqual([]);
  else if (expected === false) {
    expect(found.length).toBeGreaterThan(0);
    // every problem names a field path under metadata or spec
    for (const p of found) expect(p).toMatch(/^[^:]*: (metadata|spec)\b/);
  } else {
    expect(found.length).toBeGreaterThan(0);
    for (const p of found) expect(p).toMatch(/: tortie does not support /);
  }
});

// libcalico-go crd_validation_test.go (BGPPeerSpec's CEL rules): the message each names
const peerSpec = (spec: object) => ({ spec });
test.each([
  [
    'localWorkloadSelector without asNumber',
    { localWorkloadSelector: "color == 'red'" },
    'asNumber is required when localWorkloadSelector is set',
  ],
  [
    'localWorkloadSelector with peerIP',
    { localWorkloadSelector: "color == 'red'", asNumber: 65401, peerIP: '10.0.0.1' },
    'peerIP must be empty when localWorkloadSelector is set',
  ],
  [
    'localWorkloadSelector with peerSelector',
    { localWorkloadSelector: "color == 'red'", asNumber: 65401, peerSelector: 'has(label)' },
    'peerSelector must be empty when localWorkloadSelector is set',
  ],
  [
    'a localWorkloadSelector that does not parse',
    { localWorkloadSelector: "color == 'red", asNumber: 65401 },
    'spec.localWorkloadSelector',
  ],
])('BGPPeer %s: refused, saying so', (_d, spec, message) => {
  const found = problems('BGPPeer', peerSpec(spec));
  expect(found.join('\n')).toContain(message);
});
