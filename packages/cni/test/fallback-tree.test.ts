// The forwarder's node fallback as install-cni puts it on a host: the built install-cni
// writes into temp dirs standing in for /opt/cni/bin, and the installed tortie-cni, with no
// agent to answer, runs the plugin from the copy (its own Node, its own packages) against a
// real etcd.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Etcd, Testbed, describeIf } from '@tortie/testbed';
import { FALLBACK_DIR, copies, sharedObjects } from '../src';

const CLI = path.resolve(__dirname, '../dist/install-cni-cli.js');

describe('which paths the fallback copies', () => {
  const keep = ['node_modules/@tortie/cni', 'node_modules/zod', 'packages/cni'];
  test.each([
    ['', 'dir-only'],
    ['node_modules', 'dir-only'],
    ['node_modules/@tortie', 'dir-only'],
    ['node_modules/@tortie/cni', 'all'],
    ['node_modules/@tortie/felix', false],
    ['node_modules/jest', false],
    ['node_modules/zod/index.js', 'all'],
    ['node_modules/zod/index.d.ts', false],
    ['node_modules/zod/index.js.map', false],
    ['packages', 'dir-only'],
    ['packages/cni/dist/cli.js', 'all'],
    ['packages/cni/package.json', 'all'],
    ['packages/cni/src/cli.ts', false],
    ['packages/cni/test', false],
    ['packages/felix', false],
    ['packages/cnix', false],
  ])('%s: %s', (rel, want) => expect(copies(rel, keep)).toBe(want));
});

test('the shared objects to copy: the dynamic loader apart, the vdso left out', () => {
  expect(
    sharedObjects([
      'linux-vdso.so.1',
      '/lib/x86_64-linux-gnu/libstdc++.so.6',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]),
  ).toEqual({
    loader: '/lib64/ld-linux-x86-64.so.2',
    libs: ['/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib/x86_64-linux-gnu/libc.so.6'],
  });
  expect(sharedObjects(['/lib/ld-musl-x86_64.so.1']).loader).toBe('/lib/ld-musl-x86_64.so.1');
  // a static Node: nothing to carry
  expect(sharedObjects([])).toEqual({ loader: undefined, libs: [] });
});

function run(
  cmd: string,
  args: string[],
  o: { env: NodeJS.ProcessEnv; input?: string; cwd?: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: o.env, cwd: o.cwd });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(o.input ?? '');
  });
}

describeIf(['etcd'], 'install-cni installs the node fallback of tortie-cni', () => {
  let tb: Testbed;
  let etcd: Etcd;
  let dir: string;
  let bin: string;

  beforeAll(async () => {
    tb = new Testbed();
    etcd = await Etcd.start(tb);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-fallback-'));
    bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.mkdirSync(path.join(dir, 'net.d'));
  });
  afterAll(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await tb.cleanup();
  });

  const install = () =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [CLI],
        {
          env: {
            PATH: process.env.PATH,
            CNI_BIN_DIR: bin,
            CNI_NET_DIR: path.join(dir, 'net.d'),
            KUBERNETES_NODE_NAME: 'node-a',
            DATASTORE_TYPE: 'etcdv3',
            ETCD_ENDPOINTS: etcd.endpoint,
          },
        },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      ),
    );

  // only what a runtime gives a plugin: no PATH to a Node, no NODE_PATH
  const cniEnv = (command: string) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'c0ffee',
    CNI_NETNS: '/var/run/netns/tt-gone',
    CNI_IFNAME: 'eth0',
    CNI_PATH: bin,
    CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-1',
  });

  test('the fallback: its own Node, the plugin and its production packages only', async () => {
    const r = await install();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`install-cni: wrote ${path.join(bin, FALLBACK_DIR)}`);
    const fb = path.join(bin, FALLBACK_DIR);
    expect(fs.statSync(path.join(fb, 'node')).mode & 0o111).toBeTruthy();
    // the very Node install-cni runs on (compared as bytes: toEqual on 100 MB exhausts jest)
    expect(fs.readFileSync(path.join(fb, 'node')).equals(fs.readFileSync(process.execPath))).toBe(
      true,
    );
    for (const p of [
      'app/packages/cni/dist/cli.js',
      'app/packages/datastore/dist/index.js',
      'app/node_modules/etcd3/package.json',
      'app/node_modules/@kubernetes/client-node/package.json',
    ])
      expect(fs.existsSync(path.join(fb, p))).toBe(true);
    for (const p of ['app/packages/cni/src', 'app/packages/felix', 'app/node_modules/jest'])
      expect(fs.existsSync(path.join(fb, p))).toBe(false);
    // a second install replaces it whole and leaves nothing beside it
    expect((await install()).code).toBe(0);
    expect(fs.readdirSync(bin).sort()).toEqual(['tortie-cni', FALLBACK_DIR]);
    // Node's shared libraries and their loader travel with it
    expect(fs.statSync(path.join(fb, 'ld.so')).mode & 0o111).toBeTruthy();
    expect(fs.existsSync(path.join(fb, 'lib', 'libc.so.6'))).toBe(true);
  });

  test('with no agent, the installed forwarder runs the plugin from the copy', async () => {
    const conf = {
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      type: 'tortie-cni',
      datastore_type: 'etcdv3',
      etcd_endpoints: etcd.endpoint,
      nodename: 'node-a',
      ipam: { type: 'tortie-ipam' },
      agent_socket: path.join(dir, 'no-agent.sock'),
    };
    const forwarder = path.join(bin, 'tortie-cni');
    const version = await run(forwarder, [], {
      env: cniEnv('VERSION'),
      input: JSON.stringify(conf),
      cwd: dir,
    });
    expect(version.stderr).toBe('');
    expect(JSON.parse(version.stdout).supportedVersions).toContain('1.0.0');
    // Node runs on the libraries install-cni copied, not the host's: the loader says so
    const fb = path.join(bin, FALLBACK_DIR);
    const traced = await run(forwarder, [], {
      env: { ...cniEnv('VERSION'), LD_DEBUG: 'libs' },
      input: JSON.stringify(conf),
      cwd: dir,
    });
    expect(traced.stderr).toMatch(new RegExp(`calling init: ${fb}/lib/libc\\.so\\.6`));
    expect(traced.stderr).not.toMatch(/calling init: \/(usr\/)?lib.*libc\.so/);
    // DEL of a container it never saw: the datastore is read (etcd3 from the copy), success
    const del = await run(forwarder, [], {
      env: cniEnv('DEL'),
      input: JSON.stringify(conf),
      cwd: dir,
    });
    expect(del.stdout).toBe('');
    expect(del.code).toBe(0);
    // the plugin really talks to the datastore: an etcd that is not there is reported
    const dead = await run(forwarder, [], {
      env: cniEnv('DEL'),
      input: JSON.stringify({ ...conf, etcd_endpoints: 'http://127.0.0.1:1' }),
      cwd: dir,
    });
    expect(dead.code).not.toBe(0);
    expect(JSON.parse(dead.stdout).msg).toMatch(/tortie-cni/);
  }, 60_000);
});
