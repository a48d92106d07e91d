// Addresses as confd handles them: every node and peer address in its canonical text
// (Go's net.IP.String(), RFC 5952 for IPv6), since confd compares those texts, both for
// equality and for the mesh direction.
import { formatIp, ipVersionOf, parseIp, type IpVersion } from '@tortie/netaddr';

export type Family = IpVersion;

/** The canonical text of an address, or undefined when it is not one. */
export function canonicalIp(text: string): string | undefined {
  if (!ipVersionOf(text)) return undefined;
  const { version, value } = parseIp(text);
  return formatIp(version, value);
}

export function familyOf(ip: string): Family {
  return ip.includes(':') ? 6 : 4;
}

/** Numeric address order, IPv4 before IPv6 (to list peers, not to pick a direction). */
export function compareIps(a: string, b: string): number {
  const x = parseIp(a);
  const y = parseIp(b);
  if (x.version !== y.version) return x.version - y.version;
  return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

/** BGPPeer peerIP: "10.0.0.1", "10.0.0.1:1790", "fd00::1", "[fd00::1]:1790". */
export function splitPeerIp(text: string): { address: string; port?: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  return m ? { address: m[1], port: Number(m[2]) } : { address: text };
}
