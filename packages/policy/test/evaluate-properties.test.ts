// Evaluation is deterministic and does not depend on the order policies are listed in
// (only on tier order, policy order and names), for random worlds.
import fc from 'fast-check';
import { Evaluator, type Endpoint, type Policy, type Rule } from '../src';

const endpoints: Endpoint[] = ['a', 'b', 'c', 'd'].map((n, i) => ({
  name: n,
  namespace: i < 2 ? 'x' : 'y',
  labels: { app: n, tier: i % 2 ? 'back' : 'front' },
  ips: [`10.0.0.${i + 1}`],
  profiles: ['p'],
}));

const rule: fc.Arbitrary<Rule> = fc.record(
  {
    action: fc.constantFrom('Allow', 'Deny', 'Pass', 'Log'),
    protocol: fc.constantFrom('TCP', 'UDP'),
    source: fc.record(
      { selector: fc.constantFrom("app == 'a'", "tier == 'front'", 'all()', "app != 'c'") },
      { requiredKeys: [] },
    ),
    destination: fc.record(
      { ports: fc.constantFrom([80], ['80:81'], [443]) },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['action'] },
);

const policy: fc.Arbitrary<Policy> = fc
  .record({
    global: fc.boolean(),
    name: fc.constantFrom('p1', 'p2', 'p3', 'p4', 'p5'),
    tier: fc.constantFrom(undefined, 'security', 'platform'),
    order: fc.constantFrom(undefined, 1, 2, 100),
    selector: fc.constantFrom('all()', "tier == 'back'", "app in {'b', 'd'}"),
    ingress: fc.array(rule, { maxLength: 3 }),
    egress: fc.array(rule, { maxLength: 2 }),
  })
  .map((p) => ({
    kind: p.global ? ('GlobalNetworkPolicy' as const) : ('NetworkPolicy' as const),
    metadata: p.global ? { name: p.name } : { name: p.name, namespace: 'x' },
    spec: {
      tier: p.tier,
      order: p.order,
      selector: p.selector,
      ingress: p.ingress,
      egress: p.egress,
      types: ['Ingress' as const, 'Egress' as const],
    },
  }));

test('shuffling the policy list never changes a verdict or its explanation', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(policy, {
        maxLength: 8,
        selector: (p) => `${p.kind}/${p.metadata.namespace}/${p.metadata.name}`,
      }),
      fc.integer(),
      (policies, seed) => {
        const tiers = [
          { name: 'security', order: 10 },
          { name: 'platform', order: 20, defaultAction: 'Pass' as const },
        ];
        const profiles = [
          {
            name: 'p',
            ingress: [{ action: 'Allow' as const }],
            egress: [{ action: 'Allow' as const }],
          },
        ];
        const shuffled = [...policies]
          .sort(
            (a, b) =>
              ((a.metadata.name.charCodeAt(1) * seed) % 7) -
              ((b.metadata.name.charCodeAt(1) * seed) % 7),
          )
          .reverse();
        const e1 = new Evaluator({ endpoints, policies, tiers, profiles });
        const e2 = new Evaluator({ endpoints, policies: shuffled, tiers, profiles });
        for (const src of endpoints) {
          for (const dst of endpoints) {
            if (src === dst) continue;
            for (const dstPort of [80, 443]) {
              const flow = {
                srcIp: src.ips[0],
                dstIp: dst.ips[0],
                protocol: 'TCP' as const,
                dstPort,
              };
              const v1 = e1.evaluate(flow);
              expect(e2.evaluate(flow)).toEqual(v1);
              expect(e1.evaluate(flow)).toEqual(v1); // deterministic
            }
          }
        }
      },
    ),
    { numRuns: 200 },
  );
});
