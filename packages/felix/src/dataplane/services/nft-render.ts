// The service plan as nftables state, one table per family (`ip tortie-svc`,
// `ip6 tortie-svc`), laid out as kube-proxy's nftables mode lays it out:
//
//   nat prerouting/output  -> services: one verdict-map lookup on (daddr . proto . dport),
//                             and one on (proto . dport) for local addresses (node ports)
//   clip-<svc>             -> cluster IP entry: mark for masquerade what comes from outside
//                             the cluster; then the service's endpoints (or local ones)
//   ext-<svc>              -> node port / external / load-balancer entry: Cluster policy
//                             masquerades; Local keeps the client address, local endpoints
//   svc-<svc>, svl-<svc>   -> numgen random over all (svc) or local (svl) endpoints
//   ep-<svc>-<n>           -> hairpin mark, affinity record, DNAT to ip:port
//   filter input/forward/output -> reject new connections to a service without endpoints
//                             (ICMP port unreachable, as kube-proxy)
//
// Lookups are O(1) in the number of services, and a change to one service rewrites only
// its own chains and map elements (see nft-diff.ts). Pure: the text is applied elsewhere.
import { createHash } from 'node:crypto';
import type { IpFamily, PlannedEndpoint, ServicePortPlan } from './model';

/** The mark bit kube-proxy uses for "masquerade this" (its masqueradeBit 14). */
export const MASQ_MARK = 0x4000;
export const TABLE = 'tortie-svc';

/** One set's declaration (kept whole: a changed declaration is deleted and re-added). */
export interface NftSet {
  decl: string;
}

/** The desired content of the table, keyed so that two states can be compared. */
export interface NftState {
  family: IpFamily;
  /** chain name -> its rules, in order; base chains carry their hook line first */
  chains: Map<string, string[]>;
  sets: Map<string, NftSet>;
  /** map name -> (key -> verdict) */
  elements: Map<string, Map<string, string>>;
}

export interface RenderOptions {
  family: IpFamily;
  /** the pod networks: traffic from elsewhere to a cluster IP is masqueraded */
  clusterCidrs: string[];
}

const nfFamily = (f: IpFamily) => (f === 6 ? 'ip6' : 'ip');
export const tableRef = (f: IpFamily) => `${nfFamily(f)} ${TABLE}`;

/** The maps every table has: name -> declaration. */
function mapDecls(f: IpFamily): [string, string][] {
  const addr = f === 6 ? 'ipv6_addr' : 'ipv4_addr';
  return [
    ['service-ips', `type ${addr} . inet_proto . inet_service : verdict`],
    ['service-nodeports', 'type inet_proto . inet_service : verdict'],
    ['no-endpoint-services', `type ${addr} . inet_proto . inet_service : verdict`],
    ['no-endpoint-nodeports', 'type inet_proto . inet_service : verdict'],
  ];
}
export const MAPS = (f: IpFamily) => mapDecls(f).map(([n]) => n);

/** The fixed part of the table, the same for every plan. */
export function staticPart(f: IpFamily): string[] {
  const ip = nfFamily(f);
  const loopback = f === 6 ? '::1' : '127.0.0.0/8';
  const localDst = `fib daddr type local ${ip} daddr != ${loopback}`;
  const lines = [`table ${ip} ${TABLE} {`];
  for (const [name, decl] of mapDecls(f)) lines.push(`  map ${name} { ${decl}; }`);
  const chain = (name: string, body: string[]) => {
    lines.push(`  chain ${name} {`, ...body.map((r) => `    ${r}`), '  }');
  };
  chain('nat-prerouting', [
    'type nat hook prerouting priority dstnat; policy accept;',
    'jump services',
  ]);
  chain('nat-output', ['type nat hook output priority -100; policy accept;', 'jump services']);
  chain('nat-postrouting', [
    'type nat hook postrouting priority srcnat; policy accept;',
    'jump masquerading',
  ]);
  chain('services', [
    `${ip} daddr . meta l4proto . th dport vmap @service-ips`,
    `${localDst} meta l4proto . th dport vmap @service-nodeports`,
  ]);
  chain('masquerading', [
    `meta mark & ${hex(MASQ_MARK)} == 0 return`,
    `meta mark set meta mark ^ ${hex(MASQ_MARK)}`,
    'masquerade fully-random',
  ]);
  chain('mark-for-masquerade', [`meta mark set meta mark | ${hex(MASQ_MARK)}`]);
  // before the ordinary filter (priority 0), only for new connections
  for (const hook of ['input', 'forward', 'output']) {
    chain(`filter-${hook}`, [
      `type filter hook ${hook} priority -110; policy accept;`,
      'ct state new jump endpoints-check',
    ]);
  }
  chain('endpoints-check', [
    `${ip} daddr . meta l4proto . th dport vmap @no-endpoint-services`,
    `${localDst} meta l4proto . th dport vmap @no-endpoint-nodeports`,
  ]);
  chain('reject-chain', ['reject']);
  lines.push('}');
  return lines;
}

function hex(n: number) {
  return `0x${n.toString(16)}`;
}

/** A chain-name-safe id for a service port: a short hash, then the readable key. */
export function portId(key: string): string {
  const h = createHash('sha256').update(key).digest('base64url').slice(0, 8);
  return `${h}-${key}`;
}

/** nft names are letters, digits and `/-_.`, at most 256 bytes (IPv6 colons become _). */
const safe = (name: string) => name.replace(/[^A-Za-z0-9_./-]/g, '_').slice(0, 250);

const proto = (p: ServicePortPlan) => p.protocol.toLowerCase();

export function renderServices(plan: readonly ServicePortPlan[], o: RenderOptions): NftState {
  const f = o.family;
  const ip = nfFamily(f);
  const chains = new Map<string, string[]>();
  const sets = new Map<string, NftSet>();
  const elements = new Map<string, Map<string, string>>(MAPS(f).map((m) => [m, new Map()]));
  const put = (map: string, key: string, verdict: string) => elements.get(map)!.set(key, verdict);
  const fromCluster =
    o.clusterCidrs.length > 0 ? `${ip} saddr { ${o.clusterCidrs.join(', ')} }` : undefined;

  for (const p of plan) {
    const id = safe(portId(p.key)).slice(0, 160);
    const pr = proto(p);
    const local = p.endpoints.filter((e) => e.local);
    const hasEndpoints = p.endpoints.length > 0;
    const clusterKeys = p.clusterIPs.map((a) => `${a} . ${pr} . ${p.port}`);
    const extKeys = p.externalIPs.map((a) => `${a} . ${pr} . ${p.port}`);
    const nodePortKey = p.nodePort ? `${pr} . ${p.nodePort}` : undefined;

    if (!hasEndpoints) {
      for (const k of [...clusterKeys, ...extKeys])
        put('no-endpoint-services', k, 'goto reject-chain');
      if (nodePortKey) put('no-endpoint-nodeports', nodePortKey, 'goto reject-chain');
      continue;
    }
    // endpoint chains, shared by svc- and svl-
    const epChain = (e: PlannedEndpoint) => safe(`ep-${id}-${e.ip}-${e.port}`);
    const affSet = (e: PlannedEndpoint) => safe(`aff-${id}-${e.ip}-${e.port}`);
    for (const e of p.endpoints) {
      const rules = [`${ip} saddr ${e.ip} jump mark-for-masquerade`]; // hairpin
      if (p.affinitySeconds !== undefined) {
        sets.set(affSet(e), {
          decl: `type ${f === 6 ? 'ipv6_addr' : 'ipv4_addr'}; flags dynamic,timeout; timeout ${p.affinitySeconds}s;`,
        });
        rules.push(`update @${affSet(e)} { ${ip} saddr }`);
      }
      const to = f === 6 ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
      rules.push(`meta l4proto ${pr} dnat to ${to}`);
      chains.set(epChain(e), rules);
    }
    const spread = (eps: PlannedEndpoint[]): string[] => {
      if (eps.length === 0) return ['drop']; // a Local policy with no local endpoint
      const rules: string[] = [];
      if (p.affinitySeconds !== undefined) {
        for (const e of eps) rules.push(`${ip} saddr @${affSet(e)} goto ${epChain(e)}`);
      }
      if (eps.length === 1) rules.push(`goto ${epChain(eps[0])}`);
      else {
        const arms = eps.map((e, i) => `${i} : goto ${epChain(e)}`).join(', ');
        rules.push(`numgen random mod ${eps.length} vmap { ${arms} }`);
      }
      return rules;
    };
    chains.set(`svc-${id}`, spread(p.endpoints));
    if (p.internalLocal || p.externalLocal) chains.set(`svl-${id}`, spread(local));

    const clip = [
      ...(fromCluster
        ? [`${fromCluster.replace('saddr', 'saddr !=')} jump mark-for-masquerade`]
        : []),
      `goto ${p.internalLocal ? 'svl' : 'svc'}-${id}`,
    ];
    chains.set(`clip-${id}`, clip);
    for (const k of clusterKeys) put('service-ips', k, `goto clip-${id}`);

    if (extKeys.length > 0 || nodePortKey) {
      const ext = p.externalLocal
        ? [
            // pods inside the cluster reach every endpoint, as kube-proxy short-circuits them
            ...(fromCluster ? [`${fromCluster} goto svc-${id}`] : []),
            // the node itself has no client address worth keeping
            `fib saddr type local jump mark-for-masquerade`,
            `fib saddr type local goto svc-${id}`,
            `goto svl-${id}`,
          ]
        : ['jump mark-for-masquerade', `goto svc-${id}`];
      chains.set(`ext-${id}`, ext);
      for (const k of extKeys) put('service-ips', k, `goto ext-${id}`);
      if (nodePortKey) put('service-nodeports', nodePortKey, `goto ext-${id}`);
    }
  }
  return { family: f, chains, sets, elements };
}
