// The agent's configuration, as Felix resolves it: the first of environment variable
// (FELIX_<NAME>, case-insensitive name), per-node FelixConfiguration `node.<nodename>`,
// global FelixConfiguration `default`, built-in default. Pure.

export interface HostPort {
  protocol: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  net?: string;
}

export interface AgentConfig {
  logSeverityScreen: string;
  healthPort: number;
  healthHost: string;
  prometheusMetricsEnabled: boolean;
  prometheusMetricsPort: number;
  /** Milliseconds between read-backs that repair drift. */
  iptablesRefreshInterval: number;
  routeRefreshInterval: number;
  iptablesBackend: 'Legacy' | 'NFT' | 'Auto';
  /** Enabled: the native nftables ACL dataplane (workload endpoints); Auto: as kube-proxy (Calico's default) */
  nftablesMode: 'Enabled' | 'Disabled' | 'Auto';
  failsafeInboundHostPorts: HostPort[];
  failsafeOutboundHostPorts: HostPort[];
  defaultEndpointToHostAction: 'Drop' | 'Accept' | 'Return';
  vxlanVNI: number;
  vxlanPort: number;
  vxlanMTU: number;
  ipipMTU: number;
  /** program Services (nftables), a kube-proxy replacement */
  serviceProxyEnabled: boolean;
}

const DEFAULTS: AgentConfig = {
  logSeverityScreen: 'Info',
  healthPort: 9099,
  healthHost: '127.0.0.1',
  prometheusMetricsEnabled: false,
  prometheusMetricsPort: 9091,
  iptablesRefreshInterval: 90_000,
  routeRefreshInterval: 90_000,
  iptablesBackend: 'Auto',
  nftablesMode: 'Auto',
  // Calico's defaults: SSH, DHCP, BGP, etcd, Typha, kube API
  failsafeInboundHostPorts: [
    { protocol: 'TCP', port: 22 },
    { protocol: 'UDP', port: 68 },
    { protocol: 'TCP', port: 179 },
    { protocol: 'TCP', port: 2379 },
    { protocol: 'TCP', port: 2380 },
    { protocol: 'TCP', port: 5473 },
    { protocol: 'TCP', port: 6443 },
    { protocol: 'TCP', port: 6666 },
    { protocol: 'TCP', port: 6667 },
  ],
  failsafeOutboundHostPorts: [
    { protocol: 'UDP', port: 53 },
    { protocol: 'UDP', port: 67 },
    { protocol: 'TCP', port: 179 },
    { protocol: 'TCP', port: 2379 },
    { protocol: 'TCP', port: 2380 },
    { protocol: 'TCP', port: 5473 },
    { protocol: 'TCP', port: 6443 },
    { protocol: 'TCP', port: 6666 },
    { protocol: 'TCP', port: 6667 },
  ],
  defaultEndpointToHostAction: 'Drop',
  vxlanVNI: 4096,
  vxlanPort: 4789,
  vxlanMTU: 0,
  ipipMTU: 0,
  serviceProxyEnabled: false,
};

export class ConfigProblem extends Error {}

/** "90", "90s", "1m30s", "500ms" -> milliseconds. */
export function parseInterval(name: string, v: unknown): number {
  if (typeof v === 'number') return v * 1000;
  const text = String(v).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let ms = 0;
  let m: RegExpExecArray | null;
  let seen = 0;
  while ((m = re.exec(text))) {
    ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms'];
    seen = re.lastIndex;
  }
  if (seen !== text.length || text === '') {
    throw new ConfigProblem(`${name}: "${text}" is not a duration (examples: 90s, 1m30s, 500ms)`);
  }
  return ms;
}

/** "tcp:22,udp:68,tcp:10.0.0.0/8:6443" (the env form) or FelixConfiguration objects. */
export function parseHostPorts(name: string, v: unknown): HostPort[] {
  const hostPort = (protocol: unknown, port: unknown, net: unknown, item: string): HostPort => {
    const proto = String(protocol ?? 'TCP').toUpperCase();
    const n = Number(port);
    if (!['TCP', 'UDP', 'SCTP'].includes(proto) || !Number.isInteger(n) || n < 0 || n > 65535)
      throw new ConfigProblem(`${name}: "${item}" is not protocol:port (e.g. tcp:22)`);
    return {
      protocol: proto as HostPort['protocol'],
      port: n,
      ...(net ? { net: String(net) } : {}),
    };
  };
  if (Array.isArray(v))
    return v.map((p: { protocol?: unknown; port?: unknown; net?: unknown }) =>
      hostPort(p?.protocol, p?.port, p?.net, JSON.stringify(p)),
    );
  if (String(v).trim().toLowerCase() === 'none') return [];
  return String(v)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      const parts = item.split(':');
      const net = parts.length > 2 ? parts.slice(1, -1).join(':') : undefined;
      return hostPort(parts[0], parts[parts.length - 1], net, item);
    });
}

/** Settings with a fixed set of values (Felix reads them in any case). */
export const CHOICES = {
  logSeverityScreen: ['Trace', 'Debug', 'Info', 'Warning', 'Error', 'Fatal'],
  iptablesBackend: ['Legacy', 'NFT', 'Auto'],
  nftablesMode: ['Enabled', 'Disabled', 'Auto'],
  defaultEndpointToHostAction: ['Drop', 'Accept', 'Return'],
} as const satisfies Partial<Record<keyof AgentConfig, readonly string[]>>;

/** The one of `allowed` that `v` names, in any case; otherwise a problem naming `name`. */
export function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  const hit = allowed.find((a) => a.toLowerCase() === String(v).toLowerCase());
  if (!hit) throw new ConfigProblem(`${name}: "${String(v)}" is not one of ${allowed.join(', ')}`);
  return hit;
}

/** A FelixConfiguration boolean as Felix reads it there: true, or the text "true" in any case. */
export function isTrue(v: unknown): boolean {
  return v === true || String(v).toLowerCase() === 'true';
}

function coerce(name: keyof AgentConfig, v: unknown): unknown {
  const d = DEFAULTS[name];
  const choices = (CHOICES as Partial<Record<keyof AgentConfig, readonly string[]>>)[name];
  if (choices) return oneOf(name, String(v).trim(), choices);
  if (name === 'iptablesRefreshInterval' || name === 'routeRefreshInterval')
    return parseInterval(name, v);
  if (name === 'failsafeInboundHostPorts' || name === 'failsafeOutboundHostPorts')
    return parseHostPorts(name, v);
  if (typeof d === 'number') {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new ConfigProblem(`${name}: "${String(v)}" is not a number`);
    return n;
  }
  if (typeof d === 'boolean') {
    if (typeof v === 'boolean') return v;
    const t = String(v).toLowerCase();
    if (['true', '1', 'yes'].includes(t)) return true;
    if (['false', '0', 'no'].includes(t)) return false;
    throw new ConfigProblem(`${name}: "${String(v)}" is not true or false`);
  }
  return String(v);
}

/**
 * Resolves every setting: environment first, then the node's FelixConfiguration, then
 * the global one, then the default. Every bad value is reported, naming where it came from.
 */
export function resolveConfig(
  env: NodeJS.ProcessEnv,
  perNode: Record<string, unknown> = {},
  global: Record<string, unknown> = {},
): AgentConfig {
  const envByName = new Map(
    Object.entries(env)
      .filter(([k]) => k.startsWith('FELIX_'))
      .map(([k, v]) => [k.slice(6).toLowerCase(), v]),
  );
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const name of Object.keys(DEFAULTS) as Array<keyof AgentConfig>) {
    const sources: Array<[string, unknown]> = [
      [`environment FELIX_${name.toUpperCase()}`, envByName.get(name.toLowerCase())],
      ['FelixConfiguration node', perNode[name]],
      ['FelixConfiguration default', global[name]],
    ];
    const found = sources.find(([, v]) => v !== undefined && v !== '');
    try {
      out[name] = found ? coerce(name, found[1]) : DEFAULTS[name];
    } catch (e) {
      problems.push(`${found![0]}: ${(e as Error).message}`);
      out[name] = DEFAULTS[name];
    }
  }
  if (problems.length)
    throw new ConfigProblem(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return out as unknown as AgentConfig;
}

/**
 * The settings the environment sets (FELIX_*), resolved: they win over FelixConfiguration,
 * so the agent lays them over every config-update before the dataplane sees it.
 */
export function envOverrides(env: NodeJS.ProcessEnv): Partial<AgentConfig> {
  const resolved = resolveConfig(env);
  const set = new Set(
    Object.keys(env)
      .filter((k) => k.startsWith('FELIX_') && env[k] !== '')
      .map((k) => k.slice(6).toLowerCase()),
  );
  return Object.fromEntries(
    Object.entries(resolved).filter(([k]) => set.has(k.toLowerCase())),
  ) as Partial<AgentConfig>;
}

/** Every agent setting, by name (for --help and typo suggestions). */
export const SETTING_NAMES = Object.keys(DEFAULTS) as Array<keyof AgentConfig>;

/** The built-in default of a setting, as an operator would write it. */
export function defaultText(name: keyof AgentConfig): string {
  const d = DEFAULTS[name];
  if (Array.isArray(d)) return d.map((p) => `${p.protocol.toLowerCase()}:${p.port}`).join(',');
  if (name === 'iptablesRefreshInterval' || name === 'routeRefreshInterval')
    return `${Number(d) / 1000}s`;
  return String(d);
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/**
 * FELIX_* variables that are no setting of tortie's. One within two letters of a setting
 * is a typo (`typos`, with the setting meant); the others are Felix settings tortie does
 * not have (`unknown`: the agent logs and ignores them, as Felix does unknown ones).
 */
export function unknownFelixVars(env: NodeJS.ProcessEnv): {
  typos: Array<{ variable: string; meant: string }>;
  unknown: string[];
} {
  const known = new Map(SETTING_NAMES.map((n) => [n.toLowerCase(), n]));
  const typos: Array<{ variable: string; meant: string }> = [];
  const unknown: string[] = [];
  for (const k of Object.keys(env).sort()) {
    if (!k.startsWith('FELIX_')) continue;
    const name = k.slice(6).toLowerCase();
    if (known.has(name)) continue;
    const near = SETTING_NAMES.map((n) => [n, distance(name, n.toLowerCase())] as const)
      .filter(([, d]) => d <= 2)
      .sort((a, b) => a[1] - b[1])[0];
    if (near) typos.push({ variable: k, meant: `FELIX_${near[0].toUpperCase()}` });
    else unknown.push(k);
  }
  return { typos, unknown };
}
