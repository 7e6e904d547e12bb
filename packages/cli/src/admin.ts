import { createInterface } from 'node:readline';
import { CliError } from './args.js';
import { type Context, nsqdStats } from './context.js';
import { gather, nsqRequest, query } from './http.js';

function print(ctx: Context, names: Iterable<string>): void {
  for (const name of [...new Set(names)].sort()) ctx.out(name);
}

/** `nsq topics`: lookupds' `/topics`, or the topics in each nsqd's `/stats`. */
export async function topics(ctx: Context): Promise<void> {
  ctx.requireNodes();
  const got =
    ctx.lookupds.length > 0
      ? await gather(ctx.lookupds, async (l) => {
          const body = (await nsqRequest('GET', l, '/topics')) as { topics?: string[] } | null;
          return body?.topics ?? [];
        })
      : await gather(ctx.nsqdHttp, async (n) => (await nsqdStats(n)).map((t) => t.topic_name));
  for (const e of got.errors) ctx.warn(e);
  print(ctx, got.results.flat());
}

/** `nsq channels <topic>`: lookupds' `/channels?topic=`, or the topic's channels in each nsqd's `/stats`. */
export async function channels(ctx: Context): Promise<void> {
  ctx.requireNodes();
  const [topic] = ctx.args.positionals;
  const got =
    ctx.lookupds.length > 0
      ? await gather(ctx.lookupds, async (l) => {
          const body = (await nsqRequest('GET', l, `/channels${query({ topic })}`)) as { channels?: string[] } | null;
          return body?.channels ?? [];
        })
      : await gather(ctx.nsqdHttp, async (n) =>
          (await nsqdStats(n, topic)).flatMap((t) => t.channels.map((c) => c.channel_name)),
        );
  for (const e of got.errors) ctx.warn(e);
  print(ctx, got.results.flat());
}

export const ACTIONS = ['empty', 'pause', 'unpause', 'delete'] as const;
export type Action = (typeof ACTIONS)[number];
const PAST: Record<Action, string> = { empty: 'emptied', pause: 'paused', unpause: 'unpaused', delete: 'deleted' };

/** The lookupds that list `topic` (or its `channel`): a delete goes to those, and only those. */
async function lookupdsKnowing(ctx: Context, topic: string, channel: string | undefined): Promise<string[]> {
  const got = await gather(ctx.lookupds, async (l) => {
    if (channel === undefined) {
      const body = (await nsqRequest('GET', l, '/topics')) as { topics?: unknown } | null;
      return Array.isArray(body?.topics) && body.topics.includes(topic) ? l : null;
    }
    const body = (await nsqRequest('GET', l, `/channels${query({ topic })}`)) as { channels?: unknown } | null;
    return Array.isArray(body?.channels) && body.channels.includes(channel) ? l : null;
  });
  for (const e of got.errors) ctx.warn(e);
  return got.results.filter((l): l is string => l !== null);
}

/** On a terminal, asks before destroying anything; `--yes`, or stdin not being a terminal, skips it. */
export async function confirm(ctx: Context, question: string): Promise<void> {
  if (ctx.args.bool('yes') || process.stdin.isTTY !== true) return;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.question(`${question} [y/N] `, resolve);
      // Ctrl-D: no answer is a no.
      rl.once('close', () => resolve(''));
    });
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('aborted: nothing was changed');
  } finally {
    rl.close();
  }
}

/** Where an action goes; nodes that could not be asked are reported (exit 1). */
export async function nsqdsHaving(ctx: Context, topic: string, channel: string | undefined): Promise<string[]> {
  const candidates = await ctx.topicNsqds(topic);
  const having = await gather(candidates, async (n) => {
    const stats = await nsqdStats(n, topic, channel);
    const has = stats.some((t) => channel === undefined || t.channels.some((c) => c.channel_name === channel));
    return has ? n : null;
  });
  for (const e of having.errors) ctx.warn(e);
  return having.results.filter((n): n is string => n !== null);
}

/** `nsq empty|pause|unpause|delete`; a delete also goes to every lookupd listing it, as nsqadmin does. */
export async function act(ctx: Context, action: Action): Promise<void> {
  ctx.requireNodes();
  const [topic, channel] = ctx.args.positionals;
  const what = channel === undefined ? `topic ${topic}` : `channel ${topic}/${channel}`;
  const targets = await nsqdsHaving(ctx, topic, channel);
  const lookupds = action === 'delete' && ctx.lookupds.length > 0 ? await lookupdsKnowing(ctx, topic, channel) : [];
  if (targets.length === 0 && lookupds.length === 0) {
    if (ctx.failed) return; // what could not be asked was reported; "not found" would be a guess
    throw new CliError(`${what} not found`);
  }
  if (action === 'empty' || action === 'delete') {
    const where = [`${targets.length} nsqd(s)`, ...(lookupds.length > 0 ? [`${lookupds.length} lookupd(s)`] : [])];
    const verb = action === 'empty' ? 'Empty (drop every queued message of)' : 'Delete';
    await confirm(ctx, `${verb} ${what} on ${where.join(' and ')}?`);
  }

  const path = `/${channel === undefined ? 'topic' : 'channel'}/${action}${query({ topic, channel })}`;
  const done = await gather(targets, async (n) => {
    await nsqRequest('POST', n, path);
    return n;
  });
  for (const n of done.results) ctx.out(`${PAST[action]} ${what} on nsqd ${n}`);
  for (const e of done.errors) ctx.warn(e);
  if (lookupds.length > 0) {
    const fromLookupds = await gather(lookupds, async (l) => {
      try {
        await nsqRequest('POST', l, path);
        return true;
      } catch (err) {
        // Deleting it on the nsqds already unregistered it there.
        if (err instanceof CliError && / HTTP 404 /.test(err.message)) return false;
        throw err;
      }
    });
    for (const e of fromLookupds.errors) ctx.warn(e);
    const deleted = fromLookupds.results.filter(Boolean).length;
    if (deleted > 0) ctx.out(`deleted ${what} on ${deleted} lookupd(s)`);
  }
}
