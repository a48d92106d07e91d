export { reflectorSpeakerConfig, reflectorConfigSchema, type ReflectorConfigInput } from './config';
export { reflectorTopology, TopologyError, type ReflectorWorld } from './topology';
export { ReflectorResources, REFLECTOR_KINDS } from './resources';
export {
  Reflector,
  reflectorSpeakerSettings,
  type AppliedChange,
  type MakeSpeaker,
  type ReflectorSpeakerLike,
} from './reflector';
export { DatastoreReflector, type DatastoreReflectorOptions, type ReflectorStatus } from './daemon';
export {
  ClientSim,
  simPrefix,
  simPrefixIndex,
  type ClientSimOptions,
  type ClientSimResult,
  type SampledRoute,
} from './client-sim';
export { RR_HEALTH, rrHealthAddress, serveRrHealth, type RrHealth } from './health';
