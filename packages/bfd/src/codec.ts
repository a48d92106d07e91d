// BFD Control packets (RFC 5880 §4.1), without authentication: tortie never sets the A
// bit and drops packets that carry it (no key to check them with). Pure: bytes in,
// a packet or the reason it was rejected out; a packet in, 24 bytes out.

export enum BfdState {
  AdminDown = 0,
  Down = 1,
  Init = 2,
  Up = 3,
}

/** Diagnostic codes (RFC 5880 §4.1). */
export enum BfdDiag {
  None = 0,
  ControlDetectionTimeExpired = 1,
  EchoFailed = 2,
  NeighborSignaledDown = 3,
  ForwardingPlaneReset = 4,
  PathDown = 5,
  ConcatenatedPathDown = 6,
  AdministrativelyDown = 7,
  ReverseConcatenatedPathDown = 8,
}

export interface BfdPacket {
  diag: BfdDiag;
  state: BfdState;
  poll: boolean;
  final: boolean;
  controlPlaneIndependent: boolean;
  demand: boolean;
  detectMult: number;
  myDiscriminator: number;
  yourDiscriminator: number;
  /** Microseconds, as on the wire. */
  desiredMinTxInterval: number;
  requiredMinRxInterval: number;
  requiredMinEchoRxInterval: number;
}

export const BFD_VERSION = 1;
/** The mandatory section: the whole packet without authentication. */
export const BFD_PACKET_LENGTH = 24;

/** Why a received packet was discarded (RFC 5880 §6.8.6, in its order). */
export type BfdRejectReason =
  | 'short'
  | 'version'
  | 'length'
  | 'detect-mult'
  | 'multipoint'
  | 'my-discriminator'
  | 'your-discriminator'
  | 'authentication';

export type DecodeResult =
  { ok: true; packet: BfdPacket } | { ok: false; reason: BfdRejectReason; detail: string };

function reject(reason: BfdRejectReason, detail: string): DecodeResult {
  return { ok: false, reason, detail };
}

export function encodeBfd(p: BfdPacket): Buffer {
  if (p.poll && p.final) throw new Error('a BFD packet cannot carry both Poll and Final');
  const b = Buffer.alloc(BFD_PACKET_LENGTH);
  b[0] = (BFD_VERSION << 5) | (p.diag & 0x1f);
  b[1] =
    ((p.state & 0x3) << 6) |
    (p.poll ? 0x20 : 0) |
    (p.final ? 0x10 : 0) |
    (p.controlPlaneIndependent ? 0x08 : 0) |
    (p.demand ? 0x02 : 0);
  b[2] = p.detectMult;
  b[3] = BFD_PACKET_LENGTH;
  b.writeUInt32BE(p.myDiscriminator >>> 0, 4);
  b.writeUInt32BE(p.yourDiscriminator >>> 0, 8);
  b.writeUInt32BE(p.desiredMinTxInterval >>> 0, 12);
  b.writeUInt32BE(p.requiredMinRxInterval >>> 0, 16);
  b.writeUInt32BE(p.requiredMinEchoRxInterval >>> 0, 20);
  return b;
}

/** Decodes one UDP payload and applies the reception checks that need no session. */
export function decodeBfd(b: Buffer): DecodeResult {
  if (b.length < BFD_PACKET_LENGTH)
    return reject('short', `${b.length} bytes, less than the ${BFD_PACKET_LENGTH} of a packet`);
  const version = b[0] >> 5;
  if (version !== BFD_VERSION) return reject('version', `version ${version}, not 1`);
  const length = b[3];
  const auth = (b[1] & 0x04) !== 0;
  if (length < (auth ? BFD_PACKET_LENGTH + 2 : BFD_PACKET_LENGTH))
    return reject('length', `length field ${length} is below the minimum`);
  if (length > b.length)
    return reject('length', `length field ${length} is more than the ${b.length} bytes received`);
  if (auth) return reject('authentication', 'authenticated packet, no authentication configured');
  const detectMult = b[2];
  if (detectMult === 0) return reject('detect-mult', 'detect multiplier 0');
  if (b[1] & 0x01) return reject('multipoint', 'multipoint bit set');
  const myDiscriminator = b.readUInt32BE(4);
  if (myDiscriminator === 0) return reject('my-discriminator', 'my discriminator 0');
  const state = (b[1] >> 6) as BfdState;
  const yourDiscriminator = b.readUInt32BE(8);
  if (yourDiscriminator === 0 && state !== BfdState.Down && state !== BfdState.AdminDown)
    return reject('your-discriminator', `your discriminator 0 in state ${BfdState[state]}`);
  return {
    ok: true,
    packet: {
      diag: (b[0] & 0x1f) as BfdDiag,
      state,
      poll: (b[1] & 0x20) !== 0,
      final: (b[1] & 0x10) !== 0,
      controlPlaneIndependent: (b[1] & 0x08) !== 0,
      demand: (b[1] & 0x02) !== 0,
      detectMult,
      myDiscriminator,
      yourDiscriminator,
      desiredMinTxInterval: b.readUInt32BE(12),
      requiredMinRxInterval: b.readUInt32BE(16),
      requiredMinEchoRxInterval: b.readUInt32BE(20),
    },
  };
}
