// `npm run lab -- --tor frr --keep --attach gobgp --ui` as an operator runs it: the lab's ToR is
// FRR (bgpd with zebra) and learns every node's block, with routes in its kernel; the
// printed vtysh command is the one that answers; the web page's state shows its sessions; then the printed attach steps, typed as
// they are, put a GoBGP router on the fabric that every node peers with through the
// BGPPeer, and Ctrl-C (SIGTERM) tears the whole lab down.
import { spawn } from 'node:child_process';
import { SLOW, describeIf, sessionMembers, stopProcess, waitUntil } from '@tortie/testbed';
import { LabRun, lineAfter, sh } from './lab-run';

const NEEDS = ['root', 'netns', 'etcd', 'frr', 'gobgp', 'iptables', 'ipset', 'nft'] as const;

describeIf([...NEEDS], 'npm run lab -- --tor frr --keep --attach gobgp --ui', () => {
  let lab: LabRun | undefined;
  afterAll(() => lab?.cleanup());

  test(
    'the FRR ToR learns every block, a GoBGP router attaches as printed, SIGTERM leaves nothing',
    async () => {
      lab = new LabRun([
        '--nodes',
        '2',
        '--tor',
        'frr',
        '--keep',
        '--attach',
        'gobgp',
        '--ui',
        '--ui-port',
        '0',
      ]);
      // the lab up with its attach steps
      await lab.waitFor('# 6. remove it', 300_000 * SLOW);
      const out = lab.out;
      expect(out).toContain('ToR: FRR AS 65001 at 10.99.0.1');

      // each node's pods, as the lab printed them: "web1  10.244.29.1  on node1"
      const podOf = new Map<string, string>();
      for (const m of out.matchAll(/^ {2}\S+\s+(10\.244\.\d+\.\d+)\s+on (node\d)$/gm))
        podOf.set(m[2], m[1]);
      expect([...podOf.keys()].sort()).toEqual(['node1', 'node2']);
      const nodeIp = (n: string) => `10.99.0.${10 + Number(n.slice(4))}`;
      const blockOf = (ip: string) =>
        new RegExp(`^${ip.split('.').slice(0, 3).join('\\.')}\\.\\d+/26$`);

      // the vtysh command the lab printed, asked for JSON
      const vtysh = /^ {2}(ip netns exec \S+ vtysh --vty_socket \S+ -c) 'show bgp summary'/m.exec(
        out,
      );
      expect(vtysh).not.toBeNull();
      const table = JSON.parse(sh(`${vtysh![1]} 'show bgp ipv4 unicast json'`)) as {
        routes: Record<string, Array<{ nexthops: Array<{ ip: string }> }>>;
      };
      const torNs = vtysh![1].split(' ')[3];
      const kernel = sh(`ip -n ${torNs} route`);
      for (const [node, ip] of podOf) {
        const prefix = Object.keys(table.routes).find((p) => blockOf(ip).test(p));
        expect(prefix).toBeDefined();
        const hops = table.routes[prefix!].flatMap((p) => p.nexthops.map((h) => h.ip));
        expect(hops).toContain(nodeIp(node));
        // zebra installed it: the ToR forwards to the block via its node
        expect(kernel).toMatch(
          new RegExp(`${prefix!.replace(/\./g, '\\.')} .*via ${nodeIp(node)} `),
        );
      }

      // --ui: the page's state, from the URL the lab printed, shows the FRR ToR's sessions
      const url = /^web page \(read-only\): (\S+)$/m.exec(out)![1];
      const { state } = (await (await fetch(`${url}api/state`)).json()) as {
        state: { tor: { kind: string; sessions: Array<{ peer: string; up: boolean }> } };
      };
      expect(state.tor.kind).toBe('frr');
      expect(
        state.tor.sessions
          .filter((s) => s.up)
          .map((s) => s.peer)
          .sort(),
      ).toEqual(['10.99.0.11', '10.99.0.12']);

      // the attach steps, as printed: namespace, config, BGPPeer (steps 1-3), then the
      // router in the foreground (step 4) and its sessions (step 5)
      const script = out.slice(out.indexOf('# gobgp at 10.99.0.100'));
      const steps = script.slice(0, script.indexOf('# 4. start it'));
      sh(steps);
      const start = lineAfter(
        script,
        '# 4. start it (foreground; another terminal for the next steps)',
      );
      expect(start).toMatch(/^ip netns exec tt-extra gobgpd /);
      lab.router = spawn(start.split(' ')[0], start.split(' ').slice(1), { stdio: 'ignore' });
      const query = lineAfter(script, "# 5. its sessions, and the nodes' side");
      await waitUntil(
        'the attached GoBGP has every node established with its block',
        async () => {
          const neighbors = sh(query);
          const rib = sh('ip netns exec tt-extra gobgp -u 127.0.0.1 -p 50051 global rib');
          return (
            ['10.99.0.11', '10.99.0.12'].every((n) =>
              new RegExp(`${n.replace(/\./g, '\\.')}\\s+64512 .*Establ`).test(neighbors),
            ) &&
            [...podOf.values()].every((ip) =>
              rib.includes(`${ip.split('.').slice(0, 3).join('.')}.`),
            )
          );
        },
        60_000 * SLOW,
        500,
      );
      await stopProcess(lab.router);
      lab.router = undefined;
      sh(script.slice(script.indexOf('# 6. remove it')).split('\n')[1]);

      // Ctrl-C: the lab tears down everything it created
      const pid = lab.proc.pid!;
      expect(await lab.interrupt()).toBe(143);
      // a kernel tool it had just started may still be finishing
      await waitUntil(
        'no process of the lab left',
        () => sessionMembers(pid).length === 0,
        5000,
        100,
      );
    },
    400_000 * SLOW,
  );
});
