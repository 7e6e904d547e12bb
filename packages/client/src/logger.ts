/** go-nsq's SetLogger: background problems are logged even when no listener sees them. `console` fits. */
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
