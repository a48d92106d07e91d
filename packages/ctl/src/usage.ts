// What tortiectl's argument parsing needs before any command runs: kept free of heavy
// imports (the datastore clients, the API schemas, the BGP speaker), so that --help,
// version and a usage error answer at once; each command loads its own modules.

/** A mistake in the command line: printed as an error, exit 1, like kubectl. */
export class UsageError extends Error {}

/** The node agent's sockets (its TORTIE_BGP_SOCKET and TORTIE_STATUS_SOCKET defaults). */
export const DEFAULT_BGP_SOCKET = '/var/run/tortie/bgp.sock';
export const DEFAULT_STATUS_SOCKET = '/var/run/tortie/status.sock';
