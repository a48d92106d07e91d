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

function agentSocket(input: string): string | undefined {
  try {
    const s = (JSON.parse(input) as { agent_socket?: unknown }).agent_socket;
    return typeof s === 'string' && fs.existsSync(s) ? s : undefined;
  } catch {
    return undefined; // not JSON: the full path reports it properly
  }
}

/** Sends the command to the agent; undefined when it cannot be reached. */
function viaAgent(
  socket: string,
  input: string,
): Promise<{ code: number; stdout: string } | undefined> {
  const vars = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k.startsWith('CNI_')),
  );
  return new Promise((resolve) => {
    let reply = '';
    const c = net.connect(socket, () => c.end(JSON.stringify({ env: vars, input }) + '\n'));
    c.setEncoding('utf8');
    c.on('data', (d: string) => (reply += d));
    c.on('error', () => resolve(undefined));
    c.on('close', () => {
      try {
        resolve(JSON.parse(reply) as { code: number; stdout: string });
      } catch {
        resolve(undefined);
      }
    });
  });
}

async function main(): Promise<number> {
  const input = await readStdin();
  const socket = process.env.CNI_COMMAND === 'VERSION' ? undefined : agentSocket(input);
  const out =
    (socket ? await viaAgent(socket, input) : undefined) ??
    (await (require('./run-command') as typeof import('./run-command')).runCommand(
      process.env,
      input,
    ));
  process.stdout.write(out.stdout);
  return out.code;
}

void main().then((code) => process.exit(code));
