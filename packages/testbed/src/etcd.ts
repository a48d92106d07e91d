// A real etcd (Debian's etcd-server) on loopback ports in a temp dir, for datastore
// tests: stop, start again on the same data, or kill hard, all by our own PID.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { HostForward } from './forward';
import { stopProcess, waitUntil, type Fabric, type Netns, type Testbed } from './netns';

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

/** POSTs `{}` to an etcd v3 gRPC-gateway path; the JSON answer. */
function gateway(endpoint: string, api: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${endpoint}${api}`,
      { method: 'POST', timeout: 2000, headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body));
          } catch (e) {
            reject(e as Error);
          }
        });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${endpoint}${api}: timed out`)));
    req.end('{}');
  });
}

/** Where a member listens, and how the test process reaches its client port. */
interface Placement {
  clientUrl: string;
  peerUrl: string;
  /** The client URL from the test's loopback (a relay when the member is in a namespace). */
  hostEndpoint: string;
  ns?: Netns;
}

const onLoopback = (client: number, peer: number): Placement => ({
  clientUrl: `http://127.0.0.1:${client}`,
  peerUrl: `http://127.0.0.1:${peer}`,
  hostEndpoint: `http://127.0.0.1:${client}`,
});

export class Etcd {
  private proc?: ChildProcess;

  private constructor(
    readonly dir: string,
    private readonly place: Placement,
    readonly name = 'tortie-test',
    /** `--initial-cluster` of a member of several (this one alone otherwise). */
    private readonly initialCluster?: string,
  ) {}

  /** A member of an EtcdCluster (not started). */
  static member(dir: string, place: Placement, name: string, initial: string): Etcd {
    return new Etcd(dir, place, name, initial);
  }

  get peerUrl(): string {
    return this.place.peerUrl;
  }

  /** The client URL where the member listens (in its namespace, when it has one). */
  get clientUrl(): string {
    return this.place.clientUrl;
  }

  /** Its namespace, when it runs in one. */
  get ns(): Netns | undefined {
    return this.place.ns;
  }

  /** Watchers this member serves (etcd_debugging_mvcc_watcher_total): who holds a watch. */
  watchers(): Promise<number> {
    return new Promise((resolve, reject) => {
      http
        .get(`${this.endpoint}/metrics`, { timeout: 2000 }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => {
            const m = /^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(body);
            resolve(m ? Number(m[1]) : 0);
          });
        })
        .on('error', reject);
    });
  }

  /** This member's id and the leader's as it sees them (decimal strings, as etcd's JSON). */
  async status(): Promise<{ memberId: string; leader: string }> {
    const r = (await gateway(this.endpoint, '/v3/maintenance/status')) as {
      header?: { member_id?: string };
      leader?: string;
    };
    return { memberId: r.header?.member_id ?? '', leader: r.leader ?? '' };
  }

  /** The client URL from the test's loopback. */
  get endpoint(): string {
    return this.place.hostEndpoint;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  static async start(tb: Testbed): Promise<Etcd> {
    const e = new Etcd(tb.tempDir('etcd'), onLoopback(await freePort(), await freePort()));
    tb.onCleanup(() => e.stop());
    await e.launch();
    return e;
  }

  private async launch(): Promise<void> {
    const peer = this.peerUrl;
    const args = [
      '--name',
      this.name,
      '--data-dir',
      path.join(this.dir, 'data'),
      '--listen-client-urls',
      this.clientUrl,
      '--advertise-client-urls',
      this.clientUrl,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      this.initialCluster ?? `${this.name}=${peer}`,
      // the members of one cluster share their parent dir's name
      '--initial-cluster-token',
      path.basename(this.initialCluster ? path.dirname(this.dir) : this.dir),
      '--log-level',
      'error',
      '--logger',
      'zap',
    ];
    const p = this.place.ns
      ? this.place.ns.spawn(['etcd', ...args])
      : spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
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

/**
 * A cluster of etcd members (Debian's etcd-server), each its own process with its own
 * data dir and loopback ports: the leader can be killed, a member restarted, the whole
 * cluster stopped and started again.
 */
export class EtcdCluster {
  private constructor(readonly members: Etcd[]) {}

  /**
   * `size` members on the test's loopback; or, with `fabric`, each in a namespace of its
   * own on that fabric at `addresses[i]` (client 2379, peer 2380 on that address), reached
   * from the test through a relay.
   */
  static async start(
    tb: Testbed,
    size = 3,
    opts: { fabric?: Fabric; addresses?: string[] } = {},
  ): Promise<EtcdCluster> {
    const dir = tb.tempDir('etcd-cluster');
    const places: Placement[] = [];
    for (let i = 0; i < size; i++) {
      if (!opts.fabric) {
        places.push(onLoopback(await freePort(), await freePort()));
        continue;
      }
      const ip = opts.addresses?.[i];
      if (!ip) throw new Error(`etcd member ${i + 1} needs an address on the fabric`);
      const ns = await tb.netns(`etcd${i + 1}`);
      await opts.fabric.attach(ns, { v4: `${ip}/24` });
      const relay = await HostForward.start(tb, ns, { host: ip, port: 2379 });
      places.push({
        clientUrl: `http://${ip}:2379`,
        peerUrl: `http://${ip}:2380`,
        hostEndpoint: relay.url,
        ns,
      });
    }
    const initial = places.map((pl, i) => `m${i + 1}=${pl.peerUrl}`).join(',');
    const members = places.map((pl, i) => {
      const d = path.join(dir, `m${i + 1}`);
      fs.mkdirSync(d);
      return Etcd.member(d, pl, `m${i + 1}`, initial);
    });
    const c = new EtcdCluster(members);
    tb.onCleanup(() => c.stop());
    // together: a member is healthy only once a quorum is up
    await Promise.all(members.map((m) => m.restart()));
    return c;
  }

  /** The client URLs from the test's loopback. */
  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  /** The client URLs where the members listen (for clients in the fabric's namespaces). */
  get clientUrls(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** The member the others follow (asked of every running member until one answers). */
  async leader(): Promise<Etcd> {
    return waitUntil('an etcd leader', async () => {
      for (const m of this.members) {
        if (m.pid === undefined) continue;
        const s = await m.status().catch(() => undefined);
        if (!s?.leader || s.leader === '0') continue;
        for (const x of this.members) {
          if (x.pid === undefined) continue;
          const xs = await x.status().catch(() => undefined);
          if (xs?.memberId === s.leader) return x;
        }
      }
      return undefined;
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }

  /** Every member back, on its data (stopped or killed ones). */
  async start(): Promise<void> {
    await Promise.all(this.members.filter((m) => m.pid === undefined).map((m) => m.restart()));
  }
}
