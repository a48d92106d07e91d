// What a kubelet would run on one node for a manifest's DaemonSet (or Deployment): its init containers and
// containers, each with its command, its environment resolved (values, the node name,
// ConfigMap keys), its hostPath mounts and its Secret volumes. The lab's --containers mode runs exactly this
// under runc, so the manifest, not the lab, says what the agent gets. Pure.
import YAML from 'yaml';

export interface HostMount {
  /** The volume's hostPath on the node. */
  hostPath: string;
  /** Where the container sees it. */
  mountPath: string;
  readOnly: boolean;
  /** hostPath type: DirectoryOrCreate, FileOrCreate, or '' (must exist). */
  type: string;
  /** mountPropagation HostToContainer: mounts made on the host later appear inside. */
  fromHost: boolean;
}

/** A Secret volume: the kubelet writes the Secret's keys as files and mounts them read-only. */
export interface SecretMount {
  /** The volume's name. */
  volume: string;
  secretName: string;
  mountPath: string;
  /** optional: a missing Secret mounts as an empty directory instead of stopping the pod. */
  optional: boolean;
  /** The files' mode (defaultMode; Kubernetes' default 0644). */
  mode: number;
  /** items: only these keys, each at its own path; otherwise every key at its own name. */
  items?: Array<{ key: string; path: string }>;
}

export interface ContainerRun {
  name: string;
  command: string[];
  env: Record<string, string>;
  mounts: HostMount[];
  secrets: SecretMount[];
  privileged: boolean;
}

export interface NodePodPlan {
  image: string;
  /** The DaemonSet's namespace (its pods'). */
  namespace: string;
  /**
   * The service account whose token the kubelet mounts into every container at
   * /var/run/secrets/kubernetes.io/serviceaccount (automountServiceAccountToken, true by
   * default); undefined when the pod spec turns that off.
   */
  serviceAccount?: string;
  initContainers: ContainerRun[];
  containers: ContainerRun[];
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: { name: string; key: string };
  };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  volumeMounts?: Array<{
    name: string;
    mountPath: string;
    readOnly?: boolean;
    mountPropagation?: string;
  }>;
  securityContext?: { privileged?: boolean };
}
interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  secret?: {
    secretName?: string;
    optional?: boolean;
    defaultMode?: number;
    items?: Array<{ key: string; path: string }>;
  };
}
interface Doc {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
  spec?: {
    template?: {
      spec?: {
        initContainers?: Container[];
        containers?: Container[];
        volumes?: Volume[];
        serviceAccountName?: string;
        automountServiceAccountToken?: boolean;
      };
    };
  };
}

/**
 * The pod plan of the manifest's DaemonSet on node `nodeName`. `configMaps` overrides
 * ConfigMap keys by "<configmap>/<key>" (what an operator edits before applying, such as
 * the etcd endpoints). Anything a kubelet would refuse to start is an error naming it.
 */
export function daemonSetPlan(manifest: string, o: PlanOptions): NodePodPlan {
  return podPlan('DaemonSet', manifest, o);
}

/**
 * The pod plan of the manifest's Deployment (such as deploy/tortie-rr.yaml's reflector)
 * on node `nodeName`, as daemonSetPlan reads a DaemonSet's.
 */
export function deploymentPlan(manifest: string, o: PlanOptions): NodePodPlan {
  return podPlan('Deployment', manifest, o);
}

export interface PlanOptions {
  nodeName: string;
  configMaps?: Record<string, string>;
}

function podPlan(kind: 'DaemonSet' | 'Deployment', manifest: string, o: PlanOptions): NodePodPlan {
  const docs = YAML.parseAllDocuments(manifest).map((d) => d.toJS() as Doc | null);
  const sets = docs.filter((d): d is Doc => d?.kind === kind);
  if (sets.length !== 1) throw new Error(`expected one ${kind}, found ${sets.length}`);
  const pod = sets[0].spec?.template?.spec;
  if (!pod?.containers?.length) throw new Error(`the ${kind} has no containers`);
  const configMaps = new Map(
    docs
      .filter((d): d is Doc => d?.kind === 'ConfigMap')
      .map((d) => [d.metadata?.name ?? '', d.data ?? {}]),
  );
  // an operator edits keys the ConfigMap has: one it lacks would change nothing, silently
  for (const ref of Object.keys(o.configMaps ?? {})) {
    const [name, key] = ref.split('/');
    if (!(key in (configMaps.get(name) ?? {})))
      throw new Error(
        `ConfigMap setting ${ref}: the manifest's ConfigMap ${name} has no key ${key}`,
      );
  }
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));

  const envOf = (c: Container): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) {
      const where = `container ${c.name} env ${e.name}`;
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef) {
        if (e.valueFrom.fieldRef.fieldPath !== 'spec.nodeName')
          throw new Error(`${where}: fieldRef ${e.valueFrom.fieldRef.fieldPath} is not supported`);
        env[e.name] = o.nodeName;
      } else if (e.valueFrom?.configMapKeyRef) {
        const { name, key } = e.valueFrom.configMapKeyRef;
        const value = o.configMaps?.[`${name}/${key}`] ?? configMaps.get(name)?.[key];
        if (value === undefined) throw new Error(`${where}: ConfigMap ${name} has no key ${key}`);
        env[e.name] = value;
      } else throw new Error(`${where}: no value`);
    }
    return env;
  };
  const volumeOf = (c: Container, name: string): Volume => {
    const v = volumes.get(name);
    if (!v) throw new Error(`container ${c.name} mounts volume ${name}, which is not defined`);
    if (!v.hostPath && !v.secret)
      throw new Error(`volume ${name}: only hostPath and secret volumes are supported`);
    return v;
  };
  const mountsOf = (c: Container): HostMount[] =>
    (c.volumeMounts ?? []).flatMap((m) => {
      const v = volumeOf(c, m.name);
      if (!v.hostPath) return [];
      return [
        {
          hostPath: v.hostPath.path,
          mountPath: m.mountPath,
          readOnly: m.readOnly ?? false,
          type: v.hostPath.type ?? '',
          fromHost: m.mountPropagation === 'HostToContainer',
        },
      ];
    });
  const secretsOf = (c: Container): SecretMount[] =>
    (c.volumeMounts ?? []).flatMap((m) => {
      const s = volumeOf(c, m.name).secret;
      if (!s) return [];
      if (!s.secretName) throw new Error(`volume ${m.name}: secret has no secretName`);
      return [
        {
          volume: m.name,
          secretName: s.secretName,
          mountPath: m.mountPath,
          optional: s.optional ?? false,
          mode: s.defaultMode ?? 0o644,
          ...(s.items ? { items: s.items } : {}),
        },
      ];
    });
  const run = (c: Container): ContainerRun => {
    if (!c.command?.length) throw new Error(`container ${c.name} has no command`);
    return {
      name: c.name,
      command: [...c.command, ...(c.args ?? [])],
      env: envOf(c),
      mounts: mountsOf(c),
      secrets: secretsOf(c),
      privileged: c.securityContext?.privileged ?? false,
    };
  };
  const images = new Set([...(pod.initContainers ?? []), ...pod.containers].map((c) => c.image));
  if (images.size !== 1) throw new Error(`expected one image, found ${[...images].join(', ')}`);
  return {
    image: [...images][0],
    namespace: sets[0].metadata?.namespace ?? 'default',
    // a pod without serviceAccountName runs as its namespace's "default" account
    ...(pod.automountServiceAccountToken === false
      ? {}
      : { serviceAccount: pod.serviceAccountName ?? 'default' }),
    initContainers: (pod.initContainers ?? []).map(run),
    containers: pod.containers.map(run),
  };
}
