// The chain reference counts both ACL backends keep (only chains something jumps to are
// programmed): first use and last release are reported, and which policy and profile
// chains an endpoint chain jumps to.
import { RefCounts, rulesReferenced } from '../src/dataplane/acl/chain-refs';
import type { TierInfo } from '../src/types';

test('RefCounts: the first use makes the value, the last release returns it and forgets the key', () => {
  const refs = new RefCounts<{ n: number }>();
  let made = 0;
  const make = () => ({ n: ++made });
  expect(refs.use('a', make)).toBe(true);
  expect(refs.use('a', make)).toBe(false);
  expect(refs.use('b', make)).toBe(true);
  expect(made).toBe(2); // one value per key, made once
  expect([...refs.entries()]).toEqual([
    ['a', { n: 1 }],
    ['b', { n: 2 }],
  ]);
  expect(refs.release('a')).toBeUndefined(); // one user left
  expect(refs.get('a')).toEqual({ n: 1 });
  expect(refs.release('a')).toEqual({ n: 1 });
  expect(refs.has('a')).toBe(false);
  // a release without a use changes nothing (and does not go below zero)
  expect(refs.release('a')).toBeUndefined();
  expect(refs.use('a', make)).toBe(true);
  expect([...refs.keys()]).toEqual(['b', 'a']);
  expect([...refs.values()].map((v) => v.n)).toEqual([2, 3]);
});

test('rulesReferenced: each tier’s policies of the direction in order, then profiles when the stage has them', () => {
  const tier = (name: string, ingress: string[], egress: string[]): TierInfo => ({
    name,
    defaultAction: 'deny',
    ingressPolicies: ingress,
    egressPolicies: egress,
  });
  const e = {
    tiers: [
      tier('a', ['a/p1', 'a/p2'], ['a/e1']),
      tier('b', [], ['b/e2']),
      tier('c', ['c/p3'], []),
    ],
    profileIds: ['kns.x', 'ksa.x.default'],
  };
  expect(rulesReferenced({ ...e, direction: 'ingress' }, true)).toEqual([
    { kind: 'policy', id: 'a/p1', direction: 'ingress' },
    { kind: 'policy', id: 'a/p2', direction: 'ingress' },
    { kind: 'policy', id: 'c/p3', direction: 'ingress' },
    { kind: 'profile', id: 'kns.x', direction: 'ingress' },
    { kind: 'profile', id: 'ksa.x.default', direction: 'ingress' },
  ]);
  expect(rulesReferenced({ ...e, direction: 'egress' }, false)).toEqual([
    { kind: 'policy', id: 'a/e1', direction: 'egress' },
    { kind: 'policy', id: 'b/e2', direction: 'egress' },
  ]);
});
