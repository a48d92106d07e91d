#!/usr/bin/env node
// tortie-cni: the binary a container runtime runs. Network config on stdin, CNI_*
// variables in the environment, the result or the spec's error object on stdout.
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
import { LinuxPodNetwork } from './netsetup';
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

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => (text += d));
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}

async function main(): Promise<number> {
  let cniVersion = '1.1.0';
  let ds: Datastore | undefined;
  try {
    const env = parseEnv(process.env);
    const input = await readStdin();
    if (env.command === 'VERSION') {
      const v = input.trim()
        ? (JSON.parse(input) as { cniVersion?: string }).cniVersion
        : undefined;
      process.stdout.write(JSON.stringify(plugin.version(v ?? cniVersion)) + '\n');
      return 0;
    }
    const conf = parseNetConf(input);
    cniVersion = conf.cniVersion;
    const opened = openDatastore(conf);
    ds = opened.ds;
    const deps: plugin.PluginDeps = {
      datastore: ds,
      ipam: new IpamClient(ds),
      net: new LinuxPodNetwork(),
      node: conf.nodename ?? process.env.NODENAME ?? hostname(),
      pods: opened.pods,
      writeEndpoints: conf.datastore_type !== 'kubernetes',
    };
    switch (env.command) {
      case 'ADD':
        process.stdout.write(JSON.stringify(await plugin.add(conf, env, deps)) + '\n');
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
    return 0;
  } catch (e) {
    const err =
      e instanceof CniError
        ? e
        : new CniError(CNI_ERRORS.IoFailure, 'tortie-cni failed', (e as Error).message);
    process.stdout.write(JSON.stringify(err.toJSON(cniVersion)) + '\n');
    return 1;
  } finally {
    await ds?.close().catch(() => undefined);
  }
}

void main().then((code) => process.exit(code));
