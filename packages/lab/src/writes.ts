// The lab's datastore writes, each safe to run at once with others: pods added together
// race to write their namespace's profile and their own labels, and the agents and
// tortie-controllers write beside the lab. A compare-and-swap that loses re-reads and
// applies again, as kube-controllers' reconcilers do, instead of failing the lab.
import { parseResource, type Resource } from '@tortie/api';
import { DatastoreError, type Datastore, type ResourceKey } from '@tortie/datastore';

/** Enough for any burst the lab makes; a write that still loses is a real problem. */
const ATTEMPTS = 50;

function raced(e: unknown): boolean {
  return (
    e instanceof DatastoreError &&
    (e.code === 'Conflict' || e.code === 'AlreadyExists' || e.code === 'NotFound')
  );
}

/**
 * Re-reads the resource and writes `change(current)` (current undefined: it does not
 * exist) by compare-and-swap, until the write lands; `undefined` from change: nothing
 * to write.
 */
export async function writeWithRetry(
  ds: Datastore,
  key: ResourceKey,
  change: (cur: Resource | undefined) => Resource | undefined,
): Promise<Resource | undefined> {
  for (let attempt = 1; ; attempt++) {
    const cur = await ds.get(key);
    const next = change(cur);
    if (!next) return cur;
    try {
      return cur
        ? await ds.update({
            ...next,
            metadata: { ...next.metadata, resourceVersion: cur.metadata.resourceVersion },
          })
        : await ds.create(next);
    } catch (e) {
      if (!raced(e) || attempt >= ATTEMPTS) throw e;
      // someone else wrote in between: back off a little so a burst spreads out
      await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
    }
  }
}

/** Creates or replaces the resource (validated), whoever wrote it meanwhile. */
export async function applyResource(ds: Datastore, doc: object): Promise<Resource> {
  const r = parseResource({ apiVersion: 'tortie.io/v1', ...doc });
  const key = { kind: r.kind, name: r.metadata.name, namespace: r.metadata.namespace };
  return (await writeWithRetry(ds, key, () => r))!;
}

/** Adds labels to an existing resource, keeping the ones others add at the same time. */
export async function addLabels(
  ds: Datastore,
  key: ResourceKey,
  labels: Record<string, string>,
): Promise<Resource> {
  const out = await writeWithRetry(ds, key, (cur) => {
    if (!cur) throw new Error(`${key.kind} ${key.namespace ?? ''}/${key.name} not found`);
    return { ...cur, metadata: { ...cur.metadata, labels: { ...cur.metadata.labels, ...labels } } };
  });
  return out!;
}
