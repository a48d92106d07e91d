// tortie-node's environment: what each variable means (for --help), and every problem
// in it found at once, each naming the variable and its value, before the agent starts.
// Pure.
import { ipVersionOf } from '@tortie/netaddr';
import {
  ConfigProblem,
  SETTING_NAMES,
  defaultText,
  resolveConfig,
  unknownFelixVars,
} from './config';

/** The node's own variables: name, meaning, default. */
export const NODE_VARS: Array<[string, string, string]> = [
  ['NODENAME', "this node's name (its Node resource)", 'the hostname'],
  ['IP', "this node's IPv4 address with its prefix, e.g. 10.0.0.1/24", 'required'],
  ['IP6', 'its IPv6 address with its prefix; the node then also peers over IPv6', 'none'],
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

const IPV4_PREFIX = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/;

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
  const ip = env.IP;
  const m = ip ? IPV4_PREFIX.exec(ip) : null;
  if (!ip)
    problems.push("IP is not set: this node's IPv4 address with its prefix, e.g. IP=10.0.0.1/24");
  else if (!m || ipVersionOf(m[1]) !== 4 || Number(m[2]) > 32) {
    bad('IP', "not this node's IPv4 address with its prefix, e.g. 10.0.0.1/24");
  }
  if (env.IP6) {
    const [a, len, extra] = env.IP6.split('/');
    if (
      extra !== undefined ||
      ipVersionOf(a) !== 6 ||
      !/^\d+$/.test(len ?? '') ||
      Number(len) > 128
    ) {
      bad('IP6', 'not an IPv6 address with its prefix, e.g. fd00::1/64');
    }
  }
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
