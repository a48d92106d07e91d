#!/usr/bin/env node
// Service dataplane benchmark (packages/felix/src/dataplane/services), as root, in
// throwaway network namespaces, next to kube-proxy's iptables mode measured in the same run:
//   1. program S Services x E endpoints from nothing: tortie's ServiceProxy (plan, render,
//      one `nft -f` transaction) vs one iptables-restore of the nat table kube-proxy's
//      iptables mode writes for the same Services (KUBE-SERVICES -> KUBE-SVC-* with
//      statistic rules -> KUBE-SEP-* with DNAT), built here
//   2. one endpoint replaced in one Service at that size: tortie's incremental
//      transaction vs kube-proxy's own minimal restore for it (since 1.27: --noflush, the
//      changed KUBE-SVC/KUBE-SEP chains, and KUBE-SERVICES, which it always rewrites whole)
// The reference runs `iptables-restore` as installed (Debian: the nft backend).
// Usage: node bench/services.js [services=10000] [endpoints=5] [rounds=5]
'use strict';
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { ServiceProxy } = require('../packages/felix/dist');
const { Testbed, teardownOnSignals, tearingDown } = require('../packages/testbed/dist');
// Ctrl-C or SIGTERM: every namespace, process and temp dir this run made goes
teardownOnSignals((l) => process.stderr.write(`${l}\n`));

const S = Number(process.argv[2] ?? 10000);
const E = Number(process.argv[3] ?? 5);
const ROUNDS = Number(process.argv[4] ?? 5);
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const line = (o) => console.log(JSON.stringify(o));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const vip = (i) => `10.96.${i >> 8}.${i & 255}`;
const epIp = (i, j) => `10.${70 + j}.${i >> 8}.${i & 255}`;

function world(changed = -1, round = 0) {
  const services = [];
  const slices = [];
  for (let i = 0; i < S; i++) {
    services.push({
      namespace: 'bench',
      name: `s${i}`,
      clusterIPs: [vip(i)],
      ports: [{ name: 'http', port: 80 }],
    });
    const eps = [];
    for (let j = 0; j < E; j++) {
      // the changed service's first endpoint is replaced by another one each round
      const ip = i === changed && j === 0 ? `10.69.${round >> 8}.${(round & 255) + 1}` : epIp(i, j);
      eps.push({ addresses: [ip], nodeName: j === 0 ? 'n1' : 'n2' });
    }
    slices.push({
      namespace: 'bench',
      serviceName: `s${i}`,
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: eps,
    });
  }
  return { services, slices };
}

// ---- kube-proxy's iptables mode, as it writes the nat table -----------------------------
const h16 = (s) =>
  createHash('sha256')
    .update(s)
    .digest('base64')
    .replace(/[^A-Z2-7]/g, '')
    .padEnd(16, 'X')
    .slice(0, 16);
const svcChain = (i) => `KUBE-SVC-${h16(`bench/s${i}:http`)}`;
const sepChain = (i, ip) => `KUBE-SEP-${h16(`bench/s${i}:http${ip}`)}`;

function kpServicesChain(lines) {
  for (let i = 0; i < S; i++) {
    lines.push(
      `-A KUBE-SERVICES -d ${vip(i)}/32 -p tcp -m comment --comment "bench/s${i}:http cluster IP" -m tcp --dport 80 -j ${svcChain(i)}`,
    );
  }
  lines.push(
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
  );
}

function kpService(lines, i, ips) {
  lines.push(
    `-A ${svcChain(i)} ! -s 10.64.0.0/10 -d ${vip(i)}/32 -p tcp -m comment --comment "bench/s${i}:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`,
  );
  ips.forEach((ip, j) => {
    const left = ips.length - j;
    const stat =
      left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : '';
    lines.push(
      `-A ${svcChain(i)} -m comment --comment "bench/s${i}:http -> ${ip}:8080"${stat} -j ${sepChain(i, ip)}`,
    );
  });
  for (const ip of ips) {
    lines.push(
      `-A ${sepChain(i, ip)} -s ${ip}/32 -m comment --comment "bench/s${i}:http" -j KUBE-MARK-MASQ`,
    );
    lines.push(
      `-A ${sepChain(i, ip)} -p tcp -m comment --comment "bench/s${i}:http" -m tcp -j DNAT --to-destination ${ip}:8080`,
    );
  }
}

function kpFull() {
  const decl = [
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-POSTROUTING - [0:0]',
    ':KUBE-MARK-MASQ - [0:0]',
  ];
  const rules = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  ];
  for (let i = 0; i < S; i++) {
    decl.push(`:${svcChain(i)} - [0:0]`);
    const ips = Array.from({ length: E }, (_, j) => epIp(i, j));
    for (const ip of ips) decl.push(`:${sepChain(i, ip)} - [0:0]`);
    kpService(rules, i, ips);
  }
  kpServicesChain(rules);
  return ['*nat', ...decl, ...rules, 'COMMIT', ''].join('\n');
}

/** kube-proxy's partial sync after one endpoint of service i changed from `from` to `to`. */
function kpChange(i, from, to) {
  const ips = Array.from({ length: E }, (_, j) => (j === 0 ? to : epIp(i, j)));
  const lines = [
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    `:${svcChain(i)} - [0:0]`,
    `:${sepChain(i, to)} - [0:0]`,
    `:${sepChain(i, from)} - [0:0]`,
  ];
  kpServicesChain(lines);
  kpService(lines, i, ips);
  lines.push(`-X ${sepChain(i, from)}`, 'COMMIT', '');
  return lines.join('\n');
}

function restore(ns, text, noflush) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns, 'iptables-restore', '-w', ...(noflush ? ['--noflush'] : [])],
    { input: text },
  );
  const t = ms(t0);
  if (r.status !== 0) throw new Error(`iptables-restore: ${r.stderr.toString().slice(0, 500)}`);
  return t;
}

async function main() {
  const tb = new Testbed();
  try {
    const ours = [];
    const theirs = [];
    const oursChange = [];
    const theirsChange = [];
    const changed = Math.floor(S / 2);
    for (let r = 0; r < ROUNDS; r++) {
      // 1. from nothing, each in a fresh namespace
      const a = await tb.netns('svc-bench-nft');
      const proxy = new ServiceProxy({
        nodeName: 'n1',
        families: [4],
        clusterCidrs: { 4: ['10.64.0.0/10'] },
        netns: a.name,
      });
      const w = world();
      // fed as the agent feeds it: object by object, each slice under its id
      let t0 = process.hrtime.bigint();
      for (const s of w.services) proxy.setService(s);
      w.slices.forEach((s, i) => proxy.setEndpointSlice(`bench/s${i}`, s));
      await proxy.apply();
      ours.push(ms(t0));
      const b = await tb.netns('svc-bench-ipt');
      theirs.push(restore(b.name, kpFull(), false));
      // 2. one endpoint replaced
      // as the agent gets it: one EndpointSlice replaced, every other object the same
      const slice = world(changed, r + 1).slices[changed];
      t0 = process.hrtime.bigint();
      proxy.setEndpointSlice(`bench/s${changed}`, slice);
      const [stats] = await proxy.apply();
      oursChange.push(ms(t0));
      if (stats.full || stats.lines > 20)
        throw new Error(`the change was not incremental: ${JSON.stringify(stats)}`);
      theirsChange.push(
        restore(b.name, kpChange(changed, epIp(changed, 0), `10.69.0.${r + 2}`), true),
      );
    }
    const figure = (bench, tortie, ref, extra = {}) =>
      line({
        bench,
        services: S,
        endpoints: E,
        rounds: ROUNDS,
        tortie_ms: +median(tortie).toFixed(1),
        kube_proxy_iptables_ms: +median(ref).toFixed(1),
        ratio: +(median(tortie) / median(ref)).toFixed(3),
        ...extra,
      });
    figure('services-program', ours, theirs);
    figure('services-endpoint-change', oursChange, theirsChange, { target_ratio: 0.5 });
  } finally {
    await tb.cleanup();
  }
}

main().catch((e) => {
  if (tearingDown()) return; // the signal handler exits once all is removed
  console.error(e);
  process.exitCode = 1;
});
