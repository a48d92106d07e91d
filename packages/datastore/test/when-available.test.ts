import { DatastoreError } from '../src/datastore';
import { whenAvailable } from '../src/when-available';

test('waits out an unavailable datastore with a capped doubling delay, and says so', async () => {
  let calls = 0;
  const waits: number[] = [];
  const told: string[] = [];
  const v = await whenAvailable(
    async () => {
      if (++calls < 5) throw new DatastoreError('Unavailable', `etcd did not answer (${calls})`);
      return 'ok';
    },
    {
      delayMs: 100,
      maxDelayMs: 500,
      sleep: async (ms) => void waits.push(ms),
      onRetry: (e, attempt) => told.push(`${attempt}: ${e.message}`),
    },
  );
  expect(v).toBe('ok');
  expect(waits).toEqual([100, 200, 400, 500]);
  expect(told[0]).toBe('1: etcd did not answer (1)');
});

test('any other error is not retried', async () => {
  let calls = 0;
  const conflict = new DatastoreError('Conflict', 'modified');
  await expect(
    whenAvailable(async () => {
      calls++;
      throw conflict;
    }),
  ).rejects.toBe(conflict);
  await expect(whenAvailable(() => Promise.reject(new Error('bad input')))).rejects.toThrow(
    'bad input',
  );
  expect(calls).toBe(1);
});
