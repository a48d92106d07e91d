// Field types shared by the resource schemas, each validating with a message that
// names the value ("\"10.0.0.0/33\" is not a valid CIDR").
import { z } from 'zod';
import { cidrProblem, ipVersionOf } from '@tortie/netaddr';
import { parseSelector, SelectorError } from '@tortie/policy';

export const cidr = z.string().superRefine((s, ctx) => {
  const problem = cidrProblem(s) ?? (s.includes('/') ? undefined : `"${s}" is not a valid CIDR`);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const ip = z
  .string()
  .refine((s) => ipVersionOf(s) !== 0, { error: (i) => `"${String(i.input)}" is not an IP address` });

/** "10.0.0.1" or "10.0.0.1/24" (Calico's Node BGP addresses carry the subnet). */
export const ipWithOptionalPrefix = z.string().superRefine((s, ctx) => {
  const [addr] = s.split('/');
  if (ipVersionOf(addr) === 0 || (s.includes('/') && cidrProblem(s))) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not an IP address or address/prefix` });
  }
});

/** An AS number: 1..4294967295, as a number or in asdot notation ("1.10" = 65546). */
export const asNumber = z.union([z.number(), z.string()]).transform((v, ctx) => {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (/^\d+\.\d+$/.test(v)) {
    const [hi, lo] = v.split('.').map(Number);
    n = hi > 0xffff || lo > 0xffff ? NaN : hi * 65536 + lo;
  } else if (/^\d+$/.test(v)) n = Number(v);
  else n = NaN;
  if (!Number.isInteger(n) || n < 1 || n > 0xffffffff) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(v)} is not a valid AS number (1-4294967295 or asdot "X.Y")`,
    });
    return z.NEVER;
  }
  return n;
});

export const selector = z.string().superRefine((s, ctx) => {
  try {
    parseSelector(s);
  } catch (err) {
    if (!(err instanceof SelectorError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message });
  }
});

/** A port number, a "from:to" range, or a named port. */
export const port = z.union([z.number(), z.string()]).superRefine((p, ctx) => {
  const bad = (why: string) =>
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(p)} ${why}` });
  if (typeof p === 'number') {
    if (!Number.isInteger(p) || p < 0 || p > 65535) bad('is not a port (0-65535)');
    return;
  }
  const range = /^(\d+):(\d+)$/.exec(p);
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])];
    if (a > 65535 || b > 65535 || a > b)
      bad('is not a valid port range "from:to" (0-65535, from <= to)');
    return;
  }
  if (/^\d+$/.test(p)) {
    if (Number(p) > 65535) bad('is not a port (0-65535)');
    return;
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p) || p.length > 15)
    bad('is not a port, a range or a named port');
});

export const protocol = z.union([
  z.enum(['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', 'UDPLite']),
  z.number().int().min(1).max(255),
]);

export const labels = z.record(z.string(), z.string());

export const encapMode = z.enum(['Never', 'Always', 'CrossSubnet']);
