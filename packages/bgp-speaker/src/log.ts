import winston from 'winston';

/**
 * The speaker's logger: winston JSON on stderr with a `component` field, so that a
 * daemon's stdout stays free for its CLI output. Level from TORTIE_LOG_LEVEL.
 */
export function createLogger(component: string, level = process.env.TORTIE_LOG_LEVEL ?? 'info') {
  return winston.createLogger({
    level,
    defaultMeta: { component },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [
      new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) }),
    ],
  });
}

export type Logger = winston.Logger;
