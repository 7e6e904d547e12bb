import { createLogger as createNsqLogger, type Logger, type LogLevel } from '@nsq-ts/go-compat';

export type { Logger };

/** NSQ-style log lines on stderr (or `write`): `[nsqd] 2026/01/02 15:04:05.000000 INFO: text`. */
export function createLogger(
  prefix: string,
  level: LogLevel,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  return createNsqLogger(prefix, level, write);
}
