// The tortie/node image as a node runs it: built by `npm run image` (deploy/image/build.js:
// no engine, no registry), unpacked by umoci, every command run by real `runc run` as root.
// The image is .image/ as npm run image leaves it, built when stale (labImage: once per
// run for this file and the lab's containers mode).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { labImage, type BuiltImage } from '@tortie/lab';
import { OciBundle, SLOW, describeIf } from '@tortie/testbed';

const REPO = path.resolve(__dirname, '..');
const VERSION = JSON.parse(fs.readFileSync(path.join(REPO, 'lerna.json'), 'utf8')).version;

describeIf(['root', 'runc'], 'the tortie/node image under runc', () => {
  let dir: string;
  let image: OciBundle;
  let build: BuiltImage;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-image-test-'));
    // npm run image's output, built once per run for this test and the lab's containers
    build = labImage((line) => process.stdout.write(`npm run image: ${line}\n`));
    image = OciBundle.unpack(`${build.layout}:${build.image}`, path.join(dir, 'bundle'));
  }, 600_000 * SLOW);
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('is tagged tortie/node:<version> and runs tortie-node by default', () => {
    expect(build.image).toBe(`tortie/node:${VERSION}`);
    expect(image.process.args).toEqual(['tortie-node']);
  });

  test.each([
    ['tortie-node', 'usage: tortie-node'],
    ['tortiectl', 'usage: tortiectl'],
    ['tortie-rr', 'usage: tortie-rr'],
    ['install-cni', 'usage: install-cni'],
  ])('%s --help runs from the image', async (cmd, expected) => {
    const r = await image.run([cmd, '--help']);
    expect(r.code).toBe(0);
    // tortiectl and tortie-rr print their usage on stderr
    expect(r.stdout + r.stderr).toContain(expected);
  });

  test.each([
    [['ip', '-V'], /iproute2/],
    [['iptables-legacy', '-V'], /\(legacy\)/],
    [['ip6tables-legacy-restore', '-V'], /\(legacy\)/],
    [['iptables-nft-restore', '-V'], /\(nf_tables\)/],
    [['ip6tables-nft-save', '-V'], /\(nf_tables\)/],
    [['nft', '--version'], /nftables/],
    [['nsenter', '--version'], /util-linux/],
    [['ipset', '--version'], /ipset v/],
  ])('%j runs from the image', async (argv, expected) => {
    const r = await image.run(argv);
    expect(r.stdout).toMatch(expected);
  });

  test('the kernel tools program the container network namespace', async () => {
    // a fresh network namespace of runc's, gone with the container
    const script = `
      const { execFileSync: x } = require('node:child_process');
      const run = (...a) => x(a[0], a.slice(1), { encoding: 'utf8' });
      run('ip', 'link', 'add', 'tt-dummy', 'type', 'veth', 'peer', 'name', 'tt-peer');
      run('ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'tt-dummy');
      run('iptables-legacy', '-w', '-A', 'INPUT', '-p', 'tcp', '--dport', '179', '-m', 'comment', '--comment', 'tortie-test', '-j', 'ACCEPT');
      run('iptables-nft', '-A', 'INPUT', '-p', 'udp', '--dport', '4789', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP');
      run('ipset', 'create', 'tt-set', 'hash:net');
      run('ipset', 'add', 'tt-set', '10.0.0.0/8');
      run('nft', 'add', 'table', 'ip', 'tt');
      console.log(run('ip', '-o', 'addr', 'show', 'dev', 'tt-dummy'));
      console.log(run('iptables-legacy-save', '-t', 'filter'));
      console.log(run('iptables-nft-save', '-t', 'filter'));
      console.log(run('ipset', 'list', 'tt-set'));
      console.log(run('nft', 'list', 'tables'));
    `;
    const r = await image.run(['node', '-e', script], {
      capabilities: ['CAP_NET_ADMIN', 'CAP_NET_RAW'],
    });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.stdout).toContain('inet 192.0.2.1/24');
    expect(r.stdout).toContain(
      '-A INPUT -p tcp -m tcp --dport 179 -m comment --comment tortie-test -j ACCEPT',
    );
    expect(r.stdout).toContain(
      '-A INPUT -p udp -m udp --dport 4789 -m conntrack --ctstate NEW -j DROP',
    );
    expect(r.stdout).toContain('10.0.0.0/8');
    expect(r.stdout).toContain('table ip tt');
  });

  test('install-cni writes into bind-mounted host directories', async () => {
    const host = path.join(dir, 'host');
    for (const d of ['opt/cni/bin', 'etc/cni/net.d', 'sa'])
      fs.mkdirSync(path.join(host, d), { recursive: true });
    fs.writeFileSync(path.join(host, 'sa', 'token'), 'sa-token');
    fs.writeFileSync(path.join(host, 'sa', 'ca.crt'), 'CA');
    const mounts = [
      { source: path.join(host, 'opt/cni/bin'), destination: '/host/opt/cni/bin' },
      { source: path.join(host, 'etc/cni/net.d'), destination: '/host/etc/cni/net.d' },
      {
        source: path.join(host, 'sa'),
        destination: '/var/run/secrets/kubernetes.io/serviceaccount',
        readOnly: true,
      },
    ];
    const env = {
      KUBERNETES_NODE_NAME: 'node-9',
      KUBERNETES_SERVICE_HOST: 'fd00::1',
      KUBERNETES_SERVICE_PORT: '6443',
    };
    const r = await image.run(['install-cni'], { mounts, env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const plugin = path.join(host, 'opt/cni/bin/tortie-cni');
    expect(fs.statSync(plugin).mode & 0o777).toBe(0o755);
    expect(fs.readFileSync(plugin)).toEqual(
      fs.readFileSync(path.join(REPO, 'packages/cni/dist/tortie-cni')),
    );
    const list = JSON.parse(
      fs.readFileSync(path.join(host, 'etc/cni/net.d/10-tortie.conflist'), 'utf8'),
    );
    expect(list.plugins[0]).toMatchObject({ type: 'tortie-cni', nodename: 'node-9' });
    const kc = JSON.parse(
      fs.readFileSync(path.join(host, 'etc/cni/net.d/tortie-kubeconfig'), 'utf8'),
    );
    expect(kc.clusters[0].cluster.server).toBe('https://[fd00::1]:6443');
    expect(kc.users[0].user.token).toBe('sa-token');
    // the forwarder's node fallback, taken from the image: the host has no Node, so the
    // installed forwarder with no agent answers from tortie-cni.d alone
    const fallback = path.join(host, 'opt/cni/bin/tortie-cni.d');
    expect(fs.statSync(path.join(fallback, 'node')).mode & 0o111).not.toBe(0);
    const version = spawnSync(plugin, [], {
      input: JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tortie-cni' }),
      env: { PATH: '/usr/bin:/bin', CNI_COMMAND: 'VERSION' },
      encoding: 'utf8',
    });
    expect(version.stderr).toBe('');
    expect(JSON.parse(version.stdout).supportedVersions).toContain('1.0.0');

    // without the token: the path named, non-zero, so the init container restarts
    fs.rmSync(path.join(host, 'sa', 'token'));
    const bad = await image.run(['install-cni'], { mounts, env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(
      'cannot install /var/run/secrets/kubernetes.io/serviceaccount/token: ENOENT',
    );
  });
});
