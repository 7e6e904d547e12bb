import { ChannelDiskReader } from './channel-disk-reader.js';
import { ChannelJournal } from './channel-journal.js';
import { deadLetterTopicOf, isExhausted, isExpired, maxAttemptsOf } from './channel-policy.js';
import { type Clock, monotonicFromWall } from './clock.js';
import { type Consumer, FinishError } from './consumer.js';
import { DeadlineTimer } from './deadline-timer.js';
import type { ChannelDelta, ChannelSettings } from './durable-state.js';
import { HeldAhead } from './held-ahead.js';
import { InFlightTable } from './in-flight-table.js';
import type { Logger } from './logger.js';
import { ChannelMessage, type MessageRecord } from './message.js';
import { MinHeap } from './min-heap.js';
import type { NsqdOptions } from './options.js';
import { E2eProcessingLatency } from './stats/e2e-latency.js';
import type { TopicLog } from './topic-log.js';

export type { Consumer } from './consumer.js';

export interface ChannelContext {
  readonly options: NsqdOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Runs `channel.pump()` once, later in this turn of the event loop. */
  schedulePump(channel: Channel): void;
  /** A change to store now rather than at the next --sync-timeout (pause, empty). */
  requestFlush(): void;
  onIdle(channel: Channel): void;
  deadLetter(topic: string, record: MessageRecord): void;
}

/** A cursor into its topic's log plus what left it: in flight, requeued, deferred. State changes only in `to*`. */
export class Channel {
  readonly name: string;
  readonly topic: TopicLog;
  readonly ephemeral: boolean;
  paused = false;
  cursor: number;
  /** message_count (NSQ's): what the topic handed this channel since the process started, from here. */
  countFrom: number;
  /** Dropped ranges above `countFrom` that the topic no longer lists (see Topic.pruneSkips). */
  readonly prunedSkips: [number, number][] = [];

  private readonly requeued: ChannelMessage[] = [];
  private requeuedHead = 0;
  readonly deferred = new MinHeap<ChannelMessage>();
  readonly inFlight = new InFlightTable();
  private readonly inFlightHeap = new MinHeap<ChannelMessage>();
  private readonly inFlightTimer: DeadlineTimer;
  private readonly deferredTimer: DeadlineTimer;
  /** Without consumers: when the oldest unread message passes the TTL. */
  private readonly expiryTimer: DeadlineTimer;

  readonly consumers: Consumer[] = [];
  private nextConsumer = 0;
  pumpScheduled = false;
  deleted = false;

  private readonly disk: ChannelDiskReader;
  private readonly held = new HeldAhead();
  private readonly journal: ChannelJournal;
  requeueCount = 0;
  timeoutCount = 0;
  /** Messages given up after max_attempts deliveries (moved to the dead-letter topic, or dropped). */
  deadLetteredCount = 0;
  /** Unread messages dropped by its topic's overflow=drop_oldest. */
  droppedCount = 0;
  expiredCount = 0;
  replayCount = 0;
  /** Set over HTTP; what is absent follows the nsqd flags. Replaced whole, never mutated. */
  settings: ChannelSettings = {};
  /** FIN latencies (nsq-spec §5.8); null without percentiles. */
  readonly e2e: E2eProcessingLatency | null;
  private readonly ctx: ChannelContext;
  private readonly clock: Clock;

  constructor(ctx: ChannelContext, topic: TopicLog, name: string, ephemeral: boolean, cursor: number) {
    this.ctx = ctx;
    this.clock = ctx.clock;
    this.topic = topic;
    this.name = name;
    this.ephemeral = ephemeral;
    this.cursor = cursor;
    this.countFrom = cursor;
    this.journal = new ChannelJournal(this, ctx.clock);
    this.disk = new ChannelDiskReader(this, ctx.logger);
    this.inFlightTimer = new DeadlineTimer(ctx.clock, () => this.processInFlightTimeouts());
    this.deferredTimer = new DeadlineTimer(ctx.clock, () => this.processDeferred());
    this.expiryTimer = new DeadlineTimer(ctx.clock, () => this.schedule());
    this.e2e = E2eProcessingLatency.fromOptions(ctx.options, ctx.clock);
  }

  get messageCount(): number {
    const topic = this.topic;
    const from = this.countFrom;
    const end = Math.max(from, topic.readLimit);
    let dropped = topic.skippedBetween(from, end);
    for (const [a, b] of this.prunedSkips) dropped += Math.max(0, Math.min(b, end) - Math.max(a, from));
    return end - from - dropped;
  }

  /** Ready messages: unread log records plus requeued ones (not in flight, not deferred). */
  get depth(): number {
    // What a paused topic has not released is the topic's depth, not the channel's.
    const end = Math.min(this.topic.tail.end, this.topic.readLimit);
    return this.unread(end) + (this.requeued.length - this.requeuedHead);
  }

  get backendDepth(): number {
    if (this.ephemeral) return 0;
    return this.unread(Math.min(this.topic.tail.start, this.topic.readLimit));
  }

  private unread(end: number): number {
    const topic = this.topic;
    let n = Math.max(0, end - this.cursor) - this.held.size;
    if (topic.skips.length > 0) n -= topic.skippedBetween(this.cursor, end);
    return Math.max(0, n);
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  get deferredCount(): number {
    return this.deferred.size;
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.push(consumer);
    this.schedule();
  }

  removeConsumer(consumer: Consumer): void {
    const i = this.consumers.indexOf(consumer);
    if (i < 0) return;
    this.consumers.splice(i, 1);
    if (this.nextConsumer > i) this.nextConsumer--;
    // In-flight messages of a gone consumer come back when they time out (nsq-spec §5.4).
    if (this.consumers.length === 0) this.ctx.onIdle(this);
  }

  schedule(): void {
    if (!this.pumpScheduled && !this.deleted) {
      this.pumpScheduled = true;
      this.ctx.schedulePump(this);
    }
  }

  /** Hands ready messages to ready consumers round-robin until either runs out (the broker's tick runs it). */
  pump(): void {
    this.pumpScheduled = false;
    if (this.paused || this.deleted) return;
    const consumers = this.consumers;
    const n = consumers.length;
    if (n === 0) {
      this.expireUnread();
      return;
    }
    let idle = 0;
    let i = this.nextConsumer;
    const now = this.clock.monotonicMs();
    while (idle < n) {
      if (i >= n) i = 0;
      const consumer = consumers[i++] as Consumer;
      if (!consumer.canReceive()) {
        idle++;
        continue;
      }
      const msg = this.take(now);
      if (msg === null) break;
      idle = 0;
      // Sampling discards the message for this channel (nsq-spec §2.10): no requeue.
      if (consumer.sampleRate > 0 && Math.floor(Math.random() * 100) > consumer.sampleRate) continue;
      this.toInFlight(msg, consumer, now);
      consumer.deliver(msg);
    }
    this.nextConsumer = i;
    if (this.ephemeral) this.enforceEphemeralLimit(this.ctx.options.memQueueSize);
    const earliest = this.inFlightHeap.peek();
    if (earliest !== undefined) this.inFlightTimer.arm(earliest.heapKey);
    this.topic.trim();
  }

  /** The next message to deliver: requeued first, then the log (memory or disk). */
  private take(now: number): ChannelMessage | null {
    while (this.requeuedHead < this.requeued.length) {
      const msg = this.requeued[this.requeuedHead] as ChannelMessage;
      this.requeued[this.requeuedHead++] = undefined as unknown as ChannelMessage;
      if (this.requeuedHead === this.requeued.length) {
        this.requeued.length = 0;
        this.requeuedHead = 0;
      }
      // Restored from a crash on its last attempt, or max_attempts lowered since it came back.
      if (this.deadLetterIfExhausted(msg)) continue;
      if (this.expired(msg.record)) this.expire(msg.record);
      else return msg;
    }
    const topic = this.topic;
    const tail = topic.tail;
    const limit = topic.readLimit;
    while (this.cursor < limit) {
      if (topic.skips.length > 0 && this.skip()) continue;
      let record: MessageRecord;
      if (this.cursor >= tail.start) {
        record = tail.get(this.cursor++) as MessageRecord;
      } else if (this.ephemeral || topic.log === null) {
        // What left memory was an ephemeral channel's overflow, dropped as NSQ drops it
        // (nsq-spec §5.3): an ephemeral channel never reads the disk.
        this.cursor = tail.start;
        continue;
      } else {
        const fromDisk = this.disk.read(limit);
        if (fromDisk === null) return null;
        record = fromDisk;
        this.cursor = record.offset + 1;
      }
      const msg = this.reached(record, now);
      if (msg !== null) return msg;
    }
    return null;
  }

  /**
   * Without consumers nothing reads, so message_ttl lets the oldest unread messages go as they
   * pass it (depth and expired_count stay true): up to the first that has not, then a wake-up
   * for when it does. The log is in publish order, so that one check per wake-up is enough.
   */
  private expireUnread(): void {
    const ttlMs = this.topic.messageTtlMs;
    if (ttlMs === 0) return;
    const topic = this.topic;
    const tail = topic.tail;
    const limit = topic.readLimit;
    while (this.cursor < limit) {
      if (topic.skips.length > 0 && this.skip()) continue;
      const onDisk = this.cursor < tail.start;
      if (onDisk && (this.ephemeral || topic.log === null)) {
        this.cursor = tail.start;
        continue;
      }
      const record = onDisk ? this.disk.peek(limit) : (tail.get(this.cursor) as MessageRecord);
      if (record === null) return;
      const offset = record.offset;
      const held = this.held.has(offset);
      if (!held && !this.expired(record)) {
        // Not held open while waiting: the read-ahead is buffered records.
        if (onDisk) this.disk.close();
        this.expiryTimer.arm(monotonicFromWall(record.publishedAtMs + ttlMs, this.clock));
        return;
      }
      if (onDisk && this.disk.open) this.disk.read(limit);
      this.cursor = offset + 1;
      // A message it holds already (a fanned-out DPUB) is only passed: reached() drops the mark.
      if (held) this.reached(record, 0);
      else this.expire(record);
    }
    topic.trim();
  }

  /** Every record the cursor reads passes here: a message to deliver now, or null (held, expired, DPUB not due). */
  private reached(record: MessageRecord, now: number): ChannelMessage | null {
    if (this.held.take(record.offset)) return null;
    if (this.expired(record)) {
      this.expire(record);
      return null;
    }
    const msg = new ChannelMessage(record, 0);
    if (record.deliverAfter > now) {
      this.toDeferred(msg, record.deliverAfter);
      return null;
    }
    return msg;
  }

  /** Redrive: up to `max` ready messages leave for good into `sink`; 0 while the next are read from disk. */
  drain(max: number, sink: (record: MessageRecord) => void): number {
    const now = this.clock.monotonicMs();
    let n = 0;
    while (n < max) {
      const msg = this.take(now);
      if (msg === null) break;
      sink(msg.record);
      n++;
    }
    if (n > 0) {
      this.journal.changes++;
      this.topic.trim();
    }
    return n;
  }

  /** Resolves when the disk read under way is in; null when none is. */
  diskRead(): Promise<void> | null {
    return this.disk.loading();
  }

  /** Moves the cursor past a range dropped by /topic/empty while paused; true if it moved. */
  private skip(): boolean {
    for (const [from, to] of this.topic.skips) {
      if (this.cursor >= from && this.cursor < to) {
        this.cursor = to;
        this.disk.close();
        return true;
      }
    }
    return false;
  }

  aheadOffsets(): number[] | null {
    return this.held.list();
  }

  holdAhead(offset: number): void {
    if (offset < this.cursor) return;
    this.held.add(offset);
  }

  putDeferred(record: MessageRecord): void {
    this.holdAhead(record.offset);
    this.toDeferred(new ChannelMessage(record, 0), record.deliverAfter);
  }

  forEachOutstanding(fn: (msg: ChannelMessage) => void): void {
    for (const msg of this.inFlight.values()) fn(msg);
    for (let i = this.requeuedHead; i < this.requeued.length; i++) fn(this.requeued[i] as ChannelMessage);
    for (const msg of this.deferred.entries()) fn(msg);
  }

  /** A message stored as outstanding: deferred at its due time, else (in flight, requeued) ready. */
  restoreOutstanding(record: MessageRecord, attempts: number, dueAtWallMs: number): void {
    const msg = new ChannelMessage(record, attempts);
    this.holdAhead(record.offset);
    if (dueAtWallMs === 0) this.toRequeued(msg);
    else this.toDeferred(msg, monotonicFromWall(dueAtWallMs, this.clock));
  }

  // ---- durable state (the delta/committed contract of durable-state.ts) ----

  get dirty(): boolean {
    return this.journal.dirty;
  }

  durableDelta(): ChannelDelta | null {
    return this.journal.delta();
  }

  committed(delta: ChannelDelta): void {
    this.journal.committed(delta);
  }

  /** The lowest offset the channel still needs: its cursor, or its oldest outstanding message. */
  ackFloor(): number {
    let floor = this.cursor;
    this.forEachOutstanding((msg) => {
      if (msg.record.offset < floor) floor = msg.record.offset;
    });
    return floor;
  }

  // ---- message state transitions ----

  private toInFlight(msg: ChannelMessage, consumer: Consumer, now: number): void {
    msg.state = 'inFlight';
    msg.attempts++;
    msg.owner = consumer;
    msg.deliveredAt = now;
    msg.heapKey = now + consumer.msgTimeoutMs;
    this.inFlight.add(msg);
    this.inFlightHeap.push(msg);
    this.journal.changes++;
  }

  /** Ready again, ahead of the log; maybe kept long, so its body gets a buffer of its own. */
  private toRequeued(msg: ChannelMessage): void {
    msg.state = 'requeued';
    msg.record = msg.record.compact();
    this.requeued.push(msg);
    this.journal.changes++;
  }

  private toDeferred(msg: ChannelMessage, dueAt: number): void {
    msg.state = 'deferred';
    msg.record = msg.record.compact();
    msg.heapKey = dueAt;
    this.deferred.push(msg);
    this.deferredTimer.arm((this.deferred.peek() as ChannelMessage).heapKey);
    this.journal.changes++;
  }

  private leaveInFlight(msg: ChannelMessage): void {
    this.inFlight.delete(msg);
    this.inFlightHeap.remove(msg);
    msg.owner = null;
  }

  /** Back from flight (REQ, or a timeout with `delayMs` 0): ready again, or dead-lettered after max_attempts. */
  private returned(msg: ChannelMessage, delayMs: number, now: number): void {
    if (this.deadLetterIfExhausted(msg)) return;
    if (delayMs > 0) this.toDeferred(msg, now + delayMs);
    else this.toRequeued(msg);
  }

  get maxAttempts(): number {
    return maxAttemptsOf(this.settings, this.ctx.options);
  }

  get deadLetterTopic(): string {
    return deadLetterTopicOf(this.settings, this.ctx.options);
  }

  configure(settings: ChannelSettings): void {
    this.settings = { ...this.settings, ...settings };
    this.journal.changes++;
    this.ctx.requestFlush();
    this.schedule();
  }

  private expired(record: MessageRecord): boolean {
    return isExpired(record, this.topic.messageTtlMs, this.clock);
  }

  /** Dead-lettered if delivered max_attempts times; false if it may go out again. */
  private deadLetterIfExhausted(msg: ChannelMessage): boolean {
    if (!isExhausted(msg.attempts, this.maxAttempts)) return false;
    this.deadLetteredCount++;
    this.giveUp(msg.record);
    return true;
  }

  private expire(record: MessageRecord): void {
    this.expiredCount++;
    this.topic.noteExpired();
    this.giveUp(record);
  }

  /** Into the dead-letter topic or dropped; the copy there and the removal here are one flush, one state write. */
  private giveUp(record: MessageRecord): void {
    const into = this.deadLetterTopic;
    if (into !== '') this.ctx.deadLetter(into, record);
    this.journal.changes++;
  }

  /** Replay: the cursor goes back to `offset` (never forward); what it holds at or past it stays held, skipped. */
  rewind(offset: number): void {
    const from = this.cursor;
    if (offset >= from) return;
    this.cursor = offset;
    this.disk.close();
    this.forEachOutstanding((msg) => {
      const o = msg.record.offset;
      if (o >= offset && o < from) this.holdAhead(o);
    });
    this.replayCount++;
    this.schedule();
  }

  /** Unread messages to the log's end, what a paused topic holds included: what max_depth bounds. */
  get backlog(): number {
    return this.unread(this.topic.tail.end);
  }

  /** overflow=drop_oldest: its `excess` oldest unread messages are dropped, and counted. */
  dropOldest(excess: number): void {
    const from = this.cursor;
    // Dropped ranges and messages it holds already (fanned-out DPUBs) are not unread: the new
    // cursor goes past as many of them as lie below it.
    let to = from + excess;
    for (let next = to; ; to = next) {
      next = from + excess + this.topic.skippedBetween(from, to) + this.held.countBelow(to);
      if (next === to) break;
    }
    this.held.forgetBelow(to);
    this.droppedCount += excess;
    this.cursor = to;
    this.disk.close();
  }

  /** An ephemeral channel past --mem-queue-size drops its oldest unread messages (nsq-spec §5.3). */
  enforceEphemeralLimit(memQueueSize: number): void {
    const end = this.topic.tail.end;
    if (end - this.cursor > memQueueSize) {
      this.cursor = end - memQueueSize;
      this.held.clear();
    }
  }

  private popInFlight(msg: ChannelMessage | undefined, consumer: Consumer): ChannelMessage | FinishError {
    if (msg === undefined) return FinishError.NotInFlight;
    if (msg.owner !== consumer) return FinishError.NotOwner;
    this.leaveInFlight(msg);
    return msg;
  }

  /** FIN: the message is done. Returns an error text for E_FIN_FAILED, or null. */
  finish(id: string, consumer: Consumer): FinishError | null {
    return this.finished(this.popInFlight(this.inFlight.get(id), consumer));
  }

  /** `finish` for the 16 ID bytes at `buf[at]`. */
  finishAt(buf: Buffer, at: number, consumer: Consumer): FinishError | null {
    return this.finished(this.popInFlight(this.inFlight.getAt(buf, at), consumer));
  }

  private finished(msg: ChannelMessage | FinishError): FinishError | null {
    if (typeof msg === 'string') return msg;
    this.e2e?.record((this.clock.wallMs() - msg.record.publishedAtMs) * 1e6);
    this.journal.changes++;
    this.schedule();
    return null;
  }

  requeue(id: string, consumer: Consumer, delayMs: number): FinishError | null {
    const msg = this.popInFlight(this.inFlight.get(id), consumer);
    if (typeof msg === 'string') return msg;
    this.requeueCount++;
    this.returned(msg, delayMs, this.clock.monotonicMs());
    this.schedule();
    return null;
  }

  /** TOUCH: extends the deadline by the consumer's msg timeout, bounded by --max-msg-timeout. */
  touch(id: string, consumer: Consumer): FinishError | null {
    const msg = this.inFlight.get(id);
    if (msg === undefined) return FinishError.NotInFlight;
    if (msg.owner !== consumer) return FinishError.NotOwner;
    const now = this.clock.monotonicMs();
    const deadline = Math.min(now + consumer.msgTimeoutMs, msg.deliveredAt + this.ctx.options.maxMsgTimeoutMs);
    this.inFlightHeap.update(msg, deadline);
    this.inFlightTimer.arm((this.inFlightHeap.peek() as ChannelMessage).heapKey);
    return null;
  }

  private processInFlightTimeouts(): void {
    const now = this.clock.monotonicMs();
    let top = this.inFlightHeap.peek();
    while (top !== undefined && top.heapKey <= now) {
      const owner = top.owner as Consumer | null;
      this.leaveInFlight(top);
      this.timeoutCount++;
      owner?.releaseInFlight();
      this.returned(top, 0, now);
      top = this.inFlightHeap.peek();
    }
    if (top !== undefined) this.inFlightTimer.arm(top.heapKey);
    this.schedule();
  }

  private processDeferred(): void {
    const now = this.clock.monotonicMs();
    let top = this.deferred.peek();
    while (top !== undefined && top.heapKey <= now) {
      this.deferred.pop();
      this.toRequeued(top);
      top = this.deferred.peek();
    }
    if (top !== undefined) this.deferredTimer.arm(top.heapKey);
    this.schedule();
  }

  pause(): void {
    this.paused = true;
    this.ctx.requestFlush();
  }

  unpause(): void {
    this.paused = false;
    this.ctx.requestFlush();
    this.schedule();
  }

  /** Drops the backlog, in-flight and deferred messages (nsq-spec §5.5). */
  empty(): void {
    // What a paused topic still holds is not the channel's to drop: it gets it on unpause.
    this.cursor = Math.max(this.cursor, Math.min(this.topic.tail.end, this.topic.readLimit));
    this.disk.close();
    this.held.clear();
    this.requeued.length = 0;
    this.requeuedHead = 0;
    for (const msg of this.inFlight.values()) (msg.owner as Consumer | null)?.releaseInFlight();
    this.inFlight.clear();
    this.inFlightHeap.drain();
    this.deferred.drain();
    this.inFlightTimer.cancel();
    this.deferredTimer.cancel();
    this.journal.changes++;
    this.ctx.requestFlush();
    this.topic.trim();
    this.schedule();
  }

  close(): void {
    this.deleted = true;
    this.disk.close();
    this.inFlightTimer.cancel();
    this.deferredTimer.cancel();
    this.expiryTimer.cancel();
    for (const consumer of this.consumers.splice(0)) consumer.closeForChannelDelete();
  }
}
