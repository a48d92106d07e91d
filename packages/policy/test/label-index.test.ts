import fc from 'fast-check';
import { LabelIndex, matches, parseSelector } from '../src';

test('matches follow selector and label changes, with start/stop events', () => {
  const events: string[] = [];
  const idx = new LabelIndex<string, string>({
    onMatchStarted: (s, i) => events.push(`+${s}:${i}`),
    onMatchStopped: (s, i) => events.push(`-${s}:${i}`),
  });
  idx.updateLabels('ep1', { app: 'web' });
  idx.updateSelector('web', "app == 'web'");
  idx.updateSelector('notdb', "app != 'db'");
  idx.updateLabels('ep2', { app: 'db' });
  expect([...idx.selected('web')]).toEqual(['ep1']);
  expect([...idx.selected('notdb')]).toEqual(['ep1']);
  idx.updateLabels('ep1', { app: 'db' });
  expect([...idx.selected('web')]).toEqual([]);
  idx.deleteLabels('ep2');
  idx.deleteSelector('notdb');
  expect(events).toEqual(['+web:ep1', '+notdb:ep1', '-web:ep1', '-notdb:ep1']);
});

test('global() follows the item context', () => {
  const idx = new LabelIndex();
  idx.updateSelector('g', 'global()');
  idx.updateLabels('hep', {}, { global: true });
  idx.updateLabels('pod', {});
  expect([...idx.selected('g')]).toEqual(['hep']);
});

test('property: the incremental index equals a full rescan after any sequence of changes', () => {
  const sels = ["a == '1'", "a != '1'", "b in {'1','2'}", 'has(c)', "!has(a) || b == '2'", 'all()'];
  const labels = fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.constantFrom('1', '2'), {
    maxKeys: 3,
  });
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('labels' as const),
      item: fc.integer({ min: 0, max: 4 }),
      labels,
    }),
    fc.record({ kind: fc.constant('delete' as const), item: fc.integer({ min: 0, max: 4 }) }),
    fc.record({
      kind: fc.constant('selector' as const),
      id: fc.integer({ min: 0, max: 3 }),
      text: fc.constantFrom(...sels),
    }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const idx = new LabelIndex<number, number>();
      const items = new Map<number, Record<string, string>>();
      const selectors = new Map<number, string>();
      for (const o of ops) {
        if (o.kind === 'labels') {
          idx.updateLabels(o.item, o.labels);
          items.set(o.item, o.labels);
        } else if (o.kind === 'delete') {
          idx.deleteLabels(o.item);
          items.delete(o.item);
        } else {
          idx.updateSelector(o.id, o.text);
          selectors.set(o.id, o.text);
        }
      }
      for (const [id, text] of selectors) {
        const want = [...items]
          .filter(([, l]) => matches(parseSelector(text), l))
          .map(([i]) => i)
          .sort();
        expect([...idx.selected(id)].sort()).toEqual(want);
      }
    }),
    { numRuns: 300 },
  );
});
