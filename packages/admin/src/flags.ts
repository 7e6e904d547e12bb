import { readFileSync } from 'node:fs';
import {
  FlagError,
  FlagErrorCode,
  type FlagSpec,
  formatGoUsage,
  type LogLevel,
  parseGoFlags,
  parseHostPort,
} from '@nsq-ts/go-compat';
import { type DaemonArgs, logLevelFlag } from '@nsq-ts/server-kit';
import { type AdminOptions, defaultAdminOptions } from './options.js';

export { adminVersionLine } from './version.js';

/** nsqadmin's command line (NSQ's apps/nsqadmin flags, the ones this nsqadmin implements). */

const DEFAULTS = defaultAdminOptions();
/** Below this the sampler would mostly measure its own reads. */
const MIN_SAMPLE_INTERVAL_MS = 10;

const SPECS: readonly FlagSpec[] = [
  { name: 'version', type: 'bool', default: false, usage: 'print version string' },
  logLevelFlag(DEFAULTS.logLevel),
  { name: 'log-prefix', type: 'string', default: DEFAULTS.logPrefix, usage: 'log message prefix' },
  {
    name: 'http-address',
    type: 'string',
    default: DEFAULTS.httpAddress,
    usage: '<addr>:<port> to listen on for HTTP clients',
  },
  { name: 'base-path', type: 'string', default: DEFAULTS.basePath, usage: 'URL base path' },
  {
    name: 'lookupd-http-address',
    type: 'string-array',
    default: [],
    usage: 'lookupd HTTP address (may be given multiple times)',
  },
  {
    name: 'nsqd-http-address',
    type: 'string-array',
    default: [],
    usage: 'nsqd HTTP address (may be given multiple times)',
  },
  {
    name: 'admin-user',
    type: 'string-array',
    default: [],
    usage: 'admin user (may be given multiple times; if specified, only these users may perform admin actions)',
  },
  {
    name: 'acl-http-header',
    type: 'string',
    default: DEFAULTS.aclHttpHeader,
    usage: 'HTTP header to check for authenticated admin users',
  },
  {
    name: 'notification-http-endpoint',
    type: 'string',
    default: '',
    usage: 'HTTP endpoint (fully qualified) to which POST notifications of admin actions will be sent',
  },
  {
    name: 'http-client-request-timeout',
    type: 'duration',
    default: DEFAULTS.httpClientRequestTimeoutMs,
    usage: 'timeout for HTTP request',
  },
  {
    name: 'sample-interval',
    type: 'duration',
    default: DEFAULTS.sampleIntervalMs,
    usage: 'how often to read every nsqd for rates, their history and the live view (nsq-ts)',
  },
  {
    name: 'rate-history',
    type: 'duration',
    default: DEFAULTS.rateHistoryMs,
    usage: 'how much rate history to keep for the charts (nsq-ts)',
  },
  {
    name: 'http-auth-token',
    type: 'string',
    default: '',
    usage: 'bearer token sent to nsqd and nsqlookupd (their --http-auth-token)',
  },
  {
    name: 'admin-password-file',
    type: 'string',
    default: '',
    usage: 'file holding the password that admin actions require (built-in login; default none)',
  },
];

/** The text `nsqadmin -h` prints. */
export function adminUsage(): string {
  return formatGoUsage('nsqadmin', SPECS);
}

function invalid(flag: string, message: string): FlagError {
  return new FlagError(FlagErrorCode.InvalidOption, message, flag);
}

/** The password in `path` (its first line); '' for no file. */
function readPasswordFile(path: string): string {
  if (path === '') return '';
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw invalid('admin-password-file', `--admin-password-file: ${err instanceof Error ? err.message : String(err)}`);
  }
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '') throw invalid('admin-password-file', `--admin-password-file: ${path} holds no password`);
  return password;
}

/** Reads nsqadmin's command line (without `node` and the script). Throws FlagError. */
export function parseAdminArgs(argv: readonly string[]): DaemonArgs<AdminOptions> {
  const parsed = parseGoFlags(SPECS, argv, { positionals: 'error' });
  if (parsed.help) return { kind: 'help', text: adminUsage() };
  if (parsed.values.get('version') === true) return { kind: 'version' };
  const str = (name: string): string => parsed.values.get(name) as string;
  const list = (name: string): string[] => [...(parsed.values.get(name) as string[])];
  const options: AdminOptions = {
    ...defaultAdminOptions(),
    httpAddress: str('http-address'),
    basePath: str('base-path'),
    lookupdHttpAddresses: list('lookupd-http-address'),
    nsqdHttpAddresses: list('nsqd-http-address'),
    adminUsers: list('admin-user'),
    aclHttpHeader: str('acl-http-header'),
    notificationHttpEndpoint: str('notification-http-endpoint'),
    httpClientRequestTimeoutMs: parsed.values.get('http-client-request-timeout') as number,
    sampleIntervalMs: parsed.values.get('sample-interval') as number,
    rateHistoryMs: parsed.values.get('rate-history') as number,
    logLevel: str('log-level') as LogLevel,
    logPrefix: str('log-prefix'),
    httpAuthToken: str('http-auth-token'),
    adminPassword: readPasswordFile(str('admin-password-file')),
  };
  if (options.lookupdHttpAddresses.length === 0 && options.nsqdHttpAddresses.length === 0) {
    throw invalid('lookupd-http-address', '--nsqd-http-address or --lookupd-http-address required');
  }
  for (const [flag, addresses] of [
    ['http-address', [options.httpAddress]],
    ['lookupd-http-address', options.lookupdHttpAddresses],
    ['nsqd-http-address', options.nsqdHttpAddresses],
  ] as const) {
    for (const address of addresses) {
      try {
        parseHostPort(address);
      } catch (err) {
        throw invalid(flag, `--${flag}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  if (options.sampleIntervalMs < MIN_SAMPLE_INTERVAL_MS) {
    throw invalid('sample-interval', `--sample-interval must be at least ${MIN_SAMPLE_INTERVAL_MS}ms`);
  }
  if (options.rateHistoryMs < options.sampleIntervalMs) {
    throw invalid('rate-history', '--rate-history must be at least --sample-interval');
  }
  if (options.notificationHttpEndpoint !== '' && !/^https?:\/\//.test(options.notificationHttpEndpoint)) {
    throw invalid('notification-http-endpoint', '--notification-http-endpoint must be an http(s) URL');
  }
  return { kind: 'run', options, warnings: [] };
}
