// What every daemon driver shares: one process inside a namespace, its output kept in
// a log file in the driver's temp dir, a readiness probe, restart and stop by PID.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stopProcess, waitUntil, type Netns } from './netns';

export abstract class Daemon {
  private proc?: ChildProcess;

  protected constructor(
    readonly ns: Netns,
    protected readonly dir: string,
    private readonly name: string,
  ) {}

  /** The daemon's PID (ip netns exec replaces itself with the daemon). */
  get pid(): number {
    return this.proc!.pid!;
  }

  /** The command line that runs the daemon in the foreground. */
  protected abstract command(): string[];

  /** Resolves once the daemon answers its control interface. */
  protected abstract probe(): Promise<unknown>;

  /** Starts the process and waits until it is ready; a failure carries the daemon's log. */
  protected async launch(timeoutMs = 10000): Promise<void> {
    const p = this.ns.spawn(this.command());
    const log = path.join(this.dir, `${this.name}.log`);
    p.stdout?.on('data', (d: Buffer) => fs.appendFileSync(log, d));
    p.stderr?.on('data', (d: Buffer) => fs.appendFileSync(log, d));
    this.proc = p;
    try {
      await waitUntil(`${this.name} to answer`, () => this.probe().then(() => true), timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.name} log:\n${this.log().slice(-3000)}`);
    }
  }

  /** Restarts the process with the same configuration: peers see the session drop and return. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  log(): string {
    const f = path.join(this.dir, `${this.name}.log`);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
  }

  async stop(): Promise<void> {
    if (this.proc) await stopProcess(this.proc);
  }
}
