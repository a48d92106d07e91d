// nftables set elements over netlink on the real kernel, in a namespace this test makes:
// what a batch commits is what `nft list` shows (keys in the kernel's layout: ifname,
// addresses, address . protocol . port, verdicts), and a refused batch commits nothing
// and names the request with the kernel's errno.
import { Testbed, describeIf, type Netns } from '@tortie/testbed';
import { NfTables, elementBatch, nftKey, nftablesBatchAcked, type NftElementOp } from '../src';

describe('nftables element batches (pure)', () => {
  it('frames BEGIN, one message per run of ops on a set, END', () => {
    const op = (o: 'add' | 'del', set: string, ip: string): NftElementOp => ({
      op: o,
      set,
      key: nftKey.addr(ip),
      text: ip,
    });
    const { reqs, names } = elementBatch('inet', 't', [
      op('del', 'a', '10.0.0.1'),
      op('del', 'a', '10.0.0.2'),
      op('add', 'a', '10.0.0.3'),
      op('add', 'b', 'fd00::1'),
    ]);
    expect(reqs.map((r) => r.type)).toEqual([
      16,
      (10 << 8) | 14,
      (10 << 8) | 12,
      (10 << 8) | 12,
      17,
    ]);
    expect(names[1]).toBe('delete element inet t a { 10.0.0.1, 10.0.0.2 }');
    expect(names[3]).toBe('add element inet t b { fd00::1 }');
  });

  it('lays keys out as the kernel does', () => {
    expect(nftKey.ifname('cali1').toString('hex')).toBe('63616c69310000000000000000000000');
    expect(nftKey.addrProtoPort('10.0.0.1', 6, 80).toString('hex')).toBe(
      '0a000001060000000050' + '0000',
    );
    expect(() => nftKey.ifname('a-name-that-is-too-long')).toThrow(/not an interface name/);
    expect(() => nftKey.addrProtoPort('10.0.0.1', 6, 70000)).toThrow(/port 70000/);
  });

  it('knows which kernels acknowledge a batch', () => {
    expect(nftablesBatchAcked('6.1.0-31-amd64')).toBe(false);
    expect(nftablesBatchAcked('6.10.3')).toBe(true);
    expect(nftablesBatchAcked('7.0.1')).toBe(true);
  });
});

describeIf(['root', 'netns', 'nft'], 'nftables elements over netlink', () => {
  const tb = new Testbed();
  let ns: Netns;
  let nl: NfTables;

  beforeAll(async () => {
    if (!nftablesBatchAcked())
      throw new Error('this kernel does not acknowledge nftables batches (needs 6.10+)');
    ns = await tb.netns('nfnl');
    await ns.exec(['nft', '-f', '-'], {
      input: [
        'add table inet t',
        'add chain inet t c',
        'add map inet t m { type ifname : verdict; }',
        'add map inet t d { type ifname : mark; }',
        'add set inet t s4 { type ipv4_addr; }',
        'add set inet t s6 { type ipv6_addr; }',
        'add set inet t np { type ipv4_addr . inet_proto . inet_service; }',
        '',
      ].join('\n'),
    });
    nl = NfTables.open(ns.name);
  });
  afterAll(async () => {
    nl?.close();
    await tb.cleanup();
  });

  const elements = async (set: string) => {
    const kind = set === 'm' || set === 'd' ? 'map' : 'set';
    const out = JSON.parse(await ns.exec(['nft', '-j', 'list', kind, 'inet', 't', set])) as {
      nftables: Array<{ set?: { elem?: unknown[] }; map?: { elem?: unknown[] } }>;
    };
    const s = out.nftables.find((x) => x.set ?? x.map)!;
    return JSON.stringify((s.set ?? s.map)!.elem ?? []);
  };

  it('commits elements of sets and verdict maps in one batch', async () => {
    nl.commitElements('inet', 't', [
      { op: 'add', set: 's4', key: nftKey.addr('10.1.2.3'), text: '10.1.2.3' },
      { op: 'add', set: 's6', key: nftKey.addr('fd00::7'), text: 'fd00::7' },
      {
        op: 'add',
        set: 'np',
        key: nftKey.addrProtoPort('10.1.2.3', 17, 53),
        text: '10.1.2.3 . udp . 53',
      },
      {
        op: 'add',
        set: 'm',
        key: nftKey.ifname('cali0'),
        verdict: { code: 'jump', chain: 'c' },
        text: '"cali0" : jump c',
      },
    ]);
    expect(await elements('s4')).toBe('["10.1.2.3"]');
    expect(await elements('s6')).toBe('["fd00::7"]');
    expect(await elements('np')).toBe('[{"concat":["10.1.2.3","udp",53]}]');
    expect(await elements('m')).toBe('[["cali0",{"jump":{"target":"c"}}]]');
    nl.commitElements('inet', 't', [
      { op: 'del', set: 'm', key: nftKey.ifname('cali0'), text: '"cali0"' },
    ]);
    expect(await elements('m')).toBe('[]');
  });

  it('commits data-map elements (a value, not a verdict: no jump for the kernel to validate)', async () => {
    const mark = Buffer.alloc(4);
    mark.writeUInt32LE(0x2a); // a mark, in the host's order (little-endian here)
    nl.commitElements('inet', 't', [
      { op: 'add', set: 'd', key: nftKey.ifname('cali7'), data: mark, text: '"cali7" : 0x2a' },
    ]);
    expect(await elements('d')).toBe('[["cali7",42]]');
    nl.commitElements('inet', 't', [
      { op: 'del', set: 'd', key: nftKey.ifname('cali7'), text: '"cali7"' },
    ]);
    expect(await elements('d')).toBe('[]');
  });

  it('a refused batch commits nothing and names the request', async () => {
    let err: Error | undefined;
    try {
      nl.commitElements('inet', 't', [
        { op: 'add', set: 's4', key: nftKey.addr('10.9.9.9'), text: '10.9.9.9' },
        {
          op: 'add',
          set: 'm',
          key: nftKey.ifname('cali1'),
          verdict: { code: 'jump', chain: 'nosuchchain' },
          text: '"cali1" : jump nosuchchain',
        },
      ]);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toMatch(/add element inet t m \{ "cali1" : jump nosuchchain \}: ENOENT/);
    expect(await elements('s4')).toBe('["10.1.2.3"]'); // 10.9.9.9 not committed
    // a delete of what is not there
    expect(() =>
      nl.commitElements('inet', 't', [
        { op: 'del', set: 's6', key: nftKey.addr('fd00::99'), text: 'fd00::99' },
      ]),
    ).toThrow(/delete element inet t s6 \{ fd00::99 \}: ENOENT/);
    // the socket still works afterwards
    nl.commitElements('inet', 't', [
      { op: 'del', set: 's4', key: nftKey.addr('10.1.2.3'), text: '10.1.2.3' },
    ]);
    expect(await elements('s4')).toBe('[]');
  });
});
