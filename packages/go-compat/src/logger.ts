/** NSQ's log levels, least severe first; a logger prints its level and everything above it. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A log level as the daemons' `--log-level` takes it, in any case. Throws Error naming the levels. */
export function parseLogLevel(raw: string): LogLevel {
  const level = LOG_LEVELS.find((l) => l === raw.toLowerCase());
  if (level === undefined) throw new Error(`invalid log level '${raw}' (debug, info, warn, error, fatal)`);
  return level;
}

/** NSQ-style log lines: `[nsqd] 2026/01/02 15:04:05.000000 INFO: text`. */
export interface Logger {
  level: LogLevel;
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

const LABELS: Record<LogLevel, string> = {
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'FATAL',
};

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Go's log.Lmicroseconds stamp in local time: `2006/01/02 15:04:05.000000`. */
function stamp(d: Date): string {
  return `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds() * 1000, 6)}`;
}

/** The package does no I/O: the caller's `write` is the sink. */
export function createLogger(prefix: string, level: LogLevel, write: (line: string) => void): Logger {
  const logger: Logger = {
    level,
    debug: (m) => log('debug', m),
    info: (m) => log('info', m),
    warn: (m) => log('warn', m),
    error: (m) => log('error', m),
  };
  function log(at: LogLevel, msg: string): void {
    if (LOG_LEVELS.indexOf(at) < LOG_LEVELS.indexOf(logger.level)) return;
    write(`${prefix}${stamp(new Date())} ${LABELS[at]}: ${msg}\n`);
  }
  return logger;
}
