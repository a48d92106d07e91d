// The selector language against Calico's documented semantics, error columns,
// canonical printing, and print/reparse properties.
import fc from 'fast-check';
import {
  SelectorError,
  canonicalSelector,
  matches,
  parseSelector,
  printSelector,
  selectorKeys,
} from '../src/selector';

const L = { app: 'web', tier: 'frontend', env: 'prod', 'k8s.io/name': "o'brien" };

describe('matching (Calico semantics)', () => {
  test.each<[string, boolean]>([
    ["app == 'web'", true],
    ['app == "web"', true],
    ["app == 'db'", false],
    ["missing == 'x'", false],
    ["app != 'db'", true],
    ["app != 'web'", false],
    ["missing != 'x'", true], // != is true when the label is absent
    ["app in {'web', 'db'}", true],
    ["app in {'db'}", false],
    ["missing in {'x'}", false],
    ["app not in {'db'}", true],
    ["app not in {'web'}", false],
    ["missing not in {'x'}", true], // not in is true when the label is absent
    ['app in {}', false],
    ['missing not in {}', true],
    ['has(app)', true],
    ['has(missing)', false],
    ['!has(missing)', true],
    ['!has(app)', false],
    ['all()', true],
    ['', true], // empty selector selects everything
    ['global()', false],
    ["app contains 'e'", true],
    ["app starts with 'we'", true],
    ["app ends with 'eb'", true],
    ["app ends with 'we'", false],
    ["missing contains ''", false],
    ['k8s.io/name == "o\'brien"', true],
    // precedence: ! binds tighter than &&, which binds tighter than ||
    ["!has(app) && env == 'prod'", false],
    ["!(has(app) && env == 'dev')", true],
    ["app == 'db' && env == 'prod' || tier == 'frontend'", true],
    ["app == 'db' && (env == 'prod' || tier == 'frontend')", false],
    ["app == 'web' || env == 'dev' && tier == 'backend'", true],
    ["(app == 'web' || env == 'dev') && tier == 'backend'", false],
    ['!!has(app)', true],
    ["  app=='web'&&tier=='frontend'  ", true],
  ])('%s -> %s', (sel, want) => {
    expect(matches(parseSelector(sel), L)).toBe(want);
  });

  test('global() matches only non-namespaced objects', () => {
    expect(matches(parseSelector('global()'), {}, { global: true })).toBe(true);
    expect(matches(parseSelector('global()'), {}, {})).toBe(false);
  });
});

describe('errors point at the offending column', () => {
  test.each<[string, number, RegExp]>([
    ['app == ', 8, /expected a quoted value, found the end/],
    ["app = 'x'", 5, /unexpected character "="/],
    ["app == 'x", 8, /unterminated string/],
    ["app == 'x' &&", 14, /expected a label key/],
    ["(app == 'x'", 12, /expected "\)"/],
    ["app in {'a' 'b'}", 13, /expected "," or "}"/],
    ["app is 'x'", 5, /expected an operator/],
    ['has(app', 8, /expected "\)"/],
    ["app == 'x' app == 'y'", 12, /expected "&&", "\|\|" or the end/],
  ])('%s', (sel, column, reason) => {
    let err: unknown;
    try {
      parseSelector(sel);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SelectorError);
    expect((err as SelectorError).column).toBe(column);
    expect((err as SelectorError).message).toMatch(reason);
    expect((err as SelectorError).message).toContain(
      `selector ${JSON.stringify(sel)} at column ${column}`,
    );
  });
});

describe('canonical printing', () => {
  test.each<[string, string]>([
    ['app=="web"', "app == 'web'"],
    ["app in {'b','a','b'}", "app in {'a', 'b'}"],
    ["b == '1' && a == '2'", "a == '2' && b == '1'"],
    ["(a == '1' && b == '2') && c == '3'", "a == '1' && b == '2' && c == '3'"],
    ["a == '1' || b == '2' && c == '3'", "a == '1' || (b == '2' && c == '3')"],
    ['!(has(a) || has(b))', '!(has(a) || has(b))'],
    ['', 'all()'],
  ])('%s -> %s', (input, want) => {
    expect(canonicalSelector(input)).toBe(want);
    expect(canonicalSelector(want)).toBe(want); // idempotent
  });

  test('keys a selector reads', () => {
    expect([...selectorKeys(parseSelector("a == 'x' && !has(b) || c in {'1'}"))].sort()).toEqual([
      'a',
      'b',
      'c',
    ]);
  });
});

describe('properties', () => {
  const key = fc.constantFrom('a', 'b', 'c', 'x/y');
  const val = fc.constantFrom('1', '2', "it's", '');
  const leaf = fc.oneof(
    fc
      .tuple(key, fc.constantFrom('==', '!=', 'contains', 'starts with', 'ends with'), val)
      .map(([k, op, v]) => `${k} ${op} ${v.includes("'") ? `"${v}"` : `'${v}'`}`),
    fc
      .tuple(key, fc.constantFrom('in', 'not in'), fc.array(val, { maxLength: 3 }))
      .map(
        ([k, op, vs]) =>
          `${k} ${op} {${vs.map((v) => (v.includes("'") ? `"${v}"` : `'${v}'`)).join(',')}}`,
      ),
    key.map((k) => `has(${k})`),
    fc.constant('all()'),
  );
  const expr: fc.Arbitrary<string> = fc.letrec((tie) => ({
    e: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      tie('e').map((x) => `!(${x})`),
      fc
        .tuple(tie('e'), fc.constantFrom('&&', '||'), tie('e'))
        .map(([a, op, b]) => `(${a}) ${op} (${b})`),
    ),
  })).e as fc.Arbitrary<string>;
  const labels = fc.dictionary(key, val, { maxKeys: 4 });

  test('print then reparse gives the same matches', () => {
    fc.assert(
      fc.property(expr, fc.array(labels, { minLength: 1, maxLength: 8 }), (text, ls) => {
        const s = parseSelector(text);
        const again = parseSelector(printSelector(s));
        for (const l of ls) expect(matches(again, l)).toBe(matches(s, l));
        expect(printSelector(again)).toBe(printSelector(s));
      }),
      { numRuns: 500 },
    );
  });

  test('reordered && / || operands and set members print the same', () => {
    fc.assert(
      fc.property(
        fc.array(leaf, { minLength: 2, maxLength: 4 }),
        fc.constantFrom('&&', '||'),
        (parts, op) => {
          const a = canonicalSelector(parts.join(` ${op} `));
          const b = canonicalSelector([...parts].reverse().join(` ${op} `));
          expect(a).toBe(b);
        },
      ),
    );
  });
});
