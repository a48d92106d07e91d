// One CNI command, from the environment and the network config to the printed result
// and exit code. Used by the binary itself and by the node agent, which serves it on a
// unix socket with its own datastore connection (so a pod ADD does not pay for a
// process that loads the datastore client and connects).
import { hostname } from 'node:os';
import {
  EtcdDatastore,
  FileDatastore,
  KubernetesDatastore,
  type Datastore,
} from '@tortie/datastore';
import { IpamClient } from '@tortie/ipam';
import { parseEnv, parseNetConf, type NetConf } from './config';
import { CNI_ERRORS, CniError } from './errors';
import { podNetwork } from './netlink-setup';
import * as plugin from './plugin';

function openDatastore(conf: NetConf): { ds: Datastore; pods?: plugin.PodSource } {
  const kubeconfig = conf.kubernetes?.kubeconfig ?? process.env.KUBECONFIG;
  switch (conf.datastore_type) {
    case 'kubernetes': {
      if (!kubeconfig)
        throw new CniError(
          CNI_ERRORS.InvalidConfig,
          'kubernetes.kubeconfig is required with datastore_type kubernetes',
        );
      const k = KubernetesDatastore.fromFile(kubeconfig);
      return { ds: k, pods: k };
    }
    case 'file':
      return { ds: FileDatastore.open(conf.datastore_file!) };
    default:
      return {
        ds: new EtcdDatastore(conf.etcd_endpoints!.split(',').map((e) => e.trim())),
        // as Calico in etcd mode: pod labels and annotations come from the Kubernetes API when there is one
        pods: kubeconfig ? KubernetesDatastore.fromFile(kubeconfig) : undefined,
      };
  }
}

/** Kubernetes API clients of a long-running caller, one per kubeconfig. */
const podSources = new Map<string, plugin.PodSource>();

function podsOf(kubeconfig: string | undefined): plugin.PodSource | undefined {
  if (!kubeconfig) return undefined;
  let p = podSources.get(kubeconfig);
  if (!p) podSources.set(kubeconfig, (p = KubernetesDatastore.fromFile(kubeconfig)));
  return p;
}

/** What a long-running caller (the agent) shares with every command. */
export interface SharedDeps {
  datastore: Datastore;
  ipam: IpamClient;
  node: string;
  pods?: plugin.PodSource;
  policyReady?: plugin.PluginDeps['policyReady'];
  onAddPhases?: plugin.PluginDeps['onAddPhases'];
}

export interface CommandOutput {
  code: number;
  stdout: string;
}

export async function runCommand(
  vars: NodeJS.ProcessEnv,
  input: string,
  shared?: SharedDeps,
): Promise<CommandOutput> {
  let cniVersion = '1.1.0';
  let ds: Datastore | undefined;
  let stdout = '';
  const print = (o: unknown) => (stdout += JSON.stringify(o) + '\n');
  try {
    const env = parseEnv(vars);
    if (env.command === 'VERSION') {
      const v = input.trim()
        ? (JSON.parse(input) as { cniVersion?: string }).cniVersion
        : undefined;
      print(plugin.version(v ?? cniVersion));
      return { code: 0, stdout };
    }
    const conf = parseNetConf(input);
    cniVersion = conf.cniVersion;
    let deps: plugin.PluginDeps;
    if (shared) {
      if (conf.nodename && conf.nodename !== shared.node) {
        throw new CniError(
          CNI_ERRORS.InvalidConfig,
          `nodename "${conf.nodename}" in the network config, but the agent on agent_socket is node "${shared.node}"`,
        );
      }
      deps = {
        ...shared,
        // etcd mode with a Kubernetes API: pod labels and annotations come from there
        pods: shared.pods ?? podsOf(conf.kubernetes?.kubeconfig),
        net: podNetwork().net,
      };
    } else {
      const opened = openDatastore(conf);
      ds = opened.ds;
      deps = {
        datastore: ds,
        ipam: new IpamClient(ds),
        net: podNetwork().net,
        node: conf.nodename ?? vars.NODENAME ?? hostname(),
        pods: opened.pods,
      };
    }
    switch (env.command) {
      case 'ADD':
        print(await plugin.add(conf, env, deps));
        break;
      case 'DEL':
        await plugin.del(conf, env, deps);
        break;
      case 'CHECK':
        await plugin.check(conf, env, deps);
        break;
      case 'GC':
        await plugin.gc(conf, deps);
        break;
      case 'STATUS':
        await plugin.status(deps);
        break;
    }
    return { code: 0, stdout };
  } catch (e) {
    const err =
      e instanceof CniError
        ? e
        : new CniError(CNI_ERRORS.IoFailure, 'tortie-cni failed', (e as Error).message);
    print(err.toJSON(cniVersion));
    return { code: 1, stdout };
  } finally {
    await ds?.close().catch(() => undefined);
  }
}
