// Gives processes inside a test namespace a TCP port that reaches a service on the
// test's loopback (etcd, say) without connecting the namespace to the host network:
// a relay inside the namespace listens on 127.0.0.1:<port> and passes each connection
// through a unix socket (a file, visible from every namespace) to a relay in the test
// process, which connects to the target.
import net from 'node:net';
import path from 'node:path';
import { stopProcess, type Netns, type Testbed } from './netns';

const INNER = `
const net = require('node:net');
const [port, sock] = process.argv.slice(1);
net.createServer((c) => {
  c.setNoDelay(true); // no Nagle: a relay must not hold small requests back
  const u = net.connect(sock);
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\\n'));
`;

/** A server whose each connection is piped both ways to a socket `connect()` opens. */
function relayServer(tb: Testbed, connect: () => net.Socket): net.Server {
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    c.setNoDelay(true);
    const up = connect();
    up.setNoDelay(true);
    conns.add(c).add(up);
    c.pipe(up).pipe(c);
    const drop = () => {
      c.destroy();
      up.destroy();
      conns.delete(c);
      conns.delete(up);
    };
    c.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
  });
  tb.onCleanup(async () => {
    for (const c of conns) c.destroy();
    await new Promise((r) => server.close(r));
  });
  return server;
}

/** Runs the relay `script` in `ns` and waits for its "ready". */
async function innerRelay(tb: Testbed, ns: Netns, script: string, args: string[]): Promise<void> {
  const child = ns.spawn([process.execPath, '-e', script, ...args]);
  tb.onCleanup(() => stopProcess(child));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`relay in ${ns.name} exited ${code}: ${err}`)));
  });
}

export class PortForward {
  private constructor(readonly port: number) {}

  /** In `ns`, 127.0.0.1:`port` now reaches `target` (host:port on the test's loopback). */
  static async start(
    tb: Testbed,
    ns: Netns,
    port: number,
    target: { host: string; port: number },
  ): Promise<PortForward> {
    const sock = path.join(tb.tempDir('fwd'), 'relay.sock');
    const server = relayServer(tb, () => net.connect(target.port, target.host));
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    await innerRelay(tb, ns, INNER, [String(port), sock]);
    return new PortForward(port);
  }
}

const INNER_TO_TARGET = `
const net = require('node:net');
const [sock, host, port] = process.argv.slice(1);
net.createServer((u) => {
  const c = net.connect(Number(port), host);
  c.setNoDelay(true);
  u.pipe(c).pipe(u);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
}).listen(sock, () => process.stdout.write('ready\\n'));
`;

/**
 * The other way round: a port on the test's loopback that reaches `target` inside `ns`
 * (a daemon listening on the namespace's own address), again through a unix socket and
 * without connecting the namespace to the host network.
 */
export class HostForward {
  private constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(
    tb: Testbed,
    ns: Netns,
    target: { host: string; port: number },
  ): Promise<HostForward> {
    const sock = path.join(tb.tempDir('hfwd'), 'relay.sock');
    await innerRelay(tb, ns, INNER_TO_TARGET, [sock, target.host, String(target.port)]);
    const server = relayServer(tb, () => net.connect(sock));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new HostForward((server.address() as net.AddressInfo).port);
  }
}
