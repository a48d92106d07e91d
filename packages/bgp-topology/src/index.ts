export * from './types';
export { bgpNodeFacts } from './node';
export { computeBgp, type BgpWorld } from './compute';
export { canonicalIp, compareIps, splitPeerIp, type Family } from './address';
export { waitsFor } from './context';
export {
  bgpSettings,
  hashRouterId,
  routerIdFor,
  restartSeconds,
  BGP_PORT,
  DEFAULT_ASN,
  DEFAULT_RESTART_S,
  DEFAULT_NORMAL_ROUTE_PRIORITY,
  type BgpLogLevel,
  type BgpSettings,
} from './settings';
export {
  GRACEFUL_RESTART,
  normalRoutePriority,
  peerConfig,
  planBgp,
  speakerConfig,
  type BgpPlan,
} from './speaker';
export { communityRules, type CommunityRule } from './communities';
export { logMissingPasswords, resolvePasswords, secretFiles, type SecretReader } from './passwords';
export { activeLocalPeers, type LocalWorkload } from './local-workloads';
