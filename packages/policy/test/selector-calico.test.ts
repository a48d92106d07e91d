// libcalico-go's selector parser tables (lib/selector/parser/parser_test.go:
// selectorTests, badSelectors, canonicalisationTests), transcribed as data, plus the
// tokenizer's edges (lib/selector/tokenizer/tokenizer.go): what it accepts, what it
// refuses. The canonical texts differ in quoting (we print single quotes where
// Calico prints double), so canonicalisation is checked as "parses to the same tree".
import { matches, parseSelector, printSelector } from '../src';

type L = Record<string, string>;
// [selector, labels it matches, labels it does not match]
const SELECTOR_TESTS: Array<[string, L[], L[]]> = [
  [`a == "b"`, [{ a: 'b' }, { a: 'b', c: 'd' }], [{}, { a: 'c' }, { c: 'd' }]],
  [
    `a == "b" && c == "d"`,
    [{ a: 'b', c: 'd' }],
    [{}, { a: 'b', c: 'e' }, { a: 'c', c: 'd' }, { c: 'd' }, { a: 'b' }],
  ],
  [
    `a == "b" || c == "d"`,
    [{ a: 'b', c: 'd' }, { a: 'b' }, { c: 'd' }],
    [{}, { a: 'e', c: 'e' }, { c: 'e' }, { a: 'e' }],
  ],
  [`a in {"'", '"', "c"}`, [{ a: 'c' }, { a: '"' }, { a: "'" }], [{}, { a: 'e' }]],
  [`a not in {"'", '"', "c"}`, [{}, { a: 'e' }], [{ a: 'c' }, { a: '"' }, { a: "'" }]],
  [`a == 'a'`, [{ a: 'a' }], []],
  [`a == "a"`, [{ a: 'a' }], []],
  [`a != "b"`, [{ a: 'a' }], []],
  [`a != "a"`, [{}], []],
  [
    `a contains "a"`,
    [{ a: 'a' }, { a: 'bab' }, { a: 'aaa', b: 'c' }],
    [{}, { a: 'b' }, { b: 'aaa' }],
  ],
  [
    `a starts with "a"`,
    [{ a: 'a' }, { a: 'abb' }, { a: 'aaa', b: 'c' }],
    [{}, { a: 'b' }, { a: 'baa' }, { b: 'aaa' }],
  ],
  [
    `a ends with "a"`,
    [{ a: 'a' }, { a: 'bba' }, { a: 'aaa', b: 'c' }],
    [{}, { a: 'b' }, { a: 'aab' }, { b: 'aaa' }],
  ],
  [`a in {"a"}`, [{ a: 'a' }], []],
  [`!a in {"a"}`, [{ a: 'b' }], []],
  [`a in {"a", "b"}`, [{ a: 'a' }], []],
  [`a in {"a", "b"}`, [{ a: 'b' }], []],
  [`a not in {"d", "e"}`, [{ a: 'a' }], []],
  [`has(a)`, [{ a: 'b' }], []],
  [`!has(a)`, [{ b: 'b' }], []],
  [``, [{}], []],
  [` `, [{}], []],
  [``, [{ a: 'b' }], []],
  [`all()`, [{}], []],
  [` all()`, [{}], []],
  [` all()`, [{ a: 'b' }], []],
  [`a == 'a'`, [], [{ a: 'b' }]],
  [`a == 'a'`, [], [{}]],
  [`a != "a"`, [], [{ a: 'a' }]],
  [`a != 'a'`, [], [{ a: 'a' }]],
  [`a in {"a"}`, [], [{ a: 'b' }]],
  [`a not in {"a"}`, [], [{ a: 'a' }]],
  [`a in {"a", "b"}`, [], [{ a: 'c' }]],
  [`has(b)`, [], [{ a: 'b' }]],
  [`!!has(b)`, [], [{ a: 'b' }]],
  [`! has(a)`, [], [{ a: 'b' }]],
  [`!has(a)`, [], [{ a: 'b' }]],
  [`!!! has(a)`, [], [{ a: 'b' }]],
  [`!!!has(a)`, [], [{ a: 'b' }]],
  [`!! ! has(a)`, [], [{ a: 'b' }]],
  [`! !!has(a)`, [], [{ a: 'b' }]],
  [`a == 'a1' && b == 'b1'`, [{ a: 'a1', b: 'b1' }], []],
  [`a == 'a1' && b != 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`a != 'a1' && b == 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`a != 'a1' && b != 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`a != 'a1' && !b == 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`!a == 'a1' && b == 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`has(a) && !has(b)`, [{ a: 'a' }], []],
  [`!has(b) && has(a)`, [{ a: 'a' }], []],
  [`!(!has(a) || has(b))`, [{ a: 'a' }], []],
  [`!(has(b) || !has(a))`, [{ a: 'a' }], []],
  [`a == 'a1' || b == 'b1'`, [{ a: 'a1', b: 'b1' }], []],
  [`a == 'a1' || b != 'b1'`, [{ a: 'a1', b: 'b1' }], []],
  [`a != 'a1' || b == 'b1'`, [{ a: 'a1', b: 'b1' }], []],
  [`a != 'a1' || b != 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`! a == 'a1' || ! b == 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
];

const BAD_SELECTORS = [
  'b == b', // label == label
  'b contains b',
  'b starts with b',
  'b ends with b',
  "'b1' == b", // literal on lhs
  'b', // bare label
  'a b',
  '!',
  `foo == "bar" &`,
  `foo == "bar" |`,
  `foo != ||`,
  `foo in {"", ||`,
  `foo in ""`, // a set literal is expected
  `"FOO`,
  `"FOO'`,
  `'FOO`,
  `(`,
  `(a == "foo"`,
  `)`,
  `()`,
  `%`,
  `a == "b" && %`,
  `a == "b" || %`,
  `a `,
  `has(foo) &&`,
];

// [input, an equivalent selector in Calico's canonical form]
const CANONICAL: Array<[string, string]> = [
  ['', 'all()'],
  [' all() ', 'all()'],
  [' (all() )', 'all()'],
  [`! (has( b)||! has(a ))`, '!(has(b) || !has(a))'],
  [`! (a == "b"&&! c != "d")`, `!(a == "b" && !c != "d")`],
  [`a == "'"`, `a == "'"`],
  [`a == '"'`, `a == '"'`],
  [`a contains '"'`, `a contains '"'`],
  [`a contains "'"`, `a contains "'"`],
  [`a startswith '"'`, `a starts with '"'`],
  [`a endswith "'"`, `a ends with "'"`],
  [`a!='"'`, `a != '"'`],
  [`a in {"d"}`, `a in {"d"}`],
  [`a in {"a", "b"}`, `a in {"a", "b"}`],
  [`a in {"d", "a", "b"}`, `a in {"a", "b", "d"}`],
  [`a in {"z", "x", "y", "a"}`, `a in {"a", "x", "y", "z"}`],
  [`a in {"z", "z", "x", "y", "x", "a"}`, `a in {"a", "x", "y", "z"}`],
];

describe("libcalico-go's parser tables", () => {
  test.each(SELECTOR_TESTS)('%s', (sel, yes, no) => {
    const s = parseSelector(sel);
    for (const l of yes) expect(matches(s, l)).toBe(true);
    for (const l of no) expect(matches(s, l)).toBe(false);
  });

  test.each(BAD_SELECTORS)('refused: %s', (sel) => {
    expect(() => parseSelector(sel)).toThrow();
  });

  test.each(CANONICAL)('%s reads as %s', (input, canonical) => {
    expect(printSelector(parseSelector(input))).toBe(printSelector(parseSelector(canonical)));
  });
});

describe("libcalico-go's tokenizer edges", () => {
  test.each([
    ['a notin {"x"}', 'a not in {"x"}'],
    ['a not   in {"x"}', 'a not in {"x"}'],
    ['a startswith "x"', 'a starts with "x"'],
    ['a in {"x",}', 'a in {"x"}'], // a trailing comma
    ['a in {}', 'a in {}'],
    ['has( a )', 'has(a)'],
    ['all( )', 'all()'],
    ['\ta == "x"\t', 'a == "x"'], // a tab is whitespace
    ['has == "x"', 'has == "x"'], // "has" not followed by "(" is a label
    ['a.b/c-d_e == "x"', 'a.b/c-d_e == "x"'],
    ['1a == "x"', '1a == "x"'], // a key may start with a digit
  ])('accepted: %j', (input, same) => {
    expect(printSelector(parseSelector(input))).toBe(printSelector(parseSelector(same)));
  });

  test.each([
    'has (a)', // a space before "(": "has" is a label, and no operator follows
    'all ()',
    'global ()',
    'a ==\n"x"', // a newline is not whitespace
    'a = "x"',
    `${'k'.repeat(513)} == "x"`, // keys are at most 512 characters
    'a in {x}',
    'a notin',
  ])('refused: %j', (sel) => {
    expect(() => parseSelector(sel)).toThrow();
  });
});
