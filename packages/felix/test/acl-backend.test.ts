// Choosing the ACL dataplane from FelixConfiguration nftablesMode, and the nft check at
// startup (missing or too old: named, iptables taken). Fakes only.
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

async function run(updates: DataplaneUpdate[], problem?: string) {
  const log: string[] = [];
  const b = new AclBackend({
    iptables: () => fake('iptables', log),
    nftables: () => fake('nftables', log),
    nftProblem: async () => problem,
  });
  for (const u of updates) b.send(u);
  await b.apply();
  return { log, reason: b.fallbackReason };
}

test('nothing is chosen before in-sync; then every held update goes to the chosen one', async () => {
  const { log } = await run([config('Enabled')]);
  expect(log).toEqual([]);
  const r = await run([config('Enabled'), { type: 'in-sync' }]);
  expect(r.log).toEqual(['nftables config-update', 'nftables in-sync', 'nftables apply']);
});

test('Disabled, Auto and unset give iptables; the mode is read in any case', async () => {
  for (const m of ['Disabled', 'Auto', undefined])
    expect((await run([config(m), { type: 'in-sync' }])).log[0]).toMatch(/^iptables/);
  expect((await run([config('enabled'), { type: 'in-sync' }])).log[0]).toMatch(/^nftables/);
});

test('Enabled without a usable nft: iptables, and the reason says why', async () => {
  const r = await run([config('Enabled'), { type: 'in-sync' }], 'nft 0.9.1 is too old');
  expect(r.log[0]).toMatch(/^iptables/);
  expect(r.reason).toBe('nft 0.9.1 is too old');
});

test('Enabled with a host endpoint: iptables (host endpoints are not programmed on nftables)', async () => {
  const r = await run([config('Enabled'), hep, { type: 'in-sync' }]);
  expect(r.log[0]).toMatch(/^iptables/);
  expect(r.reason).toContain('host endpoint node/eth0');
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
  expect(
    await nftProblem({}, async () => {
      throw new Error('spawn nft ENOENT');
    }),
  ).toContain('spawn nft ENOENT');
});
