// FRR's bgpd in a network namespace, without zebra (routes stay in BGP's own RIB) unless
// BFD is asked for (then zebra and bfdd run beside it),
// with its pid file and vty socket in a temp dir so it never touches /etc/frr or
// /var/run/frr. Queried through vtysh's JSON output.
import fs from 'node:fs';
import path from 'node:path';
import type { Family } from './bird';
import { Daemon } from './daemon';
import { Netns, waitUntil, type Testbed } from './netns';

export interface FrrNeighbor {
  address: string;
  remoteAs: number;
  port?: number;
  passive?: boolean;
  updateSource?: string;
  families: Family[];
  rrClient?: boolean;
  /** GTSM: accept only packets with TTL >= 256 - hops, send with 255. */
  ttlSecurityHops?: number;
  /** `neighbor X bfd profile tortie` (needs FrrConfig.bfd). */
  bfd?: boolean;
  /** TCP-MD5 key (`neighbor X password`). */
  password?: string;
}

/** bfdd's profile `tortie` (ms). */
export interface FrrBfd {
  receiveMs: number;
  transmitMs: number;
  multiplier: number;
}

/** One entry of bfdd's `show bfd peers json` (FRR spells the keys with hyphens). */
export interface FrrBfdPeer {
  peer: string;
  status: string;
  diagnostic?: string;
  /** Our configured intervals (ms) and the peer's. */
  'receive-interval'?: number;
  'transmit-interval'?: number;
  'remote-receive-interval'?: number;
  'remote-transmit-interval'?: number;
  'remote-detect-multiplier'?: number;
}

export interface FrrConfig {
  asn: number;
  routerId: string;
  neighbors: FrrNeighbor[];
  /** Prefixes originated with `network` statements. */
  networks?: string[];
  listenPort?: number;
  clusterId?: string;
  /** Run zebra and bfdd beside bgpd (BFD reaches bgpd through zebra). */
  bfd?: FrrBfd;
  /** Run zebra beside bgpd, installing the best BGP routes into the namespace's kernel (a ToR that forwards). */
  kernel?: boolean;
  /** BGP keepalive and hold time (s); default 1 and 3. */
  timers?: { keepalive: number; hold: number };
}

export interface FrrRoute {
  prefix: string;
  nextHop?: string;
  asPath: number[];
  origin?: string;
  med?: number;
  localPref?: number;
  communities: string[];
  originatorId?: string;
  clusterList: string[];
}

export function frrConfig(cfg: FrrConfig): string {
  const lines = [
    'frr defaults datacenter',
    'hostname tortie-frr',
    `router bgp ${cfg.asn}`,
    ` bgp router-id ${cfg.routerId}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp default ipv4-unicast',
    // `network` originates without a matching route in zebra's RIB (there is no zebra
    // unless BFD runs, and then it has none)
    ' no bgp network import-check',
    ` timers bgp ${cfg.timers?.keepalive ?? 1} ${cfg.timers?.hold ?? 3}`,
  ];
  if (cfg.clusterId) lines.push(` bgp cluster-id ${cfg.clusterId}`);
  for (const n of cfg.neighbors) {
    lines.push(` neighbor ${n.address} remote-as ${n.remoteAs}`);
    lines.push(` neighbor ${n.address} timers connect 1`);
    if (n.port) lines.push(` neighbor ${n.address} port ${n.port}`);
    if (n.passive) lines.push(` neighbor ${n.address} passive`);
    if (n.updateSource) lines.push(` neighbor ${n.address} update-source ${n.updateSource}`);
    if (n.ttlSecurityHops)
      lines.push(` neighbor ${n.address} ttl-security hops ${n.ttlSecurityHops}`);
    if (n.bfd) lines.push(` neighbor ${n.address} bfd profile tortie`);
    if (n.password) lines.push(` neighbor ${n.address} password ${n.password}`);
  }
  for (const family of ['ipv4', 'ipv6'] as const) {
    lines.push(` address-family ${family} unicast`);
    for (const p of cfg.networks ?? [])
      if (p.includes(':') === (family === 'ipv6')) lines.push(`  network ${p}`);
    for (const n of cfg.neighbors) {
      if (!n.families.includes(family)) continue;
      lines.push(`  neighbor ${n.address} activate`);
      if (n.rrClient) lines.push(`  neighbor ${n.address} route-reflector-client`);
    }
    lines.push(' exit-address-family');
  }
  return lines.join('\n') + '\n';
}

export function frrBfdConfig(b: FrrBfd): string {
  return [
    'bfd',
    ' profile tortie',
    `  receive-interval ${b.receiveMs}`,
    `  transmit-interval ${b.transmitMs}`,
    `  detect-multiplier ${b.multiplier}`,
    ' exit',
    'exit',
  ].join('\n');
}

/**
 * zebra or bfdd of the same FRR instance: its config, pid file, vty socket and zebra's
 * API socket all in bgpd's temp dir.
 */
class FrrHelper extends Daemon {
  constructor(
    ns: Netns,
    dir: string,
    private readonly daemon: 'zebra' | 'bfdd',
  ) {
    super(ns, dir, daemon);
  }

  protected command(): string[] {
    const d = this.daemon;
    return [
      `/usr/lib/frr/${d}`,
      '-f',
      path.join(this.dir, `${d}.conf`),
      '-i',
      path.join(this.dir, `${d}.pid`),
      '-z',
      path.join(this.dir, 'zserv.api'),
      ...(d === 'bfdd' ? ['--bfdctl', path.join(this.dir, 'bfdd.sock')] : []),
      // unlike bgpd (-S), these cannot skip the privilege drop, and root is not in the
      // vty group: they run as Debian's frr user (Start chowns the dir to it)
      '-u',
      'frr',
      '-g',
      'frr',
      '--vty_socket',
      this.dir,
      '--log',
      'stdout',
    ];
  }

  protected probe(): Promise<unknown> {
    return this.ns.exec([
      'vtysh',
      '--vty_socket',
      this.dir,
      '-d',
      this.daemon,
      '-c',
      'show version',
    ]);
  }

  start(): Promise<void> {
    return this.launch();
  }
}

const zebraRuns = (c: FrrConfig): boolean => c.bfd !== undefined || c.kernel === true;

interface FrrJsonPath {
  bestpath?: boolean;
  nexthops?: Array<{ ip: string }>;
  path?: string;
  origin?: string;
  metric?: number;
  locPrf?: number;
  community?: { string: string };
}

export class Frr extends Daemon {
  private constructor(
    ns: Netns,
    dir: string,
    private readonly config: FrrConfig,
  ) {
    super(ns, dir, 'bgpd');
  }

  static async start(tb: Testbed, ns: Netns, config: FrrConfig): Promise<Frr> {
    const dir = tb.tempDir('frr');
    fs.writeFileSync(path.join(dir, 'bgpd.conf'), frrConfig(config));
    if (zebraRuns(config)) {
      fs.writeFileSync(path.join(dir, 'zebra.conf'), 'hostname tortie-frr\n');
      if (config.bfd)
        fs.writeFileSync(path.join(dir, 'bfdd.conf'), frrBfdConfig(config.bfd) + '\n');
      const frrUser = await ns.exec(['id', '-u', 'frr']);
      const frrGroup = await ns.exec(['id', '-g', 'frr']);
      for (const f of ['', 'zebra.conf', ...(config.bfd ? ['bfdd.conf'] : [])])
        fs.chownSync(path.join(dir, f), Number(frrUser), Number(frrGroup));
      for (const d of config.bfd ? (['zebra', 'bfdd'] as const) : (['zebra'] as const)) {
        const h = new FrrHelper(ns, dir, d);
        tb.onCleanup(() => h.stop());
        await h.start();
      }
    }
    const frr = new Frr(ns, dir, config);
    tb.onCleanup(() => frr.stop());
    await frr.launch();
    return frr;
  }

  protected command(): string[] {
    const argv = [
      '/usr/lib/frr/bgpd',
      '-f',
      path.join(this.dir, 'bgpd.conf'),
      '-i',
      path.join(this.dir, 'bgpd.pid'),
    ];
    // without BFD or kernel no zebra: routes stay in bgpd's RIB (-Z); with it, bgpd
    // reaches bfdd and the kernel through zebra
    if (zebraRuns(this.config)) argv.push('-z', path.join(this.dir, 'zserv.api'));
    else argv.push('-Z');
    argv.push('-S', '-u', 'root', '-g', 'root', '--vty_socket', this.dir, '--log', 'stdout');
    if (this.config.listenPort) argv.push('-p', String(this.config.listenPort));
    return argv;
  }

  protected probe(): Promise<unknown> {
    return this.vtysh('show bgp summary json');
  }

  /** bgpd's vty socket, which vtysh talks to (a file: reachable from any namespace). */
  get vtySocket(): string {
    return path.join(this.dir, 'bgpd.vty');
  }

  vtysh(...commands: string[]): Promise<string> {
    return this.ns.exec(['vtysh', '--vty_socket', this.dir, ...commands.flatMap((c) => ['-c', c])]);
  }

  /** bfdd's sessions (`show bfd peers json`). */
  async bfdPeers(): Promise<FrrBfdPeer[]> {
    const out = await this.ns.exec([
      'vtysh',
      '--vty_socket',
      this.dir,
      '-d',
      'bfdd',
      '-c',
      'show bfd peers json',
    ]);
    return JSON.parse(out) as FrrBfdPeer[];
  }

  async neighborState(address: string): Promise<string | undefined> {
    const j = JSON.parse(await this.vtysh(`show bgp neighbors ${address} json`)) as Record<
      string,
      { bgpState?: string }
    >;
    return j[address]?.bgpState;
  }

  waitEstablished(address: string, timeoutMs = 20000): Promise<true> {
    return waitUntil(
      `FRR neighbor ${address} Established`,
      async () => (await this.neighborState(address)) === 'Established' || undefined,
      timeoutMs,
    );
  }

  async routes(family: Family = 'ipv4'): Promise<FrrRoute[]> {
    const j = JSON.parse(await this.vtysh(`show bgp ${family} unicast json`)) as {
      routes?: Record<string, FrrJsonPath[]>;
    };
    const out: FrrRoute[] = [];
    for (const [prefix, paths] of Object.entries(j.routes ?? {})) {
      const best = paths.find((p) => p.bestpath) ?? paths[0];
      out.push({
        prefix,
        nextHop: best.nexthops?.[0]?.ip,
        asPath: (best.path ?? '').split(/\s+/).filter(Boolean).map(Number),
        origin: best.origin,
        med: best.metric,
        localPref: best.locPrf,
        communities: best.community ? best.community.string.split(' ') : [],
        clusterList: [],
      });
    }
    return out;
  }

  /** One route with the reflection attributes (not in the table JSON). */
  async route(prefix: string, family: Family = 'ipv4'): Promise<FrrRoute | undefined> {
    const j = JSON.parse(await this.vtysh(`show bgp ${family} unicast ${prefix} json`)) as {
      paths?: Array<
        FrrJsonPath & {
          originatorId?: string;
          clusterList?: { list: string[] };
          aspath?: { string: string };
        }
      >;
    };
    const best = j.paths?.find((p) => p.bestpath) ?? j.paths?.[0];
    if (!best) return undefined;
    return {
      prefix,
      nextHop: best.nexthops?.[0]?.ip,
      asPath: (best.aspath?.string ?? '')
        .split(/\s+/)
        .filter((s) => /^\d+$/.test(s))
        .map(Number),
      origin: best.origin,
      med: best.metric,
      localPref: best.locPrf,
      communities: best.community ? best.community.string.split(' ') : [],
      originatorId: best.originatorId,
      clusterList: best.clusterList?.list ?? [],
    };
  }

  async routeCount(family: Family = 'ipv4'): Promise<number> {
    const j = JSON.parse(await this.vtysh(`show bgp ${family} unicast summary json`)) as {
      ribCount?: number;
    };
    return j.ribCount ?? 0;
  }

  /** Originates a prefix, optionally tagged with communities (through a route-map). */
  async announce(prefix: string, opts: { communities?: string[] } = {}): Promise<void> {
    const f = prefix.includes(':') ? 'ipv6' : 'ipv4';
    let network = `network ${prefix}`;
    if (opts.communities?.length) {
      const rm = `tortie-${opts.communities.join('-').replace(/:/g, '_')}`;
      await this.vtysh(
        'configure terminal',
        `route-map ${rm} permit 10`,
        `set community ${opts.communities.join(' ')}`,
      );
      network += ` route-map ${rm}`;
    }
    await this.vtysh(
      'configure terminal',
      `router bgp ${this.config.asn}`,
      `address-family ${f} unicast`,
      network,
    );
  }

  async withdraw(prefix: string): Promise<void> {
    const f = prefix.includes(':') ? 'ipv6' : 'ipv4';
    await this.vtysh(
      'configure terminal',
      `router bgp ${this.config.asn}`,
      `address-family ${f} unicast`,
      `no network ${prefix}`,
    );
  }
}
