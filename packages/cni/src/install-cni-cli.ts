#!/usr/bin/env node
// install-cni: the DaemonSet's init container (see install-cni.ts). Exits non-zero naming
// what was wrong, so the kubelet restarts it as it would any failing init container.
//   install-cni            install the plugin, kubeconfig and config list, then exit
//   install-cni --watch    the same, then rewrite the kubeconfig when the token rotates
import { installCni, installCniSettings, watchToken } from './install-cni';

const HELP = `usage: install-cni [--watch]
  Installs tortie-cni into CNI_BIN_DIR, a kubeconfig for it (DATASTORE_TYPE=kubernetes)
  and CNI_CONF_NAME into CNI_NET_DIR. --watch then rewrites the kubeconfig whenever the
  service-account token changes.
environment:
  CNI_NET_DIR              the host's CNI config dir as mounted (default /host/etc/cni/net.d)
  CNI_BIN_DIR              the host's CNI bin dir as mounted (default /host/opt/cni/bin)
  CNI_CONF_NAME            default 10-tortie.conflist
  CNI_NETWORK_CONFIG       the config list template (or CNI_NETWORK_CONFIG_FILE); placeholders
                           __KUBERNETES_NODE_NAME__ __DATASTORE_TYPE__ __ETCD_ENDPOINTS__
                           __CNI_MTU__ __KUBECONFIG_FILEPATH__ __KUBERNETES_SERVICE_HOST__
                           __KUBERNETES_SERVICE_PORT__ __ASSIGN_IPV6__
  KUBERNETES_NODE_NAME     this node (or NODENAME)
  DATASTORE_TYPE           kubernetes (default) or etcdv3; ETCD_ENDPOINTS for etcdv3
  CNI_MTU                  default 1440
  ASSIGN_IPV6              true: pods get an IPv6 address too (dual stack; needs an IPv6
                           IPPool), as __ASSIGN_IPV6__ in the template; default false
  KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT   the API server (kubernetes datastore)
  SERVICEACCOUNT_DIR       default /var/run/secrets/kubernetes.io/serviceaccount
  HOST_CNI_NET_DIR         CNI_NET_DIR as the host sees it (default /etc/cni/net.d)
  TOKEN_WATCH_INTERVAL     seconds between token checks with --watch (default 10)
`;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  const unknown = args.filter((a) => a !== '--watch');
  if (unknown.length) {
    process.stderr.write(`install-cni: unknown argument ${unknown.join(' ')}\n${HELP}`);
    return 2;
  }
  const s = installCniSettings(process.env);
  for (const f of await installCni(s)) process.stdout.write(`install-cni: wrote ${f}` + '\n');
  if (!args.includes('--watch')) return 0;
  if (!s.kubernetes) {
    process.stdout.write(
      'install-cni: no token to watch (DATASTORE_TYPE is not kubernetes)' + '\n',
    );
    await new Promise(() => undefined);
  }
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stop.abort());
  const interval = Number(process.env.TOKEN_WATCH_INTERVAL ?? '10');
  await watchToken(s, {
    intervalMs: (Number.isFinite(interval) && interval > 0 ? interval : 10) * 1000,
    signal: stop.signal,
    onRewrite: () => process.stdout.write('install-cni: token changed, kubeconfig rewritten\n'),
    onError: (e) => process.stderr.write(`install-cni: ${e.message} (kubeconfig kept)\n`),
  });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(err.message + '\n');
    process.exit(1);
  },
);
