// A lab CA and a server certificate signed by it (openssl), so kubectl and client-node
// verify the server as they would a real cluster's, with a normal kubeconfig.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface LabCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Writes ca.crt, server.crt and server.key into `dir`, for the given IPs and names. */
export async function makeLabCertificates(
  dir: string,
  hosts: { ips?: string[]; dns?: string[] } = { ips: ['127.0.0.1'], dns: ['localhost'] },
): Promise<LabCertificates> {
  fs.mkdirSync(dir, { recursive: true });
  const f = (n: string): string => path.join(dir, n);
  const openssl = async (args: string[]): Promise<void> => {
    try {
      await run('openssl', args, { cwd: dir });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`openssl ${args[0]} failed: ${e.stderr || e.message}`);
    }
  };
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '30',
    '-subj',
    '/CN=tortie-lab-ca',
  ]);
  await openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
    '-subj',
    '/CN=tortie-apiserver',
  ]);
  const san = [
    ...(hosts.ips ?? []).map((i) => `IP:${i}`),
    ...(hosts.dns ?? []).map((d) => `DNS:${d}`),
  ].join(',');
  fs.writeFileSync(
    f('ext.cnf'),
    `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n`,
  );
  await openssl([
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('server.crt'),
    '-days',
    '30',
    '-extfile',
    f('ext.cnf'),
  ]);
  return { caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key') };
}
