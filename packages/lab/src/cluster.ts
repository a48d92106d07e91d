// A whole cluster out of network namespaces: an etcd datastore (on the test's loopback,
// reached from each node through the testbed's unix-socket relay), N nodes on one L2
// fabric each running the real agent (tortie-node), pods wired by the real CNI plugin,
// optionally a BIRD top-of-rack router peering eBGP with every node. Used by
// `npm run lab` and by the e2e tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { type Resource } from '@tortie/api';
import { controlRequest, type PeerRow } from '@tortie/bgp-speaker';
import { EtcdDatastore, KubernetesDatastore, type Datastore } from '@tortie/datastore';
import { RR_HEALTH } from '@tortie/route-reflector';
import {
  type Bird,
  Etcd,
  EtcdCluster,
  Fabric,
  OciBundle,
  PortForward,
  SLOW,
  Testbed,
  stopProcess,
  waitUntil,
  type Netns,
} from '@tortie/testbed';

import { CLUSTER_AS, TOR_ADDRESS, TOR_AS, nodeAddress } from './bgp-lab';
import { execPlugin } from './cni-exec';
import { daemonSetPlan, deploymentPlan } from './daemonset';
import { endpointSliceFor, k8sEndpointSlice } from './endpoints';
import { labImage, NodeHost, type BuiltImage, type Secrets } from './node-host';
import { startTor, type TorKind, type TorRouter } from './tor';
import { KubeApi, NODE_API_PORT } from './kube';
import { addLabels, applyResource } from './writes';

const TOR_NAMES = { bird: 'BIRD', frr: 'FRR', gobgp: 'GoBGP' } as const;

// answers each TCP connection with "<pod name> <client address>"
const ECHO_SERVER = `
const [name, port] = process.argv.slice(1);
require('node:net').createServer((c) => { c.on('error', () => {}); c.end(name + ' ' + c.remoteAddress.replace('::ffff:', '')); })
  .listen(+port, '0.0.0.0', () => process.stdout.write('ready\\n'));
`;
// connects to ip:port `count` times, one after the other; prints the answers as JSON
const ECHO_CLIENT = `
const [ip, port, count] = process.argv.slice(1);
const once = () => new Promise((done) => {
  let data = ''; const s = require('node:net').connect(+port, ip);
  const t = setTimeout(() => { s.destroy(); done('timeout'); }, 2000);
  s.on('data', (d) => (data += d)); s.on('end', () => { clearTimeout(t); done(data); });
  s.on('error', (e) => { clearTimeout(t); done(e.code); });
});
(async () => { const out = []; for (let i = 0; i < +count; i++) out.push(await once()); process.stdout.write(JSON.stringify(out)); })();
`;

const ROOT = path.resolve(__dirname, '../../..');
const AGENT = path.join(ROOT, 'packages/felix/dist/cli.js');
const CTL = path.join(ROOT, 'packages/ctl/dist/cli.js');
const CONTROLLERS = path.join(ROOT, 'packages/controllers/dist/cli.js');
// the binary a runtime execs: the C forwarder to the agent (dist/cli.js without a compiler)
const CNI_SHIM = path.join(ROOT, 'packages/cni/dist/tortie-cni');
const CNI = fs.existsSync(CNI_SHIM)
  ? [CNI_SHIM]
  : [process.execPath, path.join(ROOT, 'packages/cni/dist/cli.js')];
const ETCD_PORT = 2379;
/** The manifest whose DaemonSet containers mode runs (the etcd variant: the lab's datastore). */
const ETCD_MANIFEST = path.join(ROOT, 'deploy/tortie-etcd.yaml');
/**
 * The Secret holding the lab's BGP passwords (keys mesh and tor): the one the manifests'
 * optional secret volume mounts at /etc/tortie/secrets/bgp-passwords.
 */
export const LAB_BGP_SECRET = 'bgp-passwords';
/** The lab's FelixConfiguration "default". */
export const LAB_FELIX_CONFIG = {
  defaultEndpointToHostAction: 'Accept',
  // Services through tortie-node's nftables proxy: the lab has no kube-proxy
  serviceProxyEnabled: true,
} as const;
/** The pool tortie-controllers gives LoadBalancer Services their addresses from. */
export const LB_POOL = '198.51.100.0/24';
/** The range the lab's Services take ExternalIPs from (BGPConfiguration serviceExternalIPs). */
export const EXTERNAL_IPS = '203.0.113.0/24';

export interface ClusterOptions {
  nodes: number;
  /**
   * Where the cluster's state lives: etcd (default), or the Kubernetes API
   * (tortie-apiserver over the lab's etcd, driven with real kubectl): the agents and the
   * CNI use the kubernetes datastore, Pods are the workload endpoints and Namespaces the
   * profiles, as in Calico's KDD mode.
   */
  datastore?: 'etcdv3' | 'kubernetes';
  backend?: 'bgp' | 'vxlan' | 'none';
  pool?: { cidr: string; ipipMode?: string; vxlanMode?: string; natOutgoing?: boolean };
  /**
   * A ToR router on the fabric, eBGP with every node, originating a default route:
   * BIRD (true or 'bird'), FRR or GoBGP.
   */
  tor?: boolean | TorKind;
  /** Extra resources applied before the agents start (BGPConfiguration, BGPPeers...). */
  resources?: object[];
  /** Node labels / route reflector cluster ids, by node index. */
  nodeLabels?: Record<number, string>;
  clusterIds?: Record<number, string>;
  /**
   * Node indexes placed in a second subnet (10.98.0.0/24, its own bridge) behind a router
   * namespace, for IPIP/VXLAN CrossSubnet; the others stay on 10.99.0.0/24.
   */
  routedNodes?: number[];
  /** The pods' interface MTU (default 1400, below every tunnel's). */
  podMtu?: number;
  /**
   * etcd members (default 1, on the test's loopback); with more, each runs in its own
   * namespace on the fabric (10.99.0.201...) and the agents and the CNI get every endpoint.
   */
  etcdMembers?: number;
  /** BFD under every BGP session (mesh, and the ToR's with BIRD's bfd protocol). */
  bfd?: { minTxMs: number; minRxMs: number; multiplier: number };
  /**
   * TCP-MD5 on every BGP session: the mesh (BGPConfiguration nodeMeshPassword) and the
   * ToR (its BGPPeer's password, BIRD's `password`). The keys are in the Secret
   * LAB_BGP_SECRET (keys mesh, tor) that each agent reads from its own mount (secretsDir);
   * in containers mode, the DaemonSet's secret volume.
   */
  bgpPassword?: string;
  /**
   * Dual stack: an IPv6 pool beside the IPv4 one, every node with an IPv6 address on the
   * fabric (IP6), pods with both addresses, and the ToR peering over IPv6 too.
   */
  ipv6?: boolean;
  /**
   * Each node runs what deploy/tortie-etcd.yaml's DaemonSet says (its init containers,
   * then the agent) from the tortie/node image under runc, in the node's namespace with
   * its hostPath volumes under a directory of its own; pods through the installed plugin
   * and conflist. With the kubernetes datastore, deploy/tortie.yaml's DaemonSet, every
   * container with its service account's token volume and KUBERNETES_SERVICE_HOST/PORT
   * (in-cluster config), and its other containers (cni-token-watch) beside the agent.
   * Otherwise the agent is a process of this checkout's build.
   */
  containers?: boolean;
  /**
   * FelixConfiguration nftablesMode for every agent: Enabled runs the native nftables ACL
   * dataplane (`inet tortie`) instead of iptables; unset leaves the agents' default (Auto).
   */
  nftablesMode?: 'Enabled' | 'Disabled' | 'Auto';
  /**
   * A standalone route reflector, tortie-rr, on the fabric (RR_ADDRESS), set up as
   * deploy/tortie-rr.yaml describes: its Node "rr1" with a cluster id and the label
   * route-reflector=true, the node mesh off, and a BGPPeer making every node its client.
   * In containers mode it is that manifest's Deployment container from the image under
   * runc (its node's hostNetwork is the reflector's namespace); otherwise a process.
   */
  routeReflector?: boolean;
  say?: (line: string) => void;
  /** Each line an agent logs, as it comes (the lab's --verbose). */
  onAgentLog?: (node: string, line: string) => void;
}

export interface ClusterNode {
  name: string;
  ip: string;
  ns: Netns;
  agent?: ChildProcess;
  /** Where the agent serves CNI commands (tortie-cni's agent_socket). */
  cniSocket: string;
  /** Its BGP speaker's control socket (tortiectl node status --bgp-socket). */
  bgpSocket: string;
  /** The agent's status socket (tortiectl policy status --status-socket). */
  statusSocket: string;
  /**
   * Its Secrets as files <secretsDir>/<secret>/<key>: TORTIE_SECRETS_DIR of the agent
   * process, or in containers mode the kubelet's copies of the DaemonSet's secret volumes
   * (one directory per volume; the volume bgp-passwords holds that Secret).
   */
  secretsDir: string;
  /** In containers mode: the node as a kubelet host (its root directory, the image). */
  host?: NodeHost;
  /** In containers mode: the runc id of the agent's container. */
  containerId?: string;
  log: string[];
}

/** The standalone route reflector of a lab. */
export interface LabReflector {
  name: string;
  ip: string;
  ns: Netns;
  process: ChildProcess;
  /** Its speaker's control socket (tortie-bgp peers -s). */
  socket: string;
  log: string[];
  /** In containers mode: its node as a kubelet host, and its runc container. */
  host?: NodeHost;
  containerId?: string;
}

export interface Pod {
  name: string;
  namespace: string;
  node: ClusterNode;
  ns: Netns;
  ip: string;
  /** Its IPv6 address, in a dual-stack lab. */
  ip6?: string;
  containerId: string;
  /** How long its CNI ADD took (ms), as the runtime saw it. */
  addMs?: number;
}

const TOR_IP = TOR_ADDRESS;
/** The dual-stack lab's IPv6 fabric, pool and ToR address. */
export const FABRIC6 = 'fd00:99::';
export const POOL6 = 'fd00:10:244::/64';
const TOR_IP6 = `${FABRIC6}1`;
/** The standalone route reflector's address on the fabric, its Node name and cluster id. */
export const RR_ADDRESS = '10.99.0.240';
export const RR_NODE = 'rr1';
const RR_CLUSTER_ID = '244.0.0.1';
/** The manifest whose Deployment runs the reflector in containers mode. */
const RR_MANIFEST = path.join(ROOT, 'deploy/tortie-rr.yaml');
const RR_CLI = path.join(ROOT, 'packages/route-reflector/dist/cli.js');
/** etcd member k's address on the fabric (several members). */
const etcdAddress = (k: number) => `10.99.0.${201 + k}`;

/** BGPConfiguration default's bfd block for the lab's timers. */
function bfdSpec(bfd: ClusterOptions['bfd']): object {
  if (!bfd) return {};
  return {
    bfd: {
      minTxInterval: `${bfd.minTxMs}ms`,
      minRxInterval: `${bfd.minRxMs}ms`,
      multiplier: bfd.multiplier,
    },
  };
}
/** The router joining the two subnets when some nodes are routed (its address on each). */
export const SUBNET_ROUTER = { fabric: '10.99.0.254', routed: '10.98.0.254' } as const;

export class Cluster {
  readonly nodes: ClusterNode[] = [];
  readonly pods: Pod[] = [];
  /** The ToR when it is BIRD (its own API, for tests). */
  tor?: Bird;
  /** The ToR, whichever router it is. */
  torRouter?: TorRouter;
  /** The standalone route reflector (routeReflector). */
  rr?: LabReflector;
  private constructor(
    readonly tb: Testbed,
    readonly ds: Datastore,
    /** The first (or only) etcd member. */
    readonly etcd: Etcd,
    /** With etcdMembers > 1: the whole etcd cluster. */
    readonly etcdCluster: EtcdCluster | undefined,
    readonly fabric: Fabric,
    readonly opts: ClusterOptions,
    /** The Kubernetes API and kubectl, with the kubernetes datastore. */
    readonly kube?: KubeApi,
  ) {}

  /** Which router the ToR is, if there is one. */
  get torKind(): TorKind | undefined {
    const t = this.opts.tor;
    return t === true ? 'bird' : t || undefined;
  }

  /** Node i's IPv6 address on the fabric (dual stack). */
  nodeIp6(i: number): string {
    return `${FABRIC6}${11 + i}`;
  }

  /** Node i's address: on the fabric's subnet, or on the routed one. */
  nodeIp(i: number): string {
    return this.opts.routedNodes?.includes(i) ? `10.98.0.${11 + i}` : nodeAddress(i);
  }

  static async start(opts: ClusterOptions): Promise<Cluster> {
    const say = opts.say ?? (() => undefined);
    if (opts.tor && opts.routedNodes?.length)
      throw new Error('a cluster with a ToR has one subnet: tor and routedNodes do not combine');
    if (opts.routeReflector && opts.datastore === 'kubernetes')
      throw new Error(
        'the lab writes the reflector its own Node, which the kubernetes datastore keeps as a Kubernetes Node: routeReflector needs the etcd datastore',
      );
    // the image first: a build that fails has started nothing and lost nothing
    const built = opts.containers ? labImage(say) : undefined;
    const tb = new Testbed();
    try {
      const image = built ? unpackImage(tb, built, say) : undefined;
      const members = opts.etcdMembers ?? 1;
      const fabric = await Fabric.create(tb, 'fabric');
      // several members: each in its own namespace on the fabric, as etcd hosts on the
      // cluster network, which the agents reach directly
      const etcdCluster =
        members > 1
          ? await EtcdCluster.start(tb, members, {
              fabric,
              addresses: Array.from({ length: members }, (_, k) => etcdAddress(k)),
            })
          : undefined;
      const etcd = etcdCluster?.members[0] ?? (await Etcd.start(tb));
      const endpoints = etcdCluster?.endpoints ?? [etcd.endpoint];
      const kube =
        opts.datastore === 'kubernetes' ? await startKubernetes(tb, endpoints, say) : undefined;
      const ds = kube
        ? KubernetesDatastore.fromFile(kube.kubeconfig)
        : new EtcdDatastore(endpoints);
      tb.onCleanup(() => ds.close());
      const c = new Cluster(tb, ds, etcd, etcdCluster, fabric, opts, kube);
      say(`etcd ${endpoints.join(',')}; fabric bridge in ${fabric.ns.name}`);
      const pool = opts.pool ?? { cidr: '10.244.0.0/16' };
      await c.apply({ kind: 'IPPool', metadata: { name: 'default-ipv4-ippool' }, spec: pool });
      if (opts.ipv6)
        await c.apply({
          kind: 'IPPool',
          metadata: { name: 'default-ipv6-ippool' },
          spec: { cidr: POOL6 },
        });
      await c.apply({
        kind: 'FelixConfiguration',
        metadata: { name: 'default' },
        spec: {
          ...LAB_FELIX_CONFIG,
          ...(opts.nftablesMode ? { nftablesMode: opts.nftablesMode } : {}),
        },
      });
      if (opts.tor) {
        const torNs = await tb.netns('tor');
        await fabric.attach(torNs, {
          v4: `${TOR_IP}/24`,
          ...(opts.ipv6 ? { v6: `${TOR_IP6}/64` } : {}),
        });
        const peers = (family: 'ipv4' | 'ipv6', address: (i: number) => string) =>
          Array.from({ length: opts.nodes }, (_, i) => ({
            name: `node${i + 1}${family === 'ipv6' ? 'v6' : ''}`,
            address: address(i),
            asn: CLUSTER_AS,
            family,
          }));
        const tor = await startTor(tb, torNs, {
          kind: c.torKind!,
          address: TOR_IP,
          asn: TOR_AS,
          // dual stack: a session over IPv6 with each node too, as calico-node's bird6
          peers: [
            ...peers('ipv4', (i) => c.nodeIp(i)),
            ...(opts.ipv6 ? peers('ipv6', (i) => c.nodeIp6(i)) : []),
          ],
          ...(opts.bfd ? { bfd: opts.bfd } : {}),
          ...(opts.bgpPassword ? { password: opts.bgpPassword } : {}),
        });
        c.torRouter = tor.router;
        c.tor = tor.bird;
        await c.apply({
          kind: 'BGPPeer',
          metadata: { name: 'tor' },
          spec: {
            peerIP: TOR_IP,
            asNumber: TOR_AS,
            // the nodes' peer: a global one would take in the reflector's Node too
            ...(opts.routeReflector ? { nodeSelector: "route-reflector != 'true'" } : {}),
            ...(opts.bgpPassword
              ? { password: { secretKeyRef: { name: LAB_BGP_SECRET, key: 'tor' } } }
              : {}),
          },
        });
        if (opts.ipv6)
          await c.apply({
            kind: 'BGPPeer',
            metadata: { name: 'tor-v6' },
            spec: {
              peerIP: TOR_IP6,
              asNumber: TOR_AS,
              ...(opts.bgpPassword
                ? { password: { secretKeyRef: { name: LAB_BGP_SECRET, key: 'tor' } } }
                : {}),
            },
          });
        say(`ToR: ${TOR_NAMES[c.torKind!]} AS ${TOR_AS} at ${TOR_IP} in ${torNs.name}`);
      }
      if (opts.routeReflector) {
        // as an operator does for deploy/tortie-rr.yaml: the reflector's Node, and every
        // node its client
        await c.apply({
          kind: 'Node',
          metadata: { name: RR_NODE, labels: { 'route-reflector': 'true' } },
          spec: {
            bgp: { ipv4Address: `${RR_ADDRESS}/24`, routeReflectorClusterID: RR_CLUSTER_ID },
          },
        });
        await c.apply({
          kind: 'BGPPeer',
          metadata: { name: 'peer-with-route-reflectors' },
          spec: {
            nodeSelector: 'all()',
            peerSelector: "route-reflector == 'true'",
            ...(opts.bgpPassword
              ? { password: { secretKeyRef: { name: LAB_BGP_SECRET, key: 'mesh' } } }
              : {}),
          },
        });
      }
      const bgpDefault = {
        ...(opts.routeReflector ? { nodeToNodeMeshEnabled: false } : {}),
        // every node advertises the load-balancer and external ranges, as Calico does
        ...(opts.tor
          ? {
              serviceLoadBalancerIPs: [{ cidr: LB_POOL }],
              serviceExternalIPs: [{ cidr: EXTERNAL_IPS }],
            }
          : {}),
        ...bfdSpec(opts.bfd),
        ...(opts.bgpPassword
          ? { nodeMeshPassword: { secretKeyRef: { name: LAB_BGP_SECRET, key: 'mesh' } } }
          : {}),
      };
      if (Object.keys(bgpDefault).length)
        await c.apply({
          kind: 'BGPConfiguration',
          metadata: { name: 'default' },
          spec: bgpDefault,
        });
      // load-balancer addresses, given out by tortie-controllers (as kube-controllers)
      await c.startControllers(endpoints);
      for (const r of opts.resources ?? []) await c.apply(r);
      const secrets: Secrets = opts.bgpPassword
        ? { [LAB_BGP_SECRET]: { mesh: opts.bgpPassword, tor: opts.bgpPassword } }
        : {};
      const routed = opts.routedNodes?.length ? await routedSubnet(tb, fabric) : undefined;
      if (routed) say(`second subnet 10.98.0.0/24 behind a router in ${routed.router.name}`);
      for (let i = 0; i < opts.nodes; i++) {
        const name = `node${i + 1}`;
        const ns = await tb.netns(name);
        const isRouted = routed && opts.routedNodes!.includes(i);
        await (isRouted ? routed.fabric : fabric).attach(ns, {
          v4: `${c.nodeIp(i)}/24`,
          ...(opts.ipv6 ? { v6: `${c.nodeIp6(i)}/64` } : {}),
        });
        if (routed) {
          const [other, via] = isRouted
            ? ['10.99.0.0/24', SUBNET_ROUTER.routed]
            : ['10.98.0.0/24', SUBNET_ROUTER.fabric];
          await ns.exec(['ip', 'route', 'add', other, 'via', via]);
        }
        // the API server (kubernetes datastore), or a single etcd, runs on the test's
        // loopback: a relay on the node's loopback
        if (kube) {
          await PortForward.start(tb, ns, NODE_API_PORT, { host: '127.0.0.1', port: kube.port });
        } else if (!etcdCluster) {
          await PortForward.start(tb, ns, ETCD_PORT, {
            host: '127.0.0.1',
            port: Number(new URL(etcd.endpoint).port),
          });
        }
        let host: NodeHost | undefined;
        if (image) {
          // the manifest of the lab's datastore: the one kubectl applied, or the etcd variant
          const plan = daemonSetPlan(fs.readFileSync(kube ? KDD_MANIFEST : ETCD_MANIFEST, 'utf8'), {
            nodeName: name,
            // what an operator sets in the ConfigMap before applying it
            configMaps: {
              ...(kube ? {} : { 'tortie-config/etcd_endpoints': c.nodeEtcdEndpoints() }),
              'tortie-config/veth_mtu': String(opts.podMtu ?? 1400),
              // dual stack as docs/deploying.md says: pods get both families, and each
              // agent detects its node's IPv6 address too
              ...(opts.ipv6
                ? { 'tortie-config/assign_ipv6': 'true', 'tortie-config/ip6': 'autodetect' }
                : {}),
            },
          });
          host = new NodeHost(
            tb.tempDir(`${name}-host`),
            plan,
            image,
            `/var/run/netns/${ns.name}`,
            secrets,
            kube ? { env: kube.serviceEnv() } : {},
          );
          if (kube) await mountServiceAccount(tb, kube, host);
          await host.init();
          if (kube) c.startSidecars(name, host);
        }
        // the agent's sockets: in containers mode where its hostPath volume puts them
        const run = host ? host.path('/var/run/tortie') : tb.tempDir(`${name}-run`);
        // in containers mode the Secrets are the DaemonSet's secret volumes, written by NodeHost
        const secretsDir = host ? host.secretDir('') : tb.tempDir(`${name}-secrets`);
        if (!host)
          for (const [secret, data] of Object.entries(secrets)) {
            fs.mkdirSync(path.join(secretsDir, secret));
            for (const [key, value] of Object.entries(data))
              fs.writeFileSync(path.join(secretsDir, secret, key), value, { mode: 0o600 });
          }
        const node: ClusterNode = {
          name,
          ip: c.nodeIp(i),
          ns,
          cniSocket: path.join(run, 'cni.sock'),
          bgpSocket: path.join(run, 'bgp.sock'),
          statusSocket: path.join(run, 'status.sock'),
          secretsDir,
          ...(host ? { host } : {}),
          log: [],
        };
        c.nodes.push(node);
      }
      if (opts.routeReflector) c.rr = await c.startReflector(image, secrets);
      // as each kubelet registers its node, before the agent patches it
      if (kube) await kube.apply(c.nodes.map((n) => k8sNode(n.name, n.ip)));
      for (let i = 0; i < opts.nodes; i++) c.startAgent(i);
      return c;
    } catch (e) {
      await tb.cleanup();
      throw e;
    }
  }

  /**
   * tortie-rr in its own namespace on the fabric: deploy/tortie-rr.yaml's container from
   * the image under runc, its node's ConfigMap settings the lab's etcd (containers mode),
   * or a process of this checkout's build.
   */
  private async startReflector(image: OciBundle | undefined, secrets: Secrets) {
    const ns = await this.tb.netns(RR_NODE);
    await this.fabric.attach(ns, { v4: `${RR_ADDRESS}/24` });
    if (!this.etcdCluster)
      await PortForward.start(this.tb, ns, ETCD_PORT, {
        host: '127.0.0.1',
        port: Number(new URL(this.etcd.endpoint).port),
      });
    const log: string[] = [];
    let p: ChildProcess;
    let socket: string;
    let host: NodeHost | undefined;
    let containerId: string | undefined;
    if (image) {
      const plan = deploymentPlan(fs.readFileSync(RR_MANIFEST, 'utf8'), {
        nodeName: RR_NODE,
        configMaps: {
          'tortie-rr-config/datastore_type': 'etcdv3',
          'tortie-rr-config/etcd_endpoints': this.nodeEtcdEndpoints(),
        },
      });
      host = new NodeHost(
        this.tb.tempDir(`${RR_NODE}-host`),
        plan,
        image,
        `/var/run/netns/${ns.name}`,
        secrets,
      );
      const { id, child } = host.start('tortie-rr', {});
      containerId = id;
      this.tb.onCleanup(async () => {
        spawnSync('runc', ['delete', '-f', id]);
      });
      p = child;
      socket = path.join(host.path('/var/run/tortie-rr'), 'bgp.sock');
    } else {
      const dir = this.tb.tempDir(`${RR_NODE}-run`);
      const secretsDir = this.tb.tempDir(`${RR_NODE}-secrets`);
      for (const [secret, data] of Object.entries(secrets)) {
        fs.mkdirSync(path.join(secretsDir, secret));
        for (const [key, value] of Object.entries(data))
          fs.writeFileSync(path.join(secretsDir, secret, key), value, { mode: 0o600 });
      }
      socket = path.join(dir, 'bgp.sock');
      p = ns.spawn([process.execPath, RR_CLI, 'run', '--socket', socket], {
        env: {
          PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
          NODENAME: RR_NODE,
          DATASTORE_TYPE: 'etcdv3',
          ETCD_ENDPOINTS: this.nodeEtcdEndpoints(),
          TORTIE_SECRETS_DIR: secretsDir,
          TORTIE_LOG_LEVEL: 'info',
        },
      });
      this.tb.onCleanup(() => stopProcess(p));
    }
    const keep = (d: Buffer) => {
      const lines = d.toString().split('\n').filter(Boolean);
      log.push(...lines);
      if (log.length > 2000) log.splice(0, log.length - 2000);
      for (const l of lines) this.opts.onAgentLog?.(RR_NODE, l);
    };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    this.opts.say?.(
      `route reflector tortie-rr (${image ? 'deploy/tortie-rr.yaml under runc' : 'process'}) at ${RR_ADDRESS} in ${ns.name}, cluster id ${RR_CLUSTER_ID}`,
    );
    return { name: RR_NODE, ip: RR_ADDRESS, ns, process: p, socket, log, host, containerId };
  }

  /** The reflector's BGP sessions, from its speaker's control socket (tortie-bgp peers). */
  async rrPeers(): Promise<PeerRow[]> {
    if (!this.rr) throw new Error('no route reflector in this lab');
    return (await controlRequest(this.rr.socket, { cmd: 'peers' })) as PeerRow[];
  }

  /**
   * The reflector's probe (GET <path> on its health port, as a kubelet asks on its node):
   * the HTTP status, or undefined when nothing answers.
   */
  async rrProbe(urlPath: '/liveness' | '/readiness'): Promise<number | undefined> {
    const rr = this.rr;
    if (!rr) throw new Error('no route reflector in this lab');
    const out = await rr.ns
      .exec([
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-m',
        '5',
        `http://127.0.0.1:${RR_HEALTH.port}${urlPath}`,
      ])
      .catch(() => '');
    const code = Number(out.trim());
    return code > 0 ? code : undefined;
  }

  /**
   * tortie-controllers (LoadBalancer IPAM) on the cluster's datastore, with its pool: etcd,
   * or the Kubernetes API (it writes Services' status.loadBalancer.ingress there).
   */
  private async startControllers(endpoints: string[]): Promise<void> {
    await this.apply({
      kind: 'IPPool',
      metadata: { name: 'loadbalancer' },
      spec: { cidr: LB_POOL, allowedUses: ['LoadBalancer'] },
    });
    const ctl = spawn(process.execPath, [CONTROLLERS], {
      env: {
        PATH: process.env.PATH,
        ...(this.kube
          ? { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: this.kube.kubeconfig }
          : { ETCD_ENDPOINTS: endpoints.join(',') }),
        TORTIE_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.tb.onCleanup(() => stopProcess(ctl));
    const keep = (d: Buffer) => {
      for (const l of d.toString().split('\n').filter(Boolean))
        this.opts.onAgentLog?.('controllers', l);
    };
    ctl.stdout!.on('data', keep);
    ctl.stderr!.on('data', keep);
  }

  /** Creates or replaces a resource; a concurrent write is re-read and applied again. */
  apply(doc: object): Promise<Resource> {
    return applyResource(this.ds, doc);
  }

  async remove(kind: Resource['kind'], name: string, namespace?: string): Promise<void> {
    await this.ds.delete({ kind, name, namespace });
  }

  /** The etcd endpoints as a node sees them (the members on the fabric, or the relay), comma-separated. */
  nodeEtcdEndpoints(): string {
    return this.etcdCluster?.clientUrls.join(',') ?? `http://127.0.0.1:${ETCD_PORT}`;
  }

  /** Starts (or restarts) the agent of node i. */
  startAgent(i: number): ClusterNode {
    const n = this.nodes[i];
    const p = n.host ? this.agentContainer(i, n.host) : this.agentProcess(i);
    n.agent = p;
    const keep = (d: Buffer) => {
      const lines = d.toString().split('\n').filter(Boolean);
      n.log.push(...lines);
      if (n.log.length > 2000) n.log.splice(0, n.log.length - 2000);
      for (const l of lines) this.opts.onAgentLog?.(n.name, l);
    };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    return n;
  }

  /**
   * The DaemonSet's containers other than the agent (cni-token-watch: install-cni --watch),
   * run for the lab's life as a kubelet runs them; their lines go to onAgentLog.
   */
  private startSidecars(node: string, host: NodeHost): void {
    for (const ctr of host.plan.containers.filter((x) => x.name !== 'tortie-node')) {
      const { id, child } = host.start(ctr.name, {});
      this.tb.onCleanup(async () => {
        spawnSync('runc', ['delete', '-f', id]);
      });
      const keep = (d: Buffer) => {
        for (const l of d.toString().split('\n').filter(Boolean))
          this.opts.onAgentLog?.(`${node}/${ctr.name}`, l);
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
    }
  }

  /** What the lab sets beyond the manifest: its backend, faster resyncs, its labels. */
  private labAgentEnv(i: number): Record<string, string> {
    const env: Record<string, string> = {
      TORTIE_NETWORKING_BACKEND: this.opts.backend ?? 'bgp',
      FELIX_IPTABLESREFRESHINTERVAL: '10s',
      FELIX_ROUTEREFRESHINTERVAL: '10s',
      TORTIE_LOG_LEVEL: 'info',
    };
    if (this.opts.nodeLabels?.[i]) env.NODE_LABELS = this.opts.nodeLabels[i];
    if (this.opts.clusterIds?.[i]) env.CLUSTER_ID = this.opts.clusterIds[i];
    return env;
  }

  /**
   * The DaemonSet's tortie-node container: the manifest's environment (node name, etcd
   * from the ConfigMap, IP=autodetect) and mounts (its Secrets from its secret volume),
   * plus the lab's settings.
   */
  private agentContainer(i: number, host: NodeHost): ChildProcess {
    const n = this.nodes[i];
    const { id, child } = host.start('tortie-node', { env: this.labAgentEnv(i) });
    n.containerId = id;
    this.tb.onCleanup(async () => {
      spawnSync('runc', ['delete', '-f', id]);
    });
    return child;
  }

  /** The agent as a process of this checkout's build, set up by environment. */
  private agentProcess(i: number): ChildProcess {
    const n = this.nodes[i];
    const env: Record<string, string> = {
      ...this.labAgentEnv(i),
      TORTIE_SECRETS_DIR: n.secretsDir,
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      NODENAME: n.name,
      IP: `${n.ip}/24`,
      ...(this.kube
        ? { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: this.kube.nodeKubeconfig }
        : { ETCD_ENDPOINTS: this.nodeEtcdEndpoints() }),
      FELIX_HEALTHPORT: '9099',
      TORTIE_CNI_SOCKET: n.cniSocket,
      TORTIE_BGP_SOCKET: n.bgpSocket,
      TORTIE_STATUS_SOCKET: n.statusSocket,
      ...(this.opts.ipv6 ? { IP6: `${this.nodeIp6(i)}/64` } : {}),
    };
    return n.ns.spawn([process.execPath, AGENT], { env });
  }

  async stopAgent(i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.nodes[i].agent;
    if (!p) return;
    if (signal === 'SIGKILL') p.kill('SIGKILL');
    await stopProcess(p);
    this.nodes[i].agent = undefined;
  }

  /**
   * The ACL dataplane node i's agent chose and why, from its log line "ACL dataplane
   * chosen" (undefined until it has chosen, once in sync).
   */
  aclDataplane(i: number): { dataplane: 'iptables' | 'nftables'; reason: string } | undefined {
    for (const l of this.nodes[i].log) {
      if (!l.includes('ACL dataplane chosen')) continue;
      try {
        const j = JSON.parse(l) as { message?: string; dataplane?: string; reason?: string };
        if (j.message === 'ACL dataplane chosen' && j.dataplane)
          return {
            dataplane: j.dataplane as 'iptables' | 'nftables',
            reason: j.reason ?? '',
          };
      } catch {
        // not a JSON line
      }
    }
    return undefined;
  }

  /**
   * Waits until node i's agent reports ready (programmed from an in-sync datastore): its
   * /readiness, asked on its status socket (the same handler as port 9099) from this
   * process. A probe process per ask (node's fetch in the node's namespace) cost seconds
   * of CPU each under emulation, taken from the agents it was waiting for.
   */
  async ready(i: number, timeoutMs = 20000): Promise<void> {
    const n = this.nodes[i];
    await waitUntil(
      `${n.name} agent ready`,
      async () => {
        if (!n.agent || n.agent.exitCode !== null)
          throw new Error(`agent exited: ${n.log.slice(-5).join(' | ')}`);
        return (await httpStatus(n.statusSocket, '/readiness')) === 200;
      },
      timeoutMs,
      200,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; its last log lines:\n${n.log.slice(-15).join('\n')}`);
    });
  }

  /**
   * What Calico's kube-controllers does in etcd mode for a namespace: a "kns.<ns>"
   * profile that allows by default and carries the namespace labels.
   */
  async ensureNamespace(namespace: string, labels: Record<string, string> = {}): Promise<void> {
    // the kubernetes datastore: the Namespace itself (its profile is a view of it)
    if (this.kube) {
      await this.kube.apply([
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels } },
      ]);
      return;
    }
    const labelsToApply = Object.fromEntries([
      ['pcns.projectcalico.org/name', namespace],
      ...Object.entries(labels).map(([k, v]) => [`pcns.${k}`, v]),
    ]);
    await this.apply({
      kind: 'Profile',
      metadata: { name: `kns.${namespace}` },
      spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }], labelsToApply },
    });
  }

  /**
   * A pod on node i through the real CNI plugin; the lab plays kube-controllers and writes
   * its labels. With the kubernetes datastore the lab plays the scheduler and kubelet
   * instead: the Pod (its labels and container ports) is created on node i, wired by the
   * CNI plugin, and its status gets the address.
   */
  async addPod(
    i: number,
    name: string,
    labels: Record<string, string> = {},
    namespace = 'default',
    ports: K8sContainerPort[] = [],
  ): Promise<Pod> {
    const node = this.nodes[i];
    if (this.kube) return this.addKubePod(node, name, labels, namespace, ports);
    // pods added at once each write it: the same content, so whichever lands last is right
    if (!(await this.ds.get({ kind: 'Profile', name: `kns.${namespace}` })))
      await this.ensureNamespace(namespace);
    const { ns, containerId, addMs, ip, ip6 } = await this.wire(node, name, namespace);
    if (Object.keys(labels).length) {
      const weps = (await this.ds.list({ kind: 'WorkloadEndpoint', namespace }))
        .items as Resource<'WorkloadEndpoint'>[];
      const w = weps.find((x) => x.spec.pod === name)!;
      await addLabels(
        this.ds,
        { kind: 'WorkloadEndpoint', name: w.metadata.name, namespace },
        labels,
      );
    }
    const pod = { name, namespace, node, ns, ip, ...(ip6 ? { ip6 } : {}), containerId, addMs };
    this.pods.push(pod);
    return pod;
  }

  private async addKubePod(
    node: ClusterNode,
    name: string,
    labels: Record<string, string>,
    namespace: string,
    ports: K8sContainerPort[],
  ): Promise<Pod> {
    const kube = this.kube!;
    if (!(await this.ds.get({ kind: 'Profile', name: `kns.${namespace}` })))
      await this.ensureNamespace(namespace);
    await kube.apply([
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace, labels },
        spec: {
          nodeName: node.name,
          containers: [{ name: 'main', image: 'tortie-lab/pod', ports }],
        },
      },
    ]);
    const { ns, containerId, addMs, ip, ip6 } = await this.wire(node, name, namespace);
    // what kubelet reports once the sandbox has its network: the pod is then an endpoint
    const podIPs = [ip, ...(ip6 ? [ip6] : [])].map((x) => ({ ip: x }));
    await kube.must([
      'patch',
      'pod',
      name,
      '-n',
      namespace,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: runningStatus(node.ip, ip, podIPs) }),
    ]);
    const pod = { name, namespace, node, ns, ip, ...(ip6 ? { ip6 } : {}), containerId, addMs };
    this.pods.push(pod);
    return pod;
  }

  /** The pod's namespace and CNI ADD through node's agent: its addresses. */
  private async wire(
    node: ClusterNode,
    name: string,
    namespace: string,
  ): Promise<{ ns: Netns; containerId: string; addMs: number; ip: string; ip6?: string }> {
    const ns = await this.tb.netns(`pod${name}`);
    // unique also for pods of one name in several namespaces added at once
    const containerId = `${name}${Date.now().toString(16)}${randomBytes(3).toString('hex')}`;
    const t0 = performance.now();
    const out = await this.cni(node, {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: containerId,
      CNI_NETNS: `/var/run/netns/${ns.name}`,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`,
    });
    const addMs = Math.round(performance.now() - t0);
    const ips = (out.ips as Array<{ address: string }>).map((x) => x.address.split('/')[0]);
    const ip6 = ips.find((x) => x.includes(':'));
    return {
      ns,
      containerId,
      addMs,
      ip: ips.find((x) => !x.includes(':'))!,
      ...(ip6 ? { ip6 } : {}),
    };
  }

  /**
   * A Service (KubernetesService spec, Kubernetes' fields) and, as Kubernetes'
   * EndpointSlice controller would, its slice from the pods its selector picks. With the
   * kubernetes datastore, the core/v1 Service through kubectl apply.
   */
  async addService(name: string, spec: object, namespace = 'default'): Promise<void> {
    if (this.kube)
      await this.kube.apply([
        { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec },
      ]);
    else await this.apply({ kind: 'KubernetesService', metadata: { name, namespace }, spec });
    await this.refreshEndpoints();
  }

  /** The load-balancer addresses tortie-controllers gave the Service (waits for them). */
  async loadBalancerIps(
    name: string,
    namespace = 'default',
    timeoutMs = 10_000,
  ): Promise<string[]> {
    let ips: string[] = [];
    await waitUntil(
      `a load-balancer address for ${namespace}/${name}`,
      async () => {
        const s = (await this.ds.get({ kind: 'KubernetesService', name, namespace })) as
          Resource<'KubernetesService'> | undefined;
        ips = s?.spec.loadBalancerIngress?.map((i) => i.ip) ?? [];
        return ips.length > 0;
      },
      timeoutMs,
      50,
    );
    return ips;
  }

  /**
   * Rewrites every Service's EndpointSlice from the pods as they are now (the lab plays
   * Kubernetes' EndpointSlice controller): with the kubernetes datastore, the
   * discovery.k8s.io/v1 objects in one kubectl apply.
   */
  async refreshEndpoints(): Promise<void> {
    const services = (await this.ds.list({ kind: 'KubernetesService' })).items;
    const endpoints = (await this.ds.list({ kind: 'WorkloadEndpoint' })).items;
    const slices = (services as Resource<'KubernetesService'>[]).flatMap(
      (svc) => endpointSliceFor(svc, endpoints as Resource<'WorkloadEndpoint'>[]) ?? [],
    );
    if (this.kube) {
      if (slices.length) await this.kube.apply(slices.map(k8sEndpointSlice));
    } else for (const slice of slices) await this.apply(slice);
  }

  /** A TCP server in the pod answering "<pod name> <client address>"; stopped with the lab. */
  async serve(pod: Pod, port: number): Promise<void> {
    const p = pod.ns.spawn([process.execPath, '-e', ECHO_SERVER, pod.name, String(port)]);
    this.tb.onCleanup(() => stopProcess(p));
    await new Promise<void>((ok, fail) => {
      p.stdout!.once('data', () => ok());
      p.once('exit', (code) => fail(new Error(`server in ${pod.name} exited ${code}`)));
    });
  }

  /** `count` connections from `from` to ip:port: each answer ("<pod> <client>") or error. */
  async ask(from: Pod | Netns, ip: string, port: number, count = 1): Promise<string[]> {
    const ns = 'ns' in from ? from.ns : from;
    const out = await ns.exec([
      process.execPath,
      '-e',
      ECHO_CLIENT,
      ip,
      String(port),
      String(count),
    ]);
    return JSON.parse(out) as string[];
  }

  /** A CNI command for a pod on `node`, as that node's runtime runs the plugin. */
  private cni(node: ClusterNode, env: Record<string, string>): Promise<Record<string, unknown>> {
    return node.host
      ? node.host.cni(env, node.ns.name)
      : execPlugin(['ip', 'netns', 'exec', node.ns.name, ...CNI], this.cniConf(node), env);
  }

  /** The network config a runtime on this node hands tortie-cni. */
  private cniConf(node: ClusterNode): string {
    return JSON.stringify({
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      type: 'tortie-cni',
      nodename: node.name,
      ...(this.kube
        ? { datastore_type: 'kubernetes', kubernetes: { kubeconfig: this.kube.nodeKubeconfig } }
        : { datastore_type: 'etcdv3', etcd_endpoints: this.nodeEtcdEndpoints() }),
      mtu: this.opts.podMtu ?? 1400,
      ...(this.opts.ipv6
        ? { ipam: { type: 'tortie-ipam', assign_ipv4: true, assign_ipv6: true } }
        : {}),
      // through the agent when it runs, and the pod starts once its policy is in place
      agent_socket: node.cniSocket,
      policy_setup_timeout_seconds: 2,
    });
  }

  /** Deletes a pod as the runtime does: CNI DEL, then its namespace goes. */
  async deletePod(pod: Pod): Promise<void> {
    await this.cni(pod.node, {
      CNI_COMMAND: 'DEL',
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: `/var/run/netns/${pod.ns.name}`,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name}`,
    });
    this.pods.splice(this.pods.indexOf(pod), 1);
    await pod.ns.destroy();
    if (this.kube)
      await this.kube.must(['delete', 'pod', pod.name, '-n', pod.namespace, '--wait=false']);
  }

  /**
   * Node i's switch port stops forwarding (its link stays up: only BFD or a hold timer can
   * tell). Returns how long until the ToR's kernel and node `observer`'s kernel (its
   * BGP-learned routes, proto 81) no longer route anything via node i.
   */
  async cutLink(i: number, observer = 0): Promise<{ torMs?: number; nodeMs: number }> {
    const gone = (out: string) => !out.includes(`via ${this.nodes[i].ip} `);
    const t0 = Date.now();
    await this.fabric.cut(this.nodes[i].ns);
    let torMs: number | undefined;
    let nodeMs: number | undefined;
    await waitUntil(
      `routes via ${this.nodes[i].name} withdrawn`,
      async () => {
        const now = Date.now() - t0;
        const tor = this.torRouter?.forwards ? this.torRouter : undefined;
        if (tor && torMs === undefined && gone(await tor.ns.exec(['ip', 'route']))) torMs = now;
        const mine = this.nodes[observer].ns.exec(['ip', 'route', 'show', 'proto', '81']);
        if (nodeMs === undefined && gone(await mine)) nodeMs = now;
        return nodeMs !== undefined && (!tor || torMs !== undefined);
      },
      120_000,
      20,
    );
    return { torMs, nodeMs: nodeMs! };
  }

  /** Undoes cutLink(i). */
  async mendLink(i: number): Promise<void> {
    await this.fabric.mend(this.nodes[i].ns);
  }

  /**
   * Pings `to` from `from` every `intervalMs` until stop(), which says how many went
   * unanswered (each ping waits up to a second).
   */
  pinger(from: Pod | Netns, to: string, intervalMs = 100) {
    let stopped = false;
    let sent = 0;
    let lost = 0;
    const done = (async () => {
      while (!stopped) {
        sent++;
        if (!(await this.ping(from, to, 1))) lost++;
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        await done;
        return { sent, lost };
      },
    };
  }

  /** SINCE of node i's established BGP sessions by peer (`tortiectl node status`, 1 s resolution). */
  async sessionsSince(i: number): Promise<Map<string, string>> {
    const m = new Map<string, string>();
    for (const l of (await this.nodeStatus(i)).split('\n')) {
      const cells = l.split('|').map((x) => x.trim());
      if (cells.length > 5 && cells[3] === 'up') m.set(cells[1], cells[4]);
    }
    return m;
  }

  /** `tortiectl node status` of node i, as an operator on that node runs it. */
  nodeStatus(i: number): Promise<string> {
    return this.ctl(['node', 'status', '--bgp-socket', this.nodes[i].bgpSocket]).then((r) => {
      if (r.code !== 0) throw new Error(`tortiectl node status: ${r.out.trim()}`);
      return r.out;
    });
  }

  /** `tortiectl ipam check` against the cluster's etcd: its output and exit code (1: problems). */
  ipamCheck(): Promise<{ code: number | null; out: string }> {
    const endpoints = this.etcdCluster?.endpoints.join(',') ?? this.etcd.endpoint;
    return this.ctl(['--etcd-endpoints', endpoints, 'ipam', 'check']);
  }

  /** `tortiectl policy status` of node i: its output and exit code (3: policies fail closed). */
  policyStatus(i: number, json = false): Promise<{ code: number | null; out: string }> {
    return this.ctl([
      'policy',
      'status',
      '--status-socket',
      this.nodes[i].statusSocket,
      ...(json ? ['-o', 'json'] : []),
    ]);
  }

  private ctl(args: string[]): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [CTL, ...args]);
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, out }));
    });
  }

  async ping(from: Pod | Netns, ip: string, timeoutS = 1): Promise<boolean> {
    const ns = 'ns' in from ? from.ns : from;
    return ns
      .exec(['ping', ...(ip.includes(':') ? ['-6'] : []), '-c', '1', '-W', String(timeoutS), ip])
      .then(() => true)
      .catch(() => false);
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) await this.stopAgent(i);
    await this.tb.cleanup();
  }
}

/** The tortie/node image, unpacked once for every node's containers. */
function unpackImage(
  tb: Testbed,
  { layout, image }: BuiltImage,
  say: (line: string) => void,
): OciBundle {
  const bundle = OciBundle.unpack(`${layout}:${image}`, path.join(tb.tempDir('image'), 'bundle'));
  say(`image unpacked for runc in ${bundle.dir}`);
  return bundle;
}

/**
 * A second L2 segment (10.98.0.0/24) and a router namespace forwarding between it and
 * the fabric's 10.99.0.0/24, as two racks joined at L3.
 */
async function routedSubnet(
  tb: Testbed,
  fabric: Fabric,
): Promise<{ fabric: Fabric; router: Netns }> {
  const second = await Fabric.create(tb, 'fabric2');
  const router = await tb.netns('router');
  await fabric.attach(router, { v4: `${SUBNET_ROUTER.fabric}/24`, ifName: 'eth0' });
  await second.attach(router, { v4: `${SUBNET_ROUTER.routed}/24`, ifName: 'eth1' });
  await router.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  return { fabric: second, router };
}

/** A container port as a Pod spec declares it (named ports for NetworkPolicy). */
export interface K8sContainerPort {
  name?: string;
  containerPort: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

/** The manifest an operator applies for the Kubernetes datastore (with its CRDs). */
export const KDD_MANIFEST = path.join(ROOT, 'deploy/tortie.yaml');

/**
 * tortie-apiserver, with deploy/tortie.yaml applied by real kubectl as a user installs
 * tortie (its namespace, RBAC, ConfigMap, DaemonSet and CRDs): the lab exercises the
 * shipped bundle, not deploy/crds beside it.
 */
async function startKubernetes(
  tb: Testbed,
  etcd: string[],
  say: (line: string) => void,
): Promise<KubeApi> {
  const kube = await KubeApi.start(tb, etcd);
  say(`tortie-apiserver at ${kube.url} (kubeconfig ${kube.kubeconfig})`);
  const out = (await kube.must(['apply', '-f', KDD_MANIFEST])).trim().split('\n');
  const crds = out.filter((l) => l.startsWith('customresourcedefinition.')).length;
  say(`kubectl apply -f deploy/tortie.yaml: ${out.length} objects (${crds} CRDs)`);
  // the DaemonSet's service account, whose tokens the API server issues
  const plan = daemonSetPlan(fs.readFileSync(KDD_MANIFEST, 'utf8'), { nodeName: '' });
  await kube.writeNodeKubeconfig(plan.namespace, plan.serviceAccount!);
  say(
    `RBAC: the agents and the CNI plugin are the ${plan.serviceAccount} service account (deploy/tortie.yaml), with tokens from the TokenRequest API`,
  );
  return kube;
}

/** kubelet's token lifetime for a projected service-account volume (it asks for 3607 s). */
const TOKEN_SECONDS = 3607;

/**
 * As a kubelet mounts a pod's service account: a token from the TokenRequest API, the
 * cluster CA and the namespace in the pod's kube-api-access volume, refreshed at 80% of
 * the token's life, as the kubelet's token manager does.
 */
async function mountServiceAccount(tb: Testbed, kube: KubeApi, host: NodeHost): Promise<void> {
  const { namespace, serviceAccount } = host.plan;
  if (!serviceAccount) return;
  const write = async () =>
    host.writeServiceAccount({
      token: await kube.createToken(namespace, serviceAccount, TOKEN_SECONDS),
      'ca.crt': fs.readFileSync(kube.caFile, 'utf8'),
      namespace,
    });
  await write();
  const refresh = setInterval(() => void write().catch(() => undefined), TOKEN_SECONDS * 800);
  refresh.unref();
  tb.onCleanup(async () => clearInterval(refresh));
}

/** A pod's status as kubelet reports it once its one container runs. */
function runningStatus(hostIP: string, podIP: string, podIPs: Array<{ ip: string }>): object {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    phase: 'Running',
    hostIP,
    podIP,
    podIPs,
    conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
    containerStatuses: [
      {
        name: 'main',
        image: 'tortie-lab/pod',
        imageID: '',
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: now } },
      },
    ],
  };
}

/** A Kubernetes node as its kubelet registers it: its address as InternalIP. */
function k8sNode(name: string, ip: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux' } },
    status: {
      addresses: [
        { type: 'InternalIP', address: ip },
        { type: 'Hostname', address: name },
      ],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }],
    },
  };
}

/** The HTTP status of GET `urlPath` on a unix socket; undefined when nothing answers. */
function httpStatus(socketPath: string, urlPath: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: urlPath, timeout: 5000 * SLOW }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}
