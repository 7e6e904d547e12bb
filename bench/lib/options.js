/**
 * Command-line options: the kinds of option a scenario declares (int, seconds, lists, choices), the
 * run's own options, and the parser and --help built from the scenario registry. An option is
 * `--kebab-name VALUE` or `--kebab-name=VALUE`; its key in the parsed options is the camelCase name.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * @import { OptionSpec, Options, Scenario } from './types.js'
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** @param {string} key */
export const flagOf = (key) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** @param {string} flag */
const keyOf = (flag) => flag.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());

/**
 * An integer ≥ `min`.
 * @param {string} help
 * @param {number} dflt
 * @param {{ min?: number, arg?: string, defaultText?: string }} [o]
 * @returns {OptionSpec<number>}
 */
export function int(help, dflt, { min = 1, arg = 'N', defaultText } = {}) {
  return {
    arg,
    default: dflt,
    defaultText,
    help,
    parse(raw, flag) {
      const n = Number(raw);
      if (!Number.isFinite(n) || n < min || !Number.isInteger(n))
        throw new Error(`${flag}: bad value ${JSON.stringify(raw)}`);
      return n;
    },
  };
}

/**
 * A number ≥ `min` (fractions allowed): seconds, minutes.
 * @param {string} help
 * @param {number} dflt
 * @param {{ min?: number, arg?: string }} [o]
 * @returns {OptionSpec<number>}
 */
export function seconds(help, dflt, { min = 0.1, arg = 'SECONDS' } = {}) {
  return {
    arg,
    default: dflt,
    help,
    parse(raw, flag) {
      const n = Number(raw);
      if (!Number.isFinite(n) || n < min) throw new Error(`${flag}: bad value ${JSON.stringify(raw)}`);
      return n;
    },
  };
}

/**
 * Text as given (null when absent and without default).
 * @param {string} help
 * @param {string | null} dflt
 * @param {{ arg?: string, defaultText?: string }} [o]
 * @returns {OptionSpec<string | null>}
 */
export function text(help, dflt, { arg = 'TEXT', defaultText } = {}) {
  return { arg, default: dflt, defaultText, help, parse: (raw) => (raw === null ? null : String(raw)) };
}

/**
 * A file or directory, made absolute (null when absent).
 * @param {string} help
 * @param {string | null} dflt
 * @param {{ arg?: string, defaultText?: string }} [o]
 * @returns {OptionSpec<string | null>}
 */
export function file(help, dflt, { arg = 'FILE', defaultText } = {}) {
  return { arg, default: dflt, defaultText, help, parse: (raw) => (raw === null ? null : path.resolve(String(raw))) };
}

/**
 * A comma-separated list of integers ≥ 1.
 * @param {string} help
 * @param {string} dflt
 * @param {{ message?: string }} [o] the error after the flag
 * @returns {OptionSpec<number[]>}
 */
export function intList(help, dflt, { message = 'a list of integers ≥ 1' } = {}) {
  return {
    arg: 'LIST',
    default: dflt,
    help,
    parse(raw, flag) {
      const list = String(raw)
        .split(',')
        .map((x) => Number(x.trim()));
      if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${flag}: ${message}`);
      return list;
    },
  };
}

/**
 * One of `choices`.
 * @param {string} help
 * @param {string} dflt
 * @param {string[]} choices
 * @returns {OptionSpec<string>}
 */
export function choice(help, dflt, choices) {
  return {
    arg: choices.join('|'),
    default: dflt,
    help,
    parse(raw, flag) {
      const v = String(raw);
      if (!choices.includes(v)) throw new Error(`${flag} must be ${choices.join(' or ')}`);
      return v;
    },
  };
}

/**
 * A comma-separated list, each one of `choices`.
 * @param {string} help
 * @param {string[]} choices
 * @param {{ defaultText?: string }} [o]
 * @returns {OptionSpec<string[]>}
 */
export function choiceList(help, choices, { defaultText } = {}) {
  return {
    arg: 'LIST',
    default: choices.join(','),
    defaultText,
    help,
    parse(raw, flag) {
      const list = String(raw)
        .split(',')
        .map((x) => x.trim());
      if (list.some((c) => !choices.includes(c))) throw new Error(`${flag}: any of ${choices.join(',')}`);
      return list;
    },
  };
}

/**
 * `on` or `off`, as a boolean.
 * @param {string} help
 * @param {'on' | 'off'} dflt
 * @returns {OptionSpec<boolean>}
 */
export function onOff(help, dflt) {
  const c = choice(help, dflt, ['on', 'off']);
  return { ...c, parse: (raw, flag) => c.parse(raw, flag) === 'on' };
}

/**
 * `spec` with a further check of its value: `${flag}: ${message}` when `ok(value)` is false.
 * @template T
 * @param {OptionSpec<T>} spec
 * @param {(value: T) => boolean} ok
 * @param {string} message
 * @returns {OptionSpec<T>}
 */
export function checked(spec, ok, message) {
  return {
    ...spec,
    parse(raw, flag) {
      const v = spec.parse(raw, flag);
      if (!ok(v)) throw new Error(`${flag}: ${message}`);
      return v;
    },
  };
}

/** The run's own options; each scenario adds its own (scenarios/*.js). */
export const RUN_OPTIONS = {
  scenario: text('', 'all', { arg: 'NAME[,NAME...]' }),
  duration: seconds('length of each timed phase', 10),
  nsqdTcpAddress: text('use this running broker (with --nsqd-http-address)', null, { arg: 'HOST:PORT' }),
  nsqdHttpAddress: text('its HTTP address (GET /ping must answer 200)', null, { arg: 'HOST:PORT' }),
  nsqdBin: file(
    'broker to spawn; a non-.js path (e.g. a Go nsqd) is executed directly',
    path.join(ROOT, 'packages/nsqd/bin/nsqd.js'),
    {
      arg: 'PATH',
      defaultText: 'packages/nsqd/bin/nsqd.js',
    },
  ),
  memQueueSize: int('--mem-queue-size for the spawned broker (the storage scenarios set their own)', 10_000_000, {
    min: 0,
  }),
  messages: int(
    'consume, mem0: messages to pre-publish (0: as many as the publishers send in --duration seconds); overflow: messages put on disk (0: 10000000)',
    0,
    { min: 0 },
  ),
  connections: int('publisher connections and consumer connections', 2),
  batchSize: int('messages per MPUB', 200),
  msgSize: int('message body size', 200, { arg: 'BYTES' }),
  pipeline: int('MPUBs outstanding per publisher connection', 4),
  rdy: int("RDY per consumer connection (lowered to the broker's max_rdy_count)", 2500),
  heartbeatInterval: int("IDENTIFY heartbeat_interval (0: the broker's)", 0, { min: 0, arg: 'MS' }),
  brokerCpuProf: file(
    'run the spawned broker under node --cpu-prof, profiles to DIR; a summary of each is printed and kept in the JSON',
    null,
    { arg: 'DIR' },
  ),
  out: text('where the JSON and SVG go', path.join(ROOT, 'bench/results'), {
    arg: 'DIR',
    defaultText: 'bench/results',
  }),
};

/**
 * @typedef {object} Registry
 * @property {Scenario[]} scenarios in the order `all` runs them
 * @property {Record<string, OptionSpec<unknown>>} options the run's and every scenario's
 */

/**
 * The scenarios of each group, by group name.
 * @param {Scenario[]} scenarios
 */
function groupsOf(scenarios) {
  /** @type {Record<string, string[]>} */
  const groups = {};
  for (const s of scenarios) {
    if (s.group === undefined) continue;
    groups[s.group] ??= [];
    groups[s.group].push(s.name);
  }
  return groups;
}

/**
 * --scenario's names with the groups expanded: `all` (every scenario not marked slow), a group name
 * (its scenarios), or a scenario's name.
 * @param {Registry} registry
 * @param {string} list
 * @returns {string[]}
 */
function expandScenarios(registry, list) {
  const names = registry.scenarios.map((s) => s.name);
  /** @type {Record<string, string[]>} */
  const groups = { all: registry.scenarios.filter((s) => !s.slow).map((s) => s.name), ...groupsOf(registry.scenarios) };
  /** @type {string[]} */
  const out = [];
  for (const name of list.split(',').map((x) => x.trim())) {
    const group = groups[name] ?? (names.includes(name) ? [name] : null);
    if (group === null) {
      throw new Error(`--scenario must be one of ${[...names, ...Object.keys(groups)].join(', ')} (or a list)`);
    }
    for (const s of group) if (!out.includes(s)) out.push(s);
  }
  return out;
}

/**
 * Parses `argv` against every option of the registry (all are parsed and checked, whichever
 * scenarios run). --help prints the help and exits.
 * @param {string[]} argv
 * @param {Registry} registry
 * @returns {Options}
 */
export function parseArgs(argv, registry) {
  /** @type {Map<string, { value: string, flag: string }>} */
  const given = new Map();
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(helpText(registry));
      process.exit(0);
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    let value;
    const eq = arg.indexOf('=');
    if (eq >= 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    } else {
      value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
    }
    const key = keyOf(arg);
    if (!(key in registry.options)) throw new Error(`unknown option ${arg}\n\n${helpText(registry)}`);
    given.set(key, { value, flag: arg });
  }
  /** @type {Record<string, unknown>} */
  const opts = {};
  for (const [key, spec] of Object.entries(registry.options)) {
    const g = given.get(key);
    opts[key] = spec.parse(g === undefined ? spec.default : g.value, g?.flag ?? flagOf(key));
  }
  opts.scenarios = expandScenarios(registry, String(opts.scenario));
  const parsed = /** @type {Options} */ (opts);
  for (const s of registry.scenarios) s.check?.(parsed);
  return parsed;
}

const HELP_COLUMN = 40;
const HELP_WIDTH = 104;

/**
 * `head` padded to the help column, then `body` wrapped at the help width.
 * @param {string} head
 * @param {string} body
 */
function helpEntry(head, body) {
  const lines = [];
  let line = head.length + 2 > HELP_COLUMN ? `${head}\n${' '.repeat(HELP_COLUMN)}` : head.padEnd(HELP_COLUMN);
  let fresh = true;
  for (const word of body.split(/\s+/).filter(Boolean)) {
    const width = line.length - line.lastIndexOf('\n') - 1;
    if (!fresh && width + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = ' '.repeat(HELP_COLUMN) + word;
    } else {
      line += fresh ? word : ` ${word}`;
    }
    fresh = false;
  }
  lines.push(line.trimEnd());
  return lines.join('\n');
}

/**
 * One option's help line: its flag, placeholder, help and default.
 * @param {string} key
 * @param {OptionSpec<unknown>} spec
 * @param {string} indent
 */
function optionHelp(key, spec, indent) {
  const dflt = spec.defaultText ?? (spec.default === null ? null : String(spec.default));
  const body = dflt === null ? spec.help : `${spec.help} (default ${dflt})`;
  return helpEntry(`${indent}${flagOf(key)} ${spec.arg}`, body);
}

/**
 * --help: the run's options, then every scenario with its own.
 * @param {Registry} registry
 */
export function helpText(registry) {
  const { scenarios } = registry;
  const slow = scenarios.filter((s) => s.slow).map((s) => s.name);
  const groupText = Object.entries(groupsOf(scenarios))
    .map(([g, names]) => `${g} (${names.join(', ')})`)
    .join(', ');
  const out = ['usage: node bench/run.js [options]', ''];
  for (const [key, spec] of Object.entries(RUN_OPTIONS)) {
    if (key === 'scenario') {
      const body = `one or more of the scenarios below, or a group: all (default; all but ${slow.join(', ')}), ${groupText}`;
      out.push(helpEntry(`  --scenario ${spec.arg}`, body));
    } else {
      out.push(optionHelp(key, spec, '  '));
    }
  }
  out.push(
    helpEntry('  --help', ''),
    '',
    'scenarios (each on a fresh broker of its own unless it starts its own daemons):',
  );
  for (const s of scenarios) {
    out.push(helpEntry(`  ${s.name}${s.slow ? ' (slow)' : ''}`, s.description));
    for (const [key, spec] of Object.entries(s.options)) out.push(optionHelp(key, spec, '      '));
  }
  out.push('');
  return out.join('\n');
}
