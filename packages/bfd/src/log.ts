import winston from 'winston';

/** winston JSON on stderr with a `component` field; level from TORTIE_LOG_LEVEL. */
export function createLogger(component = 'bfd', level = process.env.TORTIE_LOG_LEVEL ?? 'info') {
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
