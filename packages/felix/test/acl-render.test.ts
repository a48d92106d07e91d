// The ACL renderer, pure: each DataplaneRule field -> its exact iptables fragment, the
// mark semantics of each action, and names within the kernel's limits.
import type { DataplaneRule } from '../src/types';
import { allocateMarks } from '../src/dataplane/acl/marks';
import { chainName, ipsetName, lengthLimited, tempIpsetName } from '../src/dataplane/acl/names';
import { portChunks, renderRule } from '../src/dataplane/acl/rule-render';
import { renderNftRule } from '../src/dataplane/nft-acl/rule-render';

const marks = allocateMarks();
const r = (x: Partial<DataplaneRule>): DataplaneRule => ({ action: 'deny', ruleId: 'r', ...x });
const v4 = (x: Partial<DataplaneRule>) => renderRule(r(x), 4, marks).rules;
const v6 = (x: Partial<DataplaneRule>) => renderRule(r(x), 6, marks).rules;

describe('mark bits', () => {
  test('default mask 0xffff0000: accept, pass, two scratch bits', () => {
    expect(marks).toEqual({
      accept: 0x10000,
      pass: 0x20000,
      scratch0: 0x40000,
      scratch1: 0x80000,
      all: 0xf0000,
    });
  });
  test('bits come from the configured mask; too small a mask is named', () => {
    expect(allocateMarks(0xf00).accept).toBe(0x100);
    expect(() => allocateMarks(0x3)).toThrow(/iptablesMarkMask 0x3 has 2 bit/);
  });
});

describe('rule fields -> iptables fragments', () => {
  test.each<[string, Partial<DataplaneRule>, string]>([
    ['protocol by name', { protocol: 6 }, '-p tcp -j DROP'],
    ['protocol by number', { protocol: 47 }, '-p 47 -j DROP'],
    ['notProtocol', { notProtocol: 17 }, '! -p udp -j DROP'],
    ['one source net', { srcNets: ['10.0.0.0/8'] }, '-s 10.0.0.0/8 -j DROP'],
    ['one destination net', { dstNets: ['10.1.0.0/16'] }, '-d 10.1.0.0/16 -j DROP'],
    ['negated source net', { notSrcNets: ['10.0.0.0/8'] }, '! -s 10.0.0.0/8 -j DROP'],
    ['negated destination net', { notDstNets: ['10.0.0.0/8'] }, '! -d 10.0.0.0/8 -j DROP'],
    ['source IP set', { srcIpSetIds: ['s:a'] }, '-m set --match-set tortie40s:s:a src -j DROP'],
    [
      'destination IP set',
      { dstIpSetIds: ['s:a'] },
      '-m set --match-set tortie40s:s:a dst -j DROP',
    ],
    [
      'negated source set',
      { notSrcIpSetIds: ['s:a'] },
      '-m set ! --match-set tortie40s:s:a src -j DROP',
    ],
    [
      'negated destination set',
      { notDstIpSetIds: ['s:a'] },
      '-m set ! --match-set tortie40s:s:a dst -j DROP',
    ],
    [
      'destination ports and a range',
      {
        protocol: 6,
        dstPorts: [
          { first: 80, last: 80 },
          { first: 8000, last: 8080 },
        ],
      },
      '-p tcp -m multiport --dports 80,8000:8080 -j DROP',
    ],
    [
      'source ports',
      { protocol: 17, srcPorts: [{ first: 53, last: 53 }] },
      '-p udp -m multiport --sports 53 -j DROP',
    ],
    [
      'negated destination ports',
      { protocol: 6, notDstPorts: [{ first: 22, last: 22 }] },
      '-p tcp -m multiport ! --dports 22 -j DROP',
    ],
    [
      'negated source ports',
      { protocol: 6, notSrcPorts: [{ first: 1, last: 1023 }] },
      '-p tcp -m multiport ! --sports 1:1023 -j DROP',
    ],
    [
      'named destination port set',
      { protocol: 6, dstNamedPortIpSetIds: ['n:web'] },
      '-p tcp -m set --match-set tortie40s:n:web dst,dst -j DROP',
    ],
    [
      'named source port set',
      { protocol: 6, srcNamedPortIpSetIds: ['n:web'] },
      '-p tcp -m set --match-set tortie40s:n:web src,src -j DROP',
    ],
    ['icmp type', { protocol: 1, icmp: { type: 8 } }, '-p icmp -m icmp --icmp-type 8 -j DROP'],
    [
      'icmp type and code',
      { protocol: 1, icmp: { type: 3, code: 4 } },
      '-p icmp -m icmp --icmp-type 3/4 -j DROP',
    ],
    [
      'negated icmp',
      { protocol: 1, notIcmp: { type: 8 } },
      '-p icmp -m icmp ! --icmp-type 8 -j DROP',
    ],
  ])('%s', (_name, rule, want) => {
    expect(v4(rule)).toEqual([want]);
  });

  test('IPv6: icmpv6 module, v6 sets, v6 nets only', () => {
    expect(v6({ protocol: 58, icmp: { type: 128, code: 0 } })).toEqual([
      '-p ipv6-icmp -m icmp6 --icmpv6-type 128/0 -j DROP',
    ]);
    expect(v6({ srcIpSetIds: ['s:a'], srcNets: ['10.0.0.0/8', 'fd00::/64'] })).toEqual([
      '-s fd00::/64 -m set --match-set tortie60s:s:a src -j DROP',
    ]);
  });

  test('a rule that cannot match in a family renders nothing there', () => {
    expect(v6({ protocol: 1 })).toEqual([]);
    expect(v4({ protocol: 58 })).toEqual([]);
    expect(v4({ ipVersion: 6 })).toEqual([]);
    expect(v4({ srcNets: ['fd00::/64'] })).toEqual([]);
    // a negated net of the other family does not stop the rule
    expect(v4({ notSrcNets: ['fd00::/64'] })).toEqual(['-j DROP']);
  });

  test('named ports without a protocol: the set members carry the protocol', () => {
    expect(v4({ dstNamedPortIpSetIds: ['n:svc'] })).toEqual([
      '-m set --match-set tortie40s:n:svc dst,dst -j DROP',
    ]);
    expect(v4({ notSrcNamedPortIpSetIds: ['n:svc'] })).toEqual([
      '-m set ! --match-set tortie40s:n:svc src,src -j DROP',
    ]);
    // a negated one with a protocol: it must be one that has ports
    expect(
      renderRule(r({ protocol: 1, notDstNamedPortIpSetIds: ['n:x'] }), 4, marks).problem,
    ).toMatch(/ports need protocol/);
  });

  test('a `services` (or named-port) set on a protocol without ports: the rule matches nothing, as Felix', () => {
    // ICMP to a Service: the set holds TCP/UDP/SCTP (address, port) only, so no packet
    // matches; not invalid (an invalid rule would fail the whole policy closed)
    for (const x of [
      { protocol: 1, dstNamedPortIpSetIds: ['svc:shop/web'] },
      { icmp: { type: 8 }, dstNamedPortIpSetIds: ['svc:shop/web'] },
      { protocol: 47, srcNamedPortIpSetIds: ['n:x'] },
    ])
      expect(renderRule(r(x), 4, marks)).toEqual({ rules: [], ipsets: [] });
    expect(
      renderRule(r({ protocol: 58, dstNamedPortIpSetIds: ['svc:shop/web'] }), 6, marks),
    ).toEqual({ rules: [], ipsets: [] });
    // the native nftables renderer the same
    expect(
      renderNftRule(r({ protocol: 1, dstNamedPortIpSetIds: ['svc:shop/web'] }), 4, marks),
    ).toEqual({ rules: [], sets: [] });
    expect(
      renderNftRule(r({ protocol: 1, notDstNamedPortIpSetIds: ['n:x'] }), 4, marks).problem,
    ).toMatch(/ports need protocol/);
  });

  test('ports without a port protocol: left out with a reason', () => {
    const out = renderRule(r({ dstPorts: [{ first: 80, last: 80 }], ruleId: 'abc' }), 4, marks);
    expect(out.rules).toEqual([]);
    expect(out.problem).toMatch(/rule abc: ports need protocol/);
  });

  test('actions: Allow/Pass set their mark bit then RETURN; Deny drops; Log logs', () => {
    expect(v4({ action: 'allow', protocol: 6 })).toEqual([
      '-p tcp -j MARK --set-xmark 0x10000/0x10000',
      '-m mark --mark 0x10000/0x10000 -j RETURN',
    ]);
    expect(v4({ action: 'pass' })).toEqual([
      '-j MARK --set-xmark 0x20000/0x20000',
      '-m mark --mark 0x20000/0x20000 -j RETURN',
    ]);
    expect(v4({ action: 'log' })).toEqual(['-j LOG --log-prefix "tortie-packet: " --log-level 5']);
  });

  test('several nets are OR-ed in a block writing scratch0, negated nets clear it (Felix)', () => {
    expect(
      v4({
        action: 'allow',
        srcNets: ['10.0.0.0/8', '192.168.0.0/16'],
        notDstNets: ['10.1.0.0/16', '10.2.0.0/16'],
      }),
    ).toEqual([
      '-j MARK --set-xmark 0x0/0xc0000',
      '-s 10.0.0.0/8 -j MARK --set-xmark 0x40000/0x40000',
      '-s 192.168.0.0/16 -j MARK --set-xmark 0x40000/0x40000',
      '-d 10.1.0.0/16 -j MARK --set-xmark 0x0/0x40000',
      '-d 10.2.0.0/16 -j MARK --set-xmark 0x0/0x40000',
      '-m mark --mark 0x40000/0x40000 -j MARK --set-xmark 0x10000/0x10000',
      '-m mark --mark 0x10000/0x10000 -j RETURN',
    ]);
  });

  test('ipBlock with one except: one -d in the rule, the except in a negated block', () => {
    // was "-d 0.0.0.0/4 ! -d 10.0.0.2/32": iptables refuses two -d flags
    for (const [nets, notNets, flag] of [
      ['dstNets', 'notDstNets', '-d'],
      ['srcNets', 'notSrcNets', '-s'],
    ] as const)
      expect(v4({ action: 'allow', [nets]: ['0.0.0.0/4'], [notNets]: ['10.0.0.2/32'] })).toEqual([
        '-j MARK --set-xmark 0x40000/0xc0000',
        `${flag} 10.0.0.2/32 -j MARK --set-xmark 0x0/0x40000`,
        `${flag} 0.0.0.0/4 -m mark --mark 0x40000/0x40000 -j MARK --set-xmark 0x10000/0x10000`,
        '-m mark --mark 0x10000/0x10000 -j RETURN',
      ]);
    // several excepts: the same block; a negated net alone stays in the rule
    expect(v4({ dstNets: ['10.0.0.0/8'], notDstNets: ['10.1.0.0/16', '10.2.0.0/16'] })).toEqual([
      '-j MARK --set-xmark 0x40000/0xc0000',
      '-d 10.1.0.0/16 -j MARK --set-xmark 0x0/0x40000',
      '-d 10.2.0.0/16 -j MARK --set-xmark 0x0/0x40000',
      '-d 10.0.0.0/8 -m mark --mark 0x40000/0x40000 -j DROP',
    ]);
    expect(v4({ srcNets: ['10.0.0.0/8'], notDstNets: ['10.1.0.0/16'] })).toEqual([
      '-s 10.0.0.0/8 ! -d 10.1.0.0/16 -j DROP',
    ]);
  });

  test('from the third positive block on, scratch1 is cleared before the block', () => {
    expect(
      v4({
        protocol: 6,
        srcPorts: [{ first: 1, last: 1 }],
        srcNamedPortIpSetIds: ['n:a'],
        dstPorts: [{ first: 2, last: 2 }],
        dstNamedPortIpSetIds: ['n:b'],
        srcNets: ['10.0.0.0/8', '11.0.0.0/8'],
      }),
    ).toEqual([
      '-j MARK --set-xmark 0x0/0xc0000',
      '-s 10.0.0.0/8 -j MARK --set-xmark 0x40000/0x40000',
      '-s 11.0.0.0/8 -j MARK --set-xmark 0x40000/0x40000',
      '-p tcp -m multiport --sports 1 -j MARK --set-xmark 0x80000/0x80000',
      '-m set --match-set tortie40s:n:a src,src -j MARK --set-xmark 0x80000/0x80000',
      '-m mark --mark 0x0/0x80000 -j MARK --set-xmark 0x0/0x40000',
      '-j MARK --set-xmark 0x0/0x80000',
      '-p tcp -m multiport --dports 2 -j MARK --set-xmark 0x80000/0x80000',
      '-m set --match-set tortie40s:n:b dst,dst -j MARK --set-xmark 0x80000/0x80000',
      '-m mark --mark 0x0/0x80000 -j MARK --set-xmark 0x0/0x40000',
      '-p tcp -m mark --mark 0x40000/0x40000 -j DROP',
    ]);
  });

  test('port lists split at 15 multiport slots; numeric and named ports are alternatives', () => {
    const many = Array.from({ length: 20 }, (_, i) => ({ first: 1000 + i, last: 1000 + i }));
    expect(portChunks(many).map((c) => c.split(',').length)).toEqual([15, 5]);
    expect(
      portChunks(Array.from({ length: 8 }, (_, i) => ({ first: i * 10 + 1, last: i * 10 + 2 })))
        .length,
    ).toBe(2);
    expect(
      v4({
        protocol: 6,
        dstPorts: [{ first: 80, last: 80 }],
        dstNamedPortIpSetIds: ['n:http'],
        srcNamedPortIpSetIds: ['n:src'],
      }),
    ).toEqual([
      '-j MARK --set-xmark 0x0/0xc0000',
      '-p tcp -m multiport --dports 80 -j MARK --set-xmark 0x40000/0x40000',
      '-m set --match-set tortie40s:n:http dst,dst -j MARK --set-xmark 0x40000/0x40000',
      '-p tcp -m set --match-set tortie40s:n:src src,src -m mark --mark 0x40000/0x40000 -j DROP',
    ]);
    // one Log rule logs once, however many alternatives match
    expect(v4({ action: 'log', protocol: 6, dstPorts: many })).toHaveLength(4);
  });

  test('negated ports: every chunk and named-port set in the rule (none may match)', () => {
    const many = Array.from({ length: 16 }, (_, i) => ({ first: 100 + i, last: 100 + i }));
    expect(
      v4({
        protocol: 17,
        notDstPorts: many,
        notDstNamedPortIpSetIds: ['n:dns'],
        notSrcNamedPortIpSetIds: ['n:x'],
      }),
    ).toEqual([
      '-p udp -m set ! --match-set tortie40s:n:x src,src' +
        ` -m multiport ! --dports ${many.slice(0, 15).map((p) => p.first)}` +
        ' -m multiport ! --dports 115 -m set ! --match-set tortie40s:n:dns dst,dst -j DROP',
    ]);
  });

  test('protocol and notProtocol: never two -p; equal ones cannot match', () => {
    expect(v4({ protocol: 6, notProtocol: 17 })).toEqual(['-p tcp -j DROP']);
    expect(v4({ protocol: 6, notProtocol: 6 })).toEqual([]);
    expect(v4({ icmp: { type: 8 }, notProtocol: 1 })).toEqual([]);
  });

  test('ICMP fields: implied protocol, other protocols, type 255, notICMP without a protocol', () => {
    expect(v4({ icmp: { type: 8 } })).toEqual(['-p icmp -m icmp --icmp-type 8 -j DROP']);
    expect(v6({ icmp: { type: 128 } })).toEqual([
      '-p ipv6-icmp -m icmp6 --icmpv6-type 128 -j DROP',
    ]);
    // ICMP fields on TCP: the positive one cannot match, the negated one always holds
    expect(v4({ protocol: 6, icmp: { type: 8 } })).toEqual([]);
    expect(v4({ protocol: 6, notIcmp: { type: 8 } })).toEqual(['-p tcp -j DROP']);
    // iptables reads type 255 as "any": never rendered
    expect(v4({ icmp: { type: 255 } })).toEqual([]);
    expect(v4({ protocol: 1, notIcmp: { type: 255 } })).toEqual(['-p icmp -j DROP']);
    // without a protocol, notICMP is "not (ICMP of this type)": TCP still matches
    expect(v4({ notIcmp: { type: 8, code: 0 } })).toEqual([
      '-j MARK --set-xmark 0x40000/0xc0000',
      '-p icmp -m icmp --icmp-type 8/0 -j MARK --set-xmark 0x0/0x40000',
      '-m mark --mark 0x40000/0x40000 -j DROP',
    ]);
    expect(v4({ protocol: 1, icmp: { type: 3 }, notIcmp: { type: 3, code: 4 } })).toEqual([
      '-p icmp -m icmp --icmp-type 3 -m icmp ! --icmp-type 3/4 -j DROP',
    ]);
  });

  test('negated catch-all nets never match; bad input is a problem, not a silent omission', () => {
    expect(v4({ notSrcNets: ['0.0.0.0/0'] })).toEqual([]);
    expect(v6({ notDstNets: ['::/0'] })).toEqual([]);
    expect(renderRule(r({ srcNets: ['10.0.0.0/33'] }), 4, marks).problem).toMatch(
      /rule r: "10.0.0.0\/33" is not a valid CIDR/,
    );
    expect(renderRule(r({ icmp: { code: 3 } }), 4, marks).problem).toMatch(
      /code needs an ICMP type/,
    );
    expect(renderRule(r({ invalid: 'p inbound rule 0: unknown protocol' }), 4, marks)).toEqual({
      rules: [],
      ipsets: [],
      problem: 'rule r: p inbound rule 0: unknown protocol',
    });
  });

  test('the IP sets a rule refers to are reported', () => {
    const out = renderRule(
      r({ srcIpSetIds: ['a'], notDstIpSetIds: ['b'], protocol: 6, dstNamedPortIpSetIds: ['c'] }),
      4,
      marks,
    );
    expect(out.ipsets.sort()).toEqual(['tortie40s:a', 'tortie40s:b', 'tortie40s:c']);
  });
});

describe('names', () => {
  test('chain names <= 28 and IP set names <= 31 characters, long or odd ids hashed', () => {
    const long = 'default/some-namespace/a-very-long-network-policy-name';
    for (const f of Object.values(chainName)) {
      const n = f(long);
      expect(n.length).toBeLessThanOrEqual(28);
      expect(n).toMatch(/^tortie-[a-z]+-_[A-Za-z0-9_-]+$/);
    }
    expect(chainName.policyIn('default/ns/a')).toMatch(/^tortie-pi-_/); // "/" is hashed
    expect(chainName.profileIn('kns.ns')).toBe('tortie-pri-kns.ns');
    expect(chainName.toWorkload('cali0123456789a')).toBe('tortie-tw-cali0123456789a');
    expect(ipsetName('s:abc', 4)).toBe('tortie40s:s:abc');
    const setName = ipsetName('s:' + 'x'.repeat(40), 6);
    expect(setName.length).toBe(31);
    expect(setName.startsWith('tortie60s:_')).toBe(true);
    expect(tempIpsetName(setName)).toHaveLength(31);
    expect(tempIpsetName('tortie40s:abc')).toBe('tortie4ts:abc');
    // distinct ids give distinct names
    expect(chainName.policyIn(long)).not.toBe(chainName.policyIn(long + 'x'));
    expect(lengthLimited('p-', '_x', 28)).toMatch(/^p-_/); // cannot pose as a hash
  });
});
