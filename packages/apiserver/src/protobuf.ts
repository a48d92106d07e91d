// A proto3 wire-format writer for the field kinds gnostic's OpenAPI v2 messages use:
// strings, bools, int64, doubles and nested messages. A singular scalar equal to its
// proto3 default is left out, as Go's proto.Marshal does; a oneof member and a set
// message field are always written, even when empty (their presence means something).

const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;

export class ProtoWriter {
  // byte chunks and nested writers (a message's bytes are copied once, by finish())
  private parts: (Buffer | ProtoWriter)[] = [];
  private size = 0;

  private push(b: Buffer | ProtoWriter): void {
    this.parts.push(b);
    this.size += b instanceof ProtoWriter ? b.size : b.length;
  }

  private varint(n: number | bigint): void {
    const out: number[] = [];
    if (typeof n === 'number' && n >= 0 && n <= 0x7fffffff) {
      while (n > 0x7f) {
        out.push((n & 0x7f) | 0x80);
        n >>>= 7;
      }
      out.push(n);
    } else {
      // negative int64s take ten bytes (two's complement), as Go writes them
      let v = BigInt.asUintN(64, BigInt(n));
      while (v >= 0x80n) {
        out.push(Number(v & 0x7fn) | 0x80);
        v >>= 7n;
      }
      out.push(Number(v));
    }
    this.push(Buffer.from(out));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** A string field; '' (the default) is not written unless `always` (a oneof member). */
  string(field: number, s: string | undefined, always = false): this {
    if (s === undefined || (s === '' && !always)) return this;
    const b = Buffer.from(s, 'utf8');
    this.tag(field, BYTES);
    this.varint(b.length);
    this.push(b);
    return this;
  }

  strings(field: number, list: string[] | undefined): this {
    for (const s of list ?? []) this.string(field, s, true);
    return this;
  }

  bool(field: number, v: boolean | undefined, always = false): this {
    if (v === undefined || (!v && !always)) return this;
    this.tag(field, VARINT);
    this.push(Buffer.from([v ? 1 : 0]));
    return this;
  }

  int64(field: number, v: number | undefined): this {
    if (v === undefined || v === 0) return this;
    if (!Number.isSafeInteger(v)) throw new Error(`not an int64: ${v}`);
    this.tag(field, VARINT);
    this.varint(v);
    return this;
  }

  double(field: number, v: number | undefined): this {
    if (v === undefined || (v === 0 && !Object.is(v, -0))) return this;
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.tag(field, FIXED64);
    this.push(b);
    return this;
  }

  /** A nested message; an empty one is still written (the field is set). */
  message(field: number, m: ProtoWriter | undefined): this {
    if (!m) return this;
    this.tag(field, BYTES);
    this.varint(m.size);
    this.push(m);
    return this;
  }

  messages(field: number, list: ProtoWriter[]): this {
    for (const m of list) this.message(field, m);
    return this;
  }

  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.size);
    const end = this.copyTo(out, 0);
    if (end !== this.size) throw new Error(`protobuf writer: wrote ${end} of ${this.size} bytes`);
    return out;
  }

  private copyTo(out: Buffer, at: number): number {
    for (const p of this.parts)
      at = p instanceof ProtoWriter ? p.copyTo(out, at) : at + p.copy(out, at);
    return at;
  }
}
