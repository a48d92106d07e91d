// The pod's interface over netlink: the same result as hostBatch/podBatch's `ip -batch`
// lines (see netsetup.ts), in four batched exchanges and no process: on the host, the
// veth pair with its peer created directly in the pod namespace, up, then its routes; in
// the pod, lo and eth0 up, then addresses, the gateway's permanent neighbour entry and
// routes. The `ip` implementation stays the fallback when the addon cannot load.
import { closeSync, openSync } from 'node:fs';
import {
  codec as c,
  mustWriteSysctls,
  netlinkAvailability,
  Rtnl,
  type Answer,
  type NetlinkError,
} from '@tortie/netlink';
import { HOST_SIDE_MAC, POD_GATEWAY_V4, POD_GATEWAY_V6, type Attachment } from './result';
import {
  hostSysctls,
  LinuxPodNetwork,
  podSysctls,
  type ObservedAttachment,
  type PodNetwork,
} from './netsetup';

/** `ip route replace` without `proto` writes "boot": the same here. */
const RTPROT_BOOT = 3;

type Step = [c.Request, string];

function indexFrom(a: Answer, at: number, what: string): number {
  const m = a.replies.get(at)?.[0];
  if (!m) throw new Error(`${what}: the kernel did not answer with the link`);
  return c.parseLink(m).index;
}

async function run(nl: Rtnl, steps: Step[], where: string): Promise<Answer> {
  const a = await nl.request(
    steps.map((s) => s[0]),
    steps.map((s) => s[1]),
  );
  const bad = a.errors.find((e): e is NetlinkError => e !== undefined);
  if (bad) throw Object.assign(new Error(`${where}: ${bad.message}`), { code: bad.code });
  return a;
}

/** Host-side first exchange: the pair (peer in the pod namespace), addrgenmode, up, its index. */
export function hostLinkSteps(a: Attachment, mtu: number, podNsFd: number): Step[] {
  const h = a.hostIface;
  return [
    [
      c.newVeth({
        name: h,
        mac: HOST_SIDE_MAC,
        mtu,
        peer: { name: a.podIface, mac: a.podMac, mtu, netnsFd: podNsFd },
      }),
      `link add ${h} type veth peer name ${a.podIface} netns ${a.netns}`,
    ],
    // IPv6: the gateway is this side's link-local address, set without DAD (netsetup.ts)
    ...(a.ipv6.length ? [[c.setAddrGenModeNone(h), `link set ${h} addrgenmode none`] as Step] : []),
    [c.setLinkUp(h), `link set ${h} up`],
    [c.getLink(h), `link show ${h}`],
  ];
}

export function hostRouteSteps(a: Attachment, index: number): Step[] {
  const h = a.hostIface;
  return [
    ...(a.ipv6.length
      ? [
          [
            c.newAddr(`${POD_GATEWAY_V6}/64`, index, { nodad: true }),
            `addr add ${POD_GATEWAY_V6}/64 dev ${h} nodad`,
          ] as Step,
        ]
      : []),
    ...a.ipv4.map((ip): Step => [
      c.newRoute({ dst: `${ip}/32`, oif: index, scope: 'link', protocol: RTPROT_BOOT }),
      `route replace ${ip}/32 dev ${h} scope link`,
    ]),
    ...a.ipv6.map((ip): Step => [
      c.newRoute({ dst: `${ip}/128`, oif: index, protocol: RTPROT_BOOT }),
      `route replace ${ip}/128 dev ${h}`,
    ]),
  ];
}

export function podLinkSteps(a: Attachment): Step[] {
  return [
    [c.setLinkUp('lo'), 'link set lo up'],
    [c.setLinkUp(a.podIface), `link set ${a.podIface} up`],
    [c.getLink(a.podIface), `link show ${a.podIface}`],
  ];
}

export function podAddressSteps(a: Attachment, index: number): Step[] {
  const dev = a.podIface;
  const steps: Step[] = a.ipv4.map((ip): Step => [
    c.newAddr(`${ip}/32`, index),
    `addr add ${ip}/32 dev ${dev}`,
  ]);
  if (a.ipv4.length) {
    steps.push(
      [
        c.replaceNeigh(POD_GATEWAY_V4, HOST_SIDE_MAC, index),
        `neigh replace ${POD_GATEWAY_V4} lladdr ${HOST_SIDE_MAC} dev ${dev} nud permanent`,
      ],
      [
        c.newRoute({
          dst: `${POD_GATEWAY_V4}/32`,
          oif: index,
          scope: 'link',
          protocol: RTPROT_BOOT,
        }),
        `route replace ${POD_GATEWAY_V4} dev ${dev} scope link`,
      ],
      [
        c.newRoute({ dst: '0.0.0.0/0', via: POD_GATEWAY_V4, oif: index, protocol: RTPROT_BOOT }),
        `route replace default via ${POD_GATEWAY_V4} dev ${dev}`,
      ],
    );
  }
  for (const ip of a.ipv6)
    steps.push([
      c.newAddr(`${ip}/128`, index, { nodad: true }),
      `addr add ${ip}/128 dev ${dev} nodad`,
    ]);
  if (a.ipv6.length) {
    steps.push(
      [
        c.replaceNeigh(POD_GATEWAY_V6, HOST_SIDE_MAC, index),
        `neigh replace ${POD_GATEWAY_V6} lladdr ${HOST_SIDE_MAC} dev ${dev} nud permanent`,
      ],
      [
        c.newRoute({ dst: '::/0', via: POD_GATEWAY_V6, oif: index, protocol: RTPROT_BOOT }),
        `route replace default via ${POD_GATEWAY_V6} dev ${dev}`,
      ],
    );
  }
  return steps;
}

export class NetlinkPodNetwork implements PodNetwork {
  private host?: Rtnl;
  /** CHECK reads the kernel with `ip -j` (not on the ADD path). */
  private readonly reader = new LinuxPodNetwork();

  private hostSocket(): Rtnl {
    return (this.host ??= Rtnl.open());
  }

  async setup(a: Attachment, mtu: number): Promise<void> {
    const host = this.hostSocket();
    let nsFd: number;
    try {
      nsFd = openSync(a.netns, 'r');
    } catch (e) {
      throw new Error(`pod network namespace ${a.netns}: ${(e as Error).message}`);
    }
    try {
      const where = `host side of ${a.hostIface}`;
      const steps = hostLinkSteps(a, mtu, nsFd);
      let made = await host.request(
        steps.map((s) => s[0]),
        steps.map((s) => s[1]),
      );
      if (made.errors[0]?.code === 'EEXIST') {
        // a leftover of an earlier ADD of the same pod (the runtime retried): replace it
        await this.teardown(a.hostIface);
        made = await run(host, steps, where);
      } else {
        const bad = made.errors.find((e) => e);
        if (bad) throw new Error(`${where}: ${bad.message}`);
      }
      const hostIndex = indexFrom(made, steps.length - 1, where);
      await run(host, hostRouteSteps(a, hostIndex), where);
      // a few bytes into /proc each, in this (the node's) namespace: no process, on this
      // thread (cheaper than thread-pool hops); a failure names the sysctl
      try {
        mustWriteSysctls(undefined, hostSysctls(a.hostIface, a.ipv6.length > 0));
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      }
      const podWhere = `pod side in ${a.netns}`;
      // before the pod's interface is up (accept_dad), in its namespace, by the addon
      try {
        mustWriteSysctls(a.netns, podSysctls(a.podIface, a.ipv4.length > 0, a.ipv6.length > 0));
      } catch (e) {
        throw new Error(`${podWhere}: ${(e as Error).message}`);
      }
      const pod = Rtnl.open(a.netns);
      try {
        const linkSteps = podLinkSteps(a);
        const up = await run(pod, linkSteps, podWhere);
        await run(pod, podAddressSteps(a, indexFrom(up, linkSteps.length - 1, podWhere)), podWhere);
      } finally {
        pod.close();
      }
    } finally {
      closeSync(nsFd);
    }
  }

  async teardown(hostIface: string): Promise<boolean> {
    try {
      return await this.hostSocket().delLink(hostIface);
    } catch (e) {
      throw new Error(`removing ${hostIface}: ${(e as Error).message}`);
    }
  }

  observe(a: Pick<Attachment, 'hostIface' | 'podIface' | 'netns'>): Promise<ObservedAttachment> {
    return this.reader.observe(a);
  }
}

let chosen: { net: PodNetwork; via: 'netlink' | 'ip'; reason?: string } | undefined;

/** The pod network of this process: netlink when its addon loads, else `ip` processes (with why). */
export function podNetwork(): { net: PodNetwork; via: 'netlink' | 'ip'; reason?: string } {
  if (chosen) return chosen;
  const a = netlinkAvailability();
  chosen = a.available
    ? { net: new NetlinkPodNetwork(), via: 'netlink' }
    : { net: new LinuxPodNetwork(), via: 'ip', reason: a.reason };
  return chosen;
}
