// What each built binary loads before it answers: --help, a usage or configuration error
// and a command on one datastore must not load the clients of the others (etcd3 with
// gRPC, @kubernetes/client-node), the logger or the agent. Each of them cost 0.2-0.9 s of
// CPU per process, and the tests and a cluster start hundreds of these processes
// (bench/startup.js has the times). Read from require.cache at exit: the modules a
// process really loaded, not a guess from its imports.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PKG = path.resolve(__dirname, '../packages');
const BIN = {
  node: `${PKG}/felix/dist/cli.js`,
  ctl: `${PKG}/ctl/dist/cli.js`,
  rr: `${PKG}/route-reflector/dist/cli.js`,
  apiserver: `${PKG}/apiserver/dist/main.js`,
  controllers: `${PKG}/controllers/dist/cli.js`,
};

/** Heavy modules, by a path fragment of their files. */
const HEAVY = {
  etcd3: '/node_modules/etcd3/',
  grpc: '/node_modules/@grpc/',
  'client-node': '/node_modules/@kubernetes/client-node/',
  winston: '/node_modules/winston/',
  zod: '/node_modules/zod/',
  '@tortie/datastore': '/packages/datastore/dist/',
  '@tortie/bgp-speaker': '/packages/bgp-speaker/dist/',
  '@tortie/felix agent': '/packages/felix/dist/agent',
  yaml: '/node_modules/yaml/',
};
type Heavy = keyof typeof HEAVY;

let dir: string;
beforeAll(() => {
  for (const f of Object.values(BIN))
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run "npm run build" first`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-startup-'));
  // a preload that writes the files the process loaded when it exits
  fs.writeFileSync(
    path.join(dir, 'loaded.js'),
    `process.on('exit', () => require('node:fs').writeFileSync(process.env.TT_LOADED_OUT, Object.keys(require.cache).join('\\n')));\n`,
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs a binary; its exit code, output and which of HEAVY it loaded. */
function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const out = path.join(dir, `loaded-${Math.random().toString(36).slice(2)}`);
  const r = spawnSync('node', ['--require', path.join(dir, 'loaded.js'), bin, ...args], {
    encoding: 'utf8',
    input: '',
    env: { ...process.env, ETCD_ENDPOINTS: '', KUBECONFIG: '', ...env, TT_LOADED_OUT: out },
  });
  const files = fs.readFileSync(out, 'utf8').split('\n');
  const loaded = (Object.keys(HEAVY) as Heavy[]).filter((h) =>
    files.some((f) => f.includes(HEAVY[h])),
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, loaded };
}

test.each([
  ['tortie-node --help', BIN.node, ['--help']],
  ['tortiectl --help', BIN.ctl, ['--help']],
  ['tortie-rr --help', BIN.rr, ['--help']],
  ['tortie-apiserver --help', BIN.apiserver, ['--help']],
  ['tortie-controllers --help', BIN.controllers, ['--help']],
])('%s prints its usage and loads none of the heavy modules', (_, bin, args) => {
  const r = run(bin, args);
  expect(r.code).toBe(0);
  expect(r.stdout + r.stderr).toMatch(/usage|NODENAME/);
  expect(r.loaded).toEqual([]);
});

test('tortie-node with a bad setting names it and exits 2 without loading the agent', () => {
  const r = run(BIN.node, [], { FELIX_HEALTHPORT: 'abc' });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('FELIX_HEALTHPORT');
  expect(r.loaded).toEqual([]);
});

test('tortiectl: an unknown command is named before any datastore is looked for', () => {
  const r = run(BIN.ctl, ['version']);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('unknown command "version"');
  expect(r.loaded).toEqual([]);
});

test('tortiectl on a datastore file loads neither etcd nor Kubernetes client, nor BGP', () => {
  const r = run(BIN.ctl, ['get', 'ippools', '--datastore-file', path.join(dir, 'store.json')]);
  expect(r).toMatchObject({ code: 0, stderr: 'No resources found\n' });
  // yaml: the command prints or reads YAML, unlike the agent
  expect(r.loaded).toEqual(['zod', '@tortie/datastore', 'yaml']);
});

test('tortiectl node status loads the BGP client, not the datastore', () => {
  const r = run(BIN.ctl, ['node', 'status', '--bgp-socket', path.join(dir, 'none.sock')]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain('none.sock');
  expect(r.loaded).not.toContain('@tortie/datastore');
  expect(r.loaded).not.toContain('etcd3');
});

test("the agent's modules (all of them load by --detect-addresses) do not include yaml: it parses no manifest", () => {
  // ~70 modules: an agent start under emulation (e2e/kernel.vm.test.ts) paid seconds for it
  const r = run(BIN.node, ['--detect-addresses'], {
    IP: '10.0.0.1/24',
    IP6: 'none',
    NODENAME: 'n1',
  });
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('10.0.0.1');
  expect(r.loaded).toContain('@tortie/bgp-speaker'); // node-main and what it imports did load
  expect(r.loaded).not.toContain('yaml');
});
