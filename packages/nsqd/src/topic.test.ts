import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FakeConsumer } from './channel.test-util.js';
import { ManualClock } from './clock.test-util.js';
import type { BrokerContext, Pumpable } from './context.js';
import { nodeFileSystem } from './log/file-system.js';
import { SegmentLog } from './log/segment-log.js';
import { createLogger } from './logger.js';
import { defaultNsqdOptions, type NsqdOptions } from './options.js';
import { Topic, TopicFullError } from './topic.js';
import { StoreUnavailableError, type TopicStore } from './topic-store.js';

class FakeBroker implements BrokerContext {
  readonly clock = new ManualClock();
  readonly logger = createLogger('', 'fatal');
  readonly options: NsqdOptions;
  readonly events: string[] = [];
  private pending: Pumpable[] = [];

  constructor(options: Partial<NsqdOptions>) {
    this.options = { ...defaultNsqdOptions(), nodeId: 1, ...options };
  }

  schedulePump(channel: Pumpable): void {
    this.pending.push(channel);
  }

  runPumps(): void {
    for (let i = 0; i < 100 && this.pending.length > 0; i++) for (const c of this.pending.splice(0)) c.pump();
  }

  onEphemeralTopicEmpty(topic: { readonly name: string }): void {
    this.events.push(`empty ${topic.name}`);
  }

  onChannelCreated(topic: string, channel: string): void {
    this.events.push(`+${topic}:${channel}`);
  }

  onChannelDeleted(topic: string, channel: string): void {
    this.events.push(`-${topic}:${channel}`);
  }

  deadLetter(topic: string): void {
    this.events.push(`dead letter to ${topic}`);
  }
}

/** A store that records what the topic asks of it; the test settles commits. */
class FakeStore implements TopicStore {
  readonly log: SegmentLog;
  healthError: string | null = null;
  readonly calls: string[] = [];
  commits = 0;

  constructor(clock: ManualClock) {
    const options = { maxBytesPerFile: 1 << 20, maxBodyBytes: 1024, clock, fs: nodeFileSystem };
    this.log = SegmentLog.fresh(join(tmpdir(), 'never-written'), options, createLogger('', 'fatal'));
  }

  health(): string | null {
    return this.healthError;
  }

  refusal(): string | null {
    return null;
  }

  commit(): Promise<void> {
    this.commits++;
    return Promise.resolve();
  }

  requestFlush(): void {
    this.calls.push('flush');
  }

  noteDiskRead(): void {}

  clearLog(nextOffset: number): void {
    this.calls.push(`clear ${nextOffset}`);
  }

  dropChannel(channel: string): void {
    this.calls.push(`drop ${channel}`);
  }
}

function setup(options: Partial<NsqdOptions> = {}, { durable = true, name = 't' } = {}) {
  const broker = new FakeBroker(options);
  const store = durable ? new FakeStore(broker.clock) : null;
  const topic = new Topic(broker, name, store);
  return { broker, store, topic };
}

const pub = (topic: Topic, ...bodies: string[]) => {
  for (const b of bodies) topic.publish(Buffer.from(b));
};

describe('Topic channels', () => {
  it('the first channel takes the backlog, later ones start at the end', () => {
    const { broker, topic } = setup({}, { durable: false });
    pub(topic, 'a', 'b');
    expect(topic.depth).toBe(2);
    const first = topic.getChannel('first');
    pub(topic, 'c');
    const second = topic.getChannel('second');
    expect([first.cursor, first.depth, second.cursor, second.depth]).toEqual([0, 3, 3, 0]);
    expect(topic.depth).toBe(0);
    expect(broker.events).toEqual(['+t:first', '+t:second']);
    expect(topic.getChannel('first')).toBe(first);
  });

  it('a paused topic holds what is published after the pause; channels get it on unpause', () => {
    const { broker, store, topic } = setup();
    const ch = topic.getChannel('c');
    pub(topic, 'a');
    topic.pause();
    pub(topic, 'b', 'c');
    expect([topic.readLimit, topic.depth, ch.depth]).toEqual([1, 2, 1]);
    // A channel made now starts at the release mark: it gets the held messages too.
    const late = topic.getChannel('late');
    expect(late.cursor).toBe(1);
    const consumer = new FakeConsumer('x', 10);
    ch.addConsumer(consumer);
    broker.runPumps();
    expect(consumer.got.map((m) => m.record.body.toString())).toEqual(['a']);
    topic.unpause();
    broker.runPumps();
    expect(consumer.got.map((m) => m.record.body.toString())).toEqual(['a', 'b', 'c']);
    expect(store?.calls.filter((c) => c === 'flush').length).toBeGreaterThanOrEqual(2);
  });

  it('empty while paused drops only what was held, once, and the range leaves the channels’ counts', () => {
    const { topic } = setup({}, { durable: false });
    const ch = topic.getChannel('c');
    pub(topic, 'a');
    topic.pause();
    pub(topic, 'b', 'c');
    topic.empty();
    pub(topic, 'd');
    topic.empty();
    expect(topic.skips).toEqual([
      [1, 3],
      [3, 4],
    ]);
    topic.unpause();
    pub(topic, 'e');
    expect([ch.depth, ch.messageCount]).toEqual([2, 2]);
    ch.cursor = 5;
    topic.pruneSkips();
    expect(topic.skips).toEqual([]);
    expect(ch.messageCount).toBe(2);
  });

  it('deleting the last channel drops the backlog and its segments; an ephemeral topic then goes', () => {
    const { broker, store, topic } = setup();
    topic.getChannel('durable');
    topic.getChannel('tail#ephemeral');
    pub(topic, 'a', 'b');
    topic.deleteChannel('tail#ephemeral');
    expect(store?.calls).not.toContain('drop tail#ephemeral');
    topic.deleteChannel('durable');
    expect(store?.calls.slice(-2)).toEqual(['drop durable', 'clear 2']);
    expect(topic.depth).toBe(0);
    expect(topic.deleteChannel('durable')).toBe(false);
    const e = setup({}, { durable: false, name: 'e#ephemeral' });
    e.topic.getChannel('c');
    e.topic.deleteChannel('c');
    expect(e.broker.events).toEqual(['+e#ephemeral:c', '-e#ephemeral:c', 'empty e#ephemeral']);
    expect(broker.events).toContain('-t:durable');
  });
});

describe('Topic publishing', () => {
  it('a topic without storage answers at once', () => {
    const { topic } = setup({ memQueueSize: 0 }, { durable: false });
    expect(topic.publish(Buffer.from('x'))).toBeNull();
    expect([topic.messageCount, topic.messageBytes]).toEqual([1, 1]);
  });

  it('past --mem-queue-size a spill is asked for; far past it, and always at 0, the publisher waits', () => {
    const { store, topic } = setup({ memQueueSize: 2 });
    expect(topic.publish(Buffer.from('a'))).toBeNull();
    expect(topic.publish(Buffer.from('b'))).toBeNull();
    expect(store?.calls).toEqual([]);
    expect(topic.publish(Buffer.from('c'))).toBeNull();
    expect(store?.calls).toEqual(['flush']);
    for (let i = 0; i < 9_999; i++) topic.publish(Buffer.from('x'));
    expect(store?.commits).toBe(0);
    expect(topic.publish(Buffer.from('over'))).toBeInstanceOf(Promise);
    const durable = setup({ memQueueSize: 0 });
    expect(durable.topic.publish(Buffer.from('a'))).toBeInstanceOf(Promise);
  });

  it('MPUB appends every body as a range of the one buffer and wakes the channels once', () => {
    const { broker, topic } = setup({}, { durable: false });
    const ch = topic.getChannel('c');
    const c = new FakeConsumer('c', 10);
    ch.addConsumer(c);
    broker.runPumps();
    const data = Buffer.from('onetwothree');
    topic.publishBatch(data, [0, 3, 6], [3, 3, 5], 3);
    broker.runPumps();
    expect(c.got.map((m) => m.record.body.toString())).toEqual(['one', 'two', 'three']);
    expect(c.got.every((m) => m.record.data === data)).toBe(true);
  });

  it('refuses a publish while the disk fails and memory holds --mem-queue-size messages, storing nothing', () => {
    const { store, topic } = setup({ memQueueSize: 1 });
    pub(topic, 'a');
    (store as FakeStore).healthError = 'failed to write to disk - EIO';
    expect(() => topic.publish(Buffer.from('b'))).toThrow(StoreUnavailableError);
    expect(() => topic.publishBatch(Buffer.from('cd'), [0, 1], [1, 1], 2)).toThrow(/EIO/);
    expect(() => topic.publishDeferred(Buffer.from('e'), 1_000)).toThrow(StoreUnavailableError);
    expect([topic.tail.end, topic.messageCount]).toEqual([1, 1]);
  });

  it('DPUB goes into the log and straight into fanning-out channels’ deferred sets', () => {
    const { broker, topic } = setup({}, { durable: false });
    const ch = topic.getChannel('c');
    topic.publishDeferred(Buffer.from('later'), 1_000);
    expect([topic.tail.end, ch.deferredCount, ch.depth]).toEqual([1, 1, 0]);
    const c = new FakeConsumer('c', 10);
    ch.addConsumer(c);
    broker.runPumps();
    expect(c.got).toEqual([]);
    broker.clock.advance(1_000);
    broker.runPumps();
    expect(c.got.map((m) => m.record.body.toString())).toEqual(['later']);
  });

  it('durable mode: a DPUB reaches the channels only once stored, and never when the write failed', () => {
    const { topic } = setup({ memQueueSize: 0 });
    const ch = topic.getChannel('c');
    topic.publishDeferred(Buffer.from('kept'), 1_000);
    expect(ch.deferredCount).toBe(0);
    const w = topic.collectWrites();
    expect(w.count).toBe(1);
    topic.afterWrite(topic.tail.end);
    expect(ch.deferredCount).toBe(1);
    topic.publishDeferred(Buffer.from('refused'), 1_000);
    topic.collectWrites();
    topic.discardUnwritten(topic.tail.end);
    expect(topic.skips).toEqual([[1, 2]]);
    topic.afterWrite(topic.tail.end);
    expect([ch.deferredCount, ch.depth]).toEqual([1, 0]);
  });
});

describe('Topic writes and memory', () => {
  it('writes what a durable channel still needs, and what it passed but still holds; not what it finished', () => {
    const { broker, topic } = setup({ memQueueSize: 100 });
    const ch = topic.getChannel('c');
    topic.getChannel('tail#ephemeral').cursor = 0;
    pub(topic, 'm0', 'm1', 'm2', 'm3', 'm4');
    const c = new FakeConsumer('c', 3);
    ch.addConsumer(c);
    broker.runPumps();
    c.fin(ch, c.got[0] as (typeof c.got)[number]);
    c.req(ch, c.got[1] as (typeof c.got)[number], 0);
    // m2 in flight, m1 requeued, m0 finished; m3 and m4 unread.
    const w = topic.collectWrites();
    expect(Array.from({ length: w.count }, (_, i) => w.offsetAt(i))).toEqual([1, 2, 3, 4]);
    topic.afterWrite(5);
    expect(topic.writtenUpTo).toBe(5);
    expect(topic.collectWrites().count).toBe(0);
  });

  it('trims what every channel passed from memory; written records stay cached up to a bound', () => {
    const { broker, topic } = setup({ memQueueSize: 0 });
    const ch = topic.getChannel('c');
    pub(topic, 'a', 'b', 'c');
    topic.collectWrites();
    topic.afterWrite(3);
    const c = new FakeConsumer('c', 10);
    ch.addConsumer(c);
    broker.runPumps();
    expect(c.got).toHaveLength(3);
    expect(topic.tail.start).toBe(3);
    // Without channels nothing the first channel will take is trimmed.
    const solo = setup({ memQueueSize: 0 }, { durable: false });
    pub(solo.topic, 'x', 'y');
    solo.topic.trim();
    expect(solo.topic.tail.length).toBe(2);
  });

  it('hands over its durable state when it changed, and is clean once committed', () => {
    const { topic } = setup();
    const first = topic.durableDelta();
    expect(first).toMatchObject({ paused: false, nextOffset: 0, releaseMark: 0, skips: [] });
    topic.committed(first as NonNullable<typeof first>);
    pub(topic, 'a');
    expect(topic.durableDelta()).toBeNull();
    topic.pause();
    const paused = topic.durableDelta();
    expect(paused).toMatchObject({ paused: true, nextOffset: 1, releaseMark: 1 });
    topic.restoreState({ paused: false, releaseMark: 0, skips: [[0, 1]] });
    expect(topic.skips).toEqual([[0, 1]]);
  });
});

describe('Topic message_ttl', () => {
  it('follows --message-ttl until set; a set TTL is in the durable state; channels expire by it and the topic counts them', () => {
    const { broker, topic } = setup({ messageTtlMs: 60_000 });
    expect(topic.messageTtlMs).toBe(60_000);
    const a = topic.getChannel('a');
    const b = topic.getChannel('b');
    pub(topic, 'm0', 'm1');
    broker.clock.advance(5_000);
    topic.configure({ messageTtlMs: 5_000 });
    expect(topic.durableDelta()?.settings).toEqual({ messageTtlMs: 5_000 });
    pub(topic, 'm2');
    const ca = new FakeConsumer('ca', 10);
    const cb = new FakeConsumer('cb', 10);
    a.addConsumer(ca);
    b.addConsumer(cb);
    broker.runPumps();
    expect([ca.got.length, cb.got.length]).toEqual([1, 1]);
    expect([a.expiredCount, b.expiredCount, topic.expiredCount]).toEqual([2, 2, 4]);
    topic.configure({ messageTtlMs: 0 });
    expect(topic.messageTtlMs).toBe(0);
  });
});

describe('Topic retention', () => {
  it('lets segments go only `retention` after every channel finished them; a replayed cursor holds them again', () => {
    const { broker, topic } = setup();
    expect(topic.deletableBelow(5)).toBe(5);
    topic.configure({ retentionMs: 10_000 });
    expect(topic.deletableBelow(5)).toBe(-1);
    broker.clock.advance(9_999);
    expect(topic.deletableBelow(8)).toBe(-1);
    broker.clock.advance(1);
    expect(topic.deletableBelow(8)).toBe(5);
    broker.clock.advance(10_000);
    expect(topic.deletableBelow(8)).toBe(8);
    expect(topic.deletableBelow(2)).toBe(2);
  });

  it('writes every record, finished or not, and drops from memory only what is written', () => {
    const { broker, topic } = setup({ retentionMs: 60_000 });
    const channel = topic.getChannel('c');
    const consumer = new FakeConsumer('a', 10);
    channel.addConsumer(consumer);
    pub(topic, 'a', 'b');
    broker.runPumps();
    for (const m of consumer.got) consumer.fin(channel, m);
    broker.runPumps();
    expect(topic.tail.start).toBe(0);
    const writes = topic.collectWrites();
    expect(writes.count).toBe(2);
    topic.afterWrite(2);
    expect(topic.writtenUpTo).toBe(2);
  });
});

describe('Topic redrive', () => {
  it('without channels moves the buffered backlog, oldest first, up to max, republished now; then skips it', async () => {
    const { broker, topic: dead } = setup({}, { name: 'dead' });
    const into = new Topic(broker, 'back', new FakeStore(broker.clock));
    pub(dead, 'a', 'b', 'c');
    broker.clock.advance(5_000);
    expect(await dead.redrive(into, 2)).toBe(2);
    expect([dead.depth, dead.skips, into.depth]).toEqual([1, [[0, 2]], 2]);
    expect(await dead.redrive(into, 10)).toBe(1);
    expect(await dead.redrive(into, 10)).toBe(0);
    const moved = [0, 1, 2].map((o) => into.tail.get(o));
    expect(moved.map((r) => r?.body.toString())).toEqual(['a', 'b', 'c']);
    expect(moved.every((r) => r?.publishedAtMs === broker.clock.wallMs())).toBe(true);
    expect([dead.redrivenCount, dead.durableDelta()?.skips]).toEqual([3, [[0, 3]]]);
    // The moved records are dead letters of `back`: the flush writes their intent first.
    expect(into.takeDeadLetters()).toEqual([0, 1, 2]);
  });

  it('with channels moves what the first channel has ready; its other channels keep theirs', async () => {
    const { broker, topic: dead } = setup({}, { name: 'dead' });
    const into = new Topic(broker, 'back', null);
    const first = dead.getChannel('first');
    const second = dead.getChannel('second');
    pub(dead, 'a', 'b');
    expect(await dead.redrive(into, 10)).toBe(2);
    expect([first.depth, second.depth, into.depth]).toEqual([0, 2, 2]);
  });
});

describe('Topic caps with DPUB, pauses and empties', () => {
  const bodies = (c: FakeConsumer) => c.got.map((m) => m.record.body.toString());

  it('drop_oldest with a DPUB fanned out to several channels: each lagging one keeps exactly the newest max_depth unread, the DPUB is not dropped and comes when due', () => {
    const { broker, topic } = setup({ maxDepth: 3, overflow: 'drop_oldest' }, { durable: false });
    const a = topic.getChannel('a');
    const b = topic.getChannel('b');
    const live = topic.getChannel('live');
    const reader = new FakeConsumer('live', 100);
    live.addConsumer(reader);
    for (const next of ['m0', 'm1', 'd', 'm3', 'm4']) {
      if (next === 'd') topic.publishDeferred(Buffer.from(next), 1_000);
      else pub(topic, next);
      broker.runPumps();
    }
    // The DPUB is held by each channel (deferred), not part of its unread backlog.
    for (const ch of [a, b]) expect([ch.depth, ch.deferredCount, ch.droppedCount]).toEqual([3, 1, 1]);
    expect([live.droppedCount, bodies(reader)]).toEqual([0, ['m0', 'm1', 'm3', 'm4']]);
    const ca = new FakeConsumer('a', 100);
    const cb = new FakeConsumer('b', 100);
    a.addConsumer(ca);
    b.addConsumer(cb);
    broker.runPumps();
    broker.clock.advance(1_000);
    broker.runPumps();
    expect(bodies(ca)).toEqual(['m1', 'm3', 'm4', 'd']);
    expect(bodies(cb)).toEqual(['m1', 'm3', 'm4', 'd']);
    expect(bodies(reader)).toEqual(['m0', 'm1', 'm3', 'm4', 'd']);
  });

  it('drop_oldest next to a paused topic’s emptied range and a /channel/empty: what was skipped is not counted as backlog or as dropped', () => {
    const { broker, topic } = setup({ maxDepth: 3, overflow: 'drop_oldest' }, { durable: false });
    const ch = topic.getChannel('c');
    pub(topic, 'm0');
    topic.pause();
    pub(topic, 'm1', 'm2');
    topic.empty();
    pub(topic, 'm3');
    // Unread: m0, and m3 held by the pause; m1 and m2 were emptied.
    expect([ch.droppedCount, topic.depth]).toEqual([0, 1]);
    topic.unpause();
    const c = new FakeConsumer('c', 100);
    ch.addConsumer(c);
    broker.runPumps();
    expect([bodies(c), ch.droppedCount]).toEqual([['m0', 'm3'], 0]);
    ch.removeConsumer(c);
    pub(topic, 'm4');
    ch.empty();
    pub(topic, 'm5', 'm6', 'm7', 'm8');
    expect([ch.depth, ch.droppedCount, ch.messageCount]).toEqual([3, 1, 7]);
    const again = new FakeConsumer('c2', 100);
    ch.addConsumer(again);
    broker.runPumps();
    expect(bodies(again)).toEqual(['m6', 'm7', 'm8']);
  });

  it('a channel that lagged past max_depth and caught up loses nothing more; its neighbour that still lags keeps losing the oldest', () => {
    const { broker, topic } = setup({ maxDepth: 3, overflow: 'drop_oldest' }, { durable: false });
    const fast = topic.getChannel('fast');
    const slow = topic.getChannel('slow');
    pub(topic, 'm0', 'm1', 'm2', 'm3', 'm4');
    expect([fast.droppedCount, slow.droppedCount]).toEqual([2, 2]);
    const c = new FakeConsumer('fast', 100);
    fast.addConsumer(c);
    broker.runPumps();
    for (const m of c.got.splice(0)) c.fin(fast, m);
    pub(topic, 'm5', 'm6');
    broker.runPumps();
    pub(topic, 'm7', 'm8', 'm9');
    broker.runPumps();
    expect(bodies(c)).toEqual(['m5', 'm6', 'm7', 'm8', 'm9']);
    expect([fast.droppedCount, fast.depth, slow.droppedCount, slow.depth]).toEqual([2, 0, 7, 3]);
    // The topic trims what both have passed: the slow channel's newest three and nothing older.
    expect(topic.tail.start).toBe(7);
  });

  it('overflow=reject counts the backlog as the channels do: a fanned-out DPUB takes no room', () => {
    const { topic } = setup({ maxDepth: 2, overflow: 'reject' }, { durable: false });
    const ch = topic.getChannel('c');
    topic.publishDeferred(Buffer.from('d'), 1_000);
    pub(topic, 'm1', 'm2');
    expect([ch.depth, ch.deferredCount]).toEqual([2, 1]);
    expect(() => pub(topic, 'm3')).toThrow(TopicFullError);
    expect(topic.rejectedCount).toBe(1);
  });
});
