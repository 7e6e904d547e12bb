/**
 * Where a producer or consumer reports what goes wrong in the background: a handler that threw,
 * a lookupd that did not answer, a connection that failed or dropped (go-nsq's SetLogger). Every
 * such event is also delivered to a promise or an `error`/`disconnected` listener; the log makes
 * sure it is seen even when nobody listens. `console` fits.
 */
export interface Logger {
  warn(message: string): void;
  error(message: string): void;
}

/** The default: `nsq-ts WARN: …` / `nsq-ts ERROR: …` lines on stderr. */
export const stderrLogger: Logger = {
  warn: (message) => {
    process.stderr.write(`nsq-ts WARN: ${message}\n`);
  },
  error: (message) => {
    process.stderr.write(`nsq-ts ERROR: ${message}\n`);
  },
};

const silent: Logger = { warn: () => {}, error: () => {} };

/** The `logger` option resolved: unset → stderr, null → nothing. */
export function resolveLogger(option: Logger | null | undefined): Logger {
  if (option === null) return silent;
  return option ?? stderrLogger;
}
