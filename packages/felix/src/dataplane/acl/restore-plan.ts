// Read-back and restore planning for one iptables table. Pure.
//
// `parseSave` reads `iptables-save -t <table>`: tortie's chains with the hash of each
// rule (a rule without a tortie hash was added by someone else), and the rules of every
// other chain (to find our hooks in the built-in ones). `planRestore` compares that with
// the desired chains and writes the `iptables-restore --noflush` input that converges:
//   - a chain whose hashes differ is declared (which flushes it) and rewritten whole;
//   - a tortie chain no longer wanted is declared (flushed) and deleted with -X last,
//     after the chains that jumped to it were rewritten in the same transaction;
//   - a hook missing from its built-in chain, or no longer first there, is (re)inserted
//     at the top; stale hooks of ours are deleted; foreign rules and chains are never touched.
// The whole input commits atomically, so there is no moment with a half-written chain.
import { appendLines, hashComment, hashOf, ruleHashes, type Chain } from './chain';
import { CHAIN_PREFIX } from './names';

export interface SavedRule {
  /** The rule spec after "-A <chain> ". */
  spec: string;
  hash?: string;
  /** -j / -g target */
  target?: string;
}

export interface TableState {
  /** tortie chains -> rule hashes in order ('' for a rule without our hash) */
  chains: Map<string, string[]>;
  /** every other chain (built-in or foreign) -> its rules */
  others: Map<string, SavedRule[]>;
}

export const emptyState = (): TableState => ({ chains: new Map(), others: new Map() });

const isOurs = (chain: string) => chain.startsWith(CHAIN_PREFIX);

export function parseSave(text: string): TableState {
  const state = emptyState();
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0];
      if (isOurs(name)) state.chains.set(name, state.chains.get(name) ?? []);
      else if (!state.others.has(name)) state.others.set(name, []);
      continue;
    }
    if (!line.startsWith('-A ')) continue;
    const sp = line.indexOf(' ', 3);
    const chain = line.slice(3, sp);
    const spec = line.slice(sp + 1);
    const hash = hashOf(spec);
    if (isOurs(chain)) {
      const list = state.chains.get(chain) ?? [];
      list.push(hash ?? '');
      state.chains.set(chain, list);
    } else {
      const list = state.others.get(chain) ?? [];
      const t = /(?:^| )-[jg] (\S+)/.exec(spec);
      list.push({ spec, ...(hash ? { hash } : {}), ...(t ? { target: t[1] } : {}) });
      state.others.set(chain, list);
    }
  }
  return state;
}

export interface Hook {
  /** built-in chain */
  chain: string;
  target: string;
}

export const hookChain = (h: Hook): Chain => ({ name: h.chain, rules: [`-j ${h.target}`] });
export const hookHash = (h: Hook) => ruleHashes(hookChain(h))[0];
export const hookSpec = (h: Hook) => `${hashComment(hookHash(h))} ${hookChain(h).rules[0]}`;

export interface RestorePlan {
  written: string[];
  deleted: string[];
  hooksInserted: string[];
  /**
   * The restore input in pieces, produced lazily (so it can be streamed to
   * iptables-restore while the rest is rendered); undefined: the table already matches.
   */
  chunks?: () => Iterable<string>;
  /** The whole input as one string (joins chunks). */
  readonly input?: string;
}

const NOTHING: RestorePlan = { written: [], deleted: [], hooksInserted: [] };

/**
 * The restore input that makes `actual` match `desired`. Only chains named in `check`
 * (default: all desired) have their hashes compared; unwanted chains and hooks are
 * always checked.
 */
export function planRestore(
  table: string,
  desired: Map<string, Chain>,
  actual: TableState,
  hooks: Hook[],
  check: Iterable<string> = desired.keys(),
): RestorePlan {
  const written: Chain[] = [];
  for (const name of check) {
    const c = desired.get(name);
    if (!c) continue;
    const have = actual.chains.get(name);
    if (!have) {
      written.push(c); // hashes are computed while the input is produced
      continue;
    }
    const want = ruleHashes(c);
    if (have.length !== want.length || have.some((h, i) => h !== want[i])) written.push(c);
  }
  const deleted = [...actual.chains.keys()].filter((n) => !desired.has(n));

  const hookDeletes: string[] = [];
  const hookInserts: Hook[] = [];
  const wanted = new Map(hooks.filter((h) => desired.has(h.target)).map((h) => [h.chain, h]));
  const builtins = new Set([...wanted.keys(), ...actual.others.keys()]);
  for (const b of builtins) {
    const rules = actual.others.get(b) ?? [];
    const h = wanted.get(b);
    const firstOk =
      h !== undefined &&
      rules.length > 0 &&
      rules[0].hash === hookHash(h) &&
      rules[0].target === h.target;
    rules.forEach((r, i) => {
      if (!r.target || !isOurs(r.target)) return;
      if (i === 0 && firstOk) return;
      hookDeletes.push(`-D ${b} ${r.spec}`);
    });
    if (h && !firstOk) hookInserts.push(h);
  }

  if (!written.length && !deleted.length && !hookDeletes.length && !hookInserts.length)
    return NOTHING;
  function* chunks(): Iterable<string> {
    const head = [`*${table}`];
    for (const c of written) head.push(`:${c.name} - [0:0]`);
    for (const n of deleted) head.push(`:${n} - [0:0]`);
    yield head.join('\n') + '\n';
    for (const c of written) if (c.rules.length) yield appendLines(c).join('\n') + '\n';
    const tail = [...hookDeletes];
    for (const h of hookInserts) tail.push(`-I ${h.chain} 1 ${hookSpec(h)}`);
    for (const n of deleted) tail.push(`-X ${n}`);
    tail.push('COMMIT', '');
    yield tail.join('\n');
  }
  let joined: string | undefined;
  return {
    written: written.map((c) => c.name),
    deleted,
    hooksInserted: hookInserts.map((h) => h.chain),
    chunks,
    get input() {
      return (joined ??= [...chunks()].join(''));
    },
  };
}

/** What the table holds after `plan` was restored successfully. */
export function stateAfter(
  actual: TableState,
  plan: RestorePlan,
  desired: Map<string, Chain>,
  hooks: Hook[],
): TableState {
  const chains = new Map(actual.chains);
  for (const n of plan.written) chains.set(n, ruleHashes(desired.get(n)!));
  for (const n of plan.deleted) chains.delete(n);
  const others = new Map<string, SavedRule[]>();
  for (const [b, rules] of actual.others)
    others.set(
      b,
      rules.filter((r) => !r.target || !isOurs(r.target)),
    );
  for (const h of hooks) {
    if (!desired.has(h.target)) continue;
    others.set(h.chain, [
      { spec: hookSpec(h), hash: hookHash(h), target: h.target },
      ...(others.get(h.chain) ?? []),
    ]);
  }
  return { chains, others };
}
