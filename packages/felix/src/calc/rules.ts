// Policy-model rules -> dataplane rules: selectors become IP set ids (selections.ts),
// ports split into numeric ranges and named-port sets, protocols into numbers. Pure:
// the caller takes references on the returned sets.
import {
  protocolNumber,
  serviceMatchKey,
  type EntityRule,
  type Port,
  type Rule,
} from '@tortie/policy';
import type { DataplaneRule, PortRange } from '../types';
import { ruleId } from './ids';
import { serviceSet, sideSets, type SetDef } from './selections';

export interface RenderedRules {
  rules: DataplaneRule[];
  /** Every set the rules reference (one entry per reference). */
  sets: SetDef[];
  /** Rules that could not be converted (sent as `invalid` rules). */
  problems: string[];
}

const isNumeric = (p: Port) => typeof p === 'number' || /^\d+(:\d+)?$/.test(p);

function numericPorts(ports: Port[] | undefined): PortRange[] | undefined {
  const out: PortRange[] = [];
  for (const p of ports ?? []) {
    if (typeof p === 'number') out.push({ first: p, last: p });
    else {
      const m = /^(\d+)(?::(\d+))?$/.exec(p);
      if (m) out.push({ first: Number(m[1]), last: Number(m[2] ?? m[1]) });
    }
  }
  return out.length ? out : undefined;
}

const namedPorts = (ports: Port[] | undefined) =>
  (ports ?? []).filter((p): p is string => !isNumeric(p));

/** An empty list is no constraint (as in Calico), like an absent one. */
const nonEmpty = <T>(list: T[] | undefined) => (list?.length ? list : undefined);

const ids = (sets: SetDef[]) => (sets.length ? sets.map((s) => s.id) : undefined);

function clean<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function renderRules(
  rules: Rule[] | undefined,
  owner: string,
  direction: 'inbound' | 'outbound',
  policyNs: string | undefined,
): RenderedRules {
  const out: RenderedRules = { rules: [], sets: [], problems: [] };
  (rules ?? []).forEach((r, i) => {
    const where = `${owner} ${direction} rule ${i}`;
    let protocol: number | undefined;
    let body: Omit<DataplaneRule, 'ruleId'>;
    const sets: SetDef[] = [];
    try {
      protocol = r.protocol === undefined ? undefined : protocolNumber(r.protocol);
      const side = (e: EntityRule | undefined) => {
        const s = sideSets(e, policyNs, protocol, namedPorts(e?.ports), namedPorts(e?.notPorts));
        sets.push(...(s.sel ? [s.sel] : []), ...(s.not ? [s.not] : []), ...s.named, ...s.notNamed);
        return s;
      };
      const src = side(r.source);
      const dst = side(r.destination);
      // `services`: the Service's endpoints, with their ports in a destination
      const svc = (e: EntityRule | undefined, ports: boolean) => {
        const key = serviceMatchKey(e?.services, policyNs);
        if (key === undefined) return [];
        const d = serviceSet(key, ports);
        sets.push(d);
        return [d];
      };
      const srcSvc = svc(r.source, false);
      const dstSvc = svc(r.destination, true);
      body = clean({
        action: r.action.toLowerCase() as DataplaneRule['action'],
        ipVersion: r.ipVersion,
        protocol,
        notProtocol: r.notProtocol === undefined ? undefined : protocolNumber(r.notProtocol),
        srcNets: nonEmpty(r.source?.nets),
        notSrcNets: nonEmpty(r.source?.notNets),
        dstNets: nonEmpty(r.destination?.nets),
        notDstNets: nonEmpty(r.destination?.notNets),
        srcIpSetIds: ids([...(src.sel ? [src.sel] : []), ...srcSvc]),
        notSrcIpSetIds: src.not ? [src.not.id] : undefined,
        dstIpSetIds: dst.sel ? [dst.sel.id] : undefined,
        notDstIpSetIds: dst.not ? [dst.not.id] : undefined,
        srcPorts: numericPorts(r.source?.ports),
        notSrcPorts: numericPorts(r.source?.notPorts),
        dstPorts: numericPorts(r.destination?.ports),
        notDstPorts: numericPorts(r.destination?.notPorts),
        srcNamedPortIpSetIds: ids(src.named),
        dstNamedPortIpSetIds: ids([...dst.named, ...dstSvc]),
        notSrcNamedPortIpSetIds: ids(src.notNamed),
        notDstNamedPortIpSetIds: ids(dst.notNamed),
        icmp: r.icmp,
        notIcmp: r.notICMP,
      });
    } catch (err) {
      // kept as an invalid rule: the dataplane fails the policy closed rather than
      // program it without this rule (without a Deny it would allow more)
      const invalid = `${where}: ${(err as Error).message}`;
      out.problems.push(invalid);
      const action = r.action.toLowerCase() as DataplaneRule['action'];
      out.rules.push({ action, invalid, ruleId: ruleId(owner, direction, i, { invalid }) });
      return;
    }
    out.sets.push(...sets);
    out.rules.push({ ...body, ruleId: ruleId(owner, direction, i, body) });
  });
  return out;
}
