import { hostname } from 'node:os';
import {
  FlagError,
  FlagErrorCode,
  type FlagSpec,
  type FlagValue,
  flagValueFromConfig,
  formatGoUsage,
  LOG_LEVELS,
  type LogLevel,
  parseGoFlags,
} from '@nsq-ts/protocol';
import { type DaemonArgs, loadConfigFile } from '@nsq-ts/server-kit';
import { defaultLookupdOptions, type LookupdOptions } from '../options.js';

export { lookupdVersionLine } from '../version.js';

/**
 * nsqlookupd's command line and config file (nsq-spec §4.3, NSQ's apps/nsqlookupd): Go flag
 * syntax, `--version`, then the `--config` TOML file (keys are flag names with `_`), whose values
 * apply only to flags not given on the command line.
 */

type OptionKey = Exclude<keyof LookupdOptions, 'maxIdentifyBodyBytes'>;

interface LookupdFlag {
  readonly spec: FlagSpec;
  /** null for flags that steer the program (`config`, `version`) or do nothing (`verbose`). */
  readonly option: OptionKey | null;
}

const DEFAULTS = defaultLookupdOptions();
/**
 * nsqd PINGs every 15 s; a deadline of two intervals lets one PING be late without cutting a
 * healthy nsqd (and dropping its registrations until it reconnects).
 */
const MIN_TCP_READ_TIMEOUT_MS = 30_000;

function parseLogLevel(raw: string): LogLevel {
  const level = LOG_LEVELS.find((l) => l === raw.toLowerCase());
  if (level === undefined) throw new Error(`invalid log level '${raw}' (debug, info, warn, error, fatal)`);
  return level;
}

/** The table, in NSQ's order; the usage text sorts it by name. */
export const LOOKUPD_FLAGS: readonly LookupdFlag[] = [
  { spec: { name: 'version', type: 'bool', default: false, usage: 'print version string' }, option: null },
  { spec: { name: 'config', type: 'string', default: '', usage: 'path to config file' }, option: null },
  {
    spec: {
      name: 'log-level',
      type: 'custom',
      default: DEFAULTS.logLevel,
      parse: parseLogLevel,
      usage: 'set log verbosity: debug, info, warn, error, or fatal',
    },
    option: 'logLevel',
  },
  {
    spec: { name: 'log-prefix', type: 'string', default: DEFAULTS.logPrefix, usage: 'log message prefix' },
    option: 'logPrefix',
  },
  {
    spec: { name: 'verbose', type: 'bool', default: false, usage: '[deprecated] has no effect, use --log-level' },
    option: null,
  },
  {
    spec: {
      name: 'tcp-address',
      type: 'string',
      default: DEFAULTS.tcpAddress,
      usage: '<addr>:<port> to listen on for TCP clients',
    },
    option: 'tcpAddress',
  },
  {
    spec: {
      name: 'http-address',
      type: 'string',
      default: DEFAULTS.httpAddress,
      usage: '<addr>:<port> to listen on for HTTP clients',
    },
    option: 'httpAddress',
  },
  {
    spec: {
      name: 'broadcast-address',
      type: 'string',
      default: '',
      defaultText: hostname(),
      usage: 'address of this lookupd node, (default to the OS hostname)',
    },
    option: 'broadcastAddress',
  },
  {
    spec: {
      name: 'inactive-producer-timeout',
      type: 'duration',
      default: DEFAULTS.inactiveProducerTimeoutMs,
      usage: 'duration of time a producer will remain in the active list since its last ping',
    },
    option: 'inactiveProducerTimeoutMs',
  },
  {
    spec: {
      name: 'tombstone-lifetime',
      type: 'duration',
      default: DEFAULTS.tombstoneLifetimeMs,
      usage: 'duration of time a producer will remain tombstoned if registration remains',
    },
    option: 'tombstoneLifetimeMs',
  },

  // security extensions (not in NSQ)
  {
    spec: {
      name: 'tcp-read-timeout',
      type: 'duration',
      default: DEFAULTS.tcpReadTimeoutMs,
      usage: `TCP clients sending no whole command for this long are closed; 0 or at least ${MIN_TCP_READ_TIMEOUT_MS / 1000}s`,
    },
    option: 'tcpReadTimeoutMs',
  },
  {
    spec: {
      name: 'http-auth-token',
      type: 'string-array',
      default: [],
      defaultText: '',
      usage:
        'bearer token required by state-changing HTTP endpoints (may be given multiple times; default none, i.e. open)',
    },
    option: 'httpAuthTokens',
  },
  {
    spec: {
      name: 'http-auth-reads',
      type: 'bool',
      default: false,
      usage: 'require --http-auth-token for HTTP reads (GET) too',
    },
    option: 'httpAuthReads',
  },
  {
    spec: {
      name: 'tls-cert',
      type: 'string',
      default: '',
      usage: 'path to certificate file (TLS on the TCP listener)',
    },
    option: 'tlsCert',
  },
  {
    spec: { name: 'tls-key', type: 'string', default: '', usage: 'path to key file (TLS on the TCP listener)' },
    option: 'tlsKey',
  },
];

const SPECS: readonly FlagSpec[] = LOOKUPD_FLAGS.map((f) => f.spec);

/** The text `nsqlookupd -h` prints. */
export function lookupdUsage(): string {
  return formatGoUsage('nsqlookupd', SPECS);
}

export type LookupdArgs = DaemonArgs<LookupdOptions>;

/** Reads nsqlookupd's command line (without `node` and the script). Throws FlagError. */
export function parseLookupdArgs(argv: readonly string[]): LookupdArgs {
  const parsed = parseGoFlags(SPECS, argv, { positionals: 'error' });
  if (parsed.help) return { kind: 'help', text: lookupdUsage() };
  if (parsed.values.get('version') === true) return { kind: 'version' };

  const configPath = parsed.values.get('config') as string;
  const config = configPath === '' ? {} : loadConfigFile(configPath);
  const known = new Set(LOOKUPD_FLAGS.map((f) => configKey(f.spec.name)));
  const warnings = Object.keys(config)
    .filter((key) => !known.has(key) || key === 'version' || key === 'config')
    .map((key) => `config key ${key} is not an nsqlookupd option; ignored`);

  const options = defaultLookupdOptions();
  const fields = options as unknown as Record<OptionKey, FlagValue>;
  for (const flag of LOOKUPD_FLAGS) {
    if (flag.option === null) continue;
    const name = flag.spec.name;
    const key = configKey(name);
    let value = parsed.values.get(name) as FlagValue;
    if (!parsed.set.has(name) && Object.hasOwn(config, key)) value = flagValueFromConfig(flag.spec, key, config[key]);
    fields[flag.option] = value;
  }
  const fail = (flag: string, message: string) => new FlagError(FlagErrorCode.InvalidOption, message, flag);
  const durations = {
    'inactive-producer-timeout': options.inactiveProducerTimeoutMs,
    'tombstone-lifetime': options.tombstoneLifetimeMs,
    'tcp-read-timeout': options.tcpReadTimeoutMs,
  };
  for (const [name, value] of Object.entries(durations)) {
    if (!(value >= 0)) throw fail(name, `--${name} must not be negative`);
  }
  if (options.tcpReadTimeoutMs > 0 && options.tcpReadTimeoutMs < MIN_TCP_READ_TIMEOUT_MS) {
    throw fail('tcp-read-timeout', `--tcp-read-timeout must be 0 or at least ${MIN_TCP_READ_TIMEOUT_MS / 1000}s`);
  }
  options.httpAuthTokens = options.httpAuthTokens.filter((t) => t !== '');
  if (options.httpAuthReads && options.httpAuthTokens.length === 0) {
    throw fail('http-auth-reads', '--http-auth-reads needs --http-auth-token');
  }
  if ((options.tlsCert === '') !== (options.tlsKey === '')) {
    throw fail(options.tlsCert === '' ? 'tls-cert' : 'tls-key', '--tls-cert and --tls-key must be given together');
  }
  return { kind: 'run', options, warnings };
}

function configKey(flagName: string): string {
  return flagName.replaceAll('-', '_');
}
