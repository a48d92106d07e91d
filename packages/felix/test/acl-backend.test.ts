// Choosing the ACL dataplane from FelixConfiguration nftablesMode, and the nft check at
// startup (missing or too old: named, iptables taken); Auto following kube-proxy; the other
// dataplane's leftovers removed after the first write. Fakes only.
import winston from 'winston';
import Transport from 'winston-transport';
import { AclBackend, type AclLike } from '../src/dataplane/acl-backend';
import { nftProblem, parseNftVersion } from '../src/dataplane/nft-acl';
import type { DataplaneUpdate } from '../src/types';

function fake(name: string, log: string[]): AclLike {
  return {
    name: 'acl',
    send: (u) => log.push(`${name} ${u.type}`),
    apply: async () => void log.push(`${name} apply`),
    resync: async () => undefined,
    status: () => ({
      families: [],
      rules: {},
      chainsWritten: 0,
      chainsDeleted: 0,
      ipsetLines: 0,
      rejected: [],
    }),
  };
}

const config = (nftablesMode?: string): DataplaneUpdate => ({
  type: 'config-update',
  config: nftablesMode ? { nftablesMode } : {},
});
const hep: DataplaneUpdate = {
  type: 'host-endpoint-update',
  endpoint: {
    id: 'node/eth0',
    ifaceName: 'eth0',
    expectedIps: [],
    tiers: [],
    untrackedTiers: [],
    preDnatTiers: [],
    forwardTiers: [],
    profileIds: [],
  },
};

async function run(
  updates: DataplaneUpdate[],
  problem?: string,
  more: { kubeProxy?: boolean | Error; removeFails?: number } = {},
) {
  const log: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  class Keep extends Transport {
    override log(info: Record<string, unknown>, next: () => void) {
      lines.push(info);
      next();
    }
  }
  let fails = more.removeFails ?? 0;
  const remove = (what: string) => async () => {
    log.push(`remove ${what}`);
    if (fails-- > 0) throw new Error('xtables lock');
    return [`${what}: 3 chains`];
  };
  const b = new AclBackend({
    iptables: () => fake('iptables', log),
    nftables: () => fake('nftables', log),
    nftProblem: async () => problem,
    kubeProxyNftables: async () => {
      const k = more.kubeProxy ?? false;
      if (k instanceof Error) throw k;
      return {
        nftables: k,
        detail: k ? 'table ip kube-proxy has 9 chains' : 'no ip or ip6 kube-proxy table',
      };
    },
    removeIptables: remove('iptables'),
    removeNftables: remove('nftables'),
    logger: winston.createLogger({ transports: [new Keep()] }),
  });
  for (const u of updates) b.send(u);
  await b.apply();
  return { log, reason: b.fallbackReason, b, lines };
}

test('nothing is chosen before in-sync; then every held update goes to the chosen one', async () => {
  const { log } = await run([config('Enabled')]);
  expect(log).toEqual([]);
  const r = await run([config('Enabled'), { type: 'in-sync' }]);
  expect(r.log).toEqual([
    'nftables config-update',
    'nftables in-sync',
    'nftables apply',
    'remove iptables',
  ]);
});

test('Disabled, and Auto (also unset: the default) without kube-proxy in nftables mode, give iptables; the mode is read in any case', async () => {
  for (const m of ['Disabled', 'Auto', undefined])
    expect((await run([config(m), { type: 'in-sync' }])).log[0]).toMatch(/^iptables/);
  expect((await run([config('enabled'), { type: 'in-sync' }])).log[0]).toMatch(/^nftables/);
});

test('Auto follows kube-proxy, and the log line names the reason', async () => {
  for (const m of ['Auto', undefined]) {
    const r = await run([config(m), { type: 'in-sync' }], undefined, { kubeProxy: true });
    expect(r.log[0]).toMatch(/^nftables/);
    expect(r.lines).toContainEqual(
      expect.objectContaining({
        message: 'ACL dataplane chosen',
        dataplane: 'nftables',
        nftablesMode: 'Auto',
        reason:
          'nftablesMode is Auto and kube-proxy runs in nftables mode (table ip kube-proxy has 9 chains)',
      }),
    );
  }
  const off = await run([config('Auto'), { type: 'in-sync' }]);
  expect(off.lines).toContainEqual(
    expect.objectContaining({
      message: 'ACL dataplane chosen',
      dataplane: 'iptables',
      reason:
        'nftablesMode is Auto and kube-proxy is not in nftables mode (no ip or ip6 kube-proxy table)',
    }),
  );
  // Enabled does not look at kube-proxy; Disabled ignores an nftables kube-proxy
  expect(
    (await run([config('Disabled'), { type: 'in-sync' }], undefined, { kubeProxy: true })).log[0],
  ).toMatch(/^iptables/);
  const err = await run([config('Auto'), { type: 'in-sync' }], undefined, {
    kubeProxy: new Error('nft: Operation not permitted'),
  });
  expect(err.log[0]).toMatch(/^iptables/);
  expect(err.b.reason).toContain(
    "kube-proxy's mode could not be read (nft: Operation not permitted)",
  );
});

test('the other dataplane is removed after the first write, retried until it works, and again at resync', async () => {
  const r = await run([config('Disabled'), { type: 'in-sync' }], undefined, { removeFails: 1 });
  expect(r.log.slice(-2)).toEqual(['iptables apply', 'remove nftables']);
  expect(r.lines).toContainEqual(
    expect.objectContaining({
      message: 'cannot remove what the nftables ACL dataplane left; retrying',
      error: 'xtables lock',
    }),
  );
  await r.b.apply();
  expect(r.log.slice(-2)).toEqual(['iptables apply', 'remove nftables']);
  expect(r.lines).toContainEqual(
    expect.objectContaining({
      message: 'removed what the nftables ACL dataplane left',
      removed: ['nftables: 3 chains'],
    }),
  );
  await r.b.apply(); // done: not every apply
  expect(r.log.slice(-1)).toEqual(['iptables apply']);
  await r.b.resync();
  expect(r.log.slice(-1)).toEqual(['remove nftables']);
});

test('Enabled without a usable nft: iptables, and the reason says why', async () => {
  const r = await run([config('Enabled'), { type: 'in-sync' }], 'nft 0.9.1 is too old');
  expect(r.log[0]).toMatch(/^iptables/);
  expect(r.reason).toBe('nft 0.9.1 is too old');
});

test('Enabled with a host endpoint: nftables, which programs host endpoints too (no fallback)', async () => {
  const r = await run([config('Enabled'), hep, { type: 'in-sync' }]);
  expect(r.log[0]).toMatch(/^nftables/);
  expect(r.reason).toBeUndefined();
});

test('nft versions: missing, too old, unreadable, fine', async () => {
  expect(parseNftVersion('nftables v1.0.6 (Lester Gooch #5)')).toEqual([1, 0, 6]);
  const exec = (r: { code: number; stdout?: string; stderr?: string }) => async () => ({
    stdout: '',
    stderr: '',
    ...r,
  });
  expect(await nftProblem({}, exec({ code: 0, stdout: 'nftables v1.0.6 (Lester Gooch #5)' }))).toBe(
    undefined,
  );
  expect(
    await nftProblem({}, exec({ code: 0, stdout: 'nftables v0.9.1 (Headless Horseman)' })),
  ).toBe('nft 0.9.1 is too old: the nftables dataplane needs 1.0.0 or newer');
  expect(await nftProblem({}, exec({ code: 127, stderr: 'nft: not found' }))).toContain(
    'the nft binary is missing or failed',
  );
  expect(await nftProblem({}, exec({ code: 0, stdout: 'hello' }))).toContain('printed no version');
  // a good version, but the kernel refuses nf_tables (no CAP_NET_ADMIN, no nf_tables)
  const calls: string[][] = [];
  const refused = async (argv: string[]) => {
    calls.push(argv);
    return argv.includes('--version')
      ? { code: 0, stdout: 'nftables v1.0.6 (Lester Gooch #5)', stderr: '' }
      : { code: 1, stdout: '', stderr: 'Error: Operation not permitted' };
  };
  expect(await nftProblem({ netns: 'n1' }, refused)).toBe(
    "nft 1.0.6 cannot use the kernel's nf_tables (nft list tables: exit 1, Error: Operation not permitted)",
  );
  expect(calls.at(-1)).toEqual(['ip', 'netns', 'exec', 'n1', 'nft', 'list', 'tables']);
  expect(
    await nftProblem({}, async () => {
      throw new Error('spawn nft ENOENT');
    }),
  ).toContain('spawn nft ENOENT');
});
