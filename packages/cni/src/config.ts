// The network configuration (stdin) and the CNI_* environment, validated. Field names
// follow Calico's CNI plugin so its configs carry over: datastore_type, etcd_endpoints,
// nodename, mtu, ipam.assign_ipv4 / assign_ipv6 / ipv4_pools / ipv6_pools, kubernetes.kubeconfig.
import { z } from 'zod';
import { CNI_ERRORS, CniError } from './errors';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

const flag = z
  .union([z.boolean(), z.enum(['true', 'false'])])
  .transform((v) => v === true || v === 'true');

const netConfSchema = z.looseObject({
  cniVersion: z.string(),
  name: z.string().min(1),
  type: z.string(),
  mtu: z.number().int().min(68).max(65535).default(1500),
  nodename: z.string().optional(),
  datastore_type: z.enum(['etcdv3', 'kubernetes', 'file']).default('etcdv3'),
  etcd_endpoints: z.string().optional(),
  datastore_file: z.string().optional(),
  kubernetes: z.looseObject({ kubeconfig: z.string().optional() }).optional(),
  ipam: z
    .looseObject({
      type: z.string().default('tortie-ipam'),
      assign_ipv4: flag.default(true),
      assign_ipv6: flag.default(false),
      ipv4_pools: z.array(z.string()).optional(),
      ipv6_pools: z.array(z.string()).optional(),
    })
    .default({ type: 'tortie-ipam', assign_ipv4: true, assign_ipv6: false }),
  prevResult: z.unknown().optional(),
  /** The node agent's unix socket: when it answers, commands run there. */
  agent_socket: z.string().optional(),
  /**
   * How long ADD waits for the agent to report the pod's policy programmed (Calico's
   * setting of the same name); 0 does not wait. Only the agent can tell, so this needs
   * agent_socket.
   */
  policy_setup_timeout_seconds: z.number().min(0).max(60).default(0),
  'cni.dev/valid-attachments': z
    .array(z.looseObject({ containerID: z.string(), ifname: z.string() }))
    .optional(),
});

export type NetConf = z.output<typeof netConfSchema>;

export function parseNetConf(text: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CniError(
      CNI_ERRORS.DecodeFailure,
      'network configuration is not JSON',
      (e as Error).message,
    );
  }
  const r = netConfSchema.safeParse(raw);
  if (!r.success) {
    const details = r.error.issues
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new CniError(CNI_ERRORS.InvalidConfig, 'invalid network configuration', details);
  }
  if (!SUPPORTED_VERSIONS.includes(r.data.cniVersion)) {
    throw new CniError(
      CNI_ERRORS.IncompatibleVersion,
      `cniVersion ${r.data.cniVersion} is not supported`,
      `supported: ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  if (r.data.datastore_type === 'etcdv3' && !r.data.etcd_endpoints) {
    throw new CniError(
      CNI_ERRORS.InvalidConfig,
      'etcd_endpoints is required with datastore_type etcdv3',
    );
  }
  if (r.data.datastore_type === 'file' && !r.data.datastore_file) {
    throw new CniError(
      CNI_ERRORS.InvalidConfig,
      'datastore_file is required with datastore_type file',
    );
  }
  return r.data;
}

export type Command = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';

export interface CniEnv {
  command: Command;
  containerId: string;
  netns?: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, ...). */
  args: Record<string, string>;
}

/** Reads CNI_* variables; what a command needs and is missing is an error code 4. */
export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND as Command | undefined;
  const missing = (name: string) =>
    new CniError(CNI_ERRORS.InvalidEnvironment, `${name} is required for ${command}`);
  if (!command || !['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'].includes(command)) {
    throw new CniError(
      CNI_ERRORS.InvalidEnvironment,
      `CNI_COMMAND must be ADD, DEL, CHECK, VERSION, GC or STATUS (got ${JSON.stringify(command ?? '')})`,
    );
  }
  const args: Record<string, string> = {};
  for (const pair of (env.CNI_ARGS ?? '').split(';').filter(Boolean)) {
    const i = pair.indexOf('=');
    if (i <= 0)
      throw new CniError(CNI_ERRORS.InvalidEnvironment, `CNI_ARGS: "${pair}" is not KEY=VALUE`);
    args[pair.slice(0, i)] = pair.slice(i + 1);
  }
  const perContainer = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  if (perContainer && !containerId) throw missing('CNI_CONTAINERID');
  if (perContainer && !ifname) throw missing('CNI_IFNAME');
  if ((command === 'ADD' || command === 'CHECK') && !env.CNI_NETNS) throw missing('CNI_NETNS');
  if (ifname.length > 15) {
    throw new CniError(
      CNI_ERRORS.InvalidEnvironment,
      `CNI_IFNAME "${ifname}" is longer than 15 characters`,
    );
  }
  return { command, containerId, netns: env.CNI_NETNS || undefined, ifname, args };
}
