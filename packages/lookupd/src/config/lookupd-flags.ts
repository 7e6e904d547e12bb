import { hostname } from 'node:os';
import {
  applyFlagValues,
  FlagError,
  FlagErrorCode,
  formatGoUsage,
  type OptionFlag,
  resolveFlags,
} from '@nsq-ts/go-compat';
import { type DaemonArgs, HTTP_AUTH_FLAGS, logLevelFlag, readDaemonFlags } from '@nsq-ts/server-kit';
import { defaultLookupdOptions, type LookupdOptions } from '../options.js';

export { lookupdVersionLine } from '../version.js';

/** nsq-spec §4.3: Go flag syntax; `--config` TOML values apply only to flags not given on the command line. */

type OptionKey = Exclude<keyof LookupdOptions, 'maxIdentifyBodyBytes'>;

interface LookupdFlag extends OptionFlag<LookupdOptions> {
  /** null for flags that steer the program (`config`, `version`) or do nothing (`verbose`). */
  readonly option: OptionKey | null;
}

const DEFAULTS = defaultLookupdOptions();
/** Two of nsqd's 15 s PING intervals: one late PING must not drop a healthy nsqd's registrations. */
const MIN_TCP_READ_TIMEOUT_MS = 30_000;

// In NSQ's order; the usage text sorts it by name.
const TABLE: readonly Omit<LookupdFlag, 'configKeys'>[] = [
  { spec: { name: 'version', type: 'bool', default: false, usage: 'print version string' }, option: null },
  { spec: { name: 'config', type: 'string', default: '', usage: 'path to config file' }, option: null },
  {
    spec: logLevelFlag(DEFAULTS.logLevel),
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
  { spec: HTTP_AUTH_FLAGS.token, option: 'httpAuthTokens' },
  { spec: HTTP_AUTH_FLAGS.reads, option: 'httpAuthReads' },
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

/** Each flag but `version` and `config` is set in the config file by its name with `_` for `-`. */
export const LOOKUPD_FLAGS: readonly LookupdFlag[] = TABLE.map((f) => ({
  ...f,
  configKeys: f.spec.name === 'version' || f.spec.name === 'config' ? [] : [f.spec.name.replaceAll('-', '_')],
}));

/** The text `nsqlookupd -h` prints. */
export function lookupdUsage(): string {
  return formatGoUsage(
    'nsqlookupd',
    LOOKUPD_FLAGS.map((f) => f.spec),
  );
}

export type LookupdArgs = DaemonArgs<LookupdOptions>;

/** Reads nsqlookupd's command line (without `node` and the script). Throws FlagError. */
export function parseLookupdArgs(argv: readonly string[]): LookupdArgs {
  const read = readDaemonFlags('nsqlookupd', LOOKUPD_FLAGS, argv);
  if (read.kind !== 'run') return read;
  // Flags that set no option are not resolved: a config value for `verbose` is not even parsed.
  const settable = LOOKUPD_FLAGS.filter((f) => f.option !== null);
  const { values } = resolveFlags(settable, read.parsed, read.config);

  const options = defaultLookupdOptions();
  applyFlagValues(options, settable, values);
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
  return { kind: 'run', options, warnings: read.warnings };
}
