// The tortie-apiserver binary (dist/main.js, built): flags as kube-apiserver names them,
// HTTPS with the lab CA and a token file, usage errors exit 2.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describeIf } from '@tortie/testbed';
import { makeLabCertificates } from '../src';
import { startHarness, until, writeKubeconfig, type Harness } from './harness';

const BIN = path.resolve(__dirname, '../dist/main.js');

test('usage errors exit 2 naming the problem', () => {
  const none = spawnSync('node', [BIN], { encoding: 'utf8' });
  expect(none.status).toBe(2);
  expect(none.stderr).toContain('--etcd-servers is required');
  const half = spawnSync(
    'node',
    [BIN, '--etcd-servers', 'http://127.0.0.1:1', '--tls-cert-file', 'x'],
    { encoding: 'utf8' },
  );
  expect(half.status).toBe(2);
  expect(half.stderr).toContain('--tls-cert-file and --tls-private-key-file go together');
  const port = spawnSync('node', [BIN, '--etcd-servers', 'http://127.0.0.1:1', '--port', '99999'], {
    encoding: 'utf8',
  });
  expect(port.status).toBe(2);
  expect(port.stderr).toContain('--port: not a port: 99999');
});

describeIf(['etcd'], 'tortie-apiserver binary', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  }, 60000);
  afterAll(async () => {
    await h?.stop();
  });

  test('serves HTTPS with the lab CA and a token file; kubectl applies the CRDs through it', async () => {
    const certs = await makeLabCertificates(path.join(h.dir, 'pki'));
    const tokens = path.join(h.dir, 'tokens.csv');
    fs.writeFileSync(tokens, 'the-token,admin,1\n');
    const child = spawn('node', [
      BIN,
      '--etcd-servers',
      h.etcd.endpoint,
      '--etcd-prefix',
      '/bin-test',
      '--port',
      '0',
      '--tls-cert-file',
      certs.certFile,
      '--tls-private-key-file',
      certs.keyFile,
      '--token-auth-file',
      tokens,
    ]);
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    try {
      await until('the URL', () => /https:\/\/127\.0\.0\.1:\d+\n/.test(out));
      const url = /https:\/\/127\.0\.0\.1:\d+/.exec(out)![0];
      const cfg = path.join(h.dir, 'bin-kubeconfig');
      writeKubeconfig(cfg, url, { ca: certs.caFile, token: 'the-token' });
      const r = await h.kubectl([
        '--kubeconfig',
        cfg,
        'apply',
        '-f',
        path.resolve(__dirname, '../../../deploy/crds/ippools.tortie.io.yaml'),
      ]);
      expect(r).toMatchObject({
        code: 0,
        stdout: expect.stringContaining('ippools.tortie.io created'),
      });
      const wrong = path.join(h.dir, 'bad-kubeconfig');
      writeKubeconfig(wrong, url, { ca: certs.caFile, token: 'nope' });
      expect((await h.kubectl(['--kubeconfig', wrong, 'get', 'ns'])).stderr).toContain(
        'Unauthorized',
      );
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    expect(child.exitCode).toBe(0);
  }, 60000);
});
