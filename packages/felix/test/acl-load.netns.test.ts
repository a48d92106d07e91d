// Every generated rule must load. Random clusters (policy-gen.ts: Calico NetworkPolicy /
// GlobalNetworkPolicy and Kubernetes NetworkPolicy with every kind of match, plus rule
// forms our API accepts and Calico does not) go through the real pipeline: resources ->
// CalcGraph -> its DataplaneUpdates -> a real AclManager inside a network namespace, for
// both iptables backends. After each apply:
//   - apply() resolved, and the manager failed no policy closed (status().rejected);
//   - every generated rule renders (no `problem`);
//   - every chain the manager wants (desiredChains) is in iptables-save / ip6tables-save
//     with as many rules;
//   - every policy and profile chain, rendered from the calculation graph's output, passes
//     `iptables-restore --test --noflush` (which checks what iptables parses, not what the
//     kernel accepts: the real apply covers that).
// Failures are collected over all runs (not only the first) and grouped by what iptables
// (or the renderer) said; the first of each group is reduced to a minimal DataplaneRule
// the kernel still refuses, and each group shows its smallest example with the Calico or
// Kubernetes rule it came from. (Against the tree before the renderer rewrite, 61df6b9,
// it reports "multiple -d / -s / -p flags not allowed" with their minimal rules.)
// The same clusters also go through the native nftables dataplane (last suite).
//
// TORTIE_PROPERTY_RUNS=N runs more clusters (default 25 per backend), TORTIE_PROPERTY_SEED
// another seed; a reported "run i" is reproduced by the same seed. TORTIE_PROPERTY_VERBOSE=1
// prints what the calculation graph logged.
import { Writable } from 'node:stream';
import fc from 'fast-check';
import winston from 'winston';
import YAML from 'yaml';
import type { Resource } from '@tortie/api';
import { Testbed, describeIf, type Netns } from '@tortie/testbed';
import { CalcGraph } from '../src/calc/calc-graph';
import { policyId } from '../src/calc/ids';
import { renderRules } from '../src/calc/rules';
import { DataplaneState } from '../src/dataplane-state';
import {
  allocateMarks,
  appendLines,
  chainName,
  linuxAclManager,
  renderRule,
  rulesChain,
  type AclManager,
  type Chain,
  type Family,
  type TableName,
} from '../src/dataplane/acl';
import { linuxNftAclManager, NFT_ACL_TABLE, renderNftRule } from '../src/dataplane/nft-acl';
import type { DataplaneRule } from '../src/types';
import {
  buildCluster,
  clusterArb,
  coverage,
  type BuiltCluster,
  type GenOptions,
} from './policy-gen';

const RUNS = Number(process.env.TORTIE_PROPERTY_RUNS ?? 25);
const SEED = Number(process.env.TORTIE_PROPERTY_SEED ?? 424242);
const NODE = 'n1';
const TABLES: TableName[] = ['filter', 'nat', 'raw', 'mangle'];
const FAMILIES: Family[] = [4, 6];
const MARKS = allocateMarks(); // no FelixConfiguration is generated: the default mask

// mostly local pods (only policies of local endpoints are rendered), one remote (a set
// member only), and a host endpoint so that pre-DNAT and untracked policy render too
const GEN: GenOptions = {
  slots: [0, 1, 2, 3, 4, 5].map((i) => ({
    v4: i === 1 ? '10.65.1.2' : `10.65.0.${i + 1}`,
    v6: i === 1 ? 'fd00:65::102' : `fd00:65::${i + 1}`,
    iface: `calitt${i}`,
    node: i === 1 ? 'n2' : NODE,
  })),
  minPods: 3,
  maxCalico: 6,
  maxRules: 4,
  maxK8s: 3,
  hostEndpoint: { node: NODE, iface: 'eth1', ip: '10.66.0.1' },
  emptyLists: true,
};

const bin = (family: Family, backend: string, tool: 'save' | 'restore') =>
  `${family === 4 ? 'iptables' : 'ip6tables'}-${backend}-${tool}`;

/** A logger that keeps "level: message" lines (calc problems, rules left out). */
function recorder(lines: string[]): winston.Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const o = JSON.parse(chunk.toString()) as { level: string; message: string };
      lines.push(`${o.level}: ${o.message}`);
      done();
    },
  });
  return winston.createLogger({
    level: 'warn',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: sink })],
  });
}

/** The calculation graph's whole output for this node. */
function calculate(resources: Resource[]) {
  const log: string[] = [];
  const dp = new DataplaneState();
  const g = new CalcGraph({ nodeName: NODE, sink: dp, logger: recorder(log) });
  g.onUpdates(resources.map((resource) => ({ type: 'set', resource })));
  g.onStatus('in-sync');
  return { dp, log };
}

/** Rule counts per "table chain" in iptables-save output. */
function savedChains(save: string): Map<string, number> {
  const out = new Map<string, number>();
  let table = '';
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith(':')) out.set(`${table} ${line.slice(1).split(' ')[0]}`, 0);
    else if (line.startsWith('-A ')) {
      const key = `${table} ${line.split(' ')[1]}`;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
  }
  return out;
}

/** A complaint without line numbers, versions, chain names and rule ids: equal causes group. */
function normalise(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Try `|^Error occurred at line|^# Warning/.test(l));
  return (
    lines
      .map((l) =>
        l
          .replace(/^.*?\(legacy\): |^.*?\(nf_tables\): /, '')
          .replace(/line \d+:? ?/g, '')
          .replace(/rule [\w-]+: /g, '')
          .replace(/tt-probe|tortie-[\w.:-]+/g, '<chain>'),
      )
      .filter(Boolean)
      .join('; ') || text.trim()
  );
}

/** One policy or profile rule as the calculation graph sent it, with where it came from. */
interface RuleSite {
  owner: { kind: 'policy' | 'profile'; id: string };
  direction: 'inbound' | 'outbound';
  rule: DataplaneRule;
}

/** Every policy/profile rule the graph sent, and their chains as rendered for each family. */
function rulesOf(dp: DataplaneState) {
  const sites: RuleSite[] = [];
  const chains: Record<Family, Chain[]> = { 4: [], 6: [] };
  const owners = [
    ...[...dp.policies.values()].map((u) => ({ kind: 'policy' as const, u })),
    ...[...dp.profiles.values()].map((u) => ({ kind: 'profile' as const, u })),
  ];
  for (const { kind, u } of owners)
    for (const direction of ['inbound', 'outbound'] as const) {
      const names =
        kind === 'policy'
          ? [chainName.policyIn, chainName.policyOut]
          : [chainName.profileIn, chainName.profileOut];
      const name = names[direction === 'inbound' ? 0 : 1](u.id);
      for (const rule of u[direction]) sites.push({ owner: { kind, id: u.id }, direction, rule });
      for (const f of FAMILIES) chains[f].push(rulesChain(name, u[direction], f, MARKS));
    }
  return { sites, chains };
}

/** The Calico (or Kubernetes) rule a DataplaneRule came from, as YAML. */
function origin(b: BuiltCluster, site: RuleSite): string {
  const { id } = site.owner;
  const res = b.resources.find((r) =>
    site.owner.kind === 'policy'
      ? (r.kind === 'NetworkPolicy' || r.kind === 'GlobalNetworkPolicy') &&
        policyId(r as Resource<'NetworkPolicy'>) === id
      : r.kind === 'Profile' && r.metadata.name === id,
  );
  if (!res) return `(${site.owner.kind} ${id} not found)`;
  const spec = res.spec as { ingress?: unknown[]; egress?: unknown[] };
  const rules = (site.direction === 'inbound' ? spec.ingress : spec.egress) ?? [];
  // the rule that converts to the same body (rule ids differ: they hold the index)
  const body = (r: DataplaneRule) =>
    JSON.stringify({ ...r, ruleId: undefined, invalid: undefined });
  const i = rules.findIndex((r) => {
    const out = renderRules([r] as never, id, site.direction, res.metadata.namespace);
    return out.rules.length === 1 && body(out.rules[0]) === body(site.rule);
  });
  const ns = res.metadata.namespace ? `${res.metadata.namespace}/` : '';
  const dir = site.direction === 'inbound' ? 'ingress' : 'egress';
  const k8s = b.k8sOrigin.get(res.metadata.name);
  return [
    `${res.kind} ${ns}${res.metadata.name} ${dir}[${i}]:`,
    YAML.stringify(i >= 0 ? rules[i] : '(rule not identified)').trimEnd(),
    ...(k8s ? ['from the Kubernetes NetworkPolicy:', YAML.stringify(k8s).trimEnd()] : []),
  ].join('\n');
}

const ruleText = (r: DataplaneRule) => JSON.stringify({ ...r, ruleId: undefined });

/** Failures of many runs, grouped by cause, each group with its smallest example. */
class Failures {
  private readonly groups = new Map<
    string,
    { runs: Set<number>; example: string; minimal?: string }
  >();

  has(cause: string): boolean {
    return this.groups.has(cause);
  }

  note(run: number, cause: string, example: string, minimal?: string): void {
    const g = this.groups.get(cause) ?? { runs: new Set<number>(), example, minimal };
    g.runs.add(run);
    if (example.length < g.example.length) g.example = example;
    this.groups.set(cause, g);
  }

  get size(): number {
    return this.groups.size;
  }

  report(): string[] {
    const indent = (s: string) => s.replace(/^/gm, '    ');
    return [...this.groups.entries()]
      .sort(([, a], [, b]) => b.runs.size - a.runs.size)
      .map(([cause, g]) => {
        const runs = [...g.runs].slice(0, 10).join(', ') + (g.runs.size > 10 ? ', ...' : '');
        return [
          `${cause}\n  in ${g.runs.size} of ${RUNS} runs (${runs})`,
          ...(g.minimal
            ? [`  minimal rule the kernel refuses the same way:\n${indent(g.minimal)}`]
            : []),
          `  smallest example:\n${indent(g.example)}`,
        ].join('\n');
      });
  }
}

for (const backend of ['legacy', 'nft'] as const) {
  describeIf(
    ['root', 'netns', 'iptables', 'ipset'],
    `every generated rule loads (iptables-${backend})`,
    () => {
      const tb = new Testbed();
      let node: Netns;

      beforeAll(async () => {
        node = await tb.netns(`aclload${backend}`);
      });
      afterAll(() => tb.cleanup(), 30000);

      /** Restores one input (with extra flags); what iptables said when it refused. */
      const restore = (family: Family, input: string, flags: string[] = []) => {
        const argv = [bin(family, backend, 'restore'), '--noflush', '--wait', '10', ...flags];
        const cmd = `${argv.join(' ')}: `;
        return node.exec(argv, { input }).then(
          () => undefined,
          // the message starts with the command line: keep what iptables said
          (e: Error) => e.message.slice(e.message.indexOf(cmd) + cmd.length),
        );
      };
      const chainInput = (chains: Chain[]) =>
        ['*filter', ...chains.map((c) => `:${c.name} - [0:0]`)]
          .concat(chains.flatMap(appendLines), 'COMMIT', '')
          .join('\n');

      /** Why the kernel refuses these rule specs in a scratch chain (a real load), if it does. */
      const refusal = async (family: Family, specs: string[]) => {
        const rules = specs.map((s) => `-A tt-probe ${s}`);
        const why = await restore(
          family,
          ['*filter', ':tt-probe - [0:0]', ...rules, 'COMMIT', ''].join('\n'),
        );
        await restore(family, '*filter\n-F tt-probe\n-X tt-probe\nCOMMIT\n');
        return why;
      };

      /** Drops fields (and list entries) of `r` while the kernel still refuses it as `cause`. */
      const minimise = async (family: Family, r: DataplaneRule, cause: string) => {
        const fails = async (x: DataplaneRule) => {
          const specs = renderRule(x, family, MARKS).rules;
          const why = specs.length ? await refusal(family, specs) : undefined;
          return why !== undefined && normalise(why) === cause;
        };
        let cur = r;
        for (let changed = true; changed;) {
          changed = false;
          for (const k of Object.keys(cur) as Array<keyof DataplaneRule>) {
            if (k === 'action' || k === 'ruleId') continue;
            const v = cur[k];
            const tries: DataplaneRule[] = [{ ...cur, [k]: undefined }];
            if (Array.isArray(v) && v.length > 1) tries.push({ ...cur, [k]: [v[0]] });
            for (const t of tries) {
              const smaller = JSON.parse(JSON.stringify(t)) as DataplaneRule;
              if (await fails(smaller)) {
                cur = smaller;
                changed = true;
                break;
              }
            }
          }
        }
        return cur;
      };

      /** The manager's desired chains against what iptables-save shows. */
      const checkKernel = async (acl: AclManager): Promise<string[]> => {
        const out: string[] = [];
        for (const f of FAMILIES) {
          const kernel = savedChains(await node.exec([bin(f, backend, 'save')]));
          for (const table of TABLES)
            for (const c of acl.desiredChains(f, table)) {
              const have = kernel.get(`${table} ${c.name}`);
              if (have === undefined) out.push(`IPv${f} ${table} chain ${c.name} is missing`);
              else if (have !== c.rules.length)
                out.push(
                  `IPv${f} ${table} chain ${c.name} has ${have} rules, wants ${c.rules.length}`,
                );
            }
        }
        return out;
      };

      test(`${RUNS} random clusters: every rule renders and loads, the manager fails nothing closed, each policy chain passes iptables-restore --test`, async () => {
        const failures = new Failures();
        const clusters = fc.sample(clusterArb(GEN), { seed: SEED, numRuns: RUNS });
        let rulesTried = 0;
        for (const [run, cluster] of clusters.entries()) {
          await resetKernel(node, backend);
          const built = buildCluster(cluster, GEN);
          const { dp, log } = calculate(built.resources);
          if (log.length && process.env.TORTIE_PROPERTY_VERBOSE)
            console.log(`run ${run}: the calculation graph said:\n${log.join('\n')}`);
          for (const e of dp.errors)
            failures.note(run, `calculation graph protocol error: ${normalise(e)}`, e);
          const { sites, chains } = rulesOf(dp);
          rulesTried += sites.length;
          const where = (site: RuleSite, f: Family) =>
            `IPv${f}, run ${run} (seed ${SEED}), ${site.owner.kind} ${site.owner.id}`;

          // every rule renders (or the manager fails its policy closed)
          const unrenderable = new Set<string>();
          for (const site of sites)
            for (const f of FAMILIES) {
              const { problem } = renderRule(site.rule, f, MARKS);
              if (!problem) continue;
              unrenderable.add(site.owner.id);
              failures.note(
                run,
                `cannot be rendered (the policy fails closed): ${normalise(problem)}`,
                [
                  where(site, f),
                  `DataplaneRule: ${ruleText(site.rule)}`,
                  `generated from ${origin(built, site)}`,
                ].join('\n'),
              );
            }

          const aclLog: string[] = [];
          const acl = linuxAclManager({
            netns: node.name,
            backend,
            ipv6: true,
            logger: recorder(aclLog),
          });
          for (const u of dp.log) acl.send(u);
          const applyError = await acl.apply().then(
            () => undefined,
            (e: Error) => e.message,
          );
          const problems = await checkKernel(acl);
          // policies the manager failed closed for a reason other than the rendering above
          const rejected =
            (acl.status() as { rejected?: Array<{ id: string; reason: string }> }).rejected ?? [];
          for (const r of rejected.filter((x) => !unrenderable.has(x.id)))
            problems.push(`the manager failed ${r.id} closed: ${r.reason}`);
          // other errors it logged (its fail-closed messages repeat status().rejected)
          for (const l of aclLog)
            if (l.startsWith('error') && !/cannot be programmed/.test(l))
              problems.push(`AclManager ${l}`);

          // every policy and profile chain, rendered from the graph's output, through --test
          for (const f of FAMILIES) {
            const why = await restore(f, chainInput(chains[f]), ['--test']);
            if (why)
              problems.push(
                `iptables-restore --test (IPv${f}) refused a policy chain: ${normalise(why)}`,
              );
          }
          if (!applyError && !problems.length) continue;

          // something was refused: find the rules the kernel refuses, one by one, by a real load
          let refused = 0;
          const seen = new Set<string>();
          for (const f of FAMILIES)
            for (const site of sites) {
              const specs = renderRule(site.rule, f, MARKS).rules;
              const key = `${f} ${specs.join('\n')}`;
              if (!specs.length || seen.has(key)) continue;
              seen.add(key);
              const why = await refusal(f, specs);
              if (!why) continue;
              refused++;
              const cause = normalise(why);
              // the first of a kind is reduced while the kernel still refuses it the same way
              const small = failures.has(cause) ? undefined : await minimise(f, site.rule, cause);
              failures.note(
                run,
                cause,
                [
                  where(site, f),
                  `iptables said: ${why.trim().split('\n').join(' | ')}`,
                  `rendered: ${specs.join('\n          ')}`,
                  `DataplaneRule: ${ruleText(site.rule)}`,
                  `generated from ${origin(built, site)}`,
                ].join('\n'),
                small &&
                  `IPv${f} ${ruleText(small)}\nrenders as: ${renderRule(small, f, MARKS).rules.join('\n            ')}`,
              );
            }
          // refused rules explain a failed apply, closed policies, short chains and --test
          const consequence = (p: string) =>
            /closed|chain tortie-pr?[io]-|--test/.test(p) || p.startsWith('apply');
          const rest = [...(applyError ? [`apply() failed: ${applyError}`] : []), ...problems];
          for (const p of refused ? rest.filter((x) => !consequence(x)) : rest)
            failures.note(run, normalise(p).slice(0, 300), `run ${run} (seed ${SEED}): ${p}`);
        }
        const covered = Object.entries(coverage(clusters))
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, n]) => `${k}: ${n}`);
        console.log(
          `iptables-${backend}: ${RUNS} clusters, ${rulesTried} policy/profile rules rendered, ${failures.size} kinds of failure\ngenerated rules by feature: ${covered.join(', ')}`,
        );
        expect(failures.report()).toEqual([]);
      }, 600000);
    },
  );
}

// The same clusters on the native nftables dataplane (nft-acl): every rule renders, the
// manager's one transaction loads and fails nothing closed, and every chain it wants is
// in `inet tortie` with as many rules. The clusters have the host endpoint too (normal,
// applyOnForward, preDNAT and doNotTrack policy on it, as the iptables suites): its chains
// must load and it must not be reported unenforced.
describeIf(['root', 'netns', 'nft'], 'every generated rule loads (native nftables)', () => {
  const tb = new Testbed();
  let node: Netns;
  const gen: GenOptions = GEN;

  beforeAll(async () => {
    node = await tb.netns('aclloadnft');
  });
  afterAll(() => tb.cleanup(), 30000);

  /** Rule counts per chain of `inet tortie`, as the kernel lists them. */
  const kernelChains = async (): Promise<Map<string, number>> => {
    const out = new Map<string, number>();
    const listing = JSON.parse(
      await node.exec(['nft', '-j', 'list', 'table', ...NFT_ACL_TABLE.split(' ')]),
    ) as { nftables: Array<{ chain?: { name: string }; rule?: { chain: string } }> };
    for (const o of listing.nftables) {
      if (o.chain) out.set(o.chain.name, out.get(o.chain.name) ?? 0);
      if (o.rule) out.set(o.rule.chain, (out.get(o.rule.chain) ?? 0) + 1);
    }
    return out;
  };

  test(`${RUNS} random clusters: every rule renders and loads, the manager fails nothing closed, every chain is in the kernel`, async () => {
    const failures = new Failures();
    const clusters = fc.sample(clusterArb(gen), { seed: SEED, numRuns: RUNS });
    let rulesTried = 0;
    for (const [run, cluster] of clusters.entries()) {
      await node.exec(['nft', 'delete', 'table', ...NFT_ACL_TABLE.split(' ')]).catch(() => '');
      const built = buildCluster(cluster, gen);
      const { dp } = calculate(built.resources);
      for (const e of dp.errors)
        failures.note(run, `calculation graph protocol error: ${normalise(e)}`, e);
      const { sites } = rulesOf(dp);
      rulesTried += sites.length;
      const where = (site: RuleSite, f: Family) =>
        `IPv${f}, run ${run} (seed ${SEED}), ${site.owner.kind} ${site.owner.id}`;
      const unrenderable = new Set<string>();
      for (const site of sites)
        for (const f of FAMILIES) {
          const { problem } = renderNftRule(site.rule, f, MARKS);
          if (!problem) continue;
          unrenderable.add(site.owner.id);
          failures.note(
            run,
            `cannot be rendered for nftables (the policy fails closed): ${normalise(problem)}`,
            [
              where(site, f),
              `DataplaneRule: ${ruleText(site.rule)}`,
              `generated from ${origin(built, site)}`,
            ].join('\n'),
          );
        }

      const aclLog: string[] = [];
      const acl = linuxNftAclManager({ netns: node.name, logger: recorder(aclLog) });
      try {
        for (const u of dp.log) acl.send(u);
        const applyError = await acl.apply().then(
          () => undefined,
          (e: Error) => e.message,
        );
        if (applyError) failures.note(run, `apply() failed: ${normalise(applyError)}`, applyError);
        // a policy failed closed for a reason other than the rendering above: nft refused it
        for (const r of acl.status().rejected.filter((x) => !unrenderable.has(x.id))) {
          const rules = sites.filter((x) => x.owner.id === r.id);
          failures.note(
            run,
            // nft's "Error: ..." groups; its line/column and the rule text do not
            `nft refused a policy chain (failed closed): ${/Error: [^;\n]*/.exec(r.reason)?.[0] ?? normalise(r.reason).slice(0, 300)}`,
            [
              `run ${run} (seed ${SEED}), ${r.id}: ${r.reason}`,
              ...rules.map((x) => `generated from ${origin(built, x)}`),
            ].join('\n'),
          );
        }
        for (const l of aclLog)
          if (l.startsWith('error') && !/cannot be programmed/.test(l))
            failures.note(run, `NftAclManager ${normalise(l)}`, `run ${run}: ${l}`);
        for (const h of acl.status().unsupported)
          failures.note(run, 'a host endpoint is not enforced', `run ${run}: ${h}`);
        if (applyError) continue;
        const kernel = await kernelChains();
        for (const c of acl.desiredChainList()) {
          const have = kernel.get(c.name);
          const p =
            have === undefined
              ? `chain ${c.name} is missing`
              : have !== c.rules.length
                ? `chain ${c.name} has ${have} rules, wants ${c.rules.length}`
                : undefined;
          if (p) failures.note(run, p.replace(/tortie-[\w.:-]+/g, '<chain>'), `run ${run}: ${p}`);
        }
      } finally {
        acl.close();
      }
    }
    const covered = Object.entries(coverage(clusters))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, n]) => `${k}: ${n}`);
    console.log(
      `nftables: ${RUNS} clusters, ${rulesTried} policy/profile rules rendered, ${failures.size} kinds of failure\ngenerated rules by feature: ${covered.join(', ')}`,
    );
    expect(failures.report()).toEqual([]);
  }, 600000);
});

/** Flushes every table of both families and destroys every IP set: a clean slate per run. */
async function resetKernel(ns: Netns, backend: string): Promise<void> {
  const empty = TABLES.map((t) => `*${t}\nCOMMIT\n`).join('');
  for (const f of FAMILIES) await ns.exec([bin(f, backend, 'restore')], { input: empty });
  await ns.exec(['ipset', 'destroy']);
}
