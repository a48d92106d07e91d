// IP sets for the selectors active rules use. Each distinct selection (selector with its
// namespace scope, notSelector, service accounts, named port) is one set shared by every
// rule that uses it; members are the addresses of all endpoints in the cluster (and the
// nets of network sets) it selects. Incremental: an endpoint change re-checks that
// endpoint against the active sets only; a new set scans the items once.
import { createHash } from 'node:crypto';
import {
  matches,
  parseSelector,
  protocolNumber,
  type Endpoint,
  type Labels,
  type NetworkSet,
  type Selector,
} from '@tortie/policy';
import type { IpSetUpdate } from '../types';

export type IpSetDef =
  /** A rule side's selector and/or namespaceSelector, scoped to `policyNs` when neither names namespaces. */
  | { kind: 'sel'; selector?: string; namespaceSelector?: string; policyNs?: string }
  | { kind: 'not'; selector: string }
  | { kind: 'sa'; names?: string[]; selector?: string }
  /** Endpoints (of `side`, or all) with a named port: members "ip,proto:port". */
  | { kind: 'port'; side?: IpSetDef; name: string; protocol: number };

export function ipSetId(def: IpSetDef): string {
  // 20 chars keep "tortie40s:<id>" within ipset's 31
  return createHash('sha224').update(JSON.stringify(def)).digest('base64url').slice(0, 20);
}

const selCache = new Map<string, Selector>();
function sel(text: string): Selector {
  let s = selCache.get(text);
  if (!s) selCache.set(text, (s = parseSelector(text)));
  return s;
}

type Item = { kind: 'ep'; ep: Endpoint } | { kind: 'net'; set: NetworkSet };

const hostBits = (ip: string) => (ip.includes(':') ? `${ip}/128` : `${ip}/32`);
const PROTO_NAMES: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** The members an item contributes to a set (pure, given namespace labels). */
export function contribution(
  def: IpSetDef,
  item: Item,
  nsLabels: (ns: string) => Labels,
): string[] {
  switch (def.kind) {
    case 'sel': {
      const ns = item.kind === 'ep' ? item.ep.namespace : item.set.namespace;
      const inScope =
        def.namespaceSelector !== undefined
          ? ns === undefined
            ? matches(sel(def.namespaceSelector), {}, { global: true })
            : matches(sel(def.namespaceSelector), nsLabels(ns))
          : def.policyNs === undefined || ns === def.policyNs;
      if (!inScope) return [];
      if (item.kind === 'ep') {
        const ok =
          def.selector === undefined ||
          matches(sel(def.selector), item.ep.labels, { global: ns === undefined });
        return ok ? item.ep.ips.map(hostBits) : [];
      }
      // network sets stand for their nets, and only when a label selector picks them
      if (def.selector === undefined) return [];
      return matches(sel(def.selector), item.set.labels, { global: ns === undefined })
        ? item.set.nets
        : [];
    }
    case 'not':
      return item.kind === 'ep' &&
        matches(sel(def.selector), item.ep.labels, { global: item.ep.namespace === undefined })
        ? item.ep.ips.map(hostBits)
        : [];
    case 'sa': {
      if (item.kind !== 'ep' || !item.ep.serviceAccount) return [];
      if (def.names && !def.names.includes(item.ep.serviceAccount)) return [];
      if (def.selector && !matches(sel(def.selector), item.ep.serviceAccountLabels ?? {}))
        return [];
      return item.ep.ips.map(hostBits);
    }
    case 'port': {
      if (item.kind !== 'ep') return [];
      if (def.side && contribution(def.side, item, nsLabels).length === 0) return [];
      const ports = (item.ep.ports ?? []).filter(
        (p) => p.name === def.name && protocolNumber(p.protocol ?? 'TCP') === def.protocol,
      );
      const proto = PROTO_NAMES[def.protocol] ?? String(def.protocol);
      return ports.flatMap((p) => item.ep.ips.map((ip) => `${ip},${proto}:${p.port}`));
    }
  }
}

interface SetState {
  def: IpSetDef;
  refs: number;
  /** member -> how many items contribute it */
  members: Map<string, number>;
  /** item key -> what it contributes */
  from: Map<string, string[]>;
  /** created since the last flush: send it whole */
  fresh: boolean;
  added: Set<string>;
  removed: Set<string>;
}

export class IpSetIndex {
  private readonly sets = new Map<string, SetState>();
  private readonly items = new Map<string, Item>();
  private readonly gone = new Set<string>();

  constructor(private readonly nsLabels: (ns: string) => Labels) {}

  /** A rule starts using a set (created and filled on first use). */
  ref(def: IpSetDef): string {
    const id = ipSetId(def);
    let s = this.sets.get(id);
    if (!s) {
      s = {
        def,
        refs: 0,
        members: new Map(),
        from: new Map(),
        fresh: true,
        added: new Set(),
        removed: new Set(),
      };
      this.sets.set(id, s);
      this.gone.delete(id);
      for (const [key, item] of this.items) this.recompute(s, key, item);
    }
    s.refs++;
    return id;
  }

  unref(id: string): void {
    const s = this.sets.get(id);
    if (!s || --s.refs > 0) return;
    this.sets.delete(id);
    if (!s.fresh) this.gone.add(id);
  }

  /** An endpoint or network set appeared or changed (undefined: it is gone). */
  setItem(key: string, item: Item | undefined): void {
    if (item) this.items.set(key, item);
    else this.items.delete(key);
    for (const s of this.sets.values()) this.recompute(s, key, item);
  }

  /** Namespace labels changed: every item of the namespace may select differently. */
  namespaceChanged(ns: string): void {
    for (const [key, item] of this.items) {
      const itemNs = item.kind === 'ep' ? item.ep.namespace : item.set.namespace;
      if (itemNs === ns) for (const s of this.sets.values()) this.recompute(s, key, item);
    }
  }

  private recompute(s: SetState, key: string, item: Item | undefined): void {
    const before = s.from.get(key) ?? [];
    const after = item ? contribution(s.def, item, this.nsLabels) : [];
    if (before.length === 0 && after.length === 0) return;
    if (after.length) s.from.set(key, after);
    else s.from.delete(key);
    for (const m of before) {
      const n = (s.members.get(m) ?? 1) - 1;
      if (n > 0) s.members.set(m, n);
      else {
        s.members.delete(m);
        if (s.added.has(m)) s.added.delete(m);
        else s.removed.add(m);
      }
    }
    for (const m of after) {
      const n = s.members.get(m) ?? 0;
      s.members.set(m, n + 1);
      if (n === 0) {
        if (s.removed.has(m)) s.removed.delete(m);
        else s.added.add(m);
      }
    }
  }

  /** The updates since the last flush: new sets whole, then deltas, then removals. */
  flush(): IpSetUpdate[] {
    const out: IpSetUpdate[] = [];
    for (const [id, s] of this.sets) {
      const kind = s.def.kind === 'port' ? 'hash:ip,port' : 'hash:net';
      if (s.fresh) {
        out.push({
          type: 'ipset-update',
          id,
          setType: kind,
          ipVersion: 4,
          members: [...s.members.keys()].sort(),
        });
      } else if (s.added.size || s.removed.size) {
        out.push({
          type: 'ipset-delta',
          id,
          added: [...s.added].sort(),
          removed: [...s.removed].sort(),
        });
      }
      s.fresh = false;
      s.added.clear();
      s.removed.clear();
    }
    for (const id of this.gone) out.push({ type: 'ipset-remove', id });
    this.gone.clear();
    return out;
  }

  members(id: string): string[] {
    return [...(this.sets.get(id)?.members.keys() ?? [])].sort();
  }

  /** How many (set, item) checks a change cost: for tests that prove incrementality. */
  get activeSets(): number {
    return this.sets.size;
  }
}
