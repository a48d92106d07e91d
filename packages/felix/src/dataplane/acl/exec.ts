// Running a tool with optional stdin; the one place the ACL dataplane spawns processes.
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** stdin as a whole string, or as pieces produced while the process already runs. */
export type Stdin = string | Iterable<string>;

export type Exec = (argv: string[], stdin?: Stdin) => Promise<ExecResult>;

const CHUNK = 1 << 16;

/** Feeds pieces to a stream in ~64 KB writes, waiting for drain, so producing overlaps consuming. */
async function feed(w: Writable, pieces: Iterable<string>): Promise<void> {
  let buf = '';
  // a process that exits early (bad input) never drains: stop producing then
  const writable = () => !w.destroyed && !w.writableEnded;
  const flush = async () => {
    if (!w.write(buf))
      await new Promise<void>((r) => {
        const done = () => {
          w.off('drain', done).off('close', done).off('error', done);
          r();
        };
        w.on('drain', done).on('close', done).on('error', done);
      });
    buf = '';
  };
  for (const p of pieces) {
    if (!writable()) return;
    buf += p;
    if (buf.length >= CHUNK) await flush();
  }
  if (buf && writable()) await flush();
  if (writable()) w.end();
}

export const runCommand: Exec = (argv, stdin) =>
  new Promise((resolve, reject) => {
    const p = spawn(argv[0], argv.slice(1), {
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout!.on('data', (d: Buffer) => out.push(d));
    p.stderr!.on('data', (d: Buffer) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) =>
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    );
    if (stdin !== undefined) {
      p.stdin!.on('error', () => undefined); // the exit status says what went wrong
      if (typeof stdin === 'string') p.stdin!.end(stdin);
      else feed(p.stdin!, stdin).catch(() => p.stdin!.destroy());
    }
  });
