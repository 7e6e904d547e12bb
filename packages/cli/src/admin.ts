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

/**
 * `nsq empty|pause|unpause|delete <topic> [channel]`: POST `/topic/<action>` or `/channel/<action>`
 * to every nsqd that has the topic (and channel). A delete also goes to every lookupd, as nsqadmin
 * does, so stale registrations disappear too.
 */
export async function act(ctx: Context, action: Action): Promise<void> {
  ctx.requireNodes();
  const [topic, channel] = ctx.args.positionals;
  const what = channel === undefined ? `topic ${topic}` : `channel ${topic}/${channel}`;
  const candidates = await ctx.topicNsqds(topic);
  const having = await gather(candidates, async (n) => {
    const stats = await nsqdStats(n, topic, channel);
    const has = stats.some((t) => channel === undefined || t.channels.some((c) => c.channel_name === channel));
    return has ? n : null;
  });
  for (const e of having.errors) ctx.warn(e);
  const targets = having.results.filter((n): n is string => n !== null);

  const path = `/${channel === undefined ? 'topic' : 'channel'}/${action}${query({ topic, channel })}`;
  const done = await gather(targets, async (n) => {
    await nsqRequest('POST', n, path);
    return n;
  });
  for (const n of done.results) ctx.out(`${PAST[action]} ${what} on nsqd ${n}`);
  for (const e of done.errors) ctx.warn(e);

  let lookupdsDeleted = 0;
  if (action === 'delete' && ctx.lookupds.length > 0) {
    const fromLookupds = await gather(ctx.lookupds, async (l) => {
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
    lookupdsDeleted = fromLookupds.results.filter(Boolean).length;
    if (lookupdsDeleted > 0) ctx.out(`deleted ${what} on ${lookupdsDeleted} lookupd(s)`);
  }
  if (targets.length === 0 && lookupdsDeleted === 0 && !ctx.failed) throw new CliError(`${what} not found`);
}
