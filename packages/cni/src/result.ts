// The ADD result (CNI spec "Success" result) and its older-version shape. The schema
// checks the spec's fields: tests validate every result the binary prints against it.
import { z } from 'zod';

const mac = z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);

export const resultSchema = z.strictObject({
  cniVersion: z.string(),
  interfaces: z
    .array(
      z.strictObject({ name: z.string(), mac: mac.optional(), sandbox: z.string().optional() }),
    )
    .optional(),
  ips: z.array(
    z.strictObject({
      // 0.3.x / 0.4.0 only
      version: z.enum(['4', '6']).optional(),
      address: z.string().regex(/^[0-9a-f.:]+\/\d+$/),
      gateway: z.string().optional(),
      interface: z.number().int().min(0).optional(),
    }),
  ),
  routes: z.array(z.strictObject({ dst: z.string(), gw: z.string().optional() })).optional(),
  dns: z
    .strictObject({
      nameservers: z.array(z.string()).optional(),
      domain: z.string().optional(),
      search: z.array(z.string()).optional(),
      options: z.array(z.string()).optional(),
    })
    .optional(),
});

export type CniResult = z.output<typeof resultSchema>;

export const POD_GATEWAY_V4 = '169.254.1.1';
/** Link-local address of the host side's ee:ee:ee:ee:ee:ee (EUI-64). */
export const POD_GATEWAY_V6 = 'fe80::ecee:eeff:feee:eeee';
export const HOST_SIDE_MAC = 'ee:ee:ee:ee:ee:ee';

export interface Attachment {
  hostIface: string;
  podIface: string;
  podMac: string;
  netns: string;
  ipv4: string[];
  ipv6: string[];
}

export function buildResult(cniVersion: string, a: Attachment): CniResult {
  const legacy = !cniVersion.startsWith('1.');
  const ips = [
    ...a.ipv4.map((ip) => ({
      ...(legacy ? { version: '4' as const } : {}),
      address: `${ip}/32`,
      interface: 1,
    })),
    ...a.ipv6.map((ip) => ({
      ...(legacy ? { version: '6' as const } : {}),
      address: `${ip}/128`,
      interface: 1,
    })),
  ];
  const routes = [
    ...(a.ipv4.length ? [{ dst: '0.0.0.0/0', gw: POD_GATEWAY_V4 }] : []),
    ...(a.ipv6.length ? [{ dst: '::/0', gw: POD_GATEWAY_V6 }] : []),
  ];
  return {
    cniVersion,
    interfaces: [
      { name: a.hostIface, mac: HOST_SIDE_MAC },
      { name: a.podIface, mac: a.podMac, sandbox: a.netns },
    ],
    ips,
    routes,
    dns: {},
  };
}

/** The pod addresses recorded in a previous result (CHECK, DEL). */
export function addressesOf(prev: unknown): { ipv4: string[]; ipv6: string[] } {
  const r = resultSchema.safeParse(prev);
  if (!r.success) return { ipv4: [], ipv6: [] };
  const ips = r.data.ips.map((i) => i.address.split('/')[0]);
  return { ipv4: ips.filter((i) => !i.includes(':')), ipv6: ips.filter((i) => i.includes(':')) };
}
