// Resources in, this node's peers out: the helpers of the table-driven tests.
import { parseResource, type Resource } from '@tortie/api';
import type { FilterRule } from '@tortie/bgp-speaker';
import { bgpNodeFacts, computeBgp, type BgpConfig, type BgpNode, type BgpWorld } from '../src';

export const R = (kind: string, name: string, spec: object, labels: Record<string, string> = {}) =>
  parseResource({ apiVersion: 'projectcalico.org/v3', kind, metadata: { name, labels }, spec });

/** A Node: "10.0.0.5/24", or [v4, v6] for a dual-stack node. */
export const node = (
  name: string,
  addr: string | [string | undefined, string],
  bgp: object = {},
  labels: Record<string, string> = {},
) => {
  const [v4, v6] = Array.isArray(addr) ? addr : [addr, undefined];
  return R(
    'Node',
    name,
    { bgp: { ...(v4 ? { ipv4Address: v4 } : {}), ...(v6 ? { ipv6Address: v6 } : {}), ...bgp } },
    labels,
  );
};
export const peer = (name: string, spec: object) => R('BGPPeer', name, spec);
export const filter = (name: string, spec: object) => R('BGPFilter', name, spec);
export const config = (name: string, spec: object) => R('BGPConfiguration', name, spec);

/** computeBgp for node `me` of these resources. */
export function topo(me: string, rs: Resource[], extra: Partial<BgpWorld> = {}): BgpConfig {
  const nodes = new Map<string, BgpNode>();
  for (const r of rs) if (r.kind === 'Node') nodes.set(r.metadata.name, bgpNodeFacts(r as never));
  return computeBgp({
    me,
    nodes,
    configs: rs.filter((r) => r.kind === 'BGPConfiguration') as never,
    peers: rs.filter((r) => r.kind === 'BGPPeer') as never,
    filters: rs.filter((r) => r.kind === 'BGPFilter') as never,
    originate: [],
    ...extra,
  });
}

/**
 * Filter rules as "Reject:In 10.0.0.0/8{16,24},Accept:RemotePeers,Accept:if=eth*"; matches
 * c=<community> path=<a.b> prio=<n>, operations +c= +path= +prio=.
 */
const rules = (rs: FilterRule[]) =>
  rs
    .map((r) =>
      [
        r.cidr ? `${r.matchOperator} ${r.cidr}` : '',
        r.prefixLength ? `{${r.prefixLength.min ?? ''},${r.prefixLength.max ?? ''}}` : '',
        r.source ?? '',
        r.interface ? `if=${r.interface}` : '',
        r.peerType ?? '',
        r.community ? `c=${r.community}` : '',
        r.asPathPrefix ? `path=${r.asPathPrefix.join('.')}` : '',
        r.priority !== undefined ? `prio=${r.priority}` : '',
        ...(r.operations ?? []).map((o) =>
          'addCommunity' in o
            ? `+c=${o.addCommunity}`
            : 'prependASPath' in o
              ? `+path=${o.prependASPath.join('.')}`
              : `+prio=${o.setPriority}`,
        ),
      ]
        .filter(Boolean)
        .join(' ')
        .replace(/ \{/, '{'),
    )
    .map((m, i) => `${rs[i].action}${m ? `:${m}` : ''}`)
    .join(',');

/**
 * One family's peers, one line each: "10.0.0.8:179 as 64512 passive rr ttl=1 keep gr=90
 * bfd=300/300x3 md5=secret/key via=10.0.0.254" (flags when set; via, reachableBy's gateway; gr, the graceful restart time, when not 120 s; bfd, its
 * TX/RX intervals in ms and multiplier). The source address is the node's own unless the
 * line says `nosrc` (none) or `src=<address>` (another).
 */
export function peerLines(c: BgpConfig, family: 4 | 6): string[] {
  return c.peers
    .filter((p) => p.address.includes(':') === (family === 6))
    .map((p) =>
      [
        `${family === 6 ? `[${p.address}]` : p.address}:${p.port} as ${p.asNumber}`,
        p.localAsNumber ? `local=${p.localAsNumber}` : '',
        !p.sourceAddress
          ? 'nosrc'
          : p.sourceAddress !== (family === 6 ? c.ipv6Address : c.ipv4Address)
            ? `src=${p.sourceAddress}`
            : '',
        p.passive ? 'passive' : '',
        p.rrClient ? 'rr' : '',
        p.ttlSecurity ? `ttl=${p.ttlSecurity}` : '',
        p.keepOriginalNextHop ? 'keep' : '',
        p.nextHopSelf ? 'self' : '',
        p.allowOwnAs ? `allowas=${p.allowOwnAs}` : '',
        p.restartTimeS !== 120 ? `gr=${p.restartTimeS}` : '',
        p.keepaliveS ? `keepalive=${p.keepaliveS}` : '',
        p.bfd ? `bfd=${p.bfd.minTxMs}/${p.bfd.minRxMs}x${p.bfd.multiplier}` : '',
        p.password ? `md5=${p.password.name}/${p.password.key}` : '',
        p.importFilter ? `import=${rules(p.importFilter)}` : '',
        p.exportFilter ? `export=${rules(p.exportFilter)}` : '',
        p.reachableBy ? `via=${p.reachableBy}` : '',
      ]
        .filter(Boolean)
        .join(' '),
    );
}
