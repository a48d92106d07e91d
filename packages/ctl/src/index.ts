export {
  apply,
  create,
  replace,
  get,
  remove,
  resolveKind,
  UsageError,
  type Io,
  type GetOptions,
} from './commands';
export { loadPolicyWorld, policyExplain, EXPLAIN_EXIT } from './policy-explain';
export { peerType, type PeerStatus } from './node-status';
