// Adj-RIB-In of one peer (RFC 4271 §3.2): the routes it sent us that passed the import
// loop checks, as prefix -> shared Path. A route that fails a check is treated as
// withdrawn (RFC 4271 §9.1.2, RFC 4456 §8), so a looped re-announcement removes the
// good route it replaces.
import { inIpv4Subnet, ipv4ToNumber, isHostAddress, isLoopback } from '../prefix';
import type { Afi, PathAttributes, Prefix } from '../types';
import type { AttributeStore } from './attribute-store';
import { PrefixMap } from './prefix-map';
import { filterRoute } from './route-filter';
import type { LocalIdentity, Path, PeerInfo } from './types';

export interface ImportOptions {
  /** How many times our own AS may appear in an eBGP-received AS_PATH (BIRD's "allow local as"). */
  allowOwnAs?: number;
  /** Told when an UPDATE's routes are dropped by a loop check (for the log). */
  onReject?: (reason: string, prefixes: number) => void;
}

/**
 * RFC 4271 §6.3: a NEXT_HOP that is semantically incorrect makes the route ignored (no
 * NOTIFICATION): an address that is no host's, one of ours, or, from an external peer one
 * hop away (its address inside the subnet we share), neither its address nor in that subnet.
 */
export function nextHopRejection(peer: PeerInfo, nextHop: string): string | undefined {
  if (!isHostAddress(nextHop)) return `NEXT_HOP ${nextHop} is not a host address`;
  // a loopback address is only ever the sender's own: from a peer that is not on our
  // loopback it can name no host we could forward to (FRR's martian next hop check)
  if (isLoopback(nextHop) && !isLoopback(peer.address))
    return `NEXT_HOP ${nextHop} is a loopback address`;
  const ours = peer.localAddress;
  if (nextHop === ours.ipv4 || nextHop === ours.ipv6 || nextHop === peer.localEndpoint)
    return `NEXT_HOP ${nextHop} is our own address`;
  const shared = peer.sharedSubnet;
  if (
    !peer.ibgp &&
    shared &&
    inIpv4Subnet(peer.address, shared) &&
    ipv4ToNumber(nextHop) >= 0 &&
    nextHop !== peer.address &&
    !inIpv4Subnet(nextHop, shared)
  )
    return `NEXT_HOP ${nextHop} is neither the peer's address nor in the shared subnet ${shared}`;
  return undefined;
}

/** Why a route with `a` from `peer` must not be used, if it must not (next hop, loop checks). */
export function importRejection(
  peer: PeerInfo,
  a: PathAttributes,
  local: LocalIdentity,
  allowOwnAs = 0,
): string | undefined {
  const nh = a.nextHop === undefined ? undefined : nextHopRejection(peer, a.nextHop);
  if (nh) return nh;
  if (!peer.ibgp) {
    let own = 0;
    // the AS we are towards this peer (its localAsn, BIRD's `local as`)
    for (const s of a.asPath) for (const asn of s.asns) if (asn === peer.localAsn) own++;
    if (own > allowOwnAs) return `AS_PATH contains our AS ${peer.localAsn}`;
  }
  if (a.originatorId === local.routerId) return 'ORIGINATOR_ID is our router id';
  const cluster = local.clusterId ?? local.routerId;
  if (a.clusterList?.includes(cluster)) return `CLUSTER_LIST contains our cluster id ${cluster}`;
  return undefined;
}

export class AdjRibIn {
  private readonly routes = new PrefixMap<Path>();
  /** This peer's Path per interned attribute set; weak, so a set nobody uses is freed. */
  private readonly paths = new WeakMap<PathAttributes, Path>();
  /**
   * Routes kept from a previous session of a restarting peer (RFC 4724 §4.2): still
   * used, until the peer announces them again or they are flushed.
   */
  private readonly stale = new Set<Prefix>();

  constructor(
    readonly peer: PeerInfo,
    private readonly store: AttributeStore,
    private readonly local: LocalIdentity,
    private readonly opts: ImportOptions = {},
  ) {}

  /**
   * Applies one UPDATE: `withdrawn` first, then `nlri` announced with `attrs` (null:
   * nothing announced). Returns the prefixes whose route from this peer changed.
   */
  apply(
    withdrawn: readonly Prefix[],
    attrs: PathAttributes | null,
    nlri: readonly Prefix[],
  ): Prefix[] {
    const changed: Prefix[] = [];
    this.applyEach(withdrawn, attrs, nlri, (p) => changed.push(p));
    return changed;
  }

  /**
   * apply(), telling `onChange` each changed prefix with its route from this peer now
   * (undefined: none), so the caller needs no second lookup. Withdrawals are told
   * first, with the route the UPDATE leaves: a prefix withdrawn and announced again in
   * one UPDATE is told its new route (and then again, which changes nothing).
   */
  applyEach(
    withdrawn: readonly Prefix[],
    attrs: PathAttributes | null,
    nlri: readonly Prefix[],
    onChange: (prefix: Prefix, path: Path | undefined) => void,
  ): void {
    const stale = this.stale.size > 0;
    let gone: Prefix[] | undefined;
    for (const p of withdrawn) {
      if (stale) this.stale.delete(p);
      if (this.routes.delete(p)) (gone ??= []).push(p);
    }
    if (attrs && nlri.length > 0) {
      // announced again in the new session: no longer stale, whatever happens below
      if (stale) for (const p of nlri) this.stale.delete(p);
      const path = this.pathFor(attrs, nlri.length);
      if (!path) {
        for (const p of nlri) if (this.routes.delete(p)) (gone ??= []).push(p);
      } else {
        const filter = this.peer.importFilter;
        // the route each prefix is kept as: the UPDATE's path, one the import filter's
        // operations changed (shared per deciding rule), or none (rejected)
        const byRule = new Map<number, Path | undefined>();
        const kept = (p: Prefix): Path | undefined =>
          filter ? this.imported(p, path, byRule) : path;
        if (gone) {
          const again = new Map<Prefix, Path | undefined>();
          for (const p of nlri) again.set(p, kept(p));
          for (const p of gone) onChange(p, again.get(p));
          gone = undefined;
        }
        for (const p of nlri) {
          const route = kept(p);
          // a route the import filter rejects is as if withdrawn (BIRD keeps no filtered route)
          if (!route) {
            if (this.routes.delete(p)) onChange(p, undefined);
            continue;
          }
          // same attributes again: no change
          if (this.routes.swap(p, route) !== route) onChange(p, route);
        }
      }
    }
    if (gone) for (const p of gone) onChange(p, undefined);
  }

  /** `path` as the import filter leaves it for `prefix`: unchanged, changed, or rejected. */
  private imported(
    prefix: Prefix,
    path: Path,
    byRule: Map<number, Path | undefined>,
  ): Path | undefined {
    const { importFilter, iface, ibgp } = this.peer;
    const out = filterRoute(importFilter, {
      prefix,
      learned: true,
      iface,
      ibgp,
      attrs: path.attrs,
    });
    if (out.action === 'Reject') return undefined;
    if (!out.attrs || out.rule === undefined) return path;
    if (!byRule.has(out.rule)) byRule.set(out.rule, this.shared(out.attrs));
    return byRule.get(out.rule);
  }

  get(prefix: Prefix): Path | undefined {
    return this.routes.get(prefix);
  }

  /** Session down: forgets every route and returns their prefixes (to withdraw them). */
  clear(): Prefix[] {
    const all = [...this.routes.keys()];
    this.routes.clear();
    this.stale.clear();
    return all;
  }

  /** Marks every route of the families in `afis` stale (the session went down gracefully). */
  markStale(afis: readonly Afi[]): void {
    for (const p of this.routes.keys()) if (afis.includes(afiOf(p))) this.stale.add(p);
  }

  /** Forgets the routes of family `afi` (both when omitted) and returns their prefixes. */
  removeFamily(afi?: Afi): Prefix[] {
    const out: Prefix[] = [];
    for (const p of this.routes.keys()) if (afi === undefined || afiOf(p) === afi) out.push(p);
    for (const p of out) {
      this.routes.delete(p);
      this.stale.delete(p);
    }
    return out;
  }

  /** Forgets the stale routes of family `afi` (all when omitted) and returns their prefixes. */
  removeStale(afi?: Afi): Prefix[] {
    const out: Prefix[] = [];
    for (const p of this.stale) if (afi === undefined || afiOf(p) === afi) out.push(p);
    for (const p of out) {
      this.stale.delete(p);
      this.routes.delete(p);
    }
    return out;
  }

  isStale(prefix: Prefix): boolean {
    return this.stale.has(prefix);
  }

  get staleCount(): number {
    return this.stale.size;
  }

  /** Routes held (for max-prefix limits and status). */
  get count(): number {
    return this.routes.size;
  }

  entries(): IterableIterator<[Prefix, Path]> {
    return this.routes.entries();
  }

  /** The shared Path for these attributes, or undefined when a loop check rejects them. */
  private pathFor(attrs: PathAttributes, prefixes: number): Path | undefined {
    let a = attrs;
    // LOCAL_PREF from another AS is not ours to honour (RFC 4271 §5.1.5)
    if (!this.peer.ibgp && a.localPref !== undefined) a = { ...a, localPref: undefined };
    const reason = importRejection(this.peer, a, this.local, this.opts.allowOwnAs);
    if (reason) {
      this.opts.onReject?.(reason, prefixes);
      return undefined;
    }
    return this.shared(a);
  }

  /** This peer's one Path for attributes equal to `a`. */
  private shared(a: PathAttributes): Path {
    const interned = this.store.intern(a);
    let path = this.paths.get(interned);
    if (!path) {
      path = Object.freeze({ peer: this.peer, attrs: interned });
      this.paths.set(interned, path);
    }
    return path;
  }
}

const afiOf = (p: Prefix): Afi => (p.indexOf(':') >= 0 ? 2 : 1);
