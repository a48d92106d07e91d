// The fixture of the e2e files that run `npm run lab` as an operator does (lab-tor,
// lab-attach-kdd, lab-services): the lab as a child process with its output collected,
// the printed shell lines typed as they are, and the teardown of what an attach leaves
// (the router the test started, the tt-extra namespace and directory, the lab itself).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { stopProcess, waitUntil } from '@tortie/testbed';

/** The addresses of a two-node lab's nodes. */
export const LAB_NODES = ['10.99.0.11', '10.99.0.12'];
export const CLI = path.resolve(__dirname, '../packages/lab/dist/cli.js');
const ROOT = path.resolve(__dirname, '..');

/** Runs a printed script as typed (bash -euo pipefail, from the checkout): its stdout. */
export const sh = (script: string): string => {
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`${script}\nfailed: ${r.stdout}${r.stderr}`);
  return r.stdout;
};

/** The line after `heading` in a printed script. */
export const lineAfter = (script: string, heading: string): string => {
  const lines = script.split('\n');
  const i = lines.indexOf(heading);
  if (i < 0) throw new Error(`no line "${heading}" in:\n${script}`);
  return lines[i + 1];
};

/** `npm run lab -- <args>` running in its own process group; its output so far in `out`. */
export class LabRun {
  out = '';
  /** rejects when the lab exits (awaited only while it should be up) */
  readonly exited: Promise<never>;
  /** a router the test started from the printed attach steps */
  router: ChildProcess | undefined;

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, [CLI, ...args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise<never>((_, fail) =>
      this.proc.once('exit', (code) => fail(new Error(`the lab exited (${code}):\n${this.out}`))),
    );
    this.exited.catch(() => undefined);
  }
  readonly proc: ChildProcess;

  /** Waits until the output has `text`; fails at once, with the output, if the lab exits. */
  async waitFor(text: string, timeoutMs: number): Promise<void> {
    await Promise.race([
      waitUntil(`"${text}" in the lab's output`, () => this.out.includes(text), timeoutMs, 500),
      this.exited,
    ]);
  }

  /** Ctrl-C: SIGTERM, and the exit code. */
  async interrupt(): Promise<number | null> {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    const code = new Promise<number | null>((r) => this.proc.once('exit', (c) => r(c)));
    this.proc.kill('SIGTERM');
    return code;
  }

  /** For afterAll, also after a failure: the router, the attach's namespace and dir, the lab. */
  async cleanup(): Promise<void> {
    if (this.router) await stopProcess(this.router);
    this.router = undefined;
    spawnSync('ip', ['netns', 'del', 'tt-extra']);
    spawnSync('rm', ['-rf', '/tmp/tt-extra']);
    await this.interrupt();
  }
}

/** Runs the demo to its end (no --keep): its output; fails with the output unless it exits 0. */
export function runLab(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const lab = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    lab.stdout.on('data', (d: Buffer) => (out += d.toString()));
    lab.stderr.on('data', (d: Buffer) => (out += d.toString()));
    lab.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`the lab exited ${code}:\n${out}`)),
    );
  });
}

/**
 * The answers a demo line reports ("<what>: web1 x6, web2 x6 (client seen as ...)"): each
 * backend's count, or undefined when the line is missing.
 */
function answers(out: string, start: string): Map<string, number> | undefined {
  const line = out.split('\n').find((l) => l.startsWith(start));
  if (!line) return undefined;
  const list = line.slice(line.lastIndexOf(': ') + 2).replace(/ \(client seen as .*\)$/, '');
  return new Map(
    list.split(', ').map((x) => {
      const [who, n] = x.split(' x');
      return [who, Number(n)];
    }),
  );
}

/** Every one of 12 connections answered by a web pod (no timeout, no refusal). */
function expectWebs(out: string, start: string): void {
  const a = answers(out, start);
  expect(a).toBeDefined();
  for (const who of a!.keys()) expect(who).toMatch(/^web\d$/);
  expect([...a!.values()].reduce((x, y) => x + y, 0)).toBe(12);
}

/**
 * The demo's Services section (issue 15): each type answered by the web pods from where it
 * should be, and BIRD's ECMP route for the LoadBalancer IP. Returns that IP.
 */
export function expectServices(out: string): string {
  expectWebs(out, 'ClusterIP web 10.96.0.10:80, from pod db1, ');
  expectWebs(out, `NodePort web-nodeport node2 ${LAB_NODES[1]}:30080, from the ToR: `);
  const lbIp = /^tortie-controllers gave web-lb (198\.51\.100\.\d+) from the pool/m.exec(out)?.[1];
  expect(lbIp).toBeDefined();
  expectWebs(out, `LoadBalancer web-lb ${lbIp}:80, from the ToR: `);
  expectWebs(out, 'ExternalIP web-external 203.0.113.10:80, from the ToR: ');
  // BIRD's paths from both nodes, and one kernel route with a next hop per node
  const route = out.slice(out.indexOf(`== ToR (bird): its route for the LoadBalancer IP ${lbIp}`));
  const bird = route.slice(route.indexOf(`show route for ${lbIp} all`));
  const kernel = route.slice(route.indexOf('ip route show match'));
  expect(bird).toMatch(/198\.51\.100\.0\/24\s+unicast \[node\d/);
  for (const n of LAB_NODES) {
    expect(bird.slice(0, bird.indexOf('$ ip netns'))).toContain(`via ${n} `);
    expect(kernel).toMatch(new RegExp(`^\\s+nexthop via ${n.replace(/\./g, '\\.')} `, 'm'));
  }
  return lbIp!;
}
