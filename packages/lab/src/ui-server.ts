// The lab's read-only web page (npm run lab -- --keep --ui): plain HTML and JS from ui/,
// the current state as JSON, a server-sent event stream of state and events, and policy
// explain for one cell of the matrix. Listens on loopback only; answers GET only.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Cluster } from './cluster';
import { LabView } from './ui-view';

const UI_DIR = path.resolve(__dirname, '../ui');
const FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/style.css': 'style.css',
};
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

export interface LabUi {
  url: string;
  view: LabView;
  close(): Promise<void>;
}

export async function startUi(c: Cluster, port = 0): Promise<LabUi> {
  const view = new LabView(c);
  await view.start();
  const streams = new Set<http.ServerResponse>();
  const send = (res: http.ServerResponse, event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  view.on('state', (s) => streams.forEach((r) => send(r, 'state', s)));
  view.on('event', (e) => streams.forEach((r) => send(r, 'event', e)));

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://lab');
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end('read-only\n');
      return;
    }
    const file = FILES[url.pathname];
    if (file) {
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] });
      res.end(fs.readFileSync(path.join(UI_DIR, file)));
    } else if (url.pathname === '/api/state') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ state: view.state, events: view.events }));
    } else if (url.pathname === '/api/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      send(res, 'state', view.state);
      for (const e of view.events) send(res, 'event', e);
      streams.add(res);
      req.on('close', () => streams.delete(res));
    } else if (url.pathname === '/api/explain') {
      const from = url.searchParams.get('from') ?? '';
      const to = url.searchParams.get('to') ?? '';
      view.explain(from, to).then(
        (x) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(x));
        },
        (e: Error) => {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: e.message }));
        },
      );
    } else res.writeHead(404).end('not found\n');
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => ok());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/`,
    view,
    close: async () => {
      view.stop();
      for (const r of streams) r.end();
      await new Promise((r) => server.close(r));
    },
  };
}
