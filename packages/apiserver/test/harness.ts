// Test harness: real etcd (Debian's etcd-server), tortie-apiserver over it, a kubeconfig
// and a runner for real kubectl (v1.32) with its discovery cache in a temp dir.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Etcd, Testbed } from '@tortie/testbed';
import { ApiServer, type ApiServerOptions } from '../src';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Harness {
  tb: Testbed;
  etcd: Etcd;
  server: ApiServer;
  url: string;
  dir: string;
  kubeconfig: string;
  kubectl(args: string[], stdin?: string): Promise<Run>;
  /** a long-running kubectl (get -w); the caller kills it */
  kubectlBackground(args: string[]): { child: ChildProcess; output: () => string };
  stop(): Promise<void>;
}

export async function startHarness(opts: Partial<ApiServerOptions> = {}): Promise<Harness> {
  const tb = new Testbed();
  const etcd = await Etcd.start(tb);
  const server = new ApiServer({ etcd: [etcd.endpoint], bookmarkMs: 1000, ...opts });
  const url = await server.listen();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-apiserver-'));
  tb.onCleanup(async () => fs.rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeKubeconfig(kubeconfig, url);
  const env = { ...process.env, KUBECACHEDIR: path.join(dir, 'cache'), HOME: dir };
  const kubectl = (args: string[], stdin?: string): Promise<Run> =>
    new Promise((resolve) => {
      const child = execFile(
        'kubectl',
        // a caller's own --kubeconfig wins
        [...(args[0] === '--kubeconfig' ? [] : ['--kubeconfig', kubeconfig]), ...args],
        { timeout: 60000, env },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      // always closed: kubectl asks for a password on stdin after a 401
      child.stdin!.end(stdin ?? '');
    });
  const kubectlBackground = (args: string[]) => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, ...args], { env });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    tb.onCleanup(async () => void child.kill());
    return { child, output: () => out };
  };
  return {
    tb,
    etcd,
    server,
    url,
    dir,
    kubeconfig,
    kubectl,
    kubectlBackground,
    stop: async () => {
      await server.close();
      await tb.cleanup();
    },
  };
}

export function writeKubeconfig(
  file: string,
  server: string,
  extra: { ca?: string; token?: string } = {},
): void {
  fs.writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'lab',
          cluster: {
            server,
            ...(extra.ca ? { 'certificate-authority': extra.ca } : {}),
          },
        },
      ],
      users: [{ name: 'lab', user: extra.token ? { token: extra.token } : {} }],
      contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'lab' } }],
      'current-context': 'lab',
    }),
  );
}

export async function until(
  what: string,
  f: () => boolean | Promise<boolean>,
  ms = 20000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const REPO = path.resolve(__dirname, '../../..');
