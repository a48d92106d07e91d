// `npm run lab -- --keep --attach bird|frr|gobgp`: what to type to put one more router on
// the running lab's fabric and peer the cluster with it: a namespace plugged into the
// fabric bridge, the router's configuration (written by the same generators the testbed
// uses for the interop tests), the command that starts it, and the BGPPeer to apply.
import { birdConfig, frrConfig, gobgpConfig } from '@tortie/testbed';
import type { TorKind } from './tor';

export interface AttachInput {
  router: TorKind;
  /** The namespace holding the fabric bridge, and the bridge. */
  fabricNs: string;
  bridge: string;
  nodes: Array<{ name: string; ip: string }>;
  clusterAs: number;
  /** tortiectl's etcd endpoints. */
  etcd: string;
  /** With the kubernetes datastore: kubectl's kubeconfig (the BGPPeer goes in with kubectl). */
  kubeconfig?: string;
  /** The new router's namespace, address (prefix /24 on the fabric) and AS. */
  ns: string;
  address: string;
  asn: number;
  /** Where its config and sockets go. */
  dir: string;
}

/** The attached router's configuration file: its name and text. */
export function attachConfig(a: AttachInput): { file: string; text: string } {
  if (a.router === 'bird')
    return {
      file: `${a.dir}/bird.conf`,
      text: birdConfig({
        routerId: a.address,
        peers: a.nodes.map((n) => ({
          name: n.name,
          localAs: a.asn,
          neighbor: n.ip,
          neighborAs: a.clusterAs,
          families: ['ipv4'],
        })),
      }),
    };
  if (a.router === 'frr')
    return {
      file: `${a.dir}/bgpd.conf`,
      text: frrConfig({
        asn: a.asn,
        routerId: a.address,
        timers: { keepalive: 3, hold: 9 },
        neighbors: a.nodes.map((n) => ({
          address: n.ip,
          remoteAs: a.clusterAs,
          families: ['ipv4'],
        })),
      }),
    };
  return {
    file: `${a.dir}/gobgpd.toml`,
    text: gobgpConfig({
      asn: a.asn,
      routerId: a.address,
      neighbors: a.nodes.map((n) => ({ address: n.ip, peerAs: a.clusterAs, families: ['ipv4'] })),
    }),
  };
}

/** The command that runs the router in the foreground in its namespace. */
export function attachCommand(a: AttachInput): string[] {
  const { file } = attachConfig(a);
  const run = ['ip', 'netns', 'exec', a.ns];
  if (a.router === 'bird') return [...run, 'bird', '-f', '-c', file, '-s', `${a.dir}/bird.ctl`];
  if (a.router === 'frr')
    // bgpd alone (-Z: no zebra), its vty socket in dir, as the testbed runs it
    return [
      ...run,
      '/usr/lib/frr/bgpd',
      '-f',
      file,
      '-i',
      `${a.dir}/bgpd.pid`,
      '-Z',
      '-S',
      '-u',
      'root',
      '-g',
      'root',
      '--vty_socket',
      a.dir,
    ];
  return [...run, 'gobgpd', '-f', file, '--api-hosts', '127.0.0.1:50051', '--pprof-disable'];
}

/** How to ask the attached router for its sessions. */
export function attachQuery(a: AttachInput): string {
  const run = `ip netns exec ${a.ns}`;
  if (a.router === 'bird') return `${run} birdc -s ${a.dir}/bird.ctl show protocols`;
  if (a.router === 'frr') return `${run} vtysh --vty_socket ${a.dir} -c 'show bgp summary'`;
  return `${run} gobgp -u 127.0.0.1 -p 50051 neighbor`;
}

/** The BGPPeer that makes every node peer with it. */
export function attachPeer(a: AttachInput): string {
  return [
    // tortie-apiserver serves tortie's own group; tortiectl also takes Calico's
    a.kubeconfig ? 'apiVersion: tortie.io/v1' : 'apiVersion: projectcalico.org/v3',
    'kind: BGPPeer',
    'metadata:',
    `  name: ${a.ns}`,
    'spec:',
    `  peerIP: ${a.address}`,
    `  asNumber: ${a.asn}`,
  ].join('\n');
}

/** Everything to type, as a shell script in steps (as root, from this checkout). */
export function attachScript(a: AttachInput): string {
  const { file, text } = attachConfig(a);
  const port = `x${a.ns}`.slice(0, 15);
  const ctl = a.kubeconfig
    ? `kubectl --kubeconfig ${a.kubeconfig}`
    : `npm exec tortiectl -- --etcd-endpoints ${a.etcd}`;
  const peers = a.kubeconfig ? 'bgppeers.tortie.io' : 'bgppeers';
  return [
    `# ${a.router} at ${a.address} (AS ${a.asn}) on the lab's fabric, peering eBGP with ${a.nodes.map((n) => `${n.name} ${n.ip}`).join(', ')} (AS ${a.clusterAs})`,
    '# 1. its namespace, plugged into the fabric bridge',
    `ip netns add ${a.ns}`,
    `ip -n ${a.fabricNs} link add ${port} type veth peer name eth0 netns ${a.ns}`,
    `ip -n ${a.fabricNs} link set ${port} master ${a.bridge} up`,
    `ip -n ${a.ns} addr add ${a.address}/24 dev eth0`,
    `ip -n ${a.ns} link set eth0 up`,
    `ip -n ${a.ns} link set lo up`,
    '# 2. its configuration',
    `mkdir -p ${a.dir}`,
    `cat > ${file} <<'EOF'`,
    text.trimEnd(),
    'EOF',
    '# 3. the cluster peers with it: a BGPPeer (every node, eBGP)',
    `${ctl} apply -f - <<'EOF'`,
    attachPeer(a),
    'EOF',
    '# 4. start it (foreground; another terminal for the next steps)',
    attachCommand(a).join(' '),
    "# 5. its sessions, and the nodes' side",
    attachQuery(a),
    `${ctl} get ${peers} -o wide`,
    '# 6. remove it: stop the router (Ctrl-C), then',
    `${ctl} delete ${peers} ${a.ns}; ip netns del ${a.ns}; rm -r ${a.dir}`,
  ].join('\n');
}
