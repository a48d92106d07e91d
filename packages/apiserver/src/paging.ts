// List paging (`limit` and `continue`) as kube-apiserver's etcd3 store does it: a continue
// token is base64url(JSON {"v":"meta.k8s.io/v1","rv":<revision>,"start":"<key>\u0000"}),
// the key relative to the list's etcd prefix, so every page is read at the first page's
// revision. An rv of -1 (handed out with a 410 for a compacted revision) continues at
// the latest revision, knowingly inconsistent.
import { badRequest } from './status';

export interface ContinueToken {
  /** The revision every page is read at; -1: the latest. */
  rv: number;
  /** The key (relative to the list's prefix) the next page starts at. */
  start: string;
}

const VERSION = 'meta.k8s.io/v1';

export function encodeContinue(token: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: VERSION, rv: token.rv, start: token.start })).toString(
    'base64url',
  );
}

/** The token a client sent back; 400 naming what is wrong with it otherwise. */
export function decodeContinue(text: string): ContinueToken {
  const bad = (why: string) => badRequest(`continue key is not valid: ${why}`);
  let o: unknown;
  try {
    // kube-apiserver takes URL-safe base64 with or without padding
    o = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw bad('the token is not base64-encoded JSON');
  }
  const t = o as { v?: unknown; rv?: unknown; start?: unknown };
  if (typeof o !== 'object' || o === null || t.v !== VERSION)
    throw bad('server does not recognize this encoded version');
  if (typeof t.rv !== 'number' || !Number.isInteger(t.rv) || (t.rv < 1 && t.rv !== -1))
    throw bad('incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  if (typeof t.start !== 'string' || t.start.length === 0)
    throw bad('encoded start key empty (version meta.k8s.io/v1)');
  // the key stays inside the list's prefix
  if (t.start.split('/').some((part) => part === '..' || part === '.') || t.start.startsWith('/'))
    throw bad('path traversal');
  return { rv: t.rv, start: t.start };
}

/** kube-apiserver's words for a continue token whose revision etcd has compacted. */
export const CONTINUE_EXPIRED =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

/** A `limit` query parameter: a positive count, or undefined for none (0 or absent). */
export function limitOf(text: string | null): number | undefined {
  if (text === null || text === '') return undefined;
  if (!/^-?\d+$/.test(text)) throw badRequest(`invalid limit "${text}": not an integer`);
  const n = Number(text);
  return n > 0 ? n : undefined;
}
