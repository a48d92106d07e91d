// Pods for dataplane tests: one "node" namespace and one namespace per pod, wired as
// Calico's CNI plugin wires them (veth cali* on the host side with MAC ee:ee:ee:ee:ee:ee,
// created with its peer directly in the pod namespace; /32 and /128 addresses; host
// routes; proxy ARP without delay; the pod's default routes via 169.254.1.1 and the host
// side's link-local address). Everything is made through the test's Testbed, which
// removes it in cleanup().
import type { Netns, Testbed } from '@tortie/testbed';

export interface PodWiring {
  /** Host-side interface (cali...). */
  iface: string;
  v4: string;
  v6?: string;
}

/** The host side's link-local address, from its MAC ee:ee:ee:ee:ee:ee (Calico's v6 gateway). */
export const GW6 = 'fe80::ecee:eeff:feee:eeee';

/** A node namespace that forwards, with no IPv6 duplicate address detection delay. */
export async function nodeNetns(tb: Testbed, tag: string): Promise<Netns> {
  const node = await tb.netns(tag);
  await node.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  await node.exec(['sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0']);
  return node;
}

/** A pod namespace wired to `node`. */
export async function podNetns(tb: Testbed, node: Netns, tag: string, p: PodWiring) {
  const ns = await tb.netns(tag);
  await ns.exec(['sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0']);
  // the node's side in one ip process (a spawn costs more than the change under load)
  await node.exec(['ip', '-batch', '-'], {
    input: [
      `link add ${p.iface} address ee:ee:ee:ee:ee:ee type veth peer name eth0 netns ${ns.name}`,
      `link set ${p.iface} up`,
      `route add ${p.v4}/32 dev ${p.iface} scope link`,
      ...(p.v6 ? [`route add ${p.v6}/128 dev ${p.iface}`] : []),
      '',
    ].join('\n'),
  });
  await node.exec([
    ...['sysctl', '-qw', `net.ipv4.conf.${p.iface}.proxy_arp=1`],
    `net.ipv4.neigh.${p.iface}.proxy_delay=0`,
  ]);
  await ns.exec(['ip', '-batch', '-'], {
    input: [
      `addr add ${p.v4}/32 dev eth0`,
      'link set eth0 up',
      'route add 169.254.1.1 dev eth0 scope link',
      'route add default via 169.254.1.1 dev eth0 onlink',
      // as the CNI plugin: the gateway's MAC is known, the first packet needs no ARP
      'neigh replace 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent',
      ...(p.v6
        ? [`addr add ${p.v6}/128 dev eth0 nodad`, `route add ::/0 via ${GW6} dev eth0`]
        : []),
      '',
    ].join('\n'),
  });
  return ns;
}
