export * from './types';
export { createLogger, type Logger } from './log';
export * from './constants';
export { parsePrefix, prefixAfi, formatIpv6, parseIpv6 } from './prefix';
export * from './codec';
export {
  parseCommunity,
  parseStandardCommunity,
  parseLargeCommunity,
  isCommunity,
  formatCommunity,
  hasCommunity,
  withCommunities,
  type Community,
} from './community';
export * from './rib';
export { fsmStep, initialFsm, type FsmState, type FsmEvent, type FsmAction } from './fsm';
export {
  parseSpeakerConfig,
  ConfigError,
  type SpeakerConfig,
  type SpeakerConfigInput,
  type PeerConfig,
  type PeerConfigInput,
} from './config';
export {
  BgpSpeaker,
  peerKey,
  routeView,
  formatAsPath,
  type RouteView,
  type SpeakerOptions,
} from './speaker';
export { controlRequest } from './control';
export { SpeakerProcess, type PeerRow, type RouteRow, type Spawn } from './speaker-process';
export { formatTable } from './table';
