import { randomInt } from 'node:crypto';
import { Consumer, type Message } from '@nsq-ts/client';
import { CliError } from './args.js';
import type { Context } from './context.js';
import { httpAuthToken } from './http.js';
import { tcpAddresses } from './pub.js';

/**
 * `nsq tail <topic>`: like nsq_tail — subscribes (by default on a fresh ephemeral channel
 * `tail<6 digits>#ephemeral`, max-in-flight 200), prints each body on its own line, and exits after
 * `-n` messages (0: until interrupted).
 */
export async function tail(ctx: Context): Promise<void> {
  ctx.requireNodes(true);
  const [topic] = ctx.args.positionals;
  const limit = ctx.args.number('n');
  if (limit < 0) throw new CliError('-n must be >= 0', 2);
  const channel = ctx.args.string('channel') || `tail${String(randomInt(1_000_000)).padStart(6, '0')}#ephemeral`;
  const lookupd = ctx.lookupds.length > 0 && ctx.args.strings('nsqd-tcp-address').length === 0;
  let nsqdAddresses: string[] = [];
  if (lookupd) {
    // Fails early when no lookupd answers; the consumer itself keeps polling them.
    await tcpAddresses(ctx, topic, false);
  } else {
    nsqdAddresses = await tcpAddresses(ctx, topic, false);
    if (nsqdAddresses.length === 0) throw new CliError('no nsqd to consume from');
  }

  let shown = 0;
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const consumer = new Consumer({
    topic,
    channel,
    nsqdAddresses,
    lookupdHttpAddresses: lookupd ? ctx.lookupds : [],
    lookupdPollIntervalMs: ctx.args.number('lookupd-poll-interval'),
    lookupdAuthToken: httpAuthToken(),
    maxInFlight: ctx.args.number('max-in-flight'),
    dialTimeoutMs: 3_000,
    // Its errors and disconnects are reported below, once each.
    logger: null,
    handler: (msg: Message<Buffer>) => {
      if (limit > 0 && shown >= limit) {
        msg.requeue(0, false); // beyond -n: give it back to the channel
        return;
      }
      shown++;
      process.stdout.write(Buffer.concat([msg.body, Buffer.from('\n')]));
      if (shown === limit) finished();
    },
  });
  consumer.on('error', (err) => ctx.warn(err.message));
  consumer.on('disconnected', (address, err) => {
    if (err !== null) ctx.warn(`nsqd ${address}: ${err.message}`);
  });
  const onSignal = () => finished();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    try {
      await consumer.connect();
    } catch (err) {
      throw new CliError(`cannot subscribe to ${topic}/${channel}: ${(err as Error).message}`);
    }
    ctx.info(`consuming ${topic}/${channel}`);
    await done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await consumer.close();
  }
}
