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
  const [weps, heps, nps, gnps, tiers, profiles, sets, gsets, slices] = await Promise.all([
    list('WorkloadEndpoint'),
    list('HostEndpoint'),
    list('NetworkPolicy'),
    list('GlobalNetworkPolicy'),
    list('Tier'),
    list('Profile'),
    list('NetworkSet'),
    list('GlobalNetworkSet'),
    list('KubernetesEndpointSlice'),
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
    // what rules' `services` matches resolve to
    endpointSlices: slices.map((s) => ({
      namespace: s.metadata.namespace ?? 'default',
      serviceName: s.spec.serviceName,
      ports: s.spec.ports,
      endpoints: s.spec.endpoints,
    })),
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

/** Exit codes of `policy explain`: allowed, denied, depends on the port (none given). */
export const EXPLAIN_EXIT = { allowed: 0, denied: 3, dependsOnPort: 4 } as const;

const PORT_PROTOCOLS = new Set<Protocol>(['TCP', 'UDP', 'SCTP', 'UDPLite']);

/**
 * Destination ports where some rule's verdict can change: every port a rule names (its
 * range ends and their neighbours, named ports resolved on the destination), and one
 * that no rule names. Evaluating these finds any port-specific decision. Pure.
 */
export function candidatePorts(world: PolicyWorld, dstIp: string): number[] {
  const dst = world.endpoints.find((e) => e.ips.includes(dstIp));
  const out = new Set<number>();
  const add = (p: number) => p >= 0 && p <= 65535 && out.add(p);
  const rules = [
    ...world.policies.flatMap((p) => [...(p.spec.ingress ?? []), ...(p.spec.egress ?? [])]),
    ...(world.profiles ?? []).flatMap((p) => [...(p.ingress ?? []), ...(p.egress ?? [])]),
  ];
  for (const r of rules) {
    // a destination `services` match: the ports of the Service's slices
    const svc = r.destination?.services;
    if (svc)
      for (const sl of world.endpointSlices ?? [])
        if (sl.serviceName === svc.name && (!svc.namespace || sl.namespace === svc.namespace))
          for (const p of sl.ports) if (p.port !== undefined) add(p.port);
    for (const port of [...(r.destination?.ports ?? []), ...(r.destination?.notPorts ?? [])]) {
      const range = /^(\d+):(\d+)$/.exec(String(port));
      if (typeof port === 'number' || /^\d+$/.test(port)) add(Number(port));
      else if (range)
        for (const p of [Number(range[1]), Number(range[2])]) [p - 1, p, p + 1].forEach(add);
      else for (const np of dst?.ports ?? []) if (np.name === port) add(np.port);
    }
  }
  let unnamed = 1;
  while (out.has(unnamed)) unnamed++;
  return [...out.add(unnamed)].sort((a, b) => a - b);
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
  if (args.port !== undefined && !/^\d+$/.test(args.port)) {
    io.err(`error: "${args.port}" is not a port`);
    return 1;
  }
  if (args.port !== undefined && Number(args.port) > 65535) {
    io.err(`error: "${args.port}" is not a port (0-65535)`);
    return 1;
  }
  const flow: Flow = {
    srcIp: resolveAddress(world, args.src),
    dstIp: resolveAddress(world, args.dst),
    protocol,
    dstPort: args.port === undefined ? undefined : Number(args.port),
  };
  const evaluator = new Evaluator(world);
  if (args.port === undefined && PORT_PROTOCOLS.has(protocol)) {
    // without a port the verdict may hide a port-specific Deny (or Allow): find out
    const byPort = candidatePorts(world, flow.dstIp).map((p) => ({
      port: p,
      allowed: evaluator.evaluate({ ...flow, dstPort: p }).allowed,
    }));
    const allowed = byPort.filter((v) => v.allowed).map((v) => v.port);
    const denied = byPort.filter((v) => !v.allowed).map((v) => v.port);
    if (allowed.length && denied.length) {
      const list = (ps: number[]) => ps.slice(0, 8).join(', ') + (ps.length > 8 ? ', ...' : '');
      io.out(
        `${flow.srcIp} -> ${flow.dstIp} ${protocol}: DEPENDS ON THE PORT ` +
          `(allowed on ${list(allowed)}; denied on ${list(denied)}); give a PORT for the whole explanation`,
      );
      return EXPLAIN_EXIT.dependsOnPort;
    }
    const verdict = evaluator.evaluate({ ...flow, dstPort: byPort[0].port });
    io.out(explain(verdict, { ...flow, dstPort: byPort[0].port }));
    io.out(`  (the same on every port)`);
    return verdict.allowed ? EXPLAIN_EXIT.allowed : EXPLAIN_EXIT.denied;
  }
  const verdict = evaluator.evaluate(flow);
  io.out(explain(verdict, flow));
  return verdict.allowed ? EXPLAIN_EXIT.allowed : EXPLAIN_EXIT.denied;
}
