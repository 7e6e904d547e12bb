import { setTimeout as sleep } from 'node:timers/promises';
import { CliError } from './args.js';
import { type Context, nsqdStats } from './context.js';
import { gather } from './http.js';

/** The channel's counters that `nsq stat` sums over every nsqd. */
const COUNTERS = [
  'depth',
  'backend_depth',
  'in_flight_count',
  'deferred_count',
  'requeue_count',
  'timeout_count',
  'message_count',
  'client_count',
] as const;

/** One row: a channel's counters summed over every nsqd, plus its topic's message count. */
type Totals = Record<(typeof COUNTERS)[number] | 'topicMessages', number>;

const RULE = `${'-'.repeat(6)}rate${'-'.repeat(6)}+${'-'.repeat(16)}depth${'-'.repeat(16)}+${'-'.repeat(14)}metadata${'-'.repeat(15)}`;
const COLUMNS = [7, 7, 7, 7, 7, 5, 5, 7, 7, 12, 7];
const HEADER_EVERY = 25;

function row(cells: readonly (string | number)[]): string {
  const padded = cells.map((c, i) => String(c).padStart(COLUMNS[i]));
  return `${padded.slice(0, 2).join(' ')} | ${padded.slice(2, 7).join(' ')} | ${padded.slice(7).join(' ')}`;
}

/** Sums the channel over the topic's nsqds; unreachable ones are reported, an absent channel is fatal. */
async function fetchTotals(ctx: Context, topic: string, channel: string): Promise<Totals> {
  const nsqds = await ctx.topicNsqds(topic);
  const got = await gather(nsqds, (n) => nsqdStats(n, topic, channel));
  for (const e of got.errors) ctx.warn(e);
  if (nsqds.length > 0 && got.errors.length === nsqds.length) throw new CliError('no nsqd answered');
  const t = { topicMessages: 0 } as Totals;
  for (const k of COUNTERS) t[k] = 0;
  let found = false;
  for (const ts of got.results.flat()) {
    t.topicMessages += ts.message_count;
    for (const c of ts.channels) {
      if (c.channel_name !== channel) continue;
      found = true;
      for (const k of COUNTERS) t[k] += c[k];
    }
  }
  if (!found) throw new CliError(`channel ${topic}/${channel} not found`);
  return t;
}

/**
 * `nsq stat <topic> <channel>`: like nsq_stat — every interval, one row of the channel's counters
 * summed over all nsqds (`/stats?format=json&topic=&channel=&include_clients=false`), with message
 * rates (ingress: the topic's, egress: the channel's) since the previous row.
 */
export async function stat(ctx: Context): Promise<void> {
  ctx.requireNodes();
  const [topic, channel] = ctx.args.positionals;
  const intervalMs = ctx.args.number('interval');
  const count = ctx.args.number('count');
  if (!(intervalMs > 0)) throw new CliError('--interval must be positive', 2);
  if (count < 0) throw new CliError('--count must be >= 0', 2);
  let previous: { at: number; totals: Totals } | null = null;
  for (let i = 0; count === 0 || i < count; i++) {
    if (i > 0) await sleep(intervalMs);
    const totals = await fetchTotals(ctx, topic, channel);
    const at = performance.now();
    if (i % HEADER_EVERY === 0) {
      ctx.out(RULE);
      ctx.out(row(['ingress', 'egress', 'total', 'mem', 'disk', 'inflt', 'def', 'req', 't-o', 'msgs', 'clients']));
    }
    const rate = (now: number, before: number | undefined): string =>
      previous === null || before === undefined
        ? '-'
        : String(Math.round(((now - before) * 1000) / (at - previous.at)));
    ctx.out(
      row([
        rate(totals.topicMessages, previous?.totals.topicMessages),
        rate(totals.message_count, previous?.totals.message_count),
        totals.depth,
        totals.depth - totals.backend_depth,
        totals.backend_depth,
        totals.in_flight_count,
        totals.deferred_count,
        totals.requeue_count,
        totals.timeout_count,
        totals.message_count,
        totals.client_count,
      ]),
    );
    previous = { at, totals };
  }
}
