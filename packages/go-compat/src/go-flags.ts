import { goQuoteText } from './go-format.js';
// Hand-written: no npm parser has Go's `flag` syntax (`-foo` is one flag, not f, o, o), its bool
// rule, durations or error texts. Parsing stops at the first non-flag; a non-bool flag takes the next
// argument even when it starts with `-`; the last of repeated values wins, except array types.

export const FlagErrorCode = {
  UndefinedFlag: 'UNDEFINED_FLAG',
  InvalidValue: 'INVALID_VALUE',
  MissingValue: 'MISSING_VALUE',
  BadSyntax: 'BAD_SYNTAX',
  UnexpectedArgument: 'UNEXPECTED_ARGUMENT',
  InvalidConfig: 'INVALID_CONFIG',
  InvalidOption: 'INVALID_OPTION', // each value parsed, the combination refused
} as const;
export type FlagErrorCode = (typeof FlagErrorCode)[keyof typeof FlagErrorCode];

/** `exitCode`: 2 for what Go's `flag` package rejects, 1 for config and option errors (NSQ's logFatal). */
export class FlagError extends Error {
  readonly code: FlagErrorCode;
  /** The flag (without dashes) or config key at fault, when there is one. */
  readonly flag: string | null;
  readonly exitCode: 1 | 2;

  constructor(code: FlagErrorCode, message: string, flag: string | null = null, options?: ErrorOptions) {
    super(message, options);
    this.name = 'FlagError';
    this.code = code;
    this.flag = flag;
    this.exitCode = code === FlagErrorCode.InvalidConfig || code === FlagErrorCode.InvalidOption ? 1 : 2;
  }
}

interface FlagSpecBase {
  /** Without dashes, e.g. `mem-queue-size`. */
  readonly name: string;
  /** One line of help. A word in backquotes names the value in the usage text, as in Go. */
  readonly usage: string;
  /** Overrides the `(default …)` shown in the usage text; '' hides it. */
  readonly defaultText?: string;
}

/**
 * Durations are milliseconds (`250us` is 0.25). `custom` is Go's `flag.Value`: `parse` throws an
 * Error whose message becomes the flag error's reason; `isBool` makes it take no argument.
 */
export type FlagSpec =
  | (FlagSpecBase & { readonly type: 'string'; readonly default: string })
  | (FlagSpecBase & { readonly type: 'int'; readonly default: number })
  | (FlagSpecBase & { readonly type: 'bool'; readonly default: boolean })
  | (FlagSpecBase & { readonly type: 'duration'; readonly default: number })
  | (FlagSpecBase & { readonly type: 'float'; readonly default: number })
  | (FlagSpecBase & { readonly type: 'string-array'; readonly default: readonly string[] })
  | (FlagSpecBase & { readonly type: 'float-array'; readonly default: readonly number[] })
  | (FlagSpecBase & {
      readonly type: 'custom';
      readonly default: string;
      readonly parse: (raw: string) => string;
      readonly isBool?: boolean;
      /** The value's name in the usage text; defaults to Go's `value`. */
      readonly typeName?: string;
    });

export type FlagType = FlagSpec['type'];
export type FlagValue = string | number | boolean | string[] | number[];

export interface ParsedFlags {
  readonly values: Map<string, FlagValue>;
  /** Names of the flags given on the command line (Go's `FlagSet.Visit`). */
  readonly set: Set<string>;
  /** Arguments after the flags (only with `positionals: 'return'`). */
  readonly rest: string[];
  /** `-h`/`-help`/`--help` was given (and is not a defined flag); parsing stopped there. */
  readonly help: boolean;
}

export interface ParseGoFlagsOptions {
  /** 'return' (Go's behaviour, the default) hands them back in `rest`; 'error' refuses them. */
  readonly positionals?: 'return' | 'error';
}

/** `argv` without the program name. Throws FlagError. */
export function parseGoFlags(
  specs: readonly FlagSpec[],
  argv: readonly string[],
  options: ParseGoFlagsOptions = {},
): ParsedFlags {
  const byName = new Map<string, FlagSpec>();
  const values = new Map<string, FlagValue>();
  for (const spec of specs) {
    byName.set(spec.name, spec);
    values.set(spec.name, defaultValue(spec));
  }
  const set = new Set<string>();
  // The last flag given with no `=value` that takes none: the likely cause of a stray argument.
  let bareBool: string | null = null;
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i];
    if (arg.length < 2 || arg[0] !== '-') break;
    let dashes = 1;
    if (arg[1] === '-') {
      dashes = 2;
      if (arg.length === 2) {
        i++;
        bareBool = null;
        break;
      }
    }
    const body = arg.slice(dashes);
    if (body.length === 0 || body[0] === '-' || body[0] === '=') {
      throw new FlagError(FlagErrorCode.BadSyntax, `bad flag syntax: ${arg}`);
    }
    i++;
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    let value = eq < 0 ? null : body.slice(eq + 1);
    const spec = byName.get(name);
    if (spec === undefined) {
      if (name === 'help' || name === 'h') return { values, set, rest: [], help: true };
      throw new FlagError(FlagErrorCode.UndefinedFlag, `flag provided but not defined: -${name}`, name);
    }
    bareBool = null;
    if (isBoolFlag(spec)) {
      if (value === null) bareBool = name;
      setValue(spec, value ?? 'true', values, set, 'invalid boolean value %q for -%s');
    } else {
      if (value === null && i < argv.length) value = argv[i++];
      if (value === null) throw new FlagError(FlagErrorCode.MissingValue, `flag needs an argument: -${name}`, name);
      setValue(spec, value, values, set, 'invalid value %q for flag -%s');
    }
    set.add(name);
  }
  const rest = argv.slice(i);
  if (rest.length > 0 && options.positionals === 'error') {
    const hint = bareBool === null ? '' : ` (-${bareBool} takes no separate value: write -${bareBool}=${rest[0]})`;
    throw new FlagError(FlagErrorCode.UnexpectedArgument, `unexpected argument ${goQuoteText(rest[0])}${hint}`);
  }
  return { values, set, rest, help: false };
}

export function isBoolFlag(spec: FlagSpec): boolean {
  return spec.type === 'bool' || (spec.type === 'custom' && spec.isBool === true);
}

/** Array types return `previous` plus the new element(s). Throws Go's reason (`parse error`, …). */
export function parseFlagValue(spec: FlagSpec, raw: string, previous: readonly (string | number)[] = []): FlagValue {
  switch (spec.type) {
    case 'string':
      return raw;
    case 'int':
      return parseGoInt(raw);
    case 'bool':
      return parseGoBool(raw);
    case 'duration':
      try {
        return parseGoDuration(raw);
      } catch (err) {
        // Go's durationValue.Set reports every failure as errParse.
        throw new Error('parse error', { cause: err });
      }
    case 'float':
      return parseGoFloat(raw);
    case 'string-array':
      return [...(previous as string[]), raw];
    case 'float-array':
      // NSQ's FloatArray: repeatable and comma separated.
      return [...(previous as number[]), ...raw.split(',').map(parseGoFloat)];
    case 'custom':
      return spec.parse(raw);
  }
}

function setValue(
  spec: FlagSpec,
  raw: string,
  values: Map<string, FlagValue>,
  set: ReadonlySet<string>,
  format: string,
): void {
  // The first command-line value of an array flag replaces its default rather than adding to it.
  const previous = set.has(spec.name) ? values.get(spec.name) : [];
  try {
    values.set(spec.name, parseFlagValue(spec, raw, Array.isArray(previous) ? previous : []));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const message = `${format.replace('%q', goQuoteText(raw)).replace('%s', spec.name)}: ${reason}`;
    throw new FlagError(FlagErrorCode.InvalidValue, message, spec.name, { cause: err });
  }
}

function defaultValue(spec: FlagSpec): FlagValue {
  if (spec.type === 'string-array') return [...spec.default];
  if (spec.type === 'float-array') return [...spec.default];
  return spec.default;
}

// ---- config files ----

/**
 * Strings parse as on the command line (`msg_timeout = "60s"`); integers for durations are ms (as in
 * go-options); repeatable flags take arrays or one comma-separated string. Throws FlagError.
 */
export function flagValueFromConfig(spec: FlagSpec, key: string, raw: unknown): FlagValue {
  const bad = (reason: string, cause?: unknown) =>
    new FlagError(
      FlagErrorCode.InvalidConfig,
      `invalid value ${describeConfigValue(raw)} for config key ${key}: ${reason}`,
      key,
      {
        cause,
      },
    );
  const fromText = (text: string, previous: (string | number)[] = []): FlagValue => {
    try {
      return parseFlagValue(spec, text, previous);
    } catch (err) {
      throw bad(err instanceof Error ? err.message : String(err), err);
    }
  };
  switch (spec.type) {
    case 'string':
      if (typeof raw === 'string') return raw;
      throw bad('expected a string');
    case 'int':
      if (typeof raw === 'number' && Number.isSafeInteger(raw)) return raw;
      if (typeof raw === 'string') return fromText(raw);
      throw bad('expected an integer');
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string') return fromText(raw);
      throw bad('expected true or false');
    case 'duration':
      if (typeof raw === 'string') return fromText(raw);
      if (typeof raw === 'number' && Number.isSafeInteger(raw)) return raw;
      throw bad('expected a duration string such as "60s" or an integer number of milliseconds');
    case 'float':
      if (typeof raw === 'number') return raw;
      if (typeof raw === 'string') return fromText(raw);
      throw bad('expected a number');
    case 'string-array':
      if (typeof raw === 'string') return raw === '' ? [] : raw.split(',');
      if (Array.isArray(raw) && raw.every((v) => typeof v === 'string')) return [...raw];
      throw bad('expected an array of strings');
    case 'float-array':
      if (typeof raw === 'number') return [raw];
      if (typeof raw === 'string') return fromText(raw);
      if (Array.isArray(raw) && raw.every((v) => typeof v === 'number')) return [...raw];
      throw bad('expected an array of numbers');
    case 'custom':
      if (typeof raw === 'string' || typeof raw === 'boolean' || typeof raw === 'number') return fromText(String(raw));
      throw bad('expected a string');
  }
}

function describeConfigValue(value: unknown): string {
  if (typeof value === 'string') return goQuoteText(value);
  if (typeof value === 'bigint') return String(value);
  if (value instanceof Date) return value.toISOString();
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export interface ConfigurableFlag {
  readonly spec: FlagSpec;
  /** TOML keys, the preferred one first; none for flags the config file cannot set. */
  readonly configKeys: readonly string[];
}

export interface ResolvedFlags {
  readonly values: Map<string, FlagValue>;
  /** The flags given on the command line or in the config file. */
  readonly explicit: Set<string>;
}

/** go-options' Resolve: command line beats config file beats default; a command-line array replaces the config's. */
export function resolveFlags(
  flags: readonly ConfigurableFlag[],
  parsed: ParsedFlags,
  config: Readonly<Record<string, unknown>>,
): ResolvedFlags {
  const values = new Map<string, FlagValue>();
  const explicit = new Set<string>();
  for (const flag of flags) {
    const name = flag.spec.name;
    if (parsed.set.has(name)) {
      values.set(name, parsed.values.get(name) as FlagValue);
      explicit.add(name);
      continue;
    }
    const present = flag.configKeys.filter((key) => Object.hasOwn(config, key));
    if (present.length > 1) {
      throw new FlagError(
        FlagErrorCode.InvalidConfig,
        `config keys ${present.join(' and ')} both set -${name}; keep one`,
        present[1],
      );
    }
    if (present.length === 1) {
      values.set(name, flagValueFromConfig(flag.spec, present[0], config[present[0]]));
      explicit.add(name);
      continue;
    }
    values.set(name, parsed.values.get(name) as FlagValue);
  }
  return { values, explicit };
}

/** A daemon's flag that sets a field of its options: null for flags that steer the program or do nothing. */
export interface OptionFlag<O> extends ConfigurableFlag {
  readonly option: keyof O | null;
}

export function applyFlagValues<O>(
  options: O,
  flags: readonly OptionFlag<O>[],
  values: ReadonlyMap<string, FlagValue>,
): void {
  const fields = options as unknown as Record<keyof O, FlagValue>;
  for (const flag of flags) {
    if (flag.option !== null) fields[flag.option] = values.get(flag.spec.name) as FlagValue;
  }
}

/** The config file's keys that set no flag. */
export function unknownConfigKeys(
  flags: readonly ConfigurableFlag[],
  config: Readonly<Record<string, unknown>>,
): string[] {
  const known = new Set(flags.flatMap((f) => f.configKeys));
  return Object.keys(config).filter((key) => !known.has(key));
}

// ---- Go's strconv and time parsers ----

const BOOL_TEXT: ReadonlyMap<string, boolean> = new Map([
  ['1', true],
  ['t', true],
  ['T', true],
  ['true', true],
  ['TRUE', true],
  ['True', true],
  ['0', false],
  ['f', false],
  ['F', false],
  ['false', false],
  ['FALSE', false],
  ['False', false],
]);

/** strconv.ParseBool. Throws Error('parse error'). */
export function parseGoBool(s: string): boolean {
  const v = BOOL_TEXT.get(s);
  if (v === undefined) throw new Error('parse error');
  return v;
}

const INT_DIGITS: Readonly<Record<number, RegExp>> = {
  2: /^[01]+$/,
  8: /^[0-7]+$/,
  10: /^[0-9]+$/,
  16: /^[0-9a-fA-F]+$/,
};
const INT_PREFIX: Readonly<Record<number, string>> = { 2: '0b', 8: '0o', 10: '', 16: '0x' };
const INT64_MAX = 2n ** 63n - 1n;

/** strconv.ParseInt(s, 0, 64), limited to ±2^53 (a JS number holds no more exactly). */
export function parseGoInt(s: string): number {
  let body = s;
  let negative = false;
  if (body[0] === '+' || body[0] === '-') {
    negative = body[0] === '-';
    body = body.slice(1);
  }
  let base = 10;
  let prefixed = false;
  if (body.length > 1 && body[0] === '0') {
    const c = body[1].toLowerCase();
    base = c === 'x' ? 16 : c === 'o' ? 8 : c === 'b' ? 2 : 8;
    body = c === 'x' || c === 'o' || c === 'b' ? body.slice(2) : body.slice(1);
    prefixed = true;
  }
  // Go's underscoreOK: `_` only between digits, or between a base prefix and a digit.
  if (body.includes('_')) {
    if (!/^_?[0-9a-zA-Z]+(?:_[0-9a-zA-Z]+)*$/.test(body) || (!prefixed && body[0] === '_')) {
      throw new Error('parse error');
    }
    body = body.replaceAll('_', '');
  }
  if (!INT_DIGITS[base].test(body)) throw new Error('parse error');
  const magnitude = BigInt(INT_PREFIX[base] + body);
  if (negative ? magnitude > INT64_MAX + 1n : magnitude > INT64_MAX) throw new Error('value out of range');
  const value = Number(negative ? -magnitude : magnitude);
  if (!Number.isSafeInteger(value)) throw new Error('value out of range');
  return value;
}

/** strconv.ParseFloat(s, 64) without Go's hexadecimal floats and digit separators. */
export function parseGoFloat(s: string): number {
  if (/^[+-]?(?:inf|infinity)$/i.test(s)) return s[0] === '-' ? -Infinity : Infinity;
  if (/^[+-]?nan$/i.test(s)) return Number.NaN;
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(s)) throw new Error('parse error');
  const v = Number(s);
  if (!Number.isFinite(v)) throw new Error('value out of range');
  return v;
}

const NS_PER_UNIT: ReadonlyMap<string, number> = new Map([
  ['ns', 1],
  ['us', 1e3],
  ['\u00b5s', 1e3], // µ MICRO SIGN
  ['\u03bcs', 1e3], // μ GREEK SMALL LETTER MU
  ['ms', 1e6],
  ['s', 1e9],
  ['m', 60e9],
  ['h', 3600e9],
]);
const MAX_DURATION_NS = 2 ** 63 - 1;

/** time.ParseDuration in milliseconds; a bare `0` is the only number without a unit. */
export function parseGoDuration(s: string): number {
  const invalid = () => new Error(`time: invalid duration ${goQuoteText(s)}`);
  let i = 0;
  let negative = false;
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-';
    i = 1;
  }
  if (s.slice(i) === '0') return 0;
  if (i === s.length) throw invalid();
  let totalNs = 0;
  while (i < s.length) {
    const number = /^(\d*)(?:\.(\d*))?/.exec(s.slice(i)) as RegExpExecArray;
    const whole = number[1];
    const fraction = number[2] ?? '';
    if (whole === '' && fraction === '') throw invalid();
    i += number[0].length;
    let end = i;
    while (end < s.length && s[end] !== '.' && !(s[end] >= '0' && s[end] <= '9')) end++;
    const unit = s.slice(i, end);
    if (unit === '') throw new Error(`time: missing unit in duration ${goQuoteText(s)}`);
    const scale = NS_PER_UNIT.get(unit);
    if (scale === undefined) throw new Error(`time: unknown unit ${goQuoteText(unit)} in duration ${goQuoteText(s)}`);
    totalNs += Number(whole || '0') * scale + (fraction === '' ? 0 : Number(`0.${fraction}`) * scale);
    if (totalNs > MAX_DURATION_NS) throw invalid();
    i = end;
  }
  const ms = totalNs / 1e6;
  return negative ? -ms : ms;
}

/** time.Duration.String for a millisecond count: `0s`, `250ms`, `1.5s`, `1m0s`, `1h30m0s`. */
export function formatGoDuration(ms: number): string {
  let ns = Math.round(Math.abs(ms) * 1e6);
  const sign = ms < 0 && ns > 0 ? '-' : '';
  if (ns === 0) return '0s';
  if (ns < 1e3) return `${sign}${ns}ns`;
  if (ns < 1e6) return `${sign}${ns / 1e3}\u00b5s`;
  if (ns < 1e9) return `${sign}${ns / 1e6}ms`;
  const hours = Math.floor(ns / 3600e9);
  ns -= hours * 3600e9;
  const minutes = Math.floor(ns / 60e9);
  ns -= minutes * 60e9;
  const seconds = `${ns / 1e9}s`;
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}`;
  return `${sign}${seconds}`;
}

// ---- usage text ----

/** Go's `-h` text: FlagSet.PrintDefaults, sorted by name, `(default …)` unless the default is zero. */
export function formatGoUsage(program: string, specs: readonly FlagSpec[]): string {
  const lines = [`Usage of ${program}:`];
  const sorted = [...specs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const spec of sorted) {
    const { typeName, usage } = unquoteUsage(spec);
    let line = `  -${spec.name}`;
    if (typeName !== '') line += ` ${typeName}`;
    // Go keeps the help of a one-letter bool on the same line; everything else goes below it.
    line += line.length <= 4 ? '\t' : '\n    \t';
    line += usage.replaceAll('\n', '\n    \t');
    const shown = defaultText(spec);
    if (shown !== '') line += spec.type === 'string' ? ` (default ${goQuoteText(shown)})` : ` (default ${shown})`;
    lines.push(line);
  }
  return `${lines.join('\n')}\n`;
}

/** flag.UnquoteUsage: a backquoted word in the help names the value; otherwise the type does. */
function unquoteUsage(spec: FlagSpec): { typeName: string; usage: string } {
  const quoted = /`([^`]*)`/.exec(spec.usage);
  if (quoted !== null) return { typeName: quoted[1], usage: spec.usage.replace(quoted[0], quoted[1]) };
  const byType: Record<FlagType, string> = {
    string: 'string',
    int: 'int',
    bool: '',
    duration: 'duration',
    float: 'float',
    'string-array': 'value',
    'float-array': 'value',
    custom: 'value',
  };
  let typeName = byType[spec.type];
  if (spec.type === 'custom') typeName = spec.isBool === true ? '' : (spec.typeName ?? 'value');
  return { typeName, usage: spec.usage };
}

/** The default as Go prints it, or '' when Go's isZeroValue would hide it. */
function defaultText(spec: FlagSpec): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  switch (spec.type) {
    case 'string':
    case 'custom':
      return spec.default;
    case 'int':
    case 'float':
      return spec.default === 0 ? '' : String(spec.default);
    case 'bool':
      return spec.default ? 'true' : '';
    case 'duration':
      return spec.default === 0 ? '' : formatGoDuration(spec.default);
    case 'string-array':
    case 'float-array':
      return spec.default.join(',');
  }
}
