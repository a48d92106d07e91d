// A route reflector's configuration: its cluster id, its clients (reflected to and
// from, RFC 4456 §6) and ordinary peers. It becomes a speaker configuration; the
// reflection rules themselves live in the speaker's export policy.
import { z } from 'zod';
import { isIP } from 'node:net';
import { parseSpeakerConfig, type SpeakerConfig, type PeerConfigInput } from '@tortie/bgp-speaker';

const ipv4 = z.string().refine((s) => isIP(s) === 4, { message: 'is not an IPv4 address' });

const neighbor = z.looseObject({ address: z.string(), asn: z.number().int().optional() });

export const reflectorConfigSchema = z.object({
  asn: z.number().int().min(1).max(0xffffffff),
  routerId: ipv4,
  /** RFC 4456 cluster id; redundant reflectors of one cluster share it. */
  clusterId: ipv4,
  listen: z
    .union([
      z.literal(false),
      z.object({ address: z.string().default('::'), port: z.number().int().default(179) }),
    ])
    .optional(),
  nextHop: z.object({ ipv4: z.string().optional(), ipv6: z.string().optional() }).optional(),
  /** Route-reflector clients: iBGP peers in our AS whose routes we reflect. */
  clients: z.array(neighbor).default([]),
  /** Other peers: non-client iBGP (e.g. other reflectors) or eBGP. */
  peers: z.array(neighbor).default([]),
  controlSocket: z.string().optional(),
  logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
});

export type ReflectorConfigInput = z.input<typeof reflectorConfigSchema>;

/** The speaker configuration that makes a BgpSpeaker this reflector. */
export function reflectorSpeakerConfig(input: unknown): SpeakerConfig {
  const r = reflectorConfigSchema.safeParse(input);
  if (!r.success) {
    throw new Error(
      `invalid route reflector configuration:\n  ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('\n  ')}`,
    );
  }
  const c = r.data;
  const peers: PeerConfigInput[] = [
    ...c.clients.map(
      (n) => ({ ...n, asn: n.asn ?? c.asn, routeReflectorClient: true }) as PeerConfigInput,
    ),
    ...c.peers.map((n) => ({ ...n, asn: n.asn ?? c.asn }) as PeerConfigInput),
  ];
  for (const p of c.clients) {
    if (p.asn !== undefined && p.asn !== c.asn) {
      throw new Error(
        `invalid route reflector configuration:\n  clients: ${p.address} is in AS ${p.asn}; clients must be iBGP (AS ${c.asn})`,
      );
    }
  }
  return parseSpeakerConfig({
    asn: c.asn,
    routerId: c.routerId,
    clusterId: c.clusterId,
    ...(c.listen !== undefined ? { listen: c.listen } : {}),
    ...(c.nextHop ? { nextHop: c.nextHop } : {}),
    peers,
    controlSocket: c.controlSocket,
    logLevel: c.logLevel,
  });
}
