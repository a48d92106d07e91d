// IP sets of the active rules. A set is created when the first rule that needs it
// becomes active and removed when the last one goes; its members are the addresses of
// every endpoint in the cluster (not only local ones) and the nets of every network set
// its selector picks, or "ip,proto:port" entries for named ports. Members are reference
// counted (two items may contribute the same address) and changes are reported as
// deltas at flush: a new set as one ipset-update, later changes as ipset-delta.
import type { Labels } from '@tortie/policy';
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

const sameItem = (a: SetItem, b: SetItem) =>
  a.nets.length === b.nets.length &&
  a.nets.every((n, i) => n === b.nets[i]) &&
  JSON.stringify(a.ports) === JSON.stringify(b.ports);

export class IpSetCalculator {
  private readonly index: SelectorIndex<string, string>;
  private readonly sets = new Map<string, SetState>();
  private readonly items = new Map<string, SetItem>();
  private readonly dirtySets = new Set<string>();

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
      this.index.setSelector(def.id, def.selector);
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
        this.index.deleteSelector(id);
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
    const ms = contribution(s.def, this.items.get(key)!);
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
