import { BUILTIN, age, parsePath, toTable, wantsTable } from '../src';
import { applyPatch, mergePatch } from '../src/patch';
import { parseLabelSelector } from '../src/selector';
import { resourceList } from '../src/discovery';

test('parsePath splits core and group paths', () => {
  expect(parsePath('/api/v1/namespaces/x/pods/p')).toEqual({
    group: '',
    version: 'v1',
    rest: ['namespaces', 'x', 'pods', 'p'],
  });
  expect(parsePath('/apis/networking.k8s.io/v1/networkpolicies')).toEqual({
    group: 'networking.k8s.io',
    version: 'v1',
    rest: ['networkpolicies'],
  });
  expect(parsePath('/healthz')).toBeUndefined();
});

test('age prints as kubectl does', () => {
  const now = Date.parse('2026-01-02T00:00:00Z');
  expect(age('2026-01-01T23:59:55Z', now)).toBe('5s');
  expect(age('2026-01-01T23:50:00Z', now)).toBe('10m');
  expect(age('2025-12-30T00:00:00Z', now)).toBe('3d');
});

test('Table only when asked first in Accept', () => {
  expect(wantsTable('application/json;as=Table;v=v1;g=meta.k8s.io,application/json')).toBe(true);
  expect(wantsTable('application/json')).toBe(false);
  const t = toTable([{ metadata: { name: 'a', creationTimestamp: '2026-01-01T00:00:00Z' } }], '7');
  expect(t).toMatchObject({ kind: 'Table', metadata: { resourceVersion: '7' } });
});

test('discovery lists pods/status and every built-in of a group version', () => {
  const core = resourceList('', 'v1') as { resources: { name: string }[] };
  expect(core.resources.map((r) => r.name)).toEqual(
    expect.arrayContaining([
      'namespaces',
      'pods',
      'pods/status',
      'nodes',
      'services',
      'endpoints',
      'serviceaccounts',
    ]),
  );
  expect(resourceList('nope', 'v1')).toBeUndefined();
  expect(BUILTIN.find((t) => t.kind === 'NetworkPolicy')?.group).toBe('networking.k8s.io');
});

test('merge patch (RFC 7386) deletes on null and merges maps', () => {
  expect(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: null, b: { c: 5 }, e: [1] })).toEqual({
    b: { c: 5, d: 3 },
    e: [1],
  });
});

test('a strategic merge patch with a list is refused, not treated as a merge patch', () => {
  expect(() =>
    applyPatch('application/strategic-merge-patch+json', {}, { spec: { x: [1] } }),
  ).toThrow(/at \.spec\.x/);
});

test('label selectors', () => {
  const sel = parseLabelSelector('a=1,b in (x, y),!c');
  expect(sel({ a: '1', b: 'y' })).toBe(true);
  expect(sel({ a: '1', b: 'z' })).toBe(false);
  expect(sel({ a: '1', b: 'x', c: '' })).toBe(false);
  expect(() => parseLabelSelector('a=(')).toThrow(/unable to parse requirement/);
});
