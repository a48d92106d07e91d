// GTSM for BFD (RFC 5881 §5): only packets that arrive with TTL/hop limit 255 come from a
// neighbour on the link. Node's dgram sockets do not show a datagram's TTL, so the kernel
// checks it: an nftables table drops and counts BFD packets with any other TTL before
// they reach the socket. The counter is part of `tortiectl node status`.
import { runTool } from '@tortie/exec';

export const TTL_GUARD_TABLE = 'tortie-bfd';

const RULES = `table inet ${TTL_GUARD_TABLE} {
  counter ttl-dropped {
  }
  chain input {
    type filter hook input priority -200; policy accept;
    udp dport 3784 meta nfproto ipv4 ip ttl != 255 counter name "ttl-dropped" drop
    udp dport 3784 meta nfproto ipv6 ip6 hoplimit != 255 counter name "ttl-dropped" drop
  }
}
`;

export interface TtlGuard {
  install(): Promise<void>;
  /** Packets dropped for a TTL other than 255 since install. */
  dropped(): Promise<number>;
  remove(): Promise<void>;
}

async function nft(args: string[], stdin?: string): Promise<string> {
  const r = await runTool(['nft', ...args], stdin);
  if (r.code !== 0)
    throw new Error(`nft ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/** The guard in the current network namespace (needs CAP_NET_ADMIN and nft). */
export const nftTtlGuard: TtlGuard = {
  async install() {
    // replace whatever a previous run left (its counter restarts at 0)
    await nft(
      ['-f', '-'],
      `table inet ${TTL_GUARD_TABLE}\ndelete table inet ${TTL_GUARD_TABLE}\n${RULES}`,
    ).catch((e: Error) => {
      throw new Error(
        `BFD needs nftables to drop packets with a TTL other than 255 (GTSM): ${e.message}`,
      );
    });
  },
  async dropped() {
    const out = await nft(['-j', 'list', 'counter', 'inet', TTL_GUARD_TABLE, 'ttl-dropped']);
    const doc = JSON.parse(out) as { nftables: Array<{ counter?: { packets: number } }> };
    return doc.nftables.find((x) => x.counter)?.counter?.packets ?? 0;
  },
  async remove() {
    await nft(['delete', 'table', 'inet', TTL_GUARD_TABLE]).catch(() => undefined);
  },
};
