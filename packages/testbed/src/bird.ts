// BIRD 2 in a network namespace: config written from a typed description, the daemon
// run in the foreground under our PID control, state read back through birdc.
import fs from 'node:fs';
import path from 'node:path';
import { Daemon } from './daemon';
import { Netns, waitUntil, type Testbed } from './netns';

export type Family = 'ipv4' | 'ipv6';

/** A configuration written out as it is (e.g. rendered as calico-node's confd would). */
export interface BirdConfigText {
  text: string;
}

export interface BirdBgpPeer {
  name: string;
  localAs: number;
  neighbor: string;
  neighborAs: number;
  localAddress?: string;
  port?: number;
  passive?: boolean;
  families: Family[];
  holdTime?: number;
  rrClient?: boolean;
  clusterId?: string;
  nextHopSelf?: boolean;
  /** eBGP to a peer that is not directly connected, sending with this TTL. */
  multihop?: number;
  /** `bfd on`: the session follows a BFD session (needs BirdConfig.bfd). */
  bfd?: boolean;
  /** TCP-MD5 key (BIRD's `password`). */
  password?: string;
}

/** BIRD's `protocol bfd` timers for every interface (ms). */
export interface BirdBfd {
  minRxMs: number;
  minTxMs: number;
  multiplier: number;
}

export interface StaticRoute {
  prefix: string;
  /** Standard communities as [asn, value]. */
  communities?: Array<[number, number]>;
  /** Large communities as [asn, value, value]. */
  largeCommunities?: Array<[number, number, number]>;
  /** AS numbers the path starts with (BIRD puts its own AS before them on eBGP). */
  asPath?: number[];
  /** LOCAL_PREF (sent on iBGP sessions). */
  localPref?: number;
  med?: number;
}

export interface BirdConfig {
  routerId: string;
  peers: BirdBgpPeer[];
  /** Routes this BIRD originates (static blackhole routes exported over BGP). */
  routes?: StaticRoute[];
  /** Listen port for incoming BGP (default 179). */
  listenPort?: number;
  /** Install learned IPv4 routes into this namespace's kernel (a ToR that forwards). */
  kernel?: boolean;
  /**
   * With kernel: install one multipath route over every equal best path (BIRD's `merge
   * paths`), as a ToR load-balances an anycast service address over the nodes (ECMP).
   */
  ecmp?: boolean;
  /** Run BIRD's BFD protocol (single hop) with these timers. */
  bfd?: BirdBfd;
}

export interface BirdBfdSession {
  address: string;
  interface: string;
  state: string;
  /** Seconds, as BIRD shows them. */
  interval: number;
  timeout: number;
}

export interface BirdRoute {
  prefix: string;
  protocol: string;
  primary: boolean;
  nextHop?: string;
  asPath: number[];
  origin?: string;
  med?: number;
  localPref?: number;
  communities: string[];
  largeCommunities: string[];
  originatorId?: string;
  clusterList: string[];
}

export interface BirdProtocol {
  name: string;
  proto: string;
  state: string;
  info: string;
}

function staticBlock(family: Family, routes: StaticRoute[]): string {
  const lines = routes.map((r) => {
    const attrs: string[] = [];
    for (const [a, v] of r.communities ?? []) attrs.push(`bgp_community.add((${a},${v}));`);
    for (const [a, b, c] of r.largeCommunities ?? [])
      attrs.push(`bgp_large_community.add((${a},${b},${c}));`);
    // prepend one by one from the end, so the path reads as listed
    for (const asn of [...(r.asPath ?? [])].reverse()) attrs.push(`bgp_path.prepend(${asn});`);
    if (r.med !== undefined) attrs.push(`bgp_med = ${r.med};`);
    if (r.localPref !== undefined) attrs.push(`bgp_local_pref = ${r.localPref};`);
    return `  route ${r.prefix} blackhole${attrs.length ? ` { ${attrs.join(' ')} }` : ''};`;
  });
  return `protocol static static_${family} {\n  ${family};\n${lines.join('\n')}\n}\n`;
}

export function birdConfig(cfg: BirdConfig): string {
  const routes = cfg.routes ?? [];
  const v4 = routes.filter((r) => !r.prefix.includes(':'));
  const v6 = routes.filter((r) => r.prefix.includes(':'));
  let out = `log stderr all;\nrouter id ${cfg.routerId};\nprotocol device {}\n`;
  out += staticBlock('ipv4', v4) + staticBlock('ipv6', v6);
  if (cfg.kernel)
    out += `protocol kernel {\n  ipv4 { export where source = RTS_BGP; };\n${cfg.ecmp ? '  merge paths on;\n' : ''}}\n`;
  if (cfg.bfd) {
    const b = cfg.bfd;
    out += `protocol bfd {\n  interface "*" {\n    min rx interval ${b.minRxMs} ms;\n`;
    out += `    min tx interval ${b.minTxMs} ms;\n    multiplier ${b.multiplier};\n  };\n}\n`;
  }
  for (const p of cfg.peers) {
    const ibgp = p.localAs === p.neighborAs;
    out += `protocol bgp ${p.name} {\n`;
    out += `  local ${p.localAddress ?? ''} as ${p.localAs};\n`;
    out += `  neighbor ${p.neighbor}${p.port ? ` port ${p.port}` : ''} as ${p.neighborAs};\n`;
    if (cfg.listenPort) out += `  local port ${cfg.listenPort};\n`;
    if (p.passive) out += '  passive on;\n';
    // iBGP defaults to multihop in BIRD; our test peers share a link
    if (p.multihop) out += `  multihop ${p.multihop};\n`;
    else if (ibgp) out += '  direct;\n';
    out += `  hold time ${p.holdTime ?? 9};\n  keepalive time ${Math.max(1, Math.floor((p.holdTime ?? 9) / 3))};\n`;
    out += '  connect retry time 1;\n  connect delay time 0;\n  error wait time 1, 2;\n';
    if (p.rrClient) out += '  rr client;\n';
    if (p.bfd) out += '  bfd on;\n';
    if (p.password) out += `  password "${p.password}";\n`;
    if (p.clusterId) out += `  rr cluster id ${p.clusterId};\n`;
    for (const f of p.families) {
      out += `  ${f} {\n    import all;\n    export where source ~ [ RTS_STATIC, RTS_BGP ];\n`;
      if (p.nextHopSelf) out += '    next hop self;\n';
      out += '  };\n';
    }
    out += '}\n';
  }
  return out;
}

/** Parses `birdc show route all` output. */
export function parseBirdRoutes(text: string): BirdRoute[] {
  const routes: BirdRoute[] = [];
  let prefix = '';
  let cur: BirdRoute | undefined;
  for (const line of text.split('\n')) {
    const head =
      /^(\S+)?\s+(unicast|blackhole|unreachable|prohibit)\s+\[(\S+)[^\]]*\]\s*(\*)?/.exec(line);
    if (head && !line.startsWith('\t')) {
      if (head[1] && head[1] !== 'Table') prefix = head[1];
      cur = {
        prefix,
        protocol: head[3],
        primary: head[4] === '*',
        asPath: [],
        communities: [],
        largeCommunities: [],
        clusterList: [],
      };
      routes.push(cur);
      continue;
    }
    if (!cur) continue;
    const attr = /^\s+BGP\.(\w+):\s*(.*)$/.exec(line);
    if (!attr) continue;
    const [, key, value] = attr;
    switch (key) {
      case 'origin':
        cur.origin = value;
        break;
      case 'as_path':
        cur.asPath = value.split(/\s+/).filter(Boolean).map(Number);
        break;
      case 'next_hop':
        cur.nextHop = value.split(/\s+/)[0];
        break;
      case 'med':
        cur.med = Number(value);
        break;
      case 'local_pref':
        cur.localPref = Number(value);
        break;
      case 'community':
        cur.communities = [...value.matchAll(/\((\d+),(\d+)\)/g)].map((m) => `${m[1]}:${m[2]}`);
        break;
      case 'large_community':
        cur.largeCommunities = [...value.matchAll(/\((\d+), (\d+), (\d+)\)/g)].map(
          (m) => `${m[1]}:${m[2]}:${m[3]}`,
        );
        break;
      case 'originator_id':
        cur.originatorId = value;
        break;
      case 'cluster_list':
        cur.clusterList = value.split(/\s+/).filter(Boolean);
        break;
    }
  }
  return routes;
}

/** Parses `birdc show bfd sessions`. */
export function parseBirdBfdSessions(text: string): BirdBfdSession[] {
  const out: BirdBfdSession[] = [];
  for (const line of text.split('\n')) {
    const m =
      /^\s*(\S*[.:]\S*)\s+(\S+)\s+(Up|Down|Init|AdminDown)\s+.*?\s([\d.]+)\s+([\d.]+)\s*$/.exec(
        line,
      );
    if (m)
      out.push({
        address: m[1],
        interface: m[2],
        state: m[3],
        interval: Number(m[4]),
        timeout: Number(m[5]),
      });
  }
  return out;
}

export function parseBirdProtocols(text: string): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(up|down|start|stop)\s+(\S+)\s*(.*)$/.exec(line);
    if (m) out.push({ name: m[1], proto: m[2], state: m[4], info: m[6].trim() });
  }
  return out;
}

export class Bird extends Daemon {
  private constructor(
    ns: Netns,
    dir: string,
    private config: BirdConfig | BirdConfigText,
  ) {
    super(ns, dir, 'bird');
  }

  get socket(): string {
    return path.join(this.dir, 'bird.ctl');
  }

  static async start(tb: Testbed, ns: Netns, config: BirdConfig | BirdConfigText): Promise<Bird> {
    const dir = tb.tempDir('bird');
    fs.writeFileSync(
      path.join(dir, 'bird.conf'),
      'text' in config ? config.text : birdConfig(config),
    );
    const bird = new Bird(ns, dir, config);
    tb.onCleanup(() => bird.stop());
    await bird.launch();
    return bird;
  }

  protected command(): string[] {
    return ['bird', '-f', '-c', path.join(this.dir, 'bird.conf'), '-s', this.socket];
  }

  protected probe(): Promise<unknown> {
    return this.birdc('show status');
  }

  birdc(command: string): Promise<string> {
    return this.ns.exec(['birdc', '-s', this.socket, ...command.split(' ')]);
  }

  async protocols(): Promise<BirdProtocol[]> {
    return parseBirdProtocols(await this.birdc('show protocols'));
  }

  async protocol(name: string): Promise<BirdProtocol | undefined> {
    return (await this.protocols()).find((p) => p.name === name);
  }

  waitEstablished(name: string, timeoutMs = 20000): Promise<BirdProtocol> {
    return waitUntil(
      `BIRD protocol ${name} Established`,
      async () => {
        const p = await this.protocol(name);
        return p?.info.startsWith('Established') ? p : undefined;
      },
      timeoutMs,
    );
  }

  async bfdSessions(): Promise<BirdBfdSession[]> {
    return parseBirdBfdSessions(await this.birdc('show bfd sessions'));
  }

  async routes(family: Family = 'ipv4'): Promise<BirdRoute[]> {
    return parseBirdRoutes(
      await this.birdc(`show route table master${family === 'ipv4' ? 4 : 6} all`),
    );
  }

  /** Number of routes in a table (cheap for large tables). */
  async routeCount(family: Family = 'ipv4'): Promise<number> {
    const out = await this.birdc(`show route table master${family === 'ipv4' ? 4 : 6} count`);
    const m = /(\d+) of (\d+) routes/.exec(out);
    return m ? Number(m[1]) : 0;
  }

  /** Replaces the originated routes and reconfigures the running daemon. */
  async setRoutes(routes: StaticRoute[]): Promise<void> {
    if ('text' in this.config) throw new Error('setRoutes needs a typed BirdConfig');
    this.config = { ...this.config, routes };
    fs.writeFileSync(path.join(this.dir, 'bird.conf'), birdConfig(this.config));
    await this.birdc('configure');
  }
}
