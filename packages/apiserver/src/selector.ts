// Label selectors (?labelSelector=): =, ==, !=, in, notin, exists, !exists.
import { badRequest } from './status';

type Req = (labels: Record<string, string>) => boolean;

/** Splits on commas outside parentheses. */
function terms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter(Boolean);
}

export function parseLabelSelector(
  s: string,
): (labels: Record<string, string> | undefined) => boolean {
  const reqs: Req[] = terms(s).map((t) => {
    let m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(t);
    if (m) {
      const [, k, op, v] = m;
      return op === '!=' ? (l) => l[k] !== v : (l) => l[k] === v;
    }
    m = /^([\w./-]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(t);
    if (m) {
      const [, k, op, vs] = m;
      const set = new Set(vs.split(',').map((v) => v.trim()));
      return op === 'in' ? (l) => k in l && set.has(l[k]) : (l) => !(k in l) || !set.has(l[k]);
    }
    m = /^(!?)([\w./-]+)$/.exec(t);
    if (m) {
      const [, not, k] = m;
      return not ? (l) => !(k in l) : (l) => k in l;
    }
    throw badRequest(`unable to parse requirement: "${t}" in label selector "${s}"`);
  });
  return (labels) => reqs.every((r) => r(labels ?? {}));
}
