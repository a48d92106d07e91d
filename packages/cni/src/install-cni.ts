// install-cni: what the DaemonSet's init container does on every node, as Calico's
// install-cni: copies tortie-cni into the host's CNI bin directory (atomically) with the
// node fallback it runs when no agent answers (fallback-tree.ts), writes a
// kubeconfig for the plugin from the pod's service-account token (Kubernetes datastore),
// and writes the network config list rendered from a template (the ConfigMap's
// cni_network_config) with this node's name and the datastore settings filled in.
// `install-cni --watch` then stays up and rewrites the kubeconfig whenever the token file
// changes (projected tokens rotate), as Calico's token watch does.
//
// Environment (Calico's names): CNI_NET_DIR, CNI_BIN_DIR (where the host directories are
// mounted), CNI_CONF_NAME, CNI_NETWORK_CONFIG or CNI_NETWORK_CONFIG_FILE (the template),
// KUBERNETES_NODE_NAME (or NODENAME), DATASTORE_TYPE, ETCD_ENDPOINTS, CNI_MTU,
// ASSIGN_IPV6 (tortie's: the template's __ASSIGN_IPV6__, dual stack), KUBERNETES_SERVICE_HOST/PORT, SERVICEACCOUNT_DIR, HOST_CNI_NET_DIR (the host's path of
// CNI_NET_DIR, which the plugin running on the host reads the kubeconfig from).
import fs from 'node:fs';
import path from 'node:path';
import { findAppRoot, installFallback } from './fallback-tree';
import { InstallError, installFileAtomically, writeFileAtomically } from './install-file';

export interface InstallCniSettings {
  netDir: string;
  binDir: string;
  confName: string;
  template: string;
  nodeName: string;
  datastoreType: 'kubernetes' | 'etcdv3';
  etcdEndpoints: string;
  mtu: number;
  /** Pods get an IPv6 address too (dual stack): the template's __ASSIGN_IPV6__. */
  assignIpv6: boolean;
  /** The plugin binary to install (dist/tortie-cni beside this file). */
  plugin: string;
  /**
   * The forwarder's node fallback (fallback-tree.ts): the app root holding the plugin's
   * packages, the plugin's cli.js in it and the Node binary to copy. Absent: only the
   * binary is installed (a plugin that is not the built one, as in unit tests).
   */
  fallback?: { root: string; cli: string; node: string };
  /** Kubernetes datastore: the API server and the token to reach it. */
  kubernetes?: { host: string; port: string; serviceAccountDir: string };
  /** Where the plugin on the host finds the kubeconfig. */
  hostNetDir: string;
  kubeconfigName: string;
}

/** The template used when the ConfigMap gives none. */
export const DEFAULT_CNI_TEMPLATE = `{
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "tortie-cni",
      "log_level": "info",
      "datastore_type": "__DATASTORE_TYPE__",
      "etcd_endpoints": "__ETCD_ENDPOINTS__",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": { "type": "tortie-ipam", "assign_ipv4": "true", "assign_ipv6": "__ASSIGN_IPV6__" },
      "kubernetes": { "kubeconfig": "__KUBECONFIG_FILEPATH__" },
      "agent_socket": "/var/run/tortie/cni.sock"
    }
  ]
}
`;

/** Reads the settings from the environment; every problem at once, each naming its variable. */
export function installCniSettings(
  env: NodeJS.ProcessEnv,
  pluginDir = __dirname,
  fallbackRoot: string | undefined = pluginDir === __dirname ? findAppRoot(__dirname) : undefined,
): InstallCniSettings {
  const problems: string[] = [];
  if (pluginDir === __dirname && !fallbackRoot)
    problems.push(`no node_modules with @tortie/cni above ${__dirname} (the fallback's packages)`);
  const datastoreType = (env.DATASTORE_TYPE ?? 'kubernetes').toLowerCase();
  if (datastoreType !== 'kubernetes' && datastoreType !== 'etcdv3')
    problems.push(`DATASTORE_TYPE=${env.DATASTORE_TYPE}: not one of kubernetes, etcdv3`);
  const etcdEndpoints = env.ETCD_ENDPOINTS ?? '';
  if (datastoreType === 'etcdv3' && !etcdEndpoints)
    problems.push('ETCD_ENDPOINTS is required with DATASTORE_TYPE=etcdv3');
  const nodeName = env.KUBERNETES_NODE_NAME ?? env.NODENAME ?? '';
  if (!nodeName) problems.push('KUBERNETES_NODE_NAME (or NODENAME) is not set');
  const mtu = Number(env.CNI_MTU ?? '1440');
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535)
    problems.push(`CNI_MTU=${env.CNI_MTU}: not an MTU (576-65535)`);
  const assignIpv6 = (env.ASSIGN_IPV6 || 'false').toLowerCase();
  if (assignIpv6 !== 'true' && assignIpv6 !== 'false')
    problems.push(`ASSIGN_IPV6=${env.ASSIGN_IPV6}: not true or false`);
  let template = env.CNI_NETWORK_CONFIG ?? DEFAULT_CNI_TEMPLATE;
  if (env.CNI_NETWORK_CONFIG_FILE) {
    try {
      template = fs.readFileSync(env.CNI_NETWORK_CONFIG_FILE, 'utf8');
    } catch (err) {
      problems.push(`CNI_NETWORK_CONFIG_FILE=${env.CNI_NETWORK_CONFIG_FILE}: ${errText(err)}`);
    }
  }
  let kubernetes: InstallCniSettings['kubernetes'];
  if (datastoreType === 'kubernetes') {
    const host = env.KUBERNETES_SERVICE_HOST;
    if (!host)
      problems.push('KUBERNETES_SERVICE_HOST is not set (needed for DATASTORE_TYPE=kubernetes)');
    kubernetes = {
      host: host ?? '',
      port: env.KUBERNETES_SERVICE_PORT ?? '443',
      serviceAccountDir: env.SERVICEACCOUNT_DIR ?? '/var/run/secrets/kubernetes.io/serviceaccount',
    };
  }
  if (problems.length) throw new Error(`install-cni: ${problems.join('; ')}`);
  return {
    netDir: env.CNI_NET_DIR ?? '/host/etc/cni/net.d',
    binDir: env.CNI_BIN_DIR ?? '/host/opt/cni/bin',
    confName: env.CNI_CONF_NAME ?? '10-tortie.conflist',
    template,
    nodeName,
    datastoreType: datastoreType as InstallCniSettings['datastoreType'],
    etcdEndpoints,
    mtu,
    assignIpv6: assignIpv6 === 'true',
    plugin: path.join(pluginDir, 'tortie-cni'),
    fallback: fallbackRoot
      ? { root: fallbackRoot, cli: path.join(__dirname, 'cli.js'), node: process.execPath }
      : undefined,
    kubernetes,
    hostNetDir: env.HOST_CNI_NET_DIR ?? '/etc/cni/net.d',
    kubeconfigName: env.KUBECONFIG_NAME ?? 'tortie-kubeconfig',
  };
}

/**
 * The config list: the template with its __PLACEHOLDERS__ filled in. A placeholder left
 * over, or a result that is not a JSON config list, is an error naming it. Pure.
 */
export function renderConflist(template: string, values: Record<string, string>): string {
  const text = template.replace(/__([A-Z0-9_]+)__/g, (whole, name: string) =>
    name in values ? values[name] : whole,
  );
  const left = [...new Set(text.match(/__[A-Z0-9_]+__/g) ?? [])];
  if (left.length) throw new Error(`install-cni: the CNI template has unknown ${left.join(', ')}`);
  let conf: { plugins?: unknown };
  try {
    conf = JSON.parse(text);
  } catch (err) {
    throw new Error(`install-cni: the CNI template is not JSON once filled in: ${errText(err)}`);
  }
  if (!Array.isArray(conf.plugins))
    throw new Error('install-cni: the CNI template is not a config list (no "plugins" list)');
  return JSON.stringify(conf, null, 2) + '\n';
}

/** The placeholder values for these settings. */
export function templateValues(s: InstallCniSettings): Record<string, string> {
  return {
    KUBERNETES_NODE_NAME: s.nodeName,
    DATASTORE_TYPE: s.datastoreType,
    ETCD_ENDPOINTS: s.etcdEndpoints,
    CNI_MTU: String(s.mtu),
    ASSIGN_IPV6: String(s.assignIpv6),
    KUBECONFIG_FILEPATH: path.posix.join(s.hostNetDir, s.kubeconfigName),
    KUBERNETES_SERVICE_HOST: s.kubernetes?.host ?? '',
    KUBERNETES_SERVICE_PORT: s.kubernetes?.port ?? '',
  };
}

/** A kubeconfig for the plugin: the API server, its CA and the token. Pure. */
export function pluginKubeconfig(o: { host: string; port: string; ca: Buffer; token: string }) {
  // an IPv6 service address needs brackets in the URL
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return (
    JSON.stringify(
      {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'local',
            cluster: {
              server: `https://${host}:${o.port}`,
              'certificate-authority-data': o.ca.toString('base64'),
            },
          },
        ],
        users: [{ name: 'tortie-cni', user: { token: o.token.trim() } }],
        contexts: [{ name: 'tortie-context', context: { cluster: 'local', user: 'tortie-cni' } }],
        'current-context': 'tortie-context',
      },
      null,
      2,
    ) + '\n'
  );
}

function readSecret(dir: string, name: string): Buffer {
  const file = path.join(dir, name);
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new InstallError(file, err);
  }
}

/** Writes the plugin's kubeconfig from the current token; returns the token it used. */
export async function writeKubeconfig(s: InstallCniSettings): Promise<string> {
  const k = s.kubernetes!;
  const token = readSecret(k.serviceAccountDir, 'token').toString('utf8');
  if (!token.trim())
    throw new InstallError(
      path.join(k.serviceAccountDir, 'token'),
      new Error('the token is empty'),
    );
  const ca = readSecret(k.serviceAccountDir, 'ca.crt');
  await writeFileAtomically(
    path.join(s.netDir, s.kubeconfigName),
    pluginKubeconfig({ host: k.host, port: k.port, ca, token }),
    0o600,
  );
  return token;
}

/** One installation: the plugin, the kubeconfig (Kubernetes datastore), the config list. */
export async function installCni(s: InstallCniSettings): Promise<string[]> {
  // render first: a bad template changes nothing on the host
  const conflist = renderConflist(s.template, templateValues(s));
  const written: string[] = [];
  // the fallback first: a new forwarder always finds its fallback in place
  if (s.fallback) written.push(installFallback({ ...s.fallback, binDir: s.binDir }));
  written.push(await installFileAtomically(s.plugin, s.binDir, { name: 'tortie-cni' }));
  if (s.kubernetes) {
    await writeKubeconfig(s);
    written.push(path.join(s.netDir, s.kubeconfigName));
  }
  const conf = path.join(s.netDir, s.confName);
  await writeFileAtomically(conf, conflist, 0o644);
  written.push(conf);
  return written;
}

/**
 * Rewrites the kubeconfig whenever the token file's content changes, polling every
 * intervalMs (a projected token is replaced by a symlink swap, which inotify on the file
 * misses). Stops when `signal` aborts. A token that cannot be read is reported and the
 * old kubeconfig kept until it can.
 */
export async function watchToken(
  s: InstallCniSettings,
  o: {
    intervalMs: number;
    signal: AbortSignal;
    onRewrite?: () => void;
    onError?: (e: Error) => void;
  },
): Promise<void> {
  let last = await writeKubeconfig(s);
  while (!o.signal.aborted) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, o.intervalMs);
      o.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
    if (o.signal.aborted) break;
    try {
      const token = readSecret(s.kubernetes!.serviceAccountDir, 'token').toString('utf8');
      if (token !== last) {
        last = await writeKubeconfig(s);
        o.onRewrite?.();
      }
    } catch (err) {
      o.onError?.(err as Error);
    }
  }
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));
