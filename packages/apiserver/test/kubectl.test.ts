// Real kubectl (v1.32) against tortie-apiserver over real etcd (Debian's etcd-server),
// with kubectl's own defaults: client validation on (it finds fieldValidation in our
// OpenAPI v3 and leaves validation to the server), aggregated discovery, Table output.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { describeIf } from '@tortie/testbed';
import { crdOf } from './crd-of';
import { REPO, startHarness, until, type Harness, type Run } from './harness';

/**
 * Until a background `kubectl get -w -v=6` has its watch open: it logs the watch request
 * once the server answered it (what used to be a fixed 1.5 s sleep, too short under load).
 */
const watchOpen = (w: { output: () => string }) =>
  until('the watch request answered', () => /[?&]watch=true\S* 200 OK/.test(w.output()));

const ok = (r: Run): Run => {
  if (r.code) throw new Error(`kubectl failed (${r.code}): ${r.stderr}`);
  return r;
};

describeIf(['etcd'], 'tortie-apiserver with real kubectl', () => {
  let h: Harness;
  const kubectl = (args: string[], stdin?: string): Promise<Run> => h.kubectl(args, stdin);
  const yaml = (o: unknown): string => JSON.stringify(o);

  beforeAll(async () => {
    h = await startHarness();
  }, 60000);

  afterAll(async () => {
    await h?.stop();
  });

  test('Namespace: create, get -o json, get (table), AlreadyExists, delete, NotFound', async () => {
    const ns = yaml({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
    expect(ok(await kubectl(['create', '-f', '-'], ns)).stdout).toContain('namespace/demo created');
    const got = JSON.parse(ok(await kubectl(['get', 'namespace', 'demo', '-o', 'json'])).stdout);
    expect(got).toMatchObject({
      kind: 'Namespace',
      apiVersion: 'v1',
      // as kube-apiserver, the namespace carries its name as a label
      metadata: { name: 'demo', labels: { 'kubernetes.io/metadata.name': 'demo' } },
      status: { phase: 'Active' },
    });
    expect(
      ok(await kubectl(['get', 'ns', '-l', 'kubernetes.io/metadata.name=default'])).stdout,
    ).toMatch(/\ndefault\s+Active/);
    expect(Number(got.metadata.resourceVersion)).toBeGreaterThan(0);
    const table = ok(await kubectl(['get', 'ns']));
    expect(table.stdout).toMatch(/^NAME\s+STATUS\s+AGE\n/);
    expect(table.stdout).toMatch(/\ndemo\s+Active\s+\d+s\n/);
    const again = await kubectl(['create', '-f', '-'], ns);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('(AlreadyExists)');
    expect(ok(await kubectl(['delete', 'namespace', 'demo'])).stdout).toContain(
      'namespace "demo" deleted',
    );
    const gone = await kubectl(['get', 'namespace', 'demo']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('namespaces "demo" not found');
  }, 120000);

  test('kubectl apply -f deploy/crds serves every tortie kind, validated by schema and @tortie/api', async () => {
    const applied = ok(await kubectl(['apply', '-f', path.join(REPO, 'deploy/crds')]));
    expect(applied.stdout.match(/created/g)).toHaveLength(22);
    expect(
      ok(await kubectl(['apply', '-f', path.join(REPO, 'deploy/crds')])).stdout.match(/unchanged/g),
    ).toHaveLength(22);
    expect(ok(await kubectl(['get', 'crds'])).stdout).toMatch(
      /\nglobalnetworkpolicies\.tortie\.io\s+\d{4}-/,
    );
    ok(
      await kubectl([
        'wait',
        '--for',
        'condition=established',
        'crd/ippools.tortie.io',
        '--timeout=30s',
      ]),
    );
    const gnp = {
      apiVersion: 'tortie.io/v1',
      kind: 'GlobalNetworkPolicy',
      metadata: { name: 'deny-db' },
      spec: {
        selector: "app == 'db'",
        types: ['Ingress'],
        ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [5432, '6000:6100'] } }],
      },
    };
    const pool = {
      apiVersion: 'tortie.io/v1',
      kind: 'IPPool',
      metadata: { name: 'p1' },
      spec: { cidr: '10.244.0.0/16' },
    };
    const docs = [gnp, pool].map(yaml).join('\n'); // a JSON stream
    const first = ok(await kubectl(['apply', '-f', '-'], docs)).stdout;
    expect(first).toContain('globalnetworkpolicy.tortie.io/deny-db created');
    expect(first).toContain('ippool.tortie.io/p1 created');
    const second = ok(await kubectl(['apply', '-f', '-'], docs)).stdout;
    expect(second).toContain('globalnetworkpolicy.tortie.io/deny-db unchanged');
    expect(second).toContain('ippool.tortie.io/p1 unchanged');
    const got = JSON.parse(
      ok(await kubectl(['get', 'globalnetworkpolicy', 'deny-db', '-o', 'json'])).stdout,
    );
    expect(got.spec.ingress[0].destination.ports).toEqual([5432, '6000:6100']);
    // the schema's default and @tortie/api agree
    expect(ok(await kubectl(['get', 'ippools', '-o', 'yaml'])).stdout).toContain(
      'cidr: 10.244.0.0/16',
    );
    // a bad object: 422 naming the field, from the CRD schema and from @tortie/api
    const drop = await kubectl(
      ['apply', '-f', '-'],
      yaml({ ...gnp, spec: { ...gnp.spec, ingress: [{ action: 'Drop' }] } }),
    );
    expect(drop.code).not.toBe(0);
    expect(drop.stderr).toContain(
      'The GlobalNetworkPolicy "deny-db" is invalid: spec.ingress[0].action: Unsupported value: "Drop"',
    );
    const sel = await kubectl(
      ['apply', '-f', '-'],
      yaml({ ...gnp, spec: { ...gnp.spec, selector: 'app ==' } }),
    );
    expect(sel.code).not.toBe(0);
    expect(sel.stderr).toMatch(/is invalid: spec\.selector: .*app ==/);
    const cidr = await kubectl(
      ['apply', '-f', '-'],
      yaml({ ...pool, metadata: { name: 'p2' }, spec: { cidr: '10.300.0.0/16' } }),
    );
    expect(cidr.code).not.toBe(0);
    expect(cidr.stderr).toContain('spec.cidr');
    // an unknown field is refused (kubectl asks for fieldValidation=Strict)
    const unknown = await kubectl(
      ['apply', '-f', '-'],
      yaml({ ...pool, spec: { ...pool.spec, colour: 'red' } }),
    );
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('unknown field "spec.colour"');
    // explain reads the OpenAPI v3 generated from the CRD
    expect(
      ok(await kubectl(['explain', 'globalnetworkpolicy.spec.ingress.action'])).stdout,
    ).toMatch(/ENUM:\s+Allow\s+Deny\s+Pass\s+Log/);
    // namespaced tortie kind, ambiguous name with networking.k8s.io: the full name picks it
    ok(
      await kubectl(
        ['apply', '-f', '-'],
        yaml({
          apiVersion: 'tortie.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'a', namespace: 'default' },
          spec: { selector: 'all()' },
        }),
      ),
    );
    expect(
      ok(await kubectl(['get', 'networkpolicies.tortie.io', '-A', '-o', 'name'])).stdout.trim(),
    ).toBe('networkpolicy.tortie.io/a');
    ok(await kubectl(['label', 'globalnetworkpolicy', 'deny-db', 'tier=db']));
    ok(await kubectl(['annotate', 'globalnetworkpolicy', 'deny-db', 'note=x']));
    expect(
      ok(
        await kubectl(['get', 'globalnetworkpolicies', '-l', 'tier=db', '-o', 'name']),
      ).stdout.trim(),
    ).toBe('globalnetworkpolicy.tortie.io/deny-db');
    expect(ok(await kubectl(['delete', 'globalnetworkpolicy', 'deny-db'])).stdout).toContain(
      'deleted',
    );
  }, 180000);

  test('NetworkPolicy: apply, unchanged, configured, wide, 409 on a stale replace, 422 naming the field, patches', async () => {
    const np = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        podSelector: { matchLabels: { app: 'web' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [{ podSelector: { matchLabels: { role: 'client' } } }],
            ports: [{ protocol: 'TCP', port: 80 }],
          },
        ],
      },
    };
    expect(ok(await kubectl(['apply', '-f', '-'], yaml(np))).stdout).toContain(
      'networkpolicy.networking.k8s.io/web created',
    );
    expect(ok(await kubectl(['apply', '-f', '-'], yaml(np))).stdout).toContain(
      'networkpolicy.networking.k8s.io/web unchanged',
    );
    const changed = structuredClone(np);
    changed.spec.ingress[0].ports[0].port = 8080;
    expect(ok(await kubectl(['apply', '-f', '-'], yaml(changed))).stdout).toContain(
      'networkpolicy.networking.k8s.io/web configured',
    );
    expect(ok(await kubectl(['get', 'netpol', '-o', 'wide'])).stdout).toMatch(
      /^NAME\s+POD-SELECTOR\s+AGE\nweb\s+app=web\s+\d+s\n/,
    );
    const got = JSON.parse(ok(await kubectl(['get', 'networkpolicy', 'web', '-o', 'json'])).stdout);
    expect(got.spec.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 8080 }]);
    expect(got.metadata.generation).toBe(2);
    // a replace with the resourceVersion read is fine once, then stale
    const fresh = await kubectl(
      ['replace', '-f', '-'],
      yaml({ ...got, spec: { ...got.spec, policyTypes: ['Ingress', 'Egress'] } }),
    );
    ok(fresh);
    const stale = await kubectl(['replace', '-f', '-'], yaml(got));
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toContain(
      'Operation cannot be fulfilled on networkpolicies.networking.k8s.io "web": the object has been modified',
    );
    const bad = structuredClone(np);
    bad.spec.ingress[0].ports[0].port = 70000;
    const invalid = await kubectl(['apply', '-f', '-'], yaml(bad));
    expect(invalid.code).not.toBe(0);
    expect(invalid.stderr).toContain(
      'spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive',
    );
    const wrongType = await kubectl(
      ['apply', '-f', '-'],
      yaml({ ...np, spec: { ...np.spec, policyTypes: 'Ingress' } }),
    );
    expect(wrongType.code).not.toBe(0);
    expect(wrongType.stderr).toContain('spec.policyTypes');
    // label, annotate, selectors
    expect(ok(await kubectl(['label', 'netpol', 'web', 'team=blue'])).stdout).toContain('labeled');
    expect(ok(await kubectl(['annotate', 'netpol', 'web', 'note=hi'])).stdout).toContain(
      'annotated',
    );
    expect(
      ok(await kubectl(['get', 'netpol', '-l', 'team=blue', '-o', 'name'])).stdout.trim(),
    ).toBe('networkpolicy.networking.k8s.io/web');
    expect(
      ok(await kubectl(['get', 'netpol', '-l', 'team!=blue', '-o', 'name'])).stdout.trim(),
    ).toBe('');
    expect(
      ok(
        await kubectl(['get', 'netpol', '--field-selector', 'metadata.name=web', '-o', 'name']),
      ).stdout.trim(),
    ).toBe('networkpolicy.networking.k8s.io/web');
    // the three patch types
    ok(
      await kubectl([
        'patch',
        'netpol',
        'web',
        '--type',
        'json',
        '-p',
        '[{"op":"replace","path":"/spec/policyTypes","value":["Egress"]}]',
      ]),
    );
    ok(
      await kubectl([
        'patch',
        'netpol',
        'web',
        '--type',
        'merge',
        '-p',
        '{"metadata":{"labels":{"team":null,"tier":"x"}}}',
      ]),
    );
    ok(
      await kubectl([
        'patch',
        'netpol',
        'web',
        '-p',
        '{"spec":{"podSelector":{"matchLabels":{"app":"web2"}}}}',
      ]),
    );
    const patched = JSON.parse(ok(await kubectl(['get', 'netpol', 'web', '-o', 'json'])).stdout);
    expect(patched.spec.policyTypes).toEqual(['Egress']);
    expect(patched.metadata.labels).toEqual({ tier: 'x' });
    expect(patched.metadata.annotations.note).toBe('hi');
    expect(patched.spec.podSelector).toEqual({ matchLabels: { app: 'web2' } });
    const testFails = await kubectl([
      'patch',
      'netpol',
      'web',
      '--type',
      'json',
      '-p',
      '[{"op":"test","path":"/spec/policyTypes/0","value":"Ingress"}]',
    ]);
    expect(testFails.code).not.toBe(0);
    expect(testFails.stderr).toContain('test of /spec/policyTypes/0 failed');
    expect(ok(await kubectl(['delete', 'netpol', 'web'])).stdout).toContain('deleted');
  }, 180000);

  test('Pod: apply merges containers by name, status subresource, get -o wide, get -w prints rows', async () => {
    ok(
      await kubectl(
        ['create', '-f', '-'],
        yaml({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'pods' } }),
      ),
    );
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p1', namespace: 'pods', labels: { app: 'web' } },
      spec: {
        nodeName: 'node1',
        containers: [
          { name: 'a', image: 'a:1', ports: [{ containerPort: 80 }] },
          { name: 'b', image: 'b:1' },
        ],
      },
    };
    const w = h.kubectlBackground(['get', 'pods', '-n', 'pods', '-w', '-v=6']);
    await watchOpen(w);
    expect(ok(await kubectl(['apply', '-f', '-'], yaml(pod))).stdout).toContain('pod/p1 created');
    const updated = structuredClone(pod);
    updated.spec.containers[1].image = 'b:2';
    expect(ok(await kubectl(['apply', '-f', '-'], yaml(updated))).stdout).toContain(
      'pod/p1 configured',
    );
    let got = JSON.parse(
      ok(await kubectl(['get', 'pod', 'p1', '-n', 'pods', '-o', 'json'])).stdout,
    );
    expect(got.spec.containers).toEqual([
      { name: 'a', image: 'a:1', ports: [{ containerPort: 80, protocol: 'TCP' }] },
      { name: 'b', image: 'b:2' },
    ]);
    expect(got.status).toEqual({ phase: 'Pending' });
    ok(
      await kubectl([
        'patch',
        'pod',
        'p1',
        '-n',
        'pods',
        '--subresource',
        'status',
        '--type',
        'merge',
        '-p',
        '{"status":{"phase":"Running","podIP":"10.244.0.5"}}',
      ]),
    );
    // a write to the main resource does not change status, nor the status one the spec
    ok(
      await kubectl([
        'patch',
        'pod',
        'p1',
        '-n',
        'pods',
        '--type',
        'merge',
        '-p',
        '{"status":{"phase":"Failed"}}',
      ]),
    );
    got = JSON.parse(ok(await kubectl(['get', 'pod', 'p1', '-n', 'pods', '-o', 'json'])).stdout);
    expect(got.status).toEqual({ phase: 'Running', podIP: '10.244.0.5' });
    expect(ok(await kubectl(['get', 'pods', '-n', 'pods', '-o', 'wide'])).stdout).toMatch(
      /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s*\np1\s+0\/2\s+Running\s+0\s+\d+s\s+10\.244\.0\.5\s+node1\s*\n/,
    );
    expect(
      ok(
        await kubectl([
          'get',
          'pods',
          '-A',
          '--field-selector',
          'spec.nodeName=node1',
          '-o',
          'name',
        ]),
      ).stdout.trim(),
    ).toBe('pod/p1');
    await until('the watch to print the running pod', () => /p1\s+0\/2\s+Running/.test(w.output()));
    w.child.kill();
    // deleting the namespace deletes its pods
    ok(await kubectl(['delete', 'ns', 'pods']));
    expect(ok(await kubectl(['get', 'pods', '-A', '-o', 'name'])).stdout.trim()).toBe('');
  }, 180000);

  test('kubectl get --chunk-size pages through the list with limit and continue', async () => {
    ok(
      await kubectl(
        ['apply', '-f', '-'],
        yaml({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'chunks' } }),
      ),
    );
    const pods = Array.from({ length: 5 }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `p${i}`, namespace: 'chunks' },
      spec: { containers: [{ name: 'c', image: 'x' }] },
    }));
    ok(await kubectl(['apply', '-f', '-'], pods.map(yaml).join('\n')));
    // -v=6 logs each request: three pages of at most 2, each after the first with continue
    const run = ok(await kubectl(['get', 'pods', '-n', 'chunks', '--chunk-size=2', '-v=6']));
    const rows = run.stdout.split('\n').filter((l) => /^p\d/.test(l));
    expect(rows.map((l) => l.split(/\s+/)[0])).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    const gets = run.stderr
      .split('\n')
      .filter((l) => l.includes('/api/v1/namespaces/chunks/pods?') && /\b200\b/.test(l));
    expect(gets).toHaveLength(3);
    expect(gets.every((l) => l.includes('limit=2'))).toBe(true);
    expect(gets.filter((l) => l.includes('continue=')).length).toBe(2);
    // -o name and json through the same pages
    expect(
      ok(await kubectl(['get', 'pods', '-n', 'chunks', '--chunk-size=3', '-o', 'name']))
        .stdout.trim()
        .split('\n'),
    ).toEqual(['pod/p0', 'pod/p1', 'pod/p2', 'pod/p3', 'pod/p4']);
  });

  test('kubectl get -w --watch-only streams an added object', async () => {
    const w = h.kubectlBackground([
      'get',
      'serviceaccounts',
      '-w',
      '-o',
      'name',
      '--watch-only',
      '-v=6',
    ]);
    await watchOpen(w);
    ok(
      await kubectl(
        ['create', '-f', '-'],
        yaml({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa1' } }),
      ),
    );
    await until('the watch to print sa1', () => w.output().includes('serviceaccount/sa1'));
    w.child.kill();
  }, 120000);

  test('server-side apply: managedFields, conflicts, --force-conflicts, removal; kubectl diff', async () => {
    const np = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'ssa', namespace: 'default', labels: { a: 'b', drop: 'me' } },
      spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] },
    };
    expect(ok(await kubectl(['apply', '--server-side', '-f', '-'], yaml(np))).stdout).toContain(
      'networkpolicy.networking.k8s.io/ssa serverside-applied',
    );
    const managed = async () =>
      JSON.parse(
        ok(await kubectl(['get', 'netpol', 'ssa', '-o', 'json', '--show-managed-fields'])).stdout,
      ) as {
        metadata: {
          labels: Record<string, string>;
          managedFields: { manager: string; operation: string; fieldsV1: unknown }[];
        };
        spec: { podSelector: unknown; policyTypes: string[] };
      };
    let got = await managed();
    expect(got.metadata.managedFields).toEqual([
      expect.objectContaining({
        manager: 'kubectl',
        operation: 'Apply',
        fieldsV1: {
          'f:metadata': { 'f:labels': { 'f:a': {}, 'f:drop': {} } },
          'f:spec': { 'f:podSelector': {}, 'f:policyTypes': {} },
        },
      }),
    ]);
    // another manager changing a field kubectl owns: a conflict naming both
    const other = {
      ...np,
      metadata: { name: 'ssa', namespace: 'default' },
      spec: { podSelector: { matchLabels: { app: 'db' } } },
    };
    const conflict = await kubectl(
      ['apply', '--server-side', '--field-manager', 'other', '-f', '-'],
      yaml(other),
    );
    expect(conflict.code).not.toBe(0);
    expect(conflict.stderr).toContain(
      'Apply failed with 1 conflict: conflict with "kubectl": .spec.podSelector',
    );
    ok(
      await kubectl(
        ['apply', '--server-side', '--field-manager', 'other', '--force-conflicts', '-f', '-'],
        yaml(other),
      ),
    );
    got = await managed();
    expect(got.spec.podSelector).toEqual({ matchLabels: { app: 'db' } });
    const kubectlFields = got.metadata.managedFields.find((e) => e.manager === 'kubectl')!.fieldsV1;
    expect(kubectlFields).toEqual({
      'f:metadata': { 'f:labels': { 'f:a': {}, 'f:drop': {} } },
      'f:spec': { 'f:policyTypes': {} },
    });
    // kubectl applies without the label 'drop': nobody else owns it, so it goes; 'a' is shared and stays
    ok(
      await kubectl(
        ['apply', '--server-side', '-f', '-'],
        yaml({
          ...np,
          metadata: { ...np.metadata, labels: { a: 'b' } },
          spec: { policyTypes: ['Ingress'] },
        }),
      ),
    );
    got = await managed();
    expect(got.metadata.labels).toEqual({ a: 'b' });
    expect(got.spec.podSelector).toEqual({ matchLabels: { app: 'db' } });
    // an imperative write makes its manager own what it changed
    ok(await kubectl(['label', 'netpol', 'ssa', 'x=y']));
    expect((await managed()).metadata.managedFields).toContainEqual(
      expect.objectContaining({
        manager: 'kubectl-label',
        operation: 'Update',
        fieldsV1: { 'f:metadata': { 'f:labels': { 'f:x': {} } } },
      }),
    );
    // kubectl diff asks the server (dryRun) and shows the change without making it
    const diff = await kubectl(
      ['diff', '-f', '-'],
      yaml({ ...np, spec: { ...np.spec, policyTypes: ['Egress'] } }),
    );
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(/-\s+- Ingress\n\+\s+- Egress/);
    expect((await managed()).spec.policyTypes).toEqual(['Ingress']);
    // server-side apply of a tortie kind (a custom resource)
    ok(await kubectl(['apply', '-f', path.join(REPO, 'deploy/crds/tiers.tortie.io.yaml')]));
    const tier = {
      apiVersion: 'tortie.io/v1',
      kind: 'Tier',
      metadata: { name: 'security' },
      spec: { order: 100 },
    };
    expect(ok(await kubectl(['apply', '--server-side', '-f', '-'], yaml(tier))).stdout).toContain(
      'tier.tortie.io/security serverside-applied',
    );
    const tierConflict = await kubectl(
      ['apply', '--server-side', '--field-manager', 'x', '-f', '-'],
      yaml({ ...tier, spec: { order: 200 } }),
    );
    expect(tierConflict.stderr).toContain(
      'Apply failed with 1 conflict: conflict with "kubectl": .spec.order',
    );
  }, 180000);

  test('server-side apply of status: the status subresource owns status, the main resource spec; conflicts named as kube-apiserver', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'ssa-status', namespace: 'default' },
      spec: { nodeName: 'node1', containers: [{ name: 'c', image: 'c:1' }] },
    };
    ok(await kubectl(['apply', '--server-side', '-f', '-'], yaml(pod)));
    type Entry = { manager: string; operation: string; subresource?: string; fieldsV1: unknown };
    const get = async () =>
      JSON.parse(
        ok(await kubectl(['get', 'pod', 'ssa-status', '-o', 'json', '--show-managed-fields']))
          .stdout,
      ) as {
        metadata: { managedFields: Entry[] };
        spec: { nodeName: string };
        status: Record<string, unknown>;
      };
    const entry = (all: Entry[], manager: string, operation: string) =>
      all.find((e) => e.manager === manager && e.operation === operation);
    // an imperative status write (as the kubelet, or client-node's status patch) is an
    // Update through the status subresource
    ok(
      await kubectl([
        'patch',
        'pod',
        'ssa-status',
        '--subresource',
        'status',
        '--type',
        'merge',
        '--field-manager',
        'kubelet',
        '-p',
        '{"status":{"phase":"Running","podIP":"10.244.0.9"}}',
      ]),
    );
    let got = await get();
    expect(entry(got.metadata.managedFields, 'kubelet', 'Update')).toMatchObject({
      apiVersion: 'v1',
      subresource: 'status',
      fieldsV1: { 'f:status': { 'f:phase': {}, 'f:podIP': {} } },
    });
    // an apply to the status subresource: the field it shares with the same value is no
    // conflict; what it adds it owns, with subresource status
    const status = (s: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      yaml({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'ssa-status' },
        ...extra,
        status: s,
      });
    const ready = [{ type: 'Ready', status: 'True' }];
    expect(
      ok(
        await kubectl(
          ['apply', '--server-side', '--subresource=status', '--field-manager', 'agent', '-f', '-'],
          status({ phase: 'Running', conditions: ready }),
        ),
      ).stdout,
    ).toContain('pod/ssa-status serverside-applied');
    got = await get();
    expect(got.status).toEqual({ phase: 'Running', podIP: '10.244.0.9', conditions: ready });
    expect(entry(got.metadata.managedFields, 'agent', 'Apply')).toMatchObject({
      subresource: 'status',
      fieldsV1: {
        'f:status': {
          'f:phase': {},
          'f:conditions': { 'k:{"type":"Ready"}': { '.': {}, 'f:type': {}, 'f:status': {} } },
        },
      },
    });
    // changing a status field the kubelet owns conflicts, named with its subresource
    const clash = await kubectl(
      ['apply', '--server-side', '--subresource=status', '--field-manager', 'agent', '-f', '-'],
      status({ phase: 'Failed', conditions: ready }),
    );
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toContain(
      'Apply failed with 1 conflict: conflict with "kubelet" with subresource "status" using v1: .status.phase',
    );
    // the main resource's apply neither sets nor owns status (so no conflict on it), and
    // the status apply neither sets nor owns spec
    ok(
      await kubectl(
        ['apply', '--server-side', '-f', '-'],
        yaml({ ...pod, status: { phase: 'Succeeded' } }),
      ),
    );
    ok(
      await kubectl(
        ['apply', '--server-side', '--subresource=status', '--field-manager', 'agent', '-f', '-'],
        status({ phase: 'Running', conditions: ready }, { spec: { nodeName: 'node9' } }),
      ),
    );
    got = await get();
    expect(got.status.phase).toBe('Running');
    expect(got.spec.nodeName).toBe('node1');
    expect(entry(got.metadata.managedFields, 'kubectl', 'Apply')).not.toHaveProperty('subresource');
    expect(
      JSON.stringify(entry(got.metadata.managedFields, 'kubectl', 'Apply')!.fieldsV1),
    ).not.toContain('f:status');
    expect(
      JSON.stringify(entry(got.metadata.managedFields, 'agent', 'Apply')!.fieldsV1),
    ).not.toContain('f:spec');
    // forced: phase moves to the agent; the kubelet keeps podIP
    ok(
      await kubectl(
        [
          'apply',
          '--server-side',
          '--subresource=status',
          '--field-manager',
          'agent',
          '--force-conflicts',
          '-f',
          '-',
        ],
        status({ phase: 'Failed', conditions: ready }),
      ),
    );
    got = await get();
    expect(got.status.phase).toBe('Failed');
    expect(entry(got.metadata.managedFields, 'kubelet', 'Update')!.fieldsV1).toEqual({
      'f:status': { 'f:podIP': {} },
    });
    // the agent drops its condition: nobody else owns it, so it goes
    ok(
      await kubectl(
        ['apply', '--server-side', '--subresource=status', '--field-manager', 'agent', '-f', '-'],
        status({ phase: 'Failed' }),
      ),
    );
    expect((await get()).status).toEqual({ phase: 'Failed', podIP: '10.244.0.9' });
    // a status apply needs the object: 404, nothing created
    const missing = await kubectl(
      ['apply', '--server-side', '--subresource=status', '--field-manager', 'agent', '-f', '-'],
      yaml({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'nope' },
        status: { phase: 'Running' },
      }),
    );
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('pods "nope" not found');
    ok(await kubectl(['delete', 'pod', 'ssa-status']));
  }, 180000);

  test('apps objects: a good Deployment and DaemonSet are stored; a malformed one gets 422 naming the field', async () => {
    const template = {
      metadata: { labels: { app: 'web' } },
      spec: { containers: [{ name: 'c', image: 'c:1' }] },
    };
    const deploy = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'default' },
      spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template },
    };
    expect(ok(await kubectl(['apply', '-f', '-'], yaml(deploy))).stdout).toContain(
      'deployment.apps/web created',
    );
    const refused = async (o: unknown, ...want: string[]) => {
      const r = await kubectl(['apply', '-f', '-'], yaml(o));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('is invalid');
      for (const w of want) expect(r.stderr).toContain(w);
    };
    await refused(
      {
        ...deploy,
        metadata: { name: 'bad1', namespace: 'default' },
        spec: {
          replicas: -1,
          strategy: { type: 'Sometimes' },
          template: { ...template, spec: { containers: [{ name: 'c' }] } },
        },
      },
      'spec.selector: Required value',
      'spec.replicas: Invalid value: -1',
      'spec.strategy.type: Unsupported value: "Sometimes"',
      'spec.template.spec.containers[0].image: Required value',
    );
    await refused(
      {
        ...deploy,
        metadata: { name: 'bad2', namespace: 'default' },
        spec: { ...deploy.spec, selector: { matchLabels: { app: 'db' } } },
      },
      'spec.template.metadata.labels: Invalid value',
      '`selector` does not match template `labels`',
    );
    const ds = {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'agent', namespace: 'default' },
      spec: {
        selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web'] }] },
        updateStrategy: { type: 'OnDelete' },
        template,
      },
    };
    expect(ok(await kubectl(['apply', '-f', '-'], yaml(ds))).stdout).toContain(
      'daemonset.apps/agent created',
    );
    await refused(
      {
        ...ds,
        metadata: { name: 'bad3', namespace: 'default' },
        spec: {
          ...ds.spec,
          updateStrategy: { type: 'Rolling' },
          template: { ...template, spec: { ...template.spec, restartPolicy: 'Never' } },
        },
      },
      'spec.updateStrategy.type: Unsupported value: "Rolling"',
      'spec.template.spec.restartPolicy: Unsupported value: "Never"',
    );
    await refused(
      {
        ...ds,
        metadata: { name: 'bad4', namespace: 'default' },
        spec: { ...ds.spec, selector: {} },
      },
      'spec.selector: Invalid value',
      'empty selector is invalid for daemonset',
    );
    // nothing malformed was stored
    expect(
      ok(await kubectl(['get', 'deployments,daemonsets', '-o', 'name']))
        .stdout.trim()
        .split('\n'),
    ).toEqual(['deployment.apps/web', 'daemonset.apps/agent']);
    ok(await kubectl(['delete', 'deployment/web', 'daemonset/agent']));
  }, 120000);

  test("delete preconditions: a stale uid or resourceVersion gets kube-apiserver's 409; current ones delete", async () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pre' }, data: { a: '1' } };
    const created = JSON.parse(
      ok(await kubectl(['create', '-f', '-', '-o', 'json'], yaml(cm))).stdout,
    ) as { metadata: { uid: string; resourceVersion: string } };
    ok(await kubectl(['patch', 'configmap', 'pre', '-p', '{"data":{"a":"2"}}']));
    const { uid, resourceVersion: rv } = (
      JSON.parse(ok(await kubectl(['get', 'configmap', 'pre', '-o', 'json'])).stdout) as {
        metadata: { uid: string; resourceVersion: string };
      }
    ).metadata;
    expect(rv).not.toBe(created.metadata.resourceVersion);
    // real kubectl sends DeleteOptions with preconditions: delete --raw <path> -f <body>
    const body = path.join(h.dir, 'delete-options.json');
    const del = async (preconditions: Record<string, string>) => {
      fs.writeFileSync(
        body,
        JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', preconditions }),
      );
      return kubectl(['delete', '--raw', '/api/v1/namespaces/default/configmaps/pre', '-f', body]);
    };
    let r = await del({ uid: 'a7c1d2e4-0000-4000-8000-000000000000' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      `Operation cannot be fulfilled on configmaps "pre": Precondition failed: UID in precondition: a7c1d2e4-0000-4000-8000-000000000000, UID in object meta: ${uid}`,
    );
    r = await del({ resourceVersion: created.metadata.resourceVersion });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      `Operation cannot be fulfilled on configmaps "pre": Precondition failed: ResourceVersion in precondition: ${created.metadata.resourceVersion}, ResourceVersion in object meta: ${rv}`,
    );
    expect(ok(await kubectl(['get', 'configmap', 'pre', '-o', 'name'])).stdout.trim()).toBe(
      'configmap/pre',
    );
    ok(await del({ uid, resourceVersion: rv }));
    r = await kubectl(['get', 'configmap', 'pre']);
    expect(r.stderr).toContain('configmaps "pre" not found');
  });

  test('OpenAPI v2 (/openapi/v2) defines every served type, a CRD kind as soon as it is served', async () => {
    const v2 = async () =>
      JSON.parse(ok(await kubectl(['get', '--raw', '/openapi/v2'])).stdout) as {
        swagger: string;
        definitions: Record<
          string,
          {
            properties?: Record<string, { properties?: Record<string, unknown> }>;
            'x-kubernetes-group-version-kind'?: { group: string; version: string; kind: string }[];
          }
        >;
      };
    let doc = await v2();
    expect(doc.swagger).toBe('2.0');
    const kinds = (d: typeof doc) =>
      Object.values(d.definitions).flatMap((x) =>
        (x['x-kubernetes-group-version-kind'] ?? []).map(
          (g) => `${g.group}/${g.version}/${g.kind}`,
        ),
      );
    // every resource kubectl discovers has its definition
    const served = ok(await kubectl(['api-resources', '--no-headers', '-o', 'wide']))
      .stdout.trim()
      .split('\n');
    expect(served.length).toBeGreaterThan(15);
    for (const line of served) {
      const cols = line.trim().split(/\s+/);
      // NAME [SHORTNAMES] APIVERSION NAMESPACED KIND VERBS...
      const i = cols.findIndex((c) => c === 'true' || c === 'false');
      const [group, version] = cols[i - 1].includes('/')
        ? cols[i - 1].split('/')
        : ['', cols[i - 1]];
      expect(kinds(doc)).toContain(`${group}/${version}/${cols[i + 1]}`);
    }
    expect(
      doc.definitions['io.k8s.api.networking.v1.NetworkPolicy'].properties!.spec.properties,
    ).toHaveProperty('podSelector');
    expect(kinds(doc)).not.toContain('example.com/v1/Gadget');
    const crd = crdOf(
      'example.com',
      'Gadget',
      'gadgets',
      {
        type: 'object',
        properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
      },
      { names: { singular: 'gadget', listKind: 'GadgetList' } },
    );
    ok(await kubectl(['apply', '-f', '-'], yaml(crd)));
    doc = await v2();
    expect(kinds(doc)).toContain('example.com/v1/Gadget');
    expect(doc.definitions['com.example.v1.Gadget'].properties!.spec.properties).toHaveProperty(
      'size',
    );
    ok(await kubectl(['delete', 'crd', 'gadgets.example.com']));
  });

  test("a CRD schema key JSONSchemaProps lacks is kube-apiserver's unknown field: refused under Strict, pruned otherwise", async () => {
    const crd = crdOf('example.com', 'Map', 'maps', {
      type: 'object',
      properties: {
        spec: {
          type: 'object',
          // JSON Schema's, not apiextensions': what zod's z.record writes
          propertyNames: { type: 'string' },
          additionalProperties: { type: 'string' },
        },
      },
    });
    // kubectl's default is fieldValidation=Strict
    const strict = await kubectl(['apply', '-f', '-'], yaml(crd));
    expect(strict.code).not.toBe(0);
    expect(strict.stderr).toContain(
      'strict decoding error: unknown field "spec.versions[0].schema.openAPIV3Schema.properties.spec.propertyNames"',
    );
    ok(await kubectl(['apply', '--validate=false', '-f', '-'], yaml(crd)));
    const stored = JSON.parse(
      ok(await kubectl(['get', 'crd', 'maps.example.com', '-o', 'json'])).stdout,
    );
    expect(stored.spec.versions[0].schema.openAPIV3Schema.properties.spec).toEqual({
      type: 'object',
      additionalProperties: { type: 'string' },
    });
    ok(await kubectl(['delete', 'crd', 'maps.example.com']));
  });

  test('OpenAPI v2 as protobuf, as kubectl asks for it: Content-Type, ETag and 304, the legacy path, 406', async () => {
    const get = (p: string, headers: Record<string, string>) =>
      new Promise<{ code: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
        (resolve, reject) => {
          // a connection per request: node 20's global agent keeps sockets alive, and one
          // reused just as the server's 5 s keep-alive timeout closes it reads ECONNRESET
          http
            .get(`${h.url}${p}`, { headers, agent: false }, (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () =>
                resolve({
                  code: res.statusCode!,
                  headers: res.headers,
                  body: Buffer.concat(chunks),
                }),
              );
            })
            .on('error', reject);
        },
      );
    // client-go's discovery OpenAPISchema(): this Accept and nothing else
    const PB = { Accept: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf' };
    const pb = await get('/openapi/v2', PB);
    expect(pb.code).toBe(200);
    expect(pb.headers['content-type']).toBe(
      'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
    );
    expect(pb.headers.vary).toContain('Accept');
    expect(pb.headers.etag).toMatch(/^"[0-9A-F]{128}"$/);
    // openapi_v2.Document: field 1 (swagger) "2.0", then field 2 (info)
    expect(pb.body.subarray(0, 6)).toEqual(Buffer.from([0x0a, 3, 0x32, 0x2e, 0x30, 0x12]));
    const again = await get('/openapi/v2', { ...PB, 'If-None-Match': pb.headers.etag! });
    expect([again.code, again.body.length]).toEqual([304, 0]);
    expect(again.headers.etag).toBe(pb.headers.etag);
    // JSON shares the ETag (kube-openapi: Vary: Accept)
    const json = await get('/openapi/v2', { Accept: 'application/json' });
    expect(json.headers['content-type']).toBe('application/json');
    expect(json.headers.etag).toBe(pb.headers.etag);
    expect(JSON.parse(json.body.toString()).swagger).toBe('2.0');
    // gzip when the client takes it (Go's transport always asks)
    const gz = await get('/openapi/v2', { ...PB, 'Accept-Encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(gz.body)).toEqual(pb.body);
    // the pre-1.14 path old clients fall back to: protobuf whatever the Accept
    const legacy = await get('/swagger-2.0.0.pb-v1', {});
    expect(legacy.code).toBe(200);
    expect(legacy.headers['content-type']).toBe(
      'application/com.github.googleapis.gnostic.OpenAPIv2@68f4ded+protobuf',
    );
    expect(legacy.body).toEqual(pb.body);
    expect((await get('/openapi/v2', { Accept: 'text/plain' })).code).toBe(406);
  });

  test('kubectl reads OpenAPI v2: explain --output plaintext-openapiv2, and client-side validation of a List', async () => {
    ok(
      await kubectl([
        'apply',
        '-f',
        path.join(REPO, 'deploy/crds/ippools.tortie.io.yaml'),
        '-f',
        path.join(REPO, 'deploy/crds/globalnetworkpolicies.tortie.io.yaml'),
      ]),
    );
    // a built-in kind and a tortie kind, from the v2 document (kubectl's default reads v3)
    const np = ok(
      await kubectl(['explain', 'networkpolicies.spec', '--output', 'plaintext-openapiv2']),
    ).stdout;
    expect(np).toMatch(/KIND:\s+NetworkPolicy\nVERSION:\s+networking.k8s.io\/v1/);
    expect(np).toMatch(/podSelector\t<Object>/);
    expect(np).toMatch(/policyTypes\t<\[\]string>/);
    const gnp = ok(
      await kubectl([
        'explain',
        'globalnetworkpolicies.spec.ingress',
        '--output',
        'plaintext-openapiv2',
      ]),
    ).stdout;
    expect(gnp).toMatch(/KIND:\s+GlobalNetworkPolicy\nVERSION:\s+tortie.io\/v1/);
    expect(gnp).toMatch(/RESOURCE: ingress <\[\]Object>/);
    expect(gnp).toMatch(/action\t<string> -required-/);
    // A List (what `kubectl get -o yaml` of several objects prints) has no OpenAPI v3 path,
    // so kubectl validates its items itself, against the v2 definitions
    const list = (items: unknown[]) => yaml({ apiVersion: 'v1', kind: 'List', items });
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'listed', namespace: 'default' },
      data: { a: 'b' },
    };
    const pool = {
      apiVersion: 'tortie.io/v1',
      kind: 'IPPool',
      metadata: { name: 'listed' },
      spec: { cidr: '10.77.0.0/16', blockSize: 28 },
    };
    const bad = await kubectl(
      ['apply', '-f', '-'],
      list([
        { ...cm, colour: 'red' },
        { ...pool, spec: { ...pool.spec, blockSize: 'big' } },
      ]),
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(
      'ValidationError(ConfigMap): unknown field "colour" in io.k8s.api.core.v1.ConfigMap',
    );
    expect(bad.stderr).toContain(
      'invalid type for io.tortie.v1.IPPool.spec.blockSize: got "string", expected "integer"',
    );
    // refused before anything was sent
    expect((await kubectl(['get', 'configmap', 'listed'])).stderr).toContain('not found');
    const good = ok(await kubectl(['apply', '-f', '-'], list([cm, pool]))).stdout;
    expect(good).toContain('configmap/listed created');
    expect(good).toContain('ippool.tortie.io/listed created');
    // and what kubectl get prints of them applies back
    const printed = ok(await kubectl(['get', 'configmap/listed', 'ippool/listed', '-o', 'yaml']));
    expect(printed.stdout).toMatch(/^apiVersion: v1\nitems:/);
    expect(ok(await kubectl(['apply', '-f', '-'], printed.stdout)).stdout).toMatch(
      /configmap\/listed (configured|unchanged)\n.*ippool.tortie.io\/listed (configured|unchanged)/s,
    );
    ok(await kubectl(['delete', 'configmap/listed', 'ippool/listed']));
  }, 120000);

  test('BGPFilter with communities, asPathPrefix, priority and operations: applied, read back, refused where Calico refuses', async () => {
    ok(await kubectl(['apply', '-f', path.join(REPO, 'deploy/crds/bgpfilters.tortie.io.yaml')]));
    ok(
      await kubectl([
        'wait',
        '--for',
        'condition=established',
        'crd/bgpfilters.tortie.io',
        '--timeout=30s',
      ]),
    );
    const f = {
      apiVersion: 'tortie.io/v1',
      kind: 'BGPFilter',
      metadata: { name: 'from-tor' },
      spec: {
        importV4: [
          { communities: { values: ['65001:666'] }, action: 'Reject' },
          {
            asPathPrefix: [65001, '1.10'],
            priority: 512,
            action: 'Accept',
            operations: [
              { addCommunity: { value: '65000:7:1' } },
              { prependASPath: { prefix: [64512] } },
              { setPriority: { value: 256 } },
            ],
          },
        ],
      },
    };
    expect(ok(await kubectl(['apply', '-f', '-'], yaml(f))).stdout).toContain(
      'bgpfilter.tortie.io/from-tor created',
    );
    const got = JSON.parse(
      ok(await kubectl(['get', 'bgpfilter', 'from-tor', '-o', 'json'])).stdout,
    );
    expect(got.spec.importV4[1].operations).toEqual(f.spec.importV4[1].operations);
    expect(got.spec.importV4[1].asPathPrefix).toEqual([65001, '1.10']);
    // operations on a Reject rule: Calico's CEL rule
    const reject = await kubectl(
      ['apply', '-f', '-'],
      yaml({
        ...f,
        spec: { importV4: [{ action: 'Reject', operations: [{ setPriority: { value: 1 } }] }] },
      }),
    );
    expect(reject.code).not.toBe(0);
    expect(reject.stderr).toContain('operations may only be used with action Accept');
    // priority out of range: the CRD schema's maximum
    const big = await kubectl(
      ['apply', '-f', '-'],
      yaml({ ...f, spec: { importV4: [{ priority: 2147483647, action: 'Accept' }] } }),
    );
    expect(big.code).not.toBe(0);
    expect(big.stderr).toContain('spec.importV4[0].priority');
  }, 120000);
});
