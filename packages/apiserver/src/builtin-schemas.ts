// Hand-written OpenAPI v3 schemas of the built-in types served, as far as tortie uses
// them: they validate writes, drive strategic merge patch (patch merge keys) and are
// served as OpenAPI for kubectl apply and explain. Parts tortie does not read are kept
// open (x-kubernetes-preserve-unknown-fields) rather than guessed.
import { type Schema } from './schema';

const str = (description?: string, extra: Partial<Schema> = {}): Schema => ({
  type: 'string',
  ...(description ? { description } : {}),
  ...extra,
});
const int = (description?: string, extra: Partial<Schema> = {}): Schema => ({
  type: 'integer',
  format: 'int32',
  ...(description ? { description } : {}),
  ...extra,
});
const bool = (description?: string): Schema => ({
  type: 'boolean',
  ...(description ? { description } : {}),
});
const obj = (
  properties: Record<string, Schema>,
  description?: string,
  extra: Partial<Schema> = {},
): Schema => ({ type: 'object', ...(description ? { description } : {}), properties, ...extra });
const open = (description?: string): Schema => ({
  type: 'object',
  ...(description ? { description } : {}),
  'x-kubernetes-preserve-unknown-fields': true,
});
const strMap = (description?: string): Schema => ({
  type: 'object',
  ...(description ? { description } : {}),
  additionalProperties: { type: 'string' },
});
const list = (items: Schema, description?: string, extra: Partial<Schema> = {}): Schema => ({
  type: 'array',
  ...(description ? { description } : {}),
  items,
  ...extra,
});
/** A list merged by key in strategic merge patch. */
const keyed = (items: Schema, key: string, description?: string): Schema =>
  list(items, description, {
    'x-kubernetes-patch-merge-key': key,
    'x-kubernetes-patch-strategy': 'merge',
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': [key],
  });
const intOrString = (description?: string): Schema => ({
  'x-kubernetes-int-or-string': true,
  ...(description ? { description } : {}),
});

export const OBJECT_META: Schema = obj(
  {
    name: str('Name must be unique within a namespace.'),
    generateName: str('Optional prefix used by the server to generate a unique name.'),
    namespace: str('The namespace the object is in.'),
    labels: strMap('Map of string keys and values to organize and select objects.'),
    annotations: strMap('Unstructured key value map stored with a resource.'),
    uid: str('Unique in time and space value for this object, set by the server.'),
    resourceVersion: str('The version of this object, set by the server (etcd revision).'),
    generation: { type: 'integer', format: 'int64' },
    creationTimestamp: str('When the object was created.', { format: 'date-time' }),
    deletionTimestamp: str(undefined, { format: 'date-time' }),
    deletionGracePeriodSeconds: { type: 'integer', format: 'int64' },
    finalizers: list(str(), undefined, { 'x-kubernetes-patch-strategy': 'merge' }),
    ownerReferences: keyed(open(), 'uid'),
    managedFields: list(open(), 'Which manager owns which fields (server-side apply).'),
  },
  'Standard object metadata.',
);

const LABEL_SELECTOR: Schema = obj(
  {
    matchLabels: strMap('Labels the selected objects must have.'),
    matchExpressions: list(
      obj(
        {
          key: str(),
          operator: str(undefined, { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }),
          values: list(str()),
        },
        undefined,
        { required: ['key', 'operator'] },
      ),
    ),
  },
  'A label query over a set of resources.',
  { 'x-kubernetes-map-type': 'atomic' },
);

const PROTOCOL = str('TCP, UDP or SCTP.', { enum: ['TCP', 'UDP', 'SCTP'] });

const NP_PORT = obj({
  protocol: { ...PROTOCOL, default: 'TCP' },
  port: intOrString('A port number or a named port on the pod.'),
  endPort: int('The end of a port range starting at port.'),
});

const NP_PEER = obj({
  podSelector: LABEL_SELECTOR,
  namespaceSelector: LABEL_SELECTOR,
  ipBlock: obj(
    { cidr: str('A CIDR, such as 192.168.1.0/24.'), except: list(str()) },
    'A set of IP addresses.',
    { required: ['cidr'] },
  ),
});

const NETWORK_POLICY_SPEC: Schema = obj(
  {
    podSelector: LABEL_SELECTOR,
    policyTypes: list(str(undefined, { enum: ['Ingress', 'Egress'] })),
    ingress: list(obj({ from: list(NP_PEER), ports: list(NP_PORT) })),
    egress: list(obj({ to: list(NP_PEER), ports: list(NP_PORT) })),
  },
  'NetworkPolicySpec provides the specification of a NetworkPolicy.',
);

const CONTAINER_PORT = obj(
  {
    name: str(),
    containerPort: int(),
    hostPort: int(),
    hostIP: str(),
    protocol: { ...PROTOCOL, default: 'TCP' },
  },
  undefined,
  { required: ['containerPort'] },
);

const CONTAINER: Schema = {
  ...obj(
    {
      name: str('Name of the container.'),
      image: str(),
      command: list(str()),
      args: list(str()),
      ports: keyed(CONTAINER_PORT, 'containerPort'),
      env: keyed(open(), 'name'),
      volumeMounts: keyed(open(), 'mountPath'),
    },
    'A single application container.',
    { required: ['name'] },
  ),
  'x-kubernetes-preserve-unknown-fields': true,
};

const POD_SPEC: Schema = {
  ...obj({
    containers: keyed(CONTAINER, 'name', 'The containers of the pod.'),
    initContainers: keyed(CONTAINER, 'name'),
    volumes: keyed(open(), 'name'),
    nodeName: str('The node the pod is scheduled on.'),
    serviceAccountName: str(),
    hostNetwork: bool(),
    imagePullSecrets: keyed(open(), 'name'),
    nodeSelector: strMap(),
    tolerations: list(open()),
  }),
  required: ['containers'],
  'x-kubernetes-preserve-unknown-fields': true,
};

const POD_STATUS: Schema = {
  ...obj({
    phase: str(undefined, { enum: ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] }),
    podIP: str(),
    podIPs: keyed(obj({ ip: str() }), 'ip'),
    hostIP: str(),
    conditions: keyed(open(), 'type'),
  }),
  'x-kubernetes-preserve-unknown-fields': true,
};

function top(kind: string, description: string, props: Record<string, Schema>): Schema {
  return obj(
    {
      apiVersion: str('APIVersion defines the versioned schema of this object.'),
      kind: str(`Kind is the type of this object (${kind}).`),
      metadata: OBJECT_META,
      ...props,
    },
    description,
  );
}

// rbac.authorization.k8s.io/v1 as kube-apiserver validates it (pkg/apis/rbac/validation):
// stored here, and what the RBAC authorizer (rbac.ts) reads, so a malformed one is refused
const POLICY_RULE: Schema = obj(
  {
    verbs: { ...list(str(), 'Verbs this rule allows; * is all.'), minItems: 1 },
    apiGroups: list(str(), 'API groups of the resources; "" is core, * is all.'),
    resources: list(str(), 'Resources (plural, or plural/subresource); * is all.'),
    resourceNames: list(str(), 'Names the rule is restricted to.'),
    nonResourceURLs: list(str(), 'Paths outside the resources (/version, /api/*).'),
  },
  'A PolicyRule holds information that describes a policy rule.',
  { required: ['verbs'] },
);
const RULES = { rules: list(POLICY_RULE, 'Rules of this role.') };
const SUBJECTS = (kinds: string[]) => ({
  subjects: list(
    obj(
      {
        kind: str('User, Group or ServiceAccount.', { enum: ['User', 'Group', 'ServiceAccount'] }),
        apiGroup: str(),
        name: str(),
        namespace: str(),
      },
      'A user, group or service account the binding applies to.',
      { required: ['kind', 'name'] },
    ),
  ),
  roleRef: obj(
    {
      apiGroup: str(undefined, { enum: ['rbac.authorization.k8s.io'] }),
      kind: str(undefined, { enum: kinds }),
      name: str(),
    },
    'The role the subjects get.',
    { required: ['apiGroup', 'kind', 'name'] },
  ),
});
const requiredRoleRef = (o: Schema): Schema => ({ ...o, required: ['roleRef'] });

// apps/v1 as kube-apiserver validates it (pkg/apis/apps/validation): a selector and a pod
// template are required, replicas is not negative, the strategy types are enums, a
// template's pods restart Always and their containers name an image. That the selector
// matches the template's labels is checked in admission.ts. Parts the lab never reads
// stay open.
const TEMPLATE_CONTAINER: Schema = { ...CONTAINER, required: ['name', 'image'] };
const POD_TEMPLATE: Schema = obj(
  {
    metadata: OBJECT_META,
    spec: {
      ...POD_SPEC,
      properties: {
        ...POD_SPEC.properties,
        containers: keyed(TEMPLATE_CONTAINER, 'name', 'The containers of the pod.'),
        initContainers: keyed(TEMPLATE_CONTAINER, 'name'),
        restartPolicy: str('Pods of a workload always restart.', {
          enum: ['Always'],
          default: 'Always',
        }),
      },
    },
  },
  'The pods this workload makes.',
  { required: ['spec'] },
);
const strategy = (description: string, types: string[], rolling: string): Schema =>
  obj({ type: str(undefined, { enum: types }), [rolling]: open() }, description);
const workload = (kind: string, description: string, spec: Record<string, Schema>): Schema => ({
  ...top(kind, description, {
    spec: {
      ...obj(
        {
          selector: { ...LABEL_SELECTOR, description: 'Which pods belong to this workload.' },
          template: POD_TEMPLATE,
          minReadySeconds: int(undefined, { minimum: 0 }),
          revisionHistoryLimit: int(undefined, { minimum: 0 }),
          ...spec,
        },
        undefined,
        { required: ['selector', 'template'] },
      ),
      'x-kubernetes-preserve-unknown-fields': true,
    },
    status: open(),
  }),
  required: ['spec'],
});
const REPLICAS = { replicas: int('Desired number of pods.', { minimum: 0 }) };

export const BUILTIN_SCHEMAS: Record<string, Schema> = {
  Namespace: top('Namespace', 'Namespace provides a scope for Names.', {
    spec: obj({ finalizers: list(str()) }),
    status: obj({ phase: str(undefined, { enum: ['Active', 'Terminating'] }) }),
  }),
  Pod: top('Pod', 'Pod is a collection of containers that can run on a host.', {
    spec: POD_SPEC,
    status: POD_STATUS,
  }),
  Node: top('Node', 'Node is a worker node.', {
    spec: {
      ...obj({
        podCIDR: str(),
        podCIDRs: list(str(), undefined, { 'x-kubernetes-patch-strategy': 'merge' }),
        providerID: str(),
        unschedulable: bool(),
        taints: list(open()),
      }),
      'x-kubernetes-preserve-unknown-fields': true,
    },
    status: {
      ...obj({ addresses: keyed(obj({ type: str(), address: str() }), 'type') }),
      'x-kubernetes-preserve-unknown-fields': true,
    },
  }),
  ServiceAccount: top('ServiceAccount', 'ServiceAccount binds together a name and secrets.', {
    secrets: keyed(open(), 'name'),
    imagePullSecrets: list(open()),
    automountServiceAccountToken: bool(),
  }),
  // what a manifest such as deploy/tortie.yaml carries for its pods (no other behaviour)
  ConfigMap: top('ConfigMap', 'ConfigMap holds configuration data for pods to consume.', {
    data: strMap('Configuration data: each key a file name or an environment value.'),
    binaryData: strMap('Binary configuration data, base64-encoded.'),
    immutable: bool('If true, only metadata can be modified.'),
  }),
  Service: top('Service', 'Service is a named abstraction of a software service.', {
    spec: {
      ...obj({
        type: str(undefined, {
          enum: ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'],
          default: 'ClusterIP',
        }),
        selector: strMap(),
        clusterIP: str(),
        clusterIPs: list(str()),
        externalIPs: list(str()),
        loadBalancerIP: str(),
        externalTrafficPolicy: str(undefined, { enum: ['Cluster', 'Local'] }),
        ports: keyed(
          obj(
            {
              name: str(),
              protocol: { ...PROTOCOL, default: 'TCP' },
              port: int(),
              targetPort: intOrString(),
              nodePort: int(),
            },
            undefined,
            { required: ['port'] },
          ),
          'port',
        ),
      }),
      'x-kubernetes-preserve-unknown-fields': true,
    },
    status: open(),
  }),
  Endpoints: top('Endpoints', 'Endpoints is a collection of endpoints of a service.', {
    subsets: list(open()),
  }),
  EndpointSlice: {
    ...top('EndpointSlice', 'EndpointSlice represents a subset of the endpoints of a service.', {
      addressType: str(undefined, { enum: ['IPv4', 'IPv6', 'FQDN'] }),
      endpoints: list({
        ...obj(
          {
            addresses: list(str()),
            conditions: obj({ ready: bool(), serving: bool(), terminating: bool() }),
            nodeName: str(),
            hostname: str(),
            targetRef: open(),
          },
          undefined,
          { required: ['addresses'] },
        ),
        'x-kubernetes-preserve-unknown-fields': true,
      }),
      ports: list(
        obj({
          name: str(),
          protocol: { ...PROTOCOL, default: 'TCP' },
          port: int(),
          appProtocol: str(),
        }),
      ),
    }),
    required: ['addressType', 'endpoints'],
  },
  NetworkPolicy: top(
    'NetworkPolicy',
    'NetworkPolicy describes what traffic is allowed for a set of Pods.',
    {
      spec: NETWORK_POLICY_SPEC,
    },
  ),
  CustomResourceDefinition: {
    ...top('CustomResourceDefinition', 'A resource type served by this API server.', {
      spec: obj(
        {
          group: str(),
          names: obj(
            {
              plural: str(),
              singular: str(),
              kind: str(),
              listKind: str(),
              shortNames: list(str()),
              categories: list(str()),
            },
            undefined,
            { required: ['plural', 'kind'] },
          ),
          scope: str(undefined, { enum: ['Namespaced', 'Cluster'] }),
          versions: list(
            {
              ...obj({
                name: str(),
                served: bool(),
                storage: bool(),
                schema: open(),
                subresources: open(),
                additionalPrinterColumns: list(open()),
              }),
              required: ['name', 'served', 'storage'],
              'x-kubernetes-preserve-unknown-fields': true,
            },
            undefined,
            { minItems: 1 },
          ),
          preserveUnknownFields: bool(),
          conversion: open(),
        },
        undefined,
        { required: ['group', 'names', 'scope', 'versions'] },
      ),
      status: open(),
    }),
    required: ['spec'],
  },
  Deployment: workload('Deployment', 'Declarative updates for Pods and ReplicaSets.', {
    ...REPLICAS,
    strategy: strategy('How pods are replaced.', ['Recreate', 'RollingUpdate'], 'rollingUpdate'),
    progressDeadlineSeconds: int(undefined, { minimum: 0 }),
    paused: bool(),
  }),
  DaemonSet: workload('DaemonSet', 'A pod on each node.', {
    updateStrategy: strategy(
      'How pods are replaced.',
      ['RollingUpdate', 'OnDelete'],
      'rollingUpdate',
    ),
  }),
  StatefulSet: workload('StatefulSet', 'Pods with stable identities.', {
    ...REPLICAS,
    serviceName: str(),
    podManagementPolicy: str(undefined, { enum: ['OrderedReady', 'Parallel'] }),
    updateStrategy: strategy(
      'How pods are replaced.',
      ['RollingUpdate', 'OnDelete'],
      'rollingUpdate',
    ),
    volumeClaimTemplates: list(open()),
  }),
  ReplicaSet: workload('ReplicaSet', 'A number of identical pods.', REPLICAS),
  ClusterRole: top('ClusterRole', 'A cluster-level set of PolicyRules.', {
    ...RULES,
    aggregationRule: obj({ clusterRoleSelectors: list(open()) }),
  }),
  Role: top('Role', 'A namespaced set of PolicyRules.', RULES),
  ClusterRoleBinding: requiredRoleRef(
    top('ClusterRoleBinding', 'Binds a ClusterRole to subjects.', SUBJECTS(['ClusterRole'])),
  ),
  RoleBinding: requiredRoleRef(
    top(
      'RoleBinding',
      'Binds a Role or ClusterRole to subjects in a namespace.',
      SUBJECTS(['Role', 'ClusterRole']),
    ),
  ),
};
