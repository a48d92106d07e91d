// `npm run lab` as an operator runs it, in both datastores: after the pods and the policy
// the demo makes one Service of each type over the web pods (ClusterIP, NodePort,
// LoadBalancer, ExternalIPs) and shows each answered by the backends from where issue 15
// says: the ClusterIP from a pod; the NodePort, the LoadBalancer IP and the ExternalIP from
// the BIRD ToR, outside the cluster; then BIRD's route for the LoadBalancer IP with a next
// hop per node (ECMP). With --datastore kubernetes the Services go in with kubectl apply,
// and tortie-controllers (in KDD mode) puts the address in status.loadBalancer.ingress,
// which kubectl get services shows.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { SLOW, describeIf } from '@tortie/testbed';

const CLI = path.resolve(__dirname, '../packages/lab/dist/cli.js');
const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft', 'kubectl'] as const;
const NODES = ['10.99.0.11', '10.99.0.12'];

/** Runs the demo to its end: its output; fails with the output when it exits non-zero. */
function runLab(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const lab = spawn(process.execPath, [CLI, '--nodes', '2', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    lab.stdout.on('data', (d: Buffer) => (out += d.toString()));
    lab.stderr.on('data', (d: Buffer) => (out += d.toString()));
    lab.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`the lab exited ${code}:\n${out}`)),
    );
  });
}

/**
 * The answers a demo line reports ("<what>: web1 x6, web2 x6 (client seen as ...)"): each
 * backend's count, or undefined when the line is missing.
 */
function answers(out: string, start: string): Map<string, number> | undefined {
  const line = out.split('\n').find((l) => l.startsWith(start));
  if (!line) return undefined;
  const list = line.slice(line.lastIndexOf(': ') + 2).replace(/ \(client seen as .*\)$/, '');
  return new Map(
    list.split(', ').map((x) => {
      const [who, n] = x.split(' x');
      return [who, Number(n)];
    }),
  );
}

/** Every one of 12 connections answered by a web pod (no timeout, no refusal). */
function expectWebs(out: string, start: string): void {
  const a = answers(out, start);
  expect(a).toBeDefined();
  for (const who of a!.keys()) expect(who).toMatch(/^web\d$/);
  expect([...a!.values()].reduce((x, y) => x + y, 0)).toBe(12);
}

function expectServices(out: string): string {
  expectWebs(out, 'ClusterIP web 10.96.0.10:80, from pod db1, ');
  expectWebs(out, `NodePort web-nodeport node2 ${NODES[1]}:30080, from the ToR: `);
  const lbIp = /^tortie-controllers gave web-lb (198\.51\.100\.\d+) from the pool/m.exec(out)?.[1];
  expect(lbIp).toBeDefined();
  expectWebs(out, `LoadBalancer web-lb ${lbIp}:80, from the ToR: `);
  expectWebs(out, 'ExternalIP web-external 203.0.113.10:80, from the ToR: ');
  // BIRD's paths from both nodes, and one kernel route with a next hop per node
  const route = out.slice(out.indexOf(`== ToR (bird): its route for the LoadBalancer IP ${lbIp}`));
  const bird = route.slice(route.indexOf(`show route for ${lbIp} all`));
  const kernel = route.slice(route.indexOf('ip route show match'));
  expect(bird).toMatch(/198\.51\.100\.0\/24\s+unicast \[node\d/);
  for (const n of NODES) {
    expect(bird.slice(0, bird.indexOf('$ ip netns'))).toContain(`via ${n} `);
    expect(kernel).toMatch(new RegExp(`^\\s+nexthop via ${n.replace(/\./g, '\\.')} `, 'm'));
  }
  return lbIp!;
}

describeIf([...NEEDS], 'npm run lab: one Service of each type', () => {
  test(
    'etcd datastore: every type answered from where issue 15 says; BIRD load-balances the LoadBalancer IP over both nodes',
    async () => {
      expectServices(await runLab([]));
    },
    400_000 * SLOW,
  );

  test(
    'kubernetes datastore: Services by kubectl apply, the LoadBalancer IP in their status, the same reachability',
    async () => {
      const out = await runLab(['--datastore', 'kubernetes']);
      expect(out).toMatch(/^service\/web-lb created$/m);
      const lbIp = expectServices(out);
      // kubectl get services -o wide: web-lb's EXTERNAL-IP is status.loadBalancer.ingress
      expect(out).toMatch(
        new RegExp(
          `^web-lb\\s+LoadBalancer\\s+10\\.96\\.0\\.12\\s+${lbIp.replace(/\./g, '\\.')}\\s`,
          'm',
        ),
      );
    },
    400_000 * SLOW,
  );
});
