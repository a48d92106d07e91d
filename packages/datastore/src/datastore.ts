// The one Datastore interface every backend implements: CRUD with optimistic
// concurrency on resourceVersion, list with a revision, and watch from a revision.
import type { Kind, Resource } from '@tortie/api';

export interface ResourceKey {
  kind: Kind;
  name: string;
  namespace?: string;
}

export interface ListOptions {
  kind: Kind;
  namespace?: string;
  namePrefix?: string;
}

export interface ListResult {
  items: Resource[];
  /** The revision the list is consistent at: watch from here. */
  revision: string;
}

export type WatchEvent =
  | { type: 'added' | 'modified'; resource: Resource; revision: string }
  | { type: 'deleted'; resource: Resource; revision: string }
  | { type: 'bookmark'; revision: string }
  | { type: 'error'; error: DatastoreError };

export interface Watch {
  stop(): void;
}

export interface Datastore {
  get(key: ResourceKey): Promise<Resource | undefined>;
  list(opts: ListOptions): Promise<ListResult>;
  /** Fails with AlreadyExists. Returns the stored resource with its resourceVersion. */
  create(r: Resource): Promise<Resource>;
  /** Compare-and-swap when metadata.resourceVersion is set (Conflict on mismatch); NotFound when absent. */
  update(r: Resource): Promise<Resource>;
  /** Fails with NotFound; with resourceVersion, Conflict on mismatch. Returns what was deleted. */
  delete(key: ResourceKey, opts?: { resourceVersion?: string }): Promise<Resource>;
  /** Events after `revision` for one kind, in order. A compacted revision gives an error event 'Compacted'. */
  watch(kind: Kind, revision: string, onEvent: (e: WatchEvent) => void): Watch;
  close(): Promise<void>;
}

export type ErrorCode =
  'NotFound' | 'AlreadyExists' | 'Conflict' | 'Compacted' | 'Unavailable' | 'Invalid';

export class DatastoreError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DatastoreError';
  }
}

export function keyOf(r: Resource): ResourceKey {
  return { kind: r.kind, name: r.metadata.name, namespace: r.metadata.namespace };
}

export function keyText(k: ResourceKey): string {
  return `${k.kind} ${k.namespace ? `${k.namespace}/` : ''}${k.name}`;
}
