// The ACL (iptables + ipset) side of the node agent's dataplane.
export {
  AclManager,
  linuxAclManager,
  type AclManagerOptions,
  type AclStats,
  type PolicyFailure,
  type TableName,
} from './acl-manager';
export { aclConfig, DEFAULT_ACL_CONFIG, type AclConfig } from './acl-config';
export { appendLines, hashOf, ruleHashes, type Chain } from './chain';
export {
  endpointChain,
  failClosedChain,
  rulesChain,
  type Direction,
  type EndpointChainSpec,
} from './endpoint-chains';
export { runCommand, type Exec, type ExecResult } from './exec';
export { FakeIpset, FakeIptables } from './fakes';
export {
  detectBackend,
  iptablesBinaries,
  ProcessIptablesRunner,
  type Backend,
  type IptablesRunner,
} from './iptables-runner';
export { IptablesTable, type Isolation, type Rejection } from './iptables-table';
export { Ipsets, ProcessIpsetRunner, type IpsetRunner } from './ipsets';
export { allocateMarks, DEFAULT_MARK_MASK, type MarkBits } from './marks';
export {
  chainName,
  ipsetName,
  internalIpsetName,
  lengthLimited,
  STATIC,
  type Family,
} from './names';
export {
  parseSave,
  planRestore,
  type Hook,
  type RestorePlan,
  type TableState,
} from './restore-plan';
export { renderRule, portChunks, type RenderedRule } from './rule-render';
export {
  filterChains,
  natChains,
  rawChains,
  mangleChains,
  failsafeChain,
  HOOKS,
  type FilterInput,
  type StageInput,
} from './static-chains';
