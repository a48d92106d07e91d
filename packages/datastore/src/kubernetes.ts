// The Kubernetes backend: tortie resources as custom resources (the CRDs in
// deploy/crds) through @kubernetes/client-node, as Calico's KDD mode does. The API
// server provides resourceVersion compare-and-swap and watches; a watch that starts
// from a revision the server no longer has ends with 410 Gone, reported as 'Compacted'.
import type { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import {
  API_GROUP,
  API_VERSION,
  KINDS,
  parseResource,
  ValidationError,
  type Kind,
  type Resource,
} from '@tortie/api';
import {
  DatastoreError,
  keyOf,
  keyText,
  type Datastore,
  type ListOptions,
  type ListResult,
  type ResourceKey,
  type Watch,
  type WatchEvent,
} from './datastore';
import {
  k8sEndpointSliceToResource,
  k8sNodeToNode,
  k8sServiceToResource,
  nodeAnnotationPatch,
  SERVICE_STATUS_FIELDS,
  serviceStatusPatch,
  type K8sService,
  k8sNetworkPolicyToResource,
  namespaceToProfile,
  parseWorkloadEndpointName,
  POD_ANNOTATIONS_CLEARED,
  podAnnotationsOf,
  podEndpointName,
  podToWorkloadEndpoint,
  serviceAccountToProfile,
  type K8sNode,
  type K8sPod,
} from './kdd';

const VERSION = 'v1';

/** A read-only view: core Kubernetes objects shown as a tortie kind (Calico's KDD). */
interface CoreView {
  /** The cluster-wide list/watch path. */
  path: string;
  list(): Promise<{ items: unknown[]; metadata?: { resourceVersion?: string } }>;
  map(o: unknown): Resource | undefined;
  /** The resource name an object maps to even when it maps to nothing any more (for deletes). */
  nameOf(o: unknown): string | undefined;
}

interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown> & {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
  };
  spec?: unknown;
}

/** The part of a Kubernetes object tortie keeps (no managedFields and the like). */
function fromKube(kind: Kind, o: KubeObject): Resource {
  const m = o.metadata ?? {};
  const metadata: Resource['metadata'] = { name: String(m.name) };
  for (const k of [
    'namespace',
    'labels',
    'annotations',
    'resourceVersion',
    'uid',
    'creationTimestamp',
    'generation',
  ] as const) {
    if (m[k] !== undefined) (metadata as Record<string, unknown>)[k] = m[k];
  }
  return withDefaults({ apiVersion: API_VERSION, kind, metadata, spec: o.spec } as Resource);
}

/**
 * The resource as @tortie/api parses it, so a reader gets the schema's defaults as the
 * etcd backend's readers do (tortiectl stores parsed resources there). A CRD object was
 * checked only against its CRD's OpenAPI schema, which lacks some of those defaults (an
 * IPPool's allowedUses has none, as in Calico's CRD). An object the schema refuses is
 * still returned as stored, and named once per resourceVersion: dropping it would read as
 * a delete.
 */
function withDefaults(r: Resource): Resource {
  try {
    const parsed = parseResource(r);
    return { ...r, spec: parsed.spec };
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const id = `${keyText(keyOf(r))}@${r.metadata.resourceVersion ?? ''}`;
    if (!refused.has(id)) {
      refused.add(id);
      process.emitWarning(
        `${err.message} (read as stored, without defaults)`,
        'TortieInvalidResource',
      );
    }
    return r;
  }
}
const refused = new Set<string>();

function toKube(r: Resource): KubeObject {
  return { apiVersion: API_VERSION, kind: r.kind, metadata: { ...r.metadata }, spec: r.spec };
}

/**
 * @kubernetes/client-node is loaded on first use: it takes ~0.5 s to load, and programs
 * that import this package for another backend (the CNI plugin with etcd, started once
 * per pod) must not pay for it.
 */
function kube(): typeof import('@kubernetes/client-node') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@kubernetes/client-node') as typeof import('@kubernetes/client-node');
}

/** HTTP status of a client error, if it has one. */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** The core objects the backend mirrors (read-only), by the list path it watches. */
const CORE_PATHS = {
  nodes: '/api/v1/nodes',
  pods: '/api/v1/pods',
  namespaces: '/api/v1/namespaces',
  serviceaccounts: '/api/v1/serviceaccounts',
  networkpolicies: '/apis/networking.k8s.io/v1/networkpolicies',
  services: '/api/v1/services',
  endpointslices: '/apis/discovery.k8s.io/v1/endpointslices',
  // load-balancer IPAM writes the ingress addresses (KubernetesService updates)
  'services/status': '/api/v1/services',
  // the CNI plugin writes its pod's addresses into annotations (WorkloadEndpoint writes)
  'pods/status': '/api/v1/pods',
} as const;

/** One API resource the backend calls, and the verbs it uses on it (for RBAC). */
export interface KubernetesAccess {
  group: string;
  resource: string;
  verbs: string[];
}

/**
 * Every resource this backend can call, with its verbs: the tortie kinds (read and
 * written as custom objects) and the core objects it mirrors (list, watch; pods also get).
 * deploy/tortie.yaml's ClusterRole is checked against this list.
 */
export function kubernetesAccess(): KubernetesAccess[] {
  const custom = Object.values(KINDS).map((def) => ({
    group: API_GROUP,
    resource: def.plural,
    verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'],
  }));
  const core = Object.entries(CORE_PATHS).map(([resource, p]) => ({
    group: p.startsWith('/api/v1/') ? '' : p.split('/')[2],
    resource,
    // pods: the CNI plugin reads its pod; nodes: IP autodetection (kubernetes-internal-ip)
    // reads the agent's node, and registration patches the annotations Calico keeps there
    verbs:
      resource === 'pods' || resource === 'services'
        ? ['get', 'list', 'watch']
        : resource === 'nodes'
          ? ['get', 'list', 'watch', 'patch']
          : resource === 'services/status' || resource === 'pods/status'
            ? ['patch']
            : ['list', 'watch'],
  }));
  return [...custom, ...core];
}

export class KubernetesDatastore implements Datastore {
  private readonly api: CustomObjectsApi;
  private readonly server: string;
  private readonly views: Partial<Record<Kind, CoreView[]>>;
  private readonly core: CoreV1Api;

  constructor(private readonly kc: KubeConfig) {
    const { CustomObjectsApi, CoreV1Api, NetworkingV1Api, DiscoveryV1Api } = kube();
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.server = kc.getCurrentCluster()?.server ?? '(no server)';
    const core = (this.core = kc.makeApiClient(CoreV1Api));
    const net = kc.makeApiClient(NetworkingV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    type Meta = { metadata?: { name?: string; namespace?: string } };
    const podName = (o: unknown) => podEndpointName(o as K8sPod);
    this.views = {
      Node: [
        {
          path: CORE_PATHS.nodes,
          list: () => core.listNode(),
          map: (o) => k8sNodeToNode(o as never),
          nameOf: (o) => (o as Meta).metadata?.name,
        },
      ],
      WorkloadEndpoint: [
        {
          path: CORE_PATHS.pods,
          list: () => core.listPodForAllNamespaces(),
          map: (o) => podToWorkloadEndpoint(o as K8sPod),
          nameOf: podName,
        },
      ],
      Profile: [
        {
          path: CORE_PATHS.namespaces,
          list: () => core.listNamespace(),
          map: (o) => namespaceToProfile(o as never),
          nameOf: (o) => `kns.${(o as Meta).metadata?.name}`,
        },
        {
          path: CORE_PATHS.serviceaccounts,
          list: () => core.listServiceAccountForAllNamespaces(),
          map: (o) => serviceAccountToProfile(o as never),
          nameOf: (o) => `ksa.${(o as Meta).metadata?.namespace}.${(o as Meta).metadata?.name}`,
        },
      ],
      NetworkPolicy: [
        {
          path: CORE_PATHS.networkpolicies,
          list: () => net.listNetworkPolicyForAllNamespaces(),
          map: (o) => k8sNetworkPolicyToResource(o as never),
          nameOf: (o) => `knp.default.${(o as Meta).metadata?.name}`,
        },
      ],
      // the service dataplane's input: the real Services and EndpointSlices
      KubernetesService: [
        {
          path: CORE_PATHS.services,
          list: () => core.listServiceForAllNamespaces(),
          map: (o) => k8sServiceToResource(o as never),
          nameOf: (o) => (o as Meta).metadata?.name,
        },
      ],
      KubernetesEndpointSlice: [
        {
          path: CORE_PATHS.endpointslices,
          list: () => discovery.listEndpointSliceForAllNamespaces(),
          map: (o) => k8sEndpointSliceToResource(o as never),
          nameOf: (o) => (o as Meta).metadata?.name,
        },
      ],
    };
  }

  /** One pod as the API server has it (labels, annotations, service account), or undefined. */
  async getPod(namespace: string, name: string): Promise<K8sPod | undefined> {
    try {
      return (await this.core.readNamespacedPod({ name, namespace })) as unknown as K8sPod;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      this.fail(`get pod ${namespace}/${name}`, err);
    }
  }

  /**
   * The Kubernetes Node's InternalIP addresses, in its status order (tortie-node's
   * IP_AUTODETECTION_METHOD=kubernetes-internal-ip); throws when there is no such node.
   */
  async nodeInternalIps(name: string): Promise<string[]> {
    let node: K8sNode;
    try {
      node = (await this.core.readNode({ name })) as unknown as K8sNode;
    } catch (err) {
      this.fail(`get node ${name}`, err, `Kubernetes node "${name}" not found`);
    }
    return (node.status?.addresses ?? [])
      .filter((a) => a.type === 'InternalIP')
      .map((a) => a.address);
  }

  /** The resources of `kind` that mirror core objects (read-only). */
  private async viewItems(kind: Kind): Promise<{ items: Resource[]; revisions: string[] }> {
    const items: Resource[] = [];
    const revisions: string[] = [];
    for (const v of this.views[kind] ?? []) {
      let res;
      try {
        res = await v.list();
      } catch (err) {
        this.fail(`list ${v.path}`, err);
      }
      revisions.push(res.metadata?.resourceVersion ?? '0');
      for (const o of res.items) {
        const r = v.map(o);
        if (r) items.push(r);
      }
    }
    return { items, revisions };
  }

  /** Writes to a mirrored object are refused: Kubernetes owns it. */
  private async refuseMirrored(key: ResourceKey): Promise<void> {
    if (!this.views[key.kind]) return;
    const { items } = await this.viewItems(key.kind);
    if (
      items.some(
        (r) =>
          r.metadata.name === key.name &&
          (r.metadata.namespace ?? undefined) ===
            (KINDS[key.kind].namespaced ? (key.namespace ?? 'default') : undefined),
      )
    ) {
      throw new DatastoreError(
        'Invalid',
        `${keyText(key)} is read-only: it mirrors a Kubernetes object; change that instead`,
      );
    }
  }

  /**
   * In a pod: KUBERNETES_SERVICE_HOST/PORT, and the service account's token and CA under
   * /var/run/secrets/kubernetes.io/serviceaccount (the client re-reads a rotated token).
   */
  static inCluster(): KubernetesDatastore {
    const kc = new (kube().KubeConfig)();
    try {
      kc.loadFromCluster();
    } catch (err) {
      throw new DatastoreError('Invalid', `in-cluster config: ${(err as Error).message}`);
    }
    return new KubernetesDatastore(kc);
  }

  /** From a kubeconfig file, as `--kubeconfig` / KUBECONFIG give it. */
  static fromFile(path: string): KubernetesDatastore {
    const kc = new (kube().KubeConfig)();
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new DatastoreError('Invalid', `kubeconfig ${path}: ${(err as Error).message}`);
    }
    return new KubernetesDatastore(kc);
  }

  private target(kind: Kind, namespace?: string) {
    const def = KINDS[kind];
    return {
      group: API_GROUP,
      version: VERSION,
      plural: def.plural,
      namespace: def.namespaced ? (namespace ?? 'default') : undefined,
    };
  }

  /** Maps the API server's answers to datastore errors that say what happened. */
  private fail(what: string, err: unknown, notFound?: string): never {
    const status = statusOf(err);
    if (status === 404) throw new DatastoreError('NotFound', notFound ?? `${what}: not found`);
    if (status === 409) {
      const reason = String((err as { body?: unknown }).body ?? '');
      throw new DatastoreError(
        /AlreadyExists/.test(reason) ? 'AlreadyExists' : 'Conflict',
        `${what}: ${/AlreadyExists/.test(reason) ? 'already exists' : 'the object was modified'}`,
      );
    }
    if (status === 410)
      throw new DatastoreError('Compacted', `${what}: resourceVersion too old (410 Gone)`);
    if (status !== undefined && status >= 400 && status < 500)
      throw new DatastoreError(
        'Invalid',
        `${what}: HTTP ${status} ${String((err as Error).message)}`,
      );
    throw new DatastoreError(
      'Unavailable',
      `Kubernetes API at ${this.server} did not answer ${what}: ${(err as Error).message}`,
    );
  }

  /** The pod a Kubernetes workload endpoint's name stands for; undefined for another key. */
  private podOfEndpoint(
    key: ResourceKey,
  ): { namespace: string; pod: string; node: string } | undefined {
    if (key.kind !== 'WorkloadEndpoint') return undefined;
    const p = parseWorkloadEndpointName(key.name);
    if (!p || p.orchestrator !== 'k8s') return undefined;
    return { namespace: key.namespace ?? 'default', pod: p.workload, node: p.node };
  }

  /** The endpoint of one pod, read as that pod alone (not a list of every pod). */
  private async podEndpoint(key: ResourceKey, pod: string): Promise<Resource | undefined> {
    const p = await this.getPod(key.namespace ?? 'default', pod);
    const wep = p && podToWorkloadEndpoint(p);
    return wep?.metadata.name === key.name ? wep : undefined;
  }

  /**
   * A Kubernetes workload endpoint written (the CNI plugin's ADD): as Calico's KDD does,
   * its addresses and container go into its Pod's annotations (podIP, podIPs,
   * containerID) with a strategic merge patch of pods/status, so the endpoint exists as
   * soon as the pod is wired instead of once the kubelet reports the pod's IPs. No
   * resourceVersion check, as Calico's CNI patch mode: the kubelet changes the pod
   * meanwhile, and only one ADD per pod runs at a time.
   */
  private async writePodEndpoint(
    r: Resource<'WorkloadEndpoint'>,
    at: { namespace: string; pod: string; node: string },
  ): Promise<Resource> {
    const what = `${keyText(keyOf(r))}: Pod ${at.namespace}/${at.pod}`;
    const cur = await this.getPod(at.namespace, at.pod);
    if (!cur)
      throw new DatastoreError(
        'NotFound',
        `${what} not found: with the Kubernetes datastore an endpoint is its pod's`,
      );
    if (cur.spec.nodeName !== at.node)
      throw new DatastoreError(
        'Invalid',
        `${what} is on node "${cur.spec.nodeName ?? '(unscheduled)'}", not "${at.node}"`,
      );
    const annotations = podAnnotationsOf(r);
    if (!Object.keys(annotations).length)
      throw new DatastoreError('Invalid', `${what}: the endpoint has no ipNetworks to record`);
    const wep = podToWorkloadEndpoint(
      await this.patchPodStatus(
        at,
        { annotations, ...(r.metadata.uid ? { uid: r.metadata.uid } : {}) },
        what,
      ),
    );
    if (!wep)
      throw new DatastoreError(
        'Invalid',
        `${what} makes no endpoint (host network, or finished) though its addresses were recorded`,
      );
    return wep;
  }

  /** A strategic merge patch of a pod's metadata through pods/status (Calico's patchPodAnnotations). */
  private async patchPodStatus(
    at: { namespace: string; pod: string },
    metadata: Record<string, unknown>,
    what: string,
  ): Promise<K8sPod> {
    const k = kube();
    try {
      return (await this.core.patchNamespacedPodStatus(
        { name: at.pod, namespace: at.namespace, body: { metadata } },
        k.setHeaderOptions('Content-Type', k.PatchStrategy.StrategicMergePatch),
      )) as unknown as K8sPod;
    } catch (err) {
      this.fail(`patch ${what}`, err, `${what} not found`);
    }
  }

  async get(key: ResourceKey): Promise<Resource | undefined> {
    const at = this.podOfEndpoint(key);
    if (at) return this.podEndpoint(key, at.pod);
    const t = this.target(key.kind, key.namespace);
    try {
      const o = (
        t.namespace
          ? await this.api.getNamespacedCustomObject({
              ...t,
              namespace: t.namespace,
              name: key.name,
            })
          : await this.api.getClusterCustomObject({ ...t, name: key.name })
      ) as KubeObject;
      return fromKube(key.kind, o);
    } catch (err) {
      if (statusOf(err) !== 404) this.fail(`get ${keyText(key)}`, err);
    }
    if (!this.views[key.kind]) return undefined;
    const ns = KINDS[key.kind].namespaced ? (key.namespace ?? 'default') : undefined;
    return (await this.viewItems(key.kind)).items.find(
      (r) => r.metadata.name === key.name && r.metadata.namespace === ns,
    );
  }

  async list(opts: ListOptions): Promise<ListResult> {
    const def = KINDS[opts.kind];
    const t = { group: API_GROUP, version: VERSION, plural: def.plural };
    try {
      const res = (
        def.namespaced && opts.namespace !== undefined
          ? await this.api.listNamespacedCustomObject({ ...t, namespace: opts.namespace })
          : await this.api.listClusterCustomObject(t)
      ) as { items: KubeObject[]; metadata?: { resourceVersion?: string } };
      let items = res.items.map((o) => fromKube(opts.kind, o));
      let revision = res.metadata?.resourceVersion ?? '0';
      if (this.views[opts.kind]) {
        // one resourceVersion per underlying list; watch() takes the same composite back
        const v = await this.viewItems(opts.kind);
        items = [
          ...items,
          ...v.items.filter(
            (r) => opts.namespace === undefined || r.metadata.namespace === opts.namespace,
          ),
        ];
        revision = [revision, ...v.revisions].join(',');
      }
      items = items.filter(
        (r) => opts.namePrefix === undefined || r.metadata.name.startsWith(opts.namePrefix),
      );
      return { items, revision };
    } catch (err) {
      this.fail(`list ${opts.kind}`, err);
    }
  }

  /**
   * A Node is the Kubernetes node: an agent registering (create or update) writes the
   * fields Calico keeps in its annotations with a merge patch, compare-and-swap on the
   * node's resourceVersion when the caller read one; the rest of the node is Kubernetes'.
   */
  private async writeNode(r: Resource<'Node'>): Promise<Resource> {
    const name = r.metadata.name;
    let cur: K8sNode;
    try {
      cur = (await this.core.readNode({ name })) as unknown as K8sNode;
    } catch (err) {
      this.fail(
        `get node ${name}`,
        err,
        `Kubernetes node "${name}" not found: a Node is registered by the kubelet`,
      );
    }
    const rv = r.metadata.resourceVersion;
    if (rv !== undefined && rv !== cur.metadata.resourceVersion)
      throw new DatastoreError('Conflict', `Node ${name} changed since it was read`);
    const k = kube();
    try {
      const o = await this.core.patchNode(
        {
          name,
          body: {
            metadata: {
              resourceVersion: cur.metadata.resourceVersion,
              annotations: nodeAnnotationPatch(r.spec),
            },
          },
        },
        k.setHeaderOptions('Content-Type', k.PatchStrategy.MergePatch),
      );
      return k8sNodeToNode(o as unknown as K8sNode);
    } catch (err) {
      this.fail(`update Node ${name}`, err, `Kubernetes node "${name}" not found`);
    }
  }

  /**
   * A KubernetesService is the Service: tortie writes only its status (load-balancer
   * IPAM's ingress addresses and condition), with a merge patch of services/status,
   * compare-and-swap on the Service's resourceVersion when the caller read one. A change to
   * any other field is refused: it is the Service's spec, which Kubernetes users own.
   */
  private async writeServiceStatus(r: Resource<'KubernetesService'>): Promise<Resource> {
    const name = r.metadata.name;
    const namespace = r.metadata.namespace ?? 'default';
    const what = `Service ${namespace}/${name}`;
    let cur: K8sService;
    try {
      cur = (await this.core.readNamespacedService({ name, namespace })) as unknown as K8sService;
    } catch (err) {
      this.fail(`get ${what}`, err, `${what} not found`);
    }
    const rv = r.metadata.resourceVersion;
    if (rv !== undefined && rv !== cur.metadata.resourceVersion)
      throw new DatastoreError('Conflict', `${what} changed since it was read`);
    const specOnly = (spec: Record<string, unknown>) =>
      JSON.stringify(
        Object.fromEntries(
          Object.entries(spec)
            .filter(([f]) => !(SERVICE_STATUS_FIELDS as readonly string[]).includes(f))
            .sort(([a], [b]) => a.localeCompare(b)),
        ),
      );
    if (specOnly(r.spec) !== specOnly(k8sServiceToResource(cur).spec))
      throw new DatastoreError(
        'Invalid',
        `${what}: only its status (${SERVICE_STATUS_FIELDS.join(', ')}) is written here; change the Service itself for the rest`,
      );
    const k = kube();
    try {
      const o = await this.core.patchNamespacedServiceStatus(
        {
          name,
          namespace,
          body: {
            metadata: { resourceVersion: cur.metadata.resourceVersion },
            status: serviceStatusPatch(r.spec, cur.status, new Date().toISOString()),
          },
        },
        k.setHeaderOptions('Content-Type', k.PatchStrategy.MergePatch),
      );
      return k8sServiceToResource(o as unknown as K8sService);
    } catch (err) {
      this.fail(`update ${what} status`, err, `${what} not found`);
    }
  }

  async create(r: Resource): Promise<Resource> {
    if (r.kind === 'Node') return this.writeNode(r as Resource<'Node'>);
    const at = this.podOfEndpoint(keyOf(r));
    if (at) return this.writePodEndpoint(r as Resource<'WorkloadEndpoint'>, at);
    await this.refuseMirrored(keyOf(r));
    const t = this.target(r.kind, r.metadata.namespace);
    const body = toKube(r);
    try {
      const o = (
        t.namespace
          ? await this.api.createNamespacedCustomObject({ ...t, namespace: t.namespace, body })
          : await this.api.createClusterCustomObject({ ...t, body })
      ) as KubeObject;
      return fromKube(r.kind, o);
    } catch (err) {
      this.fail(`create ${keyText(keyOf(r))}`, err);
    }
  }

  async update(r: Resource): Promise<Resource> {
    if (r.kind === 'Node') return this.writeNode(r as Resource<'Node'>);
    if (r.kind === 'KubernetesService')
      return this.writeServiceStatus(r as Resource<'KubernetesService'>);
    const at = this.podOfEndpoint(keyOf(r));
    if (at) return this.writePodEndpoint(r as Resource<'WorkloadEndpoint'>, at);
    const k = keyOf(r);
    await this.refuseMirrored(k);
    const t = this.target(r.kind, r.metadata.namespace);
    let body = toKube(r);
    if (r.metadata.resourceVersion === undefined) {
      // an unconditional write: take the current version (the server requires one)
      const cur = await this.get(k);
      if (!cur) throw new DatastoreError('NotFound', `${keyText(k)} not found`);
      body = toKube({
        ...r,
        metadata: { ...r.metadata, resourceVersion: cur.metadata.resourceVersion },
      });
    }
    try {
      const o = (
        t.namespace
          ? await this.api.replaceNamespacedCustomObject({
              ...t,
              namespace: t.namespace,
              name: r.metadata.name,
              body,
            })
          : await this.api.replaceClusterCustomObject({ ...t, name: r.metadata.name, body })
      ) as KubeObject;
      return fromKube(r.kind, o);
    } catch (err) {
      this.fail(`update ${keyText(k)}`, err, `${keyText(k)} not found`);
    }
  }

  async delete(key: ResourceKey, opts: { resourceVersion?: string } = {}): Promise<Resource> {
    const at = this.podOfEndpoint(key);
    if (at) {
      // the CNI plugin's DEL (Calico's patchOutAnnotations): the pod's address annotations
      // emptied, compare-and-swap on the pod's resourceVersion when the caller read one;
      // the containerID stays, so a repeated DEL still sees whose addresses they were
      const cur = await this.podEndpoint(key, at.pod);
      const what = `${keyText(key)}: Pod ${at.namespace}/${at.pod}`;
      if (!cur) throw new DatastoreError('NotFound', `${keyText(key)} not found`);
      await this.patchPodStatus(
        at,
        {
          annotations: POD_ANNOTATIONS_CLEARED,
          ...(opts.resourceVersion ? { resourceVersion: opts.resourceVersion } : {}),
          ...(cur.metadata.uid ? { uid: cur.metadata.uid } : {}),
        },
        what,
      );
      return cur;
    }
    await this.refuseMirrored(key);
    const cur = await this.get(key);
    if (!cur) throw new DatastoreError('NotFound', `${keyText(key)} not found`);
    const t = this.target(key.kind, key.namespace);
    const body = {
      preconditions: { resourceVersion: opts.resourceVersion ?? cur.metadata.resourceVersion },
    };
    try {
      if (t.namespace)
        await this.api.deleteNamespacedCustomObject({
          ...t,
          namespace: t.namespace,
          name: key.name,
          body,
        });
      else await this.api.deleteClusterCustomObject({ ...t, name: key.name, body });
      return cur;
    } catch (err) {
      this.fail(`delete ${keyText(key)}`, err, `${keyText(key)} not found`);
    }
  }

  watch(kind: Kind, revision: string, onEvent: (e: WatchEvent) => void): Watch {
    const [crdRevision, ...viewRevisions] = revision.split(',');
    let ended = false;
    const once = (e: WatchEvent) => {
      if (ended) return;
      if (e.type === 'error') {
        ended = true;
        stopAll();
      }
      onEvent(e);
    };
    const def = KINDS[kind];
    const watches = [
      this.watchPath(
        `/apis/${API_GROUP}/${VERSION}/${def.plural}`,
        kind,
        crdRevision,
        (o) => fromKube(kind, o as KubeObject),
        undefined,
        once,
      ),
      ...(this.views[kind] ?? []).map((v, i) =>
        this.watchPath(v.path, kind, viewRevisions[i] ?? '0', v.map, v.nameOf, once),
      ),
    ];
    const stopAll = () => watches.forEach((w) => w.stop());
    return { stop: stopAll };
  }

  /** One watch stream, its objects mapped to `kind` (undefined: the object maps to nothing). */
  private watchPath(
    path: string,
    kind: Kind,
    revision: string,
    map: (o: unknown) => Resource | undefined,
    nameOf: ((o: unknown) => string | undefined) | undefined,
    onEvent: (e: WatchEvent) => void,
  ): Watch {
    let stopped = false;
    const end = (error: DatastoreError) => {
      if (!stopped) onEvent({ type: 'error', error });
    };
    const pending = new (kube().Watch)(this.kc).watch(
      path,
      { resourceVersion: revision, allowWatchBookmarks: true },
      (phase, obj: KubeObject & { code?: number; message?: string }) => {
        if (stopped) return;
        const rv = String(obj?.metadata?.resourceVersion ?? '');
        if (phase === 'BOOKMARK') return;
        if (phase === 'ERROR') {
          return end(
            obj?.code === 410
              ? new DatastoreError(
                  'Compacted',
                  `watch of ${path}: resourceVersion ${revision} is too old (410 Gone)`,
                )
              : new DatastoreError(
                  'Unavailable',
                  `watch of ${path}: ${obj?.message ?? 'error event'}`,
                ),
          );
        }
        const r = map(obj);
        if (phase === 'DELETED' || !r) {
          // an object that no longer maps (e.g. a finished pod) is a deletion of its mirror
          const name = r?.metadata.name ?? nameOf?.(obj);
          if (!name) return;
          const gone =
            r ??
            ({
              apiVersion: API_VERSION,
              kind,
              metadata: {
                name,
                namespace: KINDS[kind].namespaced ? obj.metadata?.namespace : undefined,
              },
              spec: {},
            } as unknown as Resource);
          return onEvent({ type: 'deleted', resource: gone, revision: rv });
        }
        onEvent({ type: phase === 'ADDED' ? 'added' : 'modified', resource: r, revision: rv });
      },
      (err: unknown) =>
        end(
          new DatastoreError(
            'Unavailable',
            `watch of ${path} ended${err ? `: ${(err as Error).message}` : ''}`,
          ),
        ),
    );
    pending.catch((err: unknown) =>
      end(new DatastoreError('Unavailable', `watch of ${path}: ${(err as Error).message}`)),
    );
    return {
      stop: () => {
        stopped = true;
        void pending.then((ac) => ac.abort()).catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    // nothing pooled to release: watches are stopped by their owners
  }
}
