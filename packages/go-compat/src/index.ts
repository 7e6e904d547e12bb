/** The Go behaviour NSQ's programs show their users, byte for byte. */
export { formatHostPort, parseHostPort } from './address.js';
export {
  applyFlagValues,
  type ConfigurableFlag,
  FlagError,
  FlagErrorCode,
  type FlagSpec,
  type FlagType,
  type FlagValue,
  formatGoDuration,
  formatGoUsage,
  isBoolFlag,
  type OptionFlag,
  type ParsedFlags,
  type ParseGoFlagsOptions,
  parseGoBool,
  parseGoDuration,
  parseGoFlags,
  type ResolvedFlags,
  resolveFlags,
  unknownConfigKeys,
} from './go-flags.js';
export { goQuote, goQuoteText, parseBase10 } from './go-format.js';
export { boolParam, firstValue, type GoQuery, goUnescape, parseGoQuery } from './go-query.js';
export { createLogger, LOG_LEVELS, type Logger, type LogLevel, parseLogLevel } from './logger.js';
