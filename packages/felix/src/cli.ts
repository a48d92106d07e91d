#!/usr/bin/env node
// tortie-node: the per-node agent. Configured like calico-node, from the environment:
//   NODENAME                 this node's name (default: the hostname)
//   IP                       autodetect (default) | none | this node's IPv4 address,
//                            e.g. 10.0.0.1/24; IP_AUTODETECTION_METHOD picks how
//   IP6                      none (default) | autodetect | its IPv6 address, e.g.
//                            fd00::1/64 (the node then also peers over IPv6)
//   AS                       its AS number (default: BGPConfiguration's, else 64512)
//   CLUSTER_ID               route-reflector cluster id: this node reflects
//   CALICO_ROUTER_ID         BGP router id: an IPv4 address, or "hash" (from the node
//                            name); default: the node's IPv4 address
//   NODE_LABELS              labels for the Node resource: "k=v,k2=v2"
//   TORTIE_NETWORKING_BACKEND  bgp (default) | vxlan | none
//   DATASTORE_TYPE           etcdv3 (default) | kubernetes | file
//   ETCD_ENDPOINTS, KUBECONFIG, TORTIE_DATASTORE_FILE
//   TORTIE_BGP_SOCKET        the BGP speaker's control socket, for tortiectl node status
//                            (default /var/run/tortie/bgp.sock; empty: off)
//   TORTIE_SECRETS_DIR       BGP passwords: Secrets mounted as <dir>/<secret>/<key>
//                            (default /etc/tortie/secrets)
//   TORTIE_CNI_SOCKET        where the agent serves CNI commands for tortie-cni's
//                            agent_socket (default /var/run/tortie/cni.sock; empty: off)
//   TORTIE_STATUS_SOCKET     the agent's status (and metrics) for tortiectl policy status
//                            (default /var/run/tortie/status.sock; empty: off)
//   FELIX_*                  agent settings (FELIX_HEALTHPORT, FELIX_IPTABLESBACKEND, ...)
import { envProblems, helpText } from './node-env';

/**
 * Until the agent is up, a signal ends it at once. Needed in a container, where it is
 * PID 1: the kernel ignores a signal that PID 1 has no handler for, so a pod being
 * deleted while the agent waits for its datastore would wait out its grace period.
 */
function exitOnSignalsUntilStarted(): () => void {
  const early = (signal: NodeJS.Signals) => {
    process.stderr.write(`tortie-node: ${signal} before the agent started; exiting\n`);
    process.exit(0);
  };
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, early);
  return () => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.off(s, early);
  };
}

async function main(): Promise<void> {
  const env = process.env;
  const started = exitOnSignalsUntilStarted();
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(helpText());
    process.exit(0);
  }
  // every problem at once, before anything starts (the agent would stop at the first)
  const problems = envProblems(env);
  if (problems.length) {
    process.stderr.write(
      `tortie-node: invalid configuration (tortie-node --help lists every setting):\n${problems.map((p) => `  - ${p}\n`).join('')}`,
    );
    process.exit(2);
  }
  // the agent's modules (datastore clients, dataplane, BGP) load only now: ~1 s of CPU
  // that --help and a configuration error do not need
  const { runNode } = require('./node-main') as typeof import('./node-main');
  await runNode(env, process.argv.includes('--detect-addresses'), started);
}

main().catch((e: Error) => {
  process.stderr.write(`tortie-node: ${e.message}\n`);
  process.exit(1);
});
