// The impure side of node IP autodetection: this host's interfaces and addresses
// (`ip -j addr`), the source address the kernel picks towards a destination (a UDP
// socket connected to port 80 and never written to, as Calico's ReachDestination), and
// the Kubernetes node's InternalIPs. autodetect.ts decides from what these return.
import dgram from 'node:dgram';
import type { IpVersion } from '@tortie/netaddr';
import type { AutodetectMethod, HostFacts, HostInterface } from './autodetect';
import { mustRun, type CommandRunner } from './linux/runner';

export interface HostProbe {
  interfaces(): Promise<HostInterface[]>;
  /** The local address a packet to `destination` would leave from; rejects with why not. */
  reach(destination: string, version: IpVersion): Promise<{ address: string; destination: string }>;
  /** The Kubernetes node's InternalIP addresses; rejects with why they cannot be read. */
  internalIps(): Promise<string[]>;
}

interface AddrJson {
  ifindex: number;
  ifname: string;
  addr_info?: Array<{ family: string; local?: string; prefixlen: number }>;
}

/** `ip -j addr` output as interfaces in ifindex order. */
export function parseIpAddrJson(text: string): HostInterface[] {
  const links = JSON.parse(text || '[]') as AddrJson[];
  return links
    .map((l) => ({
      name: l.ifname,
      index: l.ifindex,
      addresses: (l.addr_info ?? [])
        .filter((a) => (a.family === 'inet' || a.family === 'inet6') && a.local)
        .map((a) => ({ address: a.local!, prefixLen: a.prefixlen })),
    }))
    .sort((a, b) => a.index - b.index);
}

/** The source address the kernel chooses for `destination` (a name is resolved first). */
export function reachSource(
  destination: string,
  version: IpVersion,
): Promise<{ address: string; destination: string }> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(version === 4 ? 'udp4' : 'udp6');
    const fail = (e: Error) => {
      sock.close();
      reject(new Error(`cannot reach ${destination}: ${e.message}`));
    };
    sock.on('error', fail);
    // connect() resolves a name with the socket's family, then asks the kernel for a
    // route; a failure comes to the callback (no route, no such name)
    sock.connect(80, destination, (err?: Error) => {
      if (err) return fail(err);
      const local = sock.address().address;
      const remote = sock.remoteAddress().address;
      sock.close();
      resolve({ address: local, destination: remote });
    });
  });
}

export class LinuxHostProbe implements HostProbe {
  constructor(
    private readonly runner: CommandRunner,
    private readonly nodeInternalIps: () => Promise<string[]> = () =>
      Promise.reject(new Error('no Kubernetes API configured')),
  ) {}

  async interfaces(): Promise<HostInterface[]> {
    return parseIpAddrJson(await mustRun(this.runner, ['ip', '-j', 'addr', 'show']));
  }

  reach(destination: string, version: IpVersion) {
    return reachSource(destination, version);
  }

  internalIps(): Promise<string[]> {
    return this.nodeInternalIps();
  }
}

/** What `method` needs from the host, each failure kept as text for the method's error. */
export async function gatherFacts(
  probe: HostProbe,
  method: AutodetectMethod | undefined,
  version: IpVersion,
): Promise<HostFacts> {
  const facts: HostFacts = { interfaces: await probe.interfaces() };
  if (method?.kind === 'can-reach') {
    facts.reachSource = await probe.reach(method.destination, version).then(
      (r) => r,
      (e: Error) => ({ error: e.message }),
    );
  }
  if (method?.kind === 'kubernetes-internal-ip') {
    facts.internalIps = await probe.internalIps().then(
      (addresses) => ({ addresses }),
      (e: Error) => ({ error: `cannot read the Kubernetes node: ${e.message}` }),
    );
  }
  return facts;
}
