// One watch stream: newline-delimited JSON events from an etcd watch, filtered by the
// request's selectors (an object leaving the selection is DELETED, as in Kubernetes),
// with BOOKMARKs when asked, ERROR 410 for a compacted resourceVersion, and a bounded
// send buffer: a client that stops reading is cut off rather than buffered without end.
import type http from 'node:http';
import { type ResourceType } from './resources';
import { decode, type KubeObject, type Storage } from './storage';
import { gone, statusBody } from './status';

export interface WatchRequest {
  type: ResourceType;
  namespace?: string;
  /** undefined or 0: current state as ADDED events first */
  from?: number;
  matches: (o: KubeObject) => boolean;
  bookmarks: boolean;
  timeoutSeconds: number;
  typed: (o: KubeObject) => KubeObject;
}

export interface WatchOptions {
  bookmarkMs: number;
  maxBufferBytes: number;
}

export async function serveWatch(
  storage: Storage,
  req: WatchRequest,
  res: http.ServerResponse,
  opts: WatchOptions,
): Promise<void> {
  const { type: t } = req;
  let start = req.from;
  let initial: KubeObject[] = [];
  if (!start) {
    const listed = await storage.list(t, req.namespace);
    start = Number(listed.revision);
    initial = listed.items.filter(req.matches);
  }
  const expired = !!req.from && (await storage.compactedAfter(req.from));
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
  // the client learns at once that its watch is established, before any event
  res.flushHeaders();
  let open = true;
  const etcd: { w?: Awaited<ReturnType<ReturnType<Storage['client']['watch']>['create']>> } = {};
  const timers: NodeJS.Timeout[] = [];
  const close = (): void => {
    if (!open) return;
    open = false;
    timers.forEach((x) => clearTimeout(x));
    void etcd.w?.cancel().catch(() => undefined);
  };
  const send = (type: string, object: unknown): void => {
    if (!open) return;
    res.write(`${JSON.stringify({ type, object })}\n`);
    if (res.writableLength > opts.maxBufferBytes) {
      // the client does not read: end this watch; it re-lists and watches again
      close();
      res.destroy();
    }
  };
  if (expired) {
    const e = gone(`too old resource version: ${req.from}`);
    res.end(`${JSON.stringify({ type: 'ERROR', object: statusBody(e) })}\n`);
    return;
  }
  res.on('close', close);
  for (const o of initial) send('ADDED', req.typed(o));
  let last = start;
  const w = await storage.client
    .watch()
    .prefix(storage.prefixOf(t, req.namespace))
    .withPreviousKV()
    .startRevision(String(start + 1))
    .create();
  etcd.w = w;
  if (!open) {
    void w.cancel().catch(() => undefined);
    return;
  }
  w.on('data', (d) => {
    for (const e of d.events) {
      const rev = Number(e.kv.mod_revision);
      last = Math.max(last, rev);
      const prev = e.prev_kv ? decode(e.prev_kv) : undefined;
      const was = prev ? req.matches(prev) : false;
      if (e.type === 'Delete') {
        if (prev && was)
          send(
            'DELETED',
            req.typed({ ...prev, metadata: { ...prev.metadata, resourceVersion: String(rev) } }),
          );
        continue;
      }
      const o = decode(e.kv);
      const is = req.matches(o);
      if (is) send(was ? 'MODIFIED' : 'ADDED', req.typed(o));
      else if (was) send('DELETED', req.typed(o));
    }
    // etcd's watch header: every event up to this revision has been delivered
    last = Math.max(last, Number(d.header.revision));
  });
  w.on('error', (err: Error) => {
    // etcd cancels a watch whose start was compacted away meanwhile
    if (open && /compact/i.test(err.message))
      res.end(
        `${JSON.stringify({ type: 'ERROR', object: statusBody(gone(`too old resource version: ${start}`)) })}\n`,
      );
    else res.end();
    close();
  });
  if (req.bookmarks) {
    const tick = (): void => {
      send('BOOKMARK', {
        kind: t.kind,
        apiVersion: t.group ? `${t.group}/${t.version}` : t.version,
        metadata: { resourceVersion: String(last) },
      });
      timers.push(setTimeout(tick, opts.bookmarkMs));
    };
    timers.push(setTimeout(tick, opts.bookmarkMs));
  }
  timers.push(
    setTimeout(() => {
      close();
      res.end();
    }, req.timeoutSeconds * 1000),
  );
}
