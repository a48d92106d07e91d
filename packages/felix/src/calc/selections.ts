// Selectors over the flat labels of model.ts: which endpoints a policy applies to, and
// which endpoints / network sets an IP set holds for one side of a rule, combined as
// Calico combines them (selector && namespace scope && service accounts). An IP set is
// identified by the hash of its canonical flat selector, so equal selections share
// one set whatever rule or policy they come from. Pure.
import type { EntityRule, PolicySpec } from '@tortie/policy';
import {
  parseSelector,
  printSelector,
  replaceAll,
  sideSelection,
  type Selector,
} from '@tortie/policy';
import type { IpSetType } from '../types';
import { ipSetId } from './ids';
import { KIND, NS, NS_LABEL, SA, SA_LABEL } from './model';

/** A named-port set of a rule without a protocol: each endpoint port's own protocol. */
export const ANY_PROTOCOL = 0;

export interface SetDef {
  id: string;
  type: IpSetType;
  /** Which endpoints and network sets contribute (absent for a Service's set). */
  selector?: Selector;
  /** hash:ip,port sets: endpoints contribute "ip,proto:port" for this named port. */
  namedPort?: { name: string; protocol: number };
  /**
   * A rule's `services` match: the members come from the EndpointSlices of the Service
   * "<namespace>/<name>", as "ip,proto:port" (destination) or "ip/32" (source).
   */
  service?: { key: string; ports: boolean };
}

/**
 * The set of a rule side's `services` match, as Felix's rule scanner makes it: with the
 * slice ports in a destination (hash:ip,port), the addresses alone in a source (hash:net).
 * Felix names them "svc" / "svcnoport" + the service; so does this id.
 */
export function serviceSet(key: string, ports: boolean): SetDef {
  const type: IpSetType = ports ? 'hash:ip,port' : 'hash:net';
  return { id: ipSetId(`${ports ? 'svc' : 'svcnoport'}|${key}`), type, service: { key, ports } };
}

const eq = (key: string, value: string): Selector => ({ op: '==', key, value });
/** Conjunction; all() terms add nothing, so equal selections hash equal. */
function and(terms: Selector[]): Selector {
  const args = terms.filter((t) => t.op !== 'all');
  return args.length === 0 ? { op: 'all' } : args.length === 1 ? args[0] : { op: 'and', args };
}
const ENDPOINTS: Selector = { op: 'in', key: KIND, values: ['hep', 'wep'] };

/** The selector with every label key moved under a reserved prefix. */
export function prefixKeys(s: Selector, prefix: string): Selector {
  switch (s.op) {
    case 'all':
    case 'global':
      return s;
    case 'not':
      return { op: 'not', arg: prefixKeys(s.arg, prefix) };
    case 'and':
    case 'or':
      return { op: s.op, args: s.args.map((a) => prefixKeys(a, prefix)) };
    default:
      return { ...s, key: `${prefix}${s.key}` };
  }
}

/**
 * Which endpoints a policy applies to: its namespace (NetworkPolicy), namespaceSelector
 * (GlobalNetworkPolicy, namespaced endpoints only), serviceAccountSelector, selector.
 */
export function policySelector(spec: PolicySpec, namespace: string | undefined): Selector {
  const parts: Selector[] = [];
  if (namespace !== undefined) parts.push(eq(NS, namespace));
  if (spec.namespaceSelector !== undefined)
    parts.push({ op: 'has', key: NS }, prefixKeys(parseSelector(spec.namespaceSelector), NS_LABEL));
  if (spec.serviceAccountSelector !== undefined)
    parts.push(
      { op: 'has', key: SA },
      prefixKeys(parseSelector(spec.serviceAccountSelector), SA_LABEL),
    );
  parts.push(parseSelector(spec.selector ?? 'all()'));
  return and(parts);
}

function def(type: IpSetType, selector: Selector, namedPort?: SetDef['namedPort']): SetDef {
  const canonical = `${type}|${printSelector(selector)}${namedPort ? `|${namedPort.protocol}:${namedPort.name}` : ''}`;
  return { id: ipSetId(canonical), type, selector, ...(namedPort ? { namedPort } : {}) };
}

/**
 * The positive selection of a rule side, as Calico's getEndpointSelector builds it
 * (libcalico-go updateprocessors/rules.go) and the reference evaluator reads it: the
 * selector and the service accounts, scoped to namespaces (the namespaceSelector, where
 * all() means any namespace; else a namespaced policy's own namespace) as soon as any
 * selector field is used, notSelector included. It picks endpoints and network sets
 * alike. Undefined: no positive constraint.
 */
export function sideSelector(e: EntityRule, policyNs: string | undefined): Selector | undefined {
  const sa = e.serviceAccounts;
  const { serviceAccounts: saUsed, positive } = sideSelection(e, policyNs);
  if (!positive) return undefined;
  const parts: Selector[] = [];
  if (e.namespaceSelector !== undefined)
    parts.push(
      // prefixed first: all() stays all() there, then becomes "in a namespace"
      replaceAll(prefixKeys(parseSelector(e.namespaceSelector), NS_LABEL), { op: 'has', key: NS }),
    );
  else if (policyNs !== undefined) parts.push(eq(NS, policyNs));
  if (saUsed && sa) {
    parts.push({ op: 'has', key: SA });
    if (sa.names?.length) parts.push({ op: 'in', key: SA, values: [...sa.names] });
    if (sa.selector !== undefined) parts.push(prefixKeys(parseSelector(sa.selector), SA_LABEL));
  }
  if (e.selector !== undefined) parts.push(parseSelector(e.selector));
  return and(parts);
}

/** Sets of one rule side: the selection, the notSelector, one per named port and named notPort. */
export function sideSets(
  e: EntityRule | undefined,
  policyNs: string | undefined,
  protocol: number | undefined,
  namedPorts: string[],
  namedNotPorts: string[] = [],
): { sel?: SetDef; not?: SetDef; named: SetDef[]; notNamed: SetDef[] } {
  if (!e) return { named: [], notNamed: [] };
  const selSel = sideSelector(e, policyNs);
  const out: ReturnType<typeof sideSets> = { named: [], notNamed: [] };
  if (selSel) out.sel = def('hash:net', selSel);
  // notSelector: whatever its labels pick, endpoints and network sets, in any namespace
  if (e.notSelector !== undefined) out.not = def('hash:net', parseSelector(e.notSelector));
  // named ports resolve on the endpoints of this side (all endpoints without a
  // selection): a port's name means what that endpoint calls it
  const namedSet = (name: string) =>
    def('hash:ip,port', and([ENDPOINTS, ...(selSel ? [selSel] : [])]), {
      name,
      protocol: protocol ?? ANY_PROTOCOL,
    });
  out.named = namedPorts.map(namedSet);
  out.notNamed = namedNotPorts.map(namedSet);
  return out;
}
