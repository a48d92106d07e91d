export * from './types';
export {
  Agent,
  AGENT_KINDS,
  type AgentParts,
  type DataplaneManager,
  type CalcGraphLike,
} from './agent';
export * from './calc';
export { nodeFacts, type NodeFacts } from './calc/routes';
export { policyWorld } from './policy-world';
export { DataplaneState } from './dataplane-state';
export { BgpGlue, type LearnedRouteSink, type SpeakerLike } from './bgp/glue';
// the BGP topology moved to its own package; re-exported so felix's users keep working
export {
  bgpNodeFacts,
  planBgp,
  peerConfig,
  speakerConfig,
  GRACEFUL_RESTART,
  type BgpNode,
  type BgpPlan,
} from '@tortie/bgp-topology';
export * from './dataplane/acl';
export * from './dataplane/nft-acl';
export * from './dataplane/services';
export {
  NetManager,
  kernelRoute,
  vxlanDeviceCommands,
  ipipDeviceCommands,
  vtepEntries,
  tunnelMtu,
} from './linux/net-manager';
export { RouteTable, PROTO_TORTIE, PROTO_TORTIE_BGP, type KernelRoute } from './linux/route-table';
export { ProcessRunner, RecordingRunner, type CommandRunner } from './linux/runner';
export { openNetlink } from './linux/netlink';
export { resolveConfig, type AgentConfig } from './config';
export { registerNode, vtepMac } from './node-registration';
export { agentMetrics, serveOps } from './ops/server';
