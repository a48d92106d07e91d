// Calico's selector language: parse, print canonically, match against labels.
//
//   expr    := or
//   or      := and ( '||' and )*
//   and     := unary ( '&&' unary )*
//   unary   := '!' unary | '(' or ')' | term
//   term    := 'all()' | 'global()' | 'has(' key ')'
//            | key ( '==' | '!=' ) value | key ['not'] 'in' '{' [value (',' value)*] '}'
//            | key ( 'contains' | 'starts with' | 'ends with' ) value
//
// Semantics (Calico's): `k != v` and `k not in {..}` are true when k is absent;
// `==`, `in`, `contains`, `starts with`, `ends with` need k present.
//
// The text is read as libcalico-go's tokenizer reads it: whitespace is a space or a
// tab only; "all(", "global(" and "has(" are one token (a space before the parenthesis
// makes "has" a label key); two-word operators may be written without the space
// ("notin", "startswith"); a set literal may end with a comma; a key is at most 512
// characters.

export type Selector =
  | { op: 'all' }
  | { op: 'global' }
  | { op: 'has'; key: string }
  | { op: '==' | '!=' | 'contains' | 'starts with' | 'ends with'; key: string; value: string }
  | { op: 'in' | 'not in'; key: string; values: string[] }
  | { op: 'not'; arg: Selector }
  | { op: 'and' | 'or'; args: Selector[] };

export class SelectorError extends Error {
  constructor(
    readonly selector: string,
    /** 1-based column of the problem. */
    readonly column: number,
    readonly reason: string,
  ) {
    super(`selector ${JSON.stringify(selector)} at column ${column}: ${reason}`);
    this.name = 'SelectorError';
  }
}

type Token =
  | { kind: 'key'; text: string; col: number }
  /** "all(", "global(", "has(" written without a space */
  | { kind: 'func'; text: 'all' | 'global' | 'has'; col: number }
  | { kind: 'string'; text: string; col: number }
  | { kind: 'punct'; text: string; col: number }
  | { kind: 'end'; text: ''; col: number };

const KEY = /[A-Za-z0-9_.\-/]/;
const MAX_KEY = 512;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    const col = i + 1;
    const two = src.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '&&' || two === '||') {
      out.push({ kind: 'punct', text: two, col });
      i += 2;
      continue;
    }
    if ('!(){},'.includes(c)) {
      out.push({ kind: 'punct', text: c, col });
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) throw new SelectorError(src, col, `unterminated string starting with ${c}`);
      out.push({ kind: 'string', text: src.slice(i + 1, end), col });
      i = end + 1;
      continue;
    }
    if (KEY.test(c)) {
      let j = i;
      while (j < src.length && KEY.test(src[j])) j++;
      const text = src.slice(i, j);
      if (src[j] === '(' && (text === 'all' || text === 'global' || text === 'has')) {
        out.push({ kind: 'func', text, col });
        i = j + 1;
        continue;
      }
      if (text.length > MAX_KEY)
        throw new SelectorError(src, col, `label too long (over ${MAX_KEY})`);
      out.push({ kind: 'key', text, col });
      i = j;
      continue;
    }
    throw new SelectorError(src, col, `unexpected character ${JSON.stringify(c)}`);
  }
  out.push({ kind: 'end', text: '', col: src.length + 1 });
  return out;
}

class Parser {
  private pos = 0;
  constructor(
    private readonly src: string,
    private readonly toks: Token[],
  ) {}

  private peek(offset = 0): Token {
    return this.toks[Math.min(this.pos + offset, this.toks.length - 1)];
  }

  private fail(t: Token, reason: string): never {
    throw new SelectorError(this.src, t.col, reason);
  }

  private expectPunct(text: string, what = `"${text}"`): void {
    const t = this.peek();
    if (t.kind !== 'punct' || t.text !== text) this.fail(t, `expected ${what}${describe(t)}`);
    this.pos++;
  }

  parse(): Selector {
    if (this.peek().kind === 'end') return { op: 'all' }; // Calico: an empty selector selects everything
    const s = this.or();
    const t = this.peek();
    if (t.kind !== 'end') this.fail(t, `expected "&&", "||" or the end${describe(t)}`);
    return s;
  }

  private or(): Selector {
    const args = [this.and()];
    while (this.peek().kind === 'punct' && this.peek().text === '||') {
      this.pos++;
      args.push(this.and());
    }
    return args.length === 1 ? args[0] : { op: 'or', args };
  }

  private and(): Selector {
    const args = [this.unary()];
    while (this.peek().kind === 'punct' && this.peek().text === '&&') {
      this.pos++;
      args.push(this.unary());
    }
    return args.length === 1 ? args[0] : { op: 'and', args };
  }

  private unary(): Selector {
    const t = this.peek();
    if (t.kind === 'punct' && t.text === '!') {
      this.pos++;
      return { op: 'not', arg: this.unary() };
    }
    if (t.kind === 'punct' && t.text === '(') {
      this.pos++;
      const inner = this.or();
      this.expectPunct(')');
      return inner;
    }
    return this.term();
  }

  private value(): string {
    const t = this.peek();
    if (t.kind !== 'string') this.fail(t, `expected a quoted value${describe(t)}`);
    this.pos++;
    return t.text;
  }

  private term(): Selector {
    const t = this.peek();
    if (t.kind === 'func') {
      this.pos++;
      if (t.text === 'has') {
        const k = this.peek();
        if (k.kind !== 'key') this.fail(k, `expected a label key in has()${describe(k)}`);
        this.pos++;
        this.expectPunct(')');
        return { op: 'has', key: k.text };
      }
      this.expectPunct(')');
      return { op: t.text };
    }
    if (t.kind !== 'key')
      this.fail(t, `expected a label key, "all()", "global()", "has(", "!" or "("${describe(t)}`);
    this.pos++;
    const next = this.peek();
    const key = t.text;
    if (next.kind === 'punct' && (next.text === '==' || next.text === '!=')) {
      this.pos++;
      return { op: next.text, key, value: this.value() };
    }
    if (next.kind === 'key') {
      // two-word operators, with or without the space (libcalico-go takes both)
      const after = this.peek(1);
      const pair = after.kind === 'key' ? `${next.text} ${after.text}` : undefined;
      const op = {
        in: 'in',
        notin: 'not in',
        contains: 'contains',
        startswith: 'starts with',
        endswith: 'ends with',
      }[next.text];
      if (pair === 'not in' || pair === 'starts with' || pair === 'ends with') {
        this.pos += 2;
        return pair === 'not in'
          ? { op: pair, key, values: this.set() }
          : { op: pair, key, value: this.value() };
      }
      if (op === 'in' || op === 'not in') {
        this.pos++;
        return { op, key, values: this.set() };
      }
      if (op !== undefined) {
        this.pos++;
        return { op: op as 'contains' | 'starts with' | 'ends with', key, value: this.value() };
      }
    }
    this.fail(
      next,
      `expected an operator (==, !=, in, not in, contains, starts with, ends with) after "${key}"${describe(next)}`,
    );
  }

  private set(): string[] {
    this.expectPunct('{');
    const values: string[] = [];
    // string, string, ... with an optional trailing comma, as libcalico-go
    for (;;) {
      const t = this.peek();
      if (t.kind === 'punct' && t.text === '}') {
        this.pos++;
        return values;
      }
      if (t.kind !== 'string') this.fail(t, `expected a quoted value or "}"${describe(t)}`);
      values.push(this.value());
      const n = this.peek();
      if (n.kind === 'punct' && n.text === ',') this.pos++;
      else {
        this.expectPunct('}', '"," or "}"');
        return values;
      }
    }
  }
}

function describe(t: Token): string {
  if (t.kind === 'end') return ', found the end';
  if (t.kind === 'func') return `, found "${t.text}("`;
  return `, found ${t.kind === 'string' ? JSON.stringify(t.text) : `"${t.text}"`}`;
}

/** Parses a selector; throws SelectorError naming the column on bad input. */
export function parseSelector(text: string): Selector {
  return new Parser(text, tokenize(text)).parse();
}

function quote(v: string): string {
  return v.includes("'") ? `"${v}"` : `'${v}'`;
}

/**
 * Normal form: && and || flattened, operands de-duplicated and sorted by their
 * printed form, one-operand groups unwrapped, sets sorted and de-duplicated.
 */
export function normalizeSelector(s: Selector): Selector {
  switch (s.op) {
    case 'in':
    case 'not in':
      return { ...s, values: [...new Set(s.values)].sort() };
    case 'not':
      return { op: 'not', arg: normalizeSelector(s.arg) };
    case 'and':
    case 'or': {
      const flat: Selector[] = [];
      for (const a of s.args.map(normalizeSelector)) {
        if (a.op === s.op) flat.push(...a.args);
        else flat.push(a);
      }
      const byText = new Map(flat.map((a) => [printNormal(a), a]));
      const args = [...byText.keys()].sort().map((k) => byText.get(k)!);
      return args.length === 1 ? args[0] : { op: s.op, args };
    }
    default:
      return s;
  }
}

function printNormal(s: Selector): string {
  switch (s.op) {
    case 'all':
    case 'global':
      return `${s.op}()`;
    case 'has':
      return `has(${s.key})`;
    case '==':
    case '!=':
    case 'contains':
    case 'starts with':
    case 'ends with':
      return `${s.key} ${s.op} ${quote(s.value)}`;
    case 'in':
    case 'not in':
      return `${s.key} ${s.op} {${s.values.map(quote).join(', ')}}`;
    case 'not':
      return s.arg.op === 'and' || s.arg.op === 'or'
        ? `!(${printNormal(s.arg)})`
        : `!${printNormal(s.arg)}`;
    case 'and':
    case 'or':
      return s.args
        .map((a) => (a.op === 'and' || a.op === 'or' ? `(${printNormal(a)})` : printNormal(a)))
        .join(s.op === 'and' ? ' && ' : ' || ');
  }
}

/**
 * Canonical text of the normal form, so selectors that are equal up to operand order,
 * duplicates, grouping and quoting print (and hash) the same.
 */
export function printSelector(s: Selector): string {
  return printNormal(normalizeSelector(s));
}

/** The canonical form of a selector text (throws SelectorError when it is invalid). */
export function canonicalSelector(text: string): string {
  return printSelector(parseSelector(text));
}

export type Labels = Readonly<Record<string, string>>;

export interface MatchContext {
  /** The object is not namespaced (host endpoint, global network set): global() is true. */
  global?: boolean;
}

export function matches(s: Selector, labels: Labels, ctx: MatchContext = {}): boolean {
  switch (s.op) {
    case 'all':
      return true;
    case 'global':
      return ctx.global === true;
    case 'has':
      return Object.prototype.hasOwnProperty.call(labels, s.key);
    case '==':
      return labels[s.key] === s.value && Object.prototype.hasOwnProperty.call(labels, s.key);
    case '!=':
      return !Object.prototype.hasOwnProperty.call(labels, s.key) || labels[s.key] !== s.value;
    case 'in':
      return (
        Object.prototype.hasOwnProperty.call(labels, s.key) && s.values.includes(labels[s.key])
      );
    case 'not in':
      return (
        !Object.prototype.hasOwnProperty.call(labels, s.key) || !s.values.includes(labels[s.key])
      );
    case 'contains':
      return Object.prototype.hasOwnProperty.call(labels, s.key) && labels[s.key].includes(s.value);
    case 'starts with':
      return (
        Object.prototype.hasOwnProperty.call(labels, s.key) && labels[s.key].startsWith(s.value)
      );
    case 'ends with':
      return Object.prototype.hasOwnProperty.call(labels, s.key) && labels[s.key].endsWith(s.value);
    case 'not':
      return !matches(s.arg, labels, ctx);
    case 'and':
      return s.args.every((a) => matches(a, labels, ctx));
    case 'or':
      return s.args.some((a) => matches(a, labels, ctx));
  }
}

/** Label keys a selector reads (for indexing: a label change elsewhere cannot flip it). */
export function selectorKeys(s: Selector): Set<string> {
  const keys = new Set<string>();
  const walk = (x: Selector) => {
    if ('key' in x) keys.add(x.key);
    else if (x.op === 'not') walk(x.arg);
    else if (x.op === 'and' || x.op === 'or') x.args.forEach(walk);
  };
  walk(s);
  return keys;
}

/**
 * The selector with every all() replaced: Calico reads all() in a rule's
 * namespaceSelector as "any namespace" (has(projectcalico.org/namespace)), which leaves
 * out global things, where all() alone would pick them too.
 */
export function replaceAll(s: Selector, by: Selector): Selector {
  switch (s.op) {
    case 'all':
      return by;
    case 'not':
      return { op: 'not', arg: replaceAll(s.arg, by) };
    case 'and':
    case 'or':
      return { op: s.op, args: s.args.map((a) => replaceAll(a, by)) };
    default:
      return s;
  }
}
