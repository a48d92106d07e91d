#!/usr/bin/env node
// npm run lab: a tortie cluster out of network namespaces on this machine: etcd, N nodes
// each running the real agent (tortie-node: BGP speaker, routes, iptables), pods wired by
// the real CNI plugin, and a BIRD top-of-rack router. Shows pods reaching each other
// across nodes, what BGP and the kernel hold, and a NetworkPolicy taking effect.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { runInVm, skipReason, teardownOnSignals, vmMissing, waitUntil } from '@tortie/testbed';
import { RR_HEALTH } from '@tortie/route-reflector';
import { Cluster, EXTERNAL_IPS, LB_POOL, type Pod } from './cluster';
import { attachScript, type AttachInput } from './attach';
import { CLUSTER_AS } from './bgp-lab';
import { TOR_KINDS, type TorKind } from './tor';
import { startUi } from './ui-server';

function say(line = ''): void {
  process.stdout.write(line + '\n');
}

function heading(title: string): void {
  say();
  say(`== ${title}`);
}

async function matrix(c: Cluster, pods: Pod[]): Promise<string> {
  const rows = [['from \\ to', ...pods.map((p) => p.name)]];
  for (const a of pods) {
    const row = [a.name];
    for (const b of pods) row.push(a === b ? '-' : (await c.ping(a, b.ip)) ? 'ok' : 'blocked');
    rows.push(row);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((x, i) => x.padEnd(w[i])).join('  ')).join('\n');
}

/** Every pod reaches every other pod (over IPv6 too in a dual-stack lab). */
async function allReachable(c: Cluster, pods: Pod[]): Promise<boolean> {
  const checks = pods.flatMap((a) =>
    pods
      .filter((b) => b !== a)
      .flatMap((b) => [b.ip, ...(b.ip6 ? [b.ip6] : [])].map((ip) => c.ping(a, ip, 1))),
  );
  return (await Promise.all(checks)).every(Boolean);
}

async function demo(c: Cluster, startedAt: number, keep: boolean, attach?: TorKind): Promise<void> {
  heading('agents');
  // as kubelet schedules pods only on a Ready node (a minute: the machine may be busy)
  await Promise.all(c.nodes.map((_, i) => c.ready(i, 60_000)));
  say(
    `all ${c.nodes.length} agents ready (in sync with ${c.kube ? 'the Kubernetes API' : 'etcd'}, dataplane programmed) ${Date.now() - startedAt} ms after they were started`,
  );
  // which ACL dataplane each agent runs, as its log says
  c.nodes.forEach((n, i) => {
    const d = c.aclDataplane(i);
    say(
      `  ${n.name}: policy on ${d ? `${d.dataplane} (${d.reason})` : 'an ACL dataplane its log does not name'}`,
    );
  });

  heading('pods (created with tortie-cni as a container runtime would)');
  const specs = c.nodes.flatMap((_, i) => [
    { node: i, name: `web${i + 1}`, labels: { app: 'web' } },
    { node: i, name: `db${i + 1}`, labels: { app: 'db' } },
  ]);
  const added = Date.now();
  const pods = await Promise.all(specs.map((s) => c.addPod(s.node, s.name, s.labels)));
  for (const p of pods)
    say(
      `  ${p.name.padEnd(5)} ${p.ip.padEnd(14)} ${p.ip6 ? `${p.ip6.padEnd(28)} ` : ''}on ${p.node.name}`,
    );
  say(
    `${pods.length} pods added at once in ${Date.now() - added} ms (each ADD runs in its node's agent and returns once the pod's routes and policy are programmed)`,
  );
  const addMs = pods.map((p) => p.addMs ?? 0).sort((a, b) => a - b);
  say(
    `CNI ADD took ${addMs[Math.floor((addMs.length - 1) / 2)]} ms (median), ${addMs.at(-1)} ms (slowest) of ${addMs.length}; the policy_setup_timeout is 2 s`,
  );

  heading('waiting until every pod reaches every other pod');
  await waitUntil('every pod pair reachable', () => allReachable(c, pods), 30_000, 100);
  say(
    `all ${pods.length * (pods.length - 1)} pod pairs reachable${c.opts.ipv6 ? ' over IPv4 and IPv6' : ''} ${Date.now() - startedAt} ms after the agents were started`,
  );

  if (c.rr) await reflector(c, startedAt);

  const n1 = c.nodes[0];
  heading(`${n1.name}: routes from the agent (proto 80) and learned over BGP (proto 81)`);
  say(await n1.ns.exec(['ip', 'route', 'show', 'proto', '80']));
  say(await n1.ns.exec(['ip', 'route', 'show', 'proto', '81']));
  if (c.opts.ipv6) say(await n1.ns.exec(['ip', '-6', 'route', 'show', 'proto', '81']));
  if (c.opts.pool?.ipipMode) {
    const routed = c.nodes.filter((_, i) => c.opts.routedNodes?.includes(i)).map((n) => n.name);
    heading(
      `IPIP ${c.opts.pool.ipipMode}: ${n1.name} tunnels to ${routed.join(', ') || 'no node'} (another subnet) and routes directly within its own`,
    );
    say((await n1.ns.exec(['ip', '-d', 'addr', 'show', 'tunl0'])).trimEnd());
  }
  if (c.opts.backend !== 'vxlan') {
    heading(`${n1.name}: tortiectl node status`);
    say((await c.nodeStatus(0)).trimEnd());
  }
  if (c.opts.bgpPassword && c.nodes.length > 1) {
    heading(`${n1.name}: BGP segments on the wire carry the TCP-MD5 option (tcpdump)`);
    const out = await n1.ns.exec(
      ['tcpdump', '-i', 'any', '-nn', '-v', '-c', '2', 'tcp port 179 and tcp[13] & 8 != 0'],
      { timeoutMs: 30_000 },
    );
    say(
      out
        .split('\n')
        .filter((l) => l.includes('.179'))
        .join('\n'),
    );
  }
  const tor = c.torRouter;
  if (tor) {
    heading(`ToR (${tor.kind}): its sessions and routes`);
    await waitUntil(
      'the ToR has learnt every node',
      async () => (await tor.sessions()).every((s) => s.established),
      30_000,
      200,
    );
    say(await tor.show());
  }

  heading('NetworkPolicy: db pods accept traffic only from web pods');
  const removePolicy = await applyPolicy(c);
  const t0 = Date.now();
  const [db1, db2] = pods.filter((p) => p.name.startsWith('db'));
  // short ping timeouts: the figure is when the policy took effect, not a ping's wait
  await waitUntil(
    'db2 blocked from db1',
    async () => !(await c.ping(db1, db2.ip, 0.1)),
    10_000,
    20,
  );
  say(
    `enforced on every node ${Date.now() - t0} ms after it was written to ${c.kube ? 'the API server' : 'etcd'}`,
  );
  say(await matrix(c, pods));
  if (c.kube) {
    say();
    say('$ kubectl get networkpolicies,pods -o wide');
    say((await c.kube.must(['get', 'networkpolicies,pods', '-o', 'wide'])).trimEnd());
  }
  heading(`${n1.name}: tortiectl policy status (policies the node could not program fail closed)`);
  say((await c.policyStatus(0)).out.trimEnd());
  await removePolicy();
  heading('policy removed');
  await waitUntil('db2 reachable again', () => c.ping(db1, db2.ip), 10_000, 50);
  say('every pod reaches every other pod again');

  await services(c, pods);
  if (c.opts.bfd && c.nodes.length > 1) await linkFailure(c, pods);

  if (keep) {
    heading('lab is up; Ctrl-C to tear it down. Try (as root, from this checkout):');
    for (const l of nextSteps(c, pods)) say(`  ${l}`);
    if (attach) {
      heading(`attaching another router (${attach}): as root, from this checkout`);
      say(attachScript(attachInput(c, attach)));
    } else if (!c.kube)
      say('  npm run lab -- --keep --attach bird|frr|gobgp   # to peer another router too');
    // until the signal handler (teardownOnSignals) tears the lab down and exits
    await new Promise<void>(() => setInterval(() => undefined, 60_000));
  }
}

const DB_FROM_WEB = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db-from-web
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: db
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app: web
`;

/**
 * The demo's policy: with the kubernetes datastore a Kubernetes NetworkPolicy applied with
 * real kubectl, as a user does; with etcd, tortie's own. Returns how to remove it.
 */
async function applyPolicy(c: Cluster): Promise<() => Promise<void>> {
  const kube = c.kube;
  if (!kube) {
    await c.apply({
      kind: 'NetworkPolicy',
      metadata: { name: 'db-from-web', namespace: 'default' },
      spec: {
        selector: "app == 'db'",
        types: ['Ingress'],
        ingress: [{ action: 'Allow', source: { selector: "app == 'web'" } }],
      },
    });
    return () => c.remove('NetworkPolicy', 'db-from-web', 'default');
  }
  const file = path.join(c.tb.tempDir('policy'), 'db-from-web.yaml');
  fs.writeFileSync(file, DB_FROM_WEB);
  say(`$ cat ${file}`);
  say(DB_FROM_WEB.trimEnd());
  say(`$ kubectl apply -f ${file}`);
  say((await kube.must(['apply', '-f', file])).trimEnd());
  return async () => {
    say(`$ kubectl delete -f ${file}`);
    say((await kube.must(['delete', '-f', file])).trimEnd());
  };
}

/**
 * The standalone reflector: ready by its kubelet probe, Established with every node and
 * carrying their blocks (the nodes have no session with each other).
 */
async function reflector(c: Cluster, startedAt: number): Promise<void> {
  const rr = c.rr!;
  heading(
    `route reflector ${rr.name} at ${rr.ip} (tortie-rr${rr.containerId ? ', deploy/tortie-rr.yaml under runc' : ''}): every node its client, no node-to-node mesh`,
  );
  await waitUntil(
    'the reflector ready (GET /readiness 200)',
    async () => (await c.rrProbe('/readiness')) === 200,
    60_000,
    100,
  );
  const peers = await waitUntil(
    'every node Established with the reflector',
    async () => {
      const rows = await c.rrPeers();
      const up = c.nodes.every((n) =>
        rows.some((p) => p.address === n.ip && p.state === 'Established'),
      );
      return up ? rows : undefined;
    },
    60_000,
    100,
  );
  say(
    `ready (its /readiness probe on 127.0.0.1:${RR_HEALTH.port} answers 200) and Established with all ${c.nodes.length} nodes ${Date.now() - startedAt} ms after the agents were started`,
  );
  for (const p of peers)
    say(`  ${p.address.padEnd(14)} ${p.state.padEnd(12)} ${p.prefixesReceived} prefixes received`);
  const up = [...(await c.sessionsSince(0)).keys()];
  const meshed = up.filter((ip) => c.nodes.some((n) => n.ip === ip));
  say(
    `${c.nodes[0].name}'s sessions up: ${up.join(', ')}; with other nodes: ${meshed.length ? meshed.join(', ') : 'none'}`,
  );
}

/** --bfd: the last node's switch port stops forwarding; BFD tells its peers at once. */
async function linkFailure(c: Cluster, pods: Pod[]): Promise<void> {
  const i = c.nodes.length - 1;
  const n = c.nodes[i];
  const b = c.opts.bfd!;
  const detect = b.multiplier * Math.max(b.minTxMs, b.minRxMs);
  heading(
    `BFD: ${c.nodes[0].name}'s sessions, each under a BFD session at ${b.minTxMs} ms x ${b.multiplier}`,
  );
  const status = await c.nodeStatus(0);
  say(status.slice(status.indexOf('BFD status')).trimEnd());
  heading(
    `${n.name}'s switch port stops forwarding (its link stays up: no carrier loss to notice)`,
  );
  const m = await c.cutLink(i);
  if (m.torMs !== undefined) say(`the ToR (BIRD) withdrew ${n.name}'s routes after ${m.torMs} ms`);
  say(
    `${c.nodes[0].name} withdrew ${n.name}'s routes after ${m.nodeMs} ms (BFD detect time ${detect} ms; without BFD: the 90 s hold time of the mesh)`,
  );
  const after = await c.nodeStatus(0);
  say(after.slice(after.indexOf('BFD status')).trimEnd());
  heading(`${n.name} back on the switch`);
  const t0 = Date.now();
  await c.mendLink(i);
  const mine = pods.filter((p) => p.node === n);
  const other = pods.find((p) => p.node !== n)!;
  await waitUntil(
    `pods on ${n.name} reachable again`,
    async () => (await Promise.all(mine.map((p) => c.ping(other, p.ip, 1)))).every(Boolean),
    60_000,
    100,
  );
  say(`its pods are reachable again ${Date.now() - t0} ms later (BFD Up, BGP re-established)`);
}

/** The demo's four Services over the web pods (port 80 -> 8080), one of each type. */
const EXTERNAL_IP = '203.0.113.10'; // inside EXTERNAL_IPS, which the nodes advertise
const NODE_PORT = 30080;
const SERVICES = [
  { name: 'web', spec: { type: 'ClusterIP', clusterIP: '10.96.0.10' } },
  {
    name: 'web-nodeport',
    spec: { type: 'NodePort', clusterIP: '10.96.0.11' },
    nodePort: NODE_PORT,
  },
  { name: 'web-lb', spec: { type: 'LoadBalancer', clusterIP: '10.96.0.12' }, nodePort: 30081 },
  {
    name: 'web-external',
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.13', externalIPs: [EXTERNAL_IP] },
  },
].map((s) => ({
  name: s.name,
  spec: {
    ...s.spec,
    selector: { app: 'web' },
    ports: [
      {
        name: 'http',
        protocol: 'TCP',
        port: 80,
        targetPort: 8080,
        ...(s.nodePort ? { nodePort: s.nodePort } : {}),
      },
    ],
  },
}));

/** "web1 10.244.1.5" answers -> "web1 x6, web2 x4 (client seen as 10.244.1.5)" */
function answered(answers: string[]): string {
  const count = new Map<string, number>();
  for (const a of answers) count.set(a.split(' ')[0], (count.get(a.split(' ')[0]) ?? 0) + 1);
  const from = [...new Set(answers.map((a) => a.split(' ')[1]).filter(Boolean))];
  return `${[...count].map(([w, n]) => `${w} x${n}`).join(', ')}${from.length ? ` (client seen as ${from.join(', ')})` : ''}`;
}

/** Every answer came from a web pod. */
const fromWebs = (a: string[]) => a.length > 0 && a.every((x) => x.startsWith('web'));

/**
 * One Service of each type over the web pods: the ClusterIP from a pod; the NodePort, the
 * LoadBalancer IP and the ExternalIP from the ToR (outside the cluster); and the ToR's
 * route for the LoadBalancer IP, one next hop per node.
 */
async function services(c: Cluster, pods: Pod[]): Promise<void> {
  heading('Services: tortie-node programs them with nftables (a kube-proxy replacement)');
  const webs = pods.filter((p) => p.name.startsWith('web'));
  await Promise.all(webs.map((p) => c.serve(p, 8080)));
  const t0 = Date.now();
  if (c.kube) {
    const file = path.join(c.tb.tempDir('services'), 'services.yaml');
    fs.writeFileSync(
      file,
      SERVICES.map((s) =>
        YAML.stringify({
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: s.name, namespace: 'default' },
          spec: s.spec,
        }),
      ).join('---\n'),
    );
    say(
      `$ kubectl apply -f ${file}   # ${SERVICES.map((s) => `${s.name} (${s.spec.type})`).join(', ')}`,
    );
    say((await c.kube.must(['apply', '-f', file])).trimEnd());
    // the lab has no controller manager: it writes each Service's EndpointSlice itself
    await c.refreshEndpoints();
    say(
      `EndpointSlices written with kubectl apply as Kubernetes' EndpointSlice controller would: ${webs.map((w) => w.name).join(', ')} (port 8080)`,
    );
  } else {
    for (const s of SERVICES) await c.addService(s.name, s.spec);
    say(
      `${SERVICES.map((s) => `${s.name} (${s.spec.type})`).join(', ')} written to etcd, each with an EndpointSlice listing ${webs.map((w) => w.name).join(', ')} (port 8080)`,
    );
  }
  const [lbIp] = await c.loadBalancerIps('web-lb', 'default', 30_000);
  say(
    `tortie-controllers gave web-lb ${lbIp} from the pool ${LB_POOL} (allowedUses: LoadBalancer)`,
  );
  if (c.kube) {
    say('$ kubectl get services -o wide');
    say((await c.kube.must(['get', 'services', '-o', 'wide'])).trimEnd());
  }
  const [db1] = pods.filter((p) => p.name.startsWith('db'));
  const clusterIp = SERVICES[0].spec.clusterIP;
  await waitUntil(
    'the cluster IP answers',
    async () => fromWebs(await c.ask(db1, clusterIp, 80)),
    20_000,
    50,
  );
  say(
    `answering from ${db1.name} on ${db1.node.name} ${Date.now() - t0} ms after they were written to ${c.kube ? 'the API server' : 'etcd'}`,
  );
  say(
    `ClusterIP web ${clusterIp}:80, from pod ${db1.name}, 12 connections: ${answered(await c.ask(db1, clusterIp, 80, 12))}`,
  );
  const router = c.torRouter;
  if (!router) return;
  const tor = router.ns;
  const n2 = c.nodes[Math.min(1, c.nodes.length - 1)];
  say(
    `NodePort web-nodeport ${n2.name} ${n2.ip}:${NODE_PORT}, from the ToR: ${answered(await c.ask(tor, n2.ip, NODE_PORT, 12))}`,
  );
  await waitUntil(
    'the ToR learns the load-balancer and external ranges',
    async () => {
      const learnt = await router.prefixes();
      return learnt.includes(LB_POOL) && learnt.includes(EXTERNAL_IPS);
    },
    30_000,
    100,
  );
  say(
    `the ToR learns ${LB_POOL} (serviceLoadBalancerIPs) and ${EXTERNAL_IPS} (serviceExternalIPs) from every node`,
  );
  if (!router.forwards) {
    say(`(GoBGP keeps them in its RIB: without zebra the ToR does not forward to ${lbIp})`);
    return;
  }
  for (const [what, ip] of [
    ['LoadBalancer web-lb', lbIp],
    ['ExternalIP web-external', EXTERNAL_IP],
  ]) {
    await waitUntil(
      `${ip} answers the ToR`,
      async () => fromWebs(await c.ask(tor, ip, 80)),
      20_000,
      100,
    );
    say(`${what} ${ip}:80, from the ToR: ${answered(await c.ask(tor, ip, 80, 12))}`);
  }
  heading(
    `ToR (${router.kind}): its route for the LoadBalancer IP ${lbIp}, over every node (ECMP)`,
  );
  // the kernel's multipath route gets a next hop per node as their paths arrive
  let route = '';
  await waitUntil(
    'a next hop per node',
    async () => {
      route = await router.routeFor(lbIp);
      return c.nodes.every((n) => route.includes(`via ${n.ip} `));
    },
    30_000,
    200,
  );
  say(route);
}

/** What an operator types next, with this lab's own endpoints and sockets. */
export function nextSteps(c: Cluster, pods: Pod[]): string[] {
  const ctl = 'npm exec tortiectl --';
  const etcd = c.etcdCluster?.endpoints.join(',') ?? c.etcd.endpoint;
  const out = c.kube
    ? [
        `export KUBECONFIG=${c.kube.kubeconfig}`,
        'kubectl get nodes,pods -A -o wide',
        'kubectl get networkpolicies -A',
        'kubectl get ippools,felixconfigurations -o yaml   # tortie kinds, from deploy/tortie.yaml',
        'kubectl apply -f my-policy.yaml',
        `${ctl} --kubeconfig ${c.kube.kubeconfig} get workloadendpoints -A -o wide`,
      ]
    : [
        `${ctl} --etcd-endpoints ${etcd} get nodes -o wide`,
        `${ctl} --etcd-endpoints ${etcd} get workloadendpoints -A -o wide`,
        `${ctl} --etcd-endpoints ${etcd} apply -f my-policy.yaml`,
        `${ctl} --etcd-endpoints ${etcd} policy explain default/${pods[0]?.name ?? 'web1'} default/${pods[1]?.name ?? 'db1'} 80`,
      ];
  for (const [i, n] of c.nodes.entries()) {
    if (c.opts.backend !== 'vxlan')
      out.push(`${ctl} node status --bgp-socket ${n.bgpSocket}   # ${n.name}'s BGP sessions`);
    out.push(`${ctl} policy status --status-socket ${n.statusSocket}   # ${n.name}`);
    out.push(
      c.aclDataplane(i)?.dataplane === 'nftables'
        ? `ip netns exec ${n.ns.name} nft list table inet tortie   # ${n.name}'s rules`
        : `ip netns exec ${n.ns.name} iptables-save   # ${n.name}'s rules`,
    );
  }
  if (c.torRouter) out.push(...c.torRouter.queryCommands());
  if (c.rr) {
    out.push(`npm exec tortie-bgp -- peers -s ${c.rr.socket}   # the reflector's clients`);
    out.push(
      `ip netns exec ${c.rr.ns.name} curl -s 127.0.0.1:${RR_HEALTH.port}/readiness   # its probe`,
    );
  }
  pods.forEach((p, i) => {
    const to = pods[(i + 1) % pods.length];
    out.push(`ip netns exec ${p.ns.name} ping ${to.ip}   # pod ${p.name} (${p.ip}) -> ${to.name}`);
  });
  return out;
}

/** The router --attach describes: one more namespace on the fabric, AS 65002. */
function attachInput(c: Cluster, router: TorKind): AttachInput {
  return {
    router,
    fabricNs: c.fabric.ns.name,
    bridge: c.fabric.bridge,
    nodes: c.nodes.map((n) => ({ name: n.name, ip: n.ip })),
    clusterAs: CLUSTER_AS,
    etcd: c.etcdCluster?.endpoints.join(',') ?? c.etcd.endpoint,
    ...(c.kube ? { kubeconfig: c.kube.kubeconfig } : {}),
    ns: 'tt-extra',
    address: '10.99.0.100',
    asn: 65002,
    dir: '/tmp/tt-extra',
  };
}

const USAGE = `usage: npm run lab -- [--nodes N] [--backend bgp|vxlan|ipip] [--tor bird|frr|gobgp] [--datastore etcd|kubernetes] [--ipv6] [--bfd] [--bgp-password KEY] [--etcd-members N] [--containers] [--route-reflector] [--nftables] [--vm] [--keep [--ui] [--attach ROUTER]] [--verbose]
  A tortie cluster in network namespaces on this machine (needs root): etcd, N nodes each
  running tortie-node, pods wired by tortie-cni, and (bgp) a top-of-rack router.
  Shows pods reaching each other across nodes, the BGP sessions and routes, and a
  NetworkPolicy taking effect, then tears everything down.
  --nodes N          nodes (1-20, default 3)
  --backend bgp      BGP full mesh plus the ToR (default); vxlan: VXLAN overlay, no BGP;
                     ipip: BGP mesh, the last node on another subnet behind a router, and
                     the pool in ipipMode CrossSubnet (IP-in-IP only across subnets)
  --tor ROUTER       the ToR router (bgp backend): bird (default), frr (bgpd + zebra) or
                     gobgp (gobgpd, routes stay in its RIB; no --bfd or --bgp-password)
  --datastore kubernetes
                     the cluster's state in the Kubernetes API: tortie-apiserver over the
                     lab's etcd (HTTPS, a token), deploy/tortie.yaml applied with kubectl; the agents
                     and the CNI use the kubernetes datastore (Pods are the workload
                     endpoints), the demo's NetworkPolicy goes in with kubectl apply, and
                     --keep prints the KUBECONFIG to drive the lab with kubectl
                     (default etcd: everything in etcd directly)
  --ipv6             dual stack: an IPv6 pool beside the IPv4 one, pods with both addresses,
                     the mesh and the ToR sessions over IPv6 too (bgp backend); with
                     --containers the ConfigMap's assign_ipv6: 'true' and ip6: autodetect
  --bfd              BFD at 100 ms x 3 under every BGP session (mesh, ToR); the demo ends
                     by cutting the last node off the switch and timing its withdrawal
  --bgp-password KEY TCP-MD5 with KEY on every BGP session: the mesh (nodeMeshPassword) and
                     the ToR (its BGPPeer's password), from a Secret each agent reads
                     (with --containers: the DaemonSet's secret volume bgp-passwords)
  --etcd-members N   etcd as N members (1, 3 or 5; default 1); several run each in its
                     own namespace on the fabric, and the agents and the CNI (or, with
                     --datastore kubernetes, tortie-apiserver) get them all
  --containers       each node runs deploy/tortie-etcd.yaml's DaemonSet from the tortie/node
                     image (npm run image; built when stale) under runc: install-cni into
                     the node's own /opt/cni/bin and /etc/cni/net.d, then tortie-node with
                     the manifest's mounts and environment (IP=autodetect); pods through
                     the installed plugin and conflist, as a kubelet runs them. With
                     --datastore kubernetes: deploy/tortie.yaml's DaemonSet, with the
                     tortie-node service account's token (TokenRequest), ca.crt and
                     namespace at /var/run/secrets/kubernetes.io/serviceaccount and
                     KUBERNETES_SERVICE_HOST/PORT (in-cluster config, no kubeconfig);
                     install-cni writes the plugin's kubeconfig from that token
  --route-reflector  (or --rr) a standalone route reflector, tortie-rr, at 10.99.0.240 on
                     the fabric, set up as deploy/tortie-rr.yaml says: its Node rr1 (cluster
                     id, label route-reflector=true), the node mesh off, a BGPPeer making
                     every node its client; with --containers it is that manifest's
                     Deployment from the tortie/node image under runc (bgp backend, etcd)
  --nftables         the agents run FelixConfiguration nftablesMode Enabled: policy in the
                     native nftables dataplane (table inet tortie) instead of iptables;
                     the demo says which dataplane each agent chose, from its log
  --vm               run the lab inside Debian's kernel under QEMU, for kernel features
                     this machine lacks (ipip here); software emulation: a few minutes
  --keep             leave the lab up until Ctrl-C, and print what to try on it
  --ui               with --keep: serve a read-only web page on 127.0.0.1 (--ui-port,
                     default 7080; 0: any free): the topology with each BGP session's
                     state, pods per node, a live ping matrix, policy explain for a
                     clicked cell, and events as they happen
  --attach ROUTER    with --keep: also print how to put another router (bird, frr or
                     gobgp) on the fabric at 10.99.0.100 and peer the cluster with it
                     (namespace, its config, the command to start it, the BGPPeer)
  --verbose          stream every agent's log as it comes ([node] line)
  -h, --help         this text
`;

const POOLS = {
  bgp: undefined,
  vxlan: { cidr: '10.244.0.0/16', vxlanMode: 'Always' },
  ipip: { cidr: '10.244.0.0/16', ipipMode: 'CrossSubnet' },
};

/** The same lab, run inside Debian's kernel under QEMU (the testbed's VM runner). */
async function inVm(keep: boolean): Promise<number> {
  const bad =
    process.env.TORTIE_IN_VM === '1'
      ? 'already inside the VM'
      : keep
        ? 'nothing outside can reach the lab in the VM, so --keep does not combine with --vm'
        : vmMissing();
  if (bad) {
    process.stderr.write(`--vm: ${bad}\n`);
    return 1;
  }
  say("booting Debian's kernel under QEMU (software emulation: the lab takes a few minutes)");
  const argv = process.argv.slice(2).filter((a) => a !== '--vm');
  const r = await runInVm([process.execPath, __filename, ...argv], {
    modules: ['ipip', 'veth', 'bridge'],
    memoryMb: 3072,
    cpus: 2,
    timeoutMs: 20 * 60_000,
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    onStdout: (d) => process.stdout.write(d),
    onStderr: (d) => process.stderr.write(d),
  });
  if (r.timedOut) process.stderr.write('--vm: the lab did not finish within 20 minutes\n');
  return r.code ?? 1;
}

/** Set on SIGINT/SIGTERM: the demo's steps then fail as their namespaces go, quietly. */
let interrupted = false;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        nodes: { type: 'string', default: '3' },
        backend: { type: 'string', default: 'bgp' },
        tor: { type: 'string', default: 'bird' },
        attach: { type: 'string' },
        ui: { type: 'boolean', default: false },
        'ui-port': { type: 'string', default: '7080' },
        datastore: { type: 'string', default: 'etcd' },
        keep: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        vm: { type: 'boolean', default: false },
        bfd: { type: 'boolean', default: false },
        ipv6: { type: 'boolean', default: false },
        containers: { type: 'boolean', default: false },
        'route-reflector': { type: 'boolean', default: false },
        rr: { type: 'boolean', default: false },
        nftables: { type: 'boolean', default: false },
        'bgp-password': { type: 'string' },
        'etcd-members': { type: 'string', default: '1' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.vm) return inVm(values.keep ?? false);
  const etcdMembers = Number(values['etcd-members']);
  if (![1, 3, 5].includes(etcdMembers)) {
    process.stderr.write(`--etcd-members must be 1, 3 or 5, got "${values['etcd-members']}"\n`);
    return 2;
  }
  const count = Number(values.nodes);
  if (!Number.isInteger(count) || count < 1 || count > 20) {
    process.stderr.write(`--nodes must be a whole number from 1 to 20, got "${values.nodes}"\n`);
    return 2;
  }
  const backend = values.backend as 'bgp' | 'vxlan' | 'ipip';
  if (!['bgp', 'vxlan', 'ipip'].includes(backend)) {
    process.stderr.write(`--backend must be bgp, vxlan or ipip, got "${values.backend}"\n`);
    return 2;
  }
  if (values.bfd && backend === 'vxlan') {
    process.stderr.write('--bfd needs BGP: use it with --backend bgp or ipip\n');
    return 2;
  }
  if (values.ipv6 && backend !== 'bgp') {
    process.stderr.write('--ipv6 needs the bgp backend (IPv6 blocks are routed over BGP)\n');
    return 2;
  }
  const torKind = values.tor as TorKind;
  if (!TOR_KINDS.includes(torKind)) {
    process.stderr.write(`--tor must be bird, frr or gobgp, got "${values.tor}"\n`);
    return 2;
  }
  if (torKind !== 'bird' && backend !== 'bgp') {
    process.stderr.write('--tor needs the bgp backend (the only one with a ToR)\n');
    return 2;
  }
  if (torKind === 'gobgp' && (values.bfd || values['bgp-password'] !== undefined)) {
    process.stderr.write(
      '--tor gobgp runs without BFD and TCP-MD5 here: use --tor bird or frr with --bfd or --bgp-password\n',
    );
    return 2;
  }
  const attach = values.attach as TorKind | undefined;
  if (attach !== undefined && (!TOR_KINDS.includes(attach) || !values.keep || backend !== 'bgp')) {
    process.stderr.write(
      `--attach takes bird, frr or gobgp, with --keep and the bgp backend (got "${values.attach}"${values.keep ? '' : ', no --keep'})\n`,
    );
    return 2;
  }
  const noRunc = values.containers && skipReason(['runc']);
  if (noRunc) {
    process.stderr.write(`--containers: ${noRunc}\n`);
    return 1;
  }
  const uiPort = Number(values['ui-port']);
  if (values.ui && (!values.keep || !Number.isInteger(uiPort) || uiPort < 0 || uiPort > 65535)) {
    process.stderr.write(
      `--ui needs --keep and --ui-port a port number (0-65535; 0: any free), got "${values['ui-port']}"${values.keep ? '' : ', no --keep'}\n`,
    );
    return 2;
  }
  const datastore = values.datastore;
  if (datastore !== 'etcd' && datastore !== 'kubernetes') {
    process.stderr.write(`--datastore must be etcd or kubernetes, got "${datastore}"\n`);
    return 2;
  }
  const routeReflector = values['route-reflector'] || values.rr;
  if (routeReflector && (backend !== 'bgp' || datastore !== 'etcd' || values.ipv6)) {
    process.stderr.write(
      `--route-reflector runs with the bgp backend and the etcd datastore, IPv4 only (the reflector's Node has an IPv4 address): not with ${backend !== 'bgp' ? `--backend ${backend}` : datastore !== 'etcd' ? `--datastore ${datastore}` : '--ipv6'}\n`,
    );
    return 2;
  }
  const bgpPassword = values['bgp-password'];
  if (bgpPassword !== undefined && (backend === 'vxlan' || !bgpPassword)) {
    process.stderr.write(
      '--bgp-password needs BGP and a key: --backend bgp or ipip, --bgp-password KEY\n',
    );
    return 2;
  }
  const kubectl = datastore === 'kubernetes' ? (['kubectl'] as const) : [];
  const why = skipReason(['netns', torKind, 'etcd', 'iptables', 'ipset', 'nft', ...kubectl]);
  if (why) {
    process.stderr.write(
      `tortie lab needs root, network namespaces, ${torKind}, etcd, iptables, ipset, nftables${kubectl.length ? ' and kubectl' : ''}: ${why}\n`,
    );
    return 1;
  }
  const noIpip = backend === 'ipip' && skipReason(['ipip']);
  if (noIpip) {
    process.stderr.write(
      `--backend ipip: ${noIpip}; add --vm to run the lab in Debian's kernel under QEMU\n`,
    );
    return 1;
  }
  const what = {
    bgp: ` and a ${torKind} top-of-rack router`,
    vxlan: ', VXLAN',
    ipip: ', IPIP CrossSubnet across two subnets',
  }[backend];
  // Ctrl-C or SIGTERM at any point removes whatever the lab has created so far
  teardownOnSignals((line) => {
    interrupted = true;
    say(line);
  });
  const agents = values.containers
    ? 'tortie-node from the tortie/node image under runc'
    : 'tortie-node';
  const store =
    datastore === 'kubernetes' ? 'etcd and tortie-apiserver (kubernetes datastore)' : 'etcd';
  const acl = values.nftables ? ', policy on nftables' : '';
  const rrWhat = routeReflector
    ? `, a route reflector (tortie-rr${values.containers ? ' from deploy/tortie-rr.yaml under runc' : ''})`
    : '';
  heading(
    `tortie lab: ${count} nodes (${agents}${acl}), ${store}${what}${rrWhat} in network namespaces`,
  );
  const c = await Cluster.start({
    nodes: count,
    backend: backend === 'vxlan' ? 'vxlan' : 'bgp',
    tor: backend === 'bgp' ? torKind : false,
    pool: POOLS[backend],
    routedNodes: backend === 'ipip' && count > 1 ? [count - 1] : undefined,
    ...(values.bfd ? { bfd: { minTxMs: 100, minRxMs: 100, multiplier: 3 } } : {}),
    ...(bgpPassword ? { bgpPassword } : {}),
    ...(values.ipv6 ? { ipv6: true } : {}),
    ...(values.containers ? { containers: true } : {}),
    ...(routeReflector ? { routeReflector: true } : {}),
    ...(values.nftables ? { nftablesMode: 'Enabled' as const } : {}),
    etcdMembers,
    ...(datastore === 'kubernetes' ? { datastore: 'kubernetes' as const } : {}),
    say,
    onAgentLog: values.verbose ? (node, line) => say(`[${node}] ${line}`) : undefined,
  });
  const t0 = Date.now(); // the agents were just started
  try {
    // from the start, so the page's events show the demo's sessions and policy too
    if (values.ui) {
      const ui = await startUi(c, uiPort);
      say(`web page (read-only): ${ui.url}`);
      c.tb.onCleanup(() => ui.close());
    }
    await demo(c, t0, values.keep ?? false, attach);
  } finally {
    // interrupted: the signal handler tears down and exits
    if (!interrupted) {
      heading('tearing down');
      await c.stop();
      say('all namespaces, processes and temp dirs removed');
    }
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (interrupted) return; // the signal handler exits once everything is removed
    process.stderr.write(`tortie lab failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
