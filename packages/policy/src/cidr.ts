// Addresses as the policy model reads them: one reader for the whole product
// (@tortie/netaddr), so the evaluator, IPAM and the API agree on every textual form.
import { cidrProblem, ipInNet, ipVersionOf } from '@tortie/netaddr';

export { cidrProblem, ipInNet };

export function ipVersion(ip: string): 4 | 6 | 0 {
  return ipVersionOf(ip);
}
