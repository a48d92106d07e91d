#!/usr/bin/env node
// Policy model benchmarks (issue 6): selector matching rate, reference evaluation rate
// with 1,000 policies x 10,000 endpoints, and the cost of one label change: the
// incremental label index against a full rescan of every selector x endpoint in the
// same run (ratio = rescan time / incremental time).
'use strict';
const { parseSelector, matches, Evaluator, LabelIndex } = require('../packages/policy/dist');

function timeit(fn, minMs = 300) {
  let n = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs * 1e6) {
    fn();
    n++;
    elapsed = Number(process.hrtime.bigint() - t0);
  }
  return elapsed / 1e9 / n; // seconds per call
}

const APPS = 100;
const endpoints = Array.from({ length: 10_000 }, (_, i) => ({
  name: `pod${i}`,
  namespace: `ns${i % 50}`,
  labels: {
    app: `app${i % APPS}`,
    tier: i % 3 === 0 ? 'frontend' : 'backend',
    env: i % 2 ? 'prod' : 'dev',
    idx: String(i),
  },
  ips: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
  profiles: ['allow-all'],
}));
const policies = Array.from({ length: 1000 }, (_, i) => ({
  kind: 'GlobalNetworkPolicy',
  metadata: { name: `p${i}` },
  spec: {
    order: i,
    selector: `app == 'app${i % APPS}' && env == '${i % 2 ? 'prod' : 'dev'}'`,
    ingress: [
      {
        action: 'Allow',
        protocol: 'TCP',
        source: { selector: `app in {'app${(i + 1) % APPS}', 'app${(i + 2) % APPS}'}` },
        destination: { ports: [80 + (i % 10)] },
      },
    ],
  },
}));

// 1. selector matching
const sel = parseSelector(
  "app in {'app1', 'app2', 'app3'} && tier == 'frontend' && !has(deprecated)",
);
let k = 0;
const perMatch = timeit(() => {
  for (let i = 0; i < 1000; i++) matches(sel, endpoints[k++ % endpoints.length].labels);
});
console.log(
  JSON.stringify({
    bench: 'policy',
    figure: 'selector_matches_per_s',
    value: Math.round(1000 / perMatch),
  }),
);

// 2. reference evaluation
const ev = new Evaluator({
  endpoints,
  policies,
  profiles: [{ name: 'allow-all', ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }],
});
let f = 0;
const perFlow = timeit(() => {
  const a = endpoints[f % endpoints.length];
  const b = endpoints[(f * 7919) % endpoints.length];
  f++;
  ev.evaluate({ srcIp: a.ips[0], dstIp: b.ips[0], protocol: 'TCP', dstPort: 80 + (f % 10) });
}, 1000);
console.log(
  JSON.stringify({
    bench: 'policy',
    figure: 'evaluations_per_s',
    policies: policies.length,
    endpoints: endpoints.length,
    value: Math.round(1 / perFlow),
  }),
);

// 3. one label change: incremental index vs full rescan
const selectors = policies.flatMap((p, i) => [
  [`${i}/sel`, p.spec.selector],
  [`${i}/src`, p.spec.ingress[0].source.selector],
]);
const idx = new LabelIndex();
for (const [id, text] of selectors) idx.updateSelector(id, text);
for (const e of endpoints) idx.updateLabels(e.name, e.labels);
const parsed = selectors.map(([id, text]) => [id, parseSelector(text)]);
let flip = 0;
const change = () => {
  const e = endpoints[flip % endpoints.length];
  flip++;
  return { ...e.labels, app: `app${flip % APPS}` };
};
const incremental = timeit(
  () => idx.updateLabels(endpoints[flip % endpoints.length].name, change()),
  300,
);
const rescan = timeit(() => {
  const labels = change();
  const target = endpoints[flip % endpoints.length];
  let n = 0;
  for (const [, s] of parsed)
    for (const e of endpoints) if (matches(s, e === target ? labels : e.labels)) n++;
  return n;
}, 1000);
console.log(
  JSON.stringify({
    bench: 'policy',
    figure: 'label_change_seconds',
    selectors: selectors.length,
    endpoints: endpoints.length,
    incremental: Number(incremental.toExponential(3)),
    full_rescan: Number(rescan.toExponential(3)),
    ratio: Math.round(rescan / incremental),
  }),
);
