/**
 * `@nsq-ts/cli`: the `nsq` command — pub, tail, stat, topics, channels, empty/pause/unpause/delete,
 * nsq-ts's delivery policies (config, replay, redrive) and replica groups (ha) — against nsqd and nsqlookupd HTTP APIs and nsqd's TCP protocol (ours or NSQ's own).
 */
import { readFileSync } from 'node:fs';
import { ClientError, ClientErrorCode } from '@nsq-ts/client';
import type { FlagSpec } from '@nsq-ts/go-compat';
import { ACTIONS, type Action, act, channels, topics } from './admin.js';
import {
  CliError,
  type CommandSpec,
  commandUsage,
  HTTP_AUTH_TOKEN,
  LOOKUPD_HTTP,
  NSQD_HTTP,
  NSQD_TCP,
  parseArgs,
} from './args.js';
import { Context } from './context.js';
import { HA_FLAGS, ha } from './ha.js';
import { setHttpAuthToken } from './http.js';
import { CONFIG_FLAGS, config, REDRIVE_FLAGS, REPLAY_FLAGS, redrive, replay } from './policies.js';
import { pub } from './pub.js';
import { stat } from './stat.js';
import { tail } from './tail.js';

export { CliError } from './args.js';

interface Command extends CommandSpec {
  /** One line for the command list. */
  readonly brief: string;
  run(ctx: Context): Promise<void>;
}

const HTTP_NODES = [LOOKUPD_HTTP, NSQD_HTTP, HTTP_AUTH_TOKEN];
const ALL_NODES = [LOOKUPD_HTTP, NSQD_HTTP, NSQD_TCP, HTTP_AUTH_TOKEN];
const ACTION_TEXT: Record<Action, string> = {
  empty: 'Empties a topic or channel (drops its queued messages) on every nsqd that has it',
  pause: 'Pauses a topic or channel (messages queue up but are not delivered) on every nsqd that has it',
  unpause: 'Unpauses a topic or channel on every nsqd that has it',
  delete: 'Deletes a topic or channel from every nsqd having it, and from the lookupds',
};

/** The actions that destroy messages: confirmed on a terminal. */
const CONFIRMED: readonly Action[] = ['empty', 'delete'];
const YES: FlagSpec = { name: 'yes', type: 'bool', default: false, usage: 'do not ask for confirmation' };
const ASKS = '\nOn a terminal it asks for confirmation first (--yes skips the question).';

const COMMANDS: readonly Command[] = [
  {
    name: 'pub',
    brief: 'publish a message, or one per line of stdin',
    synopsis: '<topic> [message|-]',
    summary:
      'Publishes one message, or with "-" (the default) one message per non-empty line of stdin\n' +
      '(records split at --delimiter), reporting progress every second on stderr when stdin is not\n' +
      'a terminal. A line nsqd refuses is reported with its number and publishing goes on (exit 1).',
    flags: [
      ...ALL_NODES,
      { name: 'defer', type: 'duration', default: 0, usage: 'deliver each message after this delay (DPUB)' },
      { name: 'rate', type: 'int', default: 0, usage: 'publish at most this many messages per second (0: no limit)' },
      {
        name: 'delimiter',
        type: 'string',
        default: '\n',
        usage: 'what separates messages on stdin (\\n, \\t, \\r, \\0 and \\\\ are escapes)',
      },
    ],
    minArgs: 1,
    maxArgs: 2,
    run: pub,
  },
  {
    name: 'tail',
    brief: "print a topic's messages (like nsq_tail)",
    synopsis: '<topic>',
    summary: "Prints the bodies of a topic's messages, one per line (like nsq_tail).",
    flags: [
      ...ALL_NODES,
      { name: 'channel', type: 'string', default: '', usage: 'NSQ `channel` (default: tail<6 digits>#ephemeral)' },
      { name: 'n', type: 'int', default: 0, usage: 'exit after this many messages (0: until interrupted)' },
      { name: 'max-in-flight', type: 'int', default: 200, usage: 'max messages in flight' },
      {
        name: 'lookupd-poll-interval',
        type: 'duration',
        default: 5_000,
        usage: 'how often lookupds are asked for new nsqds',
      },
    ],
    minArgs: 1,
    maxArgs: 1,
    run: tail,
  },
  {
    name: 'stat',
    brief: "a channel's counters every interval (like nsq_stat)",
    synopsis: '<topic> <channel>',
    summary:
      "Prints a channel's counters summed over all nsqds every interval (like nsq_stat): message rates\n" +
      "(ingress: the topic's, egress: the channel's), depth (total, mem = total - disk, disk, in-flight,\n" +
      'deferred) and requeues, timeouts, messages and connected clients.',
    flags: [
      ...HTTP_NODES,
      { name: 'interval', type: 'duration', default: 2_000, usage: 'time between rows' },
      { name: 'count', type: 'int', default: 0, usage: 'rows to print before exiting (0: until interrupted)' },
    ],
    minArgs: 2,
    maxArgs: 2,
    run: stat,
  },
  {
    name: 'topics',
    brief: 'list topics',
    synopsis: '',
    summary: 'Lists the topics the lookupds (or the nsqds) know.',
    flags: HTTP_NODES,
    minArgs: 0,
    maxArgs: 0,
    run: topics,
  },
  {
    name: 'channels',
    brief: "list a topic's channels",
    synopsis: '<topic>',
    summary: 'Lists the channels of a topic that the lookupds (or the nsqds) know.',
    flags: HTTP_NODES,
    minArgs: 1,
    maxArgs: 1,
    run: channels,
  },
  ...ACTIONS.map(
    (action): Command => ({
      name: action,
      brief: `${action} a topic or channel`,
      synopsis: '<topic> [channel]',
      summary: `${ACTION_TEXT[action]}.${CONFIRMED.includes(action) ? ASKS : ''}`,
      flags: CONFIRMED.includes(action) ? [...HTTP_NODES, YES] : HTTP_NODES,
      minArgs: 1,
      maxArgs: 2,
      run: (ctx) => act(ctx, action),
    }),
  ),
  {
    name: 'config',
    brief: "show or set a topic's or channel's delivery policy",
    synopsis: '<topic> [channel]',
    summary:
      'Prints the delivery-policy settings (nsq-ts nsqd only) each nsqd has for a topic or channel;\n' +
      'with setting flags, first sets them on every nsqd that has it. Channel settings: --max-attempts,\n' +
      '--dead-letter-topic; topic settings: --max-depth, --max-bytes, --overflow, --message-ttl,\n' +
      '--retention. What is not given stays as it is; 0 turns a setting off.',
    flags: [...HTTP_NODES, ...CONFIG_FLAGS],
    minArgs: 1,
    maxArgs: 2,
    run: config,
  },
  {
    name: 'replay',
    brief: "deliver a channel's retained messages again",
    synopsis: '<topic> <channel>',
    summary:
      'Rewinds a channel (nsq-ts nsqd only, topics with --retention) on every nsqd that has it, to the\n' +
      'first message published at or after --since (or to --offset): its consumers receive them again.\n' +
      `A time no longer retained is refused with the earliest time still available.${ASKS}`,
    flags: [...HTTP_NODES, ...REPLAY_FLAGS, YES],
    minArgs: 2,
    maxArgs: 2,
    run: replay,
  },
  {
    name: 'redrive',
    brief: 'move dead letters back into a topic',
    synopsis: '<dead-letter-topic> <topic>',
    summary:
      'Moves the messages a dead-letter topic holds (nsq-ts nsqd only) back into a topic, on every\n' +
      `nsqd that has the dead-letter topic, each message once.${ASKS}`,
    flags: [...HTTP_NODES, ...REDRIVE_FLAGS, YES],
    minArgs: 2,
    maxArgs: 2,
    run: redrive,
  },
  {
    name: 'ha',
    brief: "a replica group's status, or a planned handover",
    synopsis: 'status|handover',
    summary:
      'status: prints what each --nsqd-http-address (members of a replica group, nsq-ts nsqd with\n' +
      '--ha-group) reports on GET /ha: role, epoch, leader, members, in-sync set, position and the lag\n' +
      "of each follower (the leader's view) or of the member itself (a follower's); --json prints it raw.\n" +
      'handover: asks the leader among the addresses given to stop serving and resign (POST\n' +
      '/ha/handover), preferring --to as the next leader (it must be in sync).',
    flags: [NSQD_HTTP, HTTP_AUTH_TOKEN, ...HA_FLAGS],
    minArgs: 1,
    maxArgs: 1,
    run: ha,
  },
];

const SYNOPSIS_WIDTH = Math.max(...COMMANDS.map((c) => c.name.length + c.synopsis.length)) + 3;

const USAGE = `Usage: nsq <command> [arguments] [flags]

Commands:
${COMMANDS.map((c) => `  ${`${c.name} ${c.synopsis}`.padEnd(SYNOPSIS_WIDTH)}${c.brief}`).join('\n')}

Every command finds the nodes through --lookupd-http-address (repeatable) or, without a lookupd,
--nsqd-http-address (repeatable; pub and tail also take --nsqd-tcp-address).
Run "nsq <command> --help" for a command's flags, "nsq --version" for the version.
Exit status: 0 done, 1 something failed, 2 bad command line.
`;

/** `nsq v0.1.0 (nsq-ts, built w/node20.19.0)`, from this package's own package.json. */
function versionLine(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return `nsq v${pkg.version} (nsq-ts, built w/node${process.versions.node})\n`;
}

/** Runs `nsq` with `argv` (without node and the script), writing to stdout/stderr; resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-version' || name === 'version') {
    process.stdout.write(versionLine());
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-help' || name === '-h' || name === 'help') {
    if (name === undefined) {
      process.stderr.write(USAGE);
      return 2;
    }
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write(topic === undefined ? USAGE : commandUsage(topic));
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    process.stderr.write(`nsq: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return 2;
  }
  try {
    const args = parseArgs(command, rest);
    if (args.help) {
      process.stdout.write(commandUsage(command));
      return 0;
    }
    setHttpAuthToken(args.string('http-auth-token') || (process.env.NSQ_HTTP_AUTH_TOKEN ?? ''));
    const ctx = new Context(command.name, args);
    await command.run(ctx);
    return ctx.failed ? 1 : 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`nsq ${command.name}: ${message}\n`);
    if (err instanceof CliError && err.exitCode === 2)
      process.stderr.write(`Run "nsq ${command.name} --help" for usage.\n`);
    // The client refusing an option (an address that is not host:port, …) is a bad command line too.
    const usage = err instanceof ClientError && err.code === ClientErrorCode.InvalidArgument;
    if (usage) process.stderr.write(`Run "nsq ${command.name} --help" for usage.\n`);
    return err instanceof CliError ? err.exitCode : usage ? 2 : 1;
  }
}
