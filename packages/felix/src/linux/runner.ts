// How the dataplane runs its tools (ip, iptables-restore, ipset, bridge): a small
// interface with the real implementation, which can target a network namespace, and a
// recording fake for unit tests.
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandRunner {
  run(argv: string[], stdin?: string): Promise<RunResult>;
}

/** Runs commands on this host, or inside a named network namespace (`ip netns exec`). */
export class ProcessRunner implements CommandRunner {
  constructor(private readonly netns?: string) {}

  run(argv: string[], stdin?: string): Promise<RunResult> {
    const full = this.netns ? ['ip', 'netns', 'exec', this.netns, ...argv] : argv;
    return new Promise((resolve, reject) => {
      const p = spawn(full[0], full.slice(1), {
        stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      if (stdin !== undefined) {
        p.stdin!.on('error', () => undefined); // the exit status tells what went wrong
        p.stdin!.end(stdin);
      }
    });
  }
}

/** Fails with the command and its stderr when it did not succeed. */
export async function mustRun(r: CommandRunner, argv: string[], stdin?: string): Promise<string> {
  const res = await r.run(argv, stdin);
  if (res.code !== 0) {
    throw new Error(
      `${argv.join(' ')} failed (exit ${res.code}): ${res.stderr.trim().split('\n').slice(-3).join('; ')}`,
    );
  }
  return res.stdout;
}

/** Records every command; answers from a script of canned results (default: success). */
export class RecordingRunner implements CommandRunner {
  readonly calls: Array<{ argv: string[]; stdin?: string }> = [];
  constructor(
    private readonly answer: (argv: string[], stdin?: string) => Partial<RunResult> = () => ({}),
  ) {}

  async run(argv: string[], stdin?: string): Promise<RunResult> {
    this.calls.push({ argv, ...(stdin !== undefined ? { stdin } : {}) });
    return { code: 0, stdout: '', stderr: '', ...this.answer(argv, stdin) };
  }
}
