// Running a tool with optional stdin; the one place the ACL dataplane spawns processes.
import { spawn } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type Exec = (argv: string[], stdin?: string) => Promise<ExecResult>;

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
      p.stdin!.end(stdin);
    }
  });
