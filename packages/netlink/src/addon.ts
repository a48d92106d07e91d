// The native part (native/rtnl.c, built to dist/rtnl.node by the root's scripts/build-addon.js),
// loaded once. TORTIE_NETLINK=off leaves it unloaded, so callers take their `ip` path.
import fs from 'node:fs';
import path from 'node:path';

export interface ExchangeResult {
  /** Per request: 0 or a positive errno. */
  errors: Int32Array;
  /** Per request: the kernel's extended-ack text, where it gave one. */
  messages: Array<string | undefined>;
  /** Every data message the kernel answered with (dumps, GETs), in order. */
  replies: Buffer;
}

export interface RtnlAddon {
  /** protocol: NETLINK_ROUTE (0, the default) or NETLINK_NETFILTER (12). */
  open(nsFd: number, protocol?: number): number;
  close(fd: number): void;
  exchange(fd: number, requests: Buffer): Promise<ExchangeResult>;
  /** The same on the calling thread: for a few requests the kernel answers within the send. */
  exchangeSync(fd: number, requests: Buffer): ExchangeResult;
  /** Writes /proc/sys files inside the namespace (nsFd < 0: this one); per entry 0 or an errno. */
  sysctl(nsFd: number, paths: string[], values: string[]): Int32Array;
}

// Same path from src (jest) and dist (built).
export const ADDON_PATH = path.resolve(__dirname, '..', 'dist', 'rtnl.node');

let loaded: { addon?: RtnlAddon; reason?: string } | undefined;

/** The addon, or why it cannot be used (the reason is for the startup log). */
export function loadAddon(): { addon?: RtnlAddon; reason?: string } {
  if (loaded) return loaded;
  if (process.env.TORTIE_NETLINK === 'off') {
    loaded = { reason: 'TORTIE_NETLINK=off' };
  } else if (process.platform !== 'linux') {
    loaded = { reason: `netlink needs Linux (this is ${process.platform})` };
  } else if (!fs.existsSync(ADDON_PATH)) {
    loaded = {
      reason: `the netlink addon ${ADDON_PATH} is not built (run "npm run build" with a C compiler and Node headers)`,
    };
  } else {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native addon
      loaded = { addon: require(ADDON_PATH) as RtnlAddon };
    } catch (e) {
      loaded = { reason: `the netlink addon ${ADDON_PATH} did not load: ${(e as Error).message}` };
    }
  }
  return loaded;
}
