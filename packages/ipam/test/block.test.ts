// Pure block math and allocation order.
import fc from 'fast-check';
import {
  blockCount,
  blocks,
  firstFreeBlock,
  formatCidr,
  formatIp,
  nthBlock,
  parseCidr,
  parseIp,
  blockName,
  handleName,
  affinityName,
  type Pool,
} from '../src';

const never = () => false;

describe('address math', () => {
  test.each([
    ['10.0.0.0/24', '10.0.0.0/24'],
    ['10.0.0.77/24', '10.0.0.0/24'],
    ['fd00::1/64', 'fd00::/64'],
    ['fd00:0:0:1::/122', 'fd00:0:0:1::/122'],
    ['::/0', '::/0'],
    ['192.168.1.1', '192.168.1.1/32'],
  ])('%s normalises to %s', (text, want) => {
    expect(formatCidr(parseCidr(text))).toBe(want);
  });

  test.each(['10.0.0.0/33', '10.0.0/8', 'fd00::/129', 'nonsense', '10.0.0.0/8/8'])(
    '%s is rejected with its text in the message',
    (bad) => {
      expect(() => parseCidr(bad)).toThrow(bad);
    },
  );

  test('IPv6 formatting follows RFC 5952 (longest zero run, lowercase, first on ties)', () => {
    expect(formatIp(6, parseIp('2001:db8:0:0:1:0:0:1').value)).toBe('2001:db8::1:0:0:1');
    expect(formatIp(6, parseIp('2001:0DB8:0000:0000:0000:0000:0000:0001').value)).toBe(
      '2001:db8::1',
    );
    expect(formatIp(6, parseIp('2001:db8:0:1:1:1:1:1').value)).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIp(6, parseIp('::ffff:10.1.2.3').value)).toBe('::ffff:a01:203');
  });

  test('parse and format are inverse for any address', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => formatIp(4, parseIp(ip).value) === ip),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const v = parseIp(ip).value;
        return parseIp(formatIp(6, v)).value === v;
      }),
      { numRuns: 500 },
    );
  });

  test('a /24 pool holds four /26 blocks, in order', () => {
    const pool = parseCidr('10.1.2.0/24');
    expect(blockCount(pool, 26)).toBe(4n);
    expect([0n, 1n, 2n, 3n].map((i) => formatCidr(nthBlock(pool, 26, i)))).toEqual([
      '10.1.2.0/26',
      '10.1.2.64/26',
      '10.1.2.128/26',
      '10.1.2.192/26',
    ]);
    expect(formatCidr(nthBlock(parseCidr('fd00::/64'), 122, 3n))).toBe('fd00::c0/122');
  });

  test('names follow Calico and are valid resource names', () => {
    expect(blockName('10.244.1.0/26')).toBe('10-244-1-0-26');
    expect(blockName('fd00::c0/122')).toBe('fd00--c0-122');
    expect(affinityName('node-1', '10.244.1.0/26')).toBe('node-1-10-244-1-0-26');
    expect(handleName('k8s-pod-network.abc123')).toBe('k8s-pod-network.abc123');
    const odd = handleName('K8S_Pod/Network:XYZ');
    expect(odd).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    expect(handleName('K8S_Pod/Network:XYZ')).toBe(odd);
    expect(handleName('K8S_Pod/Network:XYy')).not.toBe(odd);
  });
});

describe('one block', () => {
  test('allocates in order, records the handle, and reuses freed addresses last', () => {
    let b = blocks.newBlock('10.0.0.0/30', 'n1');
    const a = blocks.allocate(b, 2, 'h1', { pod: 'p1' }, never);
    expect(a.ips).toEqual(['10.0.0.0', '10.0.0.1']);
    b = a.block;
    const c = blocks.allocate(b, 1, 'h2', {}, never);
    expect(c.ips).toEqual(['10.0.0.2']);
    b = blocks.releaseIps(c.block, ['10.0.0.0']).block;
    // the freed .0 goes to the end of the queue: .3 first
    const d = blocks.allocate(b, 2, 'h3', {}, never);
    expect(d.ips).toEqual(['10.0.0.3', '10.0.0.0']);
    expect(blocks.allocationsOf(d.block).map((x) => `${x.ip}=${x.handleId}`)).toEqual([
      '10.0.0.0=h3',
      '10.0.0.1=h1',
      '10.0.0.2=h2',
      '10.0.0.3=h3',
    ]);
  });

  test('a full block gives nothing; reserved addresses are skipped', () => {
    const b = blocks.allocate(blocks.newBlock('10.0.0.0/31'), 5, 'h', {}, never);
    expect(b.ips).toHaveLength(2);
    expect(blocks.allocate(b.block, 1, 'h', {}, never).ips).toEqual([]);
    const r = blocks.allocate(
      blocks.newBlock('10.0.0.0/30'),
      4,
      'h',
      {},
      (ip) => ip === '10.0.0.1',
    );
    expect(r.ips).toEqual(['10.0.0.0', '10.0.0.2', '10.0.0.3']);
  });

  test('a given address: taken once, then refused naming its holder', () => {
    const b = blocks.allocateIp(blocks.newBlock('10.0.0.0/29'), '10.0.0.5', 'fixed', {});
    expect(() => blocks.allocateIp(b, '10.0.0.5', 'other', {})).toThrow(
      '10.0.0.5 is already in use (handle fixed)',
    );
    expect(() => blocks.allocateIp(b, '10.0.0.9', 'other', {})).toThrow('not in block');
    expect(blocks.allocate(b, 8, 'h', {}, never).ips).not.toContain('10.0.0.5');
  });

  test('release by handle frees exactly that handle, and twice is harmless', () => {
    let b = blocks.allocate(blocks.newBlock('10.0.0.0/29'), 3, 'a', {}, never).block;
    b = blocks.allocate(b, 2, 'b', {}, never).block;
    const r = blocks.releaseHandle(b, 'a');
    expect(r.ips.map((x) => x.ip)).toEqual(['10.0.0.0', '10.0.0.1', '10.0.0.2']);
    expect(blocks.releaseHandle(r.block, 'a').ips).toEqual([]);
    expect(blocks.allocationsOf(r.block).map((x) => x.handleId)).toEqual(['b', 'b']);
    // attributes are compacted: only b's entry is left
    expect(r.block.attributes).toEqual([{ handle_id: 'b', secondary: {} }]);
  });

  test('any sequence of allocations and releases keeps the block consistent', () => {
    type Op = { alloc: number } | { release: number };
    const op = fc.oneof(
      fc.record({ alloc: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ release: fc.integer({ min: 0, max: 15 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops: Op[]) => {
        let b = blocks.newBlock('10.0.0.0/28');
        const held = new Map<string, string>();
        let n = 0;
        for (const o of ops) {
          if ('alloc' in o) {
            const h = `h${n++}`;
            const r = blocks.allocate(b, o.alloc, h, {}, never);
            for (const ip of r.ips) {
              if (held.has(ip)) return false; // handed out twice
              held.set(ip, h);
            }
            b = r.block;
          } else {
            const ip = `10.0.0.${o.release}`;
            const r = blocks.releaseIps(b, [ip]);
            expect(r.ips.map((x) => x.handleId)).toEqual(held.has(ip) ? [held.get(ip)] : []);
            held.delete(ip);
            b = r.block;
          }
          const now = blocks.allocationsOf(b);
          if (now.length !== held.size) return false;
          if (now.some((x) => held.get(x.ip) !== x.handleId)) return false;
          if (b.unallocated.length + now.length !== 16) return false;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });
});

describe('choosing a free block', () => {
  const pool = (cidr: string, blockSize: number): Pool => ({
    name: cidr,
    cidr: parseCidr(cidr),
    cidrText: cidr,
    blockSize,
  });

  test('skips blocks that exist and returns nothing when the pool is full', () => {
    const p = [pool('10.0.0.0/24', 26)];
    const taken = ['10.0.0.0/26', '10.0.0.64/26', '10.0.0.128/26'].map(parseCidr);
    expect(firstFreeBlock(p, taken, 'n', never)).toBe('10.0.0.192/26');
    expect(firstFreeBlock(p, [...taken, parseCidr('10.0.0.192/26')], 'n', never)).toBeUndefined();
  });

  test('different nodes start at different blocks; a huge v6 pool is not walked', () => {
    const p = [pool('fd00::/48', 122)];
    const starts = new Set(['a', 'b', 'c', 'd', 'e'].map((n) => firstFreeBlock(p, [], n, never)));
    expect(starts.size).toBeGreaterThan(1);
  });

  test('a block whose addresses are all reserved is not claimed', () => {
    const p = [pool('10.0.0.0/25', 26)];
    const reserved = (ip: string) => parseIp(ip).value < parseIp('10.0.0.64').value;
    expect(firstFreeBlock(p, [], 'x', reserved)).toBe('10.0.0.64/26');
  });
});
