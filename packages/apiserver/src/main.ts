#!/usr/bin/env node
// tortie-apiserver: the lab's Kubernetes API, stored in etcd. Flags follow
// kube-apiserver's names where there is one.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { parseTokenFile, type TokenUser } from './auth';
import { serviceAccountIssuer, type ServiceAccountIssuer } from './sa-token';

const USAGE = `usage: tortie-apiserver --etcd-servers URL[,URL] [options]
  --bind-address ADDR         address to listen on (default 127.0.0.1)
  --port N                    port (default 6443; 0 picks a free one)
  --etcd-prefix PREFIX        key prefix in etcd (default /registry)
  --tls-cert-file FILE        serve HTTPS with this certificate (PEM)...
  --tls-private-key-file FILE ...and this key
  --token-auth-file FILE      bearer tokens accepted (CSV: token,user,uid[,"group,..."] as
                              kube-apiserver); with it, requests without a valid token get 401
  --authorization-mode MODE   AlwaysAllow (default) or RBAC: the stored ClusterRoles, Roles
                              and bindings decide, 403 otherwise; system:masters may do anything
  --service-account-signing-key-file FILE
                              PEM private key (RSA or EC P-256) that signs service-account
                              tokens: serves the TokenRequest API (kubectl create token) and
                              accepts the tokens it issued; needs --service-account-issuer
  --service-account-key-file FILE
                              more PEM public keys tokens may be verified with (repeatable)
  --service-account-issuer URL
                              the tokens' iss claim
  --api-audiences A[,A]       audiences of issued tokens and accepted ones (default: the issuer)
  --max-request-bytes N       request body limit (default 3145728)
Prints the URL it serves on, then serves until SIGINT/SIGTERM.`;

function fail(msg: string): never {
  process.stderr.write(`tortie-apiserver: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        'etcd-servers': { type: 'string' },
        'bind-address': { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '6443' },
        'etcd-prefix': { type: 'string', default: '/registry' },
        'tls-cert-file': { type: 'string' },
        'tls-private-key-file': { type: 'string' },
        'token-auth-file': { type: 'string' },
        'authorization-mode': { type: 'string', default: 'AlwaysAllow' },
        'max-request-bytes': { type: 'string' },
        'service-account-signing-key-file': { type: 'string' },
        'service-account-key-file': { type: 'string', multiple: true },
        'service-account-issuer': { type: 'string' },
        'api-audiences': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!values['etcd-servers']) fail('--etcd-servers is required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    fail(`--port: not a port: ${values.port}`);
  if (!!values['tls-cert-file'] !== !!values['tls-private-key-file'])
    fail('--tls-cert-file and --tls-private-key-file go together');
  const read = (f: string): string => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch (err) {
      return fail(`cannot read ${f}: ${(err as Error).message}`);
    }
  };
  let tokens: TokenUser[] | undefined;
  if (values['token-auth-file'])
    try {
      tokens = parseTokenFile(read(values['token-auth-file']));
    } catch (err) {
      fail(`${values['token-auth-file']}: ${(err as Error).message}`);
    }
  const mode = values['authorization-mode'];
  if (mode !== 'AlwaysAllow' && mode !== 'RBAC')
    fail(`--authorization-mode must be AlwaysAllow or RBAC, got "${mode}"`);
  if (tokens && !tokens.length) fail(`${values['token-auth-file']} holds no token`);
  const maxBody = values['max-request-bytes'] ? Number(values['max-request-bytes']) : undefined;
  if (maxBody !== undefined && !(maxBody > 0)) fail('--max-request-bytes: not a positive number');
  let serviceAccounts: ServiceAccountIssuer | undefined;
  const signing = values['service-account-signing-key-file'];
  if (signing) {
    if (!values['service-account-issuer'])
      fail('--service-account-signing-key-file needs --service-account-issuer');
    try {
      serviceAccounts = serviceAccountIssuer({
        signingKeyPem: read(signing),
        publicKeyPems: (values['service-account-key-file'] ?? []).map(read),
        issuer: values['service-account-issuer'],
        audiences: (values['api-audiences'] ?? '').split(',').filter(Boolean),
      });
    } catch (err) {
      fail(`service-account keys: ${(err as Error).message}`);
    }
  } else if (values['service-account-issuer'] || values['service-account-key-file'])
    fail(
      '--service-account-issuer and --service-account-key-file need --service-account-signing-key-file',
    );
  // the server (etcd3 with gRPC, the API schemas) loads once the flags are good: --help
  // and a flag error answer without it
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ApiServer } = require('./server') as typeof import('./server');
  const server = new ApiServer({
    etcd: values['etcd-servers'].split(','),
    prefix: values['etcd-prefix'],
    ...(values['tls-cert-file']
      ? { tls: { cert: read(values['tls-cert-file']), key: read(values['tls-private-key-file']!) } }
      : {}),
    ...(tokens ? { tokens } : {}),
    ...(serviceAccounts ? { serviceAccounts } : {}),
    authorization: mode,
    ...(maxBody ? { maxBodyBytes: maxBody } : {}),
  });
  const url = await server.listen(port, values['bind-address']);
  process.stdout.write(`${url}\n`);
  const stop = (): void => void server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

void main().catch((err: Error) => {
  process.stderr.write(`tortie-apiserver: ${err.message}\n`);
  process.exit(1);
});
