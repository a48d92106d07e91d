// The speaker's hot-path address parser (src/prefix.ts) and the product's one reader of
// addresses (@tortie/netaddr) agree on every textual form: the same texts accepted, the
// same value and canonical text, the same prefixes. A tortie that configures a peer or
// an originated prefix reads it as policy and IPAM read it.
import fc from 'fast-check';
import { formatCidr, ipVersionOf, parseCidr, parseIp } from '@tortie/netaddr';
import { ipv4ToNumber, parseIpv6, parsePrefix } from '../src/prefix';

/** What the speaker makes of an address text: canonical bigint or undefined. */
function speakerValue(text: string): bigint | undefined {
  const v4 = ipv4ToNumber(text);
  if (v4 >= 0) return BigInt(v4);
  const v6 = parseIpv6(text);
  return v6 ? BigInt(`0x${v6.toString('hex')}`) : undefined;
}

function sharedValue(text: string): bigint | undefined {
  return ipVersionOf(text) ? parseIp(text).value : undefined;
}

const hex = (n: number, pad: boolean, upper: boolean) => {
  const h = n.toString(16).padStart(pad ? 4 : 1, '0');
  return upper ? h.toUpperCase() : h;
};

/** An IPv6 address written in one of its forms: compressed or not, padded, upper case, v4 tail. */
const v6Text = fc
  .record({
    groups: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
      minLength: 8,
      maxLength: 8,
    }),
    pad: fc.boolean(),
    upper: fc.boolean(),
    compress: fc.boolean(),
    v4Tail: fc.boolean(),
  })
  .map(({ groups, pad, upper, compress, v4Tail }) => {
    const parts = groups.map((g) => hex(g, pad, upper));
    if (v4Tail) {
      const [a, b] = groups.slice(6);
      parts.splice(6, 2, `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`);
    }
    if (!compress) return parts.join(':');
    const at = parts.findIndex((p, i) => /^0+$/.test(p) && i < (v4Tail ? 5 : 7));
    if (at < 0) return parts.join(':');
    let end = at;
    while (end < (v4Tail ? 6 : 8) && /^0+$/.test(parts[end])) end++;
    return `${parts.slice(0, at).join(':')}::${parts.slice(end).join(':')}`;
  });
const v4Text = fc
  .array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 })
  .map((o) => o.join('.'));
/** Near misses: leading zeros, a zone, a stray character, too many parts. */
const mangled = fc
  .tuple(fc.oneof(v4Text, v6Text), fc.constantFrom('0', '%eth0', ':', '.1', 'g', '::1', ' '))
  .chain(([t, extra]) =>
    fc.nat(t.length).map((i) => (extra === '0' ? `${t.slice(0, i)}0${t.slice(i)}` : t + extra)),
  );

test('every address text: accepted by both or by neither, with the same value', () => {
  fc.assert(
    fc.property(fc.oneof(v4Text, v6Text, mangled), (text) => {
      expect(speakerValue(text)).toEqual(sharedValue(text));
    }),
    { numRuns: 5000, seed: 4271 },
  );
});

test('every prefix text: the same canonical prefix, or refused by both', () => {
  const prefix = fc.tuple(fc.oneof(v4Text, v6Text), fc.integer({ min: 0, max: 130 }), fc.boolean());
  fc.assert(
    fc.property(prefix, ([addr, len, leadingZero]) => {
      const text = `${addr}/${leadingZero ? '0' : ''}${len}`;
      let speaker: string | undefined;
      let shared: string | undefined;
      try {
        speaker = parsePrefix(text);
      } catch {
        speaker = undefined;
      }
      try {
        shared = formatCidr(parseCidr(text));
      } catch {
        shared = undefined;
      }
      expect(speaker).toBe(shared);
    }),
    { numRuns: 5000, seed: 4760 },
  );
});
