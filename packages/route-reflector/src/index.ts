export { reflectorSpeakerConfig, reflectorConfigSchema, type ReflectorConfigInput } from './config';
