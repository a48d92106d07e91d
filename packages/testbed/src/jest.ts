// jest glue, kept out of the library entry so the library does not need jest globals.
import { skipReason, type Need } from './capabilities';

/** describe() when everything in `needs` is here, else describe.skip with the reason printed once. */
export function describeIf(needs: Need[], name: string, fn: () => void): void {
  const why = skipReason(needs);
  if (why) {
    process.stderr.write(`skipping "${name}": ${why}\n`);
    describe.skip(name, fn);
  } else describe(name, fn);
}
