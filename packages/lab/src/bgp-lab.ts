// The BGP part of the lab: N nodes (each running the real tortie-bgp daemon in its own
// network namespace) on one L2 fabric with a BIRD top-of-rack router. The nodes form
// the Calico node-to-node mesh (iBGP, AS 64512) and peer eBGP with the ToR (AS 65001);
// each node originates its pod block, the ToR originates a default route.
import { SpeakerProcess, formatTable, type PeerRow, type RouteRow } from '@tortie/bgp-speaker';
import { Bird, Fabric, Testbed, waitUntil, type BirdRoute, type Netns } from '@tortie/testbed';

export const CLUSTER_AS = 64512;
export const TOR_AS = 65001;
export const TOR_ADDRESS = '10.99.0.1';

export interface LabNode {
  name: string;
  address: string;
  block: string;
  ns: Netns;
  speaker: SpeakerProcess;
}

export interface BgpLab {
  tb: Testbed;
  tor: Bird;
  nodes: LabNode[];
}

export function nodeAddress(i: number): string {
  return `10.99.0.${11 + i}`;
}

/** Pod block of node i: a /26 out of 10.244.0.0/16, as Calico's IPAM would hand out. */
export function nodeBlock(i: number): string {
  return `10.244.${i}.0/26`;
}

export async function startBgpLab(nodeCount: number, say: (line: string) => void): Promise<BgpLab> {
  const tb = new Testbed();
  try {
    const fabric = await Fabric.create(tb, 'fabric');
    const torNs = await tb.netns('tor');
    await fabric.attach(torNs, { v4: `${TOR_ADDRESS}/24` });
    const addresses = Array.from({ length: nodeCount }, (_, i) => nodeAddress(i));
    say(
      `fabric: bridge in ${fabric.ns.name}; ToR ${TOR_ADDRESS} (BIRD, AS ${TOR_AS}) in ${torNs.name}`,
    );
    const tor = await Bird.start(tb, torNs, {
      routerId: TOR_ADDRESS,
      routes: [{ prefix: '0.0.0.0/0' }],
      peers: addresses.map((a, i) => ({
        name: `node${i + 1}`,
        localAs: TOR_AS,
        neighbor: a,
        neighborAs: CLUSTER_AS,
        families: ['ipv4' as const],
        holdTime: 9,
      })),
    });
    const nodes: LabNode[] = [];
    for (let i = 0; i < nodeCount; i++) {
      const name = `node${i + 1}`;
      const ns = await tb.netns(name);
      await fabric.attach(ns, { v4: `${addresses[i]}/24` });
      const mesh = addresses
        .filter((a) => a !== addresses[i])
        // Calico's rule: of each pair, the node with the higher address waits passively
        .map((a) => ({
          address: a,
          asn: CLUSTER_AS,
          passive: a < addresses[i],
          holdTime: 9,
          connectRetryTime: 1,
        }));
      const speaker = await SpeakerProcess.start((argv, o) => ns.spawn(argv, o), tb.tempDir(name), {
        asn: CLUSTER_AS,
        routerId: addresses[i],
        listen: { address: '0.0.0.0', port: 179 },
        nextHop: { ipv4: addresses[i] },
        peers: [...mesh, { address: TOR_ADDRESS, asn: TOR_AS, holdTime: 9, connectRetryTime: 1 }],
        originate: [{ prefix: nodeBlock(i) }],
      });
      nodes.push({ name, address: addresses[i], block: nodeBlock(i), ns, speaker });
      say(
        `${name}: ${addresses[i]} in ${ns.name}, tortie-bgp pid ${speaker.proc.pid}, originates ${nodeBlock(i)}`,
      );
    }
    return { tb, tor, nodes };
  } catch (err) {
    await tb.cleanup();
    throw err;
  }
}

export async function waitForConvergence(lab: BgpLab, timeoutMs = 30000): Promise<number> {
  const t0 = Date.now();
  const blocks = lab.nodes.map((n) => n.block);
  await waitUntil(
    'every node to have every other block and the default route',
    async () => {
      for (const n of lab.nodes) {
        const have = new Set((await n.speaker.routes()).map((r) => r.prefix));
        if (!have.has('0.0.0.0/0') || blocks.some((b) => !have.has(b))) return false;
      }
      const tor = new Set((await lab.tor.routes('ipv4')).map((r) => r.prefix));
      return blocks.every((b) => tor.has(b));
    },
    timeoutMs,
    50,
  );
  return Date.now() - t0;
}

export function peersTable(peers: PeerRow[]): string {
  return formatTable([
    ['PEER', 'AS', 'STATE', 'RECEIVED', 'UPDATES IN/OUT'],
    ...peers.map((p) => [
      p.address,
      String(p.asn),
      p.state,
      String(p.prefixesReceived),
      `${p.counters.updatesIn}/${p.counters.updatesOut}`,
    ]),
  ]);
}

export function routesTable(routes: RouteRow[]): string {
  return formatTable([
    ['PREFIX', 'NEXT HOP', 'AS PATH', 'FROM'],
    ...routes
      .sort((a, b) => a.prefix.localeCompare(b.prefix))
      .map((r) => [r.prefix, r.nextHop ?? '', r.asPath || '(local AS)', r.from]),
  ]);
}

export function birdRoutesTable(routes: BirdRoute[]): string {
  return formatTable([
    ['PREFIX', 'NEXT HOP', 'AS PATH', 'FROM', 'BEST'],
    ...routes
      .sort((a, b) => a.prefix.localeCompare(b.prefix) || Number(b.primary) - Number(a.primary))
      .map((r) => [
        r.prefix,
        r.nextHop ?? '-',
        r.asPath.join(' '),
        r.protocol,
        r.primary ? '*' : '',
      ]),
  ]);
}
