// metav1.Status errors, as the Kubernetes API returns them.
import { type Cause } from './schema';

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
    /** The Status's ListMeta (a 410 for a compacted continue token carries a new token). */
    readonly listMeta: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function statusBody(e: ApiError): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: e.listMeta,
    status: 'Failure',
    message: e.message,
    reason: e.reason,
    ...(e.details ? { details: e.details } : {}),
    code: e.code,
  };
}

/** How a type is named in messages: `pods`, `networkpolicies.networking.k8s.io`. */
export interface Named {
  plural: string;
  group: string;
  kind?: string;
}
const resourceOf = (t: Named): string => (t.group ? `${t.plural}.${t.group}` : t.plural);
const details = (t: Named, name: string) => ({
  name,
  ...(t.group ? { group: t.group } : {}),
  kind: t.plural,
});

export const notFound = (t: Named, name: string): ApiError =>
  new ApiError(404, 'NotFound', `${resourceOf(t)} "${name}" not found`, details(t, name));
export const alreadyExists = (t: Named, name: string): ApiError =>
  new ApiError(409, 'AlreadyExists', `${resourceOf(t)} "${name}" already exists`, details(t, name));
export const conflict = (
  t: Named,
  name: string,
  why = 'the object has been modified; please apply your changes to the latest version and try again',
): ApiError =>
  new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${resourceOf(t)} "${name}": ${why}`,
    details(t, name),
  );
export const badRequest = (message: string): ApiError => new ApiError(400, 'BadRequest', message);
export const gone = (message: string): ApiError => new ApiError(410, 'Expired', message);

/** 422 Invalid with one cause per field, worded as kube-apiserver words it. */
export function invalid(t: Named & { kind: string }, name: string, causes: Cause[]): ApiError {
  const lines = causes.map((c) => `${c.field}: ${c.message}`);
  const what = `${t.kind}${t.group ? `.${t.group}` : ''} "${name}" is invalid`;
  return new ApiError(
    422,
    'Invalid',
    `${what}: ${lines.length === 1 ? lines[0] : `[${lines.join(', ')}]`}`,
    { name, ...(t.group ? { group: t.group } : {}), kind: t.kind, causes },
  );
}
