#!/usr/bin/env node
// Policy model benchmarks (issue 6): selector matching rate, reference evaluation rate
// with 1,000 policies x 10,000 endpoints, and the cost of one endpoint's label change
// in the label index (which selectors select it: IP-set membership).
//
// The reference for a label change is what a straightforward implementation does for
// that one endpoint: evaluate it against every selector and update the membership of
// those whose answer changed (same output as the index). The index evaluates only the
// selectors that read a changed key, so its gain depends on how many do: the figure is
// reported for a change of 'app' (read by all 2,000 selectors: no gain is possible), of
// 'env' (read by 1,000) and of 'tier' (read by none). ratio = reference / index: > 1,
// the index is faster. (An earlier version compared with re-evaluating every selector
// against all 10,000 endpoints, work no one would do for one endpoint's change, and
// reported a ratio about 10,000 times too high.)
'use strict';
const {
  parseSelector,
  matches,
  selectorKeys,
  Evaluator,
  LabelIndex,
} = require('../packages/policy/dist');

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

// 3. one endpoint's label change: the label index vs evaluating that endpoint against
// every selector
const selectors = policies.flatMap((p, i) => [
  [`${i}/sel`, p.spec.selector],
  [`${i}/src`, p.spec.ingress[0].source.selector],
]);
const idx = new LabelIndex();
for (const [id, text] of selectors) idx.updateSelector(id, text);
for (const e of endpoints) idx.updateLabels(e.name, e.labels);

/** The reference: membership per selector, kept by evaluating the endpoint against all. */
const parsed = selectors.map(([id, text]) => ({ id, sel: parseSelector(text) }));
const members = new Map(parsed.map(({ id }) => [id, new Set()]));
for (const { id, sel } of parsed)
  for (const e of endpoints) if (matches(sel, e.labels)) members.get(id).add(e.name);
let referenceChanges = 0;
function referenceUpdate(name, labels) {
  for (const { id, sel } of parsed) {
    const set = members.get(id);
    const now = matches(sel, labels);
    if (now !== set.has(name)) {
      referenceChanges++;
      if (now) set.add(name);
      else set.delete(name);
    }
  }
}

const current = new Map(endpoints.map((e) => [e.name, e.labels]));
const VALUES = {
  app: (n) => `app${n % APPS}`,
  env: (n) => (n % 2 ? 'prod' : 'dev'),
  tier: (n) => (n % 2 ? 'frontend' : 'backend'),
};
/** The next change of `key`: endpoint k gets the next value (both sides see the same). */
function changes(key) {
  let n = 0;
  return () => {
    const e = endpoints[(n * 7919) % endpoints.length];
    n++;
    const labels = { ...current.get(e.name), [key]: VALUES[key](n) };
    current.set(e.name, labels);
    return [e.name, labels];
  };
}

for (const key of ['app', 'env', 'tier']) {
  const readers = parsed.filter(({ sel }) => [...selectorKeys(sel)].includes(key)).length;
  const nextIndex = changes(key);
  const index = timeit(() => idx.updateLabels(...nextIndex()), 300);
  const nextRef = changes(key);
  const reference = timeit(() => referenceUpdate(...nextRef()), 300);
  console.log(
    JSON.stringify({
      bench: 'policy',
      figure: 'label_change_seconds',
      changed_key: key,
      selectors: selectors.length,
      selectors_reading_key: readers,
      endpoints: endpoints.length,
      index: Number(index.toExponential(3)),
      reference_one_endpoint_all_selectors: Number(reference.toExponential(3)),
      ratio: Number((reference / index).toFixed(2)),
    }),
  );
}

// both sides end with the same memberships (the reference computes what the index does)
for (const [name, labels] of current) {
  idx.updateLabels(name, labels);
  referenceUpdate(name, labels);
}
const differ = parsed.filter(({ id }) => {
  const a = idx.selected(id);
  const b = members.get(id);
  return a.size !== b.size || [...a].some((x) => !b.has(x));
}).length;
if (differ || referenceChanges === 0) {
  console.error(`reference and index disagree on ${differ} selectors`);
  process.exitCode = 1;
}
