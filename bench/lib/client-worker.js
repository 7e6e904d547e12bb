/**
 * One NSQ client library under load, run as a child process forked by bench/run.js (IPC protocol
 * and harness: worker-common.js), so each client's CPU is measured on its own.
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
 *
 * `nsqdAddresses` (ours only; the scale scenario): the Producer pools over these nsqds instead of
 * `host:port`; `lookupdHttpAddresses` (ours only): the Consumer discovers its nsqds there.
 * `transport` (ours only; the transport scenario): { tls, snappy, deflate, deflateLevel } passed to
 * Producer / Consumer as IDENTIFY options; with `tls`, `tlsCaFile` is the CA that signed nsqd's
 * certificate (verified as usual: chain and the IP in subjectAltName). `bodyKind`: see bodies.js.
 */
import fs from 'node:fs';
import { makeBodies } from './bodies.js';
import { runWorker } from './worker-common.js';

/**
 * @import { Consumer } from '@nsq-ts/client'
 * @import { Message, Reader } from 'nsqjs'
 * @import { WorkerConfig } from './types.js'
 */

/**
 * @typedef {WorkerConfig & { client: string, window: number, bodyKind?: string,
 *   transport?: { tls?: boolean, snappy?: boolean, deflate?: boolean, deflateLevel?: number },
 *   tlsCaFile?: string | null, nsqdAddresses?: string[], lookupdHttpAddresses?: string[] }} ClientConfig
 */

/**
 * Producer / Consumer options for `config.transport` (empty for a plain connection).
 * @param {ClientConfig} config
 */
function transportOptions(config) {
  const t = config.transport;
  /** @type {{ tls?: { ca: Buffer }, snappy?: boolean, deflate?: boolean, deflateLevel?: number }} */
  const out = {};
  if (!t) return out;
  if (t.tls) {
    if (!config.tlsCaFile) throw new Error('transport.tls needs tlsCaFile');
    out.tls = { ca: fs.readFileSync(config.tlsCaFile) };
  }
  if (t.snappy) out.snappy = true;
  if (t.deflate) {
    out.deflate = true;
    out.deflateLevel = t.deflateLevel ?? 6;
  }
  return out;
}

runWorker(async (/** @type {ClientConfig} */ config, w) => {
  const address = `${config.host}:${config.port}`;
  const bodies = makeBodies(config.role === 'mpub' ? config.batchSize : 1, config.msgSize, config.bodyKind ?? 'x');
  const body = bodies[0];
  const nsqjs = config.client === 'nsqjs' ? (await import('nsqjs')).default : null;
  const ours = config.client === 'ours' ? await import('@nsq-ts/client') : null;
  if (nsqjs === null && ours === null) throw new Error(`unknown client ${config.client}`);
  if ((config.transport || config.nsqdAddresses || config.lookupdHttpAddresses) && ours === null) {
    throw new Error('transport, nsqdAddresses, lookupdHttpAddresses: ours only');
  }
  const transport = transportOptions(config);

  if (config.role === 'pub' || config.role === 'mpub') {
    const single = config.role === 'pub';
    const n = single ? 1 : config.batchSize;
    const window = single ? config.window : config.pipeline;
    /** @typedef {(err?: unknown) => void} Done */
    /** @type {(done: Done) => void} */
    let publishOne;
    /** @type {() => Promise<unknown>} */
    let close;
    if (ours !== null) {
      const hosts = config.nsqdAddresses ? { nsqdAddresses: config.nsqdAddresses } : { nsqdAddress: address };
      const producer = new ours.Producer({ ...hosts, ...transport });
      await producer.connect();
      publishOne = single
        ? (done) => producer.publish(config.topic, body).then(() => done(null), done)
        : (done) => producer.publishMany(config.topic, bodies).then(() => done(null), done);
      close = () => producer.close();
    } else if (nsqjs !== null) {
      const writer = new nsqjs.Writer(config.host, config.port);
      await new Promise((resolve, reject) => {
        writer.once('ready', resolve);
        writer.once('error', reject);
        writer.connect();
      });
      writer.on('error', (err) => w.fail(`nsqjs writer error: ${err?.message ?? err}`));
      publishOne = (done) => writer.publish(config.topic, single ? body : bodies, done);
      close = () =>
        new Promise((resolve) => {
          writer.once('closed', resolve);
          writer.close();
          setTimeout(resolve, 2000).unref();
        });
    } else {
      throw new Error(`unknown client ${config.client}`);
    }
    let running = false;
    let outstanding = 0;
    /** @type {(() => void) | null} */
    let onDrained = null;
    /** @type {Done} */
    const done = (err) => {
      outstanding--;
      if (err) {
        w.fail(`publish failed: ${/** @type {Error} */ (err)?.message ?? err}`);
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
        if (outstanding > 0) {
          await new Promise((resolve) => {
            onDrained = () => resolve(undefined);
          });
        }
        await close();
        w.finish({ window });
      },
    };
  }

  if (config.role === 'sub') {
    const target = config.maxMessages;
    /** @type {Consumer | null} */
    let consumer = null;
    /** @type {Reader | null} */
    let reader = null;
    let closing = false;
    const closeAndFinish = async () => {
      if (closing) return;
      closing = true;
      w.stats.stopAt = w.stats.stopAt || w.stats.lastAt;
      /** @type {{ clientStats?: unknown }} */
      const extra = {};
      if (consumer !== null) {
        await consumer.close();
        extra.clientStats = consumer.stats?.();
      }
      reader?.close();
      w.finish(extra);
    };
    /** @param {number} bytes */
    const onMessage = (bytes) => {
      w.count(1, bytes);
      if (target > 0 && w.stats.msgs >= target) {
        setImmediate(() => closeAndFinish().catch((e) => w.fail(/** @type {Error} */ (e).message)));
      }
    };
    w.ready();
    return {
      async start() {
        if (ours !== null) {
          const c = new ours.Consumer({
            topic: config.topic,
            channel: config.channel,
            ...(config.lookupdHttpAddresses
              ? { lookupdHttpAddresses: config.lookupdHttpAddresses }
              : { nsqdAddresses: [address] }),
            maxInFlight: config.rdy,
            ...transport,
            handler: (msg) => {
              if (msg.attempts > 1) w.stats.redeliveries++;
              else onMessage(msg.rawBody.length);
            },
          });
          consumer = c;
          c.on('error', (err) => w.log(`consumer error: ${err?.message ?? err}`));
          await c.connect();
        } else if (nsqjs !== null) {
          const r = new nsqjs.Reader(config.topic, config.channel, {
            nsqdTCPAddresses: [address],
            maxInFlight: config.rdy,
          });
          reader = r;
          r.on('message', (/** @type {Message} */ msg) => {
            if (msg.attempts > 1) w.stats.redeliveries++;
            else onMessage(msg.body.length);
            msg.finish();
          });
          r.on('error', (err) => w.log(`nsqjs reader error: ${err?.message ?? err}`));
          r.connect();
        }
      },
      async stop() {
        await closeAndFinish();
      },
    };
  }

  throw new Error(`client-worker: unknown role ${config.role}`);
});
