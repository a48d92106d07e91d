// PrefixMap, the RIB's per-route table: behaves as a Map<string, V> for any key, held
// as numbers for canonical IPv4 prefixes. Checked against a Map with random operation
// sequences that collide often (few distinct keys, many deletions: the backward-shift
// deletion must keep every remaining key findable), through growth and shrinking.
import fc from 'fast-check';
import { PrefixMap, sortByPrefix } from '../src/rib/prefix-map';

const sorted = <T>(xs: Iterable<T>) => [...xs].sort();

describe('PrefixMap', () => {
  test('get, set, swap, delete, has and size, IPv4 and anything else', () => {
    const m = new PrefixMap<number>();
    expect(m.swap('10.0.0.0/24', 1)).toBeUndefined();
    expect(m.swap('10.0.0.0/24', 2)).toBe(1); // replaced: the old value comes back
    m.set('10.0.0.0/25', 3); // same address, another length: another key
    m.set('0.0.0.0/0', 4);
    m.set('255.255.255.255/32', 5);
    m.set('fd00::/64', 6);
    m.set('010.0.0.0/24', 7); // not canonical: kept as text, not confused with 10.0.0.0/24
    expect(m.size).toBe(6);
    expect(m.get('10.0.0.0/24')).toBe(2);
    expect(m.get('10.0.0.0/25')).toBe(3);
    expect(m.get('0.0.0.0/0')).toBe(4);
    expect(m.get('255.255.255.255/32')).toBe(5);
    expect(m.get('fd00::/64')).toBe(6);
    expect(m.get('010.0.0.0/24')).toBe(7);
    expect(m.get('10.0.0.0/26')).toBeUndefined();
    expect(m.has('10.0.0.0/26')).toBe(false);
    expect(m.delete('10.0.0.0/24')).toBe(true);
    expect(m.delete('10.0.0.0/24')).toBe(false);
    expect(m.has('10.0.0.0/24')).toBe(false);
    expect(m.delete('fd00::/64')).toBe(true);
    expect(m.size).toBe(4);
    expect(sorted(m.keys())).toEqual(
      sorted(['10.0.0.0/25', '0.0.0.0/0', '255.255.255.255/32', '010.0.0.0/24']),
    );
    expect(new Map(m.entries())).toEqual(
      new Map([
        ['10.0.0.0/25', 3],
        ['0.0.0.0/0', 4],
        ['255.255.255.255/32', 5],
        ['010.0.0.0/24', 7],
      ]),
    );
    m.clear();
    expect(m.size).toBe(0);
    expect([...m.keys()]).toEqual([]);
  });

  test('a value is held once, however many keys hold it, and dropped with the last', () => {
    const m = new PrefixMap<object>();
    const a = { path: 'a' };
    const b = { path: 'b' };
    for (let i = 0; i < 100; i++) m.set(`10.0.${i}.0/24`, a);
    expect(m.distinctValues).toBe(1);
    for (let i = 0; i < 50; i++) m.set(`10.0.${i}.0/24`, b); // implicit withdraw of a
    expect(m.distinctValues).toBe(2);
    for (let i = 50; i < 100; i++) m.delete(`10.0.${i}.0/24`);
    expect(m.distinctValues).toBe(1); // a's count dropped to zero
    expect(m.get('10.0.0.0/24')).toBe(b);
    for (let i = 0; i < 50; i++) m.set(`10.0.${i}.0/24`, a);
    expect(m.distinctValues).toBe(1); // and b's, by replacement; a is back under a new count
    expect([...m.entries()].every(([, v]) => v === a)).toBe(true);
    for (let i = 0; i < 50; i++) m.delete(`10.0.${i}.0/24`);
    expect(m.distinctValues).toBe(0);
  });

  test('keys come back exactly as given, malformed text included', () => {
    const keys = ['1.2.3.4/24', '1.2.3/24', '1.2.3.4', '1.2.3.4/33', '1.2.3.4/024', '1.2.3.256/8'];
    const m = new PrefixMap<string>();
    for (const k of keys) m.set(k, k);
    expect(sorted(m.keys())).toEqual(sorted(keys));
    for (const k of keys) expect(m.get(k)).toBe(k);
  });

  test('grows past 3/4 full and shrinks when mostly empty, losing nothing', () => {
    const m = new PrefixMap<number>();
    const key = (i: number) => `10.${i >> 8}.${i & 255}.0/24`;
    for (let i = 0; i < 5000; i++) m.set(key(i), i);
    expect(m.capacity).toBe(8192);
    const lost = (from: number) => {
      const out: number[] = [];
      for (let i = from; i < 5000; i++) if (m.get(key(i)) !== i) out.push(i);
      return out;
    };
    expect(lost(0)).toEqual([]);
    let deleted = 0;
    for (let i = 0; i < 4990; i++) if (m.delete(key(i))) deleted++;
    expect(deleted).toBe(4990);
    expect(m.capacity).toBeLessThanOrEqual(128);
    expect(sorted(m.keys())).toEqual(sorted(Array.from({ length: 10 }, (_, i) => key(4990 + i))));
    expect(lost(4990)).toEqual([]);
  });

  test('agrees with a Map on random operations (property)', () => {
    // tables up to 3/4 full, so probe runs are long and wrap around: the deletion cases all occur
    const key = fc.oneof(
      fc
        .tuple(fc.integer({ min: 0, max: 120 }), fc.constantFrom(8, 16, 24, 32))
        .map(([a, l]) => `10.0.${a}.0/${l}`),
      fc.constantFrom('0.0.0.0/0', '2001:db8::/32', '10.00.0.0/8'),
    );
    const op = fc.tuple(fc.constantFrom('set', 'set', 'delete', 'get'), key, fc.nat(100));
    fc.assert(
      fc.property(fc.array(op, { minLength: 200, maxLength: 1000 }), (ops) => {
        const m = new PrefixMap<number>();
        const ref = new Map<string, number>();
        // plain comparisons in the loop (expect() per operation is slow); a false fails
        for (const [o, k, v] of ops) {
          if (o === 'set' && m.swap(k, v) !== ref.get(k)) return false;
          if (o === 'set') ref.set(k, v);
          if (o === 'delete' && m.delete(k) !== ref.delete(k)) return false;
          if (m.get(k) !== ref.get(k) || m.size !== ref.size) return false;
        }
        for (const [k, v] of ref) if (m.get(k) !== v) return false;
        // each distinct value is held once, and dropped with the last key holding it
        const v4 = [...ref].filter(([k]) => !['2001:db8::/32', '10.00.0.0/8'].includes(k));
        if (m.distinctValues !== new Set(v4.map(([, v]) => v)).size) return false;
        expect(new Map(m.entries())).toEqual(ref);
        return true;
      }),
      { numRuns: 200 },
    );
  });

  test('sortByPrefix: IPv4 by address then length, then the rest by text', () => {
    const ps = [
      'fd00::/64',
      '10.0.0.0/24',
      '9.0.0.0/8',
      '10.0.0.0/16',
      '2001:db8::/32',
      '10.0.1.0/24',
    ];
    expect(sortByPrefix(ps, (p) => p)).toEqual([
      '9.0.0.0/8',
      '10.0.0.0/16',
      '10.0.0.0/24',
      '10.0.1.0/24',
      '2001:db8::/32',
      'fd00::/64',
    ]);
  });
});
