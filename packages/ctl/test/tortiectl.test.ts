// tortiectl run as a user runs it: the built binary, against a datastore file and a
// real etcd.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { allCrds, KINDS, type Kind } from '@tortie/api';
import { ApiServer } from '@tortie/apiserver';
import { EtcdDatastore, FileDatastore } from '@tortie/datastore';
import { IpamClient } from '@tortie/ipam';
import { Etcd, Testbed, describeIf } from '@tortie/testbed';

const CLI = path.resolve(__dirname, '../dist/cli.js');

const NODE_AND_WEP = `apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node1}
spec: {bgp: {ipv4Address: 10.0.0.1/24}}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node1-k8s-web-eth0, namespace: prod}
spec:
  node: node1
  pod: web
  endpoint: eth0
  ipNetworks: [10.65.0.5/32]
  interfaceName: cali0123456789a
  profiles: [kns.prod]
`;

const CALICO_SET = fs.readFileSync(
  path.resolve(__dirname, '../../../deploy/examples/calico-v3.yaml'),
  'utf8',
);

/** Deletes every tortie resource in etcd, and checks that none is left. */
async function emptyEtcd(etcd: Etcd): Promise<void> {
  const ds = new EtcdDatastore([etcd.endpoint]);
  try {
    for (const kind of Object.keys(KINDS) as Kind[]) {
      for (const r of (await ds.list({ kind })).items)
        await ds.delete({ kind, name: r.metadata.name, namespace: r.metadata.namespace });
      expect((await ds.list({ kind })).items).toEqual([]);
    }
  } finally {
    await ds.close();
  }
}

function runner(datastoreArgs: string[]) {
  return (args: string[], input?: string) => {
    const r = spawnSync('node', [CLI, ...args, ...datastoreArgs], { input, encoding: 'utf8' });
    return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
  };
}

function suite(
  make: () => {
    ctl: ReturnType<typeof runner>;
    before?: () => Promise<void>;
    done?: () => void;
  },
) {
  let ctl: ReturnType<typeof runner>;
  let done: (() => void) | undefined;
  beforeEach(async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
    let before: (() => Promise<void>) | undefined;
    ({ ctl, before, done } = make());
    await before?.();
  });
  afterEach(() => done?.());

  test('apply a Calico v3 manifest set, then get -o yaml round-trips it', () => {
    const applied = ctl(['apply', '-f', '-'], CALICO_SET);
    expect(applied).toMatchObject({ code: 0, err: '' });
    expect(applied.out.split('\n')).toEqual([
      'ippool.tortie.io/default-ipv4-ippool created',
      'bgppeer.tortie.io/rack1-tor created',
      'bgpconfiguration.tortie.io/default created',
      'globalnetworkpolicy.tortie.io/allow-tcp-6379 created',
      'networkpolicy.tortie.io/allow-tcp-6379 created',
      'networkset.tortie.io/external-database created',
    ]);
    const pool = ctl(['get', 'ippool', 'default-ipv4-ippool', '-o', 'yaml']);
    expect(pool.code).toBe(0);
    const doc = YAML.parse(pool.out);
    expect(doc).toMatchObject({
      apiVersion: 'tortie.io/v1',
      kind: 'IPPool',
      spec: { cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', natOutgoing: true, blockSize: 26 },
    });
    // the output of get applies back unchanged
    const all = ['ippools', 'bgppeers', 'bgpconfigurations', 'globalnetworkpolicies'].map(
      (k) => ctl(['get', k, '-o', 'yaml']).out,
    );
    const ns = [
      ctl(['get', 'networkpolicy', '-n', 'production', '-o', 'yaml']).out,
      ctl(['get', 'networksets', '-A', '-o', 'yaml']).out,
    ];
    for (const text of [...all, ...ns]) {
      const again = ctl(['apply', '-f', '-'], text);
      expect(again.code).toBe(0);
      expect(again.out).toMatch(/unchanged$/);
      expect(again.out).not.toMatch(/created|configured/);
    }
  });

  test('BGPFilter: apply, get, and a BGPPeer naming it', () => {
    const filter = `apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata: {name: no-ten}
spec:
  importV4:
    - {cidr: 10.0.0.0/8, matchOperator: In, prefixLength: {min: 16, max: 24}, action: Reject}
  exportV4:
    - {source: RemotePeers, action: Reject}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor}
spec: {peerIP: 192.0.2.1, asNumber: 65001, filters: [no-ten]}
`;
    expect(ctl(['apply', '-f', '-'], filter).out.split('\n')).toEqual([
      'bgpfilter.tortie.io/no-ten created',
      'bgppeer.tortie.io/tor created',
    ]);
    expect(ctl(['get', 'bgpfilters']).out.split('\n')).toEqual(['NAME', 'no-ten']);
    const got = YAML.parse(ctl(['get', 'bgpfilter', 'no-ten', '-o', 'yaml']).out);
    expect(got).toMatchObject({
      kind: 'BGPFilter',
      spec: { importV4: [{ cidr: '10.0.0.0/8', prefixLength: { min: 16, max: 24 } }] },
    });
    expect(ctl(['apply', '-f', '-'], YAML.stringify(got)).out).toMatch(/unchanged$/);
    const bad = ctl(['apply', '-f', '-'], filter.replace('action: Reject}', 'action: Drop}'));
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/BGPFilter no-ten\): spec.importV4\[0\].action/);
  });

  test('get tables, -o json and -o name; re-apply with a change says configured', () => {
    ctl(['apply', '-f', '-'], CALICO_SET);
    expect(ctl(['get', 'ippools']).out.split('\n')).toEqual([
      'NAME                  CIDR             SELECTOR',
      'default-ipv4-ippool   192.168.0.0/16   all()',
    ]);
    expect(ctl(['get', 'ippool', '-o', 'wide']).out).toContain('IPIPMODE');
    expect(JSON.parse(ctl(['get', 'bgppeer', '-o', 'json']).out)).toMatchObject({
      kind: 'List',
      items: [{ spec: { asNumber: 64567 } }],
    });
    expect(ctl(['get', 'networksets', '-A', '-o', 'name']).out).toBe(
      'networkset.tortie.io/external-database',
    );
    // calicoctl's columns: network sets show their nets with -o wide only
    expect(ctl(['get', 'networkset', '-n', 'staging']).out).not.toContain('198.51.100.0/28');
    expect(ctl(['get', 'networkset', '-n', 'staging', '-o', 'wide']).out).toContain(
      '198.51.100.0/28',
    );
    ctl(['apply', '-f', '-'], NODE_AND_WEP);
    expect(ctl(['get', 'nodes', '-o', 'wide']).out.split('\n')).toEqual([
      'NAME    ASN       IPV4          IPV6',
      'node1   (63400)   10.0.0.1/24', // the cluster's AS (BGPConfiguration default)
    ]);
    expect(ctl(['get', 'workloadendpoints', '-n', 'prod']).out.split('\n')).toEqual([
      'WORKLOAD   NODE    NETWORKS       INTERFACE',
      'web        node1   10.65.0.5/32   cali0123456789a',
    ]);
    const changed = CALICO_SET.replace('natOutgoing: true', 'natOutgoing: false');
    expect(ctl(['apply', '-f', '-'], changed).out).toContain(
      'ippool.tortie.io/default-ipv4-ippool configured',
    );
  });

  test('a bad manifest prints every problem with its path, exits 1, and writes nothing', () => {
    const bad = `${CALICO_SET}---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: bad}
spec: {cidr: 10.0.0.0/33}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: p2}
spec: {peerIP: nope, asNumber: 1}
`;
    const r = ctl(['apply', '-f', '-'], bad);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')).toEqual([
      'error: document 7 (IPPool bad): spec.cidr: "10.0.0.0/33" is not a valid CIDR',
      'error: document 8 (BGPPeer p2): spec.peerIP: "nope" is not an IP address or address:port',
    ]);
    expect(ctl(['get', 'ippools', '-o', 'name']).out).toBe('');
  });

  test('create, replace and delete follow kubectl: errors name the object, exit 1', () => {
    ctl(['apply', '-f', '-'], CALICO_SET);
    const dup = ctl(['create', '-f', '-'], CALICO_SET.split('---')[0]);
    expect(dup).toMatchObject({ code: 1 });
    expect(dup.err).toContain(
      'Error from server (AlreadyExists): IPPool default-ipv4-ippool already exists',
    );
    expect(ctl(['delete', 'ippool', 'default-ipv4-ippool'])).toMatchObject({
      code: 0,
      out: 'ippool.tortie.io "default-ipv4-ippool" deleted',
    });
    expect(ctl(['delete', 'ippool', 'default-ipv4-ippool']).err).toContain(
      'Error from server (NotFound)',
    );
    expect(ctl(['replace', '-f', '-'], CALICO_SET.split('---')[0]).err).toContain(
      'Error from server (NotFound)',
    );
    expect(ctl(['get', 'ippool', 'default-ipv4-ippool'])).toMatchObject({
      code: 1,
      err: 'Error from server (NotFound): ippool.tortie.io "default-ipv4-ippool" not found',
    });
    expect(ctl(['get', 'widgets']).err).toContain(
      'the server doesn\'t have a resource type "widgets"',
    );
  });
}

describe('tortiectl with --datastore-file', () => {
  suite(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortiectl-'));
    return {
      ctl: runner(['--datastore-file', path.join(dir, 'store.json')]),
      done: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  });

  test('no datastore given: a clear error', () => {
    const r = spawnSync('node', [CLI, 'get', 'ippools'], {
      encoding: 'utf8',
      env: { ...process.env, ETCD_ENDPOINTS: '', KUBECONFIG: '' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('no datastore: pass --etcd-endpoints');
  });
});

describeIf(['etcd'], 'tortiectl with --etcd-endpoints (real etcd)', () => {
  let tb: Testbed;
  let etcd: Etcd;
  beforeAll(async () => {
    tb = new Testbed();
    etcd = await Etcd.start(tb);
  });
  afterAll(async () => {
    await tb.cleanup();
  });
  let n = 0;
  suite(() => {
    // a fresh key space per test: etcd restarted on a new data dir would be slower. Emptied
    // in-process (listing and deleting through the CLI took ~15 processes per test).
    n++;
    return { ctl: runner(['--etcd-endpoints', etcd.endpoint]), before: () => emptyEtcd(etcd) };
  });
  test('suite ran', () => expect(n).toBeGreaterThan(0));
});

describe('tortiectl policy explain', () => {
  const WORLD = `apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.prod}
spec:
  labelsToApply: {pcns.env: prod}
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node1-k8s-web-eth0, namespace: prod, labels: {app: web}}
spec: {node: node1, pod: web, interfaceName: cali0123456789a, ipNetworks: [10.1.0.1/32], profiles: [kns.prod]}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: node1-k8s-db-eth0, namespace: prod, labels: {app: db}}
spec: {node: node1, pod: db, interfaceName: cali0123456789b, ipNetworks: [10.1.0.2/32], profiles: [kns.prod]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db, namespace: prod}
spec:
  selector: app == 'db'
  order: 10
  ingress:
    - action: Allow
      protocol: TCP
      source: {selector: app == 'web', namespaceSelector: env == 'prod'}
      destination: {ports: [5432]}
`;
  let dir: string;
  let ctl: ReturnType<typeof runner>;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortiectl-'));
    ctl = runner(['--datastore-file', path.join(dir, 'store.json')]);
    expect(ctl(['apply', '-f', '-'], WORLD).code).toBe(0);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('allowed by a rule, named; denied at the end of the tier', () => {
    const ok = ctl(['policy', 'explain', 'prod/web', 'prod/db', '5432']);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('10.1.0.1 -> 10.1.0.2:5432 TCP: ALLOWED');
    expect(ok.out).toContain('tier default / policy prod/db rule 0: Allow');
    const no = ctl(['policy', 'explain', '10.1.0.1', '10.1.0.2', '22']);
    expect(no.code).toBe(3); // denied
    expect(no.out).toContain('DENIED');
    expect(no.out).toContain('tier default: Deny (no rule matched in tier "default")');
    expect(ctl(['policy', 'explain', 'prod/web', 'prod/nope', '1']).err).toContain(
      'no workload endpoint "prod/nope"',
    );
  });

  test('without a port: a port-specific verdict is not hidden (exit 4), else the same on every port', () => {
    // web -> db is allowed on 5432 only: the answer depends on the port
    const any = ctl(['policy', 'explain', 'prod/web', 'prod/db']);
    expect(any.code).toBe(4);
    expect(any.out).toContain(
      '10.1.0.1 -> 10.1.0.2 TCP: DEPENDS ON THE PORT (allowed on 5432; denied on 1)',
    );
    // db -> web: no policy on web, its profile allows every port
    const all = ctl(['policy', 'explain', 'prod/db', 'prod/web']);
    expect(all.code).toBe(0);
    expect(all.out).toContain('(the same on every port)');
    // ICMP has no ports: one verdict
    expect(ctl(['policy', 'explain', 'prod/web', 'prod/db', '--protocol', 'ICMP']).code).toBe(3);
  });

  test("a services match: the Service's EndpointSlices decide, on their ports", () => {
    const svc = `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db-out, namespace: prod}
spec:
  selector: app == 'db'
  types: [Egress]
  egress: [{action: Allow, destination: {services: {name: web}}}]
---
apiVersion: tortie.io/v1
kind: KubernetesEndpointSlice
metadata: {name: web-x1, namespace: prod}
spec:
  serviceName: web
  addressType: IPv4
  ports: [{port: 8080}]
  endpoints: [{addresses: [10.1.0.1]}]
`;
    expect(ctl(['apply', '-f', '-'], svc).code).toBe(0);
    const ok = ctl(['policy', 'explain', 'prod/db', 'prod/web', '8080']);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('tier default / policy prod/db-out rule 0: Allow');
    expect(ctl(['policy', 'explain', 'prod/db', 'prod/web', '9090']).code).toBe(3);
    // without a port, the slice's port is among those tried
    expect(ctl(['policy', 'explain', 'prod/db', 'prod/web']).out).toContain(
      'DEPENDS ON THE PORT (allowed on 8080; denied on 1, 5432)',
    );
  });
});

describeIf(['etcd'], 'tortiectl with --kubeconfig (tortie-apiserver over real etcd)', () => {
  let tb: Testbed;
  let server: ApiServer;
  let url: string;
  let dir: string;
  beforeEach(async () => {
    tb = new Testbed();
    const etcd = await Etcd.start(tb);
    server = new ApiServer({ etcd: [etcd.endpoint] });
    url = await server.listen();
    // tortie's CRDs, as `kubectl apply -f deploy/crds` installs them
    for (const crd of allCrds()) {
      const res = await fetch(`${url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(crd),
      });
      expect(res.status).toBe(201);
    }
    // the manifests' namespaces, as a cluster would have them
    for (const name of ['production', 'staging'])
      await fetch(`${url}/api/v1/namespaces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ metadata: { name } }),
      });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortiectl-'));
  }, 60000);
  afterEach(async () => {
    await server?.close();
    await tb?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('apply and get through the Kubernetes API', async () => {
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      YAML.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 't', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 't', user: {} }],
        contexts: [{ name: 't', context: { cluster: 't', user: 't' } }],
        'current-context': 't',
      }),
    );
    // spawnSync would block the event loop this server runs on: use the async spawn
    const run = (args: string[], input?: string) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const p = require('node:child_process').spawn('node', [
          CLI,
          ...args,
          '--kubeconfig',
          kubeconfig,
        ]);
        let out = '';
        let err = '';
        p.stdout.on('data', (d: Buffer) => (out += d));
        p.stderr.on('data', (d: Buffer) => (err += d));
        p.on('close', (code: number | null) => resolve({ code, out: out.trim(), err: err.trim() }));
        p.stdin.end(input ?? '');
      });
    const applied = await run(['apply', '-f', '-'], CALICO_SET);
    expect(applied).toMatchObject({ code: 0, err: '' });
    expect(applied.out.split('\n')).toHaveLength(6);
    const policies = (await (
      await fetch(`${url}/apis/tortie.io/v1/namespaces/production/networkpolicies`)
    ).json()) as { items: unknown[] };
    expect(policies.items).toHaveLength(1);
    const got = await run(['get', 'bgppeers']);
    expect(got.out).toContain('rack1-tor');
    expect((await run(['apply', '-f', '-'], CALICO_SET)).out).not.toMatch(/created|configured/);
  }, 60000);
});

describe('tortiectl ipam (datastore file)', () => {
  test('show, check finds the leak, gc releases it, release of a free address', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortiectl-ipam-'));
    try {
      const file = path.join(dir, 'store.yaml');
      const ctl = runner(['--datastore-file', file]);
      const pool =
        'apiVersion: tortie.io/v1\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.9.0.0/24}\n';
      expect(ctl(['apply', '-f', '-'], pool).code).toBe(0);
      // a pod's allocation whose endpoint was never written: a leak
      const ds = FileDatastore.open(file);
      const got = await new IpamClient(ds).autoAssign({
        handleId: 'k8s-pod-network.abc',
        node: 'n1',
        num4: 3,
        attrs: { namespace: 'ns', pod: 'gone' },
      });
      await ds.close();

      const show = ctl(['ipam', 'show', '--show-blocks']);
      expect(show.code).toBe(0);
      expect(show.out.split('\n').map((l) => l.split(/\s{3,}/))).toEqual([
        ['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE', 'AFFINITY'],
        ['IP Pool', '10.9.0.0/24', '256', '3 (1%)', '253 (98%)'],
        [
          'Block',
          expect.stringMatching(/^10\.9\.0\.\d+\/26$/),
          '64',
          '3 (4%)',
          '61 (95%)',
          'host:n1',
        ],
      ]);
      const check = ctl(['ipam', 'check']);
      expect(check.code).toBe(1);
      expect(check.out).toContain(
        `leaked: ${got.ipv4.join(', ')} (handle k8s-pod-network.abc): pod ns/gone does not exist`,
      );
      expect(ctl(['ipam', 'gc', '--grace-period', '1h']).out).toContain('released 0 addresses');
      const gc = ctl(['ipam', 'gc', '--grace-period', '0']);
      expect(gc.out.split('\n')[0]).toBe(
        'released 3 addresses (1 handles) and 0 block affinities of deleted nodes',
      );
      expect(ctl(['ipam', 'check'])).toMatchObject({ code: 0 });
      expect(ctl(['ipam', 'release', '--ip', '10.9.0.200']).out).toBe(
        '10.9.0.200 was not allocated',
      );
      expect(ctl(['ipam', 'gc', '--grace-period', 'soon'])).toMatchObject({
        code: 1,
        err: 'error: invalid duration "soon" (examples: 0, 30s, 5m, 1h)',
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
