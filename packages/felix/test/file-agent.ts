// The real agent (tortie-node, built dist/) in a test's namespace over a file datastore,
// with its BGP control socket: the fixture the netns suites that peer it with BIRD share
// (reachable-by, local-workload-peering, bgp-mesh).
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Resource } from '@tortie/api';
import { controlRequest, type PeerRow } from '@tortie/bgp-speaker';
import { FileDatastore } from '@tortie/datastore';
import { stopProcess, type Netns, type Testbed } from '@tortie/testbed';

const AGENT = path.resolve(__dirname, '../dist/cli.js');

export interface FileAgent<N extends string = string> {
  name: N;
  ns: Netns;
  proc: ChildProcess;
  socket: string;
  /** Its stdout and stderr lines. */
  log: string[];
  /** Its BGP peers, [] while its control socket is not up. */
  peers(): Promise<PeerRow[]>;
  /** Its last `n` log lines, headed by its name: for a failure's message. */
  lastLog(n?: number): string;
  stop(): Promise<void>;
}

/** Writes `resources` to a new file datastore at `file`. */
export async function writeDatastore(file: string, resources: Resource[]): Promise<void> {
  const ds = FileDatastore.open(file);
  for (const r of resources) await ds.create(r);
  await ds.close();
}

/**
 * Starts the agent as node `name` in `ns` over the file datastore `file`, its BGP socket
 * in `dir`; stopped at the testbed's cleanup at the latest.
 */
export function startFileAgent<N extends string>(
  tb: Testbed,
  ns: Netns,
  o: { name: N; ip: string; ip6?: string; file: string; dir: string },
): FileAgent<N> {
  const socket = path.join(o.dir, `${o.name}-${path.basename(o.file, '.json')}-bgp.sock`);
  const proc = ns.spawn([process.execPath, AGENT], {
    env: {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      NODENAME: o.name,
      IP: o.ip,
      ...(o.ip6 ? { IP6: o.ip6 } : {}),
      DATASTORE_TYPE: 'file',
      TORTIE_DATASTORE_FILE: o.file,
      TORTIE_BGP_SOCKET: socket,
      TORTIE_CNI_SOCKET: '',
      TORTIE_STATUS_SOCKET: '',
      TORTIE_LOG_LEVEL: 'info',
    },
  });
  const log: string[] = [];
  const keep = (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean));
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const stop = () => stopProcess(proc);
  tb.onCleanup(stop);
  return {
    name: o.name,
    ns,
    proc,
    socket,
    log,
    peers: () => (controlRequest(socket, { cmd: 'peers' }) as Promise<PeerRow[]>).catch(() => []),
    lastLog: (n = 20) => `--- ${o.name}\n${log.slice(-n).join('\n')}`,
    stop,
  };
}
