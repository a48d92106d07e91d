// Which members of a group make a transaction fail, found by bisection (group testing):
// the caller knows the group fails when brought back whole; halves are brought back in
// turn, a half that fails is split again, down to single members. With k bad members
// among n this costs about 2k·log2(n) tries. Pure apart from the `tryBack` callback.

export interface Failing<T> {
  item: T;
  /** The error of the try that brought this member back alone. */
  error: Error;
}

/**
 * `tryBack(members)` brings members back (on top of every member brought back before)
 * and returns the error if that failed, in which case it must leave them out again.
 * `group` is known to fail with `groupError` when brought back whole.
 */
export async function findFailing<T>(
  group: T[],
  groupError: Error,
  tryBack: (members: T[]) => Promise<Error | undefined>,
): Promise<Array<Failing<T>>> {
  if (group.length === 1) return [{ item: group[0], error: groupError }];
  const mid = Math.ceil(group.length / 2);
  const out: Array<Failing<T>> = [];
  for (const half of [group.slice(0, mid), group.slice(mid)]) {
    const error = await tryBack(half);
    if (error) out.push(...(await findFailing(half, error, tryBack)));
  }
  return out;
}
