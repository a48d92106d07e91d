// install-cni on the real filesystem (temp dirs standing in for the host's /opt/cni/bin
// and /etc/cni/net.d), and the built binary as the init container runs it.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  installCni,
  installCniSettings,
  parseNetConf,
  renderConflist,
  templateValues,
  watchToken,
  DEFAULT_CNI_TEMPLATE,
} from '../src';

const CLI = path.resolve(__dirname, '../dist/install-cni-cli.js');

describe('install-cni', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let plugins: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-install-cni-'));
    for (const d of ['bin', 'net.d', 'sa', 'src']) fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, 'sa', 'token'), 'token-1\n');
    fs.writeFileSync(path.join(dir, 'sa', 'ca.crt'), 'CA PEM');
    plugins = path.join(dir, 'src');
    fs.writeFileSync(path.join(plugins, 'tortie-cni'), '#!/bin/true\n');
    env = {
      CNI_NET_DIR: path.join(dir, 'net.d'),
      CNI_BIN_DIR: path.join(dir, 'bin'),
      KUBERNETES_NODE_NAME: 'node-7',
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      SERVICEACCOUNT_DIR: path.join(dir, 'sa'),
    };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const kubeconfig = () =>
    JSON.parse(fs.readFileSync(path.join(dir, 'net.d', 'tortie-kubeconfig'), 'utf8'));

  test('installs the plugin, its kubeconfig and the config list for this node', async () => {
    const written = await installCni(installCniSettings(env, plugins));
    expect(written).toEqual([
      path.join(dir, 'bin', 'tortie-cni'),
      path.join(dir, 'net.d', 'tortie-kubeconfig'),
      path.join(dir, 'net.d', '10-tortie.conflist'),
    ]);
    expect(fs.statSync(path.join(dir, 'bin', 'tortie-cni')).mode & 0o777).toBe(0o755);
    const list = JSON.parse(fs.readFileSync(path.join(dir, 'net.d', '10-tortie.conflist'), 'utf8'));
    const conf = list.plugins[0];
    expect(conf).toMatchObject({
      type: 'tortie-cni',
      nodename: 'node-7',
      datastore_type: 'kubernetes',
      mtu: 1440,
      kubernetes: { kubeconfig: '/etc/cni/net.d/tortie-kubeconfig' },
    });
    // the plugin accepts what was written
    expect(
      parseNetConf(JSON.stringify({ ...conf, cniVersion: list.cniVersion, name: list.name }))
        .nodename,
    ).toBe('node-7');
    const kc = kubeconfig();
    expect(kc.clusters[0].cluster).toEqual({
      server: 'https://10.96.0.1:443',
      'certificate-authority-data': Buffer.from('CA PEM').toString('base64'),
    });
    expect(kc.users[0].user.token).toBe('token-1');
    expect(fs.statSync(path.join(dir, 'net.d', 'tortie-kubeconfig')).mode & 0o777).toBe(0o600);
  });

  test('an etcd datastore gets its endpoints and no kubeconfig', async () => {
    const s = installCniSettings(
      { ...env, DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'http://10.0.0.1:2379', CNI_MTU: '1480' },
      plugins,
    );
    await installCni(s);
    const list = JSON.parse(fs.readFileSync(path.join(dir, 'net.d', '10-tortie.conflist'), 'utf8'));
    expect(list.plugins[0]).toMatchObject({ etcd_endpoints: 'http://10.0.0.1:2379', mtu: 1480 });
    expect(fs.existsSync(path.join(dir, 'net.d', 'tortie-kubeconfig'))).toBe(false);
  });

  test('dual stack: ASSIGN_IPV6=true fills __ASSIGN_IPV6__, and the plugin then asks for both families', async () => {
    const ipam = async (e: NodeJS.ProcessEnv) => {
      await installCni(installCniSettings(e, plugins));
      const list = JSON.parse(
        fs.readFileSync(path.join(dir, 'net.d', '10-tortie.conflist'), 'utf8'),
      );
      const conf = list.plugins[0];
      return parseNetConf(JSON.stringify({ ...conf, cniVersion: list.cniVersion, name: list.name }))
        .ipam;
    };
    // unset: IPv4 only, as before
    expect(await ipam(env)).toMatchObject({ assign_ipv4: true, assign_ipv6: false });
    expect(await ipam({ ...env, ASSIGN_IPV6: 'true' })).toMatchObject({
      assign_ipv4: true,
      assign_ipv6: true,
    });
    expect(() => installCniSettings({ ...env, ASSIGN_IPV6: 'yes' }, plugins)).toThrow(
      'install-cni: ASSIGN_IPV6=yes: not true or false',
    );
  });

  test('a rotated token rewrites the kubeconfig', async () => {
    const s = installCniSettings(env, plugins);
    const stop = new AbortController();
    let rewrites = 0;
    const watching = watchToken(s, {
      intervalMs: 20,
      signal: stop.signal,
      onRewrite: () => rewrites++,
    });
    try {
      await new Promise((r) => setTimeout(r, 100));
      expect(kubeconfig().users[0].user.token).toBe('token-1');
      expect(rewrites).toBe(0);
      // as the kubelet rotates a projected token: a new file swapped in by rename
      fs.writeFileSync(path.join(dir, 'sa', '.token.new'), 'token-2\n');
      fs.renameSync(path.join(dir, 'sa', '.token.new'), path.join(dir, 'sa', 'token'));
      for (let i = 0; i < 100 && rewrites === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(kubeconfig().users[0].user.token).toBe('token-2');
      expect(rewrites).toBe(1);
    } finally {
      stop.abort();
      await watching;
    }
  });

  test('problems are named, every one at once', () => {
    expect(() => installCniSettings({ DATASTORE_TYPE: 'consul', CNI_MTU: 'big' }, plugins)).toThrow(
      'install-cni: DATASTORE_TYPE=consul: not one of kubernetes, etcdv3; KUBERNETES_NODE_NAME (or NODENAME) is not set; CNI_MTU=big: not an MTU (576-65535)',
    );
    const values = templateValues(installCniSettings(env, plugins));
    expect(() =>
      renderConflist(DEFAULT_CNI_TEMPLATE.replace('__CNI_MTU__', '__MTU__'), values),
    ).toThrow(/^install-cni: the CNI template has unknown __MTU__$/);
    expect(() => renderConflist('{"plugins": [', {})).toThrow(/not JSON once filled in/);
  });

  const runCli = (e: NodeJS.ProcessEnv) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [CLI],
        { env: { PATH: process.env.PATH, ...e } },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      ),
    );

  test('the binary: a missing token names its path, exits 1 and writes no config list', async () => {
    fs.rmSync(path.join(dir, 'sa', 'token'));
    const r = await runCli(env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot install ${path.join(dir, 'sa', 'token')}: ENOENT`);
    expect(fs.existsSync(path.join(dir, 'net.d', '10-tortie.conflist'))).toBe(false);
  });

  test('the binary: an unusable bin directory names it and exits 1', async () => {
    fs.rmSync(path.join(dir, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'bin'), 'not a directory');
    const r = await runCli(env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot install ${path.join(dir, 'bin', 'tortie-cni.d')}: ENOTDIR`);
  });

  test('the binary installs the built tortie-cni', async () => {
    const r = await runCli(env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `install-cni: wrote ${path.join(dir, 'net.d', '10-tortie.conflist')}`,
    );
    expect(fs.readFileSync(path.join(dir, 'bin', 'tortie-cni'))).toEqual(
      fs.readFileSync(path.resolve(__dirname, '../dist/tortie-cni')),
    );
  });
});
