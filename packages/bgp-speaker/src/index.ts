export * from './types';
export { createLogger, type Logger } from './log';
