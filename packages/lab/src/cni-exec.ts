// Executes a CNI plugin as a runtime does: the command's CNI_* environment, its network
// configuration on stdin, its result (or error) as JSON on stdout.
import { spawn } from 'node:child_process';

/** Runs argv with conf on stdin; the parsed result, or an error with the plugin's answer. */
export function execPlugin(
  argv: string[],
  conf: string,
  env: Record<string, string>,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0], argv.slice(1), { env: { PATH: process.env.PATH, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code === 0) resolve(out.trim() ? (JSON.parse(out) as Record<string, unknown>) : {});
      else reject(new Error(`tortie-cni ${env.CNI_COMMAND} failed: ${(out || err).trim()}`));
    });
    p.stdin.end(conf);
  });
}
