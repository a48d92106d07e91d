// Runs the built tortiectl binary as an operator would, for the binary-level tests.
import { spawn } from 'node:child_process';
import path from 'node:path';

const CLI = path.resolve(__dirname, '../dist/cli.js');

export function ctl(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}
