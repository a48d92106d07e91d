#!/usr/bin/env node
// tortie-cni: the binary a container runtime runs. Network config on stdin, CNI_*
// variables in the environment, the result or the spec's error object on stdout.
//
// When the config names the node agent's socket ("agent_socket") and it answers, the
// command runs in the agent, which already holds the datastore connection; this process
// then loads nothing but node:net. Otherwise it runs here.
import fs from 'node:fs';
import net from 'node:net';

function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => (text += d));
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}

/** The config's agent socket and version, when it is JSON naming a socket that exists. */
function agentOf(input: string): { socket: string; cniVersion: string } | undefined {
  try {
    const c = JSON.parse(input) as { agent_socket?: unknown; cniVersion?: unknown };
    if (typeof c.agent_socket !== 'string' || !fs.existsSync(c.agent_socket)) return undefined;
    return {
      socket: c.agent_socket,
      cniVersion: typeof c.cniVersion === 'string' ? c.cniVersion : '1.0.0',
    };
  } catch {
    return undefined; // not JSON: the full path reports it properly
  }
}

/**
 * Sends the command to the agent. Undefined when the agent cannot be reached (nothing was
 * sent, so the command may run here); once it was sent, a broken answer is an error, never
 * a second run of the same command.
 */
function viaAgent(
  { socket, cniVersion }: { socket: string; cniVersion: string },
  input: string,
): Promise<{ code: number; stdout: string } | undefined> {
  const vars = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k.startsWith('CNI_')),
  );
  return new Promise((resolve) => {
    let reply = '';
    let sent = false;
    const c = net.connect(socket, () => {
      sent = true;
      c.end(JSON.stringify({ env: vars, input }) + '\n');
    });
    c.setEncoding('utf8');
    c.on('data', (d: string) => (reply += d));
    c.on('error', () => undefined); // 'close' follows and decides
    c.on('close', () => {
      if (!sent) return resolve(undefined);
      const nl = reply.indexOf('\n');
      if (nl > 0 && /^\d+$/.test(reply.slice(0, nl))) {
        resolve({ code: Number(reply.slice(0, nl)), stdout: reply.slice(nl + 1) });
      } else {
        const msg = `the node agent on ${socket} did not answer the command`;
        resolve({ code: 1, stdout: JSON.stringify({ cniVersion, code: 11, msg }) + '\n' });
      }
    });
  });
}

async function main(): Promise<number> {
  const input = await readStdin();
  const agent = process.env.CNI_COMMAND === 'VERSION' ? undefined : agentOf(input);
  const out =
    (agent ? await viaAgent(agent, input) : undefined) ??
    (await (require('./run-command') as typeof import('./run-command')).runCommand(
      process.env,
      input,
    ));
  process.stdout.write(out.stdout);
  return out.code;
}

void main().then((code) => process.exit(code));
