// The lab's top-of-rack router: BIRD (the default), FRR or GoBGP in its own namespace on
// the fabric, eBGP with every node, originating a default route. One small interface
// over the three, so the demo, the UI and the tests ask any of them the same questions.
import path from 'node:path';
import {
  Bird,
  Frr,
  GoBgp,
  type BirdBfd,
  type Family,
  type Netns,
  type Testbed,
} from '@tortie/testbed';

export const TOR_KINDS = ['bird', 'frr', 'gobgp'] as const;
export type TorKind = (typeof TOR_KINDS)[number];

/** One BGP session of the ToR, with its state as the router names it. */
export interface TorSession {
  peer: string;
  state: string;
  established: boolean;
}

export interface TorRouter {
  kind: TorKind;
  ns: Netns;
  address: string;
  asn: number;
  /** Whether it installs what it learns into its namespace's kernel (and so forwards). */
  forwards: boolean;
  /** The prefixes in its BGP table. */
  prefixes(family?: Family): Promise<string[]>;
  sessions(): Promise<TorSession[]>;
  /** Its sessions and routes, in its own CLI's words (what the demo prints). */
  show(): Promise<string>;
  /** The commands an operator types to query it (as root, from the host). */
  queryCommands(): string[];
  /**
   * Its routes for one address, each command (as an operator types it, "$ ...") followed by
   * what it answered: the BGP paths and, where it forwards, the route in its kernel (one
   * next hop per node when it load-balances over them).
   */
  routeFor(ip: string): Promise<string>;
}

/** "$ <command>" and its output, trimmed. */
const shown = (command: string, out: string) => `$ ${command}\n${out.trimEnd()}`;

export interface TorPeer {
  name: string;
  address: string;
  asn: number;
  family: Family;
}

export interface TorOptions {
  kind: TorKind;
  address: string;
  asn: number;
  peers: TorPeer[];
  bfd?: BirdBfd;
  password?: string;
}

/** Starts the ToR; `bird` is set for a BIRD ToR (the e2e tests use its own API). */
export async function startTor(
  tb: Testbed,
  ns: Netns,
  o: TorOptions,
): Promise<{ router: TorRouter; bird?: Bird }> {
  if (o.kind === 'gobgp' && (o.bfd || o.password))
    throw new Error('a GoBGP ToR runs without BFD and TCP-MD5 here: use --tor bird or frr');
  const base = { ns, address: o.address, asn: o.asn };
  if (o.kind === 'bird') {
    const bird = await Bird.start(tb, ns, {
      routerId: o.address,
      kernel: true,
      // one kernel route over every node advertising an address, as a ToR spreads an
      // anycast service address over the nodes
      ecmp: true,
      routes: [{ prefix: '0.0.0.0/0' }],
      peers: o.peers.map((p) => ({
        name: p.name,
        localAs: o.asn,
        neighbor: p.address,
        neighborAs: p.asn,
        families: [p.family],
        holdTime: 9,
        bfd: o.bfd !== undefined && p.family === 'ipv4',
        ...(o.password ? { password: o.password } : {}),
      })),
      ...(o.bfd ? { bfd: o.bfd } : {}),
    });
    const socket = `ip netns exec ${ns.name} birdc -s ${bird.socket}`;
    const router: TorRouter = {
      ...base,
      kind: 'bird',
      forwards: true,
      prefixes: async (f = 'ipv4') => unique((await bird.routes(f)).map((r) => r.prefix)),
      sessions: async () =>
        (await bird.protocols())
          .filter((p) => p.proto === 'BGP')
          .map((p) => ({
            peer: o.peers.find((x) => x.name === p.name)?.address ?? p.name,
            state: p.info || p.state,
            established: p.info.startsWith('Established'),
          })),
      show: async () => `${await bird.birdc('show protocols')}\n${await bird.birdc('show route')}`,
      queryCommands: () => [
        `${socket} show protocols   # the ToR's sessions (BIRD)`,
        `${socket} show route   # what it learnt`,
      ],
      routeFor: async (ip) =>
        [
          shown(`${socket} show route for ${ip} all`, await bird.birdc(`show route for ${ip} all`)),
          shown(
            `ip netns exec ${ns.name} ip route show match ${ip} proto bird`,
            await ns.exec(['ip', 'route', 'show', 'match', ip, 'proto', 'bird']),
          ),
        ].join('\n'),
    };
    return { router, bird };
  }
  if (o.kind === 'frr') {
    const frr = await Frr.start(tb, ns, {
      asn: o.asn,
      routerId: o.address,
      kernel: true,
      networks: ['0.0.0.0/0'],
      timers: { keepalive: 3, hold: 9 },
      neighbors: o.peers.map((p) => ({
        address: p.address,
        remoteAs: p.asn,
        families: [p.family],
        ...(o.bfd && p.family === 'ipv4' ? { bfd: true } : {}),
        ...(o.password ? { password: o.password } : {}),
      })),
      ...(o.bfd
        ? {
            bfd: {
              receiveMs: o.bfd.minRxMs,
              transmitMs: o.bfd.minTxMs,
              multiplier: o.bfd.multiplier,
            },
          }
        : {}),
    });
    const vtysh = `ip netns exec ${ns.name} vtysh --vty_socket ${path.dirname(frr.vtySocket)} -c`;
    const router: TorRouter = {
      ...base,
      kind: 'frr',
      forwards: true,
      prefixes: async (f = 'ipv4') => unique((await frr.routes(f)).map((r) => r.prefix)),
      sessions: async () => {
        const j = JSON.parse(await frr.vtysh('show bgp neighbors json')) as Record<
          string,
          { bgpState?: string }
        >;
        return Object.entries(j).map(([peer, n]) => ({
          peer,
          state: n.bgpState ?? 'unknown',
          established: n.bgpState === 'Established',
        }));
      },
      show: async () => frr.vtysh('show bgp summary', 'show bgp ipv4 unicast'),
      queryCommands: () => [
        `${vtysh} 'show bgp summary'   # the ToR's sessions (FRR)`,
        `${vtysh} 'show bgp ipv4 unicast'   # what it learnt`,
        `${vtysh} 'show ip route bgp'   # what zebra installed in its kernel`,
      ],
      routeFor: async (ip) =>
        [
          shown(`${vtysh} 'show ip route ${ip}'`, await frr.vtysh(`show ip route ${ip}`)),
          shown(
            `ip netns exec ${ns.name} ip route show match ${ip} proto bgp`,
            await ns.exec(['ip', 'route', 'show', 'match', ip, 'proto', 'bgp']),
          ),
        ].join('\n'),
    };
    return { router };
  }
  const gobgp = await GoBgp.start(tb, ns, {
    asn: o.asn,
    routerId: o.address,
    neighbors: o.peers.map((p) => ({ address: p.address, peerAs: p.asn, families: [p.family] })),
  });
  await gobgp.announce('0.0.0.0/0');
  const cli = `ip netns exec ${ns.name} gobgp -u 127.0.0.1 -p 50051`;
  const router: TorRouter = {
    ...base,
    kind: 'gobgp',
    // gobgpd keeps its routes in its own RIB (no zebra here)
    forwards: false,
    prefixes: async (f = 'ipv4') => unique((await gobgp.routes(f)).map((r) => r.prefix)),
    sessions: async () =>
      Promise.all(
        o.peers.map(async (p) => {
          const state = (await gobgp.neighborState(p.address)) ?? 'unknown';
          return { peer: p.address, state, established: state === 'established' };
        }),
      ),
    show: async () => `${await gobgp.cli('neighbor')}\n${await gobgp.cli('global', 'rib')}`,
    queryCommands: () => [
      `${cli} neighbor   # the ToR's sessions (GoBGP)`,
      `${cli} global rib   # what it learnt`,
    ],
    routeFor: async (ip) => shown(`${cli} global rib ${ip}`, await gobgp.cli('global', 'rib', ip)),
  };
  return { router };
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
