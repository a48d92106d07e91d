// The CNI commands. The kernel side (PodNetwork), the datastore and the pod metadata
// source are passed in, so the logic is unit-tested with fakes and run for real by the
// binary.
import { createHash } from 'node:crypto';
import { API_VERSION, type Resource } from '@tortie/api';
import {
  DatastoreError,
  interfaceName,
  podToWorkloadEndpoint,
  workloadEndpointName,
  type Datastore,
  type K8sPod,
} from '@tortie/datastore';
import { blocks, IpamError, type IpamClient } from '@tortie/ipam';
import { SUPPORTED_VERSIONS, type CniEnv, type NetConf } from './config';
import { CNI_ERRORS, CniError } from './errors';
import { randomPodMac, type PodNetwork } from './netsetup';
import {
  addressesOf,
  buildResult,
  POD_GATEWAY_V4,
  POD_GATEWAY_V6,
  type Attachment,
  type CniResult,
} from './result';

export interface PodSource {
  getPod(namespace: string, name: string): Promise<K8sPod | undefined>;
}

export interface PluginDeps {
  datastore: Datastore;
  ipam: IpamClient;
  net: PodNetwork;
  node: string;
  /** Reads the pod's labels and annotations (Kubernetes API); absent without one. */
  pods?: PodSource;
  /**
   * The node agent's word that the endpoint on this interface with these addresses is
   * programmed (true) or not within the time (false); absent outside the agent.
   */
  policyReady?: (hostIface: string, ips: string[], timeoutMs: number) => Promise<boolean>;
  /** Where a successful ADD's time went, in ms per phase (the agent's histogram). */
  onAddPhases?: (ms: AddPhases) => void;
}

/** An ADD's phases: pod lookup and IPAM, interface setup, endpoint write, policy wait. */
export interface AddPhases {
  ipam: number;
  setup: number;
  endpoint: number;
  policy: number;
}

/** Annotations that pick pools or fixed addresses, under Calico's and our own prefix. */
const ANNOTATION_PREFIXES = ['cni.tortie.io/', 'cni.projectcalico.org/'];

function annotation(pod: K8sPod | undefined, key: string): string | undefined {
  const a = pod?.metadata.annotations ?? {};
  for (const p of ANNOTATION_PREFIXES) if (a[p + key] !== undefined) return a[p + key];
  return undefined;
}

function jsonList(pod: K8sPod | undefined, key: string): string[] | undefined {
  const text = annotation(pod, key);
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    // fall through to the error below
  }
  throw new CniError(
    CNI_ERRORS.InvalidConfig,
    `pod annotation ${key} must be a JSON list of strings`,
    `got ${text}`,
  );
}

interface Identity {
  namespace: string;
  pod?: string;
  hostIface: string;
  wepName: string;
  handleId: string;
}

/** Who the attachment is for: a Kubernetes pod (CNI_ARGS) or a bare container. */
export function identity(conf: NetConf, env: CniEnv, node: string): Identity {
  const namespace = env.args.K8S_POD_NAMESPACE;
  const pod = env.args.K8S_POD_NAME;
  const handleId = `${conf.name}.${env.containerId}`;
  if (namespace && pod) {
    return {
      namespace,
      pod,
      hostIface: interfaceName(namespace, pod),
      wepName: workloadEndpointName(node, pod, env.ifname),
      handleId,
    };
  }
  const hash = createHash('sha1').update(env.containerId).digest('hex');
  return {
    namespace: 'default',
    hostIface: `cali${hash.slice(0, 11)}`,
    wepName: [node, 'cni', env.containerId.slice(0, 16), env.ifname]
      .map((s) => s.toLowerCase().replace(/-/g, '--'))
      .join('-'),
    handleId,
  };
}

function ipamError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof IpamError) return new CniError(CNI_ERRORS.IpamFailure, 'IPAM failed', e.message);
  if (e instanceof DatastoreError && e.code === 'Unavailable') {
    return new CniError(CNI_ERRORS.TryAgainLater, 'datastore unavailable', e.message);
  }
  return new CniError(CNI_ERRORS.IoFailure, 'ADD failed', (e as Error).message);
}

export async function add(conf: NetConf, env: CniEnv, deps: PluginDeps): Promise<CniResult> {
  let mark = performance.now();
  const lap = () => {
    const now = performance.now();
    const ms = now - mark;
    mark = now;
    return ms;
  };
  const id = identity(conf, env, deps.node);
  const pod = id.pod && deps.pods ? await deps.pods.getPod(id.namespace, id.pod) : undefined;
  if (id.pod && deps.pods && !pod) {
    throw new CniError(CNI_ERRORS.ContainerUnknown, `pod ${id.namespace}/${id.pod} not found`);
  }
  const attrs: Record<string, string> = { namespace: id.namespace, containerID: env.containerId };
  if (id.pod) attrs.pod = id.pod;

  // addresses: fixed ones from the pod's annotation, else automatic from the pools
  let ipv4: string[] = [];
  let ipv6: string[] = [];
  const fixed = jsonList(pod, 'ipAddrs');
  try {
    if (fixed?.length) {
      for (const ip of fixed) await deps.ipam.assignIp(ip, id.handleId, deps.node, attrs);
      ipv4 = fixed.filter((ip) => !ip.includes(':'));
      ipv6 = fixed.filter((ip) => ip.includes(':'));
    } else {
      const r = await deps.ipam.autoAssign({
        handleId: id.handleId,
        node: deps.node,
        num4: conf.ipam.assign_ipv4 ? 1 : 0,
        num6: conf.ipam.assign_ipv6 ? 1 : 0,
        pools4: jsonList(pod, 'ipv4pools') ?? conf.ipam.ipv4_pools,
        pools6: jsonList(pod, 'ipv6pools') ?? conf.ipam.ipv6_pools,
        // a pod's namespace, for the pools' namespaceSelectors
        ...(id.pod ? { namespace: id.namespace } : {}),
        attrs,
      });
      ({ ipv4, ipv6 } = r);
    }
  } catch (e) {
    await deps.ipam.releaseByHandle(id.handleId).catch(() => undefined);
    throw ipamError(e);
  }

  const a: Attachment = {
    hostIface: id.hostIface,
    podIface: env.ifname,
    podMac: randomPodMac(),
    netns: env.netns!,
    ipv4,
    ipv6,
  };
  const t = { ipam: lap(), setup: 0, endpoint: 0, policy: 0 };
  try {
    await deps.net.setup(a, conf.mtu);
    t.setup = lap();
    // with the Kubernetes datastore this records the addresses in the pod's annotations,
    // so the agent sees the endpoint now, not once the kubelet reports the pod's IPs
    await writeEndpoint(deps, id, env, a, pod);
    t.endpoint = lap();
  } catch (e) {
    // roll back: no veth, no address, no endpoint left behind
    await deps.net.teardown(a.hostIface).catch(() => undefined);
    await deps.ipam.releaseByHandle(id.handleId).catch(() => undefined);
    throw e instanceof CniError
      ? e
      : e instanceof DatastoreError
        ? new CniError(
            CNI_ERRORS.DatastoreFailure,
            'writing the workload endpoint failed',
            e.message,
          )
        : new CniError(
            CNI_ERRORS.IoFailure,
            'setting up the pod interface failed',
            (e as Error).message,
          );
  }
  // bounded: past the timeout the pod starts anyway, and its policy follows
  if (deps.policyReady && conf.policy_setup_timeout_seconds > 0) {
    await deps.policyReady(
      a.hostIface,
      [...ipv4, ...ipv6],
      conf.policy_setup_timeout_seconds * 1000,
    );
    t.policy = lap();
  }
  deps.onAddPhases?.(t);
  return buildResult(conf.cniVersion, a);
}

async function writeEndpoint(
  deps: PluginDeps,
  id: Identity,
  env: CniEnv,
  a: Attachment,
  pod: K8sPod | undefined,
): Promise<void> {
  const ips = [...a.ipv4, ...a.ipv6];
  // The same mapping the Kubernetes datastore uses for pods: labels, profiles, ports.
  const base = podToWorkloadEndpoint({
    metadata: {
      ...(pod?.metadata ?? {}),
      name: id.pod ?? env.containerId,
      namespace: id.namespace,
    },
    spec: { ...(pod?.spec ?? { containers: [] }), nodeName: deps.node, hostNetwork: false },
    status: { podIPs: ips.map((ip) => ({ ip })) },
  })!;
  const wep: Resource<'WorkloadEndpoint'> = {
    apiVersion: API_VERSION,
    kind: 'WorkloadEndpoint',
    metadata: { name: id.wepName, namespace: id.namespace, labels: base.metadata.labels },
    spec: {
      ...base.spec,
      orchestrator: id.pod ? 'k8s' : 'cni',
      containerID: env.containerId,
      endpoint: env.ifname,
      interfaceName: a.hostIface,
      mac: a.podMac,
      ipNetworks: [...a.ipv4.map((ip) => `${ip}/32`), ...a.ipv6.map((ip) => `${ip}/128`)],
    },
  };
  const key = { kind: 'WorkloadEndpoint' as const, name: id.wepName, namespace: id.namespace };
  // a new pod's endpoint does not exist: create it outright (one round trip); one left by
  // an earlier ADD of the same pod (a retried sandbox) is read and replaced
  try {
    await deps.datastore.create(wep);
    return;
  } catch (e) {
    if (!(e instanceof DatastoreError && e.code === 'AlreadyExists')) throw e;
  }
  const cur = await deps.datastore.get(key);
  if (cur) {
    await deps.datastore.update({
      ...wep,
      metadata: { ...wep.metadata, resourceVersion: cur.metadata.resourceVersion },
    });
  } else {
    await deps.datastore.create(wep);
  }
}

/**
 * DEL: idempotent, and fine when the netns or the container is already gone. When the
 * pod's endpoint belongs to a newer container (the sandbox was re-created), only this
 * container's addresses are released: the interface is the new sandbox's now. (With the
 * Kubernetes datastore the endpoint's container is the pod's containerID annotation, and
 * deleting it empties the pod's address annotations.)
 */
export async function del(conf: NetConf, env: CniEnv, deps: PluginDeps): Promise<void> {
  const id = identity(conf, env, deps.node);
  const key = { kind: 'WorkloadEndpoint' as const, name: id.wepName, namespace: id.namespace };
  // a Conflict: the endpoint (with Kubernetes, its pod) changed between read and delete
  for (let attempt = 0; ; attempt++) {
    const wep = (await deps.datastore.get(key)) as Resource<'WorkloadEndpoint'> | undefined;
    const newer = wep?.spec.containerID !== undefined && wep.spec.containerID !== env.containerId;
    if (attempt === 0) {
      if (!newer) await deps.net.teardown(id.hostIface);
      await deps.ipam.releaseByHandle(id.handleId);
    }
    if (!wep || newer) return;
    try {
      await deps.datastore.delete(key, { resourceVersion: wep.metadata.resourceVersion });
      return;
    } catch (e) {
      if (e instanceof DatastoreError && e.code === 'NotFound') return;
      if (!(e instanceof DatastoreError && e.code === 'Conflict') || attempt >= 5) throw e;
    }
  }
}

/** CHECK: the interface, addresses and routes of prevResult are all there. */
export async function check(conf: NetConf, env: CniEnv, deps: PluginDeps): Promise<void> {
  if (conf.prevResult === undefined) {
    throw new CniError(
      CNI_ERRORS.InvalidConfig,
      'CHECK needs prevResult in the network configuration',
    );
  }
  const id = identity(conf, env, deps.node);
  const want = addressesOf(conf.prevResult);
  const seen = await deps.net.observe({
    hostIface: id.hostIface,
    podIface: env.ifname,
    netns: env.netns!,
  });
  const problems: string[] = [];
  if (!seen.hostIfaceExists) problems.push(`host interface ${id.hostIface} is missing`);
  for (const ip of want.ipv4) {
    if (!seen.podAddrs.includes(`${ip}/32`)) problems.push(`${ip}/32 is not on ${env.ifname}`);
    if (!seen.hostRoutes.includes(ip))
      problems.push(`host route to ${ip} via ${id.hostIface} is missing`);
  }
  for (const ip of want.ipv6) {
    if (!seen.podAddrs.includes(`${ip}/128`)) problems.push(`${ip}/128 is not on ${env.ifname}`);
    if (!seen.hostRoutes.includes(ip))
      problems.push(`host route to ${ip} via ${id.hostIface} is missing`);
  }
  if (want.ipv4.length && !seen.podDefaultVia.includes(`${POD_GATEWAY_V4}@${env.ifname}`)) {
    problems.push(`default route via ${POD_GATEWAY_V4} is missing in the pod`);
  }
  if (want.ipv6.length && !seen.podDefaultVia.includes(`${POD_GATEWAY_V6}@${env.ifname}`)) {
    problems.push(`IPv6 default route via ${POD_GATEWAY_V6} is missing in the pod`);
  }
  const held = await deps.ipam.ipsByHandle(id.handleId);
  for (const ip of [...want.ipv4, ...want.ipv6]) {
    if (!held.includes(ip)) problems.push(`IPAM does not hold ${ip} for ${id.handleId}`);
  }
  if (problems.length) {
    throw new CniError(CNI_ERRORS.CheckMismatch, 'CHECK found differences', problems.join('; '));
  }
}

/**
 * GC (CNI 1.1): release this node's allocations of this network whose attachment the
 * runtime no longer lists.
 */
export async function gc(conf: NetConf, deps: PluginDeps): Promise<string[]> {
  const valid = new Set(
    (conf['cni.dev/valid-attachments'] ?? []).map((v) => `${conf.name}.${v.containerID}`),
  );
  const prefix = `${conf.name}.`;
  const stale = new Set<string>();
  for (const b of (await deps.datastore.list({ kind: 'IPAMBlock' }))
    .items as Resource<'IPAMBlock'>[]) {
    for (const a of blocks.allocationsOf(b.spec)) {
      if (a.attrs.node === deps.node && a.handleId?.startsWith(prefix) && !valid.has(a.handleId)) {
        stale.add(a.handleId);
      }
    }
  }
  const released: string[] = [];
  for (const h of stale) released.push(...(await deps.ipam.releaseByHandle(h)));
  return released;
}

/** STATUS (CNI 1.1): ready when the datastore answers and has a pool to allocate from. */
export async function status(deps: Pick<PluginDeps, 'datastore'>): Promise<void> {
  let pools: Resource[];
  try {
    pools = (await deps.datastore.list({ kind: 'IPPool' })).items;
  } catch (e) {
    throw new CniError(CNI_ERRORS.NotAvailable, 'datastore unavailable', (e as Error).message);
  }
  if (!pools.some((p) => !(p as Resource<'IPPool'>).spec.disabled)) {
    throw new CniError(CNI_ERRORS.NotAvailable, 'no enabled IP pool to allocate from');
  }
}

export function version(cniVersion = '1.1.0') {
  return { cniVersion, supportedVersions: SUPPORTED_VERSIONS };
}
