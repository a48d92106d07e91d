// IP set and rule changes interleaved with applies, against kernel-like fakes where a
// rule naming a missing set fails as in the kernel ("Set ... doesn't exist") and a set
// still named by a rule cannot be destroyed. Random datastore changes go through the
// real calculation graph into the AclManager while an apply is in flight (the fake
// ipset restore yields, so updates land in the middle of it, as syncer deliveries do in
// the agent). Every apply must succeed, no destroy may fail, and at the end the sets in
// the "kernel" must hold what the calculation graph wants.
//
// This is the test for "sets exist before any rule that names them". Checked against the
// earlier Ipsets.applyUpdates, which cleared its pending work after its await and so
// dropped the sets and members that arrived meanwhile (swap `git show 61df6b9:<ipsets.ts>`
// in with jest.mock): both tests fail, with "Set tortie40s:... doesn't exist" and with
// members missing from a set.
import fc from 'fast-check';
import type { Resource } from '@tortie/api';
import { CalcGraph } from '../src/calc/calc-graph';
import { DataplaneState } from '../src/dataplane-state';
import { Testbed, describeIf } from '@tortie/testbed';
import { AclManager } from '../src/dataplane/acl/acl-manager';
import { FakeIpset, FakeIptables } from '../src/dataplane/acl/fakes';
import { ProcessIptablesRunner, type IptablesRunner } from '../src/dataplane/acl/iptables-runner';
import { ProcessIpsetRunner, type IpsetRunner } from '../src/dataplane/acl/ipsets';
import { ipsetName } from '../src/dataplane/acl/names';
import type { DataplaneUpdate } from '../src/types';
import { np, R, wep } from './calc-fixtures';

const APPS = ['web', 'db', 'cache'];
const PODS = ['p0', 'p1', 'p2', 'p3'];

type Op =
  | { kind: 'label'; pod: number; app: string | undefined; remote: boolean }
  | { kind: 'policy'; name: number; from: string; named: boolean }
  | { kind: 'unpolicy'; name: number }
  | { kind: 'apply' }
  | { kind: 'await' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('label' as const),
    pod: fc.nat(PODS.length - 1),
    app: fc.constantFrom(...APPS, undefined),
    remote: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('policy' as const),
    name: fc.nat(3),
    from: fc.constantFrom(...APPS),
    named: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('unpolicy' as const), name: fc.nat(3) }),
  fc.constant({ kind: 'apply' as const }),
  fc.constant({ kind: 'await' as const }),
);

const policy = (name: number, from: string, named: boolean) =>
  np('ns', `pol${name}`, {
    selector: 'all()',
    ingress: [
      {
        action: 'Allow',
        protocol: 'TCP',
        source: { selector: `app == '${from}'` },
        ...(named ? { destination: { ports: ['http'] } } : {}),
      },
    ],
  });

/** Pod i: local ones on n1 (so policies apply to them), remote ones only feed sets. */
const pod = (i: number, app: string | undefined, remote: boolean) =>
  wep('ns', PODS[i], remote ? 'n2' : 'n1', `10.65.0.${i + 1}`, app ? { app } : {}, {
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 + i }],
  });

const tick = () => new Promise<void>((r) => setImmediate(r));

/** The kernel a run programs: fakes, or the real tools in a network namespace. */
interface Kernel {
  ipsets: IpsetRunner;
  iptables: IptablesRunner;
  /** Members of a set in the kernel (undefined: no such set). */
  members(name: string): Promise<string[] | undefined>;
}

function fakeKernel(): Kernel {
  const ipt = new FakeIptables();
  const ips = new FakeIpset([ipt]);
  ipt.ipsets = ips;
  ips.latency = async () => {
    await tick();
    await tick();
  };
  return {
    ipsets: ips,
    iptables: ipt,
    members: async (name) => {
      const s = ips.sets.get(name);
      return s && [...s.members];
    },
  };
}

async function run(ops: Op[], kernel: Kernel = fakeKernel()) {
  const ipsetErrors: string[] = [];
  const acl = new AclManager({
    iptables: () => kernel.iptables,
    ipsets: {
      restore: (i) =>
        kernel.ipsets.restore(i).catch((e: Error) => {
          ipsetErrors.push(e.message + '\n' + i);
          throw e;
        }),
      listNames: () => kernel.ipsets.listNames(),
    },
    backend: 'legacy',
  });
  const want = new DataplaneState();
  const tee = { send: (u: DataplaneUpdate) => (want.send(u), acl.send(u)) };
  const g = new CalcGraph({ nodeName: 'n1', sink: tee });
  const set = (r: Resource) => g.onUpdates([{ type: 'set', resource: r }]);
  const del = (r: Resource) =>
    g.onUpdates([
      {
        type: 'deleted',
        resource: r,
        key: { kind: r.kind, name: r.metadata.name, namespace: r.metadata.namespace },
      },
    ]);

  set(R('Profile', 'kns.ns', { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }));
  for (let i = 0; i < PODS.length; i++) set(pod(i, APPS[i % APPS.length], i >= 2));
  g.onStatus('in-sync');

  const applyErrors: string[] = [];
  let inFlight: Promise<void> | undefined;
  const apply = () => {
    inFlight ??= acl
      .apply()
      .catch((e: Error) => void applyErrors.push(e.message))
      .finally(() => (inFlight = undefined));
  };
  const policies = new Map<number, Resource>();
  for (const o of ops) {
    switch (o.kind) {
      case 'label':
        set(pod(o.pod, o.app, o.remote));
        break;
      case 'policy':
        policies.set(o.name, policy(o.name, o.from, o.named));
        set(policies.get(o.name)!);
        break;
      case 'unpolicy':
        if (policies.has(o.name)) del(policies.get(o.name)!);
        policies.delete(o.name);
        break;
      case 'apply':
        apply();
        break;
      case 'await':
        await inFlight;
        break;
    }
    await tick(); // the next change arrives while the apply (if any) is part-way
  }
  await inFlight;
  await acl.apply().catch((e: Error) => void applyErrors.push(e.message));
  return { want, applyErrors, ipsetErrors, rejected: acl.status().rejected };
}

/** Every set the calculation graph wants holds its members in the kernel. */
async function expectSetsAsWanted(kernel: Kernel, want: DataplaneState) {
  for (const [id, members] of want.ipsets) {
    const got = await kernel.members(ipsetName(id, 4));
    expect([...(got ?? [])].sort()).toEqual([...members].sort());
  }
}

test('random set and rule changes during applies: every restore finds its sets, no destroy fails, sets end as wanted', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
      const kernel = fakeKernel();
      const { want, applyErrors, ipsetErrors, rejected } = await run(ops, kernel);
      expect(applyErrors).toEqual([]);
      expect(ipsetErrors).toEqual([]);
      expect(rejected).toEqual([]);
      await expectSetsAsWanted(kernel, want);
    }),
    { numRuns: 150, seed: 20261204 },
  );
});

test('a set and the policy naming it, sent while the previous apply writes its sets, load at the next apply', async () => {
  // the exact interleaving of the bug: apply 1 is in its ipset restore when a new
  // policy and its new set arrive; apply 2 must create the set before the rule
  const kernel = fakeKernel();
  const { applyErrors, ipsetErrors, rejected } = await run(
    [
      { kind: 'policy', name: 0, from: 'web', named: false },
      { kind: 'apply' },
      { kind: 'policy', name: 1, from: 'cache', named: true },
      { kind: 'await' },
      { kind: 'apply' },
      { kind: 'await' },
    ],
    kernel,
  );
  expect(applyErrors).toEqual([]);
  expect(ipsetErrors).toEqual([]);
  expect(rejected).toEqual([]);
  // pol0: the web selector's set; pol1: the cache selector's set and the named port's
  const ipt = kernel.iptables as FakeIptables;
  const rules = [...ipt.table('filter').values()].flatMap((c) => c.rules).join('\n');
  expect(rules.match(/--match-set/g)).toHaveLength(3);
});

const REAL_RUNS = Number(process.env.TORTIE_PROPERTY_RUNS ?? 12);

// The same on the real kernel: ipset and iptables-restore in a fresh namespace per run,
// where "Set ... doesn't exist" and destroying a set in use are the kernel's own errors.
for (const backend of ['legacy', 'nft'] as const)
  describeIf(['root', 'netns', 'iptables', 'ipset'], `on the real kernel (${backend})`, () => {
    const tb = new Testbed();
    afterAll(() => tb.cleanup());

    test(
      'random set and rule changes during applies: restores find their sets, sets end as wanted',
      async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 30 }), async (ops) => {
            const ns = await tb.netns(`order${backend}`);
            const where = { netns: ns.name };
            const ipsets = new ProcessIpsetRunner(where);
            const kernel: Kernel = {
              ipsets,
              iptables: new ProcessIptablesRunner({ backend, family: 4, ...where }),
              members: async (name) => {
                const out = await ns.exec(['ipset', 'list', name]).catch(() => undefined);
                if (out === undefined) return undefined;
                const at = out.indexOf('Members:\n');
                // the kernel lists a /32 of hash:net as the bare address
                return out
                  .slice(at + 9)
                  .split('\n')
                  .filter(Boolean)
                  .map((m) => (m.includes('/') || m.includes(',') ? m : `${m}/32`));
              },
            };
            try {
              const { want, applyErrors, ipsetErrors, rejected } = await run(ops, kernel);
              expect(ipsetErrors).toEqual([]);
              expect(applyErrors).toEqual([]);
              expect(rejected).toEqual([]);
              await expectSetsAsWanted(kernel, want);
            } finally {
              await ns.destroy();
            }
          }),
          {
            numRuns: REAL_RUNS,
            seed: Number(process.env.TORTIE_PROPERTY_SEED ?? 20261204),
          },
        );
      },
      60_000 + REAL_RUNS * 6_000,
    );
  });
