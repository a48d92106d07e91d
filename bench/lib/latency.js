// Latency helpers shared by the benchmarks: run jobs N at a time and print percentiles.
'use strict';

/** Runs fn(0..n-1) with `parallel` in flight; returns each call's latency in ms. */
async function timedPool(n, parallel, fn) {
  const times = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        const i = next++;
        const t0 = process.hrtime.bigint();
        await fn(i);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  return times;
}

/** Prints one JSON line with p50/p99 of `ms` (and extra fields); returns it. */
function printPercentiles(name, ms, extra = {}) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const line = {
    figure: name,
    n: s.length,
    p50_ms: +q(0.5).toFixed(2),
    p99_ms: +q(0.99).toFixed(2),
    ...extra,
  };
  console.log(JSON.stringify(line));
  return line;
}

module.exports = { timedPool, printPercentiles };
