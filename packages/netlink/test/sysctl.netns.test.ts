// Sysctls written without a process, in namespaces this test makes: the values land in
// the namespace asked for (read back with `sysctl` run inside it) and nowhere else, and a
// failure names the sysctl, the value, the namespace and the errno.
import { Testbed, describeIf, type Netns } from '@tortie/testbed';
import { Rtnl, SysctlError, sysctlName, writeSysctls } from '../src';

describeIf(['root', 'netns'], 'sysctls without a process', () => {
  const tb = new Testbed();
  let a: Netns;
  let b: Netns;
  const read = async (x: Netns, name: string) => (await x.exec(['sysctl', '-n', name])).trim();

  beforeAll(async () => {
    a = await tb.netns('sca');
    b = await tb.netns('scb');
    for (const x of [a, b]) await x.exec(['ip', 'link', 'add', 'calitest0', 'type', 'bridge']);
  });
  afterAll(() => tb.cleanup());

  test('writes land in the namespace asked for, and only there', async () => {
    const conf = '/proc/sys/net/ipv4/conf/calitest0';
    expect(await read(a, 'net.ipv4.conf.calitest0.proxy_arp')).toBe('0');
    const errs = writeSysctls(a.name, [
      [`${conf}/proxy_arp`, '1'],
      ['/proc/sys/net/ipv4/neigh/calitest0/proxy_delay', '0'],
      [`${conf}/rp_filter`, '1'],
    ]);
    expect(errs).toEqual([undefined, undefined, undefined]);
    expect(await read(a, 'net.ipv4.conf.calitest0.proxy_arp')).toBe('1');
    expect(await read(a, 'net.ipv4.neigh.calitest0.proxy_delay')).toBe('0');
    expect(await read(a, 'net.ipv4.conf.calitest0.rp_filter')).toBe('1');
    // the other namespace's interface of the same name is untouched
    expect(await read(b, 'net.ipv4.conf.calitest0.proxy_arp')).toBe('0');
    // a socket's namespace is where its sysctls go
    const nl = Rtnl.open(b.name);
    try {
      expect(writeSysctls(nl.netns, [[`${conf}/proxy_arp`, '1']])).toEqual([undefined]);
    } finally {
      nl.close();
    }
    expect(await read(b, 'net.ipv4.conf.calitest0.proxy_arp')).toBe('1');
  });

  test('a missing interface or a bad value is named; the other entries are written', async () => {
    const errs = writeSysctls(a.name, [
      ['/proc/sys/net/ipv4/conf/calinope0/forwarding', '1'],
      ['/proc/sys/net/ipv4/conf/calitest0/forwarding', '1'],
      ['/proc/sys/net/ipv4/conf/calitest0/rp_filter', 'seven'],
    ]);
    expect(errs[0]).toBeInstanceOf(SysctlError);
    expect(errs[0]!.message).toBe(
      `sysctl net.ipv4.conf.calinope0.forwarding=1 in /var/run/netns/${a.name}: ENOENT (no such file or directory)`,
    );
    expect(errs[1]).toBeUndefined();
    expect(errs[2]!.message).toMatch(
      /^sysctl net\.ipv4\.conf\.calitest0\.rp_filter=seven in .*: EINVAL/,
    );
    expect(await read(a, 'net.ipv4.conf.calitest0.forwarding')).toBe('1');
  });

  test('a path outside /proc/sys and a namespace that does not exist are refused by name', () => {
    expect(() => writeSysctls(a.name, [['/etc/hostname', 'x']])).toThrow(
      'sysctl path must be under /proc/sys/: "/etc/hostname"',
    );
    expect(() => writeSysctls(a.name, [['/proc/sys/net/../kernel/hostname', 'x']])).toThrow(
      /must be under \/proc\/sys/,
    );
    expect(() =>
      writeSysctls('tt-no-such-ns-sysctl', [['/proc/sys/net/ipv4/ip_forward', '1']]),
    ).toThrow('sysctls: cannot open network namespace /var/run/netns/tt-no-such-ns-sysctl');
  });

  test('names are written as sysctl(8) writes them (a dot in an interface name is a slash)', () => {
    expect(sysctlName('/proc/sys/net/ipv4/conf/eth0.100/rp_filter')).toBe(
      'net.ipv4.conf.eth0/100.rp_filter',
    );
  });
});
