import { describe, expect, it } from 'vitest';
import { Channel } from './channel.js';
import { FakeChannelContext, FakeConsumer, FakeTopicLog } from './channel.test-util.js';
import type { ManualClock } from './clock.test-util.js';
import { FinishError } from './consumer.js';
import type { ChannelDelta } from './durable-state.js';
import type { ChannelMessage, MessageRecord } from './message.js';
import type { NsqdOptions } from './options.js';

function setup(options: Partial<NsqdOptions> = {}, name = 'c') {
  const ctx = new FakeChannelContext(options);
  const topic = new FakeTopicLog(ctx.clock);
  const channel = new Channel(ctx, topic, name, name.endsWith('#ephemeral'), 0);
  return { ctx, topic, channel, clock: ctx.clock };
}

const bodies = (msgs: ChannelMessage[]) => msgs.map((m) => m.record.body.toString());

/** The channel's next timeout happens exactly `ms` from now. */
function timesOutIn(channel: Channel, clock: ManualClock, ms: number): void {
  const before = channel.timeoutCount;
  clock.advance(ms - 1);
  expect(channel.timeoutCount).toBe(before);
  clock.advance(1);
  expect(channel.timeoutCount).toBe(before + 1);
}

describe('Channel delivery', () => {
  it('hands messages round-robin, one per ready consumer per round, in log order', () => {
    const { ctx, topic, channel } = setup();
    const consumers = ['a', 'b', 'c'].map((l) => new FakeConsumer(l, 2));
    for (const c of consumers) channel.addConsumer(c);
    topic.publish(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    channel.schedule();
    ctx.runPumps();
    expect(consumers.map((c) => bodies(c.got))).toEqual([
      ['m0', 'm3'],
      ['m1', 'm4'],
      ['m2', 'm5'],
    ]);
    // RDY 2 each: m6 waits.
    expect(channel.depth).toBe(1);
    expect(channel.inFlightCount).toBe(6);
    // The next pump goes on from where the last stopped.
    consumers[1]?.fin(channel, consumers[1].got[0] as ChannelMessage);
    ctx.runPumps();
    expect(bodies(consumers[1]?.got ?? [])).toEqual(['m1', 'm4', 'm6']);
  });

  it('delivers only to a consumer that can receive (RDY above its in-flight count)', () => {
    const { ctx, topic, channel } = setup();
    const slow = new FakeConsumer('slow', 0);
    const fast = new FakeConsumer('fast', 1);
    channel.addConsumer(slow);
    channel.addConsumer(fast);
    topic.publish(['m0', 'm1']);
    channel.schedule();
    ctx.runPumps();
    expect([bodies(slow.got), bodies(fast.got)]).toEqual([[], ['m0']]);
    slow.rdy = 5;
    channel.schedule();
    ctx.runPumps();
    expect(bodies(slow.got)).toEqual(['m1']);
    expect(channel.depth).toBe(0);
  });

  it('a paused channel delivers nothing until unpaused, and the pause asks for a flush', () => {
    const { ctx, topic, channel } = setup();
    const c = new FakeConsumer('c', 10);
    channel.addConsumer(c);
    channel.pause();
    expect(ctx.flushRequests).toBe(1);
    topic.publish(['m0']);
    channel.schedule();
    ctx.runPumps();
    expect(c.got).toEqual([]);
    channel.unpause();
    ctx.runPumps();
    expect(bodies(c.got)).toEqual(['m0']);
  });

  it('counts attempts per delivery and stamps the delivery time', () => {
    const { ctx, topic, channel, clock } = setup();
    const c = new FakeConsumer('c', 1);
    channel.addConsumer(c);
    topic.publish(['m0']);
    ctx.runPumps();
    const msg = c.got[0] as ChannelMessage;
    expect([msg.state, msg.attempts, msg.deliveredAt]).toEqual(['inFlight', 1, clock.monotonicMs()]);
    expect(c.req(channel, msg, 0)).toBeNull();
    expect(msg.state).toBe('requeued');
    ctx.runPumps();
    expect(c.got[1]).toBe(msg);
    expect(msg.attempts).toBe(2);
  });
});

describe('Channel FIN, REQ and TOUCH', () => {
  function delivered() {
    const s = setup({ maxMsgTimeoutMs: 10_000 });
    const owner = new FakeConsumer('owner', 10, 1_000);
    const other = new FakeConsumer('other', 0);
    s.channel.addConsumer(owner);
    s.channel.addConsumer(other);
    s.topic.publish(['m0']);
    s.ctx.runPumps();
    return { ...s, owner, other, msg: owner.got[0] as ChannelMessage };
  }

  it('answers NSQ’s errors: an unknown ID is not in flight, another connection’s is not owned', () => {
    const { channel, owner, other, msg } = delivered();
    for (const op of [
      (id: string) => channel.finish(id, owner),
      (id: string) => channel.requeue(id, owner, 0),
      (id: string) => channel.touch(id, owner),
    ]) {
      expect(op('0000000000000bad')).toBe(FinishError.NotInFlight);
      expect(op('not-an-id-at-all')).toBe(FinishError.NotInFlight);
    }
    expect(channel.finish(msg.record.id, other)).toBe(FinishError.NotOwner);
    expect(channel.requeue(msg.record.id, other, 0)).toBe(FinishError.NotOwner);
    expect(channel.touch(msg.record.id, other)).toBe(FinishError.NotOwner);
    expect(owner.fin(channel, msg)).toBeNull();
    expect(owner.fin(channel, msg)).toBe(FinishError.NotInFlight);
    expect(channel.touch(msg.record.id, owner)).toBe(FinishError.NotInFlight);
  });

  it('FIN by the 16 ID bytes of a command buffer (the decoder’s zero-copy path)', () => {
    const { channel, owner, msg } = delivered();
    const command = Buffer.from(`FIN ${msg.record.id}\n`);
    expect(channel.finishAt(command, 4, new FakeConsumer('x', 0))).toBe(FinishError.NotOwner);
    expect(channel.finishAt(command, 4, owner)).toBeNull();
    expect(channel.inFlightCount).toBe(0);
  });

  it('two TOUCHes in one tick each extend the deadline from now, and nothing is lost', () => {
    const { channel, owner, msg, clock } = delivered();
    clock.advance(600);
    expect(channel.touch(msg.record.id, owner)).toBeNull();
    expect(channel.touch(msg.record.id, owner)).toBeNull();
    expect(channel.inFlightCount).toBe(1);
    // Deadline: 600 + 1,000 after the delivery.
    timesOutIn(channel, clock, 1_000);
    expect(owner.released).toBe(1);
    expect(msg.state).toBe('requeued');
    expect(channel.depth).toBe(1);
  });

  it('TOUCHes of several messages in one tick keep the deadline heap in order', () => {
    const { ctx, topic, channel, owner, clock } = delivered();
    for (const body of ['m1', 'm2']) {
      clock.advance(100);
      topic.publish([body]);
      channel.schedule();
      ctx.runPumps();
    }
    const [m0, m1, m2] = owner.got as [ChannelMessage, ChannelMessage, ChannelMessage];
    clock.advance(300); // 500 after m0's delivery
    expect(channel.touch(m1.record.id, owner)).toBeNull();
    expect(channel.touch(m0.record.id, owner)).toBeNull();
    const timedOut = () => [m0, m1, m2].filter((m) => m.state !== 'inFlight').map((m) => bodies([m])[0]);
    clock.advance(699); // m2 is due 1,200 after m0's delivery, the touched two at 1,500
    expect(timedOut()).toEqual([]);
    clock.advance(1);
    expect(timedOut()).toEqual(['m2']);
    clock.advance(299);
    expect(timedOut()).toEqual(['m2']);
    clock.advance(1);
    expect(timedOut()).toEqual(['m0', 'm1', 'm2']);
  });

  it('TOUCH cannot keep a message past --max-msg-timeout from its delivery', () => {
    const { channel, owner, msg, clock } = delivered();
    for (let t = 0; t < 11; t++) {
      clock.advance(900);
      expect(channel.touch(msg.record.id, owner)).toBeNull();
    }
    // 9,900 ms after the delivery: the last TOUCH gives until 10,000, not 10,900.
    timesOutIn(channel, clock, 100);
  });

  it('a timed-out message comes back ready, its consumer told, and is delivered again', () => {
    const { ctx, channel, owner, msg, clock } = delivered();
    clock.advance(1_000);
    expect([channel.timeoutCount, owner.released, owner.inFlight, channel.inFlightCount]).toEqual([1, 1, 0, 0]);
    expect(owner.fin(channel, msg)).toBe(FinishError.NotInFlight);
    ctx.runPumps();
    expect(owner.got).toEqual([msg, msg]);
    expect(msg.attempts).toBe(2);
  });

  it('REQ with a delay defers the message to its due time, then it is delivered again', () => {
    const { ctx, channel, owner, msg, clock } = delivered();
    expect(owner.req(channel, msg, 5_000)).toBeNull();
    expect([msg.state, channel.deferredCount, channel.depth, channel.requeueCount]).toEqual(['deferred', 1, 0, 1]);
    clock.advance(4_999);
    ctx.runPumps();
    expect(owner.got).toHaveLength(1);
    clock.advance(1);
    expect(channel.deferredCount).toBe(0);
    ctx.runPumps();
    expect(owner.got).toEqual([msg, msg]);
  });
});

describe('Channel deferred messages from the log', () => {
  it('a DPUB the cursor reaches waits for its due time; other messages pass it', () => {
    const { ctx, topic, channel, clock } = setup();
    const c = new FakeConsumer('c', 10);
    channel.addConsumer(c);
    topic.publish(['later'], 3_000);
    topic.publish(['now']);
    ctx.runPumps();
    expect(bodies(c.got)).toEqual(['now']);
    expect(channel.deferredCount).toBe(1);
    clock.advance(3_000);
    ctx.runPumps();
    expect(bodies(c.got)).toEqual(['now', 'later']);
  });

  it('a DPUB fanned out to the channel is skipped by its cursor', () => {
    const { ctx, topic, channel, clock } = setup();
    const c = new FakeConsumer('c', 10);
    const [offset] = topic.publish(['dpub'], 1_000);
    channel.putDeferred(topic.tail.get(offset as number) as MessageRecord);
    expect(channel.depth).toBe(0);
    channel.addConsumer(c);
    ctx.runPumps();
    expect(c.got).toEqual([]);
    clock.advance(1_000);
    ctx.runPumps();
    expect(bodies(c.got)).toEqual(['dpub']);
    expect(channel.cursor).toBe(1);
  });
});

describe('Channel state', () => {
  it('depth and message_count leave out ranges the topic dropped, and what a paused topic holds', () => {
    const { topic, channel } = setup();
    topic.publish(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    topic.skips = [[1, 3]];
    topic.limit = 5;
    expect(channel.depth).toBe(3); // m0, m3, m4
    expect(channel.messageCount).toBe(3);
    topic.limit = null;
    expect(channel.depth).toBe(4);
  });

  it('empty drops the backlog and everything outstanding, tells the consumers, and asks for a flush', () => {
    const { ctx, topic, channel } = setup();
    const c = new FakeConsumer('c', 2);
    channel.addConsumer(c);
    topic.publish(['m0', 'm1', 'm2', 'm3']);
    ctx.runPumps();
    c.req(channel, c.got[1] as ChannelMessage, 10_000);
    channel.empty();
    expect([channel.depth, channel.inFlightCount, channel.deferredCount, c.released]).toEqual([0, 0, 0, 1]);
    expect(channel.cursor).toBe(4);
    expect(ctx.flushRequests).toBe(1);
  });

  it('an ephemeral channel reports when its last consumer leaves; its topic deletes it', () => {
    const { ctx, channel } = setup({}, 'e#ephemeral');
    const a = new FakeConsumer('a', 1);
    const b = new FakeConsumer('b', 1);
    channel.addConsumer(a);
    channel.addConsumer(b);
    channel.removeConsumer(a);
    expect(ctx.idle).toEqual([]);
    channel.removeConsumer(b);
    expect(ctx.idle).toEqual([channel]);
    channel.close();
    expect(a.closed).toBe(false);
  });

  it('close tells every consumer to go and stops the pump', () => {
    const { ctx, topic, channel } = setup();
    const c = new FakeConsumer('c', 1);
    channel.addConsumer(c);
    channel.close();
    expect(c.closed).toBe(true);
    topic.publish(['m0']);
    channel.schedule();
    ctx.runPumps();
    expect(c.got).toEqual([]);
  });
});

describe('Channel delta and committed', () => {
  /** Delivers m0…m3 to one consumer: m0 FINished, m1 requeued, m2 deferred, m3 in flight. */
  function busy() {
    const s = setup();
    const c = new FakeConsumer('c', 4);
    s.channel.addConsumer(c);
    s.topic.publish(['m0', 'm1', 'm2', 'm3', 'm4']);
    s.ctx.runPumps();
    const [m0, m1, m2] = c.got as [ChannelMessage, ChannelMessage, ChannelMessage];
    c.rdy = 0;
    c.fin(s.channel, m0);
    c.req(s.channel, m1, 0);
    c.req(s.channel, m2, 60_000);
    return { ...s, c };
  }

  it('a new channel has everything to store; once committed, nothing', () => {
    const { channel } = setup();
    expect(channel.dirty).toBe(true);
    const delta = channel.durableDelta() as ChannelDelta;
    expect(delta).toMatchObject({
      cursor: 0,
      paused: false,
      ahead: [],
      deferredPuts: [],
      deferredDeletes: [],
      floor: 0,
    });
    channel.committed(delta);
    expect(channel.dirty).toBe(false);
    expect(channel.durableDelta()).toBeNull();
  });

  it('hands over cursor, the hot set as (offset, attempts), deferred puts and the floor', () => {
    const { channel, clock } = busy();
    const delta = channel.durableDelta() as ChannelDelta;
    expect(delta.cursor).toBe(4);
    const pairs: number[][] = [];
    for (let i = 0; i < delta.hot.length; i += 2) pairs.push([delta.hot[i] as number, delta.hot[i + 1] as number]);
    expect(pairs.sort((a, b) => (a[0] as number) - (b[0] as number))).toEqual([
      [1, 1],
      [3, 1],
    ]);
    expect(delta.deferredPuts).toEqual([{ offset: 2, attempts: 1, dueAtWallMs: clock.wallMs() + 60_000 }]);
    expect(delta.deferredDeletes).toEqual([]);
    expect(delta.floor).toBe(1);
    expect(channel.ackFloor()).toBe(1);
  });

  it('what a failed flush did not commit is handed over again; what was committed is not', () => {
    const { channel } = busy();
    const lost = channel.durableDelta() as ChannelDelta;
    const again = channel.durableDelta() as ChannelDelta;
    expect(again.deferredPuts).toEqual(lost.deferredPuts);
    channel.committed(again);
    expect(channel.durableDelta()).toBeNull();
  });

  it('changes after the snapshot stay dirty when the older delta is committed', () => {
    const { ctx, channel, c } = busy();
    const delta = channel.durableDelta() as ChannelDelta;
    c.rdy = 10;
    channel.schedule();
    ctx.runPumps(); // m1 again, and m4
    channel.committed(delta);
    expect(channel.dirty).toBe(true);
    const next = channel.durableDelta() as ChannelDelta;
    expect(next.cursor).toBe(5);
    // m2 is still deferred as stored: no new put.
    expect(next.deferredPuts).toEqual([]);
  });

  it('a deferred message that is due, delivered and finished leaves as a delete', () => {
    const { ctx, channel, c, clock } = busy();
    channel.committed(channel.durableDelta() as ChannelDelta);
    clock.advance(60_000);
    const m2 = channel.durableDelta() as ChannelDelta;
    expect(m2.deferredDeletes).toEqual([2]);
    c.rdy = 10;
    channel.schedule();
    ctx.runPumps();
    const redelivered = c.got.find((m) => m.record.offset === 2) as ChannelMessage;
    c.fin(channel, redelivered);
    channel.committed(channel.durableDelta() as ChannelDelta);
    expect(channel.durableDelta()).toBeNull();
  });

  it('a deferred message deferred again is put again with its new due time and attempts', () => {
    const { ctx, channel, c, clock } = busy();
    channel.committed(channel.durableDelta() as ChannelDelta);
    clock.advance(60_000);
    c.rdy = 10;
    channel.schedule();
    ctx.runPumps();
    const m2 = c.got.filter((m) => m.record.offset === 2).pop() as ChannelMessage;
    c.req(channel, m2, 5_000);
    const delta = channel.durableDelta() as ChannelDelta;
    expect(delta.deferredPuts).toEqual([{ offset: 2, attempts: 2, dueAtWallMs: clock.wallMs() + 5_000 }]);
    expect(delta.deferredDeletes).toEqual([]);
  });

  it('a cursor move or a pause alone makes the channel dirty', () => {
    const { ctx, topic, channel } = setup();
    channel.committed(channel.durableDelta() as ChannelDelta);
    channel.pause();
    expect(channel.durableDelta()).toMatchObject({ paused: true });
    channel.committed(channel.durableDelta() as ChannelDelta);
    channel.unpause();
    topic.publish(['m0']);
    channel.empty();
    ctx.runPumps();
    expect(channel.durableDelta()).toMatchObject({ paused: false, cursor: 1 });
  });

  it('emptied deferred messages that were stored leave as deletes', () => {
    const { channel } = busy();
    channel.committed(channel.durableDelta() as ChannelDelta);
    channel.empty();
    const delta = channel.durableDelta() as ChannelDelta;
    expect([delta.hot.length, delta.deferredDeletes, delta.floor]).toEqual([0, [2], 5]);
  });

  it('restored messages are what the store holds once committed: deferred ones at their due time', () => {
    const { ctx, topic, channel, clock } = setup();
    topic.publish(['m0', 'm1']);
    channel.cursor = 2;
    channel.restoreOutstanding(topic.tail.get(0) as MessageRecord, 3, 0);
    channel.restoreOutstanding(topic.tail.get(1) as MessageRecord, 1, clock.wallMs() + 2_000);
    channel.committed(channel.durableDelta() as ChannelDelta);
    expect(channel.durableDelta()).toBeNull();
    const c = new FakeConsumer('c', 10);
    channel.addConsumer(c);
    ctx.runPumps();
    expect(c.got.map((m) => [m.record.offset, m.attempts])).toEqual([[0, 4]]);
    clock.advance(2_000);
    ctx.runPumps();
    expect(c.got.map((m) => [m.record.offset, m.attempts])).toEqual([
      [0, 4],
      [1, 2],
    ]);
  });
});

describe('Channel max_attempts and dead letters', () => {
  it('a message back after max_attempts deliveries (REQ or timeout) goes to the dead-letter topic, never again to the channel', () => {
    const { ctx, topic, channel, clock } = setup({ maxAttempts: 2, deadLetterTopic: 'flag-dead' });
    const consumer = new FakeConsumer('a', 10, 1_000);
    channel.addConsumer(consumer);
    topic.publish(['m0', 'm1']);
    channel.configure({ deadLetterTopic: 'dead' });
    ctx.runPumps();
    const [m0, m1] = consumer.got as [ChannelMessage, ChannelMessage];
    consumer.req(channel, m0, 0);
    consumer.req(channel, m1, 5_000);
    ctx.runPumps();
    expect(consumer.got.map((m) => [m.record.body.toString(), m.attempts])).toEqual([
      ['m0', 2],
      ['m1', 1],
      ['m0', 2],
    ]);
    // m0's second delivery times out: its second return.
    timesOutIn(channel, clock, 1_000);
    expect(ctx.deadLetters).toEqual([['dead', 'm0']]);
    clock.advance(5_000);
    ctx.runPumps();
    const again = consumer.got[3] as ChannelMessage;
    expect([again.record.body.toString(), again.attempts]).toEqual(['m1', 2]);
    consumer.req(channel, again, 60_000);
    expect(ctx.deadLetters).toEqual([
      ['dead', 'm0'],
      ['dead', 'm1'],
    ]);
    expect([channel.deadLetteredCount, channel.depth, channel.inFlightCount, channel.deferredCount]).toEqual([
      2, 0, 0, 0,
    ]);
    expect(channel.durableDelta()?.hot).toEqual(new Float64Array(0));
  });

  it('without a dead-letter topic the message is dropped and counted; 0 means unlimited', () => {
    const { ctx, topic, channel } = setup();
    const consumer = new FakeConsumer('a', 10);
    channel.addConsumer(consumer);
    topic.publish(['m0']);
    ctx.runPumps();
    for (let i = 0; i < 5; i++) {
      consumer.req(channel, consumer.got[i] as ChannelMessage, 0);
      ctx.runPumps();
    }
    expect(consumer.got.length).toBe(6);
    channel.configure({ maxAttempts: 3 });
    // Requeued with 6 attempts already: given up when the cursor of requeued messages reaches it.
    consumer.req(channel, consumer.got[5] as ChannelMessage, 0);
    ctx.runPumps();
    expect([consumer.got.length, channel.deadLetteredCount, ctx.deadLetters.length]).toEqual([6, 1, 0]);
    expect(channel.durableDelta()?.settings).toEqual({ maxAttempts: 3 });
  });

  it('a restored in-flight message on its last attempt is dead-lettered, not delivered', () => {
    const { ctx, topic, channel } = setup({ maxAttempts: 3, deadLetterTopic: 'dead' });
    topic.publish(['m0']);
    channel.restoreOutstanding(topic.tail.get(0) as MessageRecord, 3, 0);
    channel.cursor = 1;
    const consumer = new FakeConsumer('a', 10);
    channel.addConsumer(consumer);
    ctx.runPumps();
    expect([consumer.got.length, ctx.deadLetters]).toEqual([0, [['dead', 'm0']]]);
  });
});

describe('Channel message_ttl', () => {
  it('a message the cursor reaches at or past its TTL is not delivered, counted, and dropped without a dead-letter topic', () => {
    const { ctx, topic, channel, clock } = setup();
    topic.messageTtlMs = 10_000;
    topic.publish(['old0', 'old1']);
    clock.advance(9_999);
    topic.publish(['young']);
    clock.advance(1);
    const consumer = new FakeConsumer('a', 10);
    channel.addConsumer(consumer);
    ctx.runPumps();
    expect(bodies(consumer.got)).toEqual(['young']);
    expect([channel.expiredCount, topic.expired, ctx.deadLetters.length, channel.depth]).toEqual([2, 2, 0, 0]);
    // The cursor passed them: the store is told, as for any delivery.
    expect(channel.durableDelta()?.cursor).toBe(3);
  });

  it('with a dead-letter topic an expired message moves there, body kept, counted as expired', () => {
    const { ctx, topic, channel, clock } = setup({ deadLetterTopic: 'dead' });
    topic.messageTtlMs = 1_000;
    topic.publish(['m0']);
    clock.advance(1_000);
    channel.addConsumer(new FakeConsumer('a', 10));
    ctx.runPumps();
    expect([ctx.deadLetters, channel.expiredCount, channel.deadLetteredCount]).toEqual([[['dead', 'm0']], 1, 0]);
  });

  it('an in-flight message is not cut short: its FIN succeeds past the TTL; once back (REQ, timeout) it expires', () => {
    const { ctx, topic, channel, clock } = setup();
    topic.messageTtlMs = 1_000;
    const consumer = new FakeConsumer('a', 10, 5_000);
    channel.addConsumer(consumer);
    topic.publish(['fin', 'req', 'timeout']);
    channel.schedule();
    ctx.runPumps();
    const [fin, req] = consumer.got as [ChannelMessage, ChannelMessage];
    clock.advance(2_000);
    expect(consumer.fin(channel, fin)).toBeNull();
    expect(consumer.req(channel, req, 0)).toBeNull();
    ctx.runPumps();
    expect(channel.expiredCount).toBe(1);
    timesOutIn(channel, clock, 3_000);
    ctx.runPumps();
    expect([consumer.got.length, channel.expiredCount, channel.inFlightCount, channel.depth]).toEqual([3, 2, 0, 0]);
  });

  it('a deferred message (REQ with a delay, DPUB) that falls due past its TTL is not delivered', () => {
    const { ctx, topic, channel, clock } = setup();
    topic.messageTtlMs = 1_000;
    const consumer = new FakeConsumer('a', 10);
    channel.addConsumer(consumer);
    topic.publish(['late'], 5_000);
    topic.publish(['soon'], 500);
    channel.schedule();
    ctx.runPumps();
    expect(channel.deferredCount).toBe(2);
    clock.advance(500);
    ctx.runPumps();
    expect(bodies(consumer.got)).toEqual(['soon']);
    clock.advance(4_500);
    ctx.runPumps();
    expect([bodies(consumer.got), channel.expiredCount, channel.deferredCount]).toEqual([['soon'], 1, 0]);
  });

  it('a channel without consumers lets unread messages go as they pass the TTL: depth and expired_count are true with nobody reading', () => {
    const { ctx, topic, channel, clock } = setup({ deadLetterTopic: 'dead' });
    topic.messageTtlMs = 10_000;
    topic.publish(['m0', 'm1']);
    clock.advance(4_000);
    topic.publish(['m2']);
    channel.schedule();
    ctx.runPumps();
    expect([channel.depth, channel.expiredCount]).toEqual([3, 0]);
    // One wake-up, when the oldest passes the TTL; the next one is armed for m2.
    clock.advance(6_000);
    ctx.runPumps();
    expect([channel.depth, channel.expiredCount, ctx.deadLetters]).toEqual([
      1,
      2,
      [
        ['dead', 'm0'],
        ['dead', 'm1'],
      ],
    ]);
    clock.advance(3_999);
    ctx.runPumps();
    expect(channel.depth).toBe(1);
    clock.advance(1);
    ctx.runPumps();
    expect([channel.depth, channel.expiredCount, topic.expired, channel.durableDelta()?.cursor]).toEqual([0, 3, 3, 3]);
    const consumer = new FakeConsumer('a', 10);
    topic.publish(['m3']);
    channel.addConsumer(consumer);
    ctx.runPumps();
    expect(bodies(consumer.got)).toEqual(['m3']);
  });

  it('without consumers a DPUB the channel holds is passed, not expired, by the cursor; it expires once due and taken', () => {
    const { ctx, topic, channel, clock } = setup();
    topic.messageTtlMs = 10_000;
    const [d] = topic.publish(['d'], 20_000);
    channel.putDeferred(topic.tail.get(d as number) as MessageRecord);
    topic.publish(['m1']);
    channel.schedule();
    ctx.runPumps();
    clock.advance(10_000);
    ctx.runPumps();
    expect([channel.expiredCount, channel.deferredCount, channel.depth]).toEqual([1, 1, 0]);
    clock.advance(10_000);
    ctx.runPumps();
    expect([channel.expiredCount, channel.depth]).toEqual([1, 1]);
    const consumer = new FakeConsumer('a', 10);
    channel.addConsumer(consumer);
    ctx.runPumps();
    expect([consumer.got.length, channel.expiredCount, channel.depth]).toEqual([0, 2, 0]);
  });

  it('TTL 0 is off; a TTL set later applies to what is already queued', () => {
    const { ctx, topic, channel, clock } = setup();
    topic.publish(['m0', 'm1']);
    clock.advance(60_000);
    const consumer = new FakeConsumer('a', 1);
    channel.addConsumer(consumer);
    ctx.runPumps();
    expect(bodies(consumer.got)).toEqual(['m0']);
    topic.messageTtlMs = 30_000;
    consumer.fin(channel, consumer.got[0] as ChannelMessage);
    ctx.runPumps();
    expect([bodies(consumer.got), channel.expiredCount]).toEqual([['m0'], 1]);
  });
});

describe('Channel replay (rewind)', () => {
  it('delivers again from the offset in log order, skipping what it still holds; never moves forward', () => {
    const { ctx, topic, channel } = setup();
    const consumer = new FakeConsumer('a', 10);
    channel.addConsumer(consumer);
    topic.publish(['m0', 'm1', 'm2', 'm3', 'm4']);
    channel.schedule();
    ctx.runPumps();
    for (const m of consumer.got) if (m.record.body.toString() !== 'm3') consumer.fin(channel, m);
    channel.rewind(7);
    channel.rewind(1);
    ctx.runPumps();
    expect(bodies(consumer.got)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm1', 'm2', 'm4']);
    expect([channel.replayCount, channel.cursor, channel.inFlightCount]).toEqual([1, 5, 4]);
    // The cursor is durable state like any move.
    expect(channel.durableDelta()).toMatchObject({ cursor: 5, ahead: [] });
  });
});

describe('Channel drain (redrive)', () => {
  it('takes requeued messages first, then unread ones, up to max, for good; in-flight ones stay', () => {
    const { ctx, topic, channel } = setup();
    const consumer = new FakeConsumer('a', 2);
    channel.addConsumer(consumer);
    topic.publish(['m0', 'm1', 'm2', 'm3']);
    channel.schedule();
    ctx.runPumps();
    consumer.req(channel, consumer.got[1] as ChannelMessage, 0);
    consumer.rdy = 0;
    const taken: string[] = [];
    expect(channel.drain(2, (r) => taken.push(r.body.toString()))).toBe(2);
    expect(channel.drain(10, (r) => taken.push(r.body.toString()))).toBe(1);
    expect(taken).toEqual(['m1', 'm2', 'm3']);
    expect([channel.depth, channel.inFlightCount, channel.drain(10, () => undefined)]).toEqual([0, 1, 0]);
    expect(channel.durableDelta()).toMatchObject({ cursor: 4, hot: new Float64Array([0, 1]) });
    expect(channel.diskRead()).toBeNull();
  });
});
