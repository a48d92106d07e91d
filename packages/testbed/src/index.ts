export {
  Netns,
  Testbed,
  Fabric,
  link,
  run,
  stopProcess,
  teardownOnSignals,
  tearingDown,
  waitUntil,
  type LinkOptions,
  type RunResult,
} from './netns';
export { SLOW } from './slow';
export { runInterrupted, sessionMembers, type InterruptedRun } from './interrupt';
export { skipReason, missingNeeds, python3, KNOWN_NEEDS, type Need } from './capabilities';
export * from './bird';
export * from './frr';
export * from './gobgp';
export {
  describeIf,
  decideSkip,
  readAllowedSkips,
  onCi,
  type AllowedSkip,
  type SkipDecision,
} from './jest';
export { Daemon } from './daemon';
export { Etcd, EtcdCluster } from './etcd';
export { HostForward, PortForward } from './forward';
export {
  runInVm,
  runJestInVm,
  vmMissing,
  findKernel,
  type Kernel,
  type VmOptions,
  type VmResult,
  type JestInVmOptions,
  type JestVmResult,
  type JestReport,
  type JestFileResult,
  type JestAssertion,
} from './vm';
export {
  OciBundle,
  type OciContainer,
  type OciMount,
  type OciRunOptions,
  type OciRunResult,
} from './oci';
