// GoBGP in a network namespace: gobgpd with a generated TOML config and its gRPC API
// on the namespace's own loopback, queried and driven with the gobgp CLI.
import fs from 'node:fs';
import path from 'node:path';
import type { Family } from './bird';
import { Daemon } from './daemon';
import { Netns, waitUntil, type Testbed } from './netns';

export interface GoBgpNeighbor {
  address: string;
  peerAs: number;
  port?: number;
  passive?: boolean;
  localAddress?: string;
  families: Family[];
  rrClient?: boolean;
  clusterId?: string;
}

export interface GoBgpConfig {
  asn: number;
  routerId: string;
  listenPort?: number;
  neighbors: GoBgpNeighbor[];
}

export interface GoBgpRoute {
  prefix: string;
  nextHop?: string;
  asPath: number[];
  origin?: number;
  med?: number;
  localPref?: number;
  communities: string[];
}

const API_PORT = 50051;

export function gobgpConfig(cfg: GoBgpConfig): string {
  let out = `[global.config]\n  as = ${cfg.asn}\n  router-id = "${cfg.routerId}"\n  port = ${cfg.listenPort ?? 179}\n`;
  for (const n of cfg.neighbors) {
    out += `\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "${n.address}"\n    peer-as = ${n.peerAs}\n`;
    out +=
      '  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 9\n    keepalive-interval = 3\n';
    out += `  [neighbors.transport.config]\n    passive-mode = ${n.passive ? 'true' : 'false'}\n`;
    if (n.port) out += `    remote-port = ${n.port}\n`;
    if (n.localAddress) out += `    local-address = "${n.localAddress}"\n`;
    if (n.rrClient) {
      out += `  [neighbors.route-reflector.config]\n    route-reflector-client = true\n`;
      out += `    route-reflector-cluster-id = "${n.clusterId ?? cfg.routerId}"\n`;
    }
    for (const f of n.families) {
      out += `  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = "${f}-unicast"\n`;
    }
  }
  return out;
}

interface GoBgpPathJson {
  nlri?: { prefix?: string };
  best?: boolean;
  attrs?: Array<{
    type: number;
    value?: unknown;
    as_paths?: Array<{ asns: number[] }>;
    nexthop?: string;
    metric?: number;
    communities?: number[];
  }>;
}

export class GoBgp extends Daemon {
  private constructor(ns: Netns, dir: string) {
    super(ns, dir, 'gobgpd');
  }

  static async start(tb: Testbed, ns: Netns, config: GoBgpConfig): Promise<GoBgp> {
    const dir = tb.tempDir('gobgp');
    fs.writeFileSync(path.join(dir, 'gobgpd.toml'), gobgpConfig(config));
    const g = new GoBgp(ns, dir);
    tb.onCleanup(() => g.stop());
    await g.launch();
    return g;
  }

  protected command(): string[] {
    const config = path.join(this.dir, 'gobgpd.toml');
    return [
      'gobgpd',
      '-f',
      config,
      '--api-hosts',
      `127.0.0.1:${API_PORT}`,
      '--pprof-disable',
      '-l',
      'info',
    ];
  }

  protected probe(): Promise<unknown> {
    return this.cli('global');
  }

  cli(...args: string[]): Promise<string> {
    return this.ns.exec(['gobgp', '-u', '127.0.0.1', '-p', String(API_PORT), ...args]);
  }

  async neighborState(address: string): Promise<string | undefined> {
    const list = JSON.parse(await this.cli('neighbor', '-j')) as Array<{
      conf?: { neighbor_address?: string };
      state?: { session_state?: number | string; neighbor_address?: string };
    }>;
    const n = list.find((x) => (x.state?.neighbor_address ?? x.conf?.neighbor_address) === address);
    const s = n?.state?.session_state;
    // gobgp's API enum: 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established
    const names = [
      'unknown',
      'idle',
      'connect',
      'active',
      'opensent',
      'openconfirm',
      'established',
    ];
    return typeof s === 'number' ? names[s] : s;
  }

  waitEstablished(address: string, timeoutMs = 20000): Promise<true> {
    return waitUntil(
      `GoBGP neighbor ${address} established`,
      async () => (await this.neighborState(address)) === 'established' || undefined,
      timeoutMs,
    );
  }

  async routes(family: Family = 'ipv4'): Promise<GoBgpRoute[]> {
    const j = JSON.parse(await this.cli('global', 'rib', '-a', family, '-j')) as Record<
      string,
      GoBgpPathJson[]
    >;
    const out: GoBgpRoute[] = [];
    for (const [prefix, paths] of Object.entries(j)) {
      const best = paths.find((p) => p.best) ?? paths[0];
      const r: GoBgpRoute = { prefix, asPath: [], communities: [] };
      for (const a of best.attrs ?? []) {
        if (a.type === 1) r.origin = a.value as number;
        if (a.type === 2) r.asPath = (a.as_paths ?? []).flatMap((s) => s.asns);
        if (a.type === 3) r.nextHop = a.nexthop;
        if (a.type === 4) r.med = a.metric;
        if (a.type === 5) r.localPref = a.value as number;
        if (a.type === 8)
          r.communities = (a.communities ?? []).map((c) => `${c >>> 16}:${c & 0xffff}`);
        if (a.type === 14) r.nextHop = a.nexthop;
      }
      out.push(r);
    }
    return out;
  }

  async routeCount(family: Family = 'ipv4'): Promise<number> {
    const out = await this.cli('global', 'rib', 'summary', '-a', family);
    const m = /Destination:\s*(\d+)/.exec(out);
    return m ? Number(m[1]) : 0;
  }

  async announce(prefix: string, ...attrs: string[]): Promise<void> {
    await this.cli(
      'global',
      'rib',
      'add',
      prefix,
      ...attrs,
      '-a',
      prefix.includes(':') ? 'ipv6' : 'ipv4',
    );
  }

  async withdraw(prefix: string): Promise<void> {
    await this.cli('global', 'rib', 'del', prefix, '-a', prefix.includes(':') ? 'ipv6' : 'ipv4');
  }
}
