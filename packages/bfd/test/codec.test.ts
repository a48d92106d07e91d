// The BFD Control packet codec: round trips for every valid packet (fast-check), and each
// reception check of RFC 5880 §6.8.6 that needs no session.
import fc from 'fast-check';
import { BfdState, decodeBfd, encodeBfd, type BfdPacket } from '../src';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const packet: fc.Arbitrary<BfdPacket> = fc
  .record({
    diag: fc.integer({ min: 0, max: 8 }),
    state: fc.constantFrom(BfdState.AdminDown, BfdState.Down, BfdState.Init, BfdState.Up),
    poll: fc.boolean(),
    final: fc.boolean(),
    controlPlaneIndependent: fc.boolean(),
    demand: fc.boolean(),
    detectMult: fc.integer({ min: 1, max: 255 }),
    myDiscriminator: fc.integer({ min: 1, max: 0xffffffff }),
    yourDiscriminator: u32,
    desiredMinTxInterval: u32,
    requiredMinRxInterval: u32,
    requiredMinEchoRxInterval: u32,
  })
  .map((p) => ({ ...p, final: p.final && !p.poll }))
  .filter(
    (p) => p.yourDiscriminator !== 0 || p.state === BfdState.Down || p.state === BfdState.AdminDown,
  );

test('every valid packet decodes to itself', () => {
  fc.assert(
    fc.property(packet, (p) => {
      const b = encodeBfd(p);
      expect(b.length).toBe(24);
      expect(decodeBfd(b)).toEqual({ ok: true, packet: p });
    }),
  );
});

test('any bytes decode to a packet or a reason, never a throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const r = decodeBfd(Buffer.from(bytes));
      if (r.ok)
        expect(encodeBfd(r.packet).equals(Buffer.from(bytes).subarray(0, 24))).toBe(
          // reserved and multipoint bits are not kept; the rest is
          (Buffer.from(bytes)[1] & 0x05) === 0 && bytes[3] === 24,
        );
      else expect(r.detail).toMatch(/\w/);
    }),
  );
});

const good = (): Buffer =>
  encodeBfd({
    diag: 0,
    state: BfdState.Up,
    poll: false,
    final: false,
    controlPlaneIndependent: false,
    demand: false,
    detectMult: 3,
    myDiscriminator: 7,
    yourDiscriminator: 9,
    desiredMinTxInterval: 100_000,
    requiredMinRxInterval: 100_000,
    requiredMinEchoRxInterval: 0,
  });

test.each([
  ['short', (b: Buffer) => b.subarray(0, 23)],
  ['version', (b: Buffer) => ((b[0] = (2 << 5) | (b[0] & 0x1f)), b)],
  ['length', (b: Buffer) => ((b[3] = 23), b)],
  ['length', (b: Buffer) => ((b[3] = 40), b)],
  [
    'authentication',
    (b: Buffer) => ((b[1] |= 0x04), (b[3] = 28), Buffer.concat([b, Buffer.alloc(4)])),
  ],
  ['detect-mult', (b: Buffer) => ((b[2] = 0), b)],
  ['multipoint', (b: Buffer) => ((b[1] |= 0x01), b)],
  ['my-discriminator', (b: Buffer) => (b.writeUInt32BE(0, 4), b)],
  ['your-discriminator', (b: Buffer) => (b.writeUInt32BE(0, 8), b)],
])('rejected: %s', (reason, spoil) => {
  expect(decodeBfd(spoil(good()))).toMatchObject({ ok: false, reason });
});

test('a longer datagram with a correct length field decodes (trailing bytes ignored)', () => {
  expect(decodeBfd(Buffer.concat([good(), Buffer.alloc(8)])).ok).toBe(true);
});

test('Poll and Final together are refused on output', () => {
  const r = decodeBfd(good());
  if (!r.ok) throw new Error('good packet rejected');
  expect(() => encodeBfd({ ...r.packet, poll: true, final: true })).toThrow(/Poll and Final/);
});
