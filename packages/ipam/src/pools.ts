// Which pools an allocation may use, and which addresses are reserved. Pure.
import type { Resource } from '@tortie/api';
import { matches, parseSelector, type Labels } from '@tortie/policy';
import { IpamError } from './errors';
import { containsIp, parseCidr, parseIp, type Cidr, type IpVersion } from '@tortie/netaddr';

export interface Pool {
  name: string;
  cidr: Cidr;
  cidrText: string;
  blockSize: number;
}

function toPool(r: Resource<'IPPool'>): Pool {
  return {
    name: r.metadata.name,
    cidr: parseCidr(r.spec.cidr),
    cidrText: r.spec.cidr,
    blockSize: r.spec.blockSize,
  };
}

/** Who an allocation is for, as pool selection sees it. */
export interface PoolChoice {
  nodeLabels: Labels;
  /** The pod's namespace's labels; none (tunnel addresses, services) reads as {}, as Calico. */
  namespaceLabels?: Labels;
  /** Pool names or CIDRs asked for (CNI config ipv4_pools, pod annotations). */
  requested?: string[];
}

/**
 * Pools for a workload allocation of one IP version on a node, as libcalico-go's
 * determinePools: the `requested` ones (pool names or CIDRs), used whatever their
 * selectors and assignment mode, naming one that does not exist being an error; else
 * the enabled pools allowed for workloads, in automatic assignment mode, whose
 * nodeSelector picks the node and whose namespaceSelector picks the namespace.
 */
export function poolsFor(
  all: Resource<'IPPool'>[],
  version: IpVersion,
  { nodeLabels, namespaceLabels = {}, requested }: PoolChoice,
): Pool[] {
  const ofVersion = all.filter((p) => parseCidr(p.spec.cidr).version === version);
  let chosen = ofVersion;
  if (requested?.length) {
    chosen = requested.map((want) => {
      const p = ofVersion.find((x) => x.metadata.name === want || x.spec.cidr === want);
      if (!p) throw new IpamError('NoPool', `IPv${version} pool "${want}" does not exist`);
      if (p.spec.disabled) throw new IpamError('NoPool', `IP pool "${want}" is disabled`);
      return p;
    });
  } else {
    chosen = ofVersion
      .filter((p) => !p.spec.disabled && p.spec.allowedUses.includes('Workload'))
      .filter((p) => (p.spec.assignmentMode ?? 'Automatic') === 'Automatic')
      .filter((p) => matches(parseSelector(p.spec.nodeSelector), nodeLabels))
      .filter(
        (p) =>
          !p.spec.namespaceSelector ||
          matches(parseSelector(p.spec.namespaceSelector), namespaceLabels),
      )
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }
  return chosen.map(toPool);
}

/** The pool holding an address, enabled or not. */
export function poolOf(all: Resource<'IPPool'>[], ip: string): Pool | undefined {
  const { version, value } = parseIp(ip);
  const p = all.find((x) => containsIp(parseCidr(x.spec.cidr), version, value));
  return p && toPool(p);
}

/** A predicate for addresses IPReservations keep out of automatic allocation. */
export function reservedBy(reservations: Resource<'IPReservation'>[]): (ip: string) => boolean {
  const nets = reservations.flatMap((r) => r.spec.reservedCIDRs.map((c) => parseCidr(c)));
  if (nets.length === 0) return () => false;
  return (ip) => {
    const { version, value } = parseIp(ip);
    return nets.some((n) => containsIp(n, version, value));
  };
}
