// `npm run lab` interrupted (SIGINT, SIGTERM) at several points leaves nothing behind: no
// namespace it created, no process it started. The lab runs in its own session, so every
// process it started (etcd, BIRD, agents, relays, controllers, pod servers) carries that
// session id; the namespaces it created are recorded through TORTIE_TESTBED_RECORD. Other
// runs on the machine keep theirs: only this lab's are looked at.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeIf } from '@tortie/testbed';

const CLI = path.resolve(__dirname, '../dist/cli.js');

/** Processes whose session is `sid` (the lab's pid, as it was started detached). */
function sessionMembers(sid: number): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // pid (comm) state ppid pgrp session ...; comm may hold spaces
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[3]) !== sid) continue;
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.push(`${pid} ${cmd.slice(0, 120)}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  created: string[];
  left: { namespaces: string[]; processes: string[] };
}

/** Starts the lab, sends `signal` once `when(output)` holds (or after `afterMs`), waits. */
async function interruptLab(
  signal: NodeJS.Signals,
  when: { text?: RegExp; afterMs?: number },
): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-interrupt-'));
  const recordFile = path.join(dir, 'created');
  try {
    const p = spawn(process.execPath, [CLI, '--nodes', '2'], {
      detached: true, // its own session: what it starts is recognisable by session id
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TORTIE_TESTBED_RECORD: recordFile },
    });
    let out = '';
    let sent = false;
    const send = () => {
      if (sent || p.exitCode !== null) return;
      sent = true;
      out += `\n<<< test: ${signal} >>>\n`;
      p.kill(signal);
    };
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (when.text?.test(out)) send();
    });
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    if (when.afterMs !== undefined) setTimeout(send, when.afterMs);
    const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      p.on('exit', (c, s) => r([c, s])),
    );
    // a kernel tool the lab had just started may still be finishing: give it 3 s
    for (let i = 0; i < 30 && sessionMembers(p.pid!).length; i++)
      await new Promise((r) => setTimeout(r, 100));
    const created = fs.existsSync(recordFile)
      ? fs
          .readFileSync(recordFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(' ')[1])
      : [];
    const namespaces = created.filter((n) => fs.existsSync(`/var/run/netns/${n}`));
    const processes = sessionMembers(p.pid!);
    return { code, signal: sig, out, created, left: { namespaces, processes } };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describeIf(['netns', 'bird', 'etcd', 'iptables', 'ipset', 'nft'], 'lab interrupted', () => {
  const cases: Array<[string, NodeJS.Signals, { text?: RegExp; afterMs?: number }]> = [
    ['SIGINT while etcd and the fabric come up', 'SIGINT', { text: /etcd http/ }],
    ['SIGINT while the ToR and nodes are created', 'SIGINT', { text: /ToR: BIRD/ }],
    ['SIGTERM while pods are being added', 'SIGTERM', { text: /agents ready/ }],
    ['SIGINT during the policy demo', 'SIGINT', { text: /pod pairs reachable/ }],
  ];
  test.each(cases)(
    '%s: nothing it created is left',
    async (_what, signal, when) => {
      const r = await interruptLab(signal, when);
      // if the lab failed or finished before the signal, the case proves nothing
      expect(r.out).toContain(`<<< test: ${signal} >>>`);
      expect(r.out).toContain(`${signal}: tearing down everything this run created`);
      expect(r.created.length).toBeGreaterThan(0);
      expect(r.left).toEqual({ namespaces: [], processes: [] });
      expect([r.code, r.signal]).toEqual([signal === 'SIGINT' ? 130 : 143, null]);
      process.stdout.write(
        `${_what}: ${r.created.length} namespaces created, all removed; exit ${r.code}\n`,
      );
    },
    180_000,
  );
});
