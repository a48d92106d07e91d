// Shared by the loopback tests (our speakers talking over 127.0.0.x, no root): polling,
// free ports, and speakers that are stopped after each test.
import net from 'node:net';
import { BgpSpeaker, parseSpeakerConfig, type SpeakerConfigInput } from '../src';
import { createLogger } from '../src/log';

export const quiet = createLogger('test', 'error');

/** Polls `fn` until it returns something truthy (awaiting it if it is a promise). */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function freePort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A speaker factory for a test file: every speaker it made is stopped after each test. */
export function useSpeakers(): (
  cfg: SpeakerConfigInput,
  originate?: string[],
) => Promise<BgpSpeaker> {
  const running: BgpSpeaker[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
  });
  return async (cfg, originate = []) => {
    const s = new BgpSpeaker(parseSpeakerConfig(cfg), { logger: quiet });
    running.push(s);
    await s.start();
    for (const p of originate) s.originate(p);
    return s;
  };
}
