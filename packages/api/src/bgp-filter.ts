// BGPFilter as projectcalico.org/v3 defines it (api/pkg/apis/projectcalico/v3/bgpfilter.go):
// ordered import and export rules per family, named by BGPPeers' `filters`. The match
// fields tortie's speaker evaluates (cidr with matchOperator and prefixLength, source,
// interface, peerType) and the action are accepted with Calico's rules (CRD and CEL
// rules, libcalico-go's bgpFilterInterface/prefix length validators); the newer match
// fields and operations (communities, asPathPrefix, priority, operations) would change
// which routes pass or how, so they are refused rather than ignored.
import { z } from 'zod';
import { cidrProblem, ipVersionOf } from '@tortie/netaddr';
import { unsupported } from './fields';

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
      communities: unsupported('matching BGP communities in filters (communities)'),
      asPathPrefix: unsupported('matching AS paths in filters (asPathPrefix)'),
      priority: unsupported('matching route priorities in filters (priority)'),
      action: z.enum(['Accept', 'Reject']),
      operations: unsupported('route operations in filters (operations)'),
    })
    .superRefine((r, ctx) => {
      const issue = (path: string, message: string) =>
        ctx.addIssue({ code: 'custom', path: [path], message });
      // Calico's CEL rules on BGPFilterRuleV4/V6
      if (!!r.cidr !== !!r.matchOperator)
        issue('matchOperator', 'cidr and matchOperator must both be set or both be empty');
      if (r.prefixLength && !r.cidr)
        issue('prefixLength', 'cidr is required when prefixLength is set');
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
