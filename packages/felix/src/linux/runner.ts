// How the dataplane runs its tools (ip, iptables-restore, ipset, bridge): a small
// interface with the real implementation, which can target a network namespace, and a
// recording fake for unit tests.
import { runTool, type ToolResult } from '@tortie/exec';

export type RunResult = ToolResult;

export interface CommandRunner {
  run(argv: string[], stdin?: string): Promise<RunResult>;
}

/** Runs commands on this host, or inside a named network namespace (`ip netns exec`). */
export class ProcessRunner implements CommandRunner {
  constructor(private readonly netns?: string) {}

  run(argv: string[], stdin?: string): Promise<RunResult> {
    return runTool(this.netns ? ['ip', 'netns', 'exec', this.netns, ...argv] : argv, stdin);
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
