// libcalico-go's validator table (see the cases file) run through parseResource: what
// Calico accepts is accepted, what it refuses is refused with a message naming the field.
import { parseResource, ValidationError } from '../src';
import { ROWS } from './calico-validator-resources.cases';

const NAMESPACED = new Set(['WorkloadEndpoint', 'NetworkSet', 'NetworkPolicy']);

function doc(kind: string, m: (typeof ROWS)[number][2]) {
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

function problems(kind: string, m: (typeof ROWS)[number][2]): string[] {
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
