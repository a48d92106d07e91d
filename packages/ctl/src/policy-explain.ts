// `tortiectl policy explain SRC DST PORT`: the reference evaluator over what the
// datastore holds, printing the verdict and the tiers / policies / rules behind it.
import type { Resource } from '@tortie/api';
import type { Datastore } from '@tortie/datastore';
import {
  Evaluator,
  explain,
  type Endpoint,
  type Flow,
  type Policy,
  type PolicyWorld,
  type Protocol,
} from '@tortie/policy';
import type { Io } from './commands';

/** Calico's namespace profiles carry the namespace labels as "pcns.<key>". */
const NS_PROFILE = /^kns\.(.+)$/;
const NS_LABEL = /^pcns\./;

export async function loadPolicyWorld(ds: Datastore): Promise<PolicyWorld> {
  const list = async <K extends Resource['kind']>(kind: K) =>
    (await ds.list({ kind })).items as Array<Resource<K>>;
  const [weps, heps, nps, gnps, tiers, profiles, sets, gsets] = await Promise.all([
    list('WorkloadEndpoint'),
    list('HostEndpoint'),
    list('NetworkPolicy'),
    list('GlobalNetworkPolicy'),
    list('Tier'),
    list('Profile'),
    list('NetworkSet'),
    list('GlobalNetworkSet'),
  ]);
  const endpoints: Endpoint[] = [
    ...weps.map((w) => ({
      name: w.spec.pod ?? w.metadata.name,
      namespace: w.metadata.namespace,
      labels: w.metadata.labels ?? {},
      ips: w.spec.ipNetworks.map((n) => n.split('/')[0]),
      ports: w.spec.ports?.map((p) => ({
        name: p.name,
        port: p.port,
        protocol: p.protocol as Protocol,
      })),
      serviceAccount: w.spec.serviceAccountName,
      profiles: w.spec.profiles,
    })),
    ...heps.map((h) => ({
      name: h.metadata.name,
      labels: h.metadata.labels ?? {},
      ips: h.spec.expectedIPs ?? [],
      profiles: h.spec.profiles,
    })),
  ];
  const namespaces = profiles.flatMap((p) => {
    const m = NS_PROFILE.exec(p.metadata.name);
    if (!m) return [];
    const labels = Object.fromEntries(
      Object.entries(p.spec.labelsToApply ?? {})
        .filter(([k]) => NS_LABEL.test(k))
        .map(([k, v]) => [k.replace(NS_LABEL, ''), v]),
    );
    return [{ name: m[1], labels }];
  });
  const policies: Policy[] = [
    ...nps.map((p) => ({
      kind: 'NetworkPolicy' as const,
      metadata: { name: p.metadata.name, namespace: p.metadata.namespace },
      spec: p.spec as Policy['spec'],
    })),
    ...gnps.map((p) => ({
      kind: 'GlobalNetworkPolicy' as const,
      metadata: { name: p.metadata.name },
      spec: p.spec as Policy['spec'],
    })),
  ];
  return {
    endpoints,
    namespaces,
    policies,
    tiers: tiers.map((t) => ({
      name: t.metadata.name,
      order: t.spec.order,
      defaultAction: t.spec.defaultAction,
    })),
    profiles: profiles.map((p) => ({
      name: p.metadata.name,
      ingress: p.spec.ingress as Policy['spec']['ingress'],
      egress: p.spec.egress as Policy['spec']['egress'],
    })),
    networkSets: [
      ...sets.map((s) => ({
        name: s.metadata.name,
        namespace: s.metadata.namespace,
        labels: s.metadata.labels ?? {},
        nets: s.spec.nets,
      })),
      ...gsets.map((s) => ({
        name: s.metadata.name,
        labels: s.metadata.labels ?? {},
        nets: s.spec.nets,
      })),
    ],
  };
}

/** SRC/DST: an IP, or "namespace/pod" of a workload endpoint. */
function resolveAddress(world: PolicyWorld, what: string): string {
  if (/^[0-9a-f.:]+$/i.test(what) && (what.includes('.') || what.includes(':'))) return what;
  const [ns, name] = what.includes('/') ? what.split('/', 2) : ['default', what];
  const ep = world.endpoints.find((e) => e.namespace === ns && e.name === name);
  if (!ep?.ips.length) throw new Error(`no workload endpoint "${ns}/${name}" with an address`);
  return ep.ips[0];
}

export async function policyExplain(
  ds: Datastore,
  args: { src: string; dst: string; port?: string; protocol?: string },
  io: Io,
): Promise<number> {
  const world = await loadPolicyWorld(ds);
  const protocol = (args.protocol ?? 'TCP')
    .toUpperCase()
    .replace('ICMPV6', 'ICMPv6')
    .replace('UDPLITE', 'UDPLite') as Protocol;
  const flow: Flow = {
    srcIp: resolveAddress(world, args.src),
    dstIp: resolveAddress(world, args.dst),
    protocol,
    dstPort: args.port === undefined ? undefined : Number(args.port),
  };
  if (args.port !== undefined && !(Number(args.port) >= 0 && Number(args.port) <= 65535)) {
    io.err(`error: "${args.port}" is not a port`);
    return 1;
  }
  const verdict = new Evaluator(world).evaluate(flow);
  io.out(explain(verdict, flow));
  return 0;
}
