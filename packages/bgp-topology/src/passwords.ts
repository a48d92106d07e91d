// BGP passwords are Secret references (Calico's secretKeyRef); the speaker needs the
// keys. Reading them is the one side effect here, behind SecretReader: tortie-node and
// tortie-rr read Secrets as Kubernetes mounts them into a pod (<dir>/<secret>/<key>).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BgpConfig, BgpPeer, SecretRef } from './types';

/** The value of one key of a Secret, or undefined when there is no such Secret or key. */
export type SecretReader = (ref: SecretRef) => Promise<string | undefined>;

export interface PasswordResult {
  /** The peers with their keys read; a peer whose key could not be read is left out. */
  config: BgpConfig;
  missing: Array<{ peer: string; secret: SecretRef }>;
}

/**
 * Reads every peer's password. A peer whose Secret is missing gets no session: without
 * its key the other end drops our segments, and without ours it would be unauthenticated.
 */
export async function resolvePasswords(c: BgpConfig, read: SecretReader): Promise<PasswordResult> {
  const missing: PasswordResult['missing'] = [];
  const peers: BgpPeer[] = [];
  for (const p of c.peers) {
    if (!p.password) {
      peers.push(p);
      continue;
    }
    const key = await read(p.password);
    if (key === undefined || key === '') missing.push({ peer: p.name, secret: p.password });
    else peers.push({ ...p, md5Key: key });
  }
  return { config: { ...c, peers }, missing };
}

/**
 * Logs the peers left out for want of their password (nothing when none is): one line,
 * the same in tortie-node and tortie-rr.
 */
export function logMissingPasswords(
  logger: { error(message: string, meta: object): unknown },
  missing: PasswordResult['missing'],
): void {
  if (missing.length === 0) return;
  logger.error('BGP peers not configured: their password Secret cannot be read', {
    missing: missing.map((m) => `${m.peer}: ${m.secret.name}/${m.secret.key}`),
  });
}

// a Secret's name and key as Kubernetes allows them: no path can leave the directory
const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/** Secrets mounted as Kubernetes does: the file <dir>/<secret name>/<key>. */
export function secretFiles(dir: string): SecretReader {
  return async (ref) => {
    if (!SECRET_NAME.test(ref.name) || !SECRET_KEY.test(ref.key) || ref.key.startsWith('..'))
      return undefined;
    try {
      return await fs.readFile(path.join(dir, ref.name, ref.key), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  };
}
