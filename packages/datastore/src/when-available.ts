// Waiting for a datastore that is not there yet: as calico-node at startup, an
// unreachable datastore is waited for (and said so) instead of ending the process; any
// other error (a refused write, a bad resource) is the caller's to handle.
import { DatastoreError } from './datastore';

export interface WhenAvailableOptions {
  /** Told each failed attempt and the wait before the next. */
  onRetry?: (err: DatastoreError, attempt: number, waitMs: number) => void;
  /** First wait; doubled per attempt up to maxDelayMs. */
  delayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Runs `fn` until it does not fail with an Unavailable datastore error. */
export async function whenAvailable<T>(
  fn: () => Promise<T>,
  opts: WhenAvailableOptions = {},
): Promise<T> {
  const { delayMs = 500, maxDelayMs = 5000 } = opts;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof DatastoreError) || e.code !== 'Unavailable') throw e;
      const wait = Math.min(maxDelayMs, delayMs * 2 ** (attempt - 1));
      opts.onRetry?.(e, attempt, wait);
      await sleep(wait);
    }
  }
}
