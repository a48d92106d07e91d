// The native socket options (native/sockopt.c, built to dist/sockopt.node by
// the root's scripts/build-addon.js). Loaded lazily: only peers with TTL settings or a password need it.
import fs from 'node:fs';
import path from 'node:path';

interface SockoptAddon {
  tcpSocket(family: 4 | 6): number;
  setTtl(fd: number, family: 4 | 6, ttl: number): void;
  setMinTtl(fd: number, family: 4 | 6, minTtl: number): void;
  /** Adds (or with key "" removes) the TCP-MD5 key for one peer address. */
  setMd5(fd: number, family: 4 | 6, address: string, key: string): void;
}

// Same path from src/session (jest) and dist/session (built).
const ADDON = path.resolve(__dirname, '..', '..', 'dist', 'sockopt.node');
let addon: SockoptAddon | undefined;

export function sockoptAvailable(): boolean {
  return fs.existsSync(ADDON);
}

export function sockopt(): SockoptAddon {
  if (!addon) {
    if (!sockoptAvailable()) {
      throw new Error(
        `TTL settings and passwords need the socket-option addon ${ADDON}: run "npm run build" with a C compiler and Node headers installed`,
      );
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native addon, loaded on first use
    addon = require(ADDON) as SockoptAddon;
  }
  return addon;
}

/** The file descriptor under a connected or listening Node socket/server. */
export function fdOf(handleOwner: unknown): number {
  const fd = (handleOwner as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no file descriptor');
  return fd;
}
