// FelixConfiguration as projectcalico.org/v3 defines it: every field of Calico's
// FelixConfigurationSpec (api/pkg/apis/projectcalico/v3/felixconfig.go) with the
// constraint its CRD schema and libcalico-go's validator put on it, so a Calico manifest
// applies unchanged and a typo or a bad value is refused at apply time, naming the field,
// instead of being stored and ignored. tortie reads only some of them (felix's config.ts
// and acl-config.ts); the rest are accepted as Calico accepts them.
import { z } from 'zod';
import { cidrProblem, parseCidr } from '@tortie/netaddr';
import { anyCase, duration, goDurationSeconds, port, selector } from './fields';

/** Calico's Duration fields: "90s", "1m30s", "1.5h" (the CRD's pattern), and a Go duration. */
const felixDuration = z
  .string()
  .refine((s) => /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/.test(s) && goDurationSeconds(s) !== undefined, {
    error: (i) => `${JSON.stringify(i.input)} is not a duration (for example 90s, 1m30s, 500ms)`,
  });

/** A regular expression (Go's RE2; inline flags such as "(?i)" are taken too). */
const regexpText = z.string().refine(
  (s) => {
    try {
      new RegExp(s.replace(/\(\?[imsU]+\)/g, ''));
      return true;
    } catch {
      return false;
    }
  },
  { error: (i) => `${JSON.stringify(i.input)} is not a valid regular expression` },
);

const interfaceName = z.string().refine((s) => s === '*' || /^[a-zA-Z0-9_.-]{1,15}$/.test(s), {
  error: (i) => `${JSON.stringify(i.input)} is not an interface name (1-15 of a-z A-Z 0-9 _ . -)`,
});
const ifaceFilter = z.string().regex(/^[a-zA-Z0-9:._+-]{1,15}$/, {
  error: (i) => `${JSON.stringify(i.input)} is not an interface name or prefix ("cali+")`,
});
const prometheusHost = z.string().regex(/^[a-zA-Z0-9:._+-]{1,64}$/, {
  error: (i) => `${JSON.stringify(i.input)} is not a host name or address`,
});

function addressCheck(version: 4 | 6 | undefined, allowPrefix: boolean) {
  return (s: string, ctx: z.RefinementCtx) => {
    const problem =
      cidrProblem(s) ?? (!allowPrefix && s.includes('/') ? `"${s}" is not an address` : undefined);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
    else if (version && parseCidr(s).version !== version)
      ctx.addIssue({ code: 'custom', message: `"${s}" is not an IPv${version} address` });
  };
}
const cidrOrIp = z.string().superRefine(addressCheck(undefined, true));
const ipv4CidrOrIp = z.string().superRefine(addressCheck(4, true));
const ipv4OrEmpty = z.string().superRefine((s, ctx) => {
  if (s !== '') addressCheck(4, false)(s, ctx);
});
const ipv6OrEmpty = z.string().superRefine((s, ctx) => {
  if (s !== '') addressCheck(6, false)(s, ctx);
});

// the region names a Kubernetes namespace "openstack-region-<region>" (a DNS label)
const openstackRegion = z
  .string()
  .max(63 - 'openstack-region-'.length, 'is too long')
  .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$/, 'must be a valid DNS label');

// Calico's ProtoPort: Felix reads the protocol without regard to case (its docs and
// defaults write "tcp:22"), and an absent one is TCP "for backwards compatibility"
export const protoPort = z.strictObject({
  protocol: z
    .string()
    .default('TCP')
    .transform((p, ctx) => {
      const up = p.toUpperCase();
      if (up === 'TCP' || up === 'UDP' || up === 'SCTP') return up;
      ctx.addIssue({ code: 'custom', message: "protocol must be 'TCP' or 'UDP' or 'SCTP'" });
      return z.NEVER;
    }),
  port: z.number().int().min(0).max(65535),
  net: z.string().superRefine(addressCheck(undefined, true)).optional(),
});

/** A port or a "from:to" range; not a named port (node port ranges, NAT port ranges). */
const numericPort = port.refine((p) => typeof p === 'number' || /^\d+(:\d+)?$/.test(p), {
  error: (i) => `${JSON.stringify(i.input)}: a named port is not allowed here`,
});

const healthTimeoutOverride = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_ -]+$/, 'name should match ^[a-zA-Z0-9_ -]+$'),
  timeout: duration.refine((d) => (goDurationSeconds(d) ?? 0) >= 0, 'should not be negative'),
});

const conntrackTimeout = z
  .string()
  .regex(/^(([0-9]*(\.[0-9]*)?(ms|s|h|m|us)+)+|Auto)$/, 'is not a duration or "Auto"');
const bpfConntrackTimeouts = z.strictObject({
  creationGracePeriod: conntrackTimeout.optional(),
  tcpSynSent: conntrackTimeout.optional(),
  tcpEstablished: conntrackTimeout.optional(),
  tcpFinsSeen: conntrackTimeout.optional(),
  tcpResetSeen: conntrackTimeout.optional(),
  udpTimeout: conntrackTimeout.optional(),
  genericTimeout: conntrackTimeout.optional(),
  icmpTimeout: conntrackTimeout.optional(),
});

// numorstring.DSCP: 0-63 or a name (RFC 4594)
const DSCP_NAMES = ['DF', 'EF', 'CS0', 'CS1', 'CS2', 'CS3', 'CS4', 'CS5', 'CS6'].concat([
  'AF11',
  'AF12',
  'AF13',
  'AF21',
  'AF22',
  'AF23',
  'AF31',
  'AF32',
  'AF33',
  'AF41',
  'AF42',
  'AF43',
]);
const dscp = z.union([z.number().int().min(0).max(63), z.enum(DSCP_NAMES)]);

// the one routing table range of old (within 1..250), or the list that replaced it
const routeTableRange = z
  .strictObject({ min: z.number().int(), max: z.number().int() })
  .refine((r) => r.min >= 1 && r.max >= r.min && r.max <= 250, {
    message: 'must be a range of route table indices within 1..250',
  });
const routeTableIdRange = z
  .strictObject({ min: z.number().int(), max: z.number().int() })
  .superRefine((r, ctx) => {
    if (r.min < 1) ctx.addIssue({ code: 'custom', message: 'cannot target indices < 1' });
    if (r.min > r.max)
      ctx.addIssue({ code: 'custom', message: 'min value cannot be greater than max value' });
    if (r.max > 0xffffffff) ctx.addIssue({ code: 'custom', message: 'max index too high' });
  });
const routeTableRanges = z
  .array(routeTableIdRange)
  .refine((rs) => rs.reduce((n, r) => n + r.max - r.min + 1, 0) <= 0xffff, {
    message: 'targets too many tables',
  });

const calicoFields = {
  nodeSelector: selector.max(1024),
  useInternalDataplaneDriver: z.boolean(),
  dataplaneDriver: z.string(),
  dataplaneWatchdogTimeout: duration,
  ipv6Support: z.boolean(),
  routeRefreshInterval: felixDuration,
  interfaceRefreshInterval: felixDuration,
  iptablesRefreshInterval: felixDuration,
  iptablesPostWriteCheckInterval: felixDuration,
  iptablesLockProbeInterval: felixDuration,
  featureDetectOverride: z
    .string()
    .regex(/^([a-zA-Z0-9-_]+=(true|false|),)*([a-zA-Z0-9-_]+=(true|false|))?$/),
  featureGates: z.string().regex(/^([a-zA-Z0-9-_]+=([^=]+),)*([a-zA-Z0-9-_]+=([^=]+))?$/),
  ipsetsRefreshInterval: felixDuration,
  maxIpsetSize: z.number().int(),
  iptablesBackend: anyCase(['Auto', 'Legacy', 'NFT']),
  xdpRefreshInterval: felixDuration,
  netlinkTimeout: felixDuration,
  metadataAddr: z.string(),
  metadataPort: z.number().int(),
  openstackRegion: openstackRegion,
  interfacePrefix: z.string(),
  interfaceExclude: z.string(),
  chainInsertMode: anyCase(['Insert', 'Append']),
  defaultEndpointToHostAction: anyCase(['Drop', 'Accept', 'Return']),
  iptablesFilterAllowAction: anyCase(['Accept', 'Return']),
  iptablesMangleAllowAction: anyCase(['Accept', 'Return']),
  iptablesFilterDenyAction: anyCase(['Drop', 'Reject']),
  logPrefix: z.string().regex(/^([a-zA-Z0-9%: /_-])*$/),
  logActionRateLimit: z.string().regex(/^[1-9]\d{0,3}\/(?:second|minute|hour|day)$/),
  logActionRateLimitBurst: z.number().int().min(0).max(9999),
  logFilePath: z.string(),
  logSeverityFile: anyCase(['Trace', 'Debug', 'Info', 'Warning', 'Error', 'Fatal']),
  logSeverityScreen: anyCase(['Trace', 'Debug', 'Info', 'Warning', 'Error', 'Fatal']),
  logSeveritySys: anyCase(['Trace', 'Debug', 'Info', 'Warning', 'Error', 'Fatal']),
  logDebugFilenameRegex: regexpText,
  ipipEnabled: z.boolean(),
  ipipMTU: z.number().int(),
  vxlanEnabled: z.boolean(),
  vxlanMTU: z.number().int(),
  vxlanMTUV6: z.number().int(),
  vxlanPort: z.number().int(),
  vxlanVNI: z.number().int(),
  allowVXLANPacketsFromWorkloads: z.boolean(),
  allowIPIPPacketsFromWorkloads: z.boolean(),
  reportingInterval: felixDuration,
  reportingTTL: felixDuration,
  endpointReportingEnabled: z.boolean(),
  endpointReportingDelay: felixDuration,
  endpointStatusPathPrefix: z.string(),
  iptablesMarkMask: z.number().int().min(0).max(4294967295),
  disableConntrackInvalidCheck: z.boolean(),
  healthEnabled: z.boolean(),
  healthHost: z.string(),
  healthPort: z.number().int(),
  healthTimeoutOverrides: z.array(healthTimeoutOverride),
  prometheusMetricsEnabled: z.boolean(),
  prometheusMetricsHost: prometheusHost,
  prometheusMetricsPort: z.number().int(),
  prometheusGoMetricsEnabled: z.boolean(),
  prometheusProcessMetricsEnabled: z.boolean(),
  prometheusWireGuardMetricsEnabled: z.boolean(),
  prometheusMetricsCAFile: z.string(),
  prometheusMetricsCertFile: z.string(),
  prometheusMetricsKeyFile: z.string(),
  prometheusMetricsClientAuth: z.enum([
    'RequireAndVerifyClientCert',
    'RequireAnyClientCert',
    'VerifyClientCertIfGiven',
    'NoClientCert',
  ]),
  failsafeInboundHostPorts: z.array(protoPort),
  failsafeOutboundHostPorts: z.array(protoPort),
  kubeNodePortRanges: z.array(numericPort).max(7, 'node port ranges list is too long (max 7)'),
  policySyncPathPrefix: z.string(),
  usageReportingEnabled: z.boolean(),
  usageReportingInitialDelay: felixDuration,
  usageReportingInterval: felixDuration,
  natPortRange: numericPort,
  natOutgoingAddress: ipv4OrEmpty,
  natOutgoingExclusions: z.enum(['IPPoolsOnly', 'IPPoolsAndHostIPs']),
  deviceRouteSourceAddress: ipv4OrEmpty,
  deviceRouteSourceAddressIPv6: ipv6OrEmpty,
  deviceRouteProtocol: z.number().int(),
  removeExternalRoutes: z.boolean(),
  programClusterRoutes: z.enum(['Enabled', 'Disabled', 'EnabledIPIPOnly', 'EnabledNoEncapOnly']),
  ipForwarding: z.enum(['Enabled', 'Disabled']),
  externalNodesList: z.array(ipv4CidrOrIp),
  debugMemoryProfilePath: z.string(),
  debugDisableLogDropping: z.boolean(),
  debugSimulateCalcGraphHangAfter: felixDuration,
  debugSimulateDataplaneHangAfter: felixDuration,
  debugSimulateDataplaneApplyDelay: felixDuration,
  debugHost: z.string(),
  debugPort: z.number().int().min(0).max(65535),
  iptablesNATOutgoingInterfaceFilter: ifaceFilter,
  sidecarAccelerationEnabled: z.boolean(),
  xdpEnabled: z.boolean(),
  genericXDPEnabled: z.boolean(),
  nftablesMode: z.enum(['Disabled', 'Enabled', 'Auto']),
  nftablesFlowTableOffload: z.enum(['All', 'Disabled']),
  nftablesFlowTableDataIfacePattern: regexpText,
  nftablesRefreshInterval: duration,
  nftablesFilterAllowAction: anyCase(['Accept', 'Return']),
  nftablesMangleAllowAction: anyCase(['Accept', 'Return']),
  nftablesFilterDenyAction: anyCase(['Drop', 'Reject']),
  nftablesMarkMask: z.number().int().min(0).max(4294967295),
  bpfEnabled: z.boolean(),
  bpfOverlayHostSourceIP: z.enum(['TunnelAddress', 'HostAddress']),
  bpfDisableUnprivileged: z.boolean(),
  bpfJITHardening: z.enum(['Auto', 'Strict']),
  bpfLogLevel: anyCase(['Off', 'Info', 'Debug']),
  bpfConntrackLogLevel: z.enum(['Off', 'Debug']),
  bpfConntrackMode: z.enum(['Auto', 'Userspace', 'BPFProgram']),
  bpfConntrackTimeouts: bpfConntrackTimeouts,
  bpfIPFragTimeout: felixDuration,
  bpfLogFilters: z.record(interfaceName, z.string()),
  bpfCTLBLogFilter: z.string(),
  bpfDataIfacePattern: regexpText,
  bpfL3IfacePattern: regexpText,
  bpfConnectTimeLoadBalancingEnabled: z.boolean(),
  bpfConnectTimeLoadBalancing: z.enum(['TCP', 'Enabled', 'Disabled']),
  bpfHostNetworkedNATWithoutCTLB: z.enum(['Enabled', 'Disabled']),
  bpfExternalServiceMode: anyCase(['Tunnel', 'DSR']),
  bpfDSROptoutCIDRs: z.array(cidrOrIp),
  bpfExtToServiceConnmark: z.number().int().min(0).max(4294967295),
  bpfKubeProxyIptablesCleanupEnabled: z.boolean(),
  bpfKubeProxyMinSyncPeriod: felixDuration,
  bpfKubeProxyHealthzPort: z.number().int().min(0).max(65535),
  bpfPSNATPorts: numericPort,
  bpfMapSizeNATFrontend: z.number().int(),
  bpfMapSizeNATBackend: z.number().int(),
  bpfMapSizeNATAffinity: z.number().int(),
  bpfMapSizeRoute: z.number().int(),
  bpfMapSizeConntrack: z.number().int(),
  bpfMapSizePerCpuConntrack: z.number().int(),
  bpfMapSizeConntrackScaling: anyCase(['Disabled', 'DoubleIfFull']),
  bpfMapSizeConntrackCleanupQueue: z.number().int().min(1),
  bpfMapSizeIPSets: z.number().int(),
  bpfMapSizeIfState: z.number().int(),
  bpfHostConntrackBypass: z.boolean(),
  bpfIPFragmentReassemblyEnabled: z.boolean(),
  bpfEnforceRPF: anyCase(['Disabled', 'Strict', 'Loose']),
  bpfPolicyDebugEnabled: z.boolean(),
  bpfForceTrackPacketsFromIfaces: z.array(ifaceFilter),
  bpfDisableGROForIfaces: regexpText,
  bpfExcludeCIDRsFromNAT: z.array(cidrOrIp),
  bpfExportBufferSizeMB: z.number().int(),
  istioAmbientMode: z.enum(['Enabled', 'Disabled']),
  istioDSCPMark: dscp,
  cgroupV2Path: z.string(),
  flowLogsPolicyEvaluationMode: z.enum(['None', 'Continuous']),
  bpfRedirectToPeer: z.enum(['Enabled', 'Disabled']),
  bpfAttachType: z.enum(['TC', 'TCX', 'Netkit']),
  flowLogsFlushInterval: felixDuration,
  flowLogsCollectorDebugTrace: z.boolean(),
  flowLogsGoldmaneServer: z.string(),
  flowLogsLocalReporter: z.enum(['Disabled', 'Enabled']),
  bpfProfiling: z.enum(['Enabled', 'Disabled']),
  routeSource: anyCase(['WorkloadIPs', 'CalicoIPAM']),
  routeTableRanges: routeTableRanges,
  routeTableRange: routeTableRange,
  routeSyncDisabled: z.boolean(),
  ipv4NormalRoutePriority: z.number().int().min(1).max(2147483646),
  ipv4ElevatedRoutePriority: z.number().int().min(1).max(2147483646),
  ipv6NormalRoutePriority: z.number().int().min(1).max(2147483646),
  ipv6ElevatedRoutePriority: z.number().int().min(1).max(2147483646),
  liveMigrationRouteConvergenceTime: felixDuration,
  wireguardEnabled: z.boolean(),
  wireguardEnabledV6: z.boolean(),
  wireguardThreadingEnabled: z.boolean(),
  wireguardListeningPort: z.number().int().min(1).max(65535),
  wireguardListeningPortV6: z.number().int().min(1).max(65535),
  wireguardRoutingRulePriority: z.number().int().min(1).max(32765),
  wireguardInterfaceName: interfaceName,
  wireguardInterfaceNameV6: interfaceName,
  wireguardMTU: z.number().int(),
  wireguardMTUV6: z.number().int(),
  wireguardHostEncryptionEnabled: z.boolean(),
  wireguardKeepAlive: felixDuration,
  awsSrcDstCheck: z.enum(['DoNothing', 'Enable', 'Disable']),
  serviceLoopPrevention: z.enum(['Drop', 'Reject', 'Disabled']),
  workloadSourceSpoofing: z.enum(['Disabled', 'Any']),
  mtuIfacePattern: regexpText,
  floatingIPs: z.enum(['Enabled', 'Disabled']),
  localSubnetL2Reachability: z.enum(['Disabled', 'PodsAndLoadBalancers']),
  localSubnetL2ReachabilityRefreshInterval: duration,
  windowsManageFirewallRules: z.enum(['Enabled', 'Disabled']),
  goGCThreshold: z.number().int().min(-1),
  goMemoryLimitMB: z.number().int().min(-1),
  goMaxProcs: z.number().int().min(-1),
  requireMTUFile: z.boolean(),
  bpfMaglevMaxEndpointsPerService: z.number().int().min(1).max(3000),
  bpfMaglevMaxServices: z.number().int().min(1).max(3000),
};

/** tortie's own settings, beside Calico's. */
const tortieFields = {
  /** program Services with nftables (the kube-proxy replacement, felix's dataplane/services) */
  serviceProxyEnabled: z.boolean(),
};

export const felixConfigurationSpec = z
  .strictObject(
    Object.fromEntries(
      Object.entries({ ...calicoFields, ...tortieFields }).map(([k, v]) => [k, v.optional()]),
    ) as {
      [K in keyof typeof calicoFields | keyof typeof tortieFields]: z.ZodOptional<
        (typeof calicoFields & typeof tortieFields)[K]
      >;
    },
  )
  .refine((s) => s.routeTableRange === undefined || s.routeTableRanges === undefined, {
    message: 'routeTableRange and routeTableRanges cannot both be set',
    path: ['routeTableRange'],
  });

/** Calico's CEL rule on the resource: only a selector-scoped FelixConfiguration has one. */
export function felixConfigurationProblem(name: string, spec: { nodeSelector?: string }) {
  if ((name === 'default' || name.startsWith('node.')) && spec.nodeSelector !== undefined)
    return "nodeSelector must not be set on the 'default' or per-node ('node.*') FelixConfiguration";
  return undefined;
}
