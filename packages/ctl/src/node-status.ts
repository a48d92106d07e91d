// tortiectl node status: the BGP sessions of the node agent on this host, read from its
// speaker's control socket, printed as calicoctl node status prints BIRD's.
import { isIPv6 } from 'node:net';
import { controlRequest, peerKey } from '@tortie/bgp-speaker';
import type { Io } from './commands';
import { table } from './table';

export { DEFAULT_BGP_SOCKET } from './usage';

/** What the speaker's "peers" command reports, as far as this view needs it. */
export interface PeerStatus {
  address: string;
  /** Shown when it is not 179 (two peers on one address differ by port). */
  port?: number;
  description?: string;
  state: string;
  since?: string;
  staleRoutes?: number;
  lastError?: string;
  /** The BFD session under the peer (see @tortie/bfd's BfdPeerStatus). */
  bfd?: {
    state: string;
    diag: string;
    txIntervalMs: number;
    detectTimeMs: number;
    since: string;
    upTransitions: number;
    /** The endpoint's drops by reason (the same on every peer). */
    dropped: Record<string, number>;
  };
}

/** Calico's peer types, from the name the agent gave the peer (see @tortie/bgp-topology). */
export function peerType(description: string | undefined): string {
  const prefix = description?.split('-')[0];
  return (
    { mesh: 'node-to-node mesh', global: 'global', node: 'node specific', rr: 'route reflector' }[
      prefix ?? ''
    ] ??
    (description || '-')
  );
}

/** The two tables (IPv4, IPv6 peers) of `node status`. Pure. */
export function formatNodeStatus(peers: PeerStatus[]): string[] {
  const out: string[] = [];
  for (const [family, v6] of [
    ['IPv4', false],
    ['IPv6', true],
  ] as const) {
    const mine = peers.filter((p) => isIPv6(p.address) === v6);
    out.push('', `${family} BGP status`);
    if (mine.length === 0) {
      out.push(`No ${family} peers found.`);
      continue;
    }
    const rows = mine.map((p) => {
      const up = p.state === 'Established';
      const info = up
        ? p.staleRoutes
          ? `Established (${p.staleRoutes} stale routes kept: peer restarting)`
          : 'Established'
        : p.lastError
          ? `${p.state} (${p.lastError})`
          : p.state;
      const since = up && p.since ? p.since.slice(11, 19) : '';
      return [
        peerKey(p.address, p.port),
        peerType(p.description),
        up ? 'up' : 'start',
        since,
        info,
      ];
    });
    out.push(...table([['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE (UTC)', 'INFO'], ...rows]));
  }
  return [...out, ...formatBfd(peers)];
}

/** The BFD table, when a peer has BFD: a session per peer and the packets dropped. Pure. */
function formatBfd(peers: PeerStatus[]): string[] {
  const withBfd = peers.filter((p) => p.bfd);
  if (withBfd.length === 0) return [];
  const rows = withBfd.map((p) => {
    const b = p.bfd!;
    return [
      peerKey(p.address, p.port),
      b.state.toLowerCase(),
      b.since.slice(11, 19),
      `${b.txIntervalMs} ms`,
      b.state === 'Up' ? `${b.detectTimeMs} ms` : '',
      String(b.upTransitions),
      b.diag === 'None' ? '' : b.diag,
    ];
  });
  const dropped = Object.entries(withBfd[0].bfd!.dropped)
    .filter(([, n]) => n > 0)
    .map(([why, n]) => `${why} ${n}`);
  return [
    '',
    'BFD status',
    ...table([['PEER ADDRESS', 'STATE', 'SINCE (UTC)', 'TX', 'DETECT', 'UPS', 'DIAG'], ...rows]),
    `BFD packets dropped: ${dropped.length ? dropped.join(', ') : 'none'}`,
  ];
}

export async function nodeStatus(socket: string, io: Io): Promise<number> {
  let peers: PeerStatus[];
  try {
    peers = (await controlRequest(socket, { cmd: 'peers' }, 5000)) as PeerStatus[];
  } catch (e) {
    io.err(
      `tortie-node's BGP speaker is not running or not reachable: ${(e as Error).message}\n` +
        "(is this the node, is BGP on, and is --bgp-socket the agent's TORTIE_BGP_SOCKET?)",
    );
    return 1;
  }
  io.out(`tortie-node BGP is running (${socket}).`);
  for (const l of formatNodeStatus(peers)) io.out(l);
  return 0;
}
