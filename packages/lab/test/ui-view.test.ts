// The lab page's pure parts: which session and matrix changes become events, and which
// step of a verdict is shown as the deciding one.
import { decidingStep, matrixChanges, sessionChanges, type UiSession } from '../src/ui-view';

const s = (peer: string, up: boolean, state = up ? 'Established' : 'Active'): UiSession => ({
  peer,
  type: 'global',
  state,
  up,
});

test('session events: a new session up, a change either way; nothing for no change', () => {
  expect(sessionChanges('node1', [], [s('10.0.0.1', true), s('10.0.0.2', false)])).toEqual([
    'node1: session with 10.0.0.1 (global) up',
  ]);
  expect(sessionChanges('node1', [s('10.0.0.1', true)], [s('10.0.0.1', false, 'Connect')])).toEqual(
    ['node1: session with 10.0.0.1 (global) down (Connect)'],
  );
  expect(sessionChanges('node1', [s('10.0.0.1', true)], [s('10.0.0.1', true)])).toEqual([]);
});

test('matrix events only for cells that changed (not for cells first seen)', () => {
  expect(
    matrixChanges({ a: { b: true, c: true } }, { a: { b: false, c: true }, d: { a: false } }),
  ).toEqual(['a -> b now blocked']);
});

test('the deciding step: the denying direction, else ingress', () => {
  const deny = decidingStep({
    allowed: false,
    egress: {
      endpoint: 'default/a',
      direction: 'Egress',
      allowed: true,
      steps: [{ profile: 'kns.default', rule: 0, action: 'Allow' }],
    },
    ingress: {
      endpoint: 'default/b',
      direction: 'Ingress',
      allowed: false,
      steps: [{ tier: 'default', policy: 'default/x', rule: 1, action: 'Deny' }],
    },
  });
  expect(deny).toEqual({
    direction: 'ingress',
    endpoint: 'default/b',
    where: 'policy default/x rule 1 (tier default)',
    action: 'Deny',
  });
  const allow = decidingStep({
    allowed: true,
    ingress: {
      endpoint: 'default/b',
      direction: 'Ingress',
      allowed: true,
      steps: [{ profile: 'kns.default', rule: 0, action: 'Allow' }],
    },
  });
  expect(allow?.where).toBe('profile kns.default');
});
