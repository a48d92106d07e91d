#!/usr/bin/env node
// ACL dataplane benchmark (packages/felix/src/dataplane/acl), as root, in throwaway
// network namespaces, next to a reference measured in the same run:
//   1. program N endpoints x P policies through the AclManager (IP sets + one
//      iptables-restore per table, starting from empty tables) vs one raw
//      iptables-restore of the same final ruleset (captured from our render) into a fresh
//      namespace whose IP sets were created beforehand, untimed
//   2. the incremental add of one endpoint on top vs a raw iptables-restore of exactly
//      the input the manager wrote for it (so the ratio is our own overhead)
// Both iptables backends. Prints one JSON line per figure.
// Usage: node bench/felix-iptables.js [endpoints=1000] [policies=100] [backends=legacy,nft]
'use strict';
const { createHash } = require('node:crypto');
const acl = require('../packages/felix/dist/dataplane/acl');
const { emptyState } = require('../packages/felix/dist/dataplane/acl/restore-plan');
const { Testbed, teardownOnSignals, tearingDown } = require('../packages/testbed/dist');
// Ctrl-C or SIGTERM: every namespace, process and temp dir this run made goes
teardownOnSignals((l) => process.stderr.write(`${l}\n`));

const EPS = Number(process.argv[2] ?? 1000);
const POLICIES = Number(process.argv[3] ?? 100);
const BACKENDS = (process.argv[4] ?? 'legacy,nft').split(',');
const APPS = 50;
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const line = (o) => console.log(JSON.stringify(o));
const iface = (i) => `cali${createHash('sha1').update(`bench.pod${i}`).digest('hex').slice(0, 11)}`;
const ip = (i) => `10.80.${i >> 8}.${i & 255}`;

// The shape of bench/felix-dataplane.js's world, as the calculation graph emits it:
// policy i selects app i%50 (so every endpoint has 2 policies in its tier), allows TCP
// from the next app group's set to 2 ports, denies UDP from a net, allows egress to a tier set.
function updates(n, policies) {
  const us = [];
  for (let a = 0; a < APPS; a++) {
    const members = [];
    for (let i = a; i < n; i += APPS) members.push(`${ip(i)}/32`);
    us.push({ type: 'ipset-update', id: `s:app${a}`, setType: 'hash:net', ipVersion: 4, members });
  }
  for (let t = 0; t < 5; t++) {
    const members = [];
    for (let i = t; i < n; i += 5) members.push(`${ip(i)}/32`);
    us.push({ type: 'ipset-update', id: `s:tier${t}`, setType: 'hash:net', ipVersion: 4, members });
  }
  for (let i = 0; i < policies; i++) {
    us.push({
      type: 'policy-update',
      id: `bench/pol${i}`,
      inbound: [
        {
          action: 'allow',
          protocol: 6,
          srcIpSetIds: [`s:app${(i + 1) % APPS}`],
          dstPorts: [
            { first: 80 + (i % 10), last: 80 + (i % 10) },
            { first: 8080, last: 8080 },
          ],
          ruleId: `p${i}i0`,
        },
        { action: 'deny', protocol: 17, srcNets: ['192.0.2.0/24'], ruleId: `p${i}i1` },
      ],
      outbound: [{ action: 'allow', dstIpSetIds: [`s:tier${i % 5}`], ruleId: `p${i}o0` }],
    });
  }
  us.push({
    type: 'profile-update',
    id: 'kns.bench',
    inbound: [{ action: 'allow', ruleId: 'pri' }],
    outbound: [{ action: 'allow', ruleId: 'pro' }],
  });
  us.push({
    type: 'pool-update',
    pool: {
      cidr: '10.80.0.0/16',
      ipip: 'Never',
      vxlan: 'Never',
      natOutgoing: true,
      disableBGPExport: false,
    },
  });
  for (let i = 0; i < n; i++) us.push(wep(i, policies));
  return us;
}

function wep(i, policies) {
  const mine = [];
  for (let p = 0; p < policies; p++) if (p % APPS === i % APPS) mine.push(`bench/pol${p}`);
  return {
    type: 'workload-update',
    endpoint: {
      id: `bench/pod${i}/eth0`,
      ifaceName: iface(i),
      ipv4Nets: [`${ip(i)}/32`],
      ipv6Nets: [],
      tiers: [
        { name: 'default', defaultAction: 'deny', ingressPolicies: mine, egressPolicies: mine },
      ],
      profileIds: ['kns.bench'],
    },
  };
}

/** The manager in `ns`, with every iptables-restore input it writes recorded. */
function manager(ns, backend) {
  const writes = [];
  const m = new acl.AclManager({
    iptables: (b, family) => {
      const real = new acl.ProcessIptablesRunner({ backend: b, family, netns: ns.name });
      return {
        save: (t) => real.save(t),
        // record the input as it streams by, without holding it back
        restore: (t, input) => {
          const w = { table: t, input: '' };
          writes.push(w);
          const pieces = typeof input === 'string' ? [input] : input;
          return real.restore(
            t,
            (function* () {
              for (const p of pieces) yield ((w.input += p), p);
            })(),
          );
        },
      };
    },
    ipsets: new acl.ProcessIpsetRunner({ netns: ns.name }),
    backend,
  });
  return { m, writes };
}

/** The whole final ruleset of one table as a single restore input, from our render. */
function fullInput(m, table) {
  const chains = new Map(m.desiredChains(4, table).map((c) => [c.name, c]));
  return acl.planRestore(table, chains, emptyState(), acl.HOOKS[table]).input;
}

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One full programming from empty tables, ours and the reference, in fresh namespaces. */
async function fullRound(tb, backend, round) {
  const ns = await tb.netns(`fipt${backend}${round}`);
  const ref = await tb.netns(`fiptref${backend}${round}`);
  const { m, writes } = manager(ns, backend);
  for (const u of updates(EPS, POLICIES)) m.send(u);
  m.send({ type: 'in-sync' });
  let t0 = process.hrtime.bigint();
  await m.apply();
  const ours = ms(t0);
  const filter = fullInput(m, 'filter');
  const nat = fullInput(m, 'nat');
  // reference: sets first (untimed), then one raw restore per table of the same ruleset
  await ref.exec(['ipset', 'restore'], { input: await ns.exec(['ipset', 'save']) });
  t0 = process.hrtime.bigint();
  await ref.exec([`iptables-${backend}-restore`, '--noflush'], { input: filter });
  await ref.exec([`iptables-${backend}-restore`, '--noflush'], { input: nat });
  const raw = ms(t0);
  return { ns, ref, m, writes, ours, raw, filter, nat };
}

async function bench(tb, backend) {
  // the machine is shared: medians of 3 rounds, each side by side
  const rounds = [];
  for (let r = 0; r < 3; r++) rounds.push(await fullRound(tb, backend, r));
  const last = rounds.at(-1);
  const saved = (await last.ns.exec([`iptables-${backend}-save`, '-t', 'filter']))
    .split('\n')
    .filter((l) => l.startsWith('-A ')).length;
  const ours = med(rounds.map((r) => r.ours));
  const raw = med(rounds.map((r) => r.raw));
  line({
    figure: `program ${EPS} endpoints x ${POLICIES} policies (AclManager: ipsets + iptables), iptables-${backend}`,
    tortie_ms: +ours.toFixed(1),
    reference_raw_iptables_restore_ms: +raw.toFixed(1),
    ratio: +(ours / raw).toFixed(2),
    target: '<= 1.5',
    rounds: rounds.map((r) => [+r.ours.toFixed(0), +r.raw.toFixed(0)]),
    iptables_rules: last.filter.split('\n').filter((l) => l.startsWith('-A ')).length,
    rules_in_kernel: saved,
    restore_bytes: last.filter.length + last.nat.length,
  });

  // 2. one endpoint added on top, 5 times (added then removed again)
  const { m, writes, ref } = last;
  const oursAdd = [];
  const rawAdd = [];
  let addBytes = 0;
  for (let k = 0; k < 5; k++) {
    const before = writes.length;
    let t0 = process.hrtime.bigint();
    m.send(wep(EPS, POLICIES));
    await m.apply();
    oursAdd.push(ms(t0));
    const delta = writes.slice(before);
    addBytes = delta.reduce((n, w) => n + w.input.length, 0);
    t0 = process.hrtime.bigint();
    for (const w of delta)
      await ref.exec([`iptables-${backend}-restore`, '--noflush'], { input: w.input });
    rawAdd.push(ms(t0));
    m.send({ type: 'workload-remove', id: `bench/pod${EPS}/eth0` });
    const b2 = writes.length;
    await m.apply();
    for (const w of writes.slice(b2))
      await ref.exec([`iptables-${backend}-restore`, '--noflush'], { input: w.input });
  }
  line({
    figure: `one endpoint added on top of ${EPS} (rules ready), iptables-${backend}`,
    tortie_p50_ms: +med(oursAdd).toFixed(1),
    reference_raw_restore_of_same_input_p50_ms: +med(rawAdd).toFixed(1),
    ratio: +(med(oursAdd) / med(rawAdd)).toFixed(2),
    target: '<= 1.5 (and < 100 ms)',
    restore_input_bytes: addBytes,
  });
}

async function main() {
  const tb = new Testbed();
  try {
    for (const backend of BACKENDS) await bench(tb, backend);
  } finally {
    await tb.cleanup();
  }
}

if (require.main === module) {
  main().catch((e) => {
    if (tearingDown()) return; // the signal handler exits once all is removed
    console.error(e);
    process.exit(1);
  });
}
module.exports = { updates, wep };
