import { LOG_LEVELS, type LogLevel } from './options.js';

/** NSQ-style log lines on stderr: `[nsqd] 2026/01/02 15:04:05.000000 INFO: text`. */
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

function stamp(d: Date): string {
  return `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds() * 1000, 6)}`;
}

export function createLogger(
  prefix: string,
  level: LogLevel,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
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
