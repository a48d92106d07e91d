// Packet mark bits, allocated from the configured mask as Felix does (default mask
// 0xffff0000): the lowest bit is "accept" (a policy or profile allowed the packet), the
// next "pass" (a policy passed it to the next tier), then two scratch bits used to OR
// together several CIDRs inside one rule. tortie only ever touches these bits.
export interface MarkBits {
  accept: number;
  pass: number;
  scratch0: number;
  scratch1: number;
  /** accept | pass | scratch0 | scratch1 */
  all: number;
}

export const DEFAULT_MARK_MASK = 0xffff0000;

export function allocateMarks(mask: number = DEFAULT_MARK_MASK): MarkBits {
  const bits: number[] = [];
  for (let b = 0; b < 32 && bits.length < 4; b++) {
    const bit = 2 ** b;
    if (Math.floor(mask / bit) % 2 === 1) bits.push(bit);
  }
  if (bits.length < 4) {
    throw new Error(
      `iptablesMarkMask 0x${mask.toString(16)} has ${bits.length} bit(s) set; tortie needs at least 4`,
    );
  }
  const [accept, pass, scratch0, scratch1] = bits;
  return { accept, pass, scratch0, scratch1, all: accept + pass + scratch0 + scratch1 };
}

const hexCache = new Map<number, string>();
/** 0x-prefixed hex, cached: the same few mark values appear in every rule. */
export function hex(n: number): string {
  let h = hexCache.get(n);
  if (h === undefined) hexCache.set(n, (h = `0x${n.toString(16)}`));
  return h;
}

/** -m mark --mark bit/bit */
export const markSet = (bit: number) => `-m mark --mark ${hex(bit)}/${hex(bit)}`;
/** -m mark --mark 0x0/bits */
export const markClear = (bits: number) => `-m mark --mark 0x0/${hex(bits)}`;
/** -j MARK --set-xmark bit/bit */
export const setMark = (bit: number) => `-j MARK --set-xmark ${hex(bit)}/${hex(bit)}`;
/** -j MARK --set-xmark 0x0/bits */
export const clearMark = (bits: number) => `-j MARK --set-xmark 0x0/${hex(bits)}`;
