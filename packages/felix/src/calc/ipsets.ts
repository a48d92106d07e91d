// IP sets of the active rules. A set is created when the first rule that needs it
// becomes active and removed when the last one goes; its members are the addresses of
// every endpoint in the cluster (not only local ones) and the nets of every network set
// its selector picks, or "ip,proto:port" entries for named ports. Members are reference
// counted (two items may contribute the same address) and changes are reported as
// deltas at flush: a new set as one ipset-update, later changes as ipset-delta.
// A rule's `services` set has no selector: its members are the endpoints of the
// Service's EndpointSlices (Felix's serviceindex), each slice one contributor.
import {
  sliceAddresses,
  sliceIpPorts,
  sliceServiceKey,
  type Labels,
  type ServiceSlice,
} from '@tortie/policy';
import type { IpSetUpdate } from '../types';
import type { NamedPortInfo } from './model';
import { ANY_PROTOCOL, type SetDef } from './selections';
import { SelectorIndex } from './selector-index';

/** What an item (endpoint or network set) can put into sets. */
export interface SetItem {
  /** Addresses / CIDRs ("10.0.0.1/32", "192.168.0.0/16"). */
  nets: string[];
  ports: NamedPortInfo[];
}

interface SetState {
  def: SetDef;
  refs: number;
  members: Map<string, number>;
  sent: boolean;
  /** member -> was it present at the last flush (only tracked once the set was sent) */
  dirty: Map<string, boolean>;
  /** item -> members it contributes */
  contrib: Map<string, string[]>;
}

const PROTO_NAMES: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** The members one item gives one set. Pure. */
export function contribution(def: SetDef, item: SetItem): string[] {
  if (!def.namedPort) return item.nets;
  const { name, protocol } = def.namedPort;
  const out: string[] = [];
  for (const p of item.ports) {
    // protocol 0: the rule names no protocol, the port's own one counts (Calico's "any")
    if (p.name !== name || (protocol !== ANY_PROTOCOL && p.protocol !== protocol)) continue;
    const proto = PROTO_NAMES[p.protocol];
    if (!proto) continue;
    for (const n of item.nets) out.push(`${n.split('/')[0]},${proto}:${p.port}`);
  }
  return out;
}

/** The members one EndpointSlice gives a `services` set. Pure. */
export function sliceContribution(def: SetDef, slice: ServiceSlice): string[] {
  if (!def.service?.ports)
    return sliceAddresses(slice).map((a) => `${a}/${a.includes(':') ? 128 : 32}`);
  return sliceIpPorts(slice).map((m) => `${m.ip},${PROTO_NAMES[m.protocol]}:${m.port}`);
}

const sliceItem = (key: string) => `slice:${key}`;

const addTo = (m: Map<string, Set<string>>, k: string, v: string) => {
  const s = m.get(k);
  if (s) s.add(v);
  else m.set(k, new Set([v]));
};
const removeFrom = (m: Map<string, Set<string>>, k: string, v: string) => {
  const s = m.get(k);
  s?.delete(v);
  if (s?.size === 0) m.delete(k);
};

const sameItem = (a: SetItem, b: SetItem) =>
  a.nets.length === b.nets.length &&
  a.nets.every((n, i) => n === b.nets[i]) &&
  JSON.stringify(a.ports) === JSON.stringify(b.ports);

export class IpSetCalculator {
  private readonly index: SelectorIndex<string, string>;
  private readonly sets = new Map<string, SetState>();
  private readonly items = new Map<string, SetItem>();
  private readonly dirtySets = new Set<string>();
  private readonly slices = new Map<string, ServiceSlice>();
  /** service key -> its slices' keys; service key -> the active sets of that service */
  private readonly slicesByService = new Map<string, Set<string>>();
  private readonly setsByService = new Map<string, Set<string>>();

  constructor() {
    this.index = new SelectorIndex({
      started: (s, i) => this.contribute(this.sets.get(s)!, i),
      stopped: (s, i) => this.withdraw(this.sets.get(s)!, i),
    });
  }

  /** Selector evaluations so far (work counter). */
  get evaluations(): number {
    return this.index.evaluations;
  }

  /** A rule needs this set. */
  ref(def: SetDef): void {
    let s = this.sets.get(def.id);
    if (!s) {
      s = { def, refs: 0, members: new Map(), sent: false, dirty: new Map(), contrib: new Map() };
      this.sets.set(def.id, s);
      this.dirtySets.add(def.id);
      if (def.service) {
        addTo(this.setsByService, def.service.key, def.id);
        for (const k of this.slicesByService.get(def.service.key) ?? [])
          this.add(s, sliceItem(k), sliceContribution(def, this.slices.get(k)!));
      } else if (def.selector) this.index.setSelector(def.id, def.selector);
    }
    s.refs++;
  }

  /** A rule no longer needs this set (it goes at the next flush if nothing else does). */
  unref(id: string): void {
    const s = this.sets.get(id);
    if (!s) return;
    s.refs--;
    if (s.refs === 0) this.dirtySets.add(id);
  }

  setItem(key: string, labels: Labels, global: boolean, item: SetItem): void {
    const old = this.items.get(key);
    this.items.set(key, item);
    if (old && !sameItem(old, item)) {
      // same selections, other addresses/ports: redo this item's contributions
      for (const id of this.index.selectorsOf(key)) {
        const s = this.sets.get(id)!;
        this.withdraw(s, key);
        this.contribute(s, key);
      }
    }
    this.index.setItem(key, labels, global);
  }

  /** An EndpointSlice was set (or deleted: undefined); the sets of its Service follow. */
  setSlice(key: string, slice: ServiceSlice | undefined): void {
    const old = this.slices.get(key);
    if (old) {
      const svc = sliceServiceKey(old);
      removeFrom(this.slicesByService, svc, key);
      for (const id of this.setsByService.get(svc) ?? [])
        this.withdraw(this.sets.get(id)!, sliceItem(key));
    }
    if (!slice) {
      this.slices.delete(key);
      return;
    }
    this.slices.set(key, slice);
    const svc = sliceServiceKey(slice);
    addTo(this.slicesByService, svc, key);
    for (const id of this.setsByService.get(svc) ?? []) {
      const s = this.sets.get(id)!;
      this.add(s, sliceItem(key), sliceContribution(s.def, slice));
    }
  }

  deleteItem(key: string): void {
    this.index.deleteItem(key);
    this.items.delete(key);
  }

  /** Members of a set now (tests, diagnostics). */
  members(id: string): string[] {
    return [...(this.sets.get(id)?.members.keys() ?? [])].sort();
  }

  /** Updates for new/changed sets, and removals of unused ones (to send after the rules go). */
  flush(): { updates: IpSetUpdate[]; removes: IpSetUpdate[] } {
    const updates: IpSetUpdate[] = [];
    const removes: IpSetUpdate[] = [];
    for (const id of [...this.dirtySets].sort()) {
      const s = this.sets.get(id);
      if (!s) continue;
      if (s.refs <= 0) {
        if (s.def.service) removeFrom(this.setsByService, s.def.service.key, id);
        else this.index.deleteSelector(id);
        this.sets.delete(id);
        if (s.sent) removes.push({ type: 'ipset-remove', id });
        continue;
      }
      if (!s.sent) {
        s.sent = true;
        updates.push({
          type: 'ipset-update',
          id,
          setType: s.def.type,
          // members of both families share the id; the dataplane splits them by family
          ipVersion: 4,
          members: [...s.members.keys()].sort(),
        });
      } else {
        const added: string[] = [];
        const removed: string[] = [];
        for (const [m, was] of s.dirty) {
          const now = s.members.has(m);
          if (now && !was) added.push(m);
          else if (!now && was) removed.push(m);
        }
        if (added.length || removed.length)
          updates.push({ type: 'ipset-delta', id, added: added.sort(), removed: removed.sort() });
      }
      s.dirty.clear();
    }
    this.dirtySets.clear();
    return { updates, removes };
  }

  private contribute(s: SetState, key: string): void {
    this.add(s, key, contribution(s.def, this.items.get(key)!));
  }

  /** `key` (an item or a slice) gives set `s` these members. */
  private add(s: SetState, key: string, ms: string[]): void {
    s.contrib.set(key, ms);
    for (const m of ms) {
      const n = s.members.get(m) ?? 0;
      if (n === 0) this.touch(s, m, false);
      s.members.set(m, n + 1);
    }
  }

  private withdraw(s: SetState, key: string): void {
    for (const m of s.contrib.get(key) ?? []) {
      const n = s.members.get(m)!;
      if (n === 1) {
        s.members.delete(m);
        this.touch(s, m, true);
      } else s.members.set(m, n - 1);
    }
    s.contrib.delete(key);
  }

  private touch(s: SetState, member: string, wasPresent: boolean): void {
    if (s.sent && !s.dirty.has(member)) s.dirty.set(member, wasPresent);
    this.dirtySets.add(s.def.id);
  }
}
