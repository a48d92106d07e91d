// A real etcd (Debian's etcd-server) on loopback ports in a temp dir, for datastore
// tests: stop, start again on the same data, or kill hard, all by our own PID.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { stopProcess, waitUntil, type Testbed } from './netns';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function healthy(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${endpoint}/health`, { timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

export class Etcd {
  private proc?: ChildProcess;

  private constructor(
    readonly dir: string,
    private readonly clientPort: number,
    private readonly peerPort: number,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  static async start(tb: Testbed): Promise<Etcd> {
    const e = new Etcd(tb.tempDir('etcd'), await freePort(), await freePort());
    tb.onCleanup(() => e.stop());
    await e.launch();
    return e;
  }

  private async launch(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const p = spawn(
      'etcd',
      [
        '--name',
        'tortie-test',
        '--data-dir',
        path.join(this.dir, 'data'),
        '--listen-client-urls',
        this.endpoint,
        '--advertise-client-urls',
        this.endpoint,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `tortie-test=${peer}`,
        '--log-level',
        'error',
        '--logger',
        'zap',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const log = path.join(this.dir, 'etcd.log');
    p.stdout?.on('data', (d: Buffer) => fs.appendFileSync(log, d));
    p.stderr?.on('data', (d: Buffer) => fs.appendFileSync(log, d));
    this.proc = p;
    try {
      // generous: a loaded 2-core machine has been seen to need more than 15 s
      await waitUntil('etcd health', () => healthy(this.endpoint), 40000);
    } catch (e) {
      const tail = fs.existsSync(log)
        ? fs.readFileSync(log, 'utf8').trim().split('\n').slice(-5)
        : [];
      throw new Error(`${(e as Error).message}; etcd said: ${tail.join(' | ') || '(nothing)'}`);
    }
  }

  /** Graceful stop (SIGTERM), keeping the data dir. */
  async stop(): Promise<void> {
    if (this.proc) await stopProcess(this.proc);
    this.proc = undefined;
  }

  /** SIGKILL, as a crash would. */
  async kill(): Promise<void> {
    if (this.proc) await stopProcess(this.proc, 0);
    this.proc = undefined;
  }

  /** Starts again on the same data and ports. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }
}
