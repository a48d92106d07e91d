// Real kubectl (v1.32) against tortie-apiserver over real etcd (Debian's etcd-server).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Etcd, Testbed, describeIf } from '@tortie/testbed';
import { ApiServer } from '../src';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describeIf(['etcd'], 'tortie-apiserver with real kubectl', () => {
  let tb: Testbed;
  let server: ApiServer;
  let url: string;
  let dir: string;
  let kubeconfig: string;

  const kubectl = (args: string[], stdin?: string): Promise<Run> =>
    new Promise((resolve) => {
      const child = execFile(
        'kubectl',
        ['--kubeconfig', kubeconfig, ...args],
        { timeout: 60000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      if (stdin !== undefined) child.stdin!.end(stdin);
    });

  beforeAll(async () => {
    tb = new Testbed();
    const etcd = await Etcd.start(tb);
    server = new ApiServer([etcd.endpoint]);
    url = await server.listen();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-apiserver-'));
    kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'lab', cluster: { server: url } }],
        users: [{ name: 'lab', user: {} }],
        contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'lab' } }],
        'current-context': 'lab',
      }),
    );
    // kubectl's discovery cache lives under $HOME; keep it in our temp dir
    process.env.KUBECACHEDIR = path.join(dir, 'cache');
  }, 60000);

  afterAll(async () => {
    await server?.close();
    await tb.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('kubectl create, get -o json, get (table) and delete a Namespace', async () => {
    // (typed commands like `kubectl create namespace` send protobuf, not served yet)
    const nsJson = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'demo' },
    });
    const created = await kubectl(['create', '--validate=false', '-f', '-'], nsJson);
    if (created.code) throw new Error(created.stderr);
    expect(created).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('namespace/demo created'),
    });
    const json = await kubectl(['get', 'namespace', 'demo', '-o', 'json']);
    expect(json.code).toBe(0);
    const ns = JSON.parse(json.stdout);
    expect(ns).toMatchObject({ kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'demo' } });
    expect(Number(ns.metadata.resourceVersion)).toBeGreaterThan(0);
    const table = await kubectl(['get', 'ns']);
    expect(table.stdout).toMatch(/^NAME\s+AGE\n/);
    expect(table.stdout).toMatch(/\ndemo\s+\d+s\n/);
    const again = await kubectl(['create', '--validate=false', '-f', '-'], nsJson);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('AlreadyExists');
    expect(await kubectl(['delete', 'namespace', 'demo'])).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('namespace "demo" deleted'),
    });
    const gone = await kubectl(['get', 'namespace', 'demo']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('namespaces "demo" not found');
  }, 120000);

  test('kubectl apply of a NetworkPolicy creates it, and a stale replace gets 409', async () => {
    const np = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'deny-all', namespace: 'default' },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    };
    const applied = await kubectl(['create', '--validate=false', '-f', '-'], JSON.stringify(np));
    if (applied.code) throw new Error(applied.stderr);
    expect(applied).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('networkpolicy.networking.k8s.io/deny-all created'),
    });
    const got = JSON.parse((await kubectl(['get', 'netpol', 'deny-all', '-o', 'json'])).stdout);
    expect(got.spec).toEqual(np.spec);
    const rv = got.metadata.resourceVersion as string;
    const fresh = await kubectl(
      ['replace', '--validate=false', '-f', '-'],
      JSON.stringify({ ...got, spec: { ...np.spec, policyTypes: ['Ingress', 'Egress'] } }),
    );
    expect(fresh.code).toBe(0);
    // the same resourceVersion again is now stale
    const stale = await kubectl(
      ['replace', '--validate=false', '-f', '-'],
      JSON.stringify({ ...got, metadata: { ...got.metadata, resourceVersion: rv } }),
    );
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toContain('the object has been modified');
    const list = await kubectl(['get', 'networkpolicies', '-n', 'default', '-o', 'json']);
    expect(
      JSON.parse(list.stdout).items.map((i: { metadata: { name: string } }) => i.metadata.name),
    ).toEqual(['deny-all']);
    expect((await kubectl(['delete', 'netpol', 'deny-all'])).code).toBe(0);
  }, 120000);

  test('kubectl get -w streams an added object', async () => {
    const child = execFile('kubectl', [
      '--kubeconfig',
      kubeconfig,
      'get',
      'pods',
      '-w',
      '-o',
      'name',
      '--watch-only',
    ]);
    let out = '';
    child.stdout!.on('data', (d) => (out += String(d)));
    try {
      await new Promise((r) => setTimeout(r, 2000));
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'p1' },
        spec: { containers: [{ name: 'c', image: 'x' }] },
      };
      expect(
        (await kubectl(['create', '--validate=false', '-f', '-'], JSON.stringify(pod))).code,
      ).toBe(0);
      for (let i = 0; i < 100 && !out.includes('pod/p1'); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain('pod/p1');
    } finally {
      child.kill();
    }
  }, 120000);

  test('kubectl label, annotate, get -l and patch --type merge; a list SMP is refused', async () => {
    const ns = JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'lbl' } });
    expect((await kubectl(['create', '--validate=false', '-f', '-'], ns)).code).toBe(0);
    expect(await kubectl(['label', 'namespace', 'lbl', 'team=blue'])).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('namespace/lbl labeled'),
    });
    expect((await kubectl(['annotate', 'namespace', 'lbl', 'note=hi'])).code).toBe(0);
    const sel = await kubectl(['get', 'ns', '-l', 'team=blue', '-o', 'name']);
    expect(sel.stdout.trim()).toBe('namespace/lbl');
    expect((await kubectl(['get', 'ns', '-l', 'team!=blue', '-o', 'name'])).stdout).not.toContain(
      'lbl',
    );
    const merged = await kubectl([
      'patch',
      'namespace',
      'lbl',
      '--type',
      'merge',
      '-p',
      '{"metadata":{"labels":{"team":null,"tier":"x"}}}',
    ]);
    expect(merged.code).toBe(0);
    const got = JSON.parse((await kubectl(['get', 'ns', 'lbl', '-o', 'json'])).stdout);
    expect(got.metadata.labels).toEqual({ tier: 'x' });
    expect(got.metadata.annotations).toEqual({ note: 'hi' });
    const smp = await kubectl(['patch', 'namespace', 'lbl', '-p', '{"spec":{"finalizers":["a"]}}']);
    expect(smp.code).not.toBe(0);
    expect(smp.stderr).toContain('strategic merge patch with lists');
    expect((await kubectl(['delete', 'ns', 'lbl'])).code).toBe(0);
  }, 120000);
});
