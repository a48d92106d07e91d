// Policy-model rules -> dataplane rules: selectors become IP set ids (selections.ts),
// ports split into numeric ranges and named-port sets, protocols into numbers. Pure:
// the caller takes references on the returned sets.
import { protocolNumber, type EntityRule, type Port, type Rule } from '@tortie/policy';
import type { DataplaneRule, PortRange } from '../types';
import { ruleId } from './ids';
import { sideSets, type SetDef } from './selections';

export interface RenderedRules {
  rules: DataplaneRule[];
  /** Every set the rules reference (one entry per reference). */
  sets: SetDef[];
  /** Rules that could not be rendered faithfully, and what was done about them. */
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
        const s = sideSets(e, policyNs, protocol, namedPorts(e?.ports));
        sets.push(...(s.sel ? [s.sel] : []), ...(s.not ? [s.not] : []), ...s.named);
        return s;
      };
      const src = side(r.source);
      const dst = side(r.destination);
      body = clean({
        action: r.action.toLowerCase() as DataplaneRule['action'],
        ipVersion: r.ipVersion,
        protocol,
        notProtocol: r.notProtocol === undefined ? undefined : protocolNumber(r.notProtocol),
        srcNets: r.source?.nets,
        notSrcNets: r.source?.notNets,
        dstNets: r.destination?.nets,
        notDstNets: r.destination?.notNets,
        srcIpSetIds: src.sel ? [src.sel.id] : undefined,
        notSrcIpSetIds: src.not ? [src.not.id] : undefined,
        dstIpSetIds: dst.sel ? [dst.sel.id] : undefined,
        notDstIpSetIds: dst.not ? [dst.not.id] : undefined,
        srcPorts: numericPorts(r.source?.ports),
        notSrcPorts: numericPorts(r.source?.notPorts),
        dstPorts: numericPorts(r.destination?.ports),
        notDstPorts: numericPorts(r.destination?.notPorts),
        srcNamedPortIpSetIds: src.named.length ? src.named.map((s) => s.id) : undefined,
        dstNamedPortIpSetIds: dst.named.length ? dst.named.map((s) => s.id) : undefined,
        icmp: r.icmp,
        notIcmp: r.notICMP,
      });
    } catch (err) {
      out.problems.push(`${where} dropped: ${(err as Error).message}`);
      return;
    }
    // The contract has no negated named-port sets: never widen what a rule lets through.
    const namedNot = [...namedPorts(r.source?.notPorts), ...namedPorts(r.destination?.notPorts)];
    if (namedNot.length) {
      if (r.action !== 'Deny') {
        out.problems.push(`${where} dropped: named notPorts (${namedNot.join(', ')}) unsupported`);
        return;
      }
      out.problems.push(`${where}: named notPorts (${namedNot.join(', ')}) ignored (denies more)`);
    }
    out.sets.push(...sets);
    out.rules.push({ ...body, ruleId: ruleId(owner, direction, i, body) });
  });
  return out;
}
