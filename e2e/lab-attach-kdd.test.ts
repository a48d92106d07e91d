// `npm run lab -- --datastore kubernetes --keep --attach bird`: the printed attach steps,
// typed as they are, put a BIRD router on the fabric; its BGPPeer goes in with kubectl
// through tortie-apiserver (the kubernetes datastore), every node peers with it, and the
// printed removal takes the peer out again. Then SIGTERM tears the lab down. On the way,
// the demo's kubectl lines are checked, and the printed `export KUBECONFIG=...` is typed
// with the printed kubectl line after it: it reaches the live lab (without it, kubectl
// has no cluster).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SLOW, describeIf, stopProcess, waitUntil } from '@tortie/testbed';

const CLI = path.resolve(__dirname, '../packages/lab/dist/cli.js');
const NEEDS = ['root', 'netns', 'etcd', 'bird', 'iptables', 'ipset', 'nft', 'kubectl'] as const;

const sh = (script: string) => {
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
    encoding: 'utf8',
    cwd: path.resolve(__dirname, '..'),
  });
  if (r.status !== 0) throw new Error(`${script}\nfailed: ${r.stdout}${r.stderr}`);
  return r.stdout;
};

describeIf([...NEEDS], 'npm run lab -- --datastore kubernetes --keep --attach bird', () => {
  let lab: ChildProcess | undefined;
  let router: ChildProcess | undefined;
  let out = '';
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tt-kdd-home-'));
  afterAll(async () => {
    fs.rmSync(home, { recursive: true, force: true });
    if (router) await stopProcess(router);
    spawnSync('ip', ['netns', 'del', 'tt-extra']);
    spawnSync('rm', ['-rf', '/tmp/tt-extra']);
    if (lab && lab.exitCode === null) {
      lab.kill('SIGTERM');
      await new Promise((r) => lab!.once('exit', r));
    }
  });

  test(
    'a BIRD router attaches as printed, its BGPPeer applied with kubectl',
    async () => {
      lab = spawn(
        process.execPath,
        [CLI, '--nodes', '2', '--datastore', 'kubernetes', '--keep', '--attach', 'bird'],
        { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      lab.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      lab.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<never>((_, fail) =>
        lab!.once('exit', (code) => fail(new Error(`the lab exited (${code}):\n${out}`))),
      );
      exited.catch(() => undefined);
      await Promise.race([
        waitUntil('the attach steps', () => out.includes('# 6. remove it'), 300_000 * SLOW, 500),
        exited,
      ]);
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
      const after = (heading: string) => lines[lines.indexOf(heading) + 1];
      expect(after('# 3. the cluster peers with it: a BGPPeer (every node, eBGP)')).toMatch(
        /^kubectl --kubeconfig \S+ apply -f - <<'EOF'$/,
      );
      sh(script.slice(0, script.indexOf('# 4. start it')));
      const start = after('# 4. start it (foreground; another terminal for the next steps)');
      router = spawn(start.split(' ')[0], start.split(' ').slice(1), { stdio: 'ignore' });
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
      await stopProcess(router);
      router = undefined;
      sh(after('# 6. remove it: stop the router (Ctrl-C), then'));
      lab.kill('SIGTERM');
      expect(await new Promise((r) => lab!.once('exit', (c) => r(c)))).toBe(143);
    },
    400_000 * SLOW,
  );
});
