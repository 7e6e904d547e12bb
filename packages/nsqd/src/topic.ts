import { isEphemeralName } from '@nsq-ts/protocol';
import { Channel, type ChannelContext } from './channel.js';
import type { BrokerContext } from './context.js';
import type { SkipRange, TopicDelta, TopicSettings } from './durable-state.js';
import { BodyArena } from './log/body-arena.js';
import { MemoryTail } from './log/memory-tail.js';
import type { SegmentLog } from './log/segment-log.js';
import type { WriteSet } from './log/write-set.js';
import type { MessageRecord } from './message.js';
import { MessageIdGenerator } from './message-id.js';
import { findReplayTarget, type ReplayTarget } from './replay-target.js';
import { RetentionMarks } from './retention-marks.js';
import { addSkip, skippedBetween } from './skip-ranges.js';
import { type CappedTopic, dropOverflow, refusedByCap } from './topic-caps.js';
import type { TopicLog } from './topic-log.js';
import { DeadLetterIntents, type RedriveSource, redrive } from './topic-redrive.js';
import { StoreUnavailableError, type TopicStore } from './topic-store.js';
import { collectWrites, type WritingTopic } from './topic-writes.js';

/** Messages memory may hold past --mem-queue-size while a spill is being written. */
const SPILL_SLACK = 10_000;

/** Written records kept in memory for readers even with --mem-queue-size=0, by count and bytes. */
const WRITTEN_CACHE = 5_000;
const WRITTEN_CACHE_BYTES = 8 * 1024 * 1024;

export class TopicFullError extends Error {
  constructor() {
    super('topic full');
  }
}

/**
 * A topic: one log every channel reads through its own cursor (DESIGN §2). Past --mem-queue-size the
 * oldest records go to segment files; what every channel has finished is never written.
 */
export class Topic implements TopicLog, CappedTopic, RedriveSource, WritingTopic {
  readonly name: string;
  readonly ephemeral: boolean;
  readonly tail = new MemoryTail();
  /** Where TCP publishes copy this topic's bodies. */
  readonly bodies = new BodyArena();
  readonly channels = new Map<string, Channel>();
  /** The segment files; null for an ephemeral topic (never touches disk, nsq-spec §5.3). */
  readonly log: SegmentLog | null;
  /** Records below it are on disk, or were not needed when it was their turn. */
  writtenUpTo = 0;
  paused = false;
  /** While paused, channels may not read at or past this offset (DESIGN §2 release mark). */
  releaseMark = Number.POSITIVE_INFINITY;
  skips: SkipRange[] = [];
  messageCount = 0;
  messageBytes = 0;
  deleted = false;
  /** Set over HTTP; what is absent follows the nsqd flags. Replaced whole, never mutated. */
  settings: TopicSettings = {};
  rejectedCount = 0;
  /** Messages dropped by overflow=drop_oldest while the topic had no channel. */
  droppedCount = 0;
  /** Messages its channels let expire (message_ttl), one per channel that reached them. */
  expiredCount = 0;
  redrivenCount = 0;
  private redriving: Promise<void> = Promise.resolve();
  private readonly deadLetterIntents = new DeadLetterIntents();
  /** Durable mode: DPUBs fanned out once stored. */
  private unwrittenDeferred: MessageRecord[] = [];
  /** Everything below it was dropped (emptied without channels, last channel deleted). */
  private droppedBelow = 0;
  private readonly retention = new RetentionMarks();
  /** Bumped by every change of paused, release mark, skips or the dropped backlog. */
  private changes = 0;
  private committedChanges = -1;
  /** While lookupd's channels are made (nsq-spec §4.4): they start at the log's start, nothing is trimmed. */
  private starting = false;
  private readonly ids: MessageIdGenerator;
  private readonly ctx: BrokerContext;
  private readonly store: TopicStore | null;
  private readonly channelCtx: ChannelContext;

  constructor(ctx: BrokerContext, name: string, store: TopicStore | null, nextOffset = 0) {
    this.ctx = ctx;
    this.name = name;
    this.ephemeral = isEphemeralName(name);
    this.ids = new MessageIdGenerator(ctx.options.nodeId);
    this.store = store;
    this.log = store?.log ?? null;
    const next = Math.max(nextOffset, this.log?.endOffset ?? 0);
    this.tail.resetTo(next);
    this.writtenUpTo = next;
    this.channelCtx = {
      options: ctx.options,
      clock: ctx.clock,
      logger: ctx.logger,
      schedulePump: (channel) => ctx.schedulePump(channel),
      requestFlush: () => store?.requestFlush(),
      onIdle: (channel) => {
        if (channel.ephemeral) this.deleteChannel(channel.name);
      },
      deadLetter: (topic, record) => ctx.deadLetter(topic, record),
    };
  }

  /** Where a first channel starts: the oldest message held, on disk or in memory. */
  get backlogStart(): number {
    const log = this.log;
    if (log === null || log.segments.length === 0) return this.tail.start;
    // Segments of a dropped backlog are deleted by the next flush: they do not count.
    return Math.max(this.droppedBelow, Math.min(log.firstOffset, this.tail.start));
  }

  get readLimit(): number {
    const end = this.paused ? this.releaseMark : this.tail.end;
    // Durable mode delivers only what is stored: a refused publish is never delivered.
    if (this.log !== null && this.ctx.options.memQueueSize === 0 && this.writtenUpTo < end) return this.writtenUpTo;
    return end;
  }

  /** Topic depth: messages not yet handed to channels (all of them while it has no channel). */
  get depth(): number {
    const end = this.tail.end;
    if (this.channels.size === 0) return end - this.backlogStart - this.skippedBetween(this.backlogStart, end);
    return this.paused ? end - this.releaseMark - this.skippedBetween(this.releaseMark, end) : 0;
  }

  get backendDepth(): number {
    if (this.channels.size === 0) return Math.max(0, this.tail.start - this.backlogStart);
    return 0;
  }

  skippedBetween(from: number, to: number): number {
    return skippedBetween(this.skips, from, to);
  }

  noteDiskRead(): void {
    this.store?.noteDiskRead();
  }

  getChannel(name: string): Channel {
    let channel = this.channels.get(name);
    if (channel === undefined) {
      // The first channel takes the backlog; later ones start at the end (nsq-spec §5.1) — of
      // what was released: a paused topic hands its held messages to every channel on unpause.
      let cursor = this.tail.end;
      if (this.channels.size === 0 || this.starting) cursor = this.backlogStart;
      else if (this.paused) cursor = Math.min(this.releaseMark, this.tail.end);
      channel = this.addChannel(name, cursor);
      this.ctx.logger.info(`TOPIC(${this.name}): new channel(${name})`);
      this.store?.requestFlush();
      this.ctx.onChannelCreated(this.name, name);
    }
    return channel;
  }

  /** A channel from the state store or an NSQ import; message_count counts from `countFrom`. */
  restoreChannel(name: string, cursor: number, paused: boolean, countFrom: number): Channel {
    const channel = this.addChannel(name, cursor);
    channel.paused = paused;
    channel.countFrom = countFrom;
    return channel;
  }

  private addChannel(name: string, cursor: number): Channel {
    const channel = new Channel(this.channelCtx, this, name, isEphemeralName(name), cursor);
    this.channels.set(name, channel);
    return channel;
  }

  deleteChannel(name: string): boolean {
    const channel = this.channels.get(name);
    if (channel === undefined) return false;
    this.channels.delete(name);
    channel.close();
    if (!channel.ephemeral) this.store?.dropChannel(name);
    this.ctx.logger.info(`TOPIC(${this.name}): deleting channel(${name})`);
    this.ctx.onChannelDeleted(this.name, name);
    if (this.channels.size === 0) {
      // What the deleted channels had not read is gone with them; the topic starts empty.
      this.dropBacklog();
      if (this.ephemeral) this.ctx.onEphemeralTopicEmpty(this);
    } else {
      this.trim();
    }
    return true;
  }

  /** PUB. Null when the message is safe in memory, else a promise settled once it is on disk. */
  publish(data: Buffer): Promise<void> | null {
    this.admit(1, data.length);
    this.append(data, 0, data.length, this.ctx.clock.wallMs(), 0);
    this.messageCount++;
    this.messageBytes += data.length;
    this.afterAppend();
    return this.settle();
  }

  /** MPUB: bodies are ranges of `data`, so the batch buffer is their only copy. */
  publishBatch(
    data: Buffer,
    starts: readonly number[],
    lengths: readonly number[],
    count: number,
  ): Promise<void> | null {
    this.admit(count, data.length);
    const nowMs = this.ctx.clock.wallMs();
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const length = lengths[i] as number;
      this.append(data, starts[i] as number, length, nowMs, 0);
      bytes += length;
    }
    this.messageCount += count;
    this.messageBytes += bytes;
    this.afterAppend();
    return this.settle();
  }

  /** DPUB: fanning-out channels get it deferred at once and skip it at their cursor; else it waits in the log. */
  publishDeferred(data: Buffer, deferMs: number): Promise<void> | null {
    this.admit(1, data.length);
    const clock = this.ctx.clock;
    const offset = this.append(data, 0, data.length, clock.wallMs(), clock.monotonicMs() + deferMs);
    const record = this.tail.get(offset) as MessageRecord;
    this.messageCount++;
    this.messageBytes += data.length;
    if (this.channels.size > 0 && !this.paused && !this.starting) {
      // Durable mode hands it out only once stored (a refused DPUB must never be delivered).
      if (this.log !== null && this.ctx.options.memQueueSize === 0) this.unwrittenDeferred.push(record);
      else for (const channel of this.channels.values()) channel.putDeferred(record);
    }
    this.afterAppend();
    return this.settle();
  }

  /** A message from a real nsqd's data path, ID and timestamp kept (a malformed ID gets a new one). */
  appendImported(id: string, publishedAtMs: number, body: Buffer): MessageRecord {
    let hi = Number.parseInt(id.slice(0, 8), 16);
    let lo = Number.parseInt(id.slice(8, 16), 16);
    if (!/^[0-9a-fA-F]{16}$/.test(id)) {
      hi = this.ids.nextHi();
      lo = this.ids.lo;
    }
    // Not counted: message_count is what was published since the process started.
    const offset = this.tail.append(body, 0, body.length, hi, lo, publishedAtMs, 0);
    return this.tail.get(offset) as MessageRecord;
  }

  /** Given up by another channel after max_attempts: a new ID (two channels may give up the same one). */
  appendDeadLetter(source: MessageRecord, publishedAtMs = source.publishedAtMs): void {
    const record = source.compact();
    const offset = this.append(record.data, record.start, record.length, publishedAtMs, 0);
    this.messageCount++;
    this.messageBytes += record.length;
    if (this.log !== null) this.deadLetterIntents.add(offset);
    this.afterAppend();
    this.store?.requestFlush();
  }

  /** The dead letters a flush writes, stored as an intent before its appends (see DeadLetterIntents). */
  takeDeadLetters(): number[] {
    return this.deadLetterIntents.take();
  }

  untakeDeadLetters(offsets: readonly number[]): void {
    this.deadLetterIntents.untake(offsets);
  }

  /** Start-up: dead letters of a move that did not commit (their channel still holds them). */
  skipOrphans(offsets: readonly number[]): void {
    const sorted = [...offsets].sort((a, b) => a - b);
    for (const o of sorted) if (this.skippedBetween(o, o + 1) === 0) addSkip(this.skips, o, o + 1);
    this.changes++;
  }

  /** POST /topic/redrive into `into` (see topic-redrive.ts); one redrive of a topic at a time. */
  redrive(into: Topic, max: number): Promise<number> {
    const run = this.redriving.then(() => redrive(this, into, max, () => this.ctx.clock.wallMs()));
    this.redriving = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  skipMoved(from: number, to: number): void {
    addSkip(this.skips, from, to);
    this.changes++;
    if (to > this.tail.start) this.tail.trimTo(Math.min(to, this.tail.end));
    this.store?.requestFlush();
  }

  flushed(): Promise<void> | null {
    return this.store?.commit() ?? null;
  }

  noteStateChange(): void {
    this.changes++;
  }

  private append(data: Buffer, start: number, length: number, nowMs: number, dueAt: number): number {
    const hi = this.ids.nextHi();
    return this.tail.append(data, start, length, hi, this.ids.lo, nowMs, dueAt);
  }

  /** Every PUB/MPUB/DPUB passes here before any append, so a refused MPUB stores nothing. */
  private admit(count: number, bytes: number): void {
    const store = this.store;
    if (store !== null) {
      const health = store.health();
      if (health !== null && this.tail.length >= this.ctx.options.memQueueSize) throw new StoreUnavailableError(health);
      const refusal = store.refusal();
      if (refusal !== null) throw new StoreUnavailableError(refusal);
    }
    if (refusedByCap(this, count, bytes)) {
      this.rejectedCount++;
      throw new TopicFullError();
    }
  }

  get maxDepth(): number {
    return this.settings.maxDepth ?? this.ctx.options.maxDepth;
  }

  get maxBytes(): number {
    return this.settings.maxBytes ?? this.ctx.options.maxBytes;
  }

  get overflow(): 'reject' | 'drop_oldest' {
    return this.settings.overflow ?? this.ctx.options.overflow;
  }

  get messageTtlMs(): number {
    return this.settings.messageTtlMs ?? this.ctx.options.messageTtlMs;
  }

  get retentionMs(): number {
    return this.settings.retentionMs ?? this.ctx.options.retentionMs;
  }

  /** With retention every record is written, and memory drops only written ones: replay reads them back. */
  private get retains(): boolean {
    return this.log !== null && this.retentionMs > 0;
  }

  /** Segments below it may go: the channels' floor, or with retention the floor as it was `retention` ago. */
  deletableBelow(floor: number): number {
    if (!this.retains) {
      this.retention.clear();
      return floor;
    }
    return this.retention.deletableBelow(floor, this.retentionMs, this.ctx.clock.monotonicMs());
  }

  replayTarget(at: { readonly sinceMs: number } | { readonly offset: number }): Promise<ReplayTarget> {
    return findReplayTarget(this, at);
  }

  /** Replay: `channel` reads again from `offset`; resolves once its cursor is stored. */
  replay(channel: Channel, offset: number): Promise<void> {
    channel.rewind(offset);
    this.trim();
    return this.flushed() ?? Promise.resolve();
  }

  noteExpired(): void {
    this.expiredCount++;
  }

  configure(settings: TopicSettings): void {
    this.settings = { ...this.settings, ...settings };
    this.changes++;
    this.store?.requestFlush();
    dropOverflow(this);
  }

  /** --mem-queue-size=0: publishers wait for the disk (durable mode); otherwise the spill is written behind them. */
  private settle(): Promise<void> | null {
    const store = this.store;
    if (store === null) return null;
    const limit = this.ctx.options.memQueueSize;
    const over = this.tail.length - limit;
    if (over <= 0) return null;
    if (limit === 0 || over > Math.max(limit, SPILL_SLACK)) return store.commit();
    store.requestFlush();
    return null;
  }

  private afterAppend(): void {
    dropOverflow(this);
    const limit = this.ctx.options.memQueueSize;
    if (this.channels.size === 0) {
      // An ephemeral topic never holds more than --mem-queue-size messages (nsq-spec §5.3).
      if (this.ephemeral && this.tail.length > limit) this.tail.trimTo(this.tail.end - limit);
      return;
    }
    if (this.paused) return;
    for (const channel of this.channels.values()) {
      // With consumers the pump hands out what it can before the overflow is dropped.
      if (channel.ephemeral && channel.consumers.length === 0) channel.enforceEphemeralLimit(limit);
      channel.schedule();
    }
  }

  beginStarting(): void {
    this.starting = true;
  }

  finishStarting(): void {
    this.starting = false;
    this.trim();
  }

  /** Drops from memory what every channel passed, and written records past --mem-queue-size. */
  trim(): void {
    if (this.starting) return;
    let target = this.tail.start;
    if (this.channels.size > 0) {
      target = this.tail.end;
      for (const channel of this.channels.values()) if (channel.cursor < target) target = channel.cursor;
    }
    if (this.log !== null) {
      // A consumer right behind durable-mode publishers reads the written cache, not the disk.
      const meanBytes = this.messageCount > 0 ? this.messageBytes / this.messageCount : 0;
      const cache = Math.min(WRITTEN_CACHE, Math.floor(WRITTEN_CACHE_BYTES / Math.max(1, meanBytes)));
      const keep = Math.max(this.ctx.options.memQueueSize, cache);
      const spill = Math.min(this.writtenUpTo, this.tail.end - keep);
      if (spill > target) target = spill;
    }
    if (this.retains) target = Math.min(target, this.writtenUpTo);
    if (target > this.tail.start) this.tail.trimTo(target);
  }

  collectWrites(): WriteSet {
    return collectWrites(this, this.ctx.clock);
  }

  get needsEveryRecord(): boolean {
    return this.channels.size === 0 || this.starting || this.retains;
  }

  /** A flush wrote everything below `to` that was needed: memory may now spill. */
  afterWrite(to: number): void {
    this.tail.unpin();
    if (to > this.writtenUpTo) this.writtenUpTo = to;
    if (this.unwrittenDeferred.length > 0) this.fanOutWritten(to);
    this.trim();
    if (this.ctx.options.memQueueSize === 0 && !this.paused) {
      for (const channel of this.channels.values()) channel.schedule();
    }
  }

  /**
   * A flush was stored but its publishes refused (replication): in durable mode none was delivered yet, so they
   * become skips, a state change stored and replicated by the next flush. From memory they may be out already.
   */
  refusedWrite(to: number): void {
    if (this.ctx.options.memQueueSize === 0) this.discardUnwritten(to);
    else this.afterWrite(to);
  }

  /** A flush failed: in durable mode its publishers got E_PUB_FAILED, so channels skip its messages. */
  discardUnwritten(to: number): void {
    this.tail.unpin();
    if (this.ctx.options.memQueueSize !== 0 || to <= this.writtenUpTo) return;
    this.unwrittenDeferred = this.unwrittenDeferred.filter((r) => r.offset >= to);
    this.skips.push([this.writtenUpTo, to]);
    this.writtenUpTo = to;
    this.changes++;
    this.trim();
  }

  private fanOutWritten(to: number): void {
    const pending = this.unwrittenDeferred;
    this.unwrittenDeferred = [];
    for (const record of pending) {
      if (record.offset >= to) {
        this.unwrittenDeferred.push(record);
        continue;
      }
      if (this.paused) continue; // the cursor takes it from the log and defers it then
      for (const channel of this.channels.values()) if (channel.cursor <= record.offset) channel.putDeferred(record);
    }
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.releaseMark = this.tail.end;
    this.changes++;
    this.store?.requestFlush();
  }

  unpause(): void {
    if (!this.paused) return;
    this.paused = false;
    this.releaseMark = Number.POSITIVE_INFINITY;
    this.changes++;
    this.store?.requestFlush();
    this.afterAppend();
  }

  /** Drops what no channel was handed yet (nsq-spec §5.5): all without channels, else what a pause holds. */
  empty(): void {
    if (this.channels.size === 0) {
      this.dropBacklog();
      return;
    }
    if (!this.paused) return;
    // Ranges never overlap: a second empty while still paused starts where the last ended.
    const last = this.skips[this.skips.length - 1];
    const from = Math.max(this.releaseMark, last !== undefined ? last[1] : 0);
    if (this.tail.end > from) {
      this.skips.push([from, this.tail.end]);
      this.changes++;
      this.store?.requestFlush();
    }
  }

  pruneSkips(): void {
    if (this.skips.length === 0) return;
    let min = this.channels.size === 0 ? this.backlogStart : Number.POSITIVE_INFINITY;
    for (const channel of this.channels.values()) if (channel.cursor < min) min = channel.cursor;
    // A replay may take a cursor back anywhere retained: its skips stay with it.
    if (this.retains) min = Math.min(min, this.backlogStart);
    const kept = this.skips.filter(([, to]) => to > min);
    if (kept.length === this.skips.length) return;
    // A dropped range leaves the list but must stay out of the channels' message_count.
    for (const range of this.skips) {
      if (range[1] > min) continue;
      for (const channel of this.channels.values()) if (range[1] > channel.countFrom) channel.prunedSkips.push(range);
    }
    this.skips = kept;
    this.changes++;
  }

  private dropBacklog(): void {
    this.tail.clear();
    this.droppedBelow = this.tail.end;
    this.writtenUpTo = this.tail.end;
    this.skips = [];
    if (this.paused) this.releaseMark = this.tail.end;
    this.changes++;
    this.store?.clearLog(this.tail.end);
  }

  // ---- durable state (the delta/committed contract of durable-state.ts) ----

  restoreState(state: Pick<TopicDelta, 'paused' | 'releaseMark' | 'skips'> & { settings?: TopicSettings }): void {
    this.paused = state.paused;
    if (state.settings !== undefined) this.settings = state.settings;
    if (state.paused) this.releaseMark = state.releaseMark;
    this.skips = state.skips.map(([from, to]) => [from, to]);
  }

  durableDelta(): TopicDelta | null {
    if (this.changes === this.committedChanges) return null;
    return {
      changes: this.changes,
      paused: this.paused,
      settings: this.settings,
      nextOffset: this.tail.end,
      releaseMark: Number.isFinite(this.releaseMark) ? this.releaseMark : 0,
      skips: this.skips.map(([from, to]) => [from, to]),
    };
  }

  committed(delta: TopicDelta): void {
    this.committedChanges = delta.changes;
  }

  close(): void {
    this.deleted = true;
    for (const name of [...this.channels.keys()]) {
      const channel = this.channels.get(name) as Channel;
      this.channels.delete(name);
      channel.close();
    }
    this.tail.clear();
  }
}
