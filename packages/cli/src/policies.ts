/** `nsq config`, `nsq replay`, `nsq redrive`: nsq-ts's delivery policies (README "Delivery policies"). */
import { type FlagSpec, formatGoDuration, parseGoDuration } from '@nsq-ts/go-compat';
import * as policy from '@nsq-ts/http-client';
import { confirm, nsqdsHaving } from './admin.js';
import { CliError } from './args.js';
import type { Context } from './context.js';
import { gather, withHttp } from './http.js';

/** The attempts counter on the wire is a uint16. */
const MAX_ATTEMPTS_LIMIT = 65535;

const CHANNEL_SETTINGS = ['max-attempts', 'dead-letter-topic'] as const;
const TOPIC_SETTINGS = ['max-depth', 'max-bytes', 'overflow', 'message-ttl', 'retention'] as const;

/** A setting flag: what is not given is left as it is, so no default is shown. */
function setting(name: string, type: 'int' | 'string' | 'duration', usage: string): FlagSpec {
  if (type === 'string') return { name, type, default: '', usage, defaultText: '' };
  return { name, type, default: 0, usage, defaultText: '' };
}

export const CONFIG_FLAGS: readonly FlagSpec[] = [
  setting('max-attempts', 'int', 'channel: deliveries before a message is dead-lettered (0: unlimited)'),
  setting('dead-letter-topic', 'string', "channel: `topic` that given-up messages go to ('': dropped)"),
  setting('max-depth', 'int', "topic: cap on its deepest channel's backlog, in messages (0: no cap)"),
  setting('max-bytes', 'int', 'topic: the same cap in bytes (0: no cap)'),
  setting('overflow', 'string', 'topic: what to do at the cap, `policy` reject (refuse publishes) or drop_oldest'),
  setting('message-ttl', 'duration', 'topic: messages older than this are not delivered (0: off)'),
  setting('retention', 'duration', 'topic: finished messages are kept this long for replay (0: off)'),
];

export const REPLAY_FLAGS: readonly FlagSpec[] = [
  {
    name: 'since',
    type: 'string',
    default: '',
    usage: 'replay from this `time`: unix milliseconds, RFC 3339, or a duration ago (1h)',
  },
  {
    name: 'offset',
    type: 'int',
    default: 0,
    usage: "replay from this log offset (each nsqd's own log)",
    defaultText: '',
  },
];

export const REDRIVE_FLAGS: readonly FlagSpec[] = [
  { name: 'max', type: 'int', default: 0, usage: 'move at most this many dead letters in all (0: every one)' },
];

function describe(topic: string, channel: string | undefined): string {
  return channel === undefined ? `topic ${topic}` : `channel ${topic}/${channel}`;
}

function channelLine(c: policy.ChannelConfig): string {
  return `max_attempts=${c.maxAttempts} dead_letter_topic=${c.deadLetterTopic}`;
}

function topicLine(t: policy.TopicConfig): string {
  const durations = [
    ...(t.messageTtlMs === undefined ? [] : [`message_ttl=${formatGoDuration(t.messageTtlMs)}`]),
    ...(t.retentionMs === undefined ? [] : [`retention=${formatGoDuration(t.retentionMs)}`]),
  ];
  return [`max_depth=${t.maxDepth}`, `max_bytes=${t.maxBytes}`, `overflow=${t.overflow}`, ...durations].join(' ');
}

/** A count flag that must not be negative (exit 2). */
function count(ctx: Context, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = ctx.args.number(flag);
  if (n < 0 || n > max) throw new CliError(`invalid value ${n} for flag -${flag}: must be 0 to ${max}`, 2);
  return n;
}

/** The settings given on the command line, refusing those of the other kind (exit 2). */
function updates(
  ctx: Context,
  channel: string | undefined,
): { channel: policy.ChannelConfigUpdate; topic: policy.TopicConfigUpdate; any: boolean } {
  const given = (names: readonly string[]) => names.filter((n) => ctx.args.isSet(n));
  const wrong = channel === undefined ? given(CHANNEL_SETTINGS) : given(TOPIC_SETTINGS);
  const [flag] = wrong;
  if (flag !== undefined) {
    throw new CliError(
      channel === undefined
        ? `-${flag} is a channel setting: nsq config <topic> <channel> --${flag}=…`
        : `-${flag} is a topic setting: nsq config <topic> --${flag}=… (without a channel)`,
      2,
    );
  }
  const set = ctx.args.isSet;
  const overflow = ctx.args.string('overflow');
  if (set('overflow') && overflow !== 'reject' && overflow !== 'drop_oldest') {
    throw new CliError(`invalid value ${JSON.stringify(overflow)} for flag -overflow: reject or drop_oldest`, 2);
  }
  const channelUpdate: policy.ChannelConfigUpdate = {
    ...(set('max-attempts') ? { maxAttempts: count(ctx, 'max-attempts', MAX_ATTEMPTS_LIMIT) } : {}),
    ...(set('dead-letter-topic') ? { deadLetterTopic: ctx.args.string('dead-letter-topic') } : {}),
  };
  const topicUpdate: policy.TopicConfigUpdate = {
    ...(set('max-depth') ? { maxDepth: count(ctx, 'max-depth') } : {}),
    ...(set('max-bytes') ? { maxBytes: count(ctx, 'max-bytes') } : {}),
    ...(set('overflow') ? { overflow: overflow as 'reject' | 'drop_oldest' } : {}),
    ...(set('message-ttl') ? { messageTtl: count(ctx, 'message-ttl') } : {}),
    ...(set('retention') ? { retention: count(ctx, 'retention') } : {}),
  };
  const any = given(channel === undefined ? TOPIC_SETTINGS : CHANNEL_SETTINGS).length > 0;
  return { channel: channelUpdate, topic: topicUpdate, any };
}

/** The nsqds having it, or "not found" (exit 1) when none has it and nothing failed to answer. */
async function targets(ctx: Context, topic: string, channel: string | undefined): Promise<string[]> {
  ctx.requireNodes();
  const found = await nsqdsHaving(ctx, topic, channel);
  if (found.length === 0 && !ctx.failed) throw new CliError(`${describe(topic, channel)} not found`);
  return found;
}

/** `nsq config <topic> [channel] [settings]`: prints each nsqd's settings; applies given ones first. */
export async function config(ctx: Context): Promise<void> {
  const [topic, channel] = ctx.args.positionals;
  const update = updates(ctx, channel);
  const nsqds = await targets(ctx, topic, channel);
  const what = describe(topic, channel);
  const got = await gather(nsqds, (n) =>
    withHttp(async (http) => {
      if (channel === undefined) {
        if (update.any) await policy.setTopicConfig(http, n, topic, update.topic);
        return `${n}: ${topicLine(await policy.getTopicConfig(http, n, topic))}`;
      }
      if (update.any) await policy.setChannelConfig(http, n, topic, channel, update.channel);
      return `${n}: ${channelLine(await policy.getChannelConfig(http, n, topic, channel))}`;
    }),
  );
  for (const line of got.results) ctx.out(`${update.any ? `configured ${what} on ` : ''}nsqd ${line}`);
  for (const e of got.errors) ctx.warn(e);
}

/** `--since` as unix milliseconds: given as such, as RFC 3339, or as a Go duration before now. */
function sinceMs(text: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  try {
    return Date.now() - parseGoDuration(text);
  } catch {
    // not a duration: a time
  }
  const at = /^\d{4}-\d\d-\d\dT/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(at)) {
    throw new CliError(
      `invalid value ${JSON.stringify(text)} for flag -since: not unix milliseconds, RFC 3339 or a duration (1h)`,
      2,
    );
  }
  return at;
}

/** `nsq replay <topic> <channel> --since=T|--offset=N` on every nsqd that has it. */
export async function replay(ctx: Context): Promise<void> {
  const [topic, channel] = ctx.args.positionals;
  const bySince = ctx.args.isSet('since');
  if (bySince === ctx.args.isSet('offset')) throw new CliError('give either --since or --offset', 2);
  const since = bySince ? sinceMs(ctx.args.string('since')) : null;
  const from: policy.ReplayFrom = since === null ? { offset: count(ctx, 'offset') } : { since };
  const where = since === null ? `from offset ${ctx.args.number('offset')}` : `from ${new Date(since).toISOString()}`;
  const what = describe(topic, channel);
  const nsqds = await targets(ctx, topic, channel);
  if (nsqds.length === 0) return;
  await confirm(
    ctx,
    `Replay ${what} ${where} on ${nsqds.length} nsqd(s) (its consumers receive those messages again)?`,
  );
  const done = await gather(nsqds, async (n) => {
    await withHttp((http) => policy.replayChannel(http, n, topic, channel, from));
    return n;
  });
  for (const n of done.results) ctx.out(`replayed ${what} ${where} on nsqd ${n}`);
  for (const e of done.errors) ctx.warn(e);
}

/** `nsq redrive`: one nsqd after the other, so `--max` bounds the total. */
export async function redrive(ctx: Context): Promise<void> {
  const [from, to] = ctx.args.positionals;
  const max = count(ctx, 'max');
  const nsqds = await targets(ctx, from, undefined);
  if (nsqds.length === 0) return;
  const most = max === 0 ? 'the dead letters' : `at most ${max} dead letters`;
  await confirm(ctx, `Move ${most} of ${from} into ${to} on ${nsqds.length} nsqd(s)?`);
  let moved = 0;
  for (const n of nsqds) {
    const left = max === 0 ? undefined : max - moved;
    if (left === 0) break;
    try {
      const result = await withHttp((http) =>
        policy.redriveTopic(http, n, from, to, left === undefined ? {} : { max: left }),
      );
      moved += result.moved;
      ctx.out(`moved ${result.moved} dead letter(s) from ${from} to ${to} on nsqd ${n}`);
    } catch (err) {
      ctx.warn(err instanceof Error ? err.message : String(err));
    }
  }
  if (nsqds.length > 1) ctx.out(`moved ${moved} dead letter(s) in all`);
}
