// The boxed tables calicoctl prints (node status, policy status). Pure.

/** Rows (the first is the header) as "+---+" framed lines, columns padded to fit. */
export function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const row = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  return [line, row(rows[0]), line, ...rows.slice(1).map(row), line];
}
