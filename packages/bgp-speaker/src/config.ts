// Speaker configuration as the `tortie-bgp` daemon reads it (YAML or JSON) and as the
// node agent builds it: one zod schema, so errors name the field that is wrong.
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseCommunity, parseLargeCommunity, parseStandardCommunity } from './community';
import { parsePrefix } from './prefix';

const ipv4 = z.string().refine((s) => isIP(s) === 4, { message: 'is not an IPv4 address' });
const ip = z.string().refine((s) => isIP(s) !== 0, { message: 'is not an IP address' });
const asn = z.number().int().min(1).max(0xffffffff);
const seconds = z.number().min(0);

const prefix = z.string().transform((s, ctx) => {
  try {
    return parsePrefix(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** A community value parsed by `parse` (community.ts), its error as the issue. */
const communityText = <T>(parse: (s: string) => T) =>
  z.string().transform((s, ctx) => {
    try {
      return parse(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

/** "65000:100" -> 32-bit community value (RFC 1997). */
const community = communityText(parseStandardCommunity);

/** "65000:1:2" -> RFC 8092 large community (three 32-bit numbers). */
const largeCommunity = communityText(parseLargeCommunity);

export const familySchema = z.enum(['ipv4', 'ipv6']);

/**
 * Graceful restart (RFC 4724), like BIRD's `graceful restart` and FRR's
 * `bgp graceful-restart`: we keep a restarting peer's routes (helper), and announce
 * that peers may keep ours while we restart.
 */
export const gracefulRestartSchema = z.object({
  enabled: z.boolean().default(true),
  /** Restart Time we announce: how long peers keep our routes once the session drops. */
  restartTimeS: z.number().int().min(1).max(4095).default(120),
  /** How long a peer that came back may take to send End-of-RIB before its stale routes go. */
  staleTimeS: seconds.default(360),
  /** Announce the Restart State (R) bit on each peer's first session after we start. */
  restarting: z.boolean().default(false),
  /** Announce the Forwarding State (F) bit: our forwarding survived the restart. */
  forwardingPreserved: z.boolean().default(true),
});

/** A peer may override the speaker's graceful-restart settings (or turn it off). */
const peerGracefulRestartSchema = z.object({
  enabled: z.boolean().optional(),
  restartTimeS: z.number().int().min(1).max(4095).optional(),
  staleTimeS: seconds.optional(),
});

/**
 * BFD (RFC 5880/5881 single hop) under the session, like BIRD's `bfd on`: when it goes
 * Down the BGP session is torn down at once instead of after the hold time.
 */
export const peerBfdSchema = z.object({
  /** How often we would like to send while Up (ms). */
  minTxMs: z.number().int().min(1).max(60_000).default(300),
  /** How often we can take packets (ms). */
  minRxMs: z.number().int().min(1).max(60_000).default(300),
  /** Packets missed before the session is declared Down. */
  multiplier: z.number().int().min(1).max(255).default(3),
});

const asn32 = z.number().int().min(0).max(0xffffffff);
/** A route priority (kernel metric units): LOCAL_PREF = 2^31-1 - priority stays positive. */
const routePriority = z.number().int().min(1).max(2147483646);
/** `aa:nn` (16-bit parts) or `aa:nn:mm` (32-bit parts), kept as text. */
const filterCommunity = communityText((s) => (parseCommunity(s), s));

/** One rule of a peer's import or export filter (rib/route-filter.ts, Calico's BGPFilter). */
export const filterRuleSchema = z
  .strictObject({
    cidr: prefix.optional(),
    matchOperator: z.enum(['Equal', 'NotEqual', 'In', 'NotIn']).optional(),
    prefixLength: z
      .strictObject({
        min: z.number().int().min(0).max(128).optional(),
        max: z.number().int().min(0).max(128).optional(),
      })
      .optional(),
    source: z.literal('RemotePeers').optional(),
    interface: z.string().min(1).max(15).optional(),
    peerType: z.enum(['iBGP', 'eBGP']).optional(),
    community: filterCommunity.optional(),
    asPathPrefix: z.array(asn32).min(1).optional(),
    priority: routePriority.optional(),
    action: z.enum(['Accept', 'Reject']),
    operations: z
      .array(
        z.union([
          z.strictObject({ addCommunity: filterCommunity }),
          z.strictObject({ prependASPath: z.array(asn32).min(1).max(10) }),
          z.strictObject({ setPriority: routePriority }),
        ]),
      )
      .optional(),
  })
  .refine((r) => (r.cidr === undefined) === (r.matchOperator === undefined), {
    message: 'cidr and matchOperator must both be set or both be empty',
  })
  .refine((r) => r.prefixLength === undefined || r.cidr !== undefined, {
    message: 'cidr is required when prefixLength is set',
  })
  .refine((r) => !r.operations?.length || r.action === 'Accept', {
    message: 'operations may only be used with action Accept',
  });

/** A peer's filter: the rules IPv4 routes meet, and those IPv6 routes meet. */
export const routeFilterSchema = z.strictObject({
  ipv4: z.array(filterRuleSchema).optional(),
  ipv6: z.array(filterRuleSchema).optional(),
});

export const peerConfigSchema = z
  .object({
    address: ip,
    asn,
    description: z.string().optional(),
    port: z.number().int().min(1).max(65535).default(179),
    localAddress: ip.optional(),
    localPort: z.number().int().min(1).max(65535).optional(),
    passive: z.boolean().default(false),
    holdTime: seconds
      .refine((h) => h === 0 || h >= 3, { message: 'hold time must be 0 or at least 3 seconds' })
      .default(90),
    connectRetryTime: seconds.default(5),
    /** Seconds between KEEPALIVEs (BIRD's `keepalive time`); default a third of the hold time. */
    keepaliveTime: z.number().int().min(1).max(65535).optional(),
    errorWaitTime: z.tuple([seconds, seconds]).default([5, 30]),
    /** Unicast families to negotiate; default: the family of the peer address. */
    families: z.array(familySchema).min(1).optional(),
    maxPrefixes: z.number().int().min(1).optional(),
    routeReflectorClient: z.boolean().default(false),
    nextHopSelf: z.boolean().default(false),
    /** Pass on the next hop a route came with, eBGP too (BIRD's `next hop keep`). */
    nextHopKeep: z.boolean().default(false),
    /** IPv4 subnet shared with an eBGP peer: next hops inside it are passed on (third party). */
    sharedSubnet: z
      .string()
      .regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/, 'an IPv4 CIDR like 10.0.0.0/24')
      .optional(),
    /** TTL of the packets we send (eBGP multihop), 1..255; default: the system's. */
    ttl: z.number().int().min(1).max(255).optional(),
    /** GTSM (RFC 5082): send with TTL 255 and accept only TTL >= 256 - hops (255: any). */
    ttlSecurity: z.number().int().min(1).max(255).optional(),
    /** TCP-MD5 signature key (RFC 2385), as BIRD's and FRR's "password"; Linux takes 80 bytes. */
    password: z
      .string()
      .min(1)
      .refine((k) => Buffer.byteLength(k) <= 80, 'a TCP-MD5 key is at most 80 bytes')
      .optional(),
    gracefulRestart: peerGracefulRestartSchema.optional(),
    /**
     * eBGP: a route whose AS_PATH does not start with the peer's AS is treat-as-withdraw
     * (RFC 4271 §6.3, RFC 7606 §7.2), as FRR's enforce-first-as; off for route servers.
     */
    enforceFirstAs: z.boolean().default(true),
    /**
     * eBGP: routes whose AS_PATH holds our AS up to this many times are accepted (BIRD's
     * "allow local as", Calico's numAllowedLocalASNumbers); default 0, RFC 4271's loop check.
     */
    allowOwnAs: z.number().int().min(0).max(255).optional(),
    /**
     * The AS we are towards this peer instead of the speaker's (BIRD's `local as`,
     * Calico's localASNumber): in our OPEN, prepended to paths sent, in its loop check.
     */
    localAsn: asn.optional(),
    /** Absent: no BFD for this peer. */
    bfd: peerBfdSchema.optional(),
    /** Rules routes from this peer meet; no matching rule: accepted. */
    importFilter: routeFilterSchema.optional(),
    /** Rules routes to this peer meet; no matching rule: the normal export. */
    exportFilter: routeFilterSchema.optional(),
  })
  .refine((p) => p.ttl === undefined || p.ttlSecurity === undefined, {
    message: 'ttl and ttlSecurity cannot both be set (ttlSecurity always sends TTL 255)',
    path: ['ttlSecurity'],
  });

export const originateSchema = z.object({
  prefix,
  communities: z.array(community).optional(),
  largeCommunities: z.array(largeCommunity).optional(),
  med: z.number().int().min(0).max(0xffffffff).optional(),
  localPref: z.number().int().min(0).max(0xffffffff).optional(),
});

export const exportCommunitySchema = z.strictObject({
  cidr: prefix,
  communities: z.array(filterCommunity),
});

export const speakerConfigSchema = z.object({
  asn,
  routerId: ipv4,
  /** Route-reflector cluster id; set it to make this speaker reflect for its RR clients. */
  clusterId: ipv4.optional(),
  listen: z
    .union([
      z.literal(false),
      z.object({
        address: ip.default('::'),
        port: z.number().int().min(0).max(65535).default(179),
      }),
    ])
    .default({ address: '::', port: 179 }),
  /** Our next hop per family for next-hop-self (eBGP, locally originated routes). */
  nextHop: z.object({ ipv4: ipv4.optional(), ipv6: ip.optional() }).default({}),
  peers: z.array(peerConfigSchema).default([]),
  originate: z.array(originateSchema).default([]),
  /**
   * Communities added to every route exported to any peer whose prefix is inside `cidr`
   * (equal or more specific), after the peer's export filter and only when none of its
   * rules decided: Calico's BGPConfiguration prefixAdvertisements, as confd's BIRD runs
   * apply_communities() in calico_export_to_bgp_peers after the BGPFilter functions.
   */
  exportCommunities: z.array(exportCommunitySchema).default([]),
  /** Off when absent (we still announce End-of-RIB support). */
  gracefulRestart: gracefulRestartSchema.optional(),
  controlSocket: z.string().optional(),
  logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
});

export type PeerConfig = z.infer<typeof peerConfigSchema>;
export type PeerBfdConfig = z.infer<typeof peerBfdSchema>;
export type PeerBfdConfigInput = z.input<typeof peerBfdSchema>;
export type PeerConfigInput = z.input<typeof peerConfigSchema>;
export type SpeakerConfig = z.infer<typeof speakerConfigSchema>;
export type SpeakerConfigInput = z.input<typeof speakerConfigSchema>;
export type OriginateConfig = z.infer<typeof originateSchema>;
export type GracefulRestartConfig = z.infer<typeof gracefulRestartSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid BGP speaker configuration:\n  ${problems.join('\n  ')}`);
  }
}

/** Validates export community rules (speaker config `exportCommunities`). */
export function parseExportCommunities(doc: unknown): SpeakerConfig['exportCommunities'] {
  const r = z.array(exportCommunitySchema).safeParse(doc);
  if (!r.success) {
    throw new ConfigError(
      r.error.issues.map((i) => `exportCommunities.${i.path.join('.')}: ${i.message}`),
    );
  }
  return r.data;
}

/** Validates a parsed config document; every problem is reported with its field path. */
export function parseSpeakerConfig(doc: unknown): SpeakerConfig {
  const r = speakerConfigSchema.safeParse(doc);
  if (!r.success) {
    throw new ConfigError(
      r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
    );
  }
  return r.data;
}
