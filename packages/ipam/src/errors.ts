/** IPAM failures a caller can act on, with a code saying which. */
export class IpamError extends Error {
  constructor(
    readonly code: 'NoPool' | 'Exhausted' | 'InUse' | 'Invalid',
    message: string,
  ) {
    super(message);
    this.name = 'IpamError';
  }
}
