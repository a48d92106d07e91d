// Policy-model rules -> dataplane rules: every selector becomes an IP set (shared by
// equal selections), ports split into numeric ranges and named-port sets.
import { createHash } from 'node:crypto';
import { protocolNumber, type EntityRule, type Port, type Rule } from '@tortie/policy';
import type { DataplaneRule, PortRange } from '../types';
import type { IpSetDef, IpSetIndex } from './ipsets';

export interface RenderedRules {
  rules: DataplaneRule[];
  /** IP set ids referenced (to unref when the rules go). */
  refs: string[];
}

function numericPorts(ports: Port[] | undefined): PortRange[] | undefined {
  const out: PortRange[] = [];
  for (const p of ports ?? []) {
    if (typeof p === 'number') out.push({ first: p, last: p });
    else if (/^\d+$/.test(p)) out.push({ first: Number(p), last: Number(p) });
    else {
      const m = /^(\d+):(\d+)$/.exec(p);
      if (m) out.push({ first: Number(m[1]), last: Number(m[2]) });
    }
  }
  return out.length ? out : undefined;
}

const namedPorts = (ports: Port[] | undefined) =>
  (ports ?? []).filter((p): p is string => typeof p === 'string' && !/^\d+(:\d+)?$/.test(p));

/** One side of a rule: its sets, nets and ports, with the IP sets it references. */
function side(
  e: EntityRule | undefined,
  protocol: number | undefined,
  policyNs: string | undefined,
  ipsets: IpSetIndex,
  refs: string[],
) {
  if (!e) return {};
  const ref = (d: IpSetDef) => {
    const id = ipsets.ref(d);
    refs.push(id);
    return id;
  };
  const selDef: IpSetDef | undefined =
    e.selector !== undefined || e.namespaceSelector !== undefined
      ? {
          kind: 'sel',
          selector: e.selector,
          namespaceSelector: e.namespaceSelector,
          policyNs: e.namespaceSelector === undefined ? policyNs : undefined,
        }
      : undefined;
  const sets: string[] = [];
  if (selDef) sets.push(ref(selDef));
  if (e.serviceAccounts)
    sets.push(
      ref({ kind: 'sa', names: e.serviceAccounts.names, selector: e.serviceAccounts.selector }),
    );
  const named = namedPorts(e.ports);
  return {
    nets: e.nets,
    notNets: e.notNets,
    sets: sets.length ? sets : undefined,
    notSets:
      e.notSelector !== undefined ? [ref({ kind: 'not', selector: e.notSelector })] : undefined,
    ports: numericPorts(e.ports),
    notPorts: numericPorts(e.notPorts),
    namedSets: named.length
      ? named.map((name) => ref({ kind: 'port', side: selDef, name, protocol: protocol ?? 6 }))
      : undefined,
  };
}

const clean = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

export function renderRules(
  rules: Rule[] | undefined,
  owner: string,
  direction: 'inbound' | 'outbound',
  policyNs: string | undefined,
  ipsets: IpSetIndex,
): RenderedRules {
  const refs: string[] = [];
  const out = (rules ?? []).map((r, i): DataplaneRule => {
    const protocol = r.protocol === undefined ? undefined : protocolNumber(r.protocol);
    const src = side(r.source, protocol, policyNs, ipsets, refs);
    const dst = side(r.destination, protocol, policyNs, ipsets, refs);
    const body = clean({
      action: r.action.toLowerCase() as DataplaneRule['action'],
      ipVersion: r.ipVersion,
      protocol,
      notProtocol: r.notProtocol === undefined ? undefined : protocolNumber(r.notProtocol),
      srcNets: src.nets,
      notSrcNets: src.notNets,
      dstNets: dst.nets,
      notDstNets: dst.notNets,
      srcIpSetIds: src.sets,
      notSrcIpSetIds: src.notSets,
      dstIpSetIds: dst.sets,
      notDstIpSetIds: dst.notSets,
      srcPorts: src.ports,
      notSrcPorts: src.notPorts,
      dstPorts: dst.ports,
      notDstPorts: dst.notPorts,
      srcNamedPortIpSetIds: src.namedSets,
      dstNamedPortIpSetIds: dst.namedSets,
      icmp: r.icmp,
      notIcmp: r.notICMP,
    });
    const ruleId = createHash('sha256')
      .update(`${owner}|${direction}|${i}|${JSON.stringify(body)}`)
      .digest('base64url')
      .slice(0, 16);
    return { ...body, ruleId };
  });
  return { rules: out, refs };
}
