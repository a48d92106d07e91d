// BGPFilter as projectcalico.org/v3 defines it (api/pkg/apis/projectcalico/v3/bgpfilter.go):
// ordered import and export rules per family, named by BGPPeers' `filters`. Every field
// Calico has is accepted with Calico's rules (CRD schema and CEL rules, libcalico-go's
// bgpFilterInterface/prefix length validators): the matches (cidr with matchOperator and
// prefixLength, source, interface, peerType, communities, asPathPrefix, priority), the
// action, and the operations an Accept rule applies (addCommunity, prependASPath,
// setPriority). tortie's speaker evaluates them as confd's BIRD filter functions do.
import { z } from 'zod';
import { cidrProblem, ipVersionOf } from '@tortie/netaddr';
import { pathAsNumber } from './fields';

/** Decimal without leading zeros, at most `max` (Calico's BGPCommunityValue pattern). */
function decimalUpTo(s: string, max: number): boolean {
  return /^(0|[1-9][0-9]*)$/.test(s) && s.length <= 10 && Number(s) <= max;
}

/** `aa:nn` (each 0-65535) or `aa:nn:mm` (each 0-4294967295), as Calico's CRD pattern. */
export function communityValueProblem(s: string): string | undefined {
  const parts = s.split(':');
  const ok =
    s.length <= 32 &&
    ((parts.length === 2 && parts.every((p) => decimalUpTo(p, 0xffff))) ||
      (parts.length === 3 && parts.every((p) => decimalUpTo(p, 0xffffffff))));
  return ok
    ? undefined
    : `${JSON.stringify(s)} is not a BGP community (aa:nn with 16-bit parts, or aa:nn:mm with 32-bit parts)`;
}

const communityValue = z.string().superRefine((s, ctx) => {
  const problem = communityValueProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

// FelixConfiguration's ...RoutePriority range: 1 to 2^31-2 (confd maps it to
// bgp_local_pref = 2^31-1 - priority, which must stay positive)
const priority = z.number().int().min(1).max(2147483646);

/** One route modification: exactly one field (CRD minProperties/maxProperties 1). */
const operation = z
  .strictObject({
    addCommunity: z.strictObject({ value: communityValue }).optional(),
    prependASPath: z.strictObject({ prefix: z.array(pathAsNumber).min(1).max(10) }).optional(),
    setPriority: z.strictObject({ value: priority }).optional(),
  })
  .refine((o) => Object.values(o).filter((v) => v !== undefined).length === 1, {
    message: 'set exactly one of addCommunity, prependASPath, setPriority',
  });

function ruleSchema(version: 4 | 6) {
  const bits = version === 4 ? 32 : 128;
  const length = z.number().int().min(0).max(bits);
  return z
    .strictObject({
      cidr: z
        .string()
        .max(version === 4 ? 18 : 43)
        .refine(
          (s) => !cidrProblem(s) && s.includes('/') && ipVersionOf(s.split('/')[0]) === version,
          {
            error: (i) => `${JSON.stringify(i.input)} is not an IPv${version} CIDR`,
          },
        )
        .optional(),
      prefixLength: z.strictObject({ min: length.optional(), max: length.optional() }).optional(),
      source: z.enum(['RemotePeers']).optional(),
      interface: z
        .string()
        .regex(
          /^[a-zA-Z0-9_.*-]{1,15}$/,
          'is not an interface pattern (1-15 of a-z A-Z 0-9 _ . - *)',
        )
        .optional(),
      matchOperator: z.enum(['Equal', 'NotEqual', 'In', 'NotIn']).optional(),
      peerType: z.enum(['eBGP', 'iBGP']).optional(),
      // exactly one value today (CRD minItems/maxItems 1)
      communities: z.strictObject({ values: z.array(communityValue).min(1).max(1) }).optional(),
      asPathPrefix: z.array(pathAsNumber).optional(),
      priority: priority.optional(),
      action: z.enum(['Accept', 'Reject']),
      operations: z.array(operation).min(1).max(10).optional(),
    })
    .superRefine((r, ctx) => {
      const issue = (path: string, message: string) =>
        ctx.addIssue({ code: 'custom', path: [path], message });
      // Calico's CEL rules on BGPFilterRuleV4/V6
      if (!!r.cidr !== !!r.matchOperator)
        issue('matchOperator', 'cidr and matchOperator must both be set or both be empty');
      if (r.prefixLength && !r.cidr)
        issue('prefixLength', 'cidr is required when prefixLength is set');
      if (r.operations?.length && r.action !== 'Accept')
        issue('operations', 'operations may only be used with action Accept');
    });
}

export const bgpFilterRuleV4 = ruleSchema(4);
export const bgpFilterRuleV6 = ruleSchema(6);

export const bgpFilterSpec = z.strictObject({
  exportV4: z.array(bgpFilterRuleV4).optional(),
  importV4: z.array(bgpFilterRuleV4).optional(),
  exportV6: z.array(bgpFilterRuleV6).optional(),
  importV6: z.array(bgpFilterRuleV6).optional(),
});
