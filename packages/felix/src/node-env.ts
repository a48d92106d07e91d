// tortie-node's environment: what each variable means (for --help), and every problem
// in it found at once, each naming the variable and its value, before the agent starts.
// Pure.
import { ipVersionOf } from '@tortie/netaddr';
import { parseMethod } from './autodetect';
import {
  ConfigProblem,
  SETTING_NAMES,
  defaultText,
  resolveConfig,
  unknownFelixVars,
} from './config';
import { addressProblem } from './node-addresses';

/** The node's own variables: name, meaning, default. */
export const NODE_VARS: Array<[string, string, string]> = [
  ['NODENAME', "this node's name (its Node resource)", 'the hostname'],
  [
    'IP',
    "autodetect, none (keep the Node's), or this node's IPv4 address, e.g. 10.0.0.1/24 (no prefix: the interface's)",
    "autodetect (keeps the Node's address when it has one)",
  ],
  [
    'IP_AUTODETECTION_METHOD',
    'first-found, interface=REGEX,..., skip-interface=REGEX,..., can-reach=DEST, cidr=CIDR,..., kubernetes-internal-ip',
    'first-found',
  ],
  [
    'IP6',
    'autodetect, none, or its IPv6 address, e.g. fd00::1/64; the node then also peers over IPv6',
    'none',
  ],
  ['IP6_AUTODETECTION_METHOD', 'as IP_AUTODETECTION_METHOD, for IP6=autodetect', 'first-found'],
  ['CALICO_K8S_NODE_REF', 'the Kubernetes node kubernetes-internal-ip reads', 'NODENAME'],
  [
    'DISABLE_NODE_IP_CHECK',
    "true: do not refuse an address another node's Node resource has",
    'false',
  ],
  ['AS', 'its AS number', "BGPConfiguration's asNumber, else 64512"],
  ['CLUSTER_ID', 'route reflector cluster id (an IPv4 address): this node reflects', 'none'],
  [
    'CALICO_ROUTER_ID',
    'BGP router id: an IPv4 address, or "hash" (from the node name)',
    "the node's IPv4 address",
  ],
  ['NODE_LABELS', 'labels of the Node resource: k=v,k2=v2', 'none'],
  ['TORTIE_NETWORKING_BACKEND', 'bgp, vxlan or none', 'bgp'],
  ['DATASTORE_TYPE', 'etcdv3, kubernetes or file', 'etcdv3'],
  ['ETCD_ENDPOINTS', 'comma-separated etcd URLs', ''],
  ['KUBECONFIG', 'kubeconfig of the Kubernetes datastore', ''],
  ['TORTIE_DATASTORE_FILE', 'a JSON datastore file (demos)', ''],
  [
    'TORTIE_BGP_SOCKET',
    "the BGP speaker's control socket (tortiectl node status); empty: off",
    '/var/run/tortie/bgp.sock',
  ],
  [
    'TORTIE_SECRETS_DIR',
    'BGP passwords: Secrets mounted as <dir>/<secret name>/<key>',
    '/etc/tortie/secrets',
  ],
  [
    'TORTIE_CNI_SOCKET',
    'where the agent serves CNI commands for tortie-cni; empty: off',
    '/var/run/tortie/cni.sock',
  ],
  [
    'TORTIE_STATUS_SOCKET',
    'the agent status (tortiectl policy status); empty: off',
    '/var/run/tortie/status.sock',
  ],
  ['TORTIE_LOG_LEVEL', 'log level of the BGP speaker: error, warn, info, debug', 'info'],
];

export function helpText(): string {
  const w = Math.max(
    ...NODE_VARS.map(([n]) => n.length),
    ...SETTING_NAMES.map((n) => n.length + 6),
  );
  const lines = [
    'usage: tortie-node',
    '  The per-node agent: routes, policy (iptables), services (nftables) and BGP for this',
    '  node, from the datastore. Configured from the environment, like calico-node.',
    '',
    'The node:',
    ...NODE_VARS.map(([n, what, d]) => `  ${n.padEnd(w)}  ${what}${d ? ` (default: ${d})` : ''}`),
    '',
    'Agent settings: the environment FELIX_<NAME> (any case) wins over FelixConfiguration',
    'node.<nodename>, then default, then the built-in default shown:',
    ...SETTING_NAMES.map(
      (n) => `  ${`FELIX_${n.toUpperCase()}`.padEnd(w)}  ${defaultText(n) || '""'}`,
    ),
    '',
    'Reference: docs/configuration.md',
  ];
  return lines.join('\n') + '\n';
}

/** NODE_LABELS ("k=v,k2=v2") as labels; throws naming the first item that is not key=value. */
export function parseLabels(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (text ?? '').split(',').filter(Boolean)) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`"${kv}" is not key=value`);
    out[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  return out;
}

/** Every problem in the environment; [] when the agent can start. */
export function envProblems(env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  const bad = (name: string, why: string) =>
    problems.push(`${name}=${JSON.stringify(env[name] ?? '')}: ${why}`);
  for (const [name, version] of [
    ['IP', 4],
    ['IP6', 6],
  ] as const) {
    const why = addressProblem(version, env[name]);
    if (why) bad(name, why);
  }
  for (const name of ['IP_AUTODETECTION_METHOD', 'IP6_AUTODETECTION_METHOD']) {
    try {
      parseMethod(env[name], name);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (env.DISABLE_NODE_IP_CHECK && !['true', 'false'].includes(env.DISABLE_NODE_IP_CHECK))
    bad('DISABLE_NODE_IP_CHECK', 'not true or false');
  if (env.AS) {
    const n = Number(env.AS);
    if (!/^\d+$/.test(env.AS) || n < 1 || n > 4294967295)
      bad('AS', 'not an AS number (1-4294967295)');
  }
  if (env.CLUSTER_ID && ipVersionOf(env.CLUSTER_ID) !== 4) bad('CLUSTER_ID', 'not an IPv4 address');
  const rid = env.CALICO_ROUTER_ID;
  if (rid && rid !== 'hash' && ipVersionOf(rid) !== 4)
    bad('CALICO_ROUTER_ID', 'neither an IPv4 address nor "hash"');
  try {
    parseLabels(env.NODE_LABELS);
  } catch (e) {
    bad('NODE_LABELS', (e as Error).message);
  }
  const backend = env.TORTIE_NETWORKING_BACKEND;
  if (backend && !['bgp', 'vxlan', 'none'].includes(backend))
    bad('TORTIE_NETWORKING_BACKEND', 'not one of bgp, vxlan, none');
  const ds = env.DATASTORE_TYPE?.toLowerCase();
  if (ds && !['etcdv3', 'kubernetes', 'file'].includes(ds))
    bad('DATASTORE_TYPE', 'not one of etcdv3, kubernetes, file');
  for (const t of unknownFelixVars(env).typos) {
    problems.push(`${t.variable} is no setting; did you mean ${t.meant}?`);
  }
  try {
    resolveConfig(env);
  } catch (e) {
    if (!(e instanceof ConfigProblem)) throw e;
    problems.push(
      ...e.message
        .split('\n')
        .slice(1)
        .map((l) => l.trim()),
    );
  }
  return problems;
}
