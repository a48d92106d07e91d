// Field types shared by the resource schemas, each validating with a message that
// names the value ("\"10.0.0.0/33\" is not a valid CIDR").
import { z } from 'zod';
import { cidrProblem, formatCidr, ipVersionOf, parseCidr, parseIp } from '@tortie/netaddr';
import { parseSelector, SelectorError } from '@tortie/policy';

function checkCidr(s: string, ctx: z.RefinementCtx): void {
  const problem = cidrProblem(s) ?? (s.includes('/') ? undefined : `"${s}" is not a valid CIDR`);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
}

export const cidr = z.string().superRefine(checkCidr);

/** A CIDR or a bare address (a host), or "" (Calico's omitempty `net` fields). */
export const netOrEmpty = z.string().superRefine((s, ctx) => {
  const problem = s === '' ? undefined : cidrProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const ip = z.string().refine((s) => ipVersionOf(s) !== 0, {
  error: (i) => `"${String(i.input)}" is not an IP address`,
});

/** "10.0.0.1" or "10.0.0.1/24" (Calico's Node BGP addresses carry the subnet). */
export const ipWithOptionalPrefix = z.string().superRefine((s, ctx) => {
  const [addr] = s.split('/');
  if (ipVersionOf(addr) === 0 || (s.includes('/') && cidrProblem(s))) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not an IP address or address/prefix` });
  }
});

/** An AS number from `min` to 4294967295, as a number or in asdot notation ("1.10" = 65546). */
const asNumberFrom = (min: 0 | 1, zero = ', or 0 for unset') =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    let n: number;
    if (typeof v === 'number') n = v;
    else if (/^\d+\.\d+$/.test(v)) {
      const [hi, lo] = v.split('.').map(Number);
      n = hi > 0xffff || lo > 0xffff ? NaN : hi * 65536 + lo;
    } else if (/^\d+$/.test(v)) n = Number(v);
    else n = NaN;
    if (!Number.isInteger(n) || n < min || n > 0xffffffff) {
      ctx.addIssue({
        code: 'custom',
        message: `${JSON.stringify(v)} is not a valid AS number (1-4294967295 or asdot "X.Y"${min === 0 ? zero : ''})`,
      });
      return z.NEVER;
    }
    return n;
  });

export const asNumber = asNumberFrom(1);
/** A BGPPeer's asNumber, where 0 is Calico's "unset" (the field is omitempty). */
export const peerAsNumber = asNumberFrom(0);
/** An AS number in a path (BGPFilter asPathPrefix, prependASPath): Calico's unvalidated uint32. */
export const pathAsNumber = asNumberFrom(0, ', or 0');

export const selector = z.string().superRefine((s, ctx) => {
  try {
    parseSelector(s);
  } catch (err) {
    if (!(err instanceof SelectorError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message });
  }
});

/** Why `s` is not a Kubernetes port name (IsValidPortName), or undefined. */
export function portNameProblem(s: string): string | undefined {
  const ok =
    /^[-a-z0-9]{1,15}$/.test(s) && /[a-z]/.test(s) && !s.includes('--') && !/^-|-$/.test(s);
  return ok
    ? undefined
    : `${JSON.stringify(s)} is not a port name (1-15 of a-z 0-9 "-" with a letter, no "--", no "-" at an end)`;
}

/**
 * A port as Calico's numorstring.Port reads it and its validator takes it: a number
 * 1-65535, a "min:max" range of those (min <= max), digits alone as a number, or a
 * Kubernetes port name.
 */
export const port = z.union([z.number(), z.string()]).superRefine((p, ctx) => {
  const bad = (why: string) =>
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(p)} ${why}` });
  const inRange = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (typeof p === 'number') {
    if (!inRange(p)) bad('is not a port (1-65535)');
    return;
  }
  const range = /^(\d+):(\d+)$/.exec(p);
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])];
    if (!inRange(a) || !inRange(b) || a > b)
      bad('is not a valid port range "min:max" (1-65535, min <= max)');
    return;
  }
  if (/^\d+$/.test(p)) {
    if (!inRange(Number(p))) bad('is not a port (1-65535)');
    return;
  }
  const problem = portNameProblem(p);
  if (problem) ctx.addIssue({ code: 'custom', message: `${problem} (nor a port or a range)` });
});

export const PROTOCOL_NAMES = ['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', 'UDPLite'] as const;

/**
 * A rule's protocol as Calico's numorstring.Protocol reads it: a name in exactly
 * Calico's case, or a number 1-255; a string of digits is that number ("6" is 6, as
 * Calico stores it).
 */
export const protocol = z
  .union([z.string(), z.number()])
  .transform((p, ctx): (typeof PROTOCOL_NAMES)[number] | number => {
    const n = typeof p === 'number' ? p : /^\d+$/.test(p) ? Number(p) : undefined;
    if (n !== undefined) {
      if (Number.isInteger(n) && n >= 1 && n <= 255) return n;
    } else if ((PROTOCOL_NAMES as readonly unknown[]).includes(p)) {
      return p as (typeof PROTOCOL_NAMES)[number];
    }
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(p)} is not a protocol (${PROTOCOL_NAMES.join(', ')} or 1-255)`,
    });
    return z.NEVER;
  });

/**
 * Why `s` is not a strictly masked CIDR ("10.0.0.0/24"; "10.0.0.1/24" has host bits, a
 * bare address has no prefix length), or undefined.
 */
export function strictCidrProblem(s: string): string | undefined {
  const problem = cidrProblem(s);
  if (problem) return problem;
  if (!s.includes('/')) return `"${s}" is not a CIDR (it needs a prefix length)`;
  const c = parseCidr(s);
  if (parseIp(s.split('/')[0]).value !== c.base)
    return `"${s}" is not strictly masked (host bits are set: ${formatCidr(c)})`;
  return undefined;
}

/** An address of one version, as Go's net.ParseIP reads it. */
export function ipOf(version: 4 | 6) {
  return z.string().refine((s) => ipVersionOf(s) === version, {
    error: (i) => `"${String(i.input)}" is not an IPv${version} address`,
  });
}

/** An address or address/prefix of one version, host bits allowed (Calico's cidrv4/cidrv6). */
export function cidrOrIpOf(version: 4 | 6) {
  return z.string().refine((s) => !cidrProblem(s) && ipVersionOf(s.split('/')[0]) === version, {
    error: (i) => `"${String(i.input)}" is not an IPv${version} address or address/prefix`,
  });
}

/** A MAC address as Go's net.ParseMAC reads it (EUI-48, EUI-64 or 20-octet IPoIB). */
export const mac = z
  .string()
  .refine(
    (s) =>
      /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}((\1[0-9a-fA-F]{2}){2}|(\1[0-9a-fA-F]{2}){14})?$/.test(
        s,
      ) ||
      /^[0-9a-fA-F]{4}(\.[0-9a-fA-F]{4}){2}((\.[0-9a-fA-F]{4})|(\.[0-9a-fA-F]{4}){7})?$/.test(s),
    { error: (i) => `"${String(i.input)}" is not a MAC address` },
  );

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6, // U+00B5
  μs: 1e-6, // U+03BC
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

/**
 * A Go duration ("90s", "2m", "1h30m", "1.5s", "0") in seconds, as time.ParseDuration
 * reads it (metav1.Duration fields: maxRestartTime, nodeMeshMaxRestartTime); undefined
 * when it is not one.
 */
export function goDurationSeconds(text: string): number | undefined {
  if (/^[-+]?0$/.test(text)) return 0;
  const m = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (!m) return undefined;
  let total = 0;
  for (const [, n, unit] of m[2].matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g))
    total += Number(n) * DURATION_UNITS[unit];
  return m[1] === '-' ? -total : total;
}

export const duration = z.string().refine((s) => goDurationSeconds(s) !== undefined, {
  error: (i) => `${JSON.stringify(i.input)} is not a duration (Go syntax: "90s", "2m", "1h30m")`,
});

/**
 * A YAML/JSON scalar where Go has a string, as calicoctl's typed decode reads it
 * (sigs.k8s.io/yaml converts numbers and booleans for string fields: strconv.FormatInt,
 * FormatFloat(v, 'g', -1, 32), FormatBool; null leaves ""). Other values are left to fail.
 */
export function goString(v: unknown): unknown {
  if (v === null) return '';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return Number.isInteger(v) ? v.toFixed(0) : goFloat32(v);
  return v;
}

/** Go's strconv.FormatFloat(v, 'g', -1, 32): the shortest text that reads back as this float32. */
function goFloat32(v: number): string {
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN';
  const f = Math.fround(v);
  let digits = '';
  for (let p = 1; p <= 9; p++) {
    digits = f.toPrecision(p);
    if (Math.fround(Number(digits)) === f) break;
  }
  // %e when the exponent is < -4 or >= 6 (Go's 'g' with the shortest precision)
  const [mantissa, exp] = Number(digits).toExponential().split('e');
  const e = Number(exp);
  if (e < -4 || e >= 6)
    return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  return String(Number(digits));
}

// Kubernetes' rules for label keys and values (apimachinery validation: IsQualifiedName,
// IsValidLabelValue), which Calico's validator applies to metadata and labelsToApply.
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Why `key` is not a qualified name ("prefix/name" or "name"), or undefined. */
export function qualifiedNameProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return `"${key}": a qualified name has at most one "/"`;
  const name = parts[parts.length - 1];
  if (parts.length === 2) {
    const prefix = parts[0];
    if (prefix === '' || prefix.length > 253 || !DNS_NAME.test(prefix))
      return `"${key}": the prefix must be a DNS subdomain (lowercase, at most 253 characters)`;
  }
  if (name.length > 63 || !LABEL_NAME.test(name))
    return `"${key}": the name part must be at most 63 of A-Z a-z 0-9 - _ ., starting and ending alphanumeric`;
  return undefined;
}

/** Why `value` is not a label value, or undefined. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '' || (value.length <= 63 && LABEL_NAME.test(value))) return undefined;
  return `${JSON.stringify(value)}: a label value is at most 63 of A-Z a-z 0-9 - _ ., starting and ending alphanumeric`;
}

/** Labels as Kubernetes and Calico take them (keys qualified names, values label values). */
export const labels = z.record(z.string(), z.string()).superRefine((m, ctx) => {
  for (const [k, v] of Object.entries(m)) {
    const problem = qualifiedNameProblem(k) ?? labelValueProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', path: [k], message: problem });
  }
});

/** metadata.labels: values coerced to strings as calicoctl does, then checked as labels. */
export const metadataLabels = z.record(z.string(), z.preprocess(goString, z.string())).pipe(labels);

const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/**
 * metadata.annotations (and a rule's): keys are qualified names in any case, and keys and
 * values together at most 256 KiB, as Kubernetes.
 */
export const annotations = z
  .record(z.string(), z.preprocess(goString, z.string()))
  .superRefine((m, ctx) => {
    let size = 0;
    for (const [k, v] of Object.entries(m)) {
      const problem = qualifiedNameProblem(k.toLowerCase());
      if (problem) ctx.addIssue({ code: 'custom', path: [k], message: problem });
      size += Buffer.byteLength(k) + Buffer.byteLength(v);
    }
    if (size > MAX_ANNOTATIONS_BYTES)
      ctx.addIssue({
        code: 'custom',
        message: `total size of annotations is too large by ${size - MAX_ANNOTATIONS_BYTES} bytes`,
      });
  });

export const encapMode = z.enum(['Never', 'Always', 'CrossSubnet']);

/** One of `values` in any case ("" too), as Calico's `^(?i)(A|B)?$` CRD patterns. */
export function anyCase(values: string[]) {
  const want = new Set(['', ...values.map((v) => v.toLowerCase())]);
  return z.string().refine((s) => want.has(s.toLowerCase()), {
    error: (i) => `${JSON.stringify(i.input)} is not one of ${values.join(', ')} (any case)`,
  });
}

/** Why `v` is not a BGP community "aa:nn" (16-bit parts) or large community "aa:nn:mm" (32-bit). */
export function communityProblem(v: string): string | undefined {
  const parts = v.split(':');
  if (!/^\d+:\d+(:\d+)?$/.test(v))
    return `${JSON.stringify(v)} is not a community (aa:nn or aa:nn:mm)`;
  const max = parts.length === 2 ? 0xffff : 0xffffffff;
  if (parts.some((p) => Number(p) > max))
    return `${JSON.stringify(v)}: each part of a ${parts.length === 2 ? 'standard community is a 16' : 'large community is a 32'}-bit number`;
  return undefined;
}

export const community = z.string().superRefine((v, ctx) => {
  const problem = communityProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** A lowercase DNS subdomain (Calico's names). */
export const DNS_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * A Calico field tortie does not implement and that would be unsafe to ignore: refused
 * with a message that says so (anything else Calico has is accepted and validated).
 */
export function unsupported(what: string) {
  return z
    .unknown()
    .refine((v) => v === undefined, { message: `tortie does not support ${what}` })
    .optional();
}
