// RBAC in tortie-apiserver: the token file's users and groups, request attributes read
// from paths as kube-apiserver reads them, and real kubectl (v1.32) over real etcd
// allowed or refused (403 Forbidden, kube-apiserver's wording) by the Roles,
// ClusterRoles and bindings stored in the server.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeIf } from '@tortie/testbed';
import YAML from 'yaml';
import {
  allows,
  authenticate,
  makeLabCertificates,
  parseTokenFile,
  requestAttributes,
  serviceAccountIssuer,
  serviceAccountUser,
  signToken,
  tokenClaims,
  type RbacPolicy,
} from '../src';
import { REPO, startHarness, until, writeKubeconfig, type Harness, type Run } from './harness';

const attrs = (method: string, p: string) =>
  requestAttributes(method, new URL(p, 'https://127.0.0.1'));

test('the token file: users, uids and quoted groups; bad lines named', () => {
  const users = parseTokenFile(
    '# comment\nt1,admin,1,"system:masters"\nt2,system:serviceaccount:ns:sa,2,"system:serviceaccounts,system:serviceaccounts:ns"\nt3,jane,3\n',
  );
  expect(users).toEqual([
    { token: 't1', name: 'admin', uid: '1', groups: ['system:masters'] },
    {
      token: 't2',
      name: 'system:serviceaccount:ns:sa',
      uid: '2',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:ns'],
    },
    { token: 't3', name: 'jane', uid: '3', groups: [] },
  ]);
  expect(authenticate('Bearer t3', users)).toEqual({
    name: 'jane',
    uid: '3',
    groups: ['system:authenticated'],
  });
  expect(authenticate('Bearer nope', users)).toBeUndefined();
  expect(authenticate(undefined, users)).toBeUndefined();
  expect(() => parseTokenFile('t1,admin\n')).toThrow('line 1: want token,user,uid');
  expect(() => parseTokenFile('t1,a,1\nt1,b,2\n')).toThrow('line 2: a token given twice');
  expect(() => parseTokenFile('t1,a,1,"x\n')).toThrow('line 1: an unterminated quoted field');
});

test("request attributes as kube-apiserver's RequestInfoFactory reads them", () => {
  expect(attrs('GET', '/api/v1/namespaces/default/pods/p1')).toMatchObject({
    verb: 'get',
    resourceRequest: true,
    apiGroup: '',
    resource: 'pods',
    name: 'p1',
    namespace: 'default',
    subresource: '',
  });
  expect(attrs('GET', '/api/v1/pods?watch=true')).toMatchObject({ verb: 'watch', name: '' });
  expect(attrs('GET', '/api/v1/pods?fieldSelector=metadata.name%3Dp1')).toMatchObject({
    verb: 'list',
    name: 'p1',
  });
  expect(attrs('PATCH', '/api/v1/namespaces/a/pods/p1/status')).toMatchObject({
    verb: 'patch',
    resource: 'pods',
    subresource: 'status',
  });
  // a namespace's own path: the namespace is its name; status is its subresource
  expect(attrs('GET', '/api/v1/namespaces/a')).toMatchObject({
    resource: 'namespaces',
    name: 'a',
    namespace: 'a',
  });
  expect(attrs('PUT', '/api/v1/namespaces/a/status')).toMatchObject({
    verb: 'update',
    resource: 'namespaces',
    name: 'a',
    subresource: 'status',
  });
  expect(attrs('DELETE', '/apis/tortie.io/v1/ippools')).toMatchObject({
    verb: 'deletecollection',
    apiGroup: 'tortie.io',
    resource: 'ippools',
  });
  expect(attrs('POST', '/apis/tortie.io/v1/ippools')).toMatchObject({ verb: 'create' });
  expect(attrs('GET', '/apis/tortie.io/v1')).toMatchObject({ resourceRequest: false, verb: 'get' });
  expect(attrs('GET', '/openapi/v3')).toMatchObject({
    resourceRequest: false,
    path: '/openapi/v3',
  });
});

test('rules: verbs, groups, resources, */subresource, resourceNames, non-resource URLs; subjects', () => {
  const sa = { ...serviceAccountUser('tortie-system', 'tortie-node'), groups: [] };
  const jane = { name: 'jane', groups: ['devs'] };
  const policy: RbacPolicy = {
    clusterRoles: [
      {
        metadata: { name: 'node' },
        rules: [
          { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['*/status'], verbs: ['patch'] },
          { apiGroups: ['tortie.io'], resources: ['ippools'], resourceNames: ['p1'], verbs: ['*'] },
          { nonResourceURLs: ['/openapi/*'], verbs: ['get'] },
        ],
      },
    ],
    clusterRoleBindings: [
      {
        metadata: { name: 'node' },
        roleRef: { kind: 'ClusterRole', name: 'node' },
        subjects: [{ kind: 'ServiceAccount', name: 'tortie-node', namespace: 'tortie-system' }],
      },
    ],
    roles: [
      {
        metadata: { name: 'np', namespace: 'a' },
        rules: [
          { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['create'] },
        ],
      },
    ],
    roleBindings: [
      {
        metadata: { name: 'np', namespace: 'a' },
        roleRef: { kind: 'Role', name: 'np' },
        subjects: [{ kind: 'Group', name: 'devs' }],
      },
      // a ServiceAccount subject without a namespace is in the binding's namespace
      {
        metadata: { name: 'local-sa', namespace: 'b' },
        roleRef: { kind: 'ClusterRole', name: 'node' },
        subjects: [{ kind: 'ServiceAccount', name: 'x' }],
      },
    ],
  };
  const can = (u: typeof jane, m: string, p: string) => allows(policy, u, attrs(m, p));
  expect(can(sa, 'GET', '/api/v1/pods?watch=1')).toBe(true);
  expect(can(sa, 'DELETE', '/api/v1/namespaces/a/pods/p')).toBe(false);
  expect(can(sa, 'PATCH', '/api/v1/namespaces/a/pods/p/status')).toBe(true);
  expect(can(sa, 'PATCH', '/api/v1/namespaces/a/pods/p')).toBe(false);
  expect(can(sa, 'PUT', '/apis/tortie.io/v1/ippools/p1')).toBe(true);
  expect(can(sa, 'PUT', '/apis/tortie.io/v1/ippools/p2')).toBe(false);
  expect(can(sa, 'GET', '/openapi/v3/apis/tortie.io/v1')).toBe(true);
  expect(can(sa, 'GET', '/version')).toBe(false);
  expect(can(jane, 'POST', '/apis/networking.k8s.io/v1/namespaces/a/networkpolicies')).toBe(true);
  expect(can(jane, 'POST', '/apis/networking.k8s.io/v1/namespaces/b/networkpolicies')).toBe(false);
  expect(can(jane, 'GET', '/apis/networking.k8s.io/v1/namespaces/a/networkpolicies')).toBe(false);
  const x = { ...serviceAccountUser('b', 'x'), groups: [] };
  expect(can(x, 'GET', '/api/v1/namespaces/b/pods')).toBe(true);
  expect(can(x, 'GET', '/api/v1/namespaces/c/pods')).toBe(false);
});

const ok = (r: Run): Run => {
  if (r.code) throw new Error(`kubectl failed (${r.code}): ${r.stderr}`);
  return r;
};

describeIf(['etcd'], 'tortie-apiserver --authorization-mode RBAC with real kubectl', () => {
  let h: Harness;
  const as = (who: string, args: string[], stdin?: string) =>
    h.kubectl(['--kubeconfig', path.join(h.dir, who), ...args], stdin);
  let pki: string;
  let ca: string;
  const ISSUER = 'https://kubernetes.default.svc.cluster.local';
  const pem = (k: crypto.KeyObject) => k.export({ type: 'pkcs8', format: 'pem' });
  const issuer = serviceAccountIssuer({
    signingKeyPem: pem(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
    issuer: ISSUER,
  });
  beforeAll(async () => {
    // HTTPS: kubectl sends a token to an https server only
    pki = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-rbac-pki-'));
    const certs = await makeLabCertificates(pki);
    ca = certs.caFile;
    h = await startHarness({
      serviceAccounts: issuer,
      authorization: 'RBAC',
      tls: { cert: fs.readFileSync(certs.certFile), key: fs.readFileSync(certs.keyFile) },
      tokens: parseTokenFile(
        [
          'admin-token,kubernetes-admin,1,"system:masters"',
          'jane-token,jane,2',
          'sa-token,system:serviceaccount:tortie-system:tortie-node,3,"system:serviceaccounts,system:serviceaccounts:tortie-system"',
        ].join('\n'),
      ),
    });
    for (const who of ['admin', 'jane', 'sa'])
      writeKubeconfig(path.join(h.dir, who), h.url, { ca: certs.caFile, token: `${who}-token` });
  }, 60000);
  afterAll(async () => {
    await h?.stop();
    if (pki) fs.rmSync(pki, { recursive: true, force: true });
  });

  test("an unbound user is refused with kube-apiserver's 403; a Role and RoleBinding let her in, in their namespace only", async () => {
    // (kubectl's typed generators, create namespace|role|rolebinding, send protobuf: JSON here)
    ok(
      await as(
        'admin',
        ['create', '-f', '-'],
        JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }),
      ),
    );
    const list = await as('jane', ['get', 'pods', '-n', 'team']);
    expect(list.code).not.toBe(0);
    expect(list.stderr).toContain(
      'pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "team"',
    );
    // discovery is every authenticated user's (system:discovery), so kubectl got this far
    const role = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'np-writer', namespace: 'team' },
      rules: [
        {
          apiGroups: ['networking.k8s.io'],
          resources: ['networkpolicies'],
          verbs: ['get', 'list', 'create'],
        },
      ],
    };
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'jane-np', namespace: 'team' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'np-writer' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'jane' }],
    };
    ok(
      await as(
        'admin',
        ['apply', '-f', '-'],
        [role, binding].map((o) => JSON.stringify(o)).join('\n'),
      ),
    );
    const np = JSON.stringify({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'deny', namespace: 'team' },
      spec: { podSelector: {} },
    });
    expect(ok(await as('jane', ['create', '-f', '-'], np)).stdout).toContain(
      'networkpolicy.networking.k8s.io/deny created',
    );
    expect(ok(await as('jane', ['get', 'netpol', '-n', 'team', '-o', 'name'])).stdout.trim()).toBe(
      'networkpolicy.networking.k8s.io/deny',
    );
    const del = await as('jane', ['delete', 'netpol', 'deny', '-n', 'team']);
    expect(del.stderr).toContain(
      'networkpolicies.networking.k8s.io "deny" is forbidden: User "jane" cannot delete resource "networkpolicies" in API group "networking.k8s.io" in the namespace "team"',
    );
    const other = await as(
      'jane',
      ['create', '-n', 'default', '-f', '-'],
      np.replace('"team"', '"default"'),
    );
    expect(other.stderr).toContain('in the namespace "default"');
    const nodes = await as('jane', ['get', 'nodes']);
    expect(nodes.stderr).toContain(
      'nodes is forbidden: User "jane" cannot list resource "nodes" in API group "" at the cluster scope',
    );
    // the binding deleted: refused again at once
    ok(await as('admin', ['delete', 'rolebinding', 'jane-np', '-n', 'team']));
    expect((await as('jane', ['get', 'netpol', '-n', 'team'])).stderr).toContain('forbidden');
  }, 180000);

  test("deploy/tortie.yaml's ClusterRole binds the tortie-node service account: its reads and writes pass, others get 403", async () => {
    // the manifest's own RBAC documents, applied by the administrator as a user does
    ok(await as('admin', ['apply', '-f', path.join(REPO, 'deploy/crds')]));
    const items = YAML.parseAllDocuments(
      fs.readFileSync(path.join(REPO, 'deploy/tortie.yaml'), 'utf8'),
    )
      .map((d) => d.toJSON() as { kind: string })
      .filter((o) =>
        ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(o?.kind),
      );
    expect(items.map((o) => o.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'Namespace',
      'ServiceAccount',
    ]);
    ok(await as('admin', ['apply', '-f', '-'], items.map((o) => JSON.stringify(o)).join('\n')));
    ok(await as('sa', ['get', 'pods', '-A']));
    ok(await as('sa', ['get', 'ippools.tortie.io']));
    ok(
      await as(
        'sa',
        ['create', '-f', '-'],
        JSON.stringify({
          apiVersion: 'tortie.io/v1',
          kind: 'IPPool',
          metadata: { name: 'p1' },
          spec: { cidr: '10.244.0.0/16' },
        }),
      ),
    );
    const np = await as(
      'sa',
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'x', namespace: 'default' },
        spec: { podSelector: {} },
      }),
    );
    expect(np.stderr).toContain(
      'User "system:serviceaccount:tortie-system:tortie-node" cannot create resource "networkpolicies" in API group "networking.k8s.io" in the namespace "default"',
    );
    expect((await as('sa', ['delete', 'namespace', 'team'])).stderr).toContain('forbidden');
  }, 180000);

  test('a malformed Role or binding gets 422 naming the field, as kube-apiserver refuses it', async () => {
    const bad = await as(
      'admin',
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'bad' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'x' },
        subjects: [{ kind: 'Robot', name: 'r2' }],
      }),
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('is invalid');
    expect(bad.stderr).toContain('roleRef.kind: Unsupported value: "Role"');
    expect(bad.stderr).toContain('subjects[0].kind: Unsupported value: "Robot"');
    const noVerbs = await as(
      'admin',
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'r', namespace: 'default' },
        rules: [{ apiGroups: [''], resources: ['pods'] }],
      }),
    );
    expect(noVerbs.stderr).toContain('rules[0].verbs: Required value');
    expect((await as('admin', ['get', 'clusterrolebinding', 'bad'])).stderr).toContain('not found');
  }, 120000);

  test('TokenRequest (kubectl create token) issues a JWT that authenticates as the service account while it exists', async () => {
    const withToken = (token: string, args: string[]) =>
      h.kubectl([
        '--kubeconfig',
        '/dev/null',
        '--server',
        h.url,
        '--certificate-authority',
        ca,
        '--token',
        token,
        ...args,
      ]);
    const sa = (name: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name, namespace: 'default' },
      });
    ok(await as('admin', ['apply', '-f', '-'], sa('robot')));
    // kubectl's typed client sends the TokenRequest as protobuf
    const token = ok(
      await as('admin', ['create', 'token', 'robot', '--duration', '20m']),
    ).stdout.trim();
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({
      iss: ISSUER,
      sub: 'system:serviceaccount:default:robot',
      aud: [ISSUER],
      'kubernetes.io': { namespace: 'default', serviceaccount: { name: 'robot' } },
    });
    expect(claims.exp - claims.iat).toBe(1200);
    // authenticated as the service account, authorized by RBAC
    expect((await withToken(token, ['get', 'pods'])).stderr).toContain(
      'User "system:serviceaccount:default:robot" cannot list resource "pods"',
    );
    ok(
      await as(
        'admin',
        ['apply', '-f', '-'],
        [
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'Role',
            metadata: { name: 'pod-reader', namespace: 'default' },
            rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
          },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: { name: 'robot-view', namespace: 'default' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
            subjects: [{ kind: 'ServiceAccount', name: 'robot', namespace: 'default' }],
          },
        ]
          .map((o) => JSON.stringify(o))
          .join('\n'),
      ),
    );
    await until(
      'the binding lets robot list pods',
      async () => (await withToken(token, ['get', 'pods'])).code === 0,
    );
    // what kube-apiserver refuses
    expect((await as('admin', ['create', 'token', 'robot', '--duration', '5m'])).stderr).toContain(
      'TokenRequest.authentication.k8s.io "robot" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes',
    );
    expect((await as('admin', ['create', 'token', 'nobody'])).stderr).toContain(
      'serviceaccounts "nobody" not found',
    );
    const unauthorized = async (t: string) =>
      expect((await withToken(t, ['get', 'pods'])).stderr).toContain('Unauthorized');
    // a changed signature, another key, an expired token, another audience
    await unauthorized(token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA'));
    const uid = claims['kubernetes.io'].serviceaccount.uid as string;
    const forged = (o: { key?: crypto.KeyObject; now?: number; audiences?: string[] }) =>
      signToken(
        o.key ?? issuer.signingKey,
        tokenClaims(issuer, {
          namespace: 'default',
          name: 'robot',
          uid,
          audiences: o.audiences ?? [ISSUER],
          expirationSeconds: 600,
          nowSeconds: o.now ?? Math.floor(Date.now() / 1000),
        }),
      );
    expect((await withToken(forged({}), ['get', 'pods'])).code).toBe(0);
    await unauthorized(
      forged({ key: crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey }),
    );
    await unauthorized(forged({ now: Math.floor(Date.now() / 1000) - 3600 }));
    await unauthorized(forged({ audiences: ['elsewhere'] }));
    // bound to a pod: valid while that pod exists
    ok(
      await as(
        'admin',
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'holder', namespace: 'default' },
          spec: { containers: [{ name: 'c', image: 'x' }] },
        }),
      ),
    );
    const bound = ok(
      await as('admin', [
        'create',
        'token',
        'robot',
        '--bound-object-kind',
        'Pod',
        '--bound-object-name',
        'holder',
      ]),
    ).stdout.trim();
    expect(
      JSON.parse(Buffer.from(bound.split('.')[1], 'base64url').toString())['kubernetes.io'].pod
        .name,
    ).toBe('holder');
    ok(await withToken(bound, ['get', 'pods']));
    ok(await as('admin', ['delete', 'pod', 'holder', '--wait=false']));
    await unauthorized(bound);
    // the service account deleted and made again: the old one's tokens are revoked
    ok(await as('admin', ['delete', 'serviceaccount', 'robot']));
    await unauthorized(token);
    ok(await as('admin', ['apply', '-f', '-'], sa('robot')));
    await unauthorized(token);
    const again = ok(await as('admin', ['create', 'token', 'robot'])).stdout.trim();
    ok(await withToken(again, ['get', 'pods']));
  }, 180000);
});
