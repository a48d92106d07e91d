// tortie's resources as zod schemas: the single source of truth. TypeScript types are
// inferred from them and the CRDs' OpenAPI schemas are generated from them. Field names
// and defaults follow Calico's projectcalico.org/v3 so Calico manifests apply unchanged.
import { z } from 'zod';
import {
  annotations,
  anyCase,
  asNumber,
  peerAsNumber,
  community,
  communityProblem,
  DNS_NAME,
  cidr,
  duration,
  encapMode,
  goDurationSeconds,
  ip,
  ipWithOptionalPrefix,
  labels,
  metadataLabels,
  netOrEmpty,
  port,
  protocol,
  selector,
  strictCidrProblem,
  cidrOrIpOf,
  ipOf,
  mac,
} from './fields';
import { bgpFilterSpec } from './bgp-filter';
import { felixConfigurationSpec } from './felix-configuration';
import { cidrProblem, ipInNet, ipVersionOf, overlaps, parseCidr } from '@tortie/netaddr';

// a bad CIDR is reported by `cidr` itself
const isSingleAddress = (c: string) => {
  if (cidrProblem(c)) return true;
  const { version, prefix } = parseCidr(c);
  return prefix === (version === 4 ? 32 : 128);
};

export const API_GROUP = 'tortie.io';
export const API_VERSION = `${API_GROUP}/v1`;
/** Accepted on input so Calico users can apply their manifests unchanged. */
export const CALICO_API_VERSION = 'projectcalico.org/v3';

const metadata = z.object({
  name: z
    .string()
    .min(1, 'a name is required')
    .max(253)
    .regex(
      /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
      'must be lowercase alphanumerics, "-" or ".", each "."-separated part starting and ending alphanumeric',
    ),
  namespace: z.string().optional(),
  labels: metadataLabels.optional(),
  annotations: annotations.optional(),
  resourceVersion: z.string().optional(),
  uid: z.string().optional(),
  creationTimestamp: z.string().optional(),
  generation: z.number().optional(),
});

// ---- policy -------------------------------------------------------------------------
// Calico's Rule, EntityRule, ICMPFields and HTTPMatch: libcalico-go's validateRule /
// validateEntityRule / validateHTTPRule and the CEL rules of Calico's CRDs.

/** A rule's net: a CIDR with no host bits (Calico's `net` tag and validateRule's ParseCIDR). */
const ruleNet = z.string().superRefine((s, ctx) => {
  const problem = strictCidrProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Calico's "omitempty,name": empty, or a DNS subdomain of at most 253 characters. */
const dnsNameOrEmpty = (message: string) =>
  z
    .string()
    .max(253)
    .refine((s) => s === '' || DNS_NAME.test(s), { message });

const entityRule = z
  .strictObject({
    nets: z.array(ruleNet).max(256).optional(),
    notNets: z.array(ruleNet).max(256).optional(),
    selector: selector.max(1024).optional(),
    notSelector: selector.max(1024).optional(),
    namespaceSelector: selector.max(1024).optional(),
    ports: z.array(port).max(50).optional(),
    notPorts: z.array(port).max(50).optional(),
    serviceAccounts: z
      .strictObject({ names: z.array(z.string()).optional(), selector: selector.optional() })
      .optional(),
    // Calico's ServiceMatch: both "omitempty,name" (a CEL rule below wants the name)
    services: z
      .strictObject({
        name: dnsNameOrEmpty('is not a Service name').optional(),
        namespace: dnsNameOrEmpty('is not a namespace name').optional(),
      })
      .optional(),
  })
  .superRefine((e, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    // Calico's CEL rules on EntityRule for services
    if (e.services) {
      if (!e.services.name)
        ctx.addIssue({
          code: 'custom',
          path: ['services', 'name'],
          message: 'services must specify a service name',
        });
      if (e.namespaceSelector)
        issue('services', 'cannot specify NamespaceSelector and Services on the same rule');
      if (e.serviceAccounts)
        issue('services', 'cannot specify ServiceAccounts and Services on the same rule');
      if (e.selector || e.notSelector)
        issue('services', 'cannot specify Selector/NotSelector and Services on the same rule');
      if (e.nets?.length || e.notNets?.length)
        issue('services', 'cannot specify Nets/NotNets and Services on the same rule');
    }
    if (e.selector?.includes('global('))
      issue('selector', 'global() can only be used in an EntityRule namespaceSelector');
    // validateEntityRule: global() in a namespaceSelector only alone
    const ns = e.namespaceSelector;
    if (ns?.includes('global(') && !/^[ \t]*global\([ \t]*\)[ \t]*$/.test(ns))
      issue(
        'namespaceSelector',
        `${JSON.stringify(ns)}: global() cannot be combined with other selectors`,
      );
  });

// Calico's ICMPFields: type 255 is iptables' "any type", so the highest type is 254
const icmp = z
  .strictObject({
    type: z.number().int().min(0).max(254).optional(),
    code: z.number().int().min(0).max(255).optional(),
  })
  .refine((m) => m.code === undefined || m.type !== undefined, {
    message: 'ICMP code specified without an ICMP type',
    path: ['code'],
  });

const httpPath = z
  .strictObject({ exact: z.string().max(1024).optional(), prefix: z.string().max(1024).optional() })
  .superRefine((p, ctx) => {
    const v = p.exact || p.prefix;
    const message =
      p.exact && p.prefix
        ? "Invalid path match. Both 'exact' and 'prefix' are set"
        : !v
          ? "Invalid path match. Either 'exact' or 'prefix' must be set"
          : !v.startsWith('/') || /[? #]/.test(v)
            ? `Invalid path ${JSON.stringify(v)} (must start with "/" and not contain "?", " " or "#")`
            : undefined;
    if (message) ctx.addIssue({ code: 'custom', message });
  });

// recorded, not enforced: Calico enforces it only with its L7 proxy (ALP), as here without
const httpMatch = z.strictObject({
  methods: z
    .array(z.string())
    .max(20)
    .refine((m) => new Set(m).size === m.length, {
      error: (i) => `Invalid methods (duplicates): ${JSON.stringify(i.input)}`,
    })
    .optional(),
  paths: z.array(httpPath).max(20).optional(),
});

const isNamedPort = (p: unknown) => typeof p === 'string' && !/^\d+(:\d+)?$/.test(p);
/** numorstring.Protocol.SupportsPorts: TCP, UDP and SCTP (not UDPLite). */
const supportsPorts = (p: unknown) => [6, 17, 132, 'TCP', 'UDP', 'SCTP'].includes(p as never);
const protocolIs = (p: unknown, name: string, num: number) => p === name || p === num;
const V6_ANY = /^(0*:)*:?(0*:?)*\/0$/;

export const ruleSchema = z
  .strictObject({
    action: z.enum(['Allow', 'Deny', 'Pass', 'Log']),
    protocol: protocol.optional(),
    notProtocol: protocol.optional(),
    ipVersion: z.union([z.literal(4), z.literal(6)]).optional(),
    icmp: icmp.optional(),
    notICMP: icmp.optional(),
    source: entityRule.optional(),
    destination: entityRule.optional(),
    http: httpMatch.optional(),
    metadata: z.strictObject({ annotations: annotations.optional() }).optional(),
  })
  .superRefine((r, ctx) => {
    const issue = (path: Array<string | number>, message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    // validateRule: numeric ports need a protocol with ports; named ports alone need none
    // (they match the protocol the endpoint gives its named port)
    for (const side of ['source', 'destination'] as const)
      for (const field of ['ports', 'notPorts'] as const) {
        const ports = r[side]?.[field] ?? [];
        if (r.protocol === undefined) {
          if (!ports.every(isNamedPort))
            issue(
              [side, field],
              'rules with numeric port or port range must set protocol to TCP or UDP or SCTP',
            );
        } else if (ports.length && !supportsPorts(r.protocol))
          issue(
            [side, field],
            `rules that specify ports must set protocol to TCP or UDP or SCTP (not ${JSON.stringify(r.protocol)})`,
          );
      }
    // validateRule: one IP version across the rule's nets, matching ipVersion; no
    // catch-all in a negated field (it would match nothing)
    let seen4 = false;
    let seen6 = false;
    for (const side of ['source', 'destination'] as const)
      for (const field of ['nets', 'notNets'] as const) {
        const nets = (r[side]?.[field] ?? []).filter((n) => !strictCidrProblem(n));
        const v6 = nets.some((n) => n.includes(':'));
        const v4 = nets.some((n) => !n.includes(':'));
        if (r.ipVersion !== undefined && ((v4 && r.ipVersion !== 4) || (v6 && r.ipVersion !== 6)))
          issue(
            [side, field],
            `rule IP version doesn't match CIDR version (ipVersion ${r.ipVersion})`,
          );
        if ((v4 && seen6) || (v6 && seen4) || (v4 && v6))
          issue([side, field], 'rule contains both IPv4 and IPv6 CIDRs');
        seen4 ||= v4;
        seen6 ||= v6;
        if (field === 'notNets')
          for (const n of nets)
            if (n === '0.0.0.0/0' || (n.includes(':') && V6_ANY.test(n)))
              issue(
                [side, field],
                `${JSON.stringify(n)}: catch-all CIDR in negation creates logical contradiction (matches no traffic)`,
              );
      }
    // Calico's CEL rules on Rule
    const dst = r.destination;
    if (dst?.services && (dst.ports?.length || dst.notPorts?.length))
      issue(
        ['destination', dst.ports?.length ? 'ports' : 'notPorts'],
        'ports and notPorts cannot be specified with services',
      );
    if (r.http && r.protocol !== undefined && !protocolIs(r.protocol, 'TCP', 6))
      issue(['http'], 'rules with HTTP match must have protocol TCP or unset');
    if (r.http && r.action !== 'Allow') issue(['http'], 'HTTP match is only valid on Allow rules');
    if (r.icmp && !(protocolIs(r.protocol, 'ICMP', 1) || protocolIs(r.protocol, 'ICMPv6', 58)))
      issue(['icmp'], 'ICMP fields require protocol to be ICMP or ICMPv6');
    for (const field of ['protocol', 'notProtocol'] as const) {
      const p = r[field];
      if (protocolIs(p, 'ICMP', 1) && r.ipVersion !== undefined && r.ipVersion !== 4)
        issue([field], 'protocol ICMP requires ipVersion 4');
      if (protocolIs(p, 'ICMPv6', 58) && r.ipVersion !== undefined && r.ipVersion !== 6)
        issue([field], 'protocol ICMPv6 requires ipVersion 6');
    }
  });

const policyTypes = z
  .array(z.enum(['Ingress', 'Egress']))
  .max(2)
  .superRefine((t, ctx) => {
    t.forEach((v, i) => {
      if (t.indexOf(v) !== i)
        ctx.addIssue({
          code: 'custom',
          path: [i],
          message: `'${v}' type specified more than once`,
        });
    });
  })
  .optional();

const performanceHints = z
  .array(z.enum(['AssumeNeededOnEveryNode']))
  .refine((h) => new Set(h).size === h.length, 'a performance hint is listed more than once')
  .optional();

const rules = z.array(ruleSchema).max(1024).optional();

const policyFields = {
  tier: z.string().max(253).regex(DNS_NAME, 'is not a tier name').optional(),
  order: z.number().optional(),
  selector: selector.max(1024).default('all()'),
  types: policyTypes,
  ingress: rules,
  egress: rules,
  serviceAccountSelector: selector.max(1024).optional(),
  performanceHints,
};

type PolicyFields = {
  selector: string;
  serviceAccountSelector?: string;
  namespaceSelector?: string;
  ingress?: z.output<typeof ruleSchema>[];
  egress?: z.output<typeof ruleSchema>[];
};

/** Calico's rules on a (Global)NetworkPolicySpec (validateNetworkPolicySpec and CEL). */
function checkPolicy(s: PolicyFields, ctx: z.RefinementCtx, global: boolean): void {
  for (const field of ['selector', 'serviceAccountSelector', 'namespaceSelector'] as const)
    if (s[field]?.includes('global('))
      ctx.addIssue({
        code: 'custom',
        path: [field],
        message: 'global() can only be used in an EntityRule namespaceSelector',
      });
  // validate(Global)NetworkPolicySpec: services only in egress destinations and ingress
  // sources; a global policy has no namespace of its own, so it must name one
  const at = (path: Array<string | number>, message: string) =>
    ctx.addIssue({ code: 'custom', path, message });
  s.egress?.forEach((r, i) => {
    if (r.source?.services)
      at(['egress', i, 'source', 'services'], 'not allowed in egress rule source');
    if (global && r.destination?.services && !r.destination.services.namespace)
      at(['egress', i, 'destination', 'services', 'namespace'], 'must specify a namespace');
  });
  s.ingress?.forEach((r, i) => {
    if (r.destination?.services)
      at(['ingress', i, 'destination', 'services'], 'not allowed in ingress rule destination');
    if (global && r.source?.services && !r.source.services.namespace)
      at(['ingress', i, 'source', 'services', 'namespace'], 'must specify a namespace');
  });
  // application layer policy (HTTP) only on ingress
  s.egress?.forEach((r, i) => {
    if (r.http)
      ctx.addIssue({
        code: 'custom',
        path: ['egress', i, 'http'],
        message: 'not allowed in egress rules',
      });
  });
}

const networkPolicySpec = z
  .strictObject(policyFields)
  .superRefine((s, ctx) => checkPolicy(s, ctx, false));

const globalNetworkPolicySpec = z
  .strictObject({
    ...policyFields,
    namespaceSelector: selector.max(1024).optional(),
    applyOnForward: z.boolean().default(false),
    preDNAT: z.boolean().default(false),
    doNotTrack: z.boolean().default(false),
  })
  .superRefine((s, ctx) => {
    checkPolicy(s, ctx, true);
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    // Calico's CEL rules on GlobalNetworkPolicySpec
    if (s.preDNAT && s.doNotTrack) issue('preDNAT', 'preDNAT and doNotTrack cannot both be true');
    if (s.preDNAT && s.egress?.length)
      issue('egress', 'preDNAT policy cannot have any egress rules');
    if (s.preDNAT && s.types?.includes('Egress'))
      issue('types', "preDNAT policy cannot have 'Egress' type");
    if ((s.preDNAT || s.doNotTrack) && !s.applyOnForward)
      issue(
        'applyOnForward',
        'applyOnForward must be true if either preDNAT or doNotTrack is true',
      );
  });

// Kubernetes' IsValidPortName: 1-15 of a-z 0-9 "-", a letter somewhere, no "--", no "-" at an end
const portName = z
  .string()
  .refine(
    (s) =>
      /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s) &&
      s.length <= 15 &&
      /[a-z]/.test(s) &&
      !s.includes('--'),
    {
      error: (i) =>
        `${JSON.stringify(i.input)} is not a port name (1-15 of a-z 0-9 "-", with a letter)`,
    },
  );

// an endpoint's port: a protocol with ports, as Calico's EndpointPort (a host endpoint's is named)
const endpointPortFields = {
  protocol: z.enum(['TCP', 'UDP', 'SCTP'], {
    error: 'protocol does not support ports (TCP, UDP or SCTP)',
  }),
  port: z.number().int().min(1).max(65535),
};
const endpointPort = z.strictObject({ name: portName, ...endpointPortFields });

// Calico's WorkloadEndpointPort: an unnamed port only with a host port mapping
const workloadEndpointPort = z
  .strictObject({
    name: portName.optional(),
    ...endpointPortFields,
    hostPort: z.number().int().min(0).max(65535).optional(),
    hostIP: ipWithOptionalPrefix.optional(),
  })
  .refine((p) => p.name !== undefined || (p.hostPort ?? 0) > 0, {
    message: 'a port without a name needs a hostPort',
    path: ['name'],
  });

/** An interface name as Calico's validator takes it ("*": all of a host's interfaces). */
const interfaceName = z.string().refine((s) => s === '*' || /^[a-zA-Z0-9_.-]{1,15}$/.test(s), {
  error: (i) => `${JSON.stringify(i.input)} is not an interface name (1-15 of a-z A-Z 0-9 _ . -)`,
});

/** A profile name: Calico's name regex, or a "knp.default." prefixed one. */
const profileName = z.string().regex(DNS_NAME, {
  error: (i) => `${JSON.stringify(i.input)} is not a valid profile name`,
});

// ---- the kinds ----------------------------------------------------------------------
const LINK_LOCAL = { 4: parseCidr('169.254.0.0/16'), 6: parseCidr('fe80::/10') };

const ipPoolSpec = z
  .strictObject({
    cidr: cidr.superRefine((c, ctx) => {
      const problem = strictCidrProblem(c);
      if (problem && !cidrProblem(c)) ctx.addIssue({ code: 'custom', message: problem });
    }),
    blockSize: z.number().int().min(0).max(128).optional(),
    ipipMode: encapMode.default('Never'),
    vxlanMode: encapMode.default('Never'),
    natOutgoing: z.boolean().default(false),
    disabled: z.boolean().default(false),
    disableBGPExport: z.boolean().default(false),
    nodeSelector: selector.max(1024).default('all()'),
    /** the namespaces whose pods IPAM assigns from the pool automatically (none: all) */
    namespaceSelector: selector.max(1024).optional(),
    // absent or empty: Workload and Tunnel (defaulted below, after the CEL rules that
    // read whether it was given)
    allowedUses: z
      .array(z.enum(['Workload', 'Tunnel', 'LoadBalancer']))
      .max(10)
      .optional(),
    /** Manual: addresses only for allocations that name the pool (CNI config, annotations) */
    assignmentMode: z.enum(['Automatic', 'Manual']).optional(),
  })
  .transform((s, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    const v6 = s.cidr.includes(':');
    // 0 is Calico's "unset"
    const blockSize = s.blockSize || (v6 ? 122 : 26);
    const prefix = Number(s.cidr.split('/')[1]);
    const [min, max] = v6 ? [116, 128] : [20, 32];
    if (blockSize < min || blockSize > max)
      issue('blockSize', `${blockSize} is outside ${min}-${max} for an IPv${v6 ? 6 : 4} pool`);
    // a disabled pool assigns nothing: Calico lets it be smaller than a block
    else if (blockSize < prefix && !s.disabled)
      issue('blockSize', `${blockSize} is larger than the pool ${s.cidr}`);
    if (!cidrProblem(s.cidr) && overlaps(parseCidr(s.cidr), LINK_LOCAL[v6 ? 6 : 4]))
      issue(
        'cidr',
        `${s.cidr} overlaps with the IPv${v6 ? 6 : 4} link local range ${v6 ? 'fe80::/10' : '169.254.0.0/16'}`,
      );
    if (s.ipipMode !== 'Never' && s.vxlanMode !== 'Never')
      issue('vxlanMode', 'ipipMode and vxlanMode cannot both be enabled');
    if (v6 && s.ipipMode !== 'Never') issue('ipipMode', 'IPIP is IPv4 only');
    if (s.nodeSelector.includes('global('))
      issue('nodeSelector', 'global() selector is not valid for IPPool nodeSelector');
    if (s.namespaceSelector?.includes('global('))
      issue('namespaceSelector', 'global() selector is not valid for IPPool namespaceSelector');
    if (s.allowedUses?.includes('Tunnel') && s.namespaceSelector)
      issue('namespaceSelector', 'IP Pool with AllowedUse Tunnel cannot have namespaceSelector');
    const allowedUses = poolAllowedUses(s);
    const uses = new Set(allowedUses);
    if (uses.has('LoadBalancer')) {
      if (uses.has('Workload') || uses.has('Tunnel'))
        issue(
          'allowedUses',
          'LoadBalancer cannot be combined with Workload or Tunnel allowed uses',
        );
      if (s.ipipMode !== 'Never' || s.vxlanMode !== 'Never')
        issue('allowedUses', 'LoadBalancer IP pool cannot have IPIP or VXLAN enabled');
      if (s.disableBGPExport)
        issue('disableBGPExport', 'LoadBalancer IP pools cannot disable BGP export');
      if (s.nodeSelector !== 'all()')
        issue(
          'nodeSelector',
          'IP Pool with AllowedUse LoadBalancer must have nodeSelector set to all()',
        );
    }
    return { ...s, blockSize, allowedUses };
  });

export type PoolUse = 'Workload' | 'Tunnel' | 'LoadBalancer';

/** Calico's default uses of a pool (Workload and Tunnel) where allowedUses is absent or empty. */
function poolAllowedUses(spec: { allowedUses?: readonly PoolUse[] }): PoolUse[] {
  return spec.allowedUses?.length ? [...spec.allowedUses] : ['Workload', 'Tunnel'];
}

// Calico's ServiceXXXIPBlock: `cidr` is omitempty, and confd skips empty entries
const serviceIpBlock = z.strictObject({ cidr: netOrEmpty.optional() });

/** A BFD interval: a Go duration from 1 ms to 60 s. */
const bfdInterval = duration.refine(
  (d) => {
    const s = goDurationSeconds(d);
    // not a duration at all: `duration` says so
    return s === undefined || (s >= 0.001 && s <= 60);
  },
  { error: (i) => `${JSON.stringify(i.input)} is outside 1ms..60s` },
);

/**
 * BFD under BGP sessions (tortie's own; Calico has none): a session whose BFD session
 * fails is closed at once instead of after the hold time. The block's presence turns it
 * on unless `enabled: false`; unset fields default to 300ms x 3, as FRR's bfdd.
 */
export const bfdSettings = z.strictObject({
  enabled: z.boolean().optional(),
  /** How often we would like to send while Up. */
  minTxInterval: bfdInterval.optional(),
  /** How often we can take the peer's packets. */
  minRxInterval: bfdInterval.optional(),
  /** Packets missed before the session is declared down. */
  multiplier: z.number().int().min(1).max(255).optional(),
});

/** Calico's BGPPassword: a TCP-MD5 key kept in a Secret. */
const bgpPassword = z.strictObject({
  secretKeyRef: z.strictObject({
    name: z.string().regex(DNS_NAME, 'is not a Secret name'),
    key: z.string().regex(/^[-._a-zA-Z0-9]+$/, 'is not a Secret key'),
    // Kubernetes' SecretKeySelector field: a key that cannot be read still gives no session
    optional: z.boolean().optional(),
  }),
});

const bgpConfigurationSpec = z
  .strictObject({
    logSeverityScreen: anyCase(['Trace', 'Debug', 'Info', 'Warning', 'Error', 'Fatal']).default(
      'Info',
    ),
    nodeToNodeMeshEnabled: z.boolean().default(true),
    asNumber: asNumber.default(64512),
    // no default: a node's "node.<name>" configuration without one takes the default's
    listenPort: z.number().int().min(1).max(65535).optional(),
    serviceClusterIPs: z.array(serviceIpBlock).optional(),
    serviceExternalIPs: z.array(serviceIpBlock).optional(),
    serviceLoadBalancerIPs: z.array(serviceIpBlock).optional(),
    serviceLoadBalancerAggregation: z.enum(['Enabled', 'Disabled']).optional(),
    communities: z
      .array(
        z.strictObject({
          name: z.string().regex(DNS_NAME, 'a community name is a lowercase DNS name'),
          value: community,
        }),
      )
      .max(500)
      .optional(),
    prefixAdvertisements: z
      .array(z.strictObject({ cidr, communities: z.array(z.string()).min(1) }))
      .max(500)
      .optional(),
    bindMode: z.enum(['None', 'NodeIP']).optional(),
    nodeMeshMaxRestartTime: duration.optional(),
    /** TCP-MD5 key of the mesh sessions: a key of a Secret the agents can read */
    nodeMeshPassword: bgpPassword.optional(),
    // BIRD's device protocol skips these interfaces; tortie's speaker reads no interfaces
    ignoredInterfaces: z
      .array(
        z
          .string()
          .refine(
            (s) => s !== '*' && /^[a-zA-Z0-9_.*-]{1,15}$/.test(s),
            'is not an interface name',
          ),
      )
      .optional(),
    /** the node's address local workloads peer with (the agent puts it on their interfaces) */
    localWorkloadPeeringIPV4: ipOf(4).optional(),
    localWorkloadPeeringIPV6: ipOf(6).optional(),
    programClusterRoutes: z
      .enum(['Enabled', 'Disabled', 'EnabledIPIPOnly', 'EnabledNoEncapOnly'])
      .optional(),
    ipv4NormalRoutePriority: z.number().int().min(1).max(2147483646).optional(),
    ipv6NormalRoutePriority: z.number().int().min(1).max(2147483646).optional(),
    /** In "default": BFD for every session of every node (mesh, reflectors, BGPPeers). */
    bfd: bfdSettings.optional(),
  })
  .superRefine((s, ctx) => {
    // Calico's CEL rules and validateBGPConfigurationSpec
    if (s.nodeMeshMaxRestartTime !== undefined && !s.nodeToNodeMeshEnabled)
      ctx.addIssue({
        code: 'custom',
        path: ['nodeMeshMaxRestartTime'],
        message: 'nodeMeshMaxRestartTime cannot be set when nodeToNodeMeshEnabled is false',
      });
    if (s.nodeMeshPassword !== undefined && s.nodeToNodeMeshEnabled === false)
      ctx.addIssue({
        code: 'custom',
        path: ['nodeMeshPassword'],
        message: 'nodeMeshPassword cannot be set when nodeToNodeMeshEnabled is false',
      });
    if (s.communities?.length && !s.prefixAdvertisements?.length)
      ctx.addIssue({
        code: 'custom',
        path: ['communities'],
        message: 'communities are defined but not used in prefixAdvertisements',
      });
    const named = new Set((s.communities ?? []).map((c) => c.name));
    s.prefixAdvertisements?.forEach((p, i) =>
      p.communities.forEach((c, j) => {
        if (!named.has(c) && communityProblem(c))
          ctx.addIssue({
            code: 'custom',
            path: ['prefixAdvertisements', i, 'communities', j],
            message: `${JSON.stringify(c)} is neither a community defined in communities nor a community value: ${communityProblem(c)}`,
          });
      }),
    );
  });

/**
 * Calico's BGPPeer peerIP ("IP:port" validator): an address, "a.b.c.d:port" or
 * "[addr]:port" with a port 1-65535; its address, or undefined when it is none of these.
 */
export function peerAddress(peerIP: string): string | undefined {
  const m =
    /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(peerIP) ?? /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(peerIP);
  if (m && !(Number(m[2]) >= 1 && Number(m[2]) <= 65535)) return undefined;
  const addr = m ? m[1] : peerIP;
  return ipVersionOf(addr) ? addr : undefined;
}

const bgpPeerSpec = z
  .strictObject({
    node: z.string().max(253).regex(DNS_NAME, 'is not a node name').optional(),
    nodeSelector: selector.max(1024).optional(),
    peerIP: z.string().max(64).optional(),
    peerSelector: selector.max(1024).optional(),
    // 0 is Calico's "unset" (omitempty): the cluster's AS, or the selected nodes'
    asNumber: peerAsNumber.optional(),
    keepOriginalNextHop: z.boolean().optional(),
    sourceAddress: z.enum(['UseNodeIP', 'None']).optional(),
    maxRestartTime: duration.optional(),
    /** seconds between the KEEPALIVEs we send this peer (BIRD's `keepalive time`) */
    keepaliveTime: duration.optional(),
    // hops, as BIRD's `multihop` under `ttl security on`; 0 is off, as in Calico's confd
    ttlSecurity: z.number().int().min(0).max(255).optional(),
    /** the gateway through which peerIP is reached: the agent routes peerIP/32 via it */
    reachableBy: ip.optional(),
    /** the next hop we send this peer: BGP's default (Auto), always ours, or the original */
    nextHopMode: z.enum(['Auto', 'Self', 'Keep']).optional(),
    /** Manual: a peerSelector's nodes do not peer back unless a BGPPeer of theirs says so */
    reversePeering: z.enum(['Auto', 'Manual']).optional(),
    // each would change who we peer with, as whom, or which routes pass
    /** the AS this node presents to a peerIP peer instead of its own (BIRD's `local as`) */
    localASNumber: asNumber.optional(),
    /** routes whose path holds our AS up to this many times pass (loop check relaxed) */
    numAllowedLocalASNumbers: z.number().int().min(0).max(255).optional(),
    /** BGPFilters applied to this peer's sessions, in order (the first matching rule decides) */
    filters: z.array(z.string().max(253).regex(DNS_NAME, 'is not a BGPFilter name')).optional(),
    /** the node peers with its local workloads this selects (their pod IPs), in asNumber */
    localWorkloadSelector: selector.max(1024).optional(),
    /** BFD for this peer's sessions, field by field over BGPConfiguration default's. */
    bfd: bfdSettings.optional(),
    password: bgpPassword.optional(),
  })
  .superRefine((s, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    // Calico's CEL rules on BGPPeerSpec (a BGPPeer with neither configures no session)
    if (s.peerIP && s.peerSelector) issue('peerIP', 'peerIP and peerSelector cannot both be set');
    if (s.peerSelector && s.asNumber)
      issue('asNumber', "must be empty when peerSelector is set (the selected nodes' AS is used)");
    if (s.node && s.nodeSelector) issue('nodeSelector', 'node and nodeSelector cannot both be set');
    if (s.localWorkloadSelector) {
      if (s.peerIP) issue('peerIP', 'peerIP must be empty when localWorkloadSelector is set');
      if (s.peerSelector)
        issue('peerSelector', 'peerSelector must be empty when localWorkloadSelector is set');
      if (!s.asNumber) issue('asNumber', 'asNumber is required when localWorkloadSelector is set');
    }
    if (s.keepOriginalNextHop && s.nextHopMode !== undefined)
      issue('nextHopMode', 'keepOriginalNextHop and nextHopMode cannot both be set');
    if (s.reachableBy && !s.peerIP)
      issue('reachableBy', 'reachableBy must be empty when peerIP is empty');
    const addr = s.peerIP ? peerAddress(s.peerIP) : undefined;
    if (s.peerIP && !addr) issue('peerIP', `"${s.peerIP}" is not an IP address or address:port`);
    if (
      addr &&
      s.reachableBy &&
      ipVersionOf(s.reachableBy) &&
      ipVersionOf(s.reachableBy) !== ipVersionOf(addr)
    )
      issue('reachableBy', 'reachableBy and peerIP address family mismatched');
  });

const nodeSpec = z.strictObject({
  bgp: z
    .strictObject({
      ipv4Address: cidrOrIpOf(4).optional(),
      ipv6Address: cidrOrIpOf(6).optional(),
      asNumber: asNumber.optional(),
      routeReflectorClusterID: ipOf(4).optional(),
      ipv4IPIPTunnelAddr: ipOf(4).optional(),
    })
    .refine((b) => Object.keys(b).length > 0, 'Spec.BGP should not be empty')
    .optional(),
  addresses: z
    .array(
      z.strictObject({
        address: z.string().superRefine((a, ctx) => {
          const problem = a.includes('/')
            ? strictCidrProblem(a)
            : ipVersionOf(a)
              ? undefined
              : `"${a}" is not an IP address`;
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
        type: z.enum(['InternalIP', 'ExternalIP', 'CalicoNodeIP']).optional(),
      }),
    )
    .optional(),
  ipv4VXLANTunnelAddr: ipOf(4).optional(),
  vxlanTunnelMACAddr: mac.optional(),
  ipv6VXLANTunnelAddr: ipOf(6).optional(),
  vxlanTunnelMACAddrV6: mac.optional(),
  /** Calico's WireGuard interface addresses (tortie has no WireGuard: stored only) */
  wireguard: z
    .strictObject({
      interfaceIPv4Address: ipOf(4).optional(),
      interfaceIPv6Address: ipOf(6).optional(),
    })
    .optional(),
  interfaces: z
    .array(
      z.strictObject({
        name: z.string().regex(DNS_NAME, 'is not an interface name').optional(),
        addresses: z.array(z.string()).optional(),
      }),
    )
    .optional(),
  orchRefs: z
    .array(z.strictObject({ orchestrator: z.string(), nodeName: z.string().optional() }))
    .optional(),
});

const ipNat = z
  .strictObject({ internalIP: ip, externalIP: ip })
  .refine((n) => ipVersionOf(n.internalIP) === ipVersionOf(n.externalIP), {
    message: 'mismatched IP versions',
    path: ['externalIP'],
  });

const workloadEndpointSpec = z
  .strictObject({
    orchestrator: z.string().default('k8s'),
    workload: z.string().optional(),
    node: z.string(),
    containerID: z
      .string()
      .regex(/^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/, 'is not a container ID')
      .optional(),
    pod: z.string().optional(),
    endpoint: z.string().default('eth0'),
    serviceAccountName: z.string().optional(),
    // one address each (Calico: "IP network contains multiple addresses")
    ipNetworks: z
      .array(cidr.refine(isSingleAddress, 'IP network contains multiple addresses'))
      .default([]),
    ipv4Gateway: ip.optional(),
    ipv6Gateway: ip.optional(),
    ipNATs: z.array(ipNat).optional(),
    profiles: z.array(z.string()).default([]),
    interfaceName,
    mac: z.string().optional(),
    ports: z.array(workloadEndpointPort).optional(),
    /** source prefixes this workload may send from besides its own (Calico's spoofing allow) */
    allowSpoofedSourcePrefixes: z.array(ipWithOptionalPrefix).optional(),
  })
  .superRefine((w, ctx) => {
    // each NAT's internal address lies in one of the endpoint's networks
    w.ipNATs?.forEach((n, i) => {
      if (!w.ipNetworks.some((net) => ipInNet(n.internalIP, net)))
        ctx.addIssue({
          code: 'custom',
          path: ['ipNATs', i, 'internalIP'],
          message: 'NAT is not in the endpoint networks',
        });
    });
  });

const hostEndpointSpec = z
  .strictObject({
    node: z.string().min(1, 'a host endpoint names its node'),
    interfaceName: interfaceName.optional(),
    expectedIPs: z.array(ip).optional(),
    profiles: z.array(profileName).optional(),
    ports: z.array(endpointPort).optional(),
  })
  .refine((h) => (h.interfaceName ?? '') !== '' || (h.expectedIPs ?? []).length > 0, {
    message: 'a host endpoint needs an interfaceName or expectedIPs',
    path: ['interfaceName'],
  });

const netsSpec = z.strictObject({ nets: z.array(ipWithOptionalPrefix).default([]) });

const tierSpec = z.strictObject({
  order: z.number().optional(),
  defaultAction: z.enum(['Deny', 'Pass']).default('Deny'),
});

const profileSpec = z.strictObject({
  ingress: z.array(ruleSchema).optional(),
  egress: z.array(ruleSchema).optional(),
  labelsToApply: labels.optional(),
});

const clusterInformationSpec = z.strictObject({
  clusterGUID: z.string().optional(),
  clusterType: z.string().optional(),
  calicoVersion: z.string().optional(),
  datastoreReady: z.boolean().optional(),
});

const ipamBlockSpec = z.strictObject({
  cidr,
  affinity: z.string().optional(),
  allocations: z.array(z.number().int().nullable()),
  unallocated: z.array(z.number().int()),
  attributes: z.array(
    z.strictObject({
      handle_id: z.string().optional(),
      secondary: z.record(z.string(), z.string()).optional(),
    }),
  ),
  sequenceNumber: z.number().int().default(0),
  strictAffinity: z.boolean().default(false),
  deleted: z.boolean().default(false),
});

const blockAffinitySpec = z.strictObject({
  state: z.enum(['pending', 'confirmed', 'pendingDeletion']),
  node: z.string(),
  /** "host", or "virtual" for the load-balancer addresses' blocks (Calico's) */
  type: z.string().optional(),
  cidr,
  // Calico keeps the field for the datastore's own use; it may not be set
  deleted: z
    .boolean()
    .default(false)
    .refine((d) => !d, 'spec.deleted cannot be set to "true"'),
});

const ipamHandleSpec = z.strictObject({
  handleID: z.string(),
  block: z.record(z.string(), z.number().int()),
  deleted: z.boolean().default(false),
});

const ipReservationSpec = z.strictObject({ reservedCIDRs: z.array(ipWithOptionalPrefix) });

// Cluster-wide IPAM settings (one resource named "default", as Calico's).
const ipamConfigurationSpec = z.strictObject({
  strictAffinity: z.boolean().default(false),
  autoAllocateBlocks: z.boolean().default(true),
  maxBlocksPerHost: z.number().int().min(0).default(0),
});

// Kubernetes Services and EndpointSlices in tortie's shape (Calico's KubernetesService and
// KubernetesEndpointSlice): what the service dataplane reads. In etcd mode they are
// written by the lab or a controller; field names are Kubernetes' own.
const serviceProtocol = z.enum(['TCP', 'UDP', 'SCTP']);
const servicePort = z.number().int().min(1).max(65535);
const namedServicePort = z.strictObject({
  name: z.string().optional(),
  protocol: serviceProtocol.default('TCP'),
  port: servicePort,
});
const kubernetesServiceSpec = z.strictObject({
  type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).default('ClusterIP'),
  clusterIP: z.union([ip, z.literal('None'), z.literal('')]).optional(),
  clusterIPs: z.array(z.union([ip, z.literal('None')])).optional(),
  externalIPs: z.array(ip).optional(),
  loadBalancerIP: ip.optional(),
  loadBalancerClass: z.string().optional(),
  selector: labels.optional(),
  ports: z
    .array(
      namedServicePort.extend({
        targetPort: z.union([servicePort, z.string()]).optional(),
        nodePort: servicePort.optional(),
      }),
    )
    .default([]),
  sessionAffinity: z.enum(['None', 'ClientIP']).default('None'),
  sessionAffinityConfig: z
    .strictObject({
      clientIP: z.strictObject({ timeoutSeconds: z.number().int().min(1).max(86400) }).optional(),
    })
    .optional(),
  externalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
  internalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
  healthCheckNodePort: servicePort.optional(),
  /** status.loadBalancer.ingress, kept beside the spec in this shape */
  loadBalancerIngress: z.array(z.strictObject({ ip })).optional(),
  /** status.conditions (e.g. why no load-balancer address could be given) */
  conditions: z
    .array(
      z.strictObject({
        type: z.string(),
        status: z.enum(['True', 'False', 'Unknown']),
        reason: z.string().optional(),
        message: z.string().optional(),
      }),
    )
    .optional(),
});

const kubernetesEndpointSliceSpec = z.strictObject({
  /** the kubernetes.io/service-name label of the slice */
  serviceName: z.string().min(1),
  addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
  ports: z.array(namedServicePort).default([]),
  endpoints: z
    .array(
      z.strictObject({
        addresses: z.array(z.string()).min(1),
        nodeName: z.string().optional(),
        conditions: z
          .strictObject({
            ready: z.boolean().optional(),
            serving: z.boolean().optional(),
            terminating: z.boolean().optional(),
          })
          .optional(),
      }),
    )
    .default([]),
});

/** Every kind: its spec schema, whether it is namespaced, and its plural (for REST and CRDs). */
export const KINDS = {
  IPPool: { spec: ipPoolSpec, namespaced: false, plural: 'ippools' },
  IPReservation: { spec: ipReservationSpec, namespaced: false, plural: 'ipreservations' },
  BGPConfiguration: { spec: bgpConfigurationSpec, namespaced: false, plural: 'bgpconfigurations' },
  BGPPeer: { spec: bgpPeerSpec, namespaced: false, plural: 'bgppeers' },
  BGPFilter: { spec: bgpFilterSpec, namespaced: false, plural: 'bgpfilters' },
  Node: { spec: nodeSpec, namespaced: false, plural: 'nodes' },
  WorkloadEndpoint: { spec: workloadEndpointSpec, namespaced: true, plural: 'workloadendpoints' },
  HostEndpoint: { spec: hostEndpointSpec, namespaced: false, plural: 'hostendpoints' },
  NetworkPolicy: { spec: networkPolicySpec, namespaced: true, plural: 'networkpolicies' },
  GlobalNetworkPolicy: {
    spec: globalNetworkPolicySpec,
    namespaced: false,
    plural: 'globalnetworkpolicies',
  },
  NetworkSet: { spec: netsSpec, namespaced: true, plural: 'networksets' },
  GlobalNetworkSet: { spec: netsSpec, namespaced: false, plural: 'globalnetworksets' },
  Tier: { spec: tierSpec, namespaced: false, plural: 'tiers' },
  FelixConfiguration: {
    spec: felixConfigurationSpec,
    namespaced: false,
    plural: 'felixconfigurations',
  },
  Profile: { spec: profileSpec, namespaced: false, plural: 'profiles' },
  ClusterInformation: {
    spec: clusterInformationSpec,
    namespaced: false,
    plural: 'clusterinformations',
  },
  IPAMBlock: { spec: ipamBlockSpec, namespaced: false, plural: 'ipamblocks' },
  BlockAffinity: { spec: blockAffinitySpec, namespaced: false, plural: 'blockaffinities' },
  IPAMHandle: { spec: ipamHandleSpec, namespaced: false, plural: 'ipamhandles' },
  IPAMConfiguration: {
    spec: ipamConfigurationSpec,
    namespaced: false,
    plural: 'ipamconfigurations',
  },
  KubernetesService: {
    spec: kubernetesServiceSpec,
    namespaced: true,
    plural: 'kubernetesservices',
  },
  KubernetesEndpointSlice: {
    spec: kubernetesEndpointSliceSpec,
    namespaced: true,
    plural: 'kubernetesendpointslices',
  },
} as const;

export type Kind = keyof typeof KINDS;
export type Spec<K extends Kind> = z.output<(typeof KINDS)[K]['spec']>;
export type Metadata = z.output<typeof metadata>;

export interface Resource<K extends Kind = Kind> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: Metadata;
  spec: Spec<K>;
}

export function isKind(k: string): k is Kind {
  return Object.prototype.hasOwnProperty.call(KINDS, k);
}

/** The schema of a whole resource of kind `k` (apiVersion accepts the Calico alias). */
export function resourceSchema<K extends Kind>(k: K) {
  return z.strictObject({
    apiVersion: z.enum([API_VERSION, CALICO_API_VERSION], {
      error: `must be ${API_VERSION} (or ${CALICO_API_VERSION})`,
    }),
    kind: z.literal(k),
    metadata,
    // calicoctl's typed decode gives a missing or null spec the zero value: {}
    spec: z.preprocess((v) => v ?? {}, KINDS[k].spec),
  });
}

export { metadata as metadataSchema };
