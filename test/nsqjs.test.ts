/**
 * nsqjs (the most used Node NSQ client) against our nsqd: its Reader and Writer must not be able
 * to tell the difference from the real broker. Every test starts its own nsqd on free ports and
 * waits on events or broker state with deadlines, never on sleeps. Tests of the broker's timeouts
 * (msg_timeout, TOUCH, DPUB, requeue delays, heartbeats) give it a ManualClock and move it; the
 * few "nothing arrives" checks use a short bounded wait.
 */
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { ClientV2 } from '@nsq-ts/nsqd';
import { eventually, ManualClock, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';

// ---- the slice of nsqjs's (untyped, CommonJS) API these tests use ----

interface NsqMessage extends EventEmitter {
  readonly id: string;
  readonly attempts: number;
  readonly body: Buffer;
  readonly timestamp: bigint;
  /** msg_timeout / max_msg_timeout as nsqjs read them from the IDENTIFY response. */
  readonly msgTimeout: number;
  readonly maxMsgTimeout: number;
  json(): unknown;
  finish(): void;
  requeue(delayMs?: number, backoff?: boolean): void;
  touch(): void;
}

interface NsqdConnection {
  write(data: Buffer | string): void;
  nsqdVersion: string | null;
  maxRdyCount: number;
  msgTimeout: number;
  maxMsgTimeout: number;
}

type PublishCallback = (err?: Error | null) => void;

interface NsqWriter extends EventEmitter {
  conn: NsqdConnection;
  ready: boolean;
  connect(): void;
  close(): void;
  publish(topic: string, msgs: unknown, callback?: PublishCallback): void;
  deferPublish(topic: string, msg: unknown, timeMs: number, callback?: PublishCallback): void;
}

interface NsqReader extends EventEmitter {
  readerRdy: { connections: Array<{ conn: NsqdConnection }> };
  connect(): void;
  close(): void;
  pause(): void;
  unpause(): void;
  isPaused(): boolean;
}

interface ConnectionOptions {
  heartbeatInterval?: number;
  maxInFlight?: number;
  messageTimeout?: number;
  requeueDelay?: number;
  clientId?: string;
}

interface ReaderOptions extends ConnectionOptions {
  nsqdTCPAddresses?: string[];
  lookupdHTTPAddresses?: string[];
  maxAttempts?: number;
  maxBackoffDuration?: number;
}

interface Nsqjs {
  Reader: new (topic: string, channel: string, options: ReaderOptions) => NsqReader;
  Writer: new (host: string, port: number, options?: ConnectionOptions) => NsqWriter;
}

const nsq = createRequire(import.meta.url)('nsqjs') as Nsqjs;

// ---- harness ----

const DEADLINE_MS = 5_000;
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  // Clients first (registered after their broker), then the broker.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A broker; tests of its timeouts pass a clock they move (nsqjs's own timers stay real). */
async function broker(options: Parameters<typeof startNsqd>[0] = {}, clock?: ManualClock): Promise<TestNsqd> {
  const d = await startNsqd(options, clock);
  cleanups.push(() => d.close());
  return d;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves on the first `event`, rejects on an 'error' before it or after `ms`. */
function nextEvent<T = unknown>(emitter: EventEmitter, event: string, ms = DEADLINE_MS): Promise<T> {
  return within(
    new Promise<T>((resolve, reject) => {
      const onEvent = (value: T) => {
        emitter.off('error', onError);
        resolve(value);
      };
      const onError = (err: Error) => {
        if (event === 'error') return;
        emitter.off(event, onEvent);
        reject(err);
      };
      emitter.once(event, onEvent);
      emitter.on('error', onError);
    }),
    ms,
    `'${event}'`,
  );
}

/** Collects items and lets a test await "at least n of them" with a deadline. */
class Inbox<T> {
  readonly items: T[] = [];
  private waiters: Array<() => void> = [];

  push(item: T): void {
    this.items.push(item);
    for (const wake of this.waiters.splice(0)) wake();
  }

  async waitFor(count: number, what: string, ms = DEADLINE_MS): Promise<T[]> {
    const reached = new Promise<void>((resolve) => {
      const check = () => {
        if (this.items.length >= count) resolve();
        else this.waiters.push(check);
      };
      check();
    });
    await within(reached, ms, `${what} (${this.items.length}/${count} so far)`);
    return this.items.slice(0, count);
  }
}

/** A bounded wait, only for asserting that something does NOT happen. */
function quietPeriod(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function hostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

interface WriterHandle {
  writer: NsqWriter;
  errors: Error[];
  closed: () => boolean;
}

async function openWriter(d: TestNsqd, options: ConnectionOptions = {}): Promise<WriterHandle> {
  const [host, port] = hostPort(d.tcpAddress);
  const writer = new nsq.Writer(host, port, options);
  const errors: Error[] = [];
  let closed = false;
  writer.on('error', (err: Error) => errors.push(err));
  writer.on('closed', () => {
    closed = true;
  });
  const ready = nextEvent(writer, 'ready');
  writer.connect();
  cleanups.push(() => {
    if (!closed) writer.close();
  });
  await ready;
  return { writer, errors, closed: () => closed };
}

function publish(writer: NsqWriter, topic: string, msgs: unknown): Promise<void> {
  return within(
    new Promise<void>((resolve, reject) => writer.publish(topic, msgs, (err) => (err ? reject(err) : resolve()))),
    DEADLINE_MS,
    `PUB/MPUB to ${topic}`,
  );
}

/**
 * nsqjs 0.13.0's Writer.deferPublish only works when handed a one-element array (a bare
 * string or Buffer throws "Expect an array of messages to produceMessages" client-side, before
 * anything is sent), and unlike publish it does not JSON-encode objects.
 */
function deferPublish(writer: NsqWriter, topic: string, msg: string | Buffer, delayMs: number): Promise<void> {
  return within(
    new Promise<void>((resolve, reject) =>
      writer.deferPublish(topic, [msg], delayMs, (err) => (err ? reject(err) : resolve())),
    ),
    DEADLINE_MS,
    `DPUB to ${topic}`,
  );
}

/** Publishes expecting the broker to refuse it; returns the error nsqjs hands the callback. */
async function publishError(publishing: (cb: PublishCallback) => void): Promise<Error> {
  const err = await within(
    new Promise<Error | null | undefined>((resolve) => publishing((e) => resolve(e))),
    DEADLINE_MS,
    'the publish callback',
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

interface Received {
  msg: NsqMessage;
  /** Captured at delivery: nsqjs reads it lazily from the raw frame. */
  attempts: number;
  at: number;
}

interface ReaderHandle {
  reader: NsqReader;
  inbox: Inbox<Received>;
  discarded: Inbox<Received>;
  errors: Error[];
  connection: () => NsqdConnection;
}

interface OpenReaderOptions {
  options?: ReaderOptions;
  /** What to do with each delivered message; finishes it by default. */
  onMessage?: (msg: NsqMessage) => void;
  /** Registers a 'discard' listener (without one nsqjs emits over-attempts messages as 'message'). */
  listenForDiscard?: boolean;
}

async function openReader(
  d: TestNsqd,
  topic: string,
  channel: string,
  { options = {}, onMessage = (msg) => msg.finish(), listenForDiscard = false }: OpenReaderOptions = {},
): Promise<ReaderHandle> {
  const reader = new nsq.Reader(topic, channel, { nsqdTCPAddresses: [d.tcpAddress], ...options });
  const inbox = new Inbox<Received>();
  const discarded = new Inbox<Received>();
  const errors: Error[] = [];
  reader.on('error', (err: Error) => errors.push(err));
  reader.on('message', (msg: NsqMessage) => {
    inbox.push({ msg, attempts: msg.attempts, at: performance.now() });
    onMessage(msg);
  });
  if (listenForDiscard) {
    reader.on('discard', (msg: NsqMessage) => discarded.push({ msg, attempts: msg.attempts, at: performance.now() }));
  }
  // 'ready' = SUB answered OK (the channel exists); nsqjs sends RDY in the same tick.
  const ready = nextEvent(reader, 'ready');
  reader.connect();
  cleanups.push(() => reader.close());
  await ready;
  const connection = () => {
    const rdy = reader.readerRdy.connections[0];
    if (rdy === undefined) throw new Error('reader has no nsqd connection');
    return rdy.conn;
  };
  return { reader, inbox, discarded, errors, connection };
}

// ---- broker-side observation (for synchronisation and cross-checks, never to drive) ----

function subscribers(d: TestNsqd, topic: string, channel: string): ClientV2[] {
  return [...d.nsqd.clients].filter((c) => c.channel?.topic.name === topic && c.channel.name === channel);
}

function channelState(d: TestNsqd, topic: string, channel: string) {
  const ch = d.nsqd.topics.get(topic)?.channels.get(channel);
  if (ch === undefined) throw new Error(`no channel ${topic}/${channel}`);
  return {
    depth: ch.depth,
    inFlight: ch.inFlightCount,
    deferred: ch.deferredCount,
    requeues: ch.requeueCount,
    timeouts: ch.timeoutCount,
  };
}

/** Waits until the broker has read `bytes` more from `client` than `since` (its commands ran). */
async function brokerRead(client: ClientV2 | undefined, since: number, bytes: number): Promise<number> {
  await eventually(() => expect(client?.socket.bytesRead).toBeGreaterThanOrEqual(since + bytes));
  return client?.socket.bytesRead as number;
}

/** Moves `clock` by `everyMs` and TOUCHes `msg`, `times` times, each TOUCH read by the broker. */
async function touchEvery(
  clock: ManualClock,
  d: TestNsqd,
  topic: string,
  msg: NsqMessage,
  times: number,
  everyMs: number,
) {
  const sub = subscribers(d, topic, 'ch')[0];
  let read = sub?.socket.bytesRead ?? 0;
  for (let i = 0; i < times; i++) {
    clock.advance(everyMs);
    msg.touch();
    read = await brokerRead(sub, read, 23); // `TOUCH <16-byte id>\n`
  }
}

interface Written {
  line: string;
  at: number;
}

/** Records the body-less commands (RDY, NOP, FIN, ...) an nsqjs connection writes from now on. */
function recordCommands(conn: NsqdConnection): Written[] {
  const written: Written[] = [];
  const write = conn.write.bind(conn);
  conn.write = (data) => {
    const line = Buffer.from(data).toString('latin1');
    if (/^[A-Z]+( [^\n]*)?\n$/.test(line)) written.push({ line: line.trimEnd(), at: performance.now() });
    write(data);
  };
  return written;
}

/** When the connection answered heartbeats: nsqjs writes NOP for each `_heartbeat_` only. */
const nopTimes = (written: Written[]) => written.filter((w) => w.line === 'NOP').map((w) => w.at);

const text = (r: Received) => r.msg.body.toString();
const sorted = (xs: string[]) => [...xs].sort();

// ---- tests ----

describe('nsqjs Reader/Writer against nsqd', () => {
  it('round-trips string, Buffer and JSON bodies sent by PUB and by MPUB', async () => {
    const d = await broker();
    const {
      inbox,
      errors: readerErrors,
      connection,
    } = await openReader(d, 'roundtrip', 'ch', {
      options: { maxInFlight: 10 },
    });
    const { writer, errors: writerErrors } = await openWriter(d);

    const binary = Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x80, 0x0a, 0x0d, 0x00, 0x20]);
    const json = { n: 1, s: 'héllo', list: [1, 2, 3], nested: { ok: true, nil: null } };
    const before = BigInt(Date.now()) * 1_000_000n;
    await publish(writer, 'roundtrip', 'a plain string');
    await publish(writer, 'roundtrip', binary);
    await publish(writer, 'roundtrip', json);
    await publish(writer, 'roundtrip', ['mpub one', Buffer.from('mpub two'), { mpub: 3 }, 'ünïcödé ✓ 🚀']);
    const after = BigInt(Date.now()) * 1_000_000n;

    const got = await inbox.waitFor(7, 'all 7 messages');
    const expected = [
      Buffer.from('a plain string'),
      binary,
      Buffer.from(JSON.stringify(json)),
      Buffer.from('mpub one'),
      Buffer.from('mpub two'),
      Buffer.from(JSON.stringify({ mpub: 3 })),
      Buffer.from('ünïcödé ✓ 🚀'),
    ];
    expect(sorted(got.map((r) => r.msg.body.toString('hex')))).toEqual(sorted(expected.map((b) => b.toString('hex'))));

    const jsonMsg = got.find((r) => text(r).startsWith('{"n":1'));
    expect(jsonMsg?.msg.json()).toEqual(json);
    expect(got.find((r) => text(r) === '{"mpub":3}')?.msg.json()).toEqual({ mpub: 3 });

    for (const r of got) {
      expect(r.attempts).toBe(1);
      expect(r.msg.id).toMatch(/^[0-9a-f]{16}$/);
      // Publish time in Unix nanoseconds.
      expect(r.msg.timestamp).toBeGreaterThanOrEqual(before - 1_000_000_000n);
      expect(r.msg.timestamp).toBeLessThanOrEqual(after + 1_000_000_000n);
    }
    expect(new Set(got.map((r) => r.msg.id)).size).toBe(7);

    // What nsqjs took from the IDENTIFY response.
    const conn = connection();
    expect(conn.nsqdVersion).toBe('1.3.0');
    expect(conn.maxRdyCount).toBe(2500);
    expect(conn.msgTimeout).toBe(60_000);
    expect(conn.maxMsgTimeout).toBe(900_000);

    await eventually(() => expect(channelState(d, 'roundtrip', 'ch')).toMatchObject({ depth: 0, inFlight: 0 }));
    expect(readerErrors).toEqual([]);
    expect(writerErrors).toEqual([]);
  });

  it('gives every channel of a topic its own copy of every message', async () => {
    const d = await broker();
    const channels = ['alpha', 'beta', 'gamma#ephemeral'];
    const readers = await Promise.all(
      channels.map((ch) => openReader(d, 'fanout', ch, { options: { maxInFlight: 5 } })),
    );
    const { writer } = await openWriter(d);

    const bodies = Array.from({ length: 10 }, (_, i) => `fan-${i}`);
    await publish(writer, 'fanout', bodies.slice(0, 8));
    await publish(writer, 'fanout', bodies[8]);
    await publish(writer, 'fanout', bodies[9]);

    const perChannel = await Promise.all(readers.map((r, i) => r.inbox.waitFor(10, `channel ${channels[i]}`)));
    for (const got of perChannel) expect(sorted(got.map(text))).toEqual(sorted(bodies));
    // The copies share the message ID (one publish, one ID).
    const idsByBody = (got: Received[]) => Object.fromEntries(got.map((r) => [text(r), r.msg.id]));
    expect(idsByBody(perChannel[1] as Received[])).toEqual(idsByBody(perChannel[0] as Received[]));
    expect(idsByBody(perChannel[2] as Received[])).toEqual(idsByBody(perChannel[0] as Received[]));

    await quietPeriod(100);
    for (const r of readers) {
      expect(r.inbox.items).toHaveLength(10);
      expect(r.errors).toEqual([]);
    }
  });

  it('splits one channel between competing readers, each message to exactly one', async () => {
    const d = await broker();
    const a = await openReader(d, 'compete', 'workers');
    const b = await openReader(d, 'compete', 'workers');
    // Both connections have announced RDY before anything is published.
    await eventually(() => {
      const subs = subscribers(d, 'compete', 'workers');
      expect(subs).toHaveLength(2);
      for (const c of subs) expect(c.rdy).toBeGreaterThan(0);
    });
    const { writer } = await openWriter(d);
    const bodies = Array.from({ length: 20 }, (_, i) => `job-${i}`);
    await publish(writer, 'compete', bodies);

    await eventually(() => expect(a.inbox.items.length + b.inbox.items.length).toBe(20));
    await eventually(() => expect(channelState(d, 'compete', 'workers')).toMatchObject({ depth: 0, inFlight: 0 }));
    const all = [...a.inbox.items, ...b.inbox.items];
    expect(all).toHaveLength(20);
    expect(sorted(all.map(text))).toEqual(sorted(bodies));
    expect(a.inbox.items.length).toBeGreaterThan(0);
    expect(b.inbox.items.length).toBeGreaterThan(0);
    for (const r of all) expect(r.attempts).toBe(1);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('redelivers a requeued message with attempts counting up, honouring the requeue delay', async () => {
    const clock = new ManualClock();
    const d = await broker({}, clock);
    const { inbox, errors } = await openReader(d, 'requeue', 'ch', {
      onMessage: (msg) => {
        if (msg.attempts === 1) msg.requeue(0, false);
        else if (msg.attempts === 2) msg.requeue(300, false);
        else msg.finish();
      },
    });
    const { writer } = await openWriter(d);
    await publish(writer, 'requeue', 'again and again');

    await eventually(() => expect(channelState(d, 'requeue', 'ch').deferred).toBe(1));
    clock.advance(299);
    expect(channelState(d, 'requeue', 'ch')).toMatchObject({ deferred: 1, inFlight: 0 });
    expect(inbox.items).toHaveLength(2);
    clock.advance(1);
    const got = await inbox.waitFor(3, 'three deliveries');
    expect(got.map((r) => r.attempts)).toEqual([1, 2, 3]);
    expect(new Set(got.map((r) => r.msg.id)).size).toBe(1);
    expect(new Set(got.map((r) => r.msg.timestamp)).size).toBe(1);
    for (const r of got) expect(text(r)).toBe('again and again');

    await eventually(() =>
      expect(channelState(d, 'requeue', 'ch')).toMatchObject({ depth: 0, inFlight: 0, deferred: 0, requeues: 2 }),
    );
    await quietPeriod(100);
    expect(inbox.items).toHaveLength(3);
    expect(errors).toEqual([]);
  });

  it('survives nsqjs backoff (RDY 0, then RDY 1) after a requeue', async () => {
    const d = await broker();
    const { inbox, errors, connection } = await openReader(d, 'backoff', 'ch', {
      // A tiny max backoff keeps the backoff window in the tens of milliseconds.
      options: { maxInFlight: 5, maxBackoffDuration: 1 },
      onMessage: (msg) => (msg.attempts === 1 && msg.body.toString() === 'm0' ? msg.requeue(0) : msg.finish()),
    });
    const written = recordCommands(connection());
    const { writer } = await openWriter(d);
    await publish(writer, 'backoff', ['m0', 'm1', 'm2', 'm3']);

    const got = await inbox.waitFor(5, 'four messages plus one redelivery');
    expect(sorted(got.map(text))).toEqual(['m0', 'm0', 'm1', 'm2', 'm3']);
    expect(got.filter((r) => text(r) === 'm0').map((r) => r.attempts)).toEqual([1, 2]);
    await eventually(() => expect(channelState(d, 'backoff', 'ch')).toMatchObject({ depth: 0, inFlight: 0 }));
    // nsqjs really went through backoff: RDY 0, probe with RDY 1, back to RDY 5.
    const rdys = written.filter((w) => w.line.startsWith('RDY ')).map((w) => w.line);
    expect(rdys.slice(0, 2)).toEqual(['RDY 0', 'RDY 1']);
    expect(rdys.at(-1)).toBe('RDY 5');
    expect(errors).toEqual([]);
  });

  it("emits 'discard' once attempts exceed maxAttempts and finishes the message", async () => {
    const d = await broker();
    const { inbox, discarded, errors } = await openReader(d, 'poison', 'ch', {
      options: { maxAttempts: 3 },
      onMessage: (msg) => msg.requeue(0, false),
      listenForDiscard: true,
    });
    const { writer } = await openWriter(d);
    await publish(writer, 'poison', 'poison pill');

    const [gone] = await discarded.waitFor(1, "the 'discard' event");
    expect(inbox.items.map((r) => r.attempts)).toEqual([1, 2, 3]);
    expect(gone?.attempts).toBe(4);
    expect(gone?.msg.id).toBe(inbox.items[0]?.msg.id);
    expect(gone?.msg.body.toString()).toBe('poison pill');

    // nsqjs FINs a discarded message: the broker must see it finished, not in flight.
    await eventually(() => {
      expect(channelState(d, 'poison', 'ch')).toMatchObject({ depth: 0, inFlight: 0, deferred: 0, requeues: 3 });
      expect(subscribers(d, 'poison', 'ch')[0]?.finishCount).toBe(1);
    });
    expect(inbox.items).toHaveLength(3);
    expect(discarded.items).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('redelivers a message not answered within the IDENTIFY msg_timeout', async () => {
    const clock = new ManualClock();
    const d = await broker({}, clock);
    const { inbox, errors, connection } = await openReader(d, 'timeout', 'ch', {
      options: { messageTimeout: 1000 },
      onMessage: (msg) => {
        if (msg.attempts > 1) msg.finish();
      },
    });
    expect(connection().msgTimeout).toBe(1000);
    const { writer } = await openWriter(d);
    await publish(writer, 'timeout', 'slow consumer');

    await inbox.waitFor(1, 'the first delivery');
    clock.advance(999);
    expect(channelState(d, 'timeout', 'ch')).toMatchObject({ inFlight: 1, timeouts: 0 });
    clock.advance(1);
    const [first, second] = await inbox.waitFor(2, 'the redelivery after the timeout');
    expect(first?.attempts).toBe(1);
    expect(second?.attempts).toBe(2);
    expect(second?.msg.id).toBe(first?.msg.id);
    expect(first?.msg.msgTimeout).toBe(1000);

    await eventually(() =>
      expect(channelState(d, 'timeout', 'ch')).toMatchObject({ depth: 0, inFlight: 0, timeouts: 1 }),
    );
    expect(errors).toEqual([]);
  });

  it('TOUCH keeps a message in flight past its msg_timeout', async () => {
    const clock = new ManualClock();
    const d = await broker({}, clock);
    const { inbox, errors, connection } = await openReader(d, 'touch', 'ch', {
      options: { messageTimeout: 1000 },
      onMessage: () => undefined,
    });
    const written = recordCommands(connection());
    const { writer } = await openWriter(d);
    await publish(writer, 'touch', 'long job');

    // Touch every 400 ms, finish at 2000 ms: twice the untouched 1000 ms deadline.
    const [{ msg }] = (await inbox.waitFor(1, 'the delivery')) as [Received];
    await touchEvery(clock, d, 'touch', msg, 4, 400);
    clock.advance(400);
    msg.finish();
    expect(written.filter((w) => w.line.startsWith('TOUCH ')).length).toBe(4);
    // FIN counted by the broker means the message was still in flight and owned by this reader.
    await eventually(() => {
      expect(subscribers(d, 'touch', 'ch')[0]?.finishCount).toBe(1);
      expect(channelState(d, 'touch', 'ch')).toMatchObject({ depth: 0, inFlight: 0, timeouts: 0 });
    });
    expect(inbox.items.map((r) => r.attempts)).toEqual([1]);
    expect(errors).toEqual([]);
  });

  it('TOUCH cannot extend a message past --max-msg-timeout', async () => {
    const clock = new ManualClock();
    const d = await broker({ maxMsgTimeoutMs: 1500 }, clock);
    const { inbox, errors } = await openReader(d, 'touchmax', 'ch', {
      options: { messageTimeout: 1000 },
      onMessage: (msg) => {
        if (msg.attempts > 1) msg.finish();
      },
    });
    const { writer } = await openWriter(d);
    await publish(writer, 'touchmax', 'too long');

    const [{ msg }] = (await inbox.waitFor(1, 'the delivery')) as [Received];
    await touchEvery(clock, d, 'touchmax', msg, 3, 400);
    // Touched at 1200 ms, so 2200 ms by msg_timeout; max_msg_timeout ends it at 1500 ms.
    clock.advance(299);
    expect(channelState(d, 'touchmax', 'ch')).toMatchObject({ inFlight: 1, timeouts: 0 });
    clock.advance(1);
    const [first, second] = await inbox.waitFor(2, 'the redelivery at max_msg_timeout');
    expect(first?.msg.maxMsgTimeout).toBe(1500);
    expect(second?.attempts).toBe(2);
    expect(errors).toEqual([]);
  });

  it('delivers a deferPublish (DPUB) message no earlier than its delay', async () => {
    const clock = new ManualClock();
    const d = await broker({}, clock);
    const { inbox, errors } = await openReader(d, 'deferred', 'ch', { options: { maxInFlight: 5 } });
    const { writer } = await openWriter(d);

    await deferPublish(writer, 'deferred', 'later', 600);
    await publish(writer, 'deferred', 'now');
    await inbox.waitFor(1, 'the immediate message');
    clock.advance(599);
    expect(channelState(d, 'deferred', 'ch').deferred).toBe(1);
    clock.advance(1);
    const [first, second] = await inbox.waitFor(2, 'the immediate and the deferred message');
    expect(first && text(first)).toBe('now');
    expect(second && text(second)).toBe('later');
    expect(second?.attempts).toBe(1);
    expect(errors).toEqual([]);
  });

  it('delivers nothing while the reader is paused and resumes on unpause', async () => {
    const d = await broker();
    const { reader, inbox, errors } = await openReader(d, 'pausing', 'ch', { options: { maxInFlight: 5 } });
    const { writer } = await openWriter(d);
    await publish(writer, 'pausing', 'before');
    await inbox.waitFor(1, 'the first message');

    reader.pause();
    expect(reader.isPaused()).toBe(true);
    // nsqjs pauses with RDY 0; wait until the broker has applied it before publishing.
    await eventually(() => expect(subscribers(d, 'pausing', 'ch')[0]?.rdy).toBe(0));
    await publish(writer, 'pausing', ['p1', 'p2', 'p3']);
    // A delivery happens as the PUB is taken, before its OK: after the OK the broker still holds all three.
    expect(channelState(d, 'pausing', 'ch')).toMatchObject({ depth: 3, inFlight: 0 });
    expect(inbox.items).toHaveLength(1);

    reader.unpause();
    expect(reader.isPaused()).toBe(false);
    const got = await inbox.waitFor(4, 'the messages held during the pause');
    expect(sorted(got.slice(1).map(text))).toEqual(['p1', 'p2', 'p3']);
    await eventually(() => expect(channelState(d, 'pausing', 'ch')).toMatchObject({ depth: 0, inFlight: 0 }));
    expect(errors).toEqual([]);
  });

  it('carries 1 MB messages intact, up to exactly --max-msg-size', async () => {
    const d = await broker();
    const { inbox, errors } = await openReader(d, 'large', 'ch', { options: { maxInFlight: 3 } });
    const { writer } = await openWriter(d);

    const oneMb = randomBytes(1_000_000);
    const atLimit = randomBytes(1_048_576);
    await publish(writer, 'large', oneMb);
    await publish(writer, 'large', [atLimit, Buffer.from('small after large')]);

    const got = await inbox.waitFor(3, 'the large messages', 10_000);
    const bySize = new Map(got.map((r) => [r.msg.body.length, r.msg.body]));
    expect(bySize.get(1_000_000)?.equals(oneMb)).toBe(true);
    expect(bySize.get(1_048_576)?.equals(atLimit)).toBe(true);
    expect(bySize.get('small after large'.length)?.toString()).toBe('small after large');
    expect(errors).toEqual([]);
  });

  it('surfaces E_BAD_TOPIC to the publish callback for an invalid topic name', async () => {
    const d = await broker();
    // nsqjs validates names for SUB only: PUB/MPUB/DPUB go to the broker as they are.
    const pub = await openWriter(d);
    const pubErr = await publishError((cb) => pub.writer.publish('bad$topic', 'x', cb));
    expect(pubErr.message).toBe('E_BAD_TOPIC PUB topic name "bad$topic" is not valid');
    // The error is fatal: the broker closes the connection and nsqjs reports it.
    await eventually(() => expect(pub.closed()).toBe(true));
    expect(pub.errors.map((e) => e.message)).toEqual([pubErr.message]);
    const afterClose = await publishError((cb) => pub.writer.publish('fine', 'x', cb));
    expect(afterClose.message).toBe('No active Writer connection to send messages');

    const mpub = await openWriter(d);
    const tooLong = 't'.repeat(65);
    const mpubErr = await publishError((cb) => mpub.writer.publish(tooLong, ['a', 'b'], cb));
    expect(mpubErr.message).toBe(`E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "${tooLong}" is not valid`);
    await eventually(() => expect(mpub.closed()).toBe(true));

    const dpub = await openWriter(d);
    const dpubErr = await publishError((cb) => dpub.writer.deferPublish('bad/topic', ['x'], 100, cb));
    expect(dpubErr.message).toBe('E_BAD_TOPIC DPUB topic name "bad/topic" is not valid');
    await eventually(() => expect(dpub.closed()).toBe(true));

    await eventually(() => expect(d.nsqd.clients.size).toBe(0));
    expect(d.nsqd.topics.size).toBe(0);
  });

  it('surfaces E_BAD_MESSAGE for bodies over --max-msg-size and E_INVALID for a DPUB delay out of range', async () => {
    const d = await broker({ maxMsgSize: 100 });
    const { inbox } = await openReader(d, 'sized', 'ch', { options: { maxInFlight: 5 } });

    const ok = await openWriter(d);
    await publish(ok.writer, 'sized', Buffer.alloc(100, 0x61));
    await inbox.waitFor(1, 'the message at the size limit');

    const pub = await openWriter(d);
    const pubErr = await publishError((cb) => pub.writer.publish('sized', Buffer.alloc(101, 0x62), cb));
    expect(pubErr.message).toBe('E_BAD_MESSAGE PUB message too big 101 > 100');
    await eventually(() => expect(pub.closed()).toBe(true));

    const mpub = await openWriter(d);
    const mpubErr = await publishError((cb) => mpub.writer.publish('sized', ['fits', Buffer.alloc(101, 0x63)], cb));
    expect(mpubErr.message).toBe('E_BAD_MESSAGE MPUB message too big 101 > 100');
    await eventually(() => expect(mpub.closed()).toBe(true));

    const dpub = await openWriter(d);
    const dpubErr = await publishError((cb) => dpub.writer.deferPublish('sized', ['x'], 3_600_001, cb));
    expect(dpubErr.message).toBe('E_INVALID DPUB timeout 3600001 out of range 0-3600000');
    await eventually(() => expect(dpub.closed()).toBe(true));

    // Nothing of the refused publishes reached the channel (MPUB is all or nothing).
    await quietPeriod(100);
    expect(inbox.items.map((r) => r.msg.body.length)).toEqual([100]);
    expect(channelState(d, 'sized', 'ch')).toMatchObject({ depth: 0, deferred: 0 });
    expect(ok.errors).toEqual([]);
  });

  it('answers heartbeats at the negotiated interval and stays connected past the read deadline', async () => {
    const clock = new ManualClock();
    const d = await broker({}, clock);
    const r = await openReader(d, 'heartbeat', 'ch', { options: { heartbeatInterval: 1 } });
    const w = await openWriter(d, { heartbeatInterval: 1 });
    const readerWrites = recordCommands(r.connection());
    const writerWrites = recordCommands(w.writer.conn);
    const brokerSides = [...d.nsqd.clients];
    expect(brokerSides).toHaveLength(2);
    const read = brokerSides.map((c) => c.socket.bytesRead);

    // Three heartbeats answered: 3 s, past the 2 s read deadline of a 1 s interval.
    for (let beat = 1; beat <= 3; beat++) {
      clock.advance(999);
      expect(nopTimes(readerWrites).length + nopTimes(writerWrites).length).toBe(2 * (beat - 1));
      clock.advance(1);
      await eventually(() => {
        expect(nopTimes(readerWrites)).toHaveLength(beat);
        expect(nopTimes(writerWrites)).toHaveLength(beat);
      });
      // The broker has read each NOP (`NOP\n`) before the clock moves on.
      for (const [i, c] of brokerSides.entries()) read[i] = await brokerRead(c, read[i] as number, 4);
    }
    expect(d.nsqd.clients.size).toBe(2);
    await publish(w.writer, 'heartbeat', 'still alive');
    await r.inbox.waitFor(1, 'a message after heartbeats');
    expect(r.errors).toEqual([]);
    expect(w.errors).toEqual([]);
    expect(w.closed()).toBe(false);
  });

  it('closes readers and writers cleanly', async () => {
    const d = await broker();
    const r = await openReader(d, 'closing', 'ch');
    const w = await openWriter(d);
    await publish(w.writer, 'closing', 'one');
    await r.inbox.waitFor(1, 'a message before closing');
    expect(d.nsqd.clients.size).toBe(2);

    const readerClosed = nextEvent(r.reader, 'nsqd_closed');
    const notReady = nextEvent(r.reader, 'not_ready');
    r.reader.close();
    await readerClosed;
    await notReady;

    const writerClosed = nextEvent(w.writer, 'closed');
    w.writer.close();
    await writerClosed;

    await eventually(() => expect(d.nsqd.clients.size).toBe(0));
    expect(channelState(d, 'closing', 'ch')).toMatchObject({ depth: 0, inFlight: 0 });
    expect(r.errors).toEqual([]);
    expect(w.errors).toEqual([]);
  });

  it("recovers a closed reader's unfinished message after its timeout", async () => {
    const clock = new ManualClock();
    const d = await broker({}, clock);
    const first = await openReader(d, 'handover', 'ch', {
      options: { messageTimeout: 1000 },
      onMessage: () => undefined, // never answered
    });
    const { writer } = await openWriter(d);
    await publish(writer, 'handover', 'orphan');
    const [orphan] = await first.inbox.waitFor(1, 'the message to the first reader');
    first.reader.close();
    await eventually(() => expect(subscribers(d, 'handover', 'ch')).toHaveLength(0));
    // NSQ does not requeue on disconnect: the message stays in flight until it times out.
    expect(channelState(d, 'handover', 'ch')).toMatchObject({ inFlight: 1, depth: 0 });

    const second = await openReader(d, 'handover', 'ch');
    clock.advance(999);
    expect(channelState(d, 'handover', 'ch')).toMatchObject({ inFlight: 1, timeouts: 0 });
    clock.advance(1);
    const [again] = await second.inbox.waitFor(1, 'the redelivery to the second reader');
    expect(again?.msg.id).toBe(orphan?.msg.id);
    expect(again?.attempts).toBe(2);
    await eventually(() =>
      expect(channelState(d, 'handover', 'ch')).toMatchObject({ depth: 0, inFlight: 0, timeouts: 1 }),
    );
    expect(first.errors).toEqual([]);
    expect(second.errors).toEqual([]);
  });
});
