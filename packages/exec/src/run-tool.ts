// Running a kernel tool (ip, iptables-restore, ipset, sysctl...) with optional stdin.
//
// Node's spawn() blocks the calling thread until the child has exec'd (~2 ms from a
// process the agent's size); a node agent under a burst of pods spawns hundreds of tools,
// and measured its event loop blocked in spawn() for over a third of the burst. So the
// spawning happens on one worker thread, and the main thread only passes messages.
// Input may come as pieces (a generator), sent to the tool as they are produced; when
// the tool exits early (bad input) producing stops.
import { Worker } from 'node:worker_threads';
import { WORKER_SOURCE } from './worker-source';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A tool's stdin: none, one string, or pieces sent as they are produced. */
export type ToolInput = string | Iterable<string>;

interface Pending {
  resolve(r: ToolResult): void;
  reject(e: Error): void;
  finished: boolean;
}

const CHUNK = 1 << 16;
let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, Pending>();

function theWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(WORKER_SOURCE, { eval: true });
  w.unref(); // an idle worker does not keep the process alive
  w.on('message', (m: { t: string; id: number; message?: string } & Partial<ToolResult>) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    p.finished = true;
    if (m.t === 'done') p.resolve({ code: m.code!, stdout: m.stdout!, stderr: m.stderr! });
    else p.reject(new Error(m.message));
  });
  const lost = (why: string) => {
    if (worker === w) worker = undefined;
    for (const [id, p] of pending) {
      pending.delete(id);
      p.finished = true;
      p.reject(new Error(`the tool runner thread stopped: ${why}`));
    }
  };
  w.on('error', (e) => lost(e.message));
  w.on('exit', (code) => lost(`exit ${code}`));
  worker = w;
  return w;
}

/** Runs argv; resolves with its exit code and output, rejects when it cannot start. */
export function runTool(argv: string[], stdin?: ToolInput): Promise<ToolResult> {
  const w = theWorker();
  const id = nextId++;
  return new Promise<ToolResult>((resolve, reject) => {
    const p: Pending = {
      resolve,
      reject: (e) => reject(new Error(`${argv[0]}: ${e.message}`)),
      finished: false,
    };
    pending.set(id, p);
    w.ref(); // busy: keep the process alive until the answer
    w.postMessage({ t: 'start', id, argv, stdin: stdin !== undefined });
    if (typeof stdin === 'string') {
      w.postMessage({ t: 'data', id, chunk: stdin });
      w.postMessage({ t: 'end', id });
    } else if (stdin !== undefined) {
      feed(w, id, p, stdin).catch(() => undefined);
    }
  }).finally(() => {
    if (pending.size === 0) worker?.unref();
  });
}

/** Sends pieces in ~64 KB messages, yielding between them so the tool's answer is seen. */
async function feed(w: Worker, id: number, p: Pending, pieces: Iterable<string>): Promise<void> {
  let buf = '';
  try {
    for (const piece of pieces) {
      if (p.finished) return; // the tool is gone: stop producing
      buf += piece;
      if (buf.length >= CHUNK) {
        w.postMessage({ t: 'data', id, chunk: buf });
        buf = '';
        await new Promise((r) => setImmediate(r));
      }
    }
    if (buf) w.postMessage({ t: 'data', id, chunk: buf });
  } finally {
    // also when the producer threw: the tool sees its input end early and says so
    w.postMessage({ t: 'end', id });
  }
}
