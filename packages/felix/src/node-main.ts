// tortie-node's agent: the datastore, node registration, the dataplane managers, the BGP
// speaker, the ops and CNI servers. Loaded by cli.ts once the command line and the
// environment are known to be good, so that --help and a configuration error answer
// without loading any of it.
import { hostname } from 'node:os';
import type { Logger } from 'winston';
import { createLogger } from '@tortie/bgp-speaker';
import { secretFiles } from '@tortie/bgp-topology';
import { podNetwork, serveCni } from '@tortie/cni';
import {
  KubernetesDatastore,
  Syncer,
  datastoreSpec,
  openDatastore,
  whenAvailable,
  type Datastore,
} from '@tortie/datastore';
import type { Resource } from '@tortie/api';
import { IpamClient } from '@tortie/ipam';
import { AGENT_KINDS, Agent, SERVICE_KINDS, type DataplaneManager } from './agent';
import { BgpGlue } from './bgp/glue';
import { envOverrides, resolveConfig, unknownFelixVars } from './config';
import { CalcGraph } from './calc';
import { type PolicyFailure } from './dataplane/acl';
import { linuxAclBackend } from './dataplane/acl-backend';
import { ServiceManager } from './dataplane/services';
import { NetManager } from './linux/net-manager';
import { ProcessRunner } from './linux/runner';
import { openNetlink } from './linux/netlink';
import { LinuxHostProbe } from './host-addresses';
import { resolveNodeAddresses } from './node-addresses';
import { parseLabels } from './node-env';
import { registerNode } from './node-registration';
import { agentMetrics, serveOps } from './ops/server';

/**
 * The host's addresses as IP_AUTODETECTION_METHOD sees them; kubernetes-internal-ip reads
 * the Kubernetes node (CALICO_K8S_NODE_REF, else NODENAME) from the Kubernetes datastore,
 * or from the API of KUBECONFIG / the pod's service account under another datastore.
 */
function hostProbe(env: NodeJS.ProcessEnv, nodeName: string, ds?: Datastore): LinuxHostProbe {
  const k8sName = env.CALICO_K8S_NODE_REF || nodeName;
  return new LinuxHostProbe(new ProcessRunner(), async () => {
    if (ds instanceof KubernetesDatastore) return ds.nodeInternalIps(k8sName);
    if (!env.KUBECONFIG && !env.KUBERNETES_SERVICE_HOST)
      throw new Error(
        'no Kubernetes API: set KUBECONFIG, or run in a pod (KUBERNETES_SERVICE_HOST)',
      );
    const k8s = openDatastore(datastoreSpec({}, { ...env, DATASTORE_TYPE: 'kubernetes' }));
    try {
      return await (k8s as KubernetesDatastore).nodeInternalIps(k8sName);
    } finally {
      await k8s.close();
    }
  });
}

/** tortie-node --detect-addresses: what IP / IP6 resolve to on this host, as JSON; no datastore. */
async function detectOnly(env: NodeJS.ProcessEnv, logger: Logger): Promise<void> {
  const nodeName = env.NODENAME ?? hostname();
  const found = await resolveNodeAddresses(env, undefined, hostProbe(env, nodeName), logger);
  process.stdout.write(JSON.stringify(found) + '\n');
}

/**
 * The agent, from a valid environment (tortie-node's cli.ts checked it); --detect-addresses
 * prints what IP / IP6 resolve to and returns. `started` ends the early signal handling.
 */
export async function runNode(
  env: NodeJS.ProcessEnv,
  detectOnlyMode: boolean,
  started: () => void,
): Promise<void> {
  const config = resolveConfig(env);
  const logger = createLogger(
    'felix',
    config.logSeverityScreen
      .toLowerCase()
      .replace('trace', 'silly')
      .replace('warning', 'warn')
      .replace('fatal', 'error'),
  );
  for (const v of unknownFelixVars(env).unknown) {
    logger.warn('ignoring an environment variable that is no tortie setting', { variable: v });
  }
  if (detectOnlyMode) return detectOnly(env, logger);
  const nodeName = env.NODENAME ?? hostname();
  const backend = (env.TORTIE_NETWORKING_BACKEND ?? 'bgp') as 'bgp' | 'vxlan' | 'none';
  const routerId = env.CALICO_ROUTER_ID || undefined;
  const ds = openDatastore(datastoreSpec({}, env));
  const ipam = new IpamClient(ds);
  const probe = hostProbe(env, nodeName, ds);
  // a datastore that is not reachable yet (starting, or slow) is waited for, as calico-node
  const node = await whenAvailable(
    async () => {
      // the Node's current addresses are kept where IP / IP6 say so (unset, none)
      const cur = (await ds.get({ kind: 'Node', name: nodeName })) as Resource<'Node'> | undefined;
      const addresses = await resolveNodeAddresses(env, cur?.spec.bgp, probe, logger);
      if (backend === 'bgp' && !addresses.ipv4Address && !routerId)
        logger.warn(
          'no IPv4 address for the BGP router id: set CALICO_ROUTER_ID (hash or an IPv4 address)',
        );
      return registerNode(
        ds,
        ipam,
        {
          name: nodeName,
          ...addresses,
          asNumber: env.AS ? Number(env.AS) : undefined,
          routeReflectorClusterId: env.CLUSTER_ID,
          labels: parseLabels(env.NODE_LABELS),
        },
        { checkConflicts: env.DISABLE_NODE_IP_CHECK !== 'true' },
      );
    },
    {
      onRetry: (e, attempt, waitMs) =>
        logger.warn('datastore not reachable yet, retrying', { attempt, waitMs, error: e.message }),
    },
  );
  logger.info('node registered', { node: nodeName, spec: node.spec });

  const runner = new ProcessRunner();
  const net = new NetManager(runner, openNetlink(logger));
  const backendOf = { Legacy: 'legacy', NFT: 'nft', Auto: undefined } as const;
  const metrics = agentMetrics({ failClosed: () => acl.status().rejected });
  const onPolicyFailure = (f: PolicyFailure) =>
    metrics.policyFailures.inc({ kind: f.kind, policy: f.id, direction: f.direction });
  // iptables or nftables, as FelixConfiguration nftablesMode says once in sync (Auto:
  // as kube-proxy); what the other one left is removed
  const acl = linuxAclBackend({
    iptablesBackend: backendOf[config.iptablesBackend],
    logger,
    onPolicyFailure,
  });
  const services = new ServiceManager({
    nodeName,
    logger,
    enabled: config.serviceProxyEnabled,
  });
  // FELIX_* environment settings win over FelixConfiguration (Felix's precedence)
  const overrides = envOverrides(env);
  const withEnv = (m: DataplaneManager): DataplaneManager => ({
    name: m.name,
    send: (u) =>
      m.send(u.type === 'config-update' ? { ...u, config: { ...u.config, ...overrides } } : u),
    apply: () => m.apply(),
    resync: () => m.resync(),
  });
  // learned routes go to the kernel with the next apply, which they trigger
  const agentRef: { current?: Agent } = {};
  const bgpSocket = env.TORTIE_BGP_SOCKET ?? '/var/run/tortie/bgp.sock';
  const glue = new BgpGlue({
    logger,
    controlSocket: bgpSocket || undefined,
    // BGP passwords: Secrets mounted as Kubernetes mounts them, <dir>/<secret>/<key>
    readSecret: secretFiles(env.TORTIE_SECRETS_DIR ?? '/etc/tortie/secrets'),
    learned: {
      set: (dst, nextHop, metric) => {
        net.learned.set(dst, nextHop, metric);
        agentRef.current?.poke();
      },
      remove: (dst) => {
        net.learned.remove(dst);
        agentRef.current?.poke();
      },
      complete: () => {
        net.learned.complete?.();
        agentRef.current?.poke();
      },
    },
  });
  const agent = new Agent({
    // BGP on: remote blocks reached directly come from the speaker (learned routes);
    // off: from block affinities, and no BGP at all
    makeCalc: (sink) =>
      new CalcGraph({
        nodeName,
        sink,
        logger,
        config: backend === 'bgp' ? { directRoutes: false, routerId } : { bgp: false },
      }),
    managers: [withEnv(net), withEnv(acl), withEnv(services)],
    bgp: glue,
    logger,
    metrics,
    resyncIntervalMs: Math.min(config.iptablesRefreshInterval, config.routeRefreshInterval),
  });
  agentRef.current = agent;
  // services: tortie's own resources in etcd/file mode, the core Services and
  // EndpointSlices (seen through the same kinds) with the Kubernetes datastore
  const kinds = [...AGENT_KINDS, ...SERVICE_KINDS];
  const syncer = new Syncer(ds, kinds, agent.onUpdates, agent.onStatus, { logger });
  const statusSocket = env.TORTIE_STATUS_SOCKET ?? '/var/run/tortie/status.sock';
  const ops = await serveOps(
    { live: () => true, ready: () => agent.ready() },
    metrics.registry,
    config.healthPort,
    config.healthHost,
    {
      socket: statusSocket || undefined,
      status: () => {
        const a = acl.status();
        return {
          node: nodeName,
          ready: agent.ready(),
          dataplane: agent.status(),
          acl: { backend: a.backend, families: a.families, rejected: a.rejected },
        };
      },
    },
  );
  const gauges = setInterval(() => {
    for (const [table, n] of Object.entries(acl.status().rules))
      metrics.iptablesRules.set({ table }, n);
    metrics.routes.set({ kind: 'programmed' }, net.routes.size());
    metrics.routes.set({ kind: 'bgp-learned' }, glue.learnedRoutes().size);
  }, 5000);
  gauges.unref();
  agent.start();
  syncer.start();
  // CNI commands run here, on the agent's datastore connection, and an ADD can wait for
  // the pod's policy (the binary falls back to running them itself without the socket)
  const cniSocket = env.TORTIE_CNI_SOCKET ?? '/var/run/tortie/cni.sock';
  const pods = podNetwork();
  if (pods.via === 'netlink') logger.info('pod interfaces (CNI ADD) are set up over netlink');
  else
    logger.warn('pod interfaces (CNI ADD) are set up with ip processes: netlink is unavailable', {
      reason: pods.reason,
    });
  const cni = cniSocket
    ? await serveCni(cniSocket, {
        datastore: ds,
        ipam,
        node: nodeName,
        pods: ds instanceof KubernetesDatastore ? ds : undefined,
        policyReady: (iface, ips, ms) => agent.endpointProgrammed(iface, ips, ms),
        onAddPhases: (t) => {
          for (const [phase, ms] of Object.entries(t))
            metrics.cniAddPhases.observe({ phase }, ms / 1000);
        },
      }).catch((e: Error) => {
        logger.error('cannot serve CNI; tortie-cni runs commands itself', {
          socket: cniSocket,
          error: e.message,
        });
        return undefined;
      })
    : undefined;
  logger.info('tortie-node running', {
    node: nodeName,
    backend,
    healthPort: ops.port,
    statusSocket: statusSocket || undefined,
    cniSocket: cni ? cniSocket : undefined,
  });

  const stop = async (signal: string) => {
    // the dataplane stays as it is: a restarted agent converges without a gap
    logger.info('stopping (dataplane left in place)', { signal });
    clearInterval(gauges);
    await cni?.close();
    syncer.stop();
    await agent.stop();
    await services.close();
    await ops.close();
    await ds.close();
    process.exit(0);
  };
  started();
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
