// The Kubernetes-datastore lab on a three-member etcd: tortie-apiserver gets every member
// (the lab's `--datastore kubernetes --etcd-members 3`). The etcd leader is killed; the
// API keeps serving through the others, and a NetworkPolicy applied with kubectl after
// that is enforced by the agents (which reach the API, not etcd), and its deletion too.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Cluster } from '@tortie/lab';
import { SLOW, describeIf, waitUntil } from '@tortie/testbed';

const NEEDS = ['root', 'netns', 'etcd', 'iptables', 'ipset', 'nft', 'kubectl'] as const;

describeIf([...NEEDS], 'cluster: kubernetes datastore on a 3-member etcd', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.start({ nodes: 2, datastore: 'kubernetes', etcdMembers: 3 });
    await Promise.all([c.ready(0, 60_000 * SLOW), c.ready(1, 60_000 * SLOW)]);
  }, 150_000 * SLOW);
  afterAll(() => c?.stop(), 60_000);

  test(
    'the etcd leader killed: kubectl and the agents carry on through the other members',
    async () => {
      const a = await c.addPod(0, 'a', { app: 'a' });
      const b = await c.addPod(1, 'b', { app: 'b' });
      await c.serve(b, 8080);
      const reaches = async () => (await c.ask(a, b.ip, 8080))[0]?.startsWith('b ') ?? false;
      await waitUntil('a reaches b across nodes', reaches, 20_000, 200);
      const leader = await c.etcdCluster!.leader();
      await leader.kill();
      const np = JSON.stringify({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'b-from-nobody', namespace: 'default' },
        spec: { podSelector: { matchLabels: { app: 'b' } }, policyTypes: ['Ingress'] },
      });
      // the first request may meet the dead member; the API answers once etcd re-elected
      await waitUntil(
        'kubectl apply through the remaining members',
        async () => (await c.kube!.kubectl(['apply', '-f', '-'], np)).code === 0,
        60_000 * SLOW,
        500,
      );
      await waitUntil(
        'a blocked from b',
        async () => (await c.ask(a, b.ip, 8080))[0] === 'timeout',
        30_000 * SLOW,
        200,
      );
      expect(await c.kube!.must(['get', 'netpol', '-o', 'name'])).toContain('b-from-nobody');
      await c.kube!.must(['delete', 'netpol', 'b-from-nobody']);
      await waitUntil('a reaches b again', reaches, 30_000 * SLOW, 200);
    },
    180_000 * SLOW,
  );
});

describeIf([...NEEDS], 'npm run lab -- --datastore kubernetes --etcd-members 3', () => {
  test(
    'the demo runs to its end on three members (the CLI refused the pair before)',
    () => {
      const cli = path.resolve(__dirname, '../packages/lab/dist/cli.js');
      const r = spawnSync(
        process.execPath,
        [cli, '--nodes', '2', '--datastore', 'kubernetes', '--etcd-members', '3'],
        { encoding: 'utf8', timeout: 300_000 * SLOW },
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^etcd http:\/\/[^,\s]+,http:\/\/[^,\s]+,http:\/\/[^,\s]+;/m);
      expect(r.stdout).toContain('networkpolicy.networking.k8s.io/db-from-web created');
      expect(r.stdout).toContain('all namespaces, processes and temp dirs removed');
    },
    320_000 * SLOW,
  );
});
