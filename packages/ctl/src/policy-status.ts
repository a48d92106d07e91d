// tortiectl policy status: what the node agent on this host could not program, read from
// its status socket (TORTIE_STATUS_SOCKET). A policy the kernel refuses, or with a rule
// that cannot be rendered, fails closed on that node: this says which, why and since when.
import http from 'node:http';
import type { Io } from './commands';
import { table } from './table';

export { DEFAULT_STATUS_SOCKET } from './usage';

/** The agent's /status document, as far as this view needs it. */
export interface AgentStatus {
  node: string;
  ready: boolean;
  dataplane: {
    programmed: boolean;
    consecutiveFailures: number;
    lastError?: string;
    lastAppliedAt?: string;
  };
  acl: {
    backend?: string;
    rejected: Array<{
      kind: 'policy' | 'profile';
      id: string;
      direction: string;
      family: number;
      reason: string;
      since: string;
    }>;
  };
}

/** The report. Pure. */
export function formatPolicyStatus(s: AgentStatus): string[] {
  const d = s.dataplane;
  const state = !d.programmed
    ? 'not programmed yet'
    : d.consecutiveFailures
      ? `apply failing (${d.consecutiveFailures} in a row: ${d.lastError})`
      : 'programmed';
  const out = [
    `Node ${s.node}: dataplane ${state}` +
      (d.lastAppliedAt ? `, last applied ${d.lastAppliedAt.slice(11, 19)} UTC` : '') +
      (s.acl.backend ? ` (iptables ${s.acl.backend})` : ''),
  ];
  const rejected = s.acl.rejected;
  if (!rejected.length) return [...out, 'Every policy is programmed.'];
  out.push(
    `${rejected.length} ${rejected.length === 1 ? 'policy fails' : 'policies fail'} closed` +
      ' (what they decide is denied until fixed):',
    ...table([
      ['KIND', 'NAME', 'DIRECTION', 'IP', 'SINCE (UTC)', 'REASON'],
      ...rejected.map((r) => [
        r.kind,
        r.id,
        r.direction,
        `v${r.family}`,
        r.since.slice(0, 19).replace('T', ' '),
        r.reason,
      ]),
    ]),
  );
  return out;
}

function getStatus(socket: string, timeoutMs: number): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: socket, path: '/status', timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(body) as AgentStatus);
        } catch (e) {
          reject(new Error(`not a status document: ${(e as Error).message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Exit code 0 when every policy is programmed, 3 when some fail closed, 1 when unreachable. */
export async function policyStatus(socket: string, io: Io, json = false): Promise<number> {
  let s: AgentStatus;
  try {
    s = await getStatus(socket, 5000);
  } catch (e) {
    io.err(
      `tortie-node is not running or not reachable: ${(e as Error).message}\n` +
        "(is this the node, and is --status-socket the agent's TORTIE_STATUS_SOCKET?)",
    );
    return 1;
  }
  if (json) io.out(JSON.stringify(s.acl.rejected, null, 2));
  else for (const l of formatPolicyStatus(s)) io.out(l);
  return s.acl.rejected.length ? 3 : 0;
}
