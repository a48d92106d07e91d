// A tortie-bgp daemon run as a child process (in a network namespace, by the caller's
// spawn function) and driven over its control socket: what tests, benchmarks and the
// lab use to run our speaker the way an operator does.
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { BfdPeerStatus, BfdStatus } from '@tortie/bfd';
import type { SpeakerConfigInput } from './config';
import { controlRequest } from './control';

export const CLI_PATH = path.resolve(__dirname, 'cli.js');

export interface PeerRow {
  address: string;
  port: number;
  asn: number;
  state: string;
  since?: string;
  prefixesReceived: number;
  /** Routes kept stale while the peer restarts (graceful restart helper). */
  staleRoutes?: number;
  counters: { updatesIn: number; updatesOut: number; establishedTransitions: number };
  lastNotification?: { direction: string; code: number; subcode: number; meaning: string };
  lastError?: string;
  /** The BFD session under this peer, with the endpoint's drop counters. */
  bfd?: BfdPeerStatus & { dropped: BfdStatus['dropped'] };
}

export interface RouteRow {
  prefix: string;
  nextHop?: string;
  asPath: string;
  origin: string;
  med?: number;
  localPref?: number;
  communities?: string[];
  largeCommunities?: string[];
  originatorId?: string;
  clusterList?: string[];
  from: string;
  /** Kept from a restarting peer's previous session. */
  stale?: boolean;
}

export type Spawn = (argv: string[], opts: SpawnOptions) => ChildProcess;

export class SpeakerProcess {
  private constructor(
    readonly proc: ChildProcess,
    readonly socket: string,
    readonly logFile: string,
  ) {}

  /**
   * Writes `config` to `dir`, starts `node cli.js run` through `spawn` and waits for
   * the control socket. Logs go to dir/bgp.log.
   */
  static async start(
    spawn: Spawn,
    dir: string,
    config: SpeakerConfigInput | object,
    opts: {
      logLevel?: string;
      nodeArgs?: string[];
      timeoutMs?: number;
      /** Another daemon with the same `run -c CONFIG -s SOCKET` interface (tortie-rr). */
      cli?: string;
    } = {},
  ): Promise<SpeakerProcess> {
    const cli =
      opts.cli ?? CLI_PATH.replace(`${path.sep}src${path.sep}`, `${path.sep}dist${path.sep}`);
    if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first`);
    const cfgFile = path.join(dir, 'bgp.json');
    fs.writeFileSync(cfgFile, JSON.stringify(config));
    const socket = path.join(dir, 'bgp.sock');
    const logFile = path.join(dir, 'bgp.log');
    const proc = spawn(
      ['node', ...(opts.nodeArgs ?? []), cli, 'run', '-c', cfgFile, '-s', socket],
      {
        env: { ...process.env, TORTIE_LOG_LEVEL: opts.logLevel ?? 'info' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    proc.stderr?.on('data', (d: Buffer) => fs.appendFileSync(logFile, d));
    const s = new SpeakerProcess(proc, socket, logFile);
    const deadline = Date.now() + (opts.timeoutMs ?? 10000);
    for (;;) {
      try {
        await s.peers();
        return s;
      } catch (err) {
        if (proc.exitCode !== null || Date.now() > deadline) {
          throw new Error(
            `tortie-bgp did not start: ${(err as Error).message}\n${s.log().slice(-2000)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  request(cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
    return controlRequest(this.socket, { cmd, ...args });
  }

  peers = () => this.request('peers') as Promise<PeerRow[]>;
  routes = () => this.request('routes') as Promise<RouteRow[]>;
  bfd = () => this.request('bfd') as Promise<BfdStatus>;
  routeCount = async () => ((await this.request('count')) as { routes: number }).routes;
  originate = (
    prefix: string,
    extra: { communities?: string[]; largeCommunities?: string[]; med?: number } = {},
  ) => this.request('originate', { prefix, ...extra });
  withdraw = (prefix: string) => this.request('withdraw', { prefix });

  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
  }
}
