export * from './types';
export { bgpNodeFacts } from './node';
export { computeBgp, compareIps, splitPeerIp, DEFAULT_ASN, type BgpWorld } from './compute';
export { GRACEFUL_RESTART, peerConfig, planBgp, speakerConfig, type BgpPlan } from './speaker';
