/**
 * One NSQ client library under load, run as a child process forked by bench/run.js (IPC protocol:
 * see load-worker.js; harness: worker-common.js), so each client's CPU is measured on its own.
 *
 * `client`: 'ours' (@nsq-ts/client, packages/client/dist) or 'nsqjs' (the npm package).
 * Roles:
 *   pub   single-message publishes, `window` of them outstanding (each answered publish starts the
 *         next): ours `producer.publish(topic, body)` (pipelined by the Producer), nsqjs
 *         `writer.publish(topic, body, callback)`. Until `stop`, then waits for the outstanding.
 *   mpub  batches of `batchSize`, `pipeline` batches outstanding: ours `publishMany`, nsqjs
 *         `writer.publish(topic, array, callback)`.
 *   sub   a consumer with a no-op handler that finishes every message (ours: the handler resolves →
 *         FIN; nsqjs: `msg.finish()`), `maxInFlight`; created on `start` (connect time counts),
 *         finishes by itself after `maxMessages` messages, then closes the consumer.
 */
import { runWorker } from './worker-common.js';

runWorker(async (config, w) => {
  const address = `${config.host}:${config.port}`;
  const body = Buffer.alloc(config.msgSize, 'x');
  const nsqjs = config.client === 'nsqjs' ? (await import('nsqjs')).default : null;
  const ours = config.client === 'ours' ? await import('@nsq-ts/client') : null;
  if (nsqjs === null && ours === null) throw new Error(`unknown client ${config.client}`);

  if (config.role === 'pub' || config.role === 'mpub') {
    const single = config.role === 'pub';
    const n = single ? 1 : config.batchSize;
    const payload = single ? body : new Array(n).fill(body);
    const window = single ? config.window : config.pipeline;
    let publishOne;
    let close;
    if (ours !== null) {
      const producer = new ours.Producer({ nsqdAddress: address });
      await producer.connect();
      publishOne = single
        ? (done) => producer.publish(config.topic, payload).then(() => done(null), done)
        : (done) => producer.publishMany(config.topic, payload).then(() => done(null), done);
      close = () => producer.close();
    } else {
      const writer = new nsqjs.Writer(config.host, config.port);
      await new Promise((resolve, reject) => {
        writer.once('ready', resolve);
        writer.once('error', reject);
        writer.connect();
      });
      writer.on('error', (err) => w.fail(`nsqjs writer error: ${err?.message ?? err}`));
      publishOne = (done) => writer.publish(config.topic, payload, done);
      close = () =>
        new Promise((resolve) => {
          writer.once('closed', resolve);
          writer.close();
          setTimeout(resolve, 2000).unref();
        });
    }
    let running = false;
    let outstanding = 0;
    let onDrained = null;
    const done = (err) => {
      outstanding--;
      if (err) {
        w.fail(`publish failed: ${err?.message ?? err}`);
        return;
      }
      w.count(n, n * config.msgSize);
      if (running) issue();
      else if (outstanding === 0 && onDrained !== null) onDrained();
    };
    const issue = () => {
      outstanding++;
      publishOne(done);
    };
    w.ready();
    return {
      start() {
        running = true;
        for (let i = 0; i < window; i++) issue();
      },
      async stop() {
        running = false;
        if (outstanding > 0) await new Promise((resolve) => (onDrained = resolve));
        await close();
        w.finish({ window });
      },
    };
  }

  if (config.role === 'sub') {
    const target = config.maxMessages;
    let consumer = null;
    let closing = false;
    const closeAndFinish = async () => {
      if (closing) return;
      closing = true;
      w.stats.stopAt = w.stats.stopAt || w.stats.lastAt;
      const extra = {};
      if (ours !== null) {
        await consumer.close();
        extra.clientStats = consumer.stats?.();
      } else {
        consumer.close();
      }
      w.finish(extra);
    };
    const onMessage = (bytes) => {
      w.count(1, bytes);
      if (target > 0 && w.stats.msgs >= target) setImmediate(() => closeAndFinish().catch((e) => w.fail(e.message)));
    };
    w.ready();
    return {
      async start() {
        if (ours !== null) {
          consumer = new ours.Consumer({
            topic: config.topic,
            channel: config.channel,
            nsqdAddresses: [address],
            maxInFlight: config.rdy,
            handler: (msg) => {
              if (msg.attempts > 1) w.stats.redeliveries++;
              else onMessage(msg.rawBody.length);
            },
          });
          consumer.on('error', (err) => w.log(`consumer error: ${err?.message ?? err}`));
          await consumer.connect();
        } else {
          consumer = new nsqjs.Reader(config.topic, config.channel, {
            nsqdTCPAddresses: [address],
            maxInFlight: config.rdy,
          });
          consumer.on('message', (msg) => {
            if (msg.attempts > 1) w.stats.redeliveries++;
            else onMessage(msg.body.length);
            msg.finish();
          });
          consumer.on('error', (err) => w.log(`nsqjs reader error: ${err?.message ?? err}`));
          consumer.connect();
        }
      },
      async stop() {
        await closeAndFinish();
      },
    };
  }

  throw new Error(`client-worker: unknown role ${config.role}`);
});
