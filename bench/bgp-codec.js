#!/usr/bin/env node
// UPDATE codec throughput (TARGETS.md: decode >= 1M prefixes/s on one core, encode the
// same): 1M IPv4 /24s packed ~1,000 per UPDATE. The reference is the target itself;
// each line's ratio is measured/target (> 1 meets it).
'use strict';
const { encodeUpdates, decodeMessage } = require('../packages/bgp-speaker/dist');

const COUNT = 1_000_000;
const TARGET = 1_000_000;
const ctx = { as4: true };
const prefixes = Array.from({ length: COUNT }, (_, i) => {
  const n = 0x0a000000 + i * 256;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.0/24`;
});
const attributes = {
  origin: 0,
  asPath: [{ type: 2, asns: [65100, 64999] }],
  nextHop: '10.0.0.1',
  med: 7,
};

function best(runs, fn) {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return min;
}

let messages = [];
const encodeSeconds = best(3, () => {
  messages = [];
  for (let i = 0; i < COUNT; i += 1000)
    messages.push(...encodeUpdates({ attributes, nlri: prefixes.slice(i, i + 1000) }, ctx));
});
let decoded = 0;
const decodeSeconds = best(3, () => {
  decoded = 0;
  for (const m of messages) decoded += decodeMessage(m, ctx).nlri.length;
});
if (decoded !== COUNT) throw new Error(`decoded ${decoded} prefixes, expected ${COUNT}`);
for (const [figure, seconds] of [
  ['encode_prefixes_per_s', encodeSeconds],
  ['decode_prefixes_per_s', decodeSeconds],
]) {
  const value = Math.round(COUNT / seconds);
  console.log(
    JSON.stringify({
      bench: 'bgp-codec',
      figure,
      value,
      target: TARGET,
      ratio: Number((value / TARGET).toFixed(2)),
      messages: messages.length,
    }),
  );
}
