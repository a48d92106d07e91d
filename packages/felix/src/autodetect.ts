// Node IP autodetection as calico-node does it (node/pkg/lifecycle/startup/autodetection):
// which of this host's addresses becomes the node's BGP address, for each
// IP_AUTODETECTION_METHOD. Pure: the host's interfaces, the source address the kernel
// picks towards a destination and the Kubernetes node's InternalIPs come in as values
// (read by host-addresses.ts). Every failure names the method and what was found.
import {
  containsIp,
  formatIp,
  ipVersionOf,
  parseCidr,
  parseIp,
  type Cidr,
  type IpVersion,
} from '@tortie/netaddr';

export interface HostAddress {
  address: string;
  prefixLen: number;
}

/** One interface as the kernel lists it (`ip -j addr`), in ifindex order. */
export interface HostInterface {
  name: string;
  index: number;
  addresses: HostAddress[];
}

export type AutodetectMethod =
  | { kind: 'first-found' }
  | { kind: 'interface'; regexes: string[] }
  | { kind: 'skip-interface'; regexes: string[] }
  | { kind: 'cidr'; cidrs: string[] }
  | { kind: 'can-reach'; destination: string }
  | { kind: 'kubernetes-internal-ip' };

/**
 * Calico's DEFAULT_INTERFACES_TO_EXCLUDE for first-found and skip-interface, plus
 * tortie's own VXLAN device (Calico's `vxlan.calico` is `vxlan.tortie` here).
 */
export const DEFAULT_INTERFACES_TO_EXCLUDE = [
  '^docker.*',
  '^cbr.*',
  '^dummy.*',
  '^podman.*',
  '^virbr.*',
  '^lxcbr.*',
  '^veth.*',
  '^lo',
  '^br-.*',
  '^cali.*',
  '^tunl.*',
  '^flannel.*',
  '^kube-ipvs.*',
  '^cni.*',
  '^vxlan\\.calico.*',
  '^vxlan-v6\\.calico.*',
  '^wireguard\\.cali.*',
  '^wg-v6\\.cali.*',
  '^nodelocaldns.*',
  '^vxlan\\.tortie.*',
  '^vxlan-v6\\.tortie.*',
];

export class AutodetectError extends Error {}

/** Calico splits list values on commas with any spaces around them. */
const splitList = (s: string) => s.split(/\s*,\s*/);

/** IP_AUTODETECTION_METHOD's text as a method; throws naming the variable and its value. */
export function parseMethod(text: string | undefined, variable = 'IP_AUTODETECTION_METHOD') {
  const t = text ?? '';
  const bad = (why: string) => new AutodetectError(`${variable}=${JSON.stringify(t)}: ${why}`);
  if (t === '' || t === 'first-found') return { kind: 'first-found' } as AutodetectMethod;
  if (t.startsWith('kubernetes-internal-ip')) return { kind: 'kubernetes-internal-ip' } as const;
  const eq = t.indexOf('=');
  const kind = eq < 0 ? t : t.slice(0, eq + 1);
  const value = eq < 0 ? '' : t.slice(eq + 1);
  switch (kind) {
    case 'interface=':
    case 'skip-interface=': {
      const regexes = splitList(value);
      for (const r of regexes) {
        if (!r) throw bad('an empty interface regex');
        try {
          new RegExp(r);
        } catch (e) {
          throw bad(`"${r}" is not a regular expression (${(e as Error).message})`);
        }
      }
      return { kind: kind.slice(0, -1), regexes } as AutodetectMethod;
    }
    case 'cidr=': {
      const cidrs = splitList(value);
      for (const c of cidrs) {
        if (!c.includes('/') || !ipVersionOf(c.split('/')[0])) throw bad(`"${c}" is not a CIDR`);
        try {
          parseCidr(c);
        } catch {
          throw bad(`"${c}" is not a CIDR`);
        }
      }
      return { kind: 'cidr', cidrs } as const;
    }
    case 'can-reach=':
      if (!value) throw bad('can-reach= needs an address or a host name');
      return { kind: 'can-reach', destination: value } as const;
    default:
      throw bad(
        'not one of first-found, interface=REGEX,..., skip-interface=REGEX,..., can-reach=DEST, cidr=CIDR,..., kubernetes-internal-ip',
      );
  }
}

/** "10.0.0.1/24". */
const cidrText = (a: HostAddress) => `${a.address}/${a.prefixLen}`;

/**
 * Go's IP.IsGlobalUnicast, which Calico uses: not unspecified, loopback, multicast,
 * link-local (169.254/16, fe80::/10) or the IPv4 broadcast address.
 */
export function isGlobalUnicast(address: string): boolean {
  const { version, value } = parseIp(address);
  const within = (c: string) => containsIp(parseCidr(c), version, value);
  if (version === 4) {
    return ![
      '0.0.0.0/32',
      '127.0.0.0/8',
      '224.0.0.0/4',
      '169.254.0.0/16',
      '255.255.255.255/32',
    ].some(within);
  }
  // an IPv4-mapped address is judged as its IPv4 address, as Go does
  if (within('::ffff:0:0/96')) return isGlobalUnicast(formatIp(4, value & 0xffffffffn));
  return !['::/128', '::1/128', 'ff00::/8', 'fe80::/10'].some(within);
}

export interface Detected {
  /** "10.0.0.1/24": the address with its interface's prefix length. */
  cidr: string;
  iface: string;
  /** How it was found, for the log. */
  how: string;
}

const anyOf = (regexes: string[]) =>
  regexes.length ? new RegExp(regexes.map((r) => `(${r})`).join('|')) : undefined;

/** Which pattern of a list matches a name (for the reason a name was skipped). */
const firstMatch = (regexes: string[], name: string) =>
  regexes.find((r) => new RegExp(r).test(name));

/**
 * Calico's FilteredEnumeration: the first global unicast address of the wanted version
 * (and inside one of `cidrs`, when given) on an interface whose name matches `include`
 * (when given) and none of `exclude`. Interfaces are walked from the highest ifindex
 * down, as Calico does ("reverse order to maintain behavior with older versions"), and
 * a host's addresses in the kernel's order. Returns the reason for each interface
 * passed over when nothing is found.
 */
export function enumerate(
  interfaces: HostInterface[],
  version: IpVersion,
  include: string[],
  exclude: string[],
  cidrs: string[],
): { found?: { iface: string; cidr: string }; rejected: string[] } {
  const inc = anyOf(include);
  const exc = anyOf(exclude);
  const nets: Cidr[] = cidrs.map(parseCidr);
  const rejected: string[] = [];
  const ordered = [...interfaces].sort((a, b) => b.index - a.index);
  for (const i of ordered) {
    if (inc && !inc.test(i.name)) {
      rejected.push(`${i.name} (does not match ${include.join(',')})`);
      continue;
    }
    if (exc?.test(i.name)) {
      rejected.push(`${i.name} (excluded by ${firstMatch(exclude, i.name)})`);
      continue;
    }
    const mine = i.addresses.filter((a) => ipVersionOf(a.address) === version);
    if (!mine.length) {
      rejected.push(`${i.name} (no IPv${version} address)`);
      continue;
    }
    const why: string[] = [];
    for (const a of mine) {
      if (!isGlobalUnicast(a.address)) {
        why.push(`${cidrText(a)} is not global unicast`);
        continue;
      }
      const { value } = parseIp(a.address);
      if (nets.length && !nets.some((n) => containsIp(n, version, value))) {
        why.push(`${cidrText(a)} is outside ${cidrs.join(',')}`);
        continue;
      }
      return { found: { iface: i.name, cidr: cidrText(a) }, rejected };
    }
    rejected.push(`${i.name} (${why.join('; ')})`);
  }
  return { rejected };
}

/** The interface address equal to `address` (any interface, no filters), as Calico's GetLocalCIDR. */
export function localCidrOf(
  interfaces: HostInterface[],
  address: string,
): { iface: string; cidr: string } | undefined {
  const want = parseIp(address);
  for (const i of [...interfaces].sort((a, b) => b.index - a.index)) {
    for (const a of i.addresses) {
      if (ipVersionOf(a.address) !== want.version) continue;
      if (parseIp(a.address).value === want.value) return { iface: i.name, cidr: cidrText(a) };
    }
  }
  return undefined;
}

/** What the impure side found for the methods that ask beyond the interface list. */
export interface HostFacts {
  interfaces: HostInterface[];
  /** can-reach: the source address the kernel chose towards the destination, or why it could not. */
  reachSource?: { address?: string; destination?: string; error?: string };
  /** kubernetes-internal-ip: the Kubernetes Node's InternalIP addresses, or why they are unknown. */
  internalIps?: { addresses?: string[]; error?: string };
}

const listed = (interfaces: HostInterface[], version: IpVersion) =>
  interfaces
    .map(
      (i) =>
        `${i.name}[${
          i.addresses
            .filter((a) => ipVersionOf(a.address) === version)
            .map(cidrText)
            .join(' ') || '-'
        }]`,
    )
    .join(', ') || 'none';

/**
 * The node's address for `method`, or an AutodetectError naming the method and what was
 * found (the interfaces considered and why each was passed over: calico#3541).
 */
export function detect(
  method: AutodetectMethod,
  version: IpVersion,
  facts: HostFacts,
  variable = version === 4 ? 'IP_AUTODETECTION_METHOD' : 'IP6_AUTODETECTION_METHOD',
): Detected {
  const name = `${variable}=${methodText(method)}`;
  const fail = (why: string) =>
    new AutodetectError(`${name} found no IPv${version} address: ${why}`);
  const byEnumeration = (inc: string[], exc: string[], cidrs: string[], how: string) => {
    const r = enumerate(facts.interfaces, version, inc, exc, cidrs);
    if (r.found) return { ...r.found, how };
    throw fail(
      r.rejected.length
        ? `interfaces considered: ${r.rejected.join(', ')}`
        : 'the host has no interfaces',
    );
  };
  switch (method.kind) {
    case 'first-found':
      return byEnumeration([], DEFAULT_INTERFACES_TO_EXCLUDE, [], 'first-found');
    case 'interface':
      return byEnumeration(method.regexes, [], [], name);
    case 'skip-interface':
      return byEnumeration([], [...DEFAULT_INTERFACES_TO_EXCLUDE, ...method.regexes], [], name);
    case 'cidr':
      return byEnumeration([], [], method.cidrs, name);
    case 'can-reach': {
      const r = facts.reachSource;
      if (!r?.address) throw fail(r?.error ?? 'no route was looked up');
      const to = r.destination && r.destination !== method.destination ? ` (${r.destination})` : '';
      const local = localCidrOf(facts.interfaces, r.address);
      if (!local)
        throw fail(
          `the kernel's source address towards ${method.destination}${to} is ${r.address}, which is on none of the interfaces: ${listed(facts.interfaces, version)}`,
        );
      return { ...local, how: `${name}: source towards ${method.destination}${to}` };
    }
    case 'kubernetes-internal-ip': {
      const k = facts.internalIps;
      if (!k?.addresses) throw fail(k?.error ?? 'the Kubernetes node was not read');
      const ip = k.addresses.find((a) => ipVersionOf(a) === version);
      if (!ip)
        throw fail(
          `the Kubernetes node has no IPv${version} InternalIP (InternalIPs: ${k.addresses.join(', ') || 'none'})`,
        );
      const local = localCidrOf(facts.interfaces, ip);
      if (!local)
        throw fail(
          `the node's InternalIP ${ip} is on none of the interfaces: ${listed(facts.interfaces, version)}`,
        );
      return { ...local, how: `${name}: InternalIP` };
    }
  }
}

export function methodText(m: AutodetectMethod): string {
  switch (m.kind) {
    case 'first-found':
    case 'kubernetes-internal-ip':
      return m.kind;
    case 'interface':
    case 'skip-interface':
      return `${m.kind}=${m.regexes.join(',')}`;
    case 'cidr':
      return `cidr=${m.cidrs.join(',')}`;
    case 'can-reach':
      return `can-reach=${m.destination}`;
  }
}
