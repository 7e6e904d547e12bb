import { createInterface } from 'node:readline';
import { Producer } from '@nsq-ts/client';
import { CliError } from './args.js';
import type { Context } from './context.js';
import { gather, lookupNodes, lookupTopicProducers, nsqdTcpAddress } from './http.js';

/** Publishes not yet answered before reading more of stdin. */
const MAX_OUTSTANDING = 1_000;

/**
 * The nsqd TCP addresses to publish to or consume from: `--nsqd-tcp-address`, else (with
 * `--lookupd-http-address`) the topic's producers — for `pub`, every node when the topic has none
 * yet — else the TCP port of each `--nsqd-http-address` (from `/info`).
 */
export async function tcpAddresses(ctx: Context, topic: string, anyNode: boolean): Promise<string[]> {
  const tcp = ctx.args.strings('nsqd-tcp-address');
  if (tcp.length > 0) return tcp;
  if (ctx.lookupds.length > 0) {
    const lookups = [() => lookupTopicProducers(ctx.lookupds, topic, 'tcp_port')];
    if (anyNode) lookups.push(() => lookupNodes(ctx.lookupds));
    for (const lookup of lookups) {
      const found = await lookup();
      if (found.errors.length === ctx.lookupds.length) {
        for (const e of found.errors) ctx.warn(e);
        throw new CliError('no lookupd answered');
      }
      if (found.results.length > 0) return found.results;
    }
    return [];
  }
  const found = await gather(ctx.nsqdHttp, nsqdTcpAddress);
  for (const e of found.errors) ctx.warn(e);
  return found.results;
}

/** `nsq pub <topic> [msg|-]`: one message from the argument, or one per non-empty line of stdin. */
export async function pub(ctx: Context): Promise<void> {
  ctx.requireNodes(true);
  const [topic, message = '-'] = ctx.args.positionals;
  const addresses = await tcpAddresses(ctx, topic, true);
  if (addresses.length === 0) throw new CliError('no nsqd to publish to');
  const producer = new Producer({ nsqdAddresses: addresses, dialTimeoutMs: 3_000, publishTimeoutMs: 10_000 });
  try {
    try {
      await producer.connect();
    } catch (err) {
      throw new CliError(`cannot connect to nsqd ${addresses.join(', ')}: ${(err as Error).message}`);
    }
    if (message !== '-') {
      await producer.publish(topic, message);
      ctx.info(`published 1 message to ${topic}`);
      return;
    }
    const count = await publishLines(ctx, producer, topic);
    ctx.info(`published ${count} message(s) to ${topic}`);
  } finally {
    await producer.close();
  }
}

async function publishLines(ctx: Context, producer: Producer, topic: string): Promise<number> {
  let published = 0;
  let lastReport = { at: Date.now(), count: 0 };
  const progress = process.stdin.isTTY
    ? null
    : setInterval(() => {
        const now = Date.now();
        const rate = ((published - lastReport.count) * 1000) / (now - lastReport.at);
        ctx.info(`${published} published (${Math.round(rate)}/s)`);
        lastReport = { at: now, count: published };
      }, 1_000);
  const outstanding = new Set<Promise<void>>();
  let failure: Error | null = null;
  try {
    for await (const line of createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY })) {
      if (line === '') continue;
      const p = producer.publish(topic, line).then(
        () => {
          published++;
          outstanding.delete(p);
        },
        (err: Error) => {
          failure ??= err;
          outstanding.delete(p);
        },
      );
      outstanding.add(p);
      if (outstanding.size >= MAX_OUTSTANDING) await Promise.race(outstanding);
      if (failure !== null) break;
    }
    await Promise.all(outstanding);
  } finally {
    if (progress !== null) clearInterval(progress);
  }
  if (failure !== null) {
    throw new CliError(`publish failed after ${published} message(s): ${(failure as Error).message}`);
  }
  return published;
}
