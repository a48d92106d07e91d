// `npm run lab -- --datastore kubernetes --keep --attach bird`: the demo's Services go in
// with kubectl apply, each type answers as in lab-services.test.ts (etcd), and
// tortie-controllers (in KDD mode) puts the LoadBalancer IP in status.loadBalancer.ingress,
// which kubectl get services shows. Then the printed attach steps,
// typed as they are, put a BIRD router on the fabric; its BGPPeer goes in with kubectl
// through tortie-apiserver (the kubernetes datastore), every node peers with it, and the
// printed removal takes the peer out again. Then SIGTERM tears the lab down. On the way,
// the demo's kubectl lines are checked, and the printed `export KUBECONFIG=...` is typed
// with the printed kubectl line after it: it reaches the live lab (without it, kubectl
// has no cluster).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SLOW, describeIf, stopProcess, waitUntil } from '@tortie/testbed';
import { LabRun, expectServices, lineAfter, sh } from './lab-run';

const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft', 'kubectl'] as const;

describeIf([...NEEDS], 'npm run lab -- --datastore kubernetes --keep --attach bird', () => {
  let lab: LabRun | undefined;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-kdd-home-'));
  afterAll(async () => {
    fs.rmSync(home, { recursive: true, force: true });
    await lab?.cleanup();
  });

  test(
    'Services by kubectl apply with the LoadBalancer IP in their status; a BIRD router attaches as printed, its BGPPeer applied with kubectl',
    async () => {
      lab = new LabRun(['--nodes', '2', '--datastore', 'kubernetes', '--keep', '--attach', 'bird']);
      await lab.waitFor('# 6. remove it', 300_000 * SLOW);
      const out = lab.out;
      // the demo's Services, applied with kubectl; every type answers as with etcd
      expect(out).toMatch(/^service\/web-lb created$/m);
      const lbIp = expectServices(out);
      // kubectl get services -o wide: web-lb's EXTERNAL-IP is status.loadBalancer.ingress
      expect(out).toMatch(
        new RegExp(
          `^web-lb\\s+LoadBalancer\\s+10\\.96\\.0\\.12\\s+${lbIp.replace(/\./g, '\\.')}\\s`,
          'm',
        ),
      );
      // the demo applied its NetworkPolicy with kubectl apply -f, printed, then listed
      expect(out).toMatch(
        /^\$ kubectl apply -f \S+\.yaml\nnetworkpolicy\.networking\.k8s\.io\/\S+ created$/m,
      );
      expect(out).toMatch(
        /^\$ kubectl get networkpolicies,pods -o wide\nNAME\s+POD-SELECTOR\s+AGE$/m,
      );
      // --keep: the printed export, typed with the printed kubectl line after it, drives
      // the live lab; the same kubectl line without it has no cluster to talk to
      const exp = /^ *(export KUBECONFIG=\S+)\n *(kubectl get nodes,pods -A -o wide)$/m.exec(out);
      expect(exp).not.toBeNull();
      const typed = (lines: string[]) =>
        spawnSync('bash', ['-c', ['unset KUBECONFIG', ...lines].join('\n')], {
          encoding: 'utf8',
          env: { ...process.env, HOME: home },
        });
      const live = typed([exp![1], exp![2]]);
      expect(live.status).toBe(0);
      expect(live.stdout).toMatch(/^\s*default\s+pod\/db1\s/m);
      expect(live.stdout).toMatch(/^\s*node\/\S+/m);
      expect(typed([exp![2]]).status).not.toBe(0);
      const script = out.slice(out.indexOf('# bird at 10.99.0.100'));
      const lines = script.split('\n');
      const after = (heading: string) => lineAfter(script, heading);
      expect(after('# 3. the cluster peers with it: a BGPPeer (every node, eBGP)')).toMatch(
        /^kubectl --kubeconfig \S+ apply -f - <<'EOF'$/,
      );
      sh(script.slice(0, script.indexOf('# 4. start it')));
      const start = after('# 4. start it (foreground; another terminal for the next steps)');
      lab.router = spawn(start.split(' ')[0], start.split(' ').slice(1), { stdio: 'ignore' });
      const query = after("# 5. its sessions, and the nodes' side");
      await waitUntil(
        'the attached BIRD has both nodes Established',
        () => {
          const s = spawnSync('bash', ['-c', query], { encoding: 'utf8' }).stdout ?? '';
          return (s.match(/Established/g) ?? []).length >= 2;
        },
        90_000 * SLOW,
        1000,
      );
      // the nodes' side, as printed: kubectl lists the peer
      const get = lines[lines.indexOf("# 5. its sessions, and the nodes' side") + 2];
      expect(sh(get)).toMatch(/^tt-extra\s/m);
      await stopProcess(lab.router);
      lab.router = undefined;
      sh(after('# 6. remove it: stop the router (Ctrl-C), then'));
      expect(await lab.interrupt()).toBe(143);
    },
    400_000 * SLOW,
  );
});
