/**
 * Waits for every promise, then throws the first failure, if any: work started together
 * has all finished before a caller retries it, so a retry never overlaps a run.
 */
export async function allSettled(ps: Array<Promise<unknown>>): Promise<void> {
  for (const r of await Promise.allSettled(ps)) if (r.status === 'rejected') throw r.reason;
}
