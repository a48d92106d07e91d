// A datastore kept in one JSON file, for demos and `tortiectl --datastore-file`: the
// memory backend, loaded at open and written back (atomically) after every change.
import fs from 'node:fs';
import type { Kind, Resource } from '@tortie/api';
import type {
  Datastore,
  ListOptions,
  ListResult,
  ResourceKey,
  Watch,
  WatchEvent,
} from './datastore';
import { DatastoreError } from './datastore';
import { MemoryDatastore } from './memory';

export class FileDatastore implements Datastore {
  private constructor(
    private readonly file: string,
    private readonly mem: MemoryDatastore,
  ) {}

  static open(file: string): FileDatastore {
    if (!fs.existsSync(file)) return new FileDatastore(file, new MemoryDatastore());
    let snap: { revision: number; resources: Resource[] };
    try {
      snap = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof snap;
      if (typeof snap.revision !== 'number' || !Array.isArray(snap.resources))
        throw new Error('missing "revision" or "resources"');
    } catch (err) {
      throw new DatastoreError(
        'Invalid',
        `datastore file ${file} is not readable: ${(err as Error).message}`,
      );
    }
    return new FileDatastore(file, MemoryDatastore.fromSnapshot(snap));
  }

  private save(): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(this.mem.snapshot(), null, 1));
    fs.renameSync(tmp, this.file);
  }

  private async saving<T>(p: Promise<T>): Promise<T> {
    const v = await p;
    this.save();
    return v;
  }

  get = (key: ResourceKey) => this.mem.get(key);
  list = (opts: ListOptions): Promise<ListResult> => this.mem.list(opts);
  create = (r: Resource) => this.saving(this.mem.create(r));
  update = (r: Resource) => this.saving(this.mem.update(r));
  delete = (key: ResourceKey, opts?: { resourceVersion?: string }) =>
    this.saving(this.mem.delete(key, opts));
  watch = (kind: Kind, revision: string, onEvent: (e: WatchEvent) => void): Watch =>
    this.mem.watch(kind, revision, onEvent);
  close = () => this.mem.close();
}
