// Runs an entry point that builds things in namespaces (the lab, a benchmark), interrupts
// it with a signal at a chosen point, and reports what it left behind: the namespaces it
// recorded (TORTIE_TESTBED_RECORD) that still exist, and the processes of its session
// (it runs detached, in a session of its own, so everything it started carries that id).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Processes whose session is `sid`. */
export function sessionMembers(sid: number): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // pid (comm) state ppid pgrp session ...; comm may hold spaces
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[3]) !== sid) continue;
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.push(`${pid} ${cmd.slice(0, 120)}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export interface InterruptedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  /** Namespaces the run created. */
  created: string[];
  left: { namespaces: string[]; processes: string[] };
}

/**
 * Starts `argv`, sends `signal` once `when.text` matches its output, once it has created
 * `when.namespaces` namespaces, or after `when.afterMs`; waits for it to exit.
 */
export async function runInterrupted(
  argv: string[],
  signal: NodeJS.Signals,
  when: { text?: RegExp; afterMs?: number; namespaces?: number },
): Promise<InterruptedRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-interrupt-'));
  const recordFile = path.join(dir, 'created');
  const recorded = () =>
    fs.existsSync(recordFile)
      ? fs
          .readFileSync(recordFile, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('netns '))
          .map((l) => l.split(' ')[1])
      : [];
  try {
    const p = spawn(argv[0], argv.slice(1), {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TORTIE_TESTBED_RECORD: recordFile },
    });
    let out = '';
    let sent = false;
    const send = () => {
      if (sent || p.exitCode !== null) return;
      sent = true;
      out += `\n<<< test: ${signal} >>>\n`;
      p.kill(signal);
    };
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (when.text?.test(out)) send();
    });
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    if (when.afterMs !== undefined) setTimeout(send, when.afterMs);
    const poll =
      when.namespaces === undefined
        ? undefined
        : setInterval(() => {
            if (recorded().length >= when.namespaces!) send();
          }, 50);
    const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      p.on('exit', (c, s) => r([c, s])),
    );
    clearInterval(poll);
    // a kernel tool it had just started may still be finishing: give it 3 s
    for (let i = 0; i < 30 && sessionMembers(p.pid!).length; i++)
      await new Promise((r) => setTimeout(r, 100));
    const created = recorded();
    const namespaces = created.filter((n) => fs.existsSync(`/var/run/netns/${n}`));
    return {
      code,
      signal: sig,
      out,
      created,
      left: { namespaces, processes: sessionMembers(p.pid!) },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
