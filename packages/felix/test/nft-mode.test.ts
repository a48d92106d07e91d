// nftablesMode resolved as Felix's nftables.Enabled() (Auto follows kube-proxy's nftables
// table), with tortie's fallbacks, and the reason logged; the detection's reading of nft.
import {
  decideNftables,
  detectKubeProxyNftables,
  kubeProxyChains,
} from '../src/dataplane/nft-mode';

const kp = (nftables: boolean, detail = 'x') => ({ nftables, detail });
const ok = (stdout: string) => ({ code: 0, stdout, stderr: '' });
const NO_TABLE = {
  code: 1,
  stdout: '',
  stderr: 'Error: No such file or directory\nlist table ip kube-proxy\n              ^^^^^^^^^^\n',
};

test('Disabled: iptables, whatever kube-proxy does', () => {
  expect(decideNftables('Disabled', { kubeProxy: kp(true) })).toEqual({
    nftables: false,
    reason: 'nftablesMode is Disabled',
  });
});

test('Enabled: nftables, unless nft is unusable', () => {
  expect(decideNftables('Enabled', {})).toEqual({
    nftables: true,
    reason: 'nftablesMode is Enabled',
  });
  expect(decideNftables('Enabled', { nftProblem: 'nft 0.9.1 is too old' })).toEqual({
    nftables: false,
    reason: 'nftablesMode is Enabled, but nft 0.9.1 is too old',
    fallback: 'nft 0.9.1 is too old',
  });
});

test('Auto: nftables exactly when kube-proxy runs in nftables mode', () => {
  expect(
    decideNftables('Auto', { kubeProxy: kp(true, 'table ip kube-proxy has 12 chains') }),
  ).toEqual({
    nftables: true,
    reason:
      'nftablesMode is Auto and kube-proxy runs in nftables mode (table ip kube-proxy has 12 chains)',
  });
  expect(decideNftables('Auto', { kubeProxy: kp(false, 'no ip or ip6 kube-proxy table') })).toEqual(
    {
      nftables: false,
      reason:
        'nftablesMode is Auto and kube-proxy is not in nftables mode (no ip or ip6 kube-proxy table)',
    },
  );
  // following kube-proxy, still subject to tortie's limits
  expect(decideNftables('Auto', { kubeProxy: kp(true), nftProblem: 'no nft' })).toMatchObject({
    nftables: false,
    fallback: 'no nft',
  });
  // a kube-proxy that cannot be read: iptables, and the reason says why
  expect(decideNftables('Auto', { kubeProxy: new Error('nft: permission denied') })).toEqual({
    nftables: false,
    reason:
      "nftablesMode is Auto and kube-proxy's mode could not be read (nft: permission denied): iptables",
  });
});

test('kube-proxy chains: counted; no table is not an error; other failures are', () => {
  expect(
    kubeProxyChains(
      ok('table ip kube-proxy {\n\tchain services {\n\t}\n\tchain filter-forward {\n\t}\n}\n'),
      'ip',
    ),
  ).toBe(2);
  expect(kubeProxyChains(ok('table ip kube-proxy {\n}\n'), 'ip')).toBe(0);
  expect(kubeProxyChains(NO_TABLE, 'ip')).toBeUndefined();
  expect(() =>
    kubeProxyChains({ code: 1, stdout: '', stderr: 'Operation not permitted' }, 'ip6'),
  ).toThrow('nft list table ip6 kube-proxy failed: Operation not permitted');
});

test('detection: one nft list tables; then ip first, then ip6; a table without chains is not nftables mode', async () => {
  const calls: string[] = [];
  const exec =
    (answers: Record<string, ReturnType<typeof ok> | typeof NO_TABLE>) =>
    async (argv: string[]) => {
      calls.push(argv.join(' '));
      return answers[argv[argv.length - 1] === 'tables' ? 'tables' : argv[argv.length - 2]];
    };
  const tables = (...t: string[]) => ok(t.map((x) => `table ${x}\n`).join(''));
  expect(
    await detectKubeProxyNftables({ netns: 'n1' }, exec({ tables: tables('inet tortie') })),
  ).toEqual({ nftables: false, detail: 'no ip or ip6 kube-proxy table' });
  expect(calls).toEqual(['ip netns exec n1 nft list tables']);
  expect(
    await detectKubeProxyNftables(
      {},
      exec({
        tables: tables('ip kube-proxy', 'ip6 kube-proxy'),
        ip: ok('table ip kube-proxy {\n}\n'),
        ip6: ok('\tchain services {\n\t}\n'),
      }),
    ),
  ).toEqual({ nftables: true, detail: 'table ip6 kube-proxy has 1 chains' });
  expect(
    await detectKubeProxyNftables(
      {},
      exec({ tables: tables('ip kube-proxy'), ip: ok('table ip kube-proxy {\n}\n') }),
    ),
  ).toEqual({ nftables: false, detail: 'table ip kube-proxy has no chains' });
  // gone between the two commands: as no table
  expect(
    await detectKubeProxyNftables({}, exec({ tables: tables('ip kube-proxy'), ip: NO_TABLE })),
  ).toEqual({ nftables: false, detail: 'no ip or ip6 kube-proxy table' });
  await expect(
    detectKubeProxyNftables(
      {},
      exec({ tables: { code: 1, stdout: '', stderr: 'Error: Operation not permitted' } }),
    ),
  ).rejects.toThrow('nft list tables failed (exit 1): Error: Operation not permitted');
});
