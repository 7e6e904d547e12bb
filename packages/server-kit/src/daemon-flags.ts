import {
  type ConfigurableFlag,
  type FlagSpec,
  formatGoUsage,
  type LogLevel,
  type ParsedFlags,
  parseGoFlags,
  parseLogLevel,
  unknownConfigKeys,
} from '@nsq-ts/go-compat';
import { type ConfigTable, loadConfigFile } from './config-file.js';

export type DaemonFlags =
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version' }
  | {
      readonly kind: 'run';
      readonly parsed: ParsedFlags;
      readonly config: ConfigTable;
      /** Config keys that set no flag (NSQ ignores them silently; we say so). */
      readonly warnings: string[];
    };

/** Go flag syntax, then `--version`, then the `--config` TOML file; `flags` must define both. */
export function readDaemonFlags(
  program: string,
  flags: readonly ConfigurableFlag[],
  argv: readonly string[],
): DaemonFlags {
  const specs = flags.map((f) => f.spec);
  const parsed = parseGoFlags(specs, argv, { positionals: 'error' });
  if (parsed.help) return { kind: 'help', text: formatGoUsage(program, specs) };
  if (parsed.values.get('version') === true) return { kind: 'version' };

  const configPath = parsed.values.get('config') as string;
  const config = configPath === '' ? {} : loadConfigFile(configPath);
  const warnings = unknownConfigKeys(flags, config).map(
    (key) => `config key ${key} is not an ${program} option; ignored`,
  );
  return { kind: 'run', parsed, config, warnings };
}

/** The flags of both daemons' HTTP bearer tokens (HttpAuthOptions; not in NSQ). */
export const HTTP_AUTH_FLAGS: { readonly token: FlagSpec; readonly reads: FlagSpec } = {
  token: {
    name: 'http-auth-token',
    type: 'string-array',
    default: [],
    defaultText: '',
    usage:
      'bearer token required by state-changing HTTP endpoints (may be given multiple times; default none, i.e. open)',
  },
  reads: {
    name: 'http-auth-reads',
    type: 'bool',
    default: false,
    usage: 'require --http-auth-token for HTTP reads (GET) too',
  },
};

/** The daemons' `--log-level`. */
export function logLevelFlag(defaultLevel: LogLevel): FlagSpec {
  return {
    name: 'log-level',
    type: 'custom',
    default: defaultLevel,
    parse: parseLogLevel,
    usage: 'set log verbosity: debug, info, warn, error, or fatal',
  };
}
