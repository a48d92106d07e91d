// Running `nft`: the one place the nftables ACL dataplane starts processes (through
// @tortie/exec, input streamed as it is produced), and the version check at startup.
import { runTool, type ToolInput, type ToolResult } from '@tortie/exec';
import { argvPrefix, lastLines } from '../acl/iptables-runner';

export type NftExec = (argv: string[], stdin?: ToolInput) => Promise<ToolResult>;

export interface NftRunner {
  /** Runs a script as one transaction; rejects with nft's message when it is refused. */
  run(script: ToolInput): Promise<void>;
  /** Checks a script against the kernel without committing it (`nft -c`). */
  check(script: string): Promise<string | undefined>;
}

export class ProcessNftRunner implements NftRunner {
  private readonly prefix: string[];
  constructor(
    opts: { netns?: string; prefix?: string[] } = {},
    private readonly exec: NftExec = runTool,
  ) {
    this.prefix = argvPrefix(opts);
  }

  async run(script: ToolInput): Promise<void> {
    const r = await this.exec([...this.prefix, 'nft', '-f', '-'], script);
    if (r.code !== 0) throw new Error(`nft -f failed (exit ${r.code}): ${lastLines(r.stderr)}`);
  }

  async check(script: string): Promise<string | undefined> {
    const r = await this.exec([...this.prefix, 'nft', '-c', '-f', '-'], script);
    return r.code === 0 ? undefined : lastLines(r.stderr) || `exit ${r.code}`;
  }
}

/** The oldest nft the dataplane accepts (verdict maps on ifname, fib, th, inet nat). */
export const MIN_NFT_VERSION: [number, number, number] = [1, 0, 0];

/** "nftables v1.0.6 (Lester Gooch #5)" -> [1, 0, 6]; undefined when it says no version. */
export function parseNftVersion(text: string): [number, number, number] | undefined {
  const m = /v(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

const older = (a: number[], b: number[]) => {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
};

/**
 * Whether this host's nft can run the dataplane: undefined when it can, otherwise why
 * not, naming the binary and its version (missing, unreadable or too old).
 */
export async function nftProblem(
  opts: { netns?: string; prefix?: string[] } = {},
  exec: NftExec = runTool,
): Promise<string | undefined> {
  let r: ToolResult;
  try {
    r = await exec([...argvPrefix(opts), 'nft', '--version']);
  } catch (e) {
    return `the nft binary cannot be run: ${(e as Error).message}`;
  }
  if (r.code !== 0)
    return `the nft binary is missing or failed (nft --version: exit ${r.code}${r.stderr ? `, ${lastLines(r.stderr)}` : ''}); install Debian's nftables`;
  const v = parseNftVersion(r.stdout);
  if (!v) return `nft --version printed no version: "${r.stdout.trim()}"`;
  if (older(v, MIN_NFT_VERSION))
    return `nft ${v.join('.')} is too old: the nftables dataplane needs ${MIN_NFT_VERSION.join('.')} or newer`;
  return undefined;
}
