// A rule's `services` match (Calico's ServiceMatch): the endpoints of a Kubernetes Service,
// read from its EndpointSlices as Felix's serviceindex reads them. In a rule's destination
// it matches each endpoint address on each of the slice's ports (ip, protocol, port), so a
// packet of a protocol without ports (ICMP) never matches, as in Felix; in a source, the
// endpoint addresses alone. Every endpoint of a slice counts, ready or not, and
// non-IP (FQDN) addresses are skipped, as in Felix. Pure; shared by the reference evaluator
// and the calculation graph so both read a Service the same way.
import { formatIp, parseIp } from '@tortie/netaddr';

export interface ServiceMatch {
  name: string;
  /** Absent: the namespaced policy's own namespace. */
  namespace?: string;
}

/** An EndpointSlice as the `services` match reads it. */
export interface ServiceSlice {
  namespace: string;
  /** its kubernetes.io/service-name label */
  serviceName: string;
  /** protocol absent means TCP; a port without a number contributes nothing */
  ports: Array<{ protocol?: 'TCP' | 'UDP' | 'SCTP'; port?: number }>;
  endpoints: Array<{ addresses: string[] }>;
}

export interface ServiceIpPort {
  ip: string;
  /** IP protocol number: 6, 17 or 132 */
  protocol: number;
  port: number;
}

const PROTOCOLS = { TCP: 6, UDP: 17, SCTP: 132 } as const;

/**
 * "<namespace>/<name>" of the Service a rule side names, or undefined when it names none.
 * Without a namespace (a global policy or a profile: Calico's validator refuses the
 * former) the key has an empty namespace, which no slice has, so it matches nothing, as
 * in Felix.
 */
export function serviceMatchKey(
  m: ServiceMatch | undefined,
  policyNs: string | undefined,
): string | undefined {
  if (!m) return undefined;
  return `${m.namespace || policyNs || ''}/${m.name}`;
}

/** The Service a slice belongs to, as "<namespace>/<name>". */
export const sliceServiceKey = (s: ServiceSlice) => `${s.namespace}/${s.serviceName}`;

/** A slice address in canonical text, or undefined when it is not an IP address. */
function canonicalIp(a: string): string | undefined {
  try {
    const { version, value } = parseIp(a);
    return formatIp(version, value);
  } catch {
    return undefined;
  }
}

/** Endpoint addresses of a slice (source-side members). */
export function sliceAddresses(s: ServiceSlice): string[] {
  const out: string[] = [];
  for (const ep of s.endpoints)
    for (const a of ep.addresses) {
      const ip = canonicalIp(a);
      if (ip !== undefined) out.push(ip);
    }
  return out;
}

/** (address, protocol, port) of every endpoint address x slice port (destination-side members). */
export function sliceIpPorts(s: ServiceSlice): ServiceIpPort[] {
  const out: ServiceIpPort[] = [];
  const addrs = sliceAddresses(s);
  for (const p of s.ports) {
    if (p.port === undefined) continue;
    const protocol = PROTOCOLS[p.protocol ?? 'TCP'];
    for (const ip of addrs) out.push({ ip, protocol, port: p.port });
  }
  return out;
}
