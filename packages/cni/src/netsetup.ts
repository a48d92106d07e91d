// The pod's interface, as Calico's CNI plugin builds it: a veth pair created with its
// peer directly in the pod namespace (one netlink request, no move between namespaces),
// host side `cali…` with MAC ee:ee:ee:ee:ee:ee and proxy ARP answering for the pod's
// gateway 169.254.1.1, pod side with a /32 (/128), a route to the gateway and a
// permanent neighbour entry for it so the first packet needs no ARP.
// Pure builders of `ip -batch` input plus a thin runner; two process spawns per ADD.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { runTool, type ToolResult } from '@tortie/exec';
import { HOST_SIDE_MAC, POD_GATEWAY_V4, POD_GATEWAY_V6, type Attachment } from './result';

export function randomPodMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02; // unicast, locally administered
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Host-side `ip -batch` lines: the pair (peer created inside the pod netns), up, host routes. */
export function hostBatch(a: Attachment, mtu: number): string[] {
  return [
    `link add ${a.hostIface} address ${HOST_SIDE_MAC} mtu ${mtu} type veth peer name ${a.podIface} address ${a.podMac} mtu ${mtu} netns ${a.netns}`,
    // IPv6: the gateway fe80::ecee:eeff:feee:eeee is this side's link-local address; set it
    // without duplicate address detection so it answers at once, not after DAD's ~2 s
    ...(a.ipv6.length
      ? [
          `link set ${a.hostIface} addrgenmode none`,
          `addr add ${POD_GATEWAY_V6}/64 dev ${a.hostIface} nodad`,
        ]
      : []),
    `link set ${a.hostIface} up`,
    ...a.ipv4.map((ip) => `route replace ${ip}/32 dev ${a.hostIface} scope link`),
    ...a.ipv6.map((ip) => `route replace ${ip}/128 dev ${a.hostIface}`),
  ];
}

/** Pod-side `ip -batch` lines (run inside the pod netns). */
export function podBatch(a: Attachment): string[] {
  const dev = a.podIface;
  return [
    'link set lo up',
    `link set ${dev} up`,
    ...a.ipv4.map((ip) => `addr add ${ip}/32 dev ${dev}`),
    ...(a.ipv4.length
      ? [
          `neigh replace ${POD_GATEWAY_V4} lladdr ${HOST_SIDE_MAC} dev ${dev} nud permanent`,
          `route replace ${POD_GATEWAY_V4} dev ${dev} scope link`,
          `route replace default via ${POD_GATEWAY_V4} dev ${dev}`,
        ]
      : []),
    ...a.ipv6.map((ip) => `addr add ${ip}/128 dev ${dev} nodad`),
    ...(a.ipv6.length
      ? [
          `neigh replace ${POD_GATEWAY_V6} lladdr ${HOST_SIDE_MAC} dev ${dev} nud permanent`,
          `route replace default via ${POD_GATEWAY_V6} dev ${dev}`,
        ]
      : []),
  ];
}

/** Host-side sysctls (Calico's): proxy ARP with no delay, forwarding, proxy NDP for v6. */
export function hostSysctls(iface: string, v6: boolean): Array<[string, string]> {
  const s: Array<[string, string]> = [
    [`/proc/sys/net/ipv4/conf/${iface}/proxy_arp`, '1'],
    [`/proc/sys/net/ipv4/neigh/${iface}/proxy_delay`, '0'],
    [`/proc/sys/net/ipv4/conf/${iface}/forwarding`, '1'],
  ];
  if (v6) {
    s.push([`/proc/sys/net/ipv6/conf/${iface}/proxy_ndp`, '1']);
    s.push([`/proc/sys/net/ipv6/conf/${iface}/forwarding`, '1']);
  }
  return s;
}

/**
 * Pod-side sysctls, as Calico's CNI plugin writes them inside the pod's namespace, before
 * the pod's interface is up. IPv6: enabled (a runtime may start the namespace with it
 * disabled, as Docker does: then the addresses cannot be added), no duplicate address
 * detection on the pod's interface (a point-to-point link: DAD would hold the address
 * back ~1 s); for each family the pod has, forwarding off (Calico's default, without
 * allow_ip_forwarding).
 */
export function podSysctls(podIface: string, v4: boolean, v6: boolean): Array<[string, string]> {
  const s: Array<[string, string]> = [];
  if (v6)
    s.push(
      ['/proc/sys/net/ipv6/conf/all/disable_ipv6', '0'],
      ['/proc/sys/net/ipv6/conf/default/disable_ipv6', '0'],
      ['/proc/sys/net/ipv6/conf/lo/disable_ipv6', '0'],
      [`/proc/sys/net/ipv6/conf/${podIface}/accept_dad`, '0'],
    );
  if (v4) s.push(['/proc/sys/net/ipv4/ip_forward', '0']);
  if (v6) s.push(['/proc/sys/net/ipv6/conf/all/forwarding', '0']);
  return s;
}

/**
 * argv that writes `sysctls` inside the pod namespace and then runs `then` there: one
 * process as before (the fallback path has no addon to enter the namespace); paths and
 * values go in as arguments, never into the script text.
 */
export function inPodWithSysctls(
  netns: string,
  sysctls: Array<[string, string]>,
  then: string[],
): string[] {
  if (!sysctls.length) return inNetns(netns, then);
  return inNetns(netns, [
    'sh',
    '-c',
    'while [ "$1" != -- ]; do printf %s "$2" > "$1" || exit 1; shift 2; done; shift; exec "$@"',
    'sh',
    ...sysctls.flat(),
    '--',
    ...then,
  ]);
}

export type RunResult = ToolResult;

/** Runs a tool (off the main thread: see @tortie/exec). */
export function run(argv: string[], input?: string): Promise<RunResult> {
  return runTool(argv, input);
}

const inNetns = (netns: string, argv: string[]) => ['nsenter', `--net=${netns}`, ...argv];

interface IpAddr {
  ifname: string;
  address?: string;
  addr_info?: Array<{ local: string; prefixlen: number }>;
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

/** What CHECK compares with the expected attachment. */
export interface ObservedAttachment {
  hostIfaceExists: boolean;
  hostRoutes: string[];
  podAddrs: string[];
  podMac?: string;
  podDefaultVia: string[];
}

/** The kernel side: behind this interface so the plugin logic is testable without root. */
export interface PodNetwork {
  setup(a: Attachment, mtu: number): Promise<void>;
  /** Removes the host side (and with it the pod side); true when something was removed. */
  teardown(hostIface: string): Promise<boolean>;
  observe(a: Pick<Attachment, 'hostIface' | 'podIface' | 'netns'>): Promise<ObservedAttachment>;
}

export class LinuxPodNetwork implements PodNetwork {
  async setup(a: Attachment, mtu: number): Promise<void> {
    const batch = hostBatch(a, mtu).join('\n') + '\n';
    let host = await run(['ip', '-batch', '-'], batch);
    if (host.code !== 0 && /File exists/.test(host.stderr)) {
      // a leftover of an earlier ADD of the same pod (the runtime retried): replace it
      await this.teardown(a.hostIface);
      host = await run(['ip', '-batch', '-'], batch);
    }
    if (host.code !== 0) throw new Error(`host side of ${a.hostIface}: ${host.stderr.trim()}`);
    await Promise.all(
      hostSysctls(a.hostIface, a.ipv6.length > 0).map(([path, value]) => writeFile(path, value)),
    );
    const pod = await run(
      inPodWithSysctls(a.netns, podSysctls(a.podIface, a.ipv4.length > 0, a.ipv6.length > 0), [
        'ip',
        '-batch',
        '-',
      ]),
      podBatch(a).join('\n') + '\n',
    );
    if (pod.code !== 0) throw new Error(`pod side in ${a.netns}: ${pod.stderr.trim()}`);
  }

  async teardown(hostIface: string): Promise<boolean> {
    const r = await run(['ip', 'link', 'del', hostIface]);
    if (r.code === 0) return true;
    if (/Cannot find device|does not exist/.test(r.stderr)) return false;
    throw new Error(`removing ${hostIface}: ${r.stderr.trim()}`);
  }

  async observe(
    a: Pick<Attachment, 'hostIface' | 'podIface' | 'netns'>,
  ): Promise<ObservedAttachment> {
    const [link, hostRoutes4, hostRoutes6, podAddr, podRoutes4, podRoutes6] = await Promise.all([
      run(['ip', '-j', 'link', 'show', a.hostIface]),
      run(['ip', '-j', 'route', 'show', 'dev', a.hostIface]),
      run(['ip', '-j', '-6', 'route', 'show', 'dev', a.hostIface]),
      run(inNetns(a.netns, ['ip', '-j', 'addr', 'show', 'dev', a.podIface])),
      run(inNetns(a.netns, ['ip', '-j', 'route', 'show', 'default'])),
      run(inNetns(a.netns, ['ip', '-j', '-6', 'route', 'show', 'default'])),
    ]);
    const json = <T>(r: RunResult): T[] =>
      r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as T[]) : [];
    const addrs = json<IpAddr>(podAddr);
    return {
      hostIfaceExists: link.code === 0,
      hostRoutes: [...json<IpRoute>(hostRoutes4), ...json<IpRoute>(hostRoutes6)]
        .map((r) => r.dst)
        .filter((d) => !d.startsWith('fe80')),
      podAddrs: addrs
        .flatMap((x) => (x.addr_info ?? []).map((i) => `${i.local}/${i.prefixlen}`))
        .filter((x) => !x.startsWith('fe80')),
      podMac: addrs[0]?.address,
      podDefaultVia: [...json<IpRoute>(podRoutes4), ...json<IpRoute>(podRoutes6)].map(
        (r) => `${r.gateway}@${r.dev}`,
      ),
    };
  }
}
