// libcalico-go's validator rows for rules, policies, tiers, pools, reservations, BGP peers
// and nodes (see the cases file) run through parseResource: what Calico accepts is
// accepted, what it refuses is refused with a message naming the field, and what tortie
// does not implement is refused saying so.
import { parseResource, ValidationError } from '../src';
import { ROWS, type Row } from './calico-validator-policy.cases';

function problems(kind: string, m: Row[2]): string[] {
  const doc = {
    apiVersion: 'projectcalico.org/v3',
    kind,
    metadata: {
      name: m.name ?? 'x',
      ...(kind === 'NetworkPolicy' ? { namespace: 'default' } : {}),
    },
    spec: m.spec,
  };
  try {
    parseResource(doc);
    return [];
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return e.problems;
  }
}

test.each(ROWS)('%s (%s)', (_d, kind, manifest, expected) => {
  const found = problems(kind, manifest);
  if (expected === true) expect(found).toEqual([]);
  else {
    expect(found.length).toBeGreaterThan(0);
    // every problem names a field path under metadata or spec
    for (const p of found) expect(p).toMatch(/^[^:]*: (metadata|spec)\b/);
    if (expected === 'unsupported')
      for (const p of found) expect(p).toMatch(/: tortie does not support /);
  }
});
