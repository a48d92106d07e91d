// Protocol errors: a BgpError carries the NOTIFICATION (code, subcode, data) that
// RFC 4271 §6 prescribes for it, plus a sentence saying what was wrong.

export class BgpError extends Error {
  /** The whole message it was found in, for the log (RFC 7606 §6); set by the reader. */
  raw?: Buffer;

  constructor(
    readonly code: number,
    readonly subcode: number,
    readonly data: Buffer,
    message: string,
  ) {
    super(message);
    this.name = 'BgpError';
  }
}

const CODES: Record<number, [string, Record<number, string>]> = {
  1: [
    'Message Header Error',
    { 1: 'Connection Not Synchronized', 2: 'Bad Message Length', 3: 'Bad Message Type' },
  ],
  2: [
    'OPEN Message Error',
    {
      1: 'Unsupported Version Number',
      2: 'Bad Peer AS',
      3: 'Bad BGP Identifier',
      4: 'Unsupported Optional Parameter',
      6: 'Unacceptable Hold Time',
      7: 'Unsupported Capability',
      11: 'Role Mismatch',
    },
  ],
  3: [
    'UPDATE Message Error',
    {
      1: 'Malformed Attribute List',
      2: 'Unrecognized Well-known Attribute',
      3: 'Missing Well-known Attribute',
      4: 'Attribute Flags Error',
      5: 'Attribute Length Error',
      6: 'Invalid ORIGIN Attribute',
      8: 'Invalid NEXT_HOP Attribute',
      9: 'Optional Attribute Error',
      10: 'Invalid Network Field',
      11: 'Malformed AS_PATH',
    },
  ],
  4: ['Hold Timer Expired', {}],
  5: [
    'Finite State Machine Error',
    {
      1: 'Receive Unexpected Message in OpenSent State',
      2: 'Receive Unexpected Message in OpenConfirm State',
      3: 'Receive Unexpected Message in Established State',
    },
  ],
  6: [
    'Cease',
    {
      1: 'Maximum Number of Prefixes Reached',
      2: 'Administrative Shutdown',
      3: 'Peer De-configured',
      4: 'Administrative Reset',
      5: 'Connection Rejected',
      6: 'Other Configuration Change',
      7: 'Connection Collision Resolution',
      8: 'Out of Resources',
      9: 'Hard Reset',
      10: 'BFD Down',
    },
  ],
  7: ['ROUTE-REFRESH Message Error', { 1: 'Invalid Message Length' }],
};

/** "Cease / Administrative Shutdown": the name of a NOTIFICATION for logs and status. */
export function describeNotification(code: number, subcode: number): string {
  const entry = CODES[code];
  if (!entry) return `Unknown error code ${code} / subcode ${subcode}`;
  const [name, subs] = entry;
  if (subcode === 0) return name;
  return `${name} / ${subs[subcode] ?? `subcode ${subcode}`}`;
}
