import { type FlagSpec, type FlagValue, formatGoUsage, isBoolFlag, parseGoFlags } from '@nsq-ts/go-compat';

/** A failure to report: `message` on stderr and `exitCode` (2 for a bad command line, as Go's flag package). */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

export const LOOKUPD_HTTP: FlagSpec = {
  name: 'lookupd-http-address',
  type: 'string-array',
  default: [],
  usage: 'lookupd HTTP `address` (may be given multiple times)',
};
export const NSQD_HTTP: FlagSpec = {
  name: 'nsqd-http-address',
  type: 'string-array',
  default: [],
  usage: 'nsqd HTTP `address` (may be given multiple times), used when there is no lookupd',
};
export const NSQD_TCP: FlagSpec = {
  name: 'nsqd-tcp-address',
  type: 'string-array',
  default: [],
  usage: 'nsqd TCP `address` (may be given multiple times), used when there is no lookupd',
};

export const HTTP_AUTH_TOKEN: FlagSpec = {
  name: 'http-auth-token',
  type: 'string',
  default: '',
  usage: 'bearer `token` for nsqd/nsqlookupd --http-auth-token (default: $NSQ_HTTP_AUTH_TOKEN)',
};

/** What one subcommand accepts, for parsing and its `--help`. */
export interface CommandSpec {
  readonly name: string;
  /** Positional arguments, e.g. `<topic> [channel]`. */
  readonly synopsis: string;
  readonly summary: string;
  readonly flags: readonly FlagSpec[];
  readonly minArgs: number;
  readonly maxArgs: number;
}

export interface Args {
  readonly positionals: string[];
  readonly help: boolean;
  string(name: string): string;
  strings(name: string): string[];
  number(name: string): number;
  bool(name: string): boolean;
  /** Whether the flag was given on the command line (not just its default). */
  isSet(name: string): boolean;
}

/**
 * Parses a subcommand's arguments with the daemons' Go-style flag parser. Unlike Go, flags may
 * come after positionals (`nsq tail events -n 5`), so flags are separated first: a word starting
 * with `-` is a flag (a lone `-` is the stdin argument), a non-bool flag without `=` takes the next
 * word, and everything after `--` is positional. Throws CliError(…, 2).
 */
export function parseArgs(spec: CommandSpec, argv: readonly string[]): Args {
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  const flagArgs: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.length < 2 || arg[0] !== '-') {
      positionals.push(arg);
      continue;
    }
    flagArgs.push(arg);
    const body = arg.replace(/^--?/, '');
    const flag = byName.get(body);
    if (!body.includes('=') && flag !== undefined && !isBoolFlag(flag) && i + 1 < argv.length) flagArgs.push(argv[++i]);
  }
  let parsed: ReturnType<typeof parseGoFlags>;
  try {
    parsed = parseGoFlags(spec.flags, flagArgs, { positionals: 'error' });
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err), 2);
  }
  if (!parsed.help) {
    if (positionals.length < spec.minArgs)
      throw new CliError(`missing arguments: nsq ${spec.name} ${spec.synopsis}`, 2);
    if (positionals.length > spec.maxArgs)
      throw new CliError(`unexpected argument ${JSON.stringify(positionals[spec.maxArgs])}`, 2);
  }
  const get = (name: string): FlagValue => {
    const v = parsed.values.get(name);
    if (v === undefined) throw new Error(`flag ${name} is not defined for nsq ${spec.name}`);
    return v;
  };
  return {
    positionals,
    help: parsed.help,
    string: (name) => String(get(name)),
    strings: (name) => (get(name) as string[]).slice(),
    number: (name) => Number(get(name)),
    bool: (name) => get(name) === true,
    isSet: (name) => parsed.set.has(name),
  };
}

/** `--help` text of a subcommand: synopsis, summary, then Go's flag listing. */
export function commandUsage(spec: CommandSpec): string {
  const flags = formatGoUsage('', spec.flags).split('\n').slice(1).join('\n');
  return `Usage: nsq ${spec.name} ${spec.synopsis} [flags]\n\n${spec.summary}\n\nFlags:\n${flags}`;
}
