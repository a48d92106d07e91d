// Switching the ACL dataplane between iptables and nftables on a real kernel, as the agent
// does it (linuxAclBackend: nftablesMode from FelixConfiguration, then the other
// dataplane's leftovers removed): one "agent" programs a node namespace in one mode, a
// second one (a restart with the other nftablesMode) takes over with a changed policy.
// Nothing of the first may remain (tortie's iptables chains, hooks and IP sets, or the
// `inet tortie` table), and the new policy must hold: a stale dataplane would still drop
// what the new policy allows (a packet has to pass both), so the probes fail without the
// cleanup. Also Auto, following a kube-proxy nftables table, and a restart onto the other
// iptables backend (legacy <-> iptables-nft).
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Testbed, describeIf, type Netns } from '@tortie/testbed';
import winston from 'winston';
import Transport from 'winston-transport';
import { linuxAclBackend, type AclBackend } from '../src/dataplane/acl-backend';
import { nftProblem } from '../src/dataplane/nft-acl';
import type { DataplaneUpdate, WorkloadEndpoint } from '../src/types';
import { nodeNetns, podNetns } from './pod-netns';

const LISTEN = `
let n = 0;
for (const p of [8080, 9090]) require('node:net').createServer((c) => c.on('error', () => {}).end('hi')).listen(p, '::', () => ++n === 2 && process.stdout.write('ready\\n'));
`;
// Connects to every [ip, port] of argv[1] at once; prints JSON true/false per target.
const CONNECT = `
const one = ([ip, port]) => new Promise((done) => {
  const s = require('node:net').connect(port, ip, () => { s.destroy(); done(true); });
  s.on('error', () => done(false));
  setTimeout(() => { s.destroy(); done(false); }, 800);
});
Promise.all(JSON.parse(process.argv[1]).map(one)).then((r) => process.stdout.write(JSON.stringify(r), () => process.exit(0)));
`;

const POD = { a: '10.66.0.1', b: '10.66.0.2' } as const;
const POD6 = { a: 'fd00:66::1', b: 'fd00:66::2' } as const;
const iface = (p: 'a' | 'b') => `calimode0000${p}`;
const POOL = {
  cidr: '10.66.0.0/16',
  ipip: 'Never' as const,
  vxlan: 'Never' as const,
  natOutgoing: true,
  disableBGPExport: false,
};
const wep = (p: 'a' | 'b', tiers: WorkloadEndpoint['tiers']): WorkloadEndpoint => ({
  id: `ns/${p}/eth0`,
  ifaceName: iface(p),
  ipv4Nets: [`${POD[p]}/32`],
  ipv6Nets: [`${POD6[p]}/128`],
  tiers,
  profileIds: ['kns.ns'],
});

/** b admits a on `port` only (TCP, a by its IP set): the policy each agent is given. */
function cluster(mode: string, port: number): DataplaneUpdate[] {
  return [
    { type: 'config-update', config: { nftablesMode: mode } },
    {
      type: 'ipset-update',
      id: 's:app-a',
      setType: 'hash:net',
      ipVersion: 4,
      members: [`${POD.a}/32`, `${POD6.a}/128`],
    },
    {
      type: 'profile-update',
      id: 'kns.ns',
      inbound: [{ action: 'allow', ruleId: 'pi' }],
      outbound: [{ action: 'allow', ruleId: 'po' }],
    },
    {
      type: 'policy-update',
      id: 'ns/b-ingress',
      inbound: [
        {
          action: 'allow',
          protocol: 6,
          srcIpSetIds: ['s:app-a'],
          dstPorts: [{ first: port, last: port }],
          ruleId: 'b1',
        },
      ],
      outbound: [],
    },
    { type: 'pool-update', pool: POOL },
    { type: 'pool-update', pool: { ...POOL, cidr: 'fd00:66::/64' } },
    { type: 'workload-update', endpoint: wep('a', []) },
    {
      type: 'workload-update',
      endpoint: wep('b', [
        {
          name: 'default',
          defaultAction: 'deny',
          ingressPolicies: ['ns/b-ingress'],
          egressPolicies: [],
        },
      ]),
    },
    { type: 'in-sync' },
  ];
}

for (const iptablesBackend of ['legacy', 'nft'] as const)
  describeIf(
    ['root', 'netns', 'iptables', 'ipset', 'nft'],
    `ACL dataplane switching modes (iptables-${iptablesBackend} <-> native nftables)`,
    () => {
      const tb = new Testbed();
      let node: Netns;
      let a: Netns;
      const agents: AclBackend[] = [];

      /** What a -> b on 8080 and 9090 (IPv4, IPv6) gives. */
      const probe = async () => {
        const targets = [POD.b, POD6.b].flatMap((ip) => [
          [ip, 8080],
          [ip, 9090],
        ]);
        const r = JSON.parse(
          await a.exec([process.execPath, '-e', CONNECT, JSON.stringify(targets)]),
        ) as boolean[];
        return { v4: { 8080: r[0], 9090: r[1] }, v6: { 8080: r[2], 9090: r[3] } };
      };
      const only = (port: 8080 | 9090) => {
        const one = { 8080: port === 8080, 9090: port === 9090 };
        return { v4: one, v6: one };
      };
      /** Lines of tortie's in iptables (both backends, both families) and ipset. */
      const iptablesLeft = async () => {
        const out: string[] = [];
        for (const bin of ['iptables', 'ip6tables'])
          for (const b of ['legacy', 'nft']) {
            const save = await node.exec([`${bin}-${b}-save`]).catch(() => '');
            out.push(
              ...save
                .split('\n')
                .filter((l) => l.includes('tortie'))
                .map((l) => `${bin}-${b}: ${l}`),
            );
          }
        const sets = await node.exec(['ipset', 'list', '-n']);
        out.push(
          ...sets
            .split('\n')
            .filter((s) => s.startsWith('tortie'))
            .map((s) => `ipset ${s}`),
        );
        return out;
      };
      const nftTables = async () => (await node.exec(['nft', 'list', 'tables'])).trim().split('\n');
      /** A new agent's ACL dataplane (as a restart with other settings makes it). */
      const start = async (
        updates: DataplaneUpdate[],
        backend = iptablesBackend,
        more: { prefix?: string[]; logger?: winston.Logger } = {},
      ) => {
        const acl = linuxAclBackend({ netns: node.name, iptablesBackend: backend, ...more });
        agents.push(acl);
        for (const u of updates) acl.send(u);
        await acl.apply();
        return acl;
      };

      beforeAll(async () => {
        node = await nodeNetns(tb, `modenode${iptablesBackend}`);
        for (const p of ['a', 'b'] as const) {
          const ns = await podNetns(tb, node, `modepod${p}`, {
            iface: iface(p),
            v4: POD[p],
            v6: POD6[p],
          });
          if (p === 'a') a = ns;
          const srv = ns.spawn([process.execPath, '-e', LISTEN]);
          await new Promise((r) => srv.stdout!.once('data', r));
        }
      }, 60000);
      afterAll(async () => {
        for (const acl of agents) acl.close();
        await tb.cleanup();
      }, 30000);

      test('iptables first: b admits a on 8080 only', async () => {
        const acl = await start(cluster('Disabled', 8080));
        expect(acl.nft).toBe(false);
        expect(await probe()).toEqual(only(8080));
        const left = await iptablesLeft();
        expect(left.some((l) => l.startsWith(`iptables-${iptablesBackend}: -A FORWARD`))).toBe(
          true,
        );
        expect(left).toContain('ipset tortie40s:s:app-a');
        expect(await nftTables()).not.toContain('table inet tortie');
      }, 30000);

      test('then nftables (Enabled), b admits a on 9090 only: no tortie chain, hook or IP set is left in iptables, and 9090 passes', async () => {
        const acl = await start(cluster('Enabled', 9090));
        expect(acl.nft).toBe(true);
        expect(await probe()).toEqual(only(9090));
        expect(await iptablesLeft()).toEqual([]);
        expect(await nftTables()).toContain('table inet tortie');
        expect(await node.exec(['nft', 'list', 'table', 'inet', 'tortie'])).toContain(iface('b'));
      }, 30000);

      test('then iptables again (Disabled), b admits a on 8080 only: the inet tortie table is gone, and 8080 passes', async () => {
        const acl = await start(cluster('Disabled', 8080));
        expect(acl.nft).toBe(false);
        expect(await probe()).toEqual(only(8080));
        expect(await nftTables()).not.toContain('table inet tortie');
        expect((await iptablesLeft()).length).toBeGreaterThan(0);
      }, 30000);

      test(`an agent on the other iptables backend, then one on iptables-${iptablesBackend}: the other backend's tortie chains and hooks go, the IP sets stay, and 8080 passes`, async () => {
        const otherBackend = iptablesBackend === 'nft' ? 'legacy' : 'nft';
        await start(cluster('Disabled', 9090), otherBackend);
        expect(await probe()).toEqual(only(9090));
        const acl = await start(cluster('Disabled', 8080));
        expect(acl.nft).toBe(false);
        // a stale 9090-only policy in the other backend would drop 8080
        expect(await probe()).toEqual(only(8080));
        const left = await iptablesLeft();
        expect(left.filter((l) => l.includes(`-${otherBackend}: `))).toEqual([]);
        expect(left.some((l) => l.startsWith(`iptables-${iptablesBackend}: -A FORWARD`))).toBe(
          true,
        );
        expect(left).toContain('ipset tortie40s:s:app-a');
      }, 30000);

      test('Auto follows kube-proxy: nftables once its ip kube-proxy table has chains (and the iptables rules go), iptables after it is gone', async () => {
        await node.exec(['nft', 'add table ip kube-proxy; add chain ip kube-proxy services']);
        try {
          const acl = await start(cluster('Auto', 9090));
          expect(acl.nft).toBe(true);
          expect(acl.reason).toBe(
            'nftablesMode is Auto and kube-proxy runs in nftables mode (table ip kube-proxy has 1 chains)',
          );
          expect(await probe()).toEqual(only(9090));
          expect(await iptablesLeft()).toEqual([]);
        } finally {
          await node.exec(['nft', 'delete', 'table', 'ip', 'kube-proxy']);
        }
        const acl = await start(cluster('Auto', 8080));
        expect(acl.nft).toBe(false);
        expect(acl.reason).toBe(
          'nftablesMode is Auto and kube-proxy is not in nftables mode (no ip or ip6 kube-proxy table)',
        );
        expect(await probe()).toEqual(only(8080));
        expect(await nftTables()).not.toContain('table inet tortie');
      }, 30000);

      // The agent's own startup check, with the real binaries: a PATH without nft, an nft
      // that reports an old version (a wrapper around the real one), and a kernel that
      // refuses nf_tables to the caller (no CAP_NET_ADMIN in a user namespace).
      if (iptablesBackend === 'legacy')
        test('Enabled, but nft missing or too old: named at startup, iptables takes over (b admits a on 9090 only); nft refused by the kernel: named', async () => {
          const dir = mkdtempSync(join(tmpdir(), 'tt-nftbin-'));
          try {
            // /usr/sbin without nft (nft is nowhere else on this PATH)
            const bins = (name: string, nft?: string) => {
              const d = join(dir, name);
              mkdirSync(d);
              for (const f of readdirSync('/usr/sbin'))
                if (f !== 'nft') symlinkSync(join('/usr/sbin', f), join(d, f));
              if (nft) {
                writeFileSync(join(d, 'nft'), nft);
                chmodSync(join(d, 'nft'), 0o755);
              }
              return ['ip', 'netns', 'exec', node.name, 'env', `PATH=${d}:/usr/bin`];
            };
            const cases = [
              { prefix: bins('missing'), named: /the nft binary is missing or failed/ },
              {
                prefix: bins(
                  'old',
                  '#!/bin/sh\n[ "$1" = --version ] && { echo "nftables v0.9.8 (E.D.S.)"; exit 0; }\nexec /usr/sbin/nft "$@"\n',
                ),
                named: /nft 0\.9\.8 is too old: the nftables dataplane needs 1\.0\.0 or newer$/,
              },
            ];
            for (const c of cases) {
              const lines: Array<Record<string, unknown>> = [];
              class Keep extends Transport {
                override log(info: Record<string, unknown>, next: () => void) {
                  lines.push(info);
                  next();
                }
              }
              const logger = winston.createLogger({ transports: [new Keep()] });
              // a 9090-only policy: the iptables dataplane must be the one enforcing it
              const acl = await start(cluster('Enabled', 9090), 'legacy', {
                prefix: c.prefix,
                logger,
              });
              expect(acl.nft).toBe(false);
              expect(acl.fallbackReason).toMatch(c.named);
              expect(lines).toContainEqual(
                expect.objectContaining({
                  level: 'error',
                  message: 'nftables wanted, but using iptables',
                  reason: expect.stringMatching(c.named),
                }),
              );
              expect(await probe()).toEqual(only(9090));
              expect(
                (await iptablesLeft()).some((l) => l.startsWith('iptables-legacy: -A FORWARD')),
              ).toBe(true);
            }
            // nft itself is fine, but this caller may not use nf_tables here
            expect(
              await nftProblem({ prefix: ['ip', 'netns', 'exec', node.name, 'unshare', '--user'] }),
            ).toMatch(
              /^nft 1\.\d+\.\d+ cannot use the kernel's nf_tables \(nft list tables: exit 1, .*Operation not permitted/,
            );
            expect(await nftProblem({ netns: node.name })).toBeUndefined();
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        }, 60000);
    },
  );
