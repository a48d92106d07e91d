import { getSystemErrorMap } from 'node:util';

const errnoNames = new Map<number, [string, string]>();
for (const [neg, v] of getSystemErrorMap()) errnoNames.set(-neg, v);

/** "EEXIST (file already exists)" for 17. */
export function errnoText(errno: number): string {
  const e = errnoNames.get(errno);
  return e ? `${e[0]} (${e[1]})` : `errno ${errno}`;
}

export function errnoCode(errno: number): string {
  return errnoNames.get(errno)?.[0] ?? `E${errno}`;
}

/** A request the kernel refused: what was asked, the errno, and the kernel's own words. */
export class NetlinkError extends Error {
  readonly code: string;
  constructor(
    /** What was asked, as `ip` would say it: "route replace 10.0.0.0/26 via 192.168.1.2 proto 80". */
    readonly op: string,
    readonly errno: number,
    readonly detail?: string,
  ) {
    super(`netlink ${op}: ${errnoText(errno)}${detail ? `: ${detail}` : ''}`);
    this.name = 'NetlinkError';
    this.code = errnoCode(errno);
  }
}
